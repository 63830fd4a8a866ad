//! Prompt and decode tokens/s of a Llama-family GGUF model (SmolLM2-135M-Instruct), side by
//! side in one run: oai's generator on the file's 4/8-bit blocks (what `oai generate` runs),
//! on the f32 weights imported from the file (the same bits, 32 bits a weight to read), both on
//! the verifiable kernels, and candle's `quantized_llama` on the file (8-bit activations, as
//! llama.cpp computes). The same chat prompt, greedy, the same number of new tokens; each
//! figure is the best of `ROUNDS` rounds. It prints the prompt's token ids for
//! `benches/baselines/generate_vs_llamacpp.sh`, which runs llama.cpp on the same ids.
//!
//! Usage: `cargo run --release -p oai-benches --bin generate_speed [GGUF [NEW [ROUNDS]]]`
//! (GGUF defaults to `$OAI_SMOLLM2`; 80 new tokens, 3 rounds).

use std::io::Cursor;
use std::time::Instant;

use candle_transformers::models::quantized_llama::ModelWeights;
use oai_train::candle::quantized::gguf_file;
use oai_train::candle::{Device, Tensor};
use oai_train::gguf::{generator, read_llama, Tokenizer};
use oai_train::model::{LlamaGenerator, Sampling, Weights};
use oai_train::spec::ModelSpec;
use oai_train::{Kernels, Model, Params};

/// The prompt: a user's chat turn of about 30 tokens.
const QUESTION: &str =
    "Explain in two sentences why a training run whose every step is logged can be checked by anyone.";

/// Seconds of the prompt and of `new` decoded tokens (best of `rounds`).
#[derive(Debug, Clone, Copy)]
struct Timing {
    prompt: f64,
    decode: f64,
}

fn best(rounds: usize, mut run: impl FnMut() -> Timing) -> Timing {
    (0..rounds).map(|_| run()).fold(
        Timing {
            prompt: f64::INFINITY,
            decode: f64::INFINITY,
        },
        |a, b| Timing {
            prompt: a.prompt.min(b.prompt),
            decode: a.decode.min(b.decode),
        },
    )
}

fn main() {
    let path = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("OAI_SMOLLM2").ok())
        .expect("a GGUF file: the first argument or OAI_SMOLLM2 (scripts/fetch_models.sh)");
    let new: usize = std::env::args()
        .nth(2)
        .map_or(80, |n| n.parse().expect("NEW"));
    let rounds: usize = std::env::args()
        .nth(3)
        .map_or(3, |n| n.parse().expect("ROUNDS"));
    let file = std::fs::read(&path).expect("the GGUF file");
    let tokenizer = Tokenizer::from_gguf(&file).expect("a tokenizer");
    let (prompt, _) = tokenizer
        .chat_turn(QUESTION)
        .expect("the prompt encodes")
        .expect("a ChatML model");
    println!(
        "{} prompt tokens, {new} new tokens (no stop), best of {rounds} rounds",
        prompt.len()
    );
    let ids: Vec<String> = prompt.iter().map(u32::to_string).collect();
    println!("prompt ids: {}", ids.join(","));
    println!(
        "{:<48} {:>12} {:>12} {:>13}",
        "", "prompt tok/s", "decode tok/s", "weights (MB)"
    );
    let show = |name: &str, t: Timing, bytes: usize| {
        println!(
            "{name:<48} {:>12.1} {:>12.1} {:>13.1}",
            prompt.len() as f64 / t.prompt,
            (new - 1) as f64 / t.decode,
            bytes as f64 / 1e6
        );
    };
    let (blocks, _) = generator(&file, Kernels::Verifiable).expect("the model loads");
    let bytes = blocks.weights().bytes();
    show(
        "oai, the file's blocks, verifiable kernels",
        timed(&blocks, &prompt, new, rounds),
        bytes,
    );
    let tokens = blocks
        .generate(&prompt, new, Sampling::Greedy, &[], |_| {
            std::ops::ControlFlow::Continue(())
        })
        .expect("tokens");
    let tokens: Vec<String> = tokens.iter().map(u32::to_string).collect();
    drop(blocks);
    let (spec, tensors) = read_llama(&file).expect("the model reads");
    let model = Model::new(&ModelSpec::Llama(spec.clone()));
    let params = Params::from_tensors(&model.param_defs(), tensors, &Device::Cpu).expect("params");
    let f32_gen = LlamaGenerator::new(spec, params, Kernels::Verifiable).expect("a generator");
    show(
        "oai, f32 weights (imported), verifiable kernels",
        timed(&f32_gen, &prompt, new, rounds),
        model.param_count().0 as usize * 4,
    );
    drop(f32_gen);
    let t = best(rounds, || {
        let mut reader = Cursor::new(&file);
        let content = gguf_file::Content::read(&mut reader).expect("GGUF");
        let mut m = ModelWeights::from_gguf(content, &mut reader, &Device::Cpu).expect("model");
        let input = Tensor::new(prompt.as_slice(), &Device::Cpu)
            .and_then(|t| t.unsqueeze(0))
            .expect("ids");
        let start = Instant::now();
        let logits = m.forward(&input, 0).expect("the prompt runs");
        let mut next = argmax(&logits);
        let prompt_s = start.elapsed().as_secs_f64();
        let start = Instant::now();
        for i in 1..new {
            let input = Tensor::new(&[next], &Device::Cpu)
                .and_then(|t| t.unsqueeze(0))
                .expect("id");
            let logits = m.forward(&input, prompt.len() + i - 1).expect("a token");
            next = argmax(&logits);
        }
        Timing {
            prompt: prompt_s,
            decode: start.elapsed().as_secs_f64(),
        }
    });
    show("candle quantized_llama on the file", t, file.len());
    println!("oai's greedy tokens: {}", tokens.join(","));
}

/// The prompt and `new - 1` further tokens of `g`, best of `rounds`.
fn timed<W: Weights>(g: &LlamaGenerator<W>, prompt: &[u32], new: usize, rounds: usize) -> Timing {
    best(rounds, || {
        let mut generation = g
            .start(prompt, new, Sampling::Greedy, &[])
            .expect("a valid request");
        let start = Instant::now();
        generation.next_token(g).expect("the prompt runs");
        let prompt_s = start.elapsed().as_secs_f64();
        let start = Instant::now();
        while generation.next_token(g).expect("a token").is_some() {}
        Timing {
            prompt: prompt_s,
            decode: start.elapsed().as_secs_f64(),
        }
    })
}

fn argmax(logits: &Tensor) -> u32 {
    let v: Vec<f32> = logits
        .flatten_all()
        .and_then(|t| t.to_vec1())
        .expect("logits");
    v.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &x)| match x > bv {
            true => (i, x),
            false => (bi, bv),
        })
        .0 as u32
}
