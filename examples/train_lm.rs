//! A byte-level transformer language model trained on real English text (CPython's pydoc
//! topics), every step logged; then LoRA adapters fine-tuned on texts the base never saw, on
//! the base pinned by its checkpoint CID, logged and replayable exactly like a full run.
//!
//! Run: `scripts/fetch_training_data.sh && cargo run --release -p oai-examples --example
//! train_lm [DATA_DIR] [STORE_DIR]` (defaults: `target/data`, `target/oai-lm`).

use anyhow::{Context, Result};
use oai::core::Cid;
use oai::data::dataset::Version;
use oai::data::FsStore;
use oai::train::candle::Device;
use oai::train::{
    corpus, replay_step, JobSpec, ModelSpec, OptimizerSpec, Schedule, Trainer, TrainingLog,
    TransformerSpec,
};
use std::time::Instant;

const CONTEXT: usize = 64;

fn base_model() -> TransformerSpec {
    TransformerSpec {
        vocab: 128,
        context: CONTEXT,
        d_model: 128,
        heads: 4,
        layers: 2,
        d_ff: 512,
        dropout: 0.0,
    }
}

fn adamw(lr: f64, steps: u64) -> (OptimizerSpec, Schedule) {
    (
        OptimizerSpec::AdamW {
            beta1: 0.9,
            beta2: 0.99,
            eps: 1e-8,
            weight_decay: 0.01,
        },
        Schedule::WarmupCosine {
            lr,
            warmup: 20,
            decay_steps: steps,
            min_lr: lr / 10.0,
        },
    )
}

/// Train `spec` to the end; returns the trainer, its log's CID and the log.
async fn train(
    store: &FsStore,
    spec: JobSpec,
    what: &str,
) -> Result<(Trainer<FsStore>, Cid, TrainingLog)> {
    let mut t = Trainer::new(store.clone(), spec, Device::Cpu).await?;
    let start = Instant::now();
    while t.step_index() < t.spec().steps {
        let r = t.step().await?;
        if r.step % 100 == 0 {
            println!("{what} step {:>4}  loss {:.3}", r.step, r.loss);
        }
    }
    let (log, summary) = t.publish().await?;
    println!(
        "{what} {} steps in {:.1} s, log {log}\n{what} root {}",
        summary.steps,
        start.elapsed().as_secs_f64(),
        summary.root
    );
    Ok((t, log, summary))
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let data = args.next().unwrap_or_else(|| "target/data".into());
    let dir = args.next().unwrap_or_else(|| "target/oai-lm".into());
    let text = std::fs::read_to_string(format!("{data}/pydoc_topics.txt")).with_context(|| {
        format!("no {data}/pydoc_topics.txt: run `scripts/fetch_training_data.sh {data}` first")
    })?;
    let _ = std::fs::remove_dir_all(&dir);
    let store = FsStore::open(&dir).await?;

    // The base sees the first 80% of the topics; the adapters the last 20%, minus a held-out tail.
    let bytes: Vec<u8> = text.bytes().filter(u8::is_ascii).collect();
    let cut = bytes.len() * 8 / 10;
    let (base_text, rest) = bytes.split_at(cut);
    let (domain_text, domain_test) = rest.split_at(rest.len() - 20_000);
    let base_data =
        Version::from_records(&store, corpus::byte_windows(base_text, CONTEXT, 61)?).await?;
    let domain_data =
        Version::from_records(&store, corpus::byte_windows(domain_text, CONTEXT, 61)?).await?;
    let test = corpus::byte_windows(domain_test, CONTEXT, CONTEXT)?;
    println!(
        "base data {} records, domain data {} records; unigram entropy {:.3} nats/byte",
        base_data.len(),
        domain_data.len(),
        corpus::unigram_entropy(base_text)
    );

    let steps = 600;
    let (optimizer, schedule) = adamw(3e-3, steps);
    let base_spec = JobSpec {
        dataset: base_data.cid(),
        model: ModelSpec::Transformer(base_model()),
        optimizer,
        schedule,
        batch_size: 16,
        steps,
        checkpoint_every: 200,
        grad_clip: Some(1.0),
        seed: 1,
        kernels: Default::default(),
        compute_class: None,
    };
    let (base, log, summary) = train(&store, base_spec, "base").await?;
    let before = base.evaluate(&test)?;
    println!(
        "base      held-out domain loss {:.3} nats/byte",
        before.loss
    );

    // LoRA on the pinned base: only the adapters train; the base is named by its checkpoint.
    let base_weights = summary.checkpoints.last().expect("final checkpoint").cid;
    let lora_steps = 300;
    let (optimizer, schedule) = adamw(5e-3, lora_steps);
    let lora_spec = JobSpec {
        dataset: domain_data.cid(),
        model: ModelSpec::Lora {
            base: base_model().into(),
            base_weights,
            rank: 8,
            alpha: 16.0,
        },
        optimizer,
        schedule,
        batch_size: 16,
        steps: lora_steps,
        checkpoint_every: 100,
        grad_clip: Some(1.0),
        seed: 2,
        kernels: Default::default(),
        compute_class: None,
    };
    let (lora, lora_log, lora_summary) = train(&store, lora_spec, "lora").await?;
    let after = lora.evaluate(&test)?;
    let adapters: usize = lora.weights().leaves.len();
    println!(
        "lora      held-out domain loss {:.3} -> {:.3} nats/byte ({adapters} adapter tensors on base {base_weights})",
        before.loss, after.loss
    );
    for (name, log, step) in [
        ("base", log, 345),
        ("lora", lora_log, lora_summary.steps - 1),
    ] {
        let t = Instant::now();
        let outcome = replay_step(&log, step, &store).await?;
        println!(
            "replay    {name} step {step}: {} in {:.2} s",
            if outcome.is_match() {
                "match"
            } else {
                "MISMATCH"
            },
            t.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
