//! Integration tests of oai-train: determinism (runs, threads, resume), replay verdicts, the
//! log format, and bad input. Tests on real data (scikit-learn digits, CPython's pydoc topics)
//! read the files named by `OAI_DIGITS` / `OAI_TEXT` (`.ci/run` provides them) and skip
//! without them unless `OAI_REQUIRE_REAL` is set.

use std::ops::ControlFlow;
use std::process::Command;

#[path = "../support/mod.rs"]
mod support;

mod determinism;
mod encodings;
mod gguf;
mod learning;
mod replay;
mod steps;
mod stores;

use oai_core::{ids, Cid, Digest, MerkleTree, Seed};
use oai_data::dataset::{Record, Tensor as RecordTensor, Version};
use oai_data::{BlockStore, MemStore};
use oai_train::log::{self, LogHeader, StepRecord, TrainingLog, VerifiedLog};
use oai_train::{
    corpus, replay_step, replay_step_on, run_names, Checkpoint, Error, Field, JobSpec, Kernels,
    LlamaSpec, ModelSpec, OptimizerSpec, Schedule, StepOutcome, StepReport, Trainer,
    TransformerSpec,
};
use proptest::prelude::*;

const CPU: candle_core::Device = candle_core::Device::Cpu;

/// 256 labelled 16-feature records in 4 classes: a class prototype plus seeded noise.
fn synthetic_records() -> Vec<Record> {
    let mut rng = Seed::from_u64(77).rng();
    (0..256u64)
        .map(|i| {
            let label = i % 4;
            let values: Vec<f32> = (0..16)
                .map(|j| {
                    let proto = if j % 4 == label as usize { 1.0 } else { 0.0 };
                    proto + (rand_unit(&mut rng) - 0.5) * 0.8
                })
                .collect();
            Record::Labeled {
                input: RecordTensor::from_f32(vec![16], &values).unwrap(),
                label,
            }
        })
        .collect()
}

fn rand_unit(rng: &mut impl oai_core::seed::RngCore) -> f32 {
    (rng.next_u32() >> 8) as f32 / (1u32 << 24) as f32
}

/// Text of seeded pseudo-words, cut into byte windows.
fn synthetic_text() -> Vec<u8> {
    use oai_core::seed::RngCore;
    let words = [
        "the ", "data ", "is ", "open ", "and ", "every ", "step ", "logged. ",
    ];
    let mut rng = Seed::from_u64(5).rng();
    (0..600)
        .flat_map(|_| words[(rng.next_u32() % 8) as usize].bytes())
        .collect()
}

fn mlp_spec(dataset: Cid) -> JobSpec {
    JobSpec {
        dataset,
        model: ModelSpec::Mlp {
            input: 16,
            hidden: vec![32, 32],
            classes: 4,
            dropout: 0.1,
        },
        optimizer: OptimizerSpec::adam_w(0.01),
        schedule: Schedule::WarmupCosine {
            lr: 0.01,
            warmup: 3,
            decay_steps: 12,
            min_lr: 0.001,
        },
        batch_size: 32,
        steps: 12,
        checkpoint_every: 4,
        grad_clip: Some(1.0),
        seed: 42,
        kernels: Default::default(),
        compute_class: None,
    }
}

fn tiny_transformer() -> TransformerSpec {
    TransformerSpec {
        vocab: 256,
        context: 16,
        d_model: 32,
        heads: 2,
        layers: 2,
        d_ff: 64,
        dropout: 0.1,
    }
}

fn lm_spec(dataset: Cid) -> JobSpec {
    JobSpec {
        model: ModelSpec::Transformer(tiny_transformer()),
        optimizer: OptimizerSpec::Sgd {
            momentum: 0.9,
            weight_decay: 0.0,
        },
        schedule: Schedule::Constant { lr: 0.05 },
        batch_size: 8,
        steps: 6,
        checkpoint_every: 3,
        ..mlp_spec(dataset)
    }
}

async fn dataset(store: &MemStore, records: Vec<Record>) -> Cid {
    Version::from_records(store, records).await.unwrap().cid()
}

async fn mlp_setup() -> (MemStore, JobSpec) {
    let store = MemStore::new();
    let d = dataset(&store, synthetic_records()).await;
    (store, mlp_spec(d))
}

async fn lm_setup() -> (MemStore, JobSpec) {
    let store = MemStore::new();
    let d = dataset(
        &store,
        corpus::byte_windows(&synthetic_text(), 16, 7).unwrap(),
    )
    .await;
    (store, lm_spec(d))
}

async fn train(store: &MemStore, spec: &JobSpec) -> (Cid, TrainingLog) {
    Trainer::new(store.clone(), spec.clone(), CPU)
        .await
        .unwrap()
        .train_and_publish()
        .await
        .unwrap()
}

// Forging logs, for the tests that attack them.

/// Store `log` as a log summary block.
async fn put_log(store: &MemStore, log: &TrainingLog) -> Cid {
    store
        .put(ids::DAG_CBOR, log::encode(log).unwrap().into())
        .await
        .unwrap()
}

/// The mismatch replay must find at `step` of `log`.
async fn mismatch(log: &Cid, step: u64, store: &MemStore, why: &str) -> oai_train::Mismatch {
    match replay_step(log, step, store).await.unwrap() {
        StepOutcome::Mismatch(m) => m,
        other => panic!("{why}: {other:?}"),
    }
}

/// A dishonest node's log: record `step` changed by `edit`, every later record re-chained (and
/// `weights_before` kept consistent), a new summary with the new root and the checkpoints the
/// records commit.
async fn forge(store: &MemStore, log: &Cid, step: u64, edit: impl FnOnce(&mut StepRecord)) -> Cid {
    let v = VerifiedLog::load(store, log).await.unwrap();
    let mut records = v.records(store, ..).await.unwrap();
    edit(&mut records[step as usize]);
    rechain(store, v.log.header, &v.header, records).await
}

/// Store `records` chained after the header, with a consistent summary: its checkpoints are
/// those the records commit.
async fn rechain(
    store: &MemStore,
    header_cid: Cid,
    header: &LogHeader,
    records: Vec<StepRecord>,
) -> Cid {
    log::store_chain(store, header_cid, header.init, records)
        .await
        .unwrap()
        .0
}
