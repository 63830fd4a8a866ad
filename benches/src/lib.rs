//! Criterion benches of oai; see `benches/`. This library holds what several benches share:
//! the runtime they block on, the training workloads they measure, and the rows of the bench
//! report ([`report`]).

pub mod report;

use oai_core::seed::RngCore;
use oai_core::{Cid, Seed};
use oai_data::dataset::{Record, Tensor, Version};
use oai_data::MemStore;
use oai_train::candle::Device;
use oai_train::{
    corpus, JobSpec, Kernels, ModelSpec, OptimizerSpec, Schedule, StepTimes, Trainer,
    TransformerSpec,
};
use std::time::{Duration, Instant};

/// A current-thread tokio runtime for the benches' async calls.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
}

/// The mean time of `n` steps of `t`.
pub fn time_steps(rt: &tokio::runtime::Runtime, t: &mut Trainer<MemStore>, n: u64) -> Duration {
    time_phases(rt, t, n).0
}

/// The mean time of `n` steps of `t`, and of each phase of a step.
pub fn time_phases(
    rt: &tokio::runtime::Runtime,
    t: &mut Trainer<MemStore>,
    n: u64,
) -> (Duration, StepTimes) {
    let mut phases = StepTimes::default();
    let start = Instant::now();
    for _ in 0..n {
        phases += rt.block_on(t.step()).expect("step").times;
    }
    (start.elapsed() / n as u32, phases / n as u32)
}

/// A trainer for `w` with `kernels`, logging on or off, warmed up by two steps.
pub fn trainer(
    rt: &tokio::runtime::Runtime,
    w: &Workload,
    kernels: Kernels,
    logging: bool,
) -> Trainer<MemStore> {
    let spec = JobSpec {
        kernels,
        ..w.spec.clone()
    };
    let mut t = rt
        .block_on(Trainer::new(w.store.clone(), spec, Device::Cpu))
        .expect("trainer");
    if !logging {
        t.disable_logging();
    }
    time_steps(rt, &mut t, 2);
    t
}

/// A training job to measure: its dataset lives in `store`.
pub struct Workload {
    /// A short key (`mlp`, `transformer`), as the baselines in `benches/baselines/` name it.
    pub key: &'static str,
    /// Printed in reports.
    pub name: &'static str,
    /// Holds the dataset `spec` names.
    pub store: MemStore,
    /// Default kernels, checkpoints every 100 steps, a million steps (callers stop earlier).
    pub spec: JobSpec,
}

/// The two training workloads of the train benches: the 784-1024-1024-10 MLP (batch 64) on
/// MNIST-shaped seeded records, and a 2-layer transformer LM (d 128, context 64, batch 16) on
/// seeded text.
pub fn train_workloads(rt: &tokio::runtime::Runtime) -> Vec<Workload> {
    let mlp_store = MemStore::new();
    let mlp_data = rt
        .block_on(Version::from_records(&mlp_store, mnist_like(2048)))
        .expect("dataset")
        .cid();
    let lm_store = MemStore::new();
    let windows = corpus::byte_windows(&words(40_000), 64, 61).expect("windows");
    let lm_data = rt
        .block_on(Version::from_records(&lm_store, windows))
        .expect("dataset")
        .cid();
    vec![
        Workload {
            key: "mlp",
            name: "MLP 784-1024-1024-10, batch 64",
            store: mlp_store,
            spec: spec(
                mlp_data,
                ModelSpec::Mlp {
                    input: 784,
                    hidden: vec![1024, 1024],
                    classes: 10,
                    dropout: 0.1,
                },
                64,
            ),
        },
        Workload {
            key: "transformer",
            name: "transformer d128 L2 ctx64, batch 16",
            store: lm_store,
            spec: spec(
                lm_data,
                ModelSpec::Transformer(TransformerSpec {
                    vocab: 256,
                    context: 64,
                    d_model: 128,
                    heads: 4,
                    layers: 2,
                    d_ff: 512,
                    dropout: 0.1,
                }),
                16,
            ),
        },
    ]
}

/// MNIST-shaped records: 784 features, 10 classes, seeded values.
fn mnist_like(n: u64) -> Vec<Record> {
    let mut rng = Seed::from_u64(1).rng();
    (0..n)
        .map(|i| {
            let values: Vec<f32> = (0..784)
                .map(|_| (rng.next_u32() >> 8) as f32 / (1u32 << 24) as f32)
                .collect();
            Record::Labeled {
                input: Tensor::from_f32(vec![784], &values).expect("tensor"),
                label: i % 10,
            }
        })
        .collect()
}

/// `n` seeded words of a seven-word vocabulary, as bytes.
fn words(n: usize) -> Vec<u8> {
    let w = [
        "open ",
        "data ",
        "and ",
        "logged ",
        "training ",
        "for ",
        "all. ",
    ];
    let mut rng = Seed::from_u64(2).rng();
    (0..n)
        .flat_map(|_| w[(rng.next_u32() % 7) as usize].bytes())
        .collect()
}

fn spec(dataset: Cid, model: ModelSpec, batch_size: u64) -> JobSpec {
    JobSpec {
        dataset,
        model,
        optimizer: OptimizerSpec::adam_w(0.01),
        schedule: Schedule::Constant { lr: 1e-3 },
        batch_size,
        steps: 1_000_000,
        checkpoint_every: 100,
        grad_clip: Some(1.0),
        seed: 3,
        kernels: Default::default(),
        compute_class: None,
    }
}
