//! What an auditor holds in memory when a node's data is hostile or large: the growth of the
//! peak RSS (`VmHWM` of `/proc/self/status`, reset through `/proc/self/clear_refs` before each
//! part) over the RSS the part starts with, so that the store (in memory here) does not count,
//! only what the auditor adds.
//!
//! 1. A checkpoint DAG bomb: 40 dag-pb nodes over one 1 KiB leaf, each linking the node below
//!    twice, declare a 1 PiB file. A replay reads a node's checkpoint within what its spec implies
//!    (`Footprint::checkpoint_bytes`): the bomb is refused from its root block.
//! 2. A long log: a small MLP trains `STEPS` steps (default 1,000,000; about 10 minutes on
//!    2 cores), then the log is audited by 20 samples: its whole chain walked and checked
//!    (`VerifiedLog::from_head`, record by record, keeping 32 bytes a step), the sampled steps
//!    replayed from their checkpoints.
//!
//! Run: `cargo run --release -p oai-examples --example bounded_reads [STEPS]`.

use std::time::Instant;

use anyhow::Result;
use oai::core::{ids, Seed};
use oai::data::dataset::Version;
use oai::data::{unixfs, BlockStore, MemStore};
use oai::train::candle::Device;
use oai::train::{Checkpoint, Footprint, JobSpec, ModelSpec, OptimizerSpec, Schedule, Trainer};
use oai::verify::{Strategy, Submission, Verifier};

/// A memory figure of this process from `/proc/self/status` (`VmHWM`, `VmRSS`), bytes.
fn status(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with(field))?.to_string();
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kib| kib * 1024)
}

/// Start measuring: the peak RSS is reset to the RSS now (Linux 4.0+), which is returned.
fn measure_from_here() -> u64 {
    // "5" resets the peak resident set size; without it the figure is the peak since start
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    status("VmRSS:")
}

/// How far the peak RSS rose above `start` since [`measure_from_here`].
fn grown_since(start: u64) -> u64 {
    status("VmHWM:").saturating_sub(start)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

#[tokio::main]
async fn main() -> Result<()> {
    let steps: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    // a process that trains: keep freed heap memory (oai_train::keep_freed_memory)
    oai::train::keep_freed_memory();
    let store = MemStore::new();
    let records = oai::train::corpus::seeded_classes(Seed::from_u64(3), 512, 8, 3);
    let version = Version::from_records(&store, records).await?;
    let spec = JobSpec {
        dataset: version.cid(),
        model: ModelSpec::Mlp {
            input: 8,
            hidden: vec![16],
            classes: 3,
            dropout: 0.0,
        },
        optimizer: OptimizerSpec::adam_w(0.01),
        schedule: Schedule::Constant { lr: 0.01 },
        batch_size: 16,
        steps,
        checkpoint_every: 1_000,
        grad_clip: Some(1.0),
        seed: 1,
        kernels: Default::default(),
        compute_class: None,
    };

    // 1. the bomb
    let mut below = store.put(ids::RAW, vec![7u8; 1024].into()).await?;
    let mut size = 1024u64;
    for _ in 0..40 {
        let node = unixfs::pb::file_node(&[(below, size, size), (below, size, size)]);
        below = store.put(ids::DAG_PB, node.into()).await?;
        size *= 2;
    }
    let limit = Footprint::of(&spec).checkpoint_bytes();
    let start = measure_from_here();
    let t = Instant::now();
    let refused = Checkpoint::get_within(&store, &below, &Device::Cpu, limit).await;
    println!(
        "checkpoint DAG bomb (declares {size} bytes from 41 blocks): refused in {:.2} ms, peak \
         RSS +{:.1} MiB (limit from the spec {limit} bytes): {}",
        t.elapsed().as_secs_f64() * 1e3,
        mib(grown_since(start)),
        match refused {
            Ok(_) => "read (!)".to_string(),
            Err(e) => e.to_string(),
        }
    );

    // 2. a long log
    let t = Instant::now();
    let mut trainer = Trainer::new(store.clone(), spec.clone(), Device::Cpu).await?;
    let (_, log) = trainer.train_and_publish().await?;
    drop(trainer);
    println!(
        "trained {steps} steps in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let start = measure_from_here();
    let t = Instant::now();
    let sub = Submission::for_log(&log, spec.cid()?, version.root(), steps);
    let verdict = Verifier::new(store.clone())
        .verify(&sub, Strategy::Sampling { samples: 20 }, &Seed::from_u64(9))
        .await?;
    let grew = grown_since(start);
    println!(
        "a 20-sample audit of the {steps}-step log: {} in {:.1} s, peak RSS +{:.1} MiB over \
         the {:.0} MiB the process held (the store): {:.1} bytes a step (the chain is walked \
         record by record; 32 bytes a step are kept)",
        if verdict.is_accepted() {
            "accepted"
        } else {
            "rejected"
        },
        t.elapsed().as_secs_f64(),
        mib(grew),
        mib(start),
        grew as f64 / steps.max(1) as f64,
    );
    Ok(())
}
