//! Verifiable training on real data: scikit-learn's handwritten digits (1,797 8x8 images).
//!
//! Imports the images as a content-addressed dataset, trains an MLP with every batch step
//! logged, checks test accuracy, then acts as a validator: replays steps chosen at random from
//! the published log and proves one step against the log root.
//!
//! Run: `scripts/fetch_training_data.sh && cargo run --release -p oai-examples --example
//! train_digits [DATA_DIR] [STORE_DIR]` (defaults: `target/data`, `target/oai-digits`).

use anyhow::{Context, Result};
use oai::core::{seed::uniform_below, Seed};
use oai::data::dataset::{Record, Repo, Version};
use oai::data::FsStore;
use oai::train::candle::Device;
use oai::train::{
    corpus, replay_step, JobSpec, ModelSpec, OptimizerSpec, Schedule, Trainer, VerifiedLog,
};
use std::time::Instant;

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let data = args.next().unwrap_or_else(|| "target/data".into());
    let dir = args.next().unwrap_or_else(|| "target/oai-digits".into());
    let csv = std::fs::read_to_string(format!("{data}/digits.csv")).with_context(|| {
        format!("no {data}/digits.csv: run `scripts/fetch_training_data.sh {data}` first")
    })?;
    let _ = std::fs::remove_dir_all(&dir);
    let store = FsStore::open(&dir).await?;
    let repo = Repo::new(store.clone(), store.clone());

    // 1. Data: every fifth image is held out for testing.
    let records = corpus::labeled_from_csv(&csv, 1.0 / 16.0)?;
    let (test, train): (Vec<(usize, Record)>, Vec<_>) = records
        .into_iter()
        .enumerate()
        .partition(|(i, _)| i % 5 == 0);
    let test: Vec<Record> = test.into_iter().map(|(_, r)| r).collect();
    let train = Version::from_records(&store, train.into_iter().map(|(_, r)| r)).await?;
    repo.set_head("digits-train", None, &train).await?;
    println!(
        "dataset   {} ({} training images, {} held out)",
        train.cid(),
        train.len(),
        test.len()
    );

    // 2. The job: everything that determines the run, stored by CID.
    let spec = JobSpec {
        dataset: train.cid(),
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
        grad_clip: Some(1.0),
        seed: 2026,
        kernels: Default::default(),
        compute_class: None,
    };
    println!("spec      {}", spec.cid()?);

    // 3. Train with the full log.
    let mut trainer = Trainer::new(store.clone(), spec, Device::Cpu).await?;
    println!("compute   {}", trainer.env().class);
    let t = Instant::now();
    while trainer.step_index() < trainer.spec().steps {
        let r = trainer.step().await?;
        if r.step % 100 == 0 {
            println!("step {:>4}  loss {:.4}  lr {:.2e}", r.step, r.loss, r.lr);
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let (log, summary) = trainer.publish().await?;
    let eval = trainer.evaluate(&test)?;
    println!(
        "trained   {} steps in {secs:.1} s ({:.0} steps/s); test accuracy {:.2}%",
        summary.steps,
        summary.steps as f64 / secs,
        eval.accuracy * 100.0
    );
    println!("log       {log}\nroot      {}", summary.root);

    // 4. A validator replays steps it picks with its own randomness.
    let mut rng = Seed::from_u64(7).rng();
    for _ in 0..3 {
        let step = uniform_below(&mut rng, summary.steps);
        let t = Instant::now();
        let outcome = replay_step(&log, step, &store).await?;
        println!(
            "replay    step {step:>3}: {} ({:.0} ms from the checkpoint at step {})",
            if outcome.is_match() {
                "match"
            } else {
                "MISMATCH"
            },
            t.elapsed().as_secs_f64() * 1e3,
            step - step % 200
        );
    }

    // 5. One step proven against the published root.
    let proof = VerifiedLog::load(&store, &log)
        .await?
        .prove(&store, 123)
        .await?;
    println!(
        "proof     step 123 (loss {:.4}) in root: {} ({} sibling hashes)",
        proof.record.loss,
        proof.verify(&summary.root),
        proof.proof.siblings.len()
    );
    Ok(())
}
