//! What sampled audits catch and what they cost, measured on real training logs.
//!
//! 1. Detection: a small MLP trains 200 steps (a checkpoint every 10); forged logs are made from
//!    it (ceil(f * 200) steps lie about their loss, at random positions or in one run, the
//!    records re-chained consistently) and audited with the samples the formula says reach 90%;
//!    the rate of rejected logs is printed next to the formula.
//! 2. Cost: the 784-1024-1024-10 MLP of the train bench measures what restoring a checkpoint
//!    costs in training steps; with it, the frontier of (checkpoint interval, samples, compute,
//!    storage) for 99% detection of a node that skips 10% of 10,000 steps.
//!
//! Run: `cargo run --release -p oai-examples --example audit_rates [TRIALS]` (default 100).

use std::time::Instant;

use anyhow::Result;
use oai::core::Seed;
use oai::data::dataset::{Record, Version};
use oai::data::MemStore;
use oai::train::candle::Device;
use oai::train::log::store_chain;
use oai::train::{
    replay_step, JobSpec, ModelSpec, OptimizerSpec, Schedule, Trainer, TrainingLog, VerifiedLog,
};
use oai::verify::sampling::{self, Forgery};
use oai::verify::{Strategy, Submission, Verifier};

#[tokio::main]
async fn main() -> Result<()> {
    let trials: u64 = std::env::args()
        .nth(1)
        .map(|t| t.parse())
        .transpose()?
        .unwrap_or(100);
    detection(trials).await?;
    let load_cost = restore_cost().await?;
    frontier(load_cost);
    Ok(())
}

/// `n` labelled records of `dim` seeded features in `classes` classes.
fn records(n: u64, dim: usize, classes: u64) -> Vec<Record> {
    oai::train::corpus::seeded_classes(Seed::from_u64(3), n, dim, classes)
}

fn mlp(dataset: oai::core::Cid, input: usize, hidden: Vec<usize>, classes: usize) -> JobSpec {
    JobSpec {
        dataset,
        model: ModelSpec::Mlp {
            input,
            hidden,
            classes,
            dropout: 0.1,
        },
        optimizer: OptimizerSpec::adam_w(0.01),
        schedule: Schedule::Constant { lr: 1e-3 },
        batch_size: 16,
        steps: 200,
        checkpoint_every: 10,
        grad_clip: Some(1.0),
        seed: 42,
        kernels: Default::default(),
        compute_class: None,
    }
}

async fn detection(trials: u64) -> Result<()> {
    let store = MemStore::new();
    let version = Version::from_records(&store, records(256, 8, 3)).await?;
    let spec = mlp(version.cid(), 8, vec![16], 3);
    let (n, every) = (spec.steps, spec.checkpoint_every);
    let mut t = Trainer::new(store.clone(), spec.clone(), Device::Cpu).await?;
    let (_, honest) = t.train_and_publish().await?;
    let v = VerifiedLog::from_head(&store, &honest.header, &honest.head).await?;
    let verifier = Verifier::new(store.clone());
    println!("detection: {n} steps, a checkpoint every {every}, {trials} forged logs per row, samples for a 90% target");
    println!("  forgery        f      k   formula  measured");
    for (f, forgery) in [
        (0.01, Forgery::Spread),
        (0.1, Forgery::Spread),
        (0.5, Forgery::Spread),
        (0.01, Forgery::Concentrated),
        (0.1, Forgery::Concentrated),
        (0.5, Forgery::Concentrated),
    ] {
        let k = sampling::samples_needed(n, every, f, 0.9, forgery).expect("f > 0");
        let formula = sampling::detection_probability(n, every, f, k, forgery);
        let mut caught = 0u64;
        for trial in 0..trials {
            let forged = sampling::simulated_forgery(&Seed::from_u64(trial), n, f, forgery);
            let mut records = v.records(&store, ..).await?;
            for &s in &forged {
                records[s as usize].loss += 1.0;
            }
            let (_, log) = store_chain(&store, v.log.header, v.header.init, records).await?;
            let sub = submission(&log, &spec, &version)?;
            let verdict = verifier
                .verify(
                    &sub,
                    Strategy::Sampling { samples: k },
                    &Seed::from_u64(trial),
                )
                .await?;
            if let Some(fault) = verdict.fault() {
                let step = fault.step().expect("a forged loss names its step");
                assert!(forged.contains(&step), "step {step} was not forged");
                caught += 1;
            }
        }
        println!(
            "  {:<12} {:>5.2} {:>5} {:>9.3} {:>9.3}",
            format!("{forgery:?}").to_lowercase(),
            f,
            k,
            formula,
            caught as f64 / trials as f64
        );
    }
    Ok(())
}

fn submission(log: &TrainingLog, spec: &JobSpec, version: &Version) -> Result<Submission> {
    Ok(Submission::for_log(
        log,
        spec.cid()?,
        version.root(),
        spec.steps,
    ))
}

/// What a replay right after a checkpoint costs beyond the step itself, in training steps.
async fn restore_cost() -> Result<f64> {
    let store = MemStore::new();
    let version = Version::from_records(&store, records(1024, 784, 10)).await?;
    let spec = JobSpec {
        steps: 12,
        checkpoint_every: 6,
        batch_size: 64,
        ..mlp(version.cid(), 784, vec![1024, 1024], 10)
    };
    let mut t = Trainer::new(store.clone(), spec.clone(), Device::Cpu).await?;
    t.step().await?;
    let start = Instant::now();
    for _ in 1..spec.steps {
        t.step().await?;
    }
    let step = start.elapsed().as_secs_f64() / (spec.steps - 1) as f64;
    let (log, _) = t.publish().await?;
    let mut best = f64::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        assert!(replay_step(&log, 6, &store).await?.is_match());
        best = best.min(start.elapsed().as_secs_f64());
    }
    let cost = best / step - 1.0;
    println!();
    println!(
        "restore: MLP 784-1024-1024-10, batch 64: a step {:.1} ms; replaying the step right after a \
         checkpoint {:.1} ms (best of 3): a restore costs {cost:.1} steps",
        step * 1e3,
        best * 1e3
    );
    Ok(cost)
}

fn frontier(load_cost: f64) {
    let (n, f, target) = (10_000, 0.1, 0.99);
    let intervals = [1, 2, 5, 10, 20, 50, 100, 250, 1_000];
    println!();
    println!(
        "frontier: {n} steps, a node skipping {:.0}% of them (spread), {:.0}% detection, a restore = {load_cost:.1} steps",
        f * 100.0,
        target * 100.0
    );
    println!("  every K  samples k  replayed steps  compute (steps)  of training  checkpoints");
    for c in sampling::frontier(n, f, target, Forgery::Spread, &intervals, load_cost) {
        println!(
            "  {:>7}  {:>9}  {:>14.1}  {:>15.1}  {:>10.2}%  {:>11}",
            c.every,
            c.samples,
            c.replayed_steps,
            c.compute_steps,
            c.compute_fraction * 100.0,
            c.checkpoints
        );
    }
    let best = sampling::choose(
        n,
        f,
        target,
        Forgery::Spread,
        &intervals,
        load_cost,
        u64::MAX,
    )
    .expect("a row");
    println!(
        "  chosen: a checkpoint every {} steps, {} samples: {:.2}% of the training's compute, {} checkpoints",
        best.every,
        best.samples,
        best.compute_fraction * 100.0,
        best.checkpoints
    );
    for f in [0.01, 0.5] {
        let rows = sampling::frontier(n, f, target, Forgery::Spread, &intervals, load_cost);
        let cheapest = rows
            .iter()
            .min_by(|a, b| a.compute_steps.total_cmp(&b.compute_steps))
            .expect("rows");
        println!(
            "  f = {:.0}%: cheapest K = {}, k = {}, {:.2}% of the training",
            f * 100.0,
            cheapest.every,
            cheapest.samples,
            cheapest.compute_fraction * 100.0
        );
    }
}
