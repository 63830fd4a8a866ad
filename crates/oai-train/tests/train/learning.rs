//! Learning on real data, LoRA on a pinned base, quantised inference.

use super::*;

#[tokio::test]
async fn lora_trains_adapters_on_a_pinned_base() {
    let (store, spec) = lm_setup().await;
    let (_, base_log) = train(&store, &spec).await;
    let base_weights = base_log.checkpoints.last().unwrap().cid;
    let lora = JobSpec {
        model: ModelSpec::Lora {
            base: tiny_transformer().into(),
            base_weights,
            rank: 4,
            alpha: 8.0,
        },
        optimizer: OptimizerSpec::AdamW {
            beta1: 0.9,
            beta2: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
        },
        schedule: Schedule::Constant { lr: 0.01 },
        ..spec.clone()
    };
    let (log, summary) = train(&store, &lora).await;
    let (again, _) = train(&store, &lora).await;
    assert_eq!(log, again, "LoRA runs are deterministic too");
    let v = VerifiedLog::load(&store, &log).await.unwrap();
    assert_eq!(v.header.params.len(), 2 * 4 * tiny_transformer().layers);
    assert!(v
        .header
        .params
        .iter()
        .all(|n| n.ends_with(".lora_a") || n.ends_with(".lora_b")));
    let ck = Checkpoint::get(&store, &summary.checkpoints.last().unwrap().cid, &CPU)
        .await
        .unwrap();
    assert!(
        ck.params.keys().all(|n| n.contains(".lora_")),
        "the base is not copied"
    );
    for s in [0, 4] {
        assert!(replay_step(&log, s, &store).await.unwrap().is_match());
    }
    // The same adapters on another base are another run.
    let other_base = JobSpec {
        model: ModelSpec::Lora {
            base: tiny_transformer().into(),
            base_weights: base_log.checkpoints[0].cid,
            rank: 4,
            alpha: 8.0,
        },
        ..lora
    };
    assert_ne!(train(&store, &other_base).await.1.root, summary.root);
}

pub(crate) fn real_file(var: &str) -> Option<String> {
    let p = real_path(var)?;
    Some(std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{var}={}: {e}", p.display())))
}

/// The file the environment variable `var` names; `None` (the test skips) when it is unset,
/// a panic when it is unset under `OAI_REQUIRE_REAL`.
pub(crate) fn real_path(var: &str) -> Option<std::path::PathBuf> {
    match std::env::var_os(var) {
        Some(p) => Some(p.into()),
        None if std::env::var_os("OAI_REQUIRE_REAL").is_some() => {
            panic!("{var} is not set and OAI_REQUIRE_REAL is")
        }
        None => {
            eprintln!("skipped: set {var} (see .ci/run) to run this test on real data");
            None
        }
    }
}

#[tokio::test]
async fn mlp_learns_scikit_learn_digits() {
    let Some(csv) = real_file("OAI_DIGITS") else {
        return;
    };
    let records = corpus::labeled_from_csv(&csv, 1.0 / 16.0).unwrap();
    assert_eq!(records.len(), 1797);
    let (test, train_set): (Vec<_>, Vec<_>) = records
        .into_iter()
        .enumerate()
        .partition(|(i, _)| i % 5 == 0);
    let strip = |v: Vec<(usize, Record)>| v.into_iter().map(|(_, r)| r).collect::<Vec<_>>();
    let (test, train_set) = (strip(test), strip(train_set));
    let store = MemStore::new();
    let data = dataset(&store, train_set).await;
    let spec = JobSpec {
        model: ModelSpec::Mlp {
            input: 64,
            hidden: vec![128],
            classes: 10,
            dropout: 0.1,
        },
        optimizer: OptimizerSpec::adam_w(1e-4),
        schedule: Schedule::WarmupCosine {
            lr: 3e-3,
            warmup: 20,
            decay_steps: 600,
            min_lr: 1e-4,
        },
        batch_size: 32,
        steps: 600,
        checkpoint_every: 200,
        ..mlp_spec(data)
    };
    let mut t = Trainer::new(store.clone(), spec, CPU).await.unwrap();
    let (log, _) = t.train_and_publish().await.unwrap();
    let eval = t.evaluate(&test).unwrap();
    println!(
        "digits: test accuracy {:.4}, loss {:.4}",
        eval.accuracy, eval.loss
    );
    assert!(eval.accuracy >= 0.95, "test accuracy {}", eval.accuracy);
    assert!(replay_step(&log, 437, &store).await.unwrap().is_match());
}

#[tokio::test]
async fn transformer_beats_the_unigram_baseline_on_pydoc_topics() {
    beats_the_unigram_baseline_on_pydoc_topics(ModelSpec::Transformer(TransformerSpec {
        vocab: 128,
        context: 32,
        d_model: 64,
        heads: 4,
        layers: 2,
        d_ff: 128,
        dropout: 0.0,
    }))
    .await;
}

#[tokio::test]
async fn llama_beats_the_unigram_baseline_on_pydoc_topics_and_replays() {
    beats_the_unigram_baseline_on_pydoc_topics(ModelSpec::Llama(LlamaSpec {
        vocab: 128,
        context: 32,
        d_model: 64,
        layers: 2,
        heads: 4,
        kv_heads: 2,
        d_ff: 160,
        rope_theta: 10_000.0,
        rms_eps: 1e-5,
        tie_embeddings: true,
    }))
    .await;
}

/// A byte-level language model `model` (context 32) trained for 300 steps on the pydoc
/// topics (`OAI_TEXT`) beats the unigram entropy by a fifth on held-out text, and a step of
/// its log replays to the same bits.
async fn beats_the_unigram_baseline_on_pydoc_topics(model: ModelSpec) {
    let Some(text) = real_file("OAI_TEXT") else {
        return;
    };
    let bytes: Vec<u8> = text.bytes().filter(u8::is_ascii).take(400_000).collect();
    let (held_out, train_text) = bytes.split_at(40_000);
    let store = MemStore::new();
    let data = dataset(&store, corpus::byte_windows(train_text, 32, 29).unwrap()).await;
    let spec = JobSpec {
        model,
        optimizer: OptimizerSpec::AdamW {
            beta1: 0.9,
            beta2: 0.99,
            eps: 1e-8,
            weight_decay: 0.01,
        },
        schedule: Schedule::WarmupCosine {
            lr: 3e-3,
            warmup: 20,
            decay_steps: 300,
            min_lr: 3e-4,
        },
        batch_size: 16,
        steps: 300,
        checkpoint_every: 100,
        ..mlp_spec(data)
    };
    let mut t = Trainer::new(store.clone(), spec, CPU).await.unwrap();
    let (log, _) = t.train_and_publish().await.unwrap();
    let eval = t
        .evaluate(&corpus::byte_windows(held_out, 32, 32).unwrap())
        .unwrap();
    let unigram = corpus::unigram_entropy(train_text);
    let name = format!("{:?}", t.spec().model);
    println!(
        "pydoc topics, {}: held-out loss {:.3} nats, unigram entropy {unigram:.3}",
        name.split(['(', ' ']).next().unwrap_or(&name),
        eval.loss
    );
    assert!(
        (eval.loss as f64) < 0.8 * unigram,
        "{} vs {unigram}",
        eval.loss
    );
    assert!(replay_step(&log, 250, &store).await.unwrap().is_match());
}

#[tokio::test]
async fn quantized_inference_tracks_full_precision() {
    use oai_train::model::{Pass, Quantization, QuantizedWeights};
    use oai_train::{Model, Params};
    let (store, spec) = lm_setup().await;
    let (_, summary) = train(&store, &spec).await;
    let ck = Checkpoint::get(&store, &summary.checkpoints.last().unwrap().cid, &CPU)
        .await
        .unwrap();
    let model = Model::new(&spec.model);
    let params = Params::from_tensors(&model.param_defs(), ck.params.clone(), &CPU).unwrap();
    let records: Vec<Record> = Version::open(&store, &spec.dataset)
        .await
        .unwrap()
        .records(&store)
        .await
        .unwrap()
        .into_iter()
        .take(16)
        .collect();
    let (x, _) = model.batch(&records, &CPU).unwrap();
    let full = model
        .logits(&params, &x, &Pass::eval(spec.kernels))
        .unwrap();
    let argmax = |t: &candle_core::Tensor| -> Vec<u32> {
        t.argmax(candle_core::D::Minus1)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    };
    let full_top = argmax(&full);
    for (kind, max_err, min_agree) in [
        (Quantization::Int8, 0.05, 0.97),
        (Quantization::Int4, 0.5, 0.8),
    ] {
        let q = QuantizedWeights::new(ck.params.clone(), kind).unwrap();
        assert_eq!(
            q.quantized_layers(),
            4 * tiny_transformer().layers + 1,
            "{kind:?}"
        );
        let ql = model.logits(&q, &x, &Pass::eval(spec.kernels)).unwrap();
        let err: f32 = (&ql - &full)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar()
            .unwrap();
        let agree = argmax(&ql)
            .iter()
            .zip(&full_top)
            .filter(|(a, b)| a == b)
            .count() as f64
            / full_top.len() as f64;
        println!("{kind:?}: max |logit error| {err:.4}, top-1 agreement {agree:.3}");
        assert!(
            err < max_err && agree >= min_agree,
            "{kind:?}: {err} {agree}"
        );
    }
}
