//! What an auditor holds in memory when a node's data is hostile or large, measured as peak RSS
//! (`VmHWM` of `/proc/self/status`), the store on disk so that only the auditor's own memory
//! counts.
//!
//! 1. A checkpoint DAG bomb: 40 dag-pb nodes over one 1 KiB leaf, each linking the node below
//!    twice, declare a 1 PiB file. A replay reads a node's checkpoint within what its spec implies
//!    (`Footprint::checkpoint_bytes`): the bomb is refused from its root block.
//! 2. A long log: a small MLP trains `STEPS` steps (default 20,000), then the log is loaded and
//!    checked whole (`VerifiedLog::from_head`, what every audit does first) and audited by 20
//!    samples: the memory a step of log costs an auditor today, and what that makes of a
//!    1,000,000-step log.
//!
//! Run: `cargo run --release -p oai-examples --example bounded_reads [STEPS]`.

use std::time::Instant;

use anyhow::Result;
use oai::core::{ids, Seed};
use oai::data::dataset::Version;
use oai::data::{unixfs, BlockStore, FsStore};
use oai::train::candle::Device;
use oai::train::{Checkpoint, Footprint, JobSpec, ModelSpec, OptimizerSpec, Schedule, Trainer};
use oai::verify::{Strategy, Submission, Verifier};

/// Peak resident memory of this process so far, bytes (Linux).
fn peak_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?.to_string();
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kib| kib * 1024)
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
        .unwrap_or(20_000);
    let dir = tempfile_dir()?;
    let store = FsStore::open(&dir).await?;
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
    let before = peak_rss();
    let t = Instant::now();
    let refused = Checkpoint::get_within(&store, &below, &Device::Cpu, limit).await;
    println!(
        "checkpoint DAG bomb (declares {size} bytes from 41 blocks): refused in {:.2} ms, peak \
         RSS +{:.1} MiB (limit from the spec {limit} bytes): {}",
        t.elapsed().as_secs_f64() * 1e3,
        mib(peak_rss().saturating_sub(before)),
        match refused {
            Ok(_) => "read (!)".to_string(),
            Err(e) => e.to_string(),
        }
    );

    // 2. a long log
    let t = Instant::now();
    let mut trainer = Trainer::new(store.clone(), spec.clone(), Device::Cpu).await?;
    let (_, log) = trainer.run().await?;
    drop(trainer);
    println!(
        "trained {steps} steps in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let before = peak_rss();
    let t = Instant::now();
    let sub = Submission::for_log(&log, spec.cid()?, version.root(), steps);
    let verdict = Verifier::new(store.clone())
        .verify(&sub, Strategy::Sampling { samples: 20 }, &Seed::from_u64(9))
        .await?;
    let grew = peak_rss().saturating_sub(before);
    println!(
        "a 20-sample audit of the {steps}-step log: {} in {:.1} s, peak RSS +{:.1} MiB: {:.0} \
         bytes a step, about {:.0} MiB for 1,000,000 steps (the whole log is held: records, \
         leaves)",
        if verdict.is_accepted() {
            "accepted"
        } else {
            "rejected"
        },
        t.elapsed().as_secs_f64(),
        mib(grew),
        grew as f64 / steps as f64,
        mib(grew) * 1_000_000.0 / steps as f64
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// A fresh directory under the system's temporary directory.
fn tempfile_dir() -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("oai-bounded-reads-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
