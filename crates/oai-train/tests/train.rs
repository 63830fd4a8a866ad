//! Integration tests of oai-train: determinism (runs, threads, resume), replay verdicts, the
//! log format, and bad input. Tests on real data (scikit-learn digits, CPython's pydoc topics)
//! read the files named by `OAI_DIGITS` / `OAI_TEXT` (`.ci/run` provides them) and skip
//! without them unless `OAI_REQUIRE_REAL` is set.

use std::ops::ControlFlow;
use std::process::Command;

mod support;

use oai_core::{ids, Cid, Digest, MerkleTree, Seed};
use oai_data::dataset::{Record, Tensor as RecordTensor, Version};
use oai_data::{BlockStore, MemStore};
use oai_train::log::{self, LogHeader, StepRecord, TrainingLog, VerifiedLog};
use oai_train::{
    corpus, replay_step, replay_step_on, run_names, Checkpoint, Error, Field, JobSpec, Kernels,
    ModelSpec, OptimizerSpec, Schedule, StepOutcome, StepReport, Trainer, TransformerSpec,
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

/// Native kernels on CUDA device 0 (feature `cuda`): the class names the GPU, a log replays bit
/// for bit on the GPU that wrote it, and the CPU refuses to judge it. Skips with a message
/// where there is no GPU (always in CI).
#[tokio::test]
async fn a_cuda_log_replays_on_its_gpu_and_the_cpu_refuses_it() {
    let gpu = match candle_core::Device::new_cuda(0) {
        Ok(gpu) => gpu,
        Err(e) => {
            eprintln!("skipped: no CUDA device ({e})");
            return;
        }
    };
    for (store, spec) in [mlp_setup().await, lm_setup().await] {
        let spec = JobSpec {
            kernels: Kernels::Native,
            steps: 4,
            ..spec
        };
        let mut trainer = Trainer::new(store.clone(), spec, gpu.clone())
            .await
            .unwrap();
        assert!(
            trainer.env().class.starts_with("cuda/"),
            "{}",
            trainer.env().class
        );
        let (log, _) = trainer.train_and_publish().await.unwrap();
        let out = replay_step_on(&log, 3, &store, gpu.clone()).await.unwrap();
        assert!(out.is_match(), "{out:?}");
        assert!(matches!(
            replay_step(&log, 3, &store).await,
            Err(Error::IncompatibleCompute { .. })
        ));
    }
}

#[tokio::test]
async fn two_runs_give_identical_logs_and_checkpoints() {
    for (store, spec) in [mlp_setup().await, lm_setup().await] {
        let (a, log_a) = train(&store, &spec).await;
        let other = MemStore::new();
        // Another node with only the dataset (moved as a CAR file) trains the same spec.
        let mut car = Vec::new();
        oai_data::car::export(&store, &spec.dataset, &mut car)
            .await
            .unwrap();
        oai_data::car::import(&other, &car[..]).await.unwrap();
        let (b, log_b) = train(&other, &spec).await;
        assert_eq!(a, b, "log CIDs differ between two runs");
        assert_eq!(log_a, log_b);
        assert_eq!(log_a.steps, spec.steps);
        // every K steps; the initial state is not listed (it follows from the spec)
        let want: Vec<u64> = (1..=spec.steps)
            .filter(|s| s % spec.checkpoint_every == 0)
            .collect();
        let got: Vec<u64> = log_a.checkpoints.iter().map(|c| c.step).collect();
        assert_eq!(got, want);
        let v = VerifiedLog::load(&store, &a).await.unwrap();
        assert!(v
            .records(&store, ..)
            .await
            .unwrap()
            .windows(2)
            .all(|w| w[0].weights_after != w[1].weights_after));
        for s in 0..spec.steps {
            let p = v.prove(&store, s).await.unwrap();
            assert!(p.verify(&log_a.root));
            assert!(!p.verify(&Digest::of(b"other root")));
        }
    }
}

#[tokio::test]
async fn a_validator_replays_from_the_logs_car_alone() {
    let (node, spec) = lm_setup().await;
    let (log, summary) = train(&node, &spec).await;
    // The log links its header, spec, dataset, records and checkpoints: one CAR carries all.
    let mut car = Vec::new();
    let blocks = oai_data::car::export(&node, &log, &mut car).await.unwrap();
    let validator = MemStore::new();
    oai_data::car::import(&validator, &car[..]).await.unwrap();
    assert_eq!(validator.list().await.unwrap().len() as u64, blocks);
    let v = VerifiedLog::load(&validator, &log).await.unwrap();
    assert_eq!(v.log, summary);
    assert!(replay_step(&log, spec.steps - 1, &validator)
        .await
        .unwrap()
        .is_match());
}

#[tokio::test]
async fn seed_changes_everything() {
    let (store, spec) = mlp_setup().await;
    let (_, a) = train(&store, &spec).await;
    let (_, b) = train(&store, &JobSpec { seed: 43, ..spec }).await;
    assert_ne!(a.root, b.root);
}

/// Run by `thread_count_does_not_change_bits` in a child process with `RAYON_NUM_THREADS` set.
#[tokio::test]
#[ignore = "helper: run in a child process by thread_count_does_not_change_bits"]
async fn child_prints_log_roots() {
    for (name, (store, spec)) in [("mlp", mlp_setup().await), ("lm", lm_setup().await)] {
        let (_, log) = train(&store, &spec).await;
        println!("ROOT {name} {}", log.root);
    }
}

fn child_roots(threads: &str) -> Vec<String> {
    let roots = support::child_lines(
        &[],
        "child_prints_log_roots",
        &[("RAYON_NUM_THREADS", threads)],
        "ROOT ",
    );
    assert_eq!(roots.len(), 2, "child printed {roots:?}");
    roots
}

#[tokio::test]
async fn thread_count_does_not_change_bits() {
    let one = child_roots("1");
    let two = child_roots("2");
    assert_eq!(one, two);
    let (store, spec) = mlp_setup().await;
    let (_, log) = train(&store, &spec).await;
    assert_eq!(one[0], format!("mlp {}", log.root));
}

#[tokio::test]
async fn stop_and_resume_matches_a_straight_run() {
    for (store, spec) in [mlp_setup().await, lm_setup().await] {
        let (_, straight) = train(&store, &spec).await;
        let mut t = Trainer::new(store.clone(), spec.clone(), CPU)
            .await
            .unwrap();
        for _ in 0..spec.steps / 2 + 1 {
            t.step().await.unwrap();
        }
        let (stopped, stopped_log) = t.publish().await.unwrap();
        drop(t);
        let mut resumed = Trainer::resume(store.clone(), &stopped, CPU).await.unwrap();
        let (_, done) = resumed.train_and_publish().await.unwrap();
        assert_eq!(done.root, straight.root);
        assert_eq!(done.head, straight.head);

        // A stop between the spec's checkpoints leaves a resume point no record commits;
        // without it, resume starts from the last committed checkpoint and re-executes the
        // logged steps in between, which must agree with them.
        assert!(!spec.checkpoint_due(stopped_log.steps));
        let behind = TrainingLog {
            checkpoints: stopped_log.checkpoints[..stopped_log.checkpoints.len() - 1].to_vec(),
            ..stopped_log
        };
        let behind = put_log(&store, &behind).await;
        let mut again = Trainer::resume(store.clone(), &behind, CPU).await.unwrap();
        assert_eq!(again.step_index(), spec.steps / 2 + 1);
        assert_eq!(
            again.train_and_publish().await.unwrap().1.root,
            straight.root
        );
        // Stepping past the spec is refused.
        assert!(matches!(
            again.step().await,
            Err(Error::StepOutOfRange { .. })
        ));
    }
}

#[tokio::test]
async fn train_stops_where_asked_and_a_named_run_resolves_to_what_it_published() {
    let (store, spec) = mlp_setup().await;
    let (_, straight) = train(&store, &spec).await;
    let mut t = Trainer::new(store.clone(), spec.clone(), CPU)
        .await
        .unwrap();
    let mut seen = Vec::new();
    let trained = t
        .train(Some(3), |r| {
            seen.push(r.step);
            ControlFlow::Continue(())
        })
        .await
        .unwrap();
    assert_eq!((trained.steps, trained.skipped), (3, 0));
    assert_eq!(seen, [0, 1, 2]);
    // The callback stops training after the step it was called with.
    let trained = t
        .train(None, |r| {
            seen.push(r.step);
            ControlFlow::Break(())
        })
        .await
        .unwrap();
    assert_eq!((trained.steps, t.step_index()), (1, 4));
    // Asking for more steps than the spec has left stops at its end.
    let trained = t
        .train(Some(u64::MAX), |_| ControlFlow::Continue(()))
        .await
        .unwrap();
    assert_eq!(trained.steps, spec.steps - 4);
    assert_eq!(
        t.train(None, |_| ControlFlow::Continue(()))
            .await
            .unwrap()
            .steps,
        0
    );
    let (cid, log) = t.publish_as(&store, "digits").await.unwrap();
    assert_eq!(log.root, straight.root);
    assert_eq!(run_names::resolve(&store, "digits").await.unwrap(), cid);
}

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

#[tokio::test]
async fn replay_matches_honest_steps_and_names_what_a_cheat_changed() {
    let (store, spec) = lm_setup().await;
    let (log, _) = train(&store, &spec).await;
    for s in 0..spec.steps {
        let out = replay_step(&log, s, &store).await.unwrap();
        assert!(out.is_match(), "step {s}: {out:?}");
    }
    assert!(matches!(
        replay_step(&log, spec.steps, &store).await,
        Err(Error::StepOutOfRange { .. })
    ));

    let names = VerifiedLog::load(&store, &log).await.unwrap().header.params;
    let cheat = forge(&store, &log, 4, |r| r.tensors[5] = Digest::of(b"made up")).await;
    let m = mismatch(&cheat, 4, &store, "a forged tensor must not match").await;
    assert_eq!((m.step, m.field), (4, Field::Weights));
    assert_eq!(m.tensor.as_deref(), Some(names[5].as_str()));
    // Earlier steps of the forged log are still honest.
    assert!(replay_step(&cheat, 3, &store).await.unwrap().is_match());

    let cheat = forge(&store, &log, 1, |r| r.loss *= 0.5).await;
    let m = mismatch(&cheat, 1, &store, "a forged loss must not match").await;
    assert_eq!((m.step, m.field, m.tensor), (1, Field::Loss, None));

    let cheat = forge(&store, &log, 2, |r| r.batch.swap(0, 1)).await;
    let m = mismatch(&cheat, 2, &store, "a forged batch must not match").await;
    assert_eq!(m.field, Field::Batch);

    // Asking for step 5 replays from the checkpoint at 3 and finds the forged step 4 first.
    let cheat = forge(&store, &log, 4, |r| r.lr = 1.0).await;
    let m = mismatch(&cheat, 5, &store, "a forged learning rate must not match").await;
    assert_eq!((m.step, m.field), (4, Field::LearningRate));
}

#[tokio::test]
async fn broken_logs_are_typed_errors() {
    let (store, spec) = mlp_setup().await;
    let (log, summary) = train(&store, &spec).await;
    let v = VerifiedLog::load(&store, &log).await.unwrap();

    let longer = put_log(
        &store,
        &TrainingLog {
            steps: summary.steps + 1,
            ..summary.clone()
        },
    )
    .await;
    let root = put_log(
        &store,
        &TrainingLog {
            root: Digest::of(b"x"),
            ..summary.clone()
        },
    )
    .await;
    let no_ckpt = put_log(
        &store,
        &TrainingLog {
            checkpoints: vec![],
            ..summary.clone()
        },
    )
    .await;
    for bad in [longer, root, no_ckpt] {
        assert!(
            matches!(
                replay_step(&bad, 0, &store).await,
                Err(Error::BrokenLog { .. })
            ),
            "{bad}"
        );
        assert!(matches!(
            Trainer::resume(store.clone(), &bad, CPU).await,
            Err(Error::BrokenLog { .. })
        ));
    }

    // A record whose weights_before does not follow its predecessor: stored as is, not rechained.
    let mut records = v.records(&store, ..).await.unwrap();
    let mut r = records[3].clone();
    r.weights_before = Digest::of(b"elsewhere");
    records[3] = r;
    let mut prev = v.log.header;
    let mut leaves = Vec::new();
    for r in &mut records {
        r.prev = prev;
        prev = store
            .put(ids::DAG_CBOR, log::encode(r).unwrap().into())
            .await
            .unwrap();
        leaves.push(ids::digest_of(&prev).unwrap());
    }
    let gap = put_log(
        &store,
        &TrainingLog {
            head: prev,
            root: MerkleTree::new(&leaves).root(),
            ..summary.clone()
        },
    )
    .await;
    let Err(Error::BrokenLog { step, .. }) = VerifiedLog::load(&store, &gap).await else {
        panic!("a broken commitment chain must not verify")
    };
    assert_eq!(step, 3);

    // Not a log at all; a non-canonical encoding of a real one.
    let junk = store.put(ids::DAG_CBOR, vec![0xa0].into()).await.unwrap();
    assert!(matches!(
        VerifiedLog::load(&store, &junk).await,
        Err(Error::Malformed { .. })
    ));
}

#[tokio::test]
async fn tampered_or_missing_checkpoints_are_refused() {
    let (store, spec) = mlp_setup().await;
    let (log, summary) = train(&store, &spec).await;
    let v = VerifiedLog::load(&store, &log).await.unwrap();
    // The step-4 checkpoint of another run (another seed).
    let (_, other) = train(
        &store,
        &JobSpec {
            seed: 7,
            ..spec.clone()
        },
    )
    .await;
    // A summary that lists a checkpoint the records do not commit is not this log.
    let mut checkpoints = summary.checkpoints.clone();
    checkpoints[0] = other.checkpoints[0];
    let listed = put_log(
        &store,
        &TrainingLog {
            checkpoints,
            ..summary.clone()
        },
    )
    .await;
    assert!(matches!(
        replay_step(&listed, 5, &store).await,
        Err(Error::BrokenLog { step: 4, .. })
    ));
    // Record 3 (whose state is step 4) committing another checkpoint instead: replaying a later
    // step from it is refused (its weights are not the log's), and replaying step 3 finds
    // that the step does not leave that state.
    let committing = |cid: Cid| forge(&store, &log, 3, move |r| r.checkpoint = Some(cid));
    let swapped = committing(other.checkpoints[0].cid).await;
    assert!(matches!(
        replay_step(&swapped, 5, &store).await,
        Err(Error::CheckpointMismatch(m)) if m.step == 4
    ));
    let m = mismatch(&swapped, 3, &store, "another run's checkpoint").await;
    assert_eq!((m.step, m.field), (3, Field::Checkpoint));
    assert_eq!(m.tensor.as_deref(), Some(v.header.params[0].as_str()));
    // A checkpoint of step 8 committed as the state after step 3.
    let relabelled = committing(summary.checkpoints[1].cid).await;
    assert!(matches!(
        replay_step(&relabelled, 5, &store).await,
        Err(Error::Malformed { .. })
    ));
    // A checkpoint file that is not a safetensors file.
    let junk = oai_data::unixfs::import_bytes(&store, b"not a checkpoint", Default::default())
        .await
        .unwrap()
        .root;
    let garbage = committing(junk).await;
    assert!(matches!(
        replay_step(&garbage, 5, &store).await,
        Err(Error::Malformed { .. })
    ));
    // A missing block.
    let copy = MemStore::new();
    for cid in store.list().await.unwrap() {
        if cid != summary.checkpoints[1].cid {
            copy.put_block(
                oai_data::store::Block::verified(cid, store.get(&cid).await.unwrap()).unwrap(),
            )
            .await
            .unwrap();
        }
    }
    assert!(matches!(
        replay_step(&log, 9, &copy).await,
        Err(Error::Data(oai_data::Error::NotFound(_)))
    ));
    // The honest log still replays: nothing was overwritten.
    assert!(replay_step(&log, 9, &store).await.unwrap().is_match());
}

/// The state a replay starts from is committed: forged optimiser moments in a checkpoint
/// (with the records re-hashed to commit it), initial weights that are not the spec seed's,
/// a log longer than its spec, and a summary claiming a huge step count are each caught.
#[tokio::test]
async fn what_a_replay_starts_from_is_committed_and_checked() {
    let (store, spec) = mlp_setup().await;
    let (log, summary) = train(&store, &spec).await;
    let v = VerifiedLog::load(&store, &log).await.unwrap();

    // Forged Adam moments at the step-8 checkpoint, weights untouched, committed by record 7.
    let honest = summary.checkpoints[1];
    assert_eq!(honest.step, 8);
    let mut ck = Checkpoint::get(&store, &honest.cid, &CPU).await.unwrap();
    let slot = ck.optimizer.keys().next().unwrap().clone();
    ck.optimizer
        .insert(slot.clone(), (&ck.optimizer[&slot] * 3.0).unwrap());
    let forged = ck.put(&store).await.unwrap();
    let cheat = forge(&store, &log, 7, |r| r.checkpoint = Some(forged)).await;
    // Weights agree, so replays starting from the forged checkpoint would run; the step that
    // produced it does not leave those moments.
    let m = mismatch(&cheat, 7, &store, "forged moments").await;
    assert_eq!((m.step, m.field), (7, Field::Checkpoint));
    assert_eq!(m.tensor, Some(format!("optim/{slot}")));
    assert_eq!(m.logged, forged.to_string());
    assert_eq!(m.replayed, honest.cid.to_string());

    // Initial weights not from the spec's seed: a run of seed 43 whose header names the spec
    // of seed 42. Its records are consistent; its first step's replay refuses the header.
    let other_seed = JobSpec {
        seed: 43,
        ..spec.clone()
    };
    let (other_log, _) = train(&store, &other_seed).await;
    let o = VerifiedLog::load(&store, &other_log).await.unwrap();
    let header = LogHeader {
        spec: v.header.spec,
        ..o.header.clone()
    };
    let header_cid = store
        .put(ids::DAG_CBOR, log::encode(&header).unwrap().into())
        .await
        .unwrap();
    let spoofed = rechain(
        &store,
        header_cid,
        &header,
        o.records(&store, ..).await.unwrap(),
    )
    .await;
    for step in [0, 2] {
        let m = mismatch(&spoofed, step, &store, "initial weights of another seed").await;
        assert_eq!((m.step, m.field), (0, Field::Init));
        assert_eq!(m.logged, o.header.init.to_string());
        assert_eq!(m.replayed, v.header.init.to_string());
    }
    assert!(matches!(
        Trainer::resume(
            store.clone(),
            &rechain(&store, header_cid, &header, vec![]).await,
            CPU
        )
        .await,
        Err(Error::ResumeMismatch { step: 0, .. })
    ));

    // A log extended one step past its spec (the last record repeated, re-chained).
    let mut records = v.records(&store, ..).await.unwrap();
    let mut extra = records.last().unwrap().clone();
    extra.step += 1;
    records.push(extra);
    let longer = rechain(&store, v.log.header, &v.header, records).await;
    let Err(Error::BrokenLog { step, reason }) = VerifiedLog::load(&store, &longer).await else {
        panic!("a log longer than its spec must not verify")
    };
    assert_eq!(step, spec.steps, "{reason}");

    // A summary claiming u64::MAX steps is refused before anything is allocated for them.
    let huge = put_log(
        &store,
        &TrainingLog {
            steps: u64::MAX,
            ..summary.clone()
        },
    )
    .await;
    assert!(matches!(
        VerifiedLog::load(&store, &huge).await,
        Err(Error::BrokenLog { .. })
    ));

    // A log whose checkpoint after step 3 (due every 4 steps) is not committed.
    let lazy = forge(&store, &log, 3, |r| r.checkpoint = None).await;
    let Err(Error::BrokenLog { step, .. }) = VerifiedLog::load(&store, &lazy).await else {
        panic!("a missing checkpoint the spec asks for must not verify")
    };
    assert_eq!(step, 3);
}

/// What a result on chain names (the header and the head) is enough to load and check the
/// whole log; the summary it rebuilds is the published one.
#[tokio::test]
async fn a_log_loads_from_its_header_and_head() {
    let (store, spec) = mlp_setup().await;
    let (log, summary) = train(&store, &spec).await;
    let v = VerifiedLog::from_head(&store, &summary.header, &summary.head)
        .await
        .unwrap();
    assert_eq!(v.log, summary);
    assert_eq!(v.cid, log, "the rebuilt summary has the published CID");
    // A head whose chain outruns the spec: refused after the spec's steps, not followed on.
    let o = VerifiedLog::load(&store, &log).await.unwrap();
    let mut records = o.records(&store, ..).await.unwrap();
    let mut extra = records.last().unwrap().clone();
    extra.step += 1;
    records.push(extra);
    let longer = rechain(&store, o.log.header, &o.header, records).await;
    let head = log::decode::<TrainingLog>("training log", &store.get(&longer).await.unwrap())
        .unwrap()
        .head;
    let err = VerifiedLog::from_head(&store, &summary.header, &head)
        .await
        .err();
    assert!(
        matches!(err, Some(Error::BrokenLog { step, .. }) if step == spec.steps),
        "{err:?}"
    );
    // A head that is not on this header's chain.
    let (_, other) = train(
        &store,
        &JobSpec {
            seed: 9,
            ..spec.clone()
        },
    )
    .await;
    assert!(VerifiedLog::from_head(&store, &summary.header, &other.head)
        .await
        .is_err());
    // A head that is no block of this store.
    let missing = ids::cid_v1(ids::DAG_CBOR, b"nowhere");
    assert!(matches!(
        VerifiedLog::from_head(&store, &summary.header, &missing).await,
        Err(Error::Data(oai_data::Error::NotFound(_)))
    ));
}

/// A verified log keeps one digest a step, not the records: it reads a record back by its CID
/// when asked, so what it gives is what the run logged; a step past the end is
/// `StepOutOfRange`, a record gone from the store since the load is `NotFound`.
#[tokio::test]
async fn a_verified_log_reads_its_records_back_by_cid() {
    let (store, spec) = mlp_setup().await;
    let (log, summary) = train(&store, &spec).await;
    let v = VerifiedLog::load(&store, &log).await.unwrap();
    assert_eq!(v.leaves.len() as u64, summary.steps);
    let records = v.records(&store, ..).await.unwrap();
    assert_eq!(records.len() as u64, summary.steps);
    let last = summary.steps - 1;
    let head = v.record(&store, last).await.unwrap();
    assert_eq!(
        log::encode(&head).unwrap(),
        v.record_bytes(&store, last).await.unwrap()
    );
    assert_eq!(
        ids::cid_v1(ids::DAG_CBOR, &log::encode(&head).unwrap()),
        summary.head
    );
    assert_eq!(v.records(&store, 2..=3).await.unwrap(), records[2..=3]);
    assert_eq!(v.records(&store, last..).await.unwrap(), [head]);
    assert_eq!(
        v.weights_before(&store, last).await.unwrap(),
        records[last as usize - 1].weights_after
    );
    assert!(matches!(
        v.record(&store, summary.steps).await,
        Err(Error::StepOutOfRange { step, steps }) if step == summary.steps && steps == summary.steps
    ));
    assert!(matches!(
        v.prove(&store, u64::MAX).await,
        Err(Error::StepOutOfRange { .. })
    ));
    store.delete(&summary.head).await.unwrap();
    assert!(matches!(
        v.record(&store, last).await,
        Err(Error::Data(oai_data::Error::NotFound(cid))) if cid == summary.head
    ));
}

#[tokio::test]
async fn checkpoints_hold_what_the_log_commits_to() {
    let (store, spec) = mlp_setup().await;
    let (log, summary) = train(&store, &spec).await;
    let v = VerifiedLog::load(&store, &log).await.unwrap();
    for c in &summary.checkpoints {
        let ck = Checkpoint::get(&store, &c.cid, &CPU).await.unwrap();
        assert_eq!(ck.step, c.step);
        let commit =
            oai_train::Commitment::of(ck.params.iter().map(|(k, t)| (k.as_str(), t))).unwrap();
        assert_eq!(commit.root, v.weights_before(&store, c.step).await.unwrap());
        assert_eq!(
            ck.optimizer.len(),
            2 * ck.params.len(),
            "AdamW keeps m and v"
        );
    }
}

/// A spec that diverges still makes a complete log: a step whose loss or gradient norm is not
/// finite is skipped (weights and optimiser state unchanged), logged with null for what was
/// not finite, and replayed, resumed and checked like any other; a log that calls a step
/// skipped while its weights changed, or that gives a skipped step a loss, is caught.
#[tokio::test]
async fn a_non_finite_step_is_skipped_logged_and_replayed() {
    let (store, mut spec) = mlp_setup().await;
    spec.optimizer = OptimizerSpec::Sgd {
        momentum: 0.0,
        weight_decay: 0.0,
    };
    spec.schedule = Schedule::Constant { lr: 1e30 };
    spec.grad_clip = None;
    let mut t = Trainer::new(store.clone(), spec.clone(), CPU)
        .await
        .unwrap();
    let mut reports = Vec::new();
    for _ in 0..6 {
        reports.push(t.step().await.unwrap());
    }
    assert!(
        reports.iter().any(StepReport::skipped),
        "lr 1e30 must blow up: {reports:?}"
    );
    let (log, summary) = t.publish().await.unwrap();
    assert_eq!(summary.steps, 6);
    let v = VerifiedLog::load(&store, &log).await.unwrap();
    let records = v.records(&store, ..).await.unwrap();
    let skipped: Vec<u64> = records
        .iter()
        .filter(|r| r.skipped())
        .map(|r| r.step)
        .collect();
    let first = skipped[0];
    for &s in &skipped {
        let r = &records[s as usize];
        assert_eq!(
            r.weights_after, r.weights_before,
            "a skipped step changes nothing"
        );
        assert!(reports[s as usize].skipped());
    }
    // null in the record's bytes, NaN when read
    let bytes = v.record_bytes(&store, first).await.unwrap();
    #[derive(serde::Deserialize)]
    struct Values {
        loss: Option<f32>,
        grad_norm: Option<f32>,
    }
    let values: Values = serde_ipld_dagcbor::from_slice(&bytes).unwrap();
    assert!(values.loss.is_none() || values.grad_norm.is_none());
    assert_eq!(
        records[first as usize].loss.to_bits(),
        log::NOT_FINITE.to_bits()
    );
    for step in [first, 5] {
        let out = replay_step(&log, step, &store).await.unwrap();
        assert!(out.is_match(), "step {step}: {out:?}");
    }
    let resumed = Trainer::resume(store.clone(), &log, CPU).await.unwrap();
    assert_eq!(resumed.step_index(), 6);

    // a step before the divergence called skipped: its weights changed, the log is broken
    let forged = forge(&store, &log, 0, |r| r.loss = f32::INFINITY).await;
    assert!(matches!(
        VerifiedLog::load(&store, &forged).await,
        Err(Error::BrokenLog { step: 0, .. })
    ));
    // a skipped step given a loss: replay names it
    let forged = forge(&store, &log, first, |r| r.loss = 1.0).await;
    let m = mismatch(&forged, first, &store, "a skipped step with a loss").await;
    assert_eq!((m.step, m.field), (first, Field::Loss));
    assert_eq!(m.replayed, "NaN");
}

#[tokio::test]
async fn bad_specs_are_refused() {
    let (store, spec) = mlp_setup().await;
    let json = spec.to_json();
    assert_eq!(JobSpec::from_json(&json).unwrap(), spec);
    let unknown_model = json.replace("\"mlp\"", "\"resnet\"");
    let unknown_opt = json.replace("\"adam_w\"", "\"lion\"");
    let extra = json.replacen('{', "{\"colour\": 1,", 1);
    for bad in [unknown_model, unknown_opt, extra, "{}".into()] {
        assert!(
            matches!(JobSpec::from_json(&bad), Err(Error::InvalidSpec(_))),
            "{bad}"
        );
    }
    let zero_batch = JobSpec {
        batch_size: 0,
        ..spec.clone()
    };
    let too_big = JobSpec {
        batch_size: 10_000,
        ..spec.clone()
    };
    let heads = JobSpec {
        model: ModelSpec::Transformer(TransformerSpec {
            heads: 5,
            ..tiny_transformer()
        }),
        ..spec.clone()
    };
    let nan_lr = JobSpec {
        schedule: Schedule::Constant { lr: f64::NAN },
        ..spec.clone()
    };
    for bad in [zero_batch, too_big, heads, nan_lr] {
        assert!(matches!(
            Trainer::new(store.clone(), bad, CPU).await,
            Err(Error::InvalidSpec(_))
        ));
    }
    let elsewhere = JobSpec {
        compute_class: Some("riscv64/cpu".into()),
        ..spec.clone()
    };
    assert!(matches!(
        Trainer::new(store.clone(), elsewhere, CPU).await,
        Err(Error::IncompatibleCompute { .. })
    ));
    let wrong_data = JobSpec {
        model: ModelSpec::Transformer(tiny_transformer()),
        ..spec
    };
    let mut t = Trainer::new(store.clone(), wrong_data, CPU).await.unwrap();
    assert!(matches!(t.step().await, Err(Error::Malformed { .. })));
}

#[tokio::test]
async fn logs_of_another_compute_class_or_kernel_are_not_judged() {
    let (store, spec) = mlp_setup().await;
    let (log, _) = train(&store, &spec).await;
    let v = VerifiedLog::load(&store, &log).await.unwrap();
    /// An edit of the header's compute environment and the refusal it must get.
    type Case = (fn(&mut oai_train::ComputeEnv), fn(&Error) -> bool);
    let edits: [Case; 3] = [
        (
            |env| env.class = "aarch64-neon/cpu".into(),
            |e| matches!(e, Error::IncompatibleCompute { .. }),
        ),
        (
            |env| env.kernels = "oai-verifiable-0/fixed-k128".into(),
            |e| matches!(e, Error::KernelMismatch { .. }),
        ),
        (
            |env| env.class.clear(),
            |e| matches!(e, Error::MissingComputeClass),
        ),
    ];
    for (edit, expected) in edits {
        let mut header = v.header.clone();
        edit(&mut header.env);
        let header_cid = store
            .put(ids::DAG_CBOR, log::encode(&header).unwrap().into())
            .await
            .unwrap();
        let records = v.records(&store, ..).await.unwrap();
        let foreign = rechain(&store, header_cid, &header, records).await;
        let replayed = replay_step(&foreign, 2, &store).await;
        assert!(replayed.as_ref().is_err_and(expected), "{replayed:?}");
        let resumed = Trainer::resume(store.clone(), &foreign, CPU).await;
        assert!(resumed.as_ref().is_err_and(expected), "{:?}", resumed.err());
        // the message says what to do instead of accusing the node
        let msg = replayed.unwrap_err().to_string();
        assert!(msg.contains("replay") || msg.contains("replayed"), "{msg}");
    }
}

#[tokio::test]
async fn lora_trains_adapters_on_a_pinned_base() {
    let (store, spec) = lm_setup().await;
    let (_, base_log) = train(&store, &spec).await;
    let base_weights = base_log.checkpoints.last().unwrap().cid;
    let lora = JobSpec {
        model: ModelSpec::Lora {
            base: tiny_transformer(),
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
            base: tiny_transformer(),
            base_weights: base_log.checkpoints[0].cid,
            rank: 4,
            alpha: 8.0,
        },
        ..lora
    };
    assert_ne!(train(&store, &other_base).await.1.root, summary.root);
}

fn real_file(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(p) => Some(std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{var}={p}: {e}"))),
        Err(_) if std::env::var_os("OAI_REQUIRE_REAL").is_some() => {
            panic!("{var} is not set and OAI_REQUIRE_REAL is")
        }
        Err(_) => {
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
    let Some(text) = real_file("OAI_TEXT") else {
        return;
    };
    let bytes: Vec<u8> = text.bytes().filter(u8::is_ascii).take(400_000).collect();
    let (held_out, train_text) = bytes.split_at(40_000);
    let spec_t = TransformerSpec {
        vocab: 128,
        context: 32,
        d_model: 64,
        heads: 4,
        layers: 2,
        d_ff: 128,
        dropout: 0.0,
    };
    let store = MemStore::new();
    let data = dataset(&store, corpus::byte_windows(train_text, 32, 29).unwrap()).await;
    let spec = JobSpec {
        model: ModelSpec::Transformer(spec_t),
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
    t.train_and_publish().await.unwrap();
    let eval = t
        .evaluate(&corpus::byte_windows(held_out, 32, 32).unwrap())
        .unwrap();
    let unigram = corpus::unigram_entropy(train_text);
    println!(
        "pydoc topics: held-out loss {:.3} nats, unigram entropy {unigram:.3}",
        eval.loss
    );
    assert!(
        (eval.loss as f64) < 0.8 * unigram,
        "{} vs {unigram}",
        eval.loss
    );
}

fn arb_digest() -> impl Strategy<Value = Digest> {
    any::<[u8; 32]>().prop_map(Digest)
}

fn arb_record() -> impl Strategy<Value = StepRecord> {
    (
        any::<u64>(),
        proptest::collection::vec(arb_digest(), 0..5),
        proptest::collection::vec(arb_digest(), 1..6),
        (arb_digest(), any::<[u8; 32]>()),
        (-1e6f32..1e6, 0f32..1e6, 0f64..10.0),
    )
        .prop_map(
            |(step, batch, tensors, (before, seed), (loss, grad_norm, lr))| StepRecord {
                step,
                prev: ids::cid_v1(ids::DAG_CBOR, &step.to_le_bytes()),
                epoch: step / 7,
                batch_step: step % 7,
                batch_root: log::batch_root(&batch),
                batch,
                dropout_seed: Seed(seed),
                lr,
                loss,
                grad_norm,
                weights_before: before,
                weights_after: MerkleTree::new(&tensors).root(),
                tensors,
                checkpoint: (step % 3 == 0).then(|| ids::cid_v1(ids::RAW, &step.to_le_bytes())),
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn log_records_round_trip_and_any_flipped_byte_is_detected(
        record in arb_record(),
        at in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let bytes = log::encode(&record).unwrap();
        let back: StepRecord = log::decode("step record", &bytes).unwrap();
        prop_assert_eq!(&back, &record);
        let cid = ids::cid_v1(ids::DAG_CBOR, &bytes);
        let mut flipped = bytes.clone();
        flipped[at.index(bytes.len())] ^= 1 << bit;
        // Either it no longer decodes, or it is another object with another CID: the
        // successor's `prev` link (or the summary's `head`) no longer names it.
        if let Ok(other) = log::decode::<StepRecord>("step record", &flipped) {
            prop_assert_ne!(ids::cid_v1(ids::DAG_CBOR, &log::encode(&other).unwrap()), cid);
        }
    }

    #[test]
    fn chains_verify_and_any_edit_is_caught(
        records in proptest::collection::vec(arb_record(), 1..8),
        pick in any::<prop::sample::Index>(),
        edit in 0u8..4,
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            let store = MemStore::new();
            let spec = JobSpec {
                steps: records.len() as u64,
                checkpoint_every: 0,
                ..mlp_spec(ids::cid_v1(ids::DAG_CBOR, b"dataset"))
            };
            let header = LogHeader {
                format: log::LOG_FORMAT,
                spec: spec.put(&store).await.unwrap(),
                env: oai_train::ComputeEnv::detect(&CPU, Default::default()),
                params: (0..10).map(|i| format!("p{i}")).collect(),
                init: Digest::of(b"init"),
            };
            let mut records: Vec<StepRecord> = records
                .into_iter()
                .enumerate()
                .map(|(i, mut r)| {
                    r.step = i as u64;
                    r.tensors.resize(10, Digest::of(b"pad"));
                    // a record holds one batch entry per record of the spec's batch
                    r.batch.resize(spec.batch_size as usize, Digest::of(b"pad"));
                    r
                })
                .collect();
            // with checkpoints only at the end, only the last record commits one
            for r in &mut records {
                r.checkpoint = None;
            }
            records.last_mut().unwrap().checkpoint = Some(ids::cid_v1(ids::RAW, b"last"));
            let header_cid = store
                .put(ids::DAG_CBOR, log::encode(&header).unwrap().into())
                .await
                .unwrap();
            let good = rechain(&store, header_cid, &header, records.clone()).await;
            let v = VerifiedLog::load(&store, &good).await.unwrap();
            prop_assert_eq!(v.leaves.len(), records.len());
            let root = v.log.root;

            // Edit one record; the honest-looking re-chained log has another root, and keeping
            // the published root is a broken log.
            let i = pick.index(records.len());
            match edit {
                0 => records[i].loss += 1.0,
                1 => records[i].tensors[3] = Digest::of(b"edit"),
                2 => records[i].lr += 0.5,
                _ => records[i].batch[0] = Digest::of(b"extra"),
            }
            let edited = rechain(&store, header_cid, &header, records).await;
            let e = VerifiedLog::load(&store, &edited).await.unwrap();
            prop_assert_ne!(e.log.root, root);
            let lying = TrainingLog { root, ..e.log };
            let lying = put_log(&store, &lying).await;
            let is_broken = matches!(
                VerifiedLog::load(&store, &lying).await,
                Err(Error::BrokenLog { .. })
            );
            prop_assert!(is_broken);
            Ok(())
        })?;
    }
}

#[test]
fn state_and_spec_encodings_are_canonical() {
    let spec = mlp_spec(ids::cid_v1(ids::DAG_CBOR, b"d"));
    let bytes = spec.encode().unwrap();
    assert_eq!(JobSpec::decode(&bytes).unwrap(), spec);
    assert_eq!(spec.cid().unwrap(), ids::cid_v1(ids::DAG_CBOR, &bytes));
}

#[tokio::test]
async fn checkpoints_load_in_python_safetensors() {
    let python = match std::env::var("OAI_PYTHON") {
        Ok(p) => p,
        Err(_) if std::env::var_os("OAI_REQUIRE_REAL").is_some() => {
            panic!("OAI_PYTHON is not set and OAI_REQUIRE_REAL is")
        }
        Err(_) => {
            eprintln!("skipped: set OAI_PYTHON to a python with safetensors and numpy");
            return;
        }
    };
    let (store, spec) = lm_setup().await;
    let (_, summary) = train(&store, &spec).await;
    let cid = summary.checkpoints.last().unwrap().cid;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ckpt.safetensors");
    // The file exactly as `ipfs cat CID` would give it.
    std::fs::write(
        &path,
        oai_data::unixfs::read_to_vec(&store, &cid).await.unwrap(),
    )
    .unwrap();
    let script = r#"
import json, sys
from safetensors import safe_open
from safetensors.numpy import load_file
tensors = load_file(sys.argv[1])
with safe_open(sys.argv[1], "np") as f:
    meta = f.metadata()
print(json.dumps({"meta": meta, "tensors": {k: [list(v.shape), str(v.dtype), v.ravel()[:4].tolist()] for k, v in tensors.items()}}))
"#;
    let out = Command::new(&python)
        .args(["-c", script, path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ck = Checkpoint::get(&store, &cid, &CPU).await.unwrap();
    let meta: serde_json::Value =
        serde_json::from_str(got["meta"]["oai"].as_str().unwrap()).unwrap();
    assert_eq!(meta["step"], spec.steps);
    let tensors = got["tensors"].as_object().unwrap();
    assert_eq!(tensors.len(), ck.params.len() + ck.optimizer.len());
    for (name, t) in ck.params.iter().chain(ck.optimizer.iter()) {
        let key = if ck.params.contains_key(name) {
            name.clone()
        } else {
            format!("optim/{name}")
        };
        let py = &tensors[&key];
        let dims: Vec<usize> = serde_json::from_value(py[0].clone()).unwrap();
        assert_eq!(dims, t.dims(), "{key}");
        assert_eq!(py[1], "float32");
        let first: Vec<f32> = t
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .into_iter()
            .take(4)
            .collect();
        // JSON text of an f32 value read back as f64, then rounded to f32: exact.
        let py_first: Vec<f64> = serde_json::from_value(py[2].clone()).unwrap();
        let py_first: Vec<f32> = py_first.iter().map(|v| *v as f32).collect();
        assert_eq!(py_first, first, "{key}");
    }
}

/// A store over a `MemStore` that misbehaves as peers do: it answers requests for some blocks
/// with other (valid) blocks (`swaps`: a lying peer), makes every read wait for the runtime once
/// (`slow`: a network store), and loses the blocks in `missing` while `broken` is set.
#[derive(Debug, Clone, Default)]
struct RiggedStore {
    inner: MemStore,
    swaps: std::collections::BTreeMap<Cid, Cid>,
    slow: bool,
    missing: std::collections::BTreeSet<Cid>,
    broken: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

#[async_trait::async_trait]
impl BlockStore for RiggedStore {
    async fn put_block(&self, block: oai_data::store::Block) -> oai_data::Result<()> {
        self.inner.put_block(block).await
    }
    async fn get(&self, cid: &Cid) -> oai_data::Result<bytes::Bytes> {
        if self.slow {
            tokio::task::yield_now().await;
        }
        if self.broken.load(std::sync::atomic::Ordering::SeqCst) && self.missing.contains(cid) {
            return Err(oai_data::Error::NotFound(*cid));
        }
        self.inner.get(self.swaps.get(cid).unwrap_or(cid)).await
    }
    async fn has(&self, cid: &Cid) -> oai_data::Result<bool> {
        self.inner.has(cid).await
    }
    async fn delete(&self, cid: &Cid) -> oai_data::Result<()> {
        self.inner.delete(cid).await
    }
    async fn list(&self) -> oai_data::Result<Vec<Cid>> {
        self.inner.list().await
    }
}

#[tokio::test]
async fn a_lying_dataset_store_is_an_error_not_a_verdict() {
    let (store, spec) = mlp_setup().await;
    let (log, _) = train(&store, &spec).await;
    let version = Version::open(&store, &spec.dataset).await.unwrap();
    // Every chunk is answered with the next one.
    let chunks = version.chunks();
    let liar = RiggedStore {
        inner: store.clone(),
        swaps: (0..chunks.len())
            .map(|i| (chunks[i].cid, chunks[(i + 1) % chunks.len()].cid))
            .collect(),
        ..RiggedStore::default()
    };
    for step in [0, 5] {
        let got = replay_step(&log, step, &liar).await;
        assert!(
            matches!(got, Err(Error::Data(oai_data::Error::Verification(_)))),
            "step {step}: {got:?}"
        );
    }
    assert!(replay_step(&log, 5, &store).await.unwrap().is_match());
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

/// A logged step loads the next step's batch while it hashes its weights. That changes no bit
/// (the same log on a store that answers at once and on one that makes every read wait, the
/// same weights as a run without a log), and a batch that fails to load fails its own step,
/// which succeeds once the store recovers, with the log as a straight run's.
#[tokio::test]
async fn batches_loaded_ahead_change_nothing_and_a_failed_load_fails_its_own_step() {
    let (store, spec) = mlp_setup().await;
    let (straight, _) = train(&store, &spec).await;
    let version = Version::open(&store, &spec.dataset).await.unwrap();
    let slow = RiggedStore {
        inner: store.clone(),
        slow: true,
        missing: version.chunks().iter().map(|c| c.cid).collect(),
        ..RiggedStore::default()
    };
    let mut t = Trainer::new(slow.clone(), spec.clone(), CPU).await.unwrap();
    t.step().await.unwrap();
    slow.broken.store(true, std::sync::atomic::Ordering::SeqCst);
    // step 1's batch was loaded during step 0; step 2's fails to load during step 1
    t.step().await.unwrap();
    let got = t.step().await;
    assert!(
        matches!(got, Err(Error::Data(oai_data::Error::NotFound(_)))),
        "{got:?}"
    );
    assert_eq!(t.step_index(), 2);
    let got = t.step().await;
    assert!(
        matches!(got, Err(Error::Data(oai_data::Error::NotFound(_)))),
        "a failed load is not kept: {got:?}"
    );
    slow.broken
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let (log, _) = t.train_and_publish().await.unwrap();
    assert_eq!(log, straight);

    let mut quiet = Trainer::new(store.clone(), spec.clone(), CPU)
        .await
        .unwrap();
    quiet.disable_logging();
    while quiet.step_index() < spec.steps {
        quiet.step().await.unwrap();
    }
    let logged = Trainer::resume(store.clone(), &straight, CPU)
        .await
        .unwrap();
    let bits = |t: &Trainer<MemStore>| -> Vec<Vec<u32>> {
        t.tensors()
            .values()
            .map(|v| {
                let v = v.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                v.into_iter().map(f32::to_bits).collect()
            })
            .collect()
    };
    assert_eq!(bits(&quiet), bits(&logged));
}

/// The footprint a node checks before it claims a job counts exactly the parameters the model
/// declares (MLP, transformer, LoRA adapters over a frozen base), and a spec sized to exhaust
/// any machine saturates instead of overflowing or allocating.
#[test]
fn a_footprint_counts_the_declared_parameters_and_saturates() {
    use oai_train::{Footprint, Model};
    let count = |defs: Vec<oai_train::params::ParamDef>| -> u64 {
        defs.iter()
            .map(|d| d.shape.iter().product::<usize>() as u64)
            .sum()
    };
    let d = ids::cid_v1(ids::RAW, b"dataset");
    let lora = JobSpec {
        model: ModelSpec::Lora {
            base: tiny_transformer(),
            base_weights: ids::cid_v1(ids::RAW, b"base"),
            rank: 4,
            alpha: 8.0,
        },
        ..lm_spec(d)
    };
    for spec in [mlp_spec(d), lm_spec(d), lora] {
        let model = Model::new(&spec.model);
        let f = Footprint::of(&spec);
        assert_eq!(f.trainable, count(model.param_defs()), "{:?}", spec.model);
        assert_eq!(f.frozen, count(model.base_defs()), "{:?}", spec.model);
        assert_eq!((f.batch, f.steps), (spec.batch_size, spec.steps));
        // weights, gradients and optimiser state at the least
        assert!(f.memory >= f.trainable * 4 * 3, "{f:?}");
    }
    let huge = JobSpec {
        model: ModelSpec::Transformer(TransformerSpec {
            layers: usize::MAX,
            d_model: 1 << 40,
            ..tiny_transformer()
        }),
        batch_size: u64::MAX,
        ..lm_spec(d)
    };
    let f = Footprint::of(&huge);
    assert_eq!((f.trainable, f.memory), (u64::MAX, u64::MAX));
}
