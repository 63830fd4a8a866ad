//! oai-verify against real training logs: honest runs are accepted, and every attack of the
//! catalogue (docs/verification.md) is rejected with its step named; results travel through
//! the embedded EVM; the sampling formulas agree with a simulation of the draw.

use oai_chain::{
    Address, Chain, ChainConfig, Contracts, JobStatus, JobTerms, Revm, Turn, B256, U256,
};
use oai_core::{Cid, Digest, Seed};
use oai_data::dataset::{Record, Version};
use oai_data::{BlockStore, MemStore};
use oai_train::log::{self, StepRecord, TrainingLog};
use oai_train::{Checkpoint, Field, JobSpec, ModelSpec, OptimizerSpec, Schedule, Trainer};
use oai_verify::sampling::{self, Forgery};
use oai_verify::{audit_seed, Fault, Strategy, Submission, Verdict, Verifier};

const CPU: oai_train::candle::Device = oai_train::candle::Device::Cpu;
const STEPS: u64 = 24;
const EVERY: u64 = 4;

/// 192 records of 8 features in 3 classes.
fn records() -> Vec<Record> {
    oai_train::corpus::seeded_classes(Seed::from_u64(3), 192, 8, 3)
}

fn spec(dataset: Cid, seed: u64) -> JobSpec {
    JobSpec {
        dataset,
        model: ModelSpec::Mlp {
            input: 8,
            hidden: vec![16],
            classes: 3,
            dropout: 0.1,
        },
        optimizer: OptimizerSpec::adam_w(0.01),
        schedule: Schedule::Constant { lr: 0.01 },
        batch_size: 16,
        steps: STEPS,
        checkpoint_every: EVERY,
        grad_clip: Some(1.0),
        seed,
        kernels: Default::default(),
        compute_class: None,
    }
}

/// What the helpers need of a store (the tests use a `MemStore`, or an IPFS node).
trait Store: BlockStore + Clone + Send + Sync + 'static {}
impl<S: BlockStore + Clone + Send + Sync + 'static> Store for S {}

/// A memory store with the dataset, and the job's spec.
async fn job() -> (MemStore, JobSpec, Version) {
    job_in(MemStore::new()).await
}

/// `store` with the dataset, and the job's spec.
async fn job_in<S: Store>(store: S) -> (S, JobSpec, Version) {
    let version = Version::from_records(&store, records()).await.unwrap();
    let spec = spec(version.cid(), 42);
    (store, spec, version)
}

async fn train<S: Store>(store: &S, spec: &JobSpec) -> TrainingLog {
    let mut t = Trainer::new(store.clone(), spec.clone(), CPU)
        .await
        .unwrap();
    t.train_and_publish().await.unwrap().1
}

fn submission(log: &TrainingLog, spec: &JobSpec, version: &Version) -> Submission {
    Submission::for_log(log, spec.cid().unwrap(), version.root(), spec.steps)
}

async fn verify<S: Store>(store: &S, sub: &Submission, strategy: Strategy) -> Verdict {
    Verifier::new(store.clone())
        .verify(sub, strategy, &Seed::from_u64(1))
        .await
        .unwrap()
}

/// The records of `log`, edited by `edit` and chained again consistently (a dishonest node
/// that takes care to publish a well-formed log).
async fn forge<S: Store>(
    store: &S,
    log: &TrainingLog,
    edit: impl FnOnce(&mut Vec<StepRecord>),
) -> TrainingLog {
    let v = oai_train::VerifiedLog::from_head(store, &log.header, &log.head)
        .await
        .unwrap();
    let mut records = v.records(store, ..).await.unwrap();
    edit(&mut records);
    log::store_chain(store, log.header, v.header.init, records)
        .await
        .unwrap()
        .1
}

/// One tick of `agent`, then its background work (training, audits) waited for: the tests
/// step agents in lock step.
async fn step(agent: &mut (impl oai_verify::agents::Agent + ?Sized)) -> Vec<String> {
    let did = agent.tick().await.unwrap();
    agent.idle().await;
    did
}

/// Step `agent` until a tick has nothing to do at this chain time and no work in the
/// background; every line it said.
async fn until_quiet(agent: &mut (impl oai_verify::agents::Agent + ?Sized)) -> Vec<String> {
    let mut said = Vec::new();
    for _ in 0..50 {
        // work running when the tick began may finish before it ends: tick again to take it
        let was_working = agent.busy();
        let did = agent.tick().await.unwrap();
        let busy = was_working || agent.busy();
        agent.idle().await;
        if did.is_empty() && !busy {
            return said;
        }
        said.extend(did);
    }
    panic!("the agent never ran out of things to do: {said:#?}")
}

/// The fault full replay finds; it must name `step` and `field`.
async fn caught(store: &MemStore, sub: &Submission, step: u64, field: Field) -> Fault {
    let verdict = verify(store, sub, Strategy::Full).await;
    let Some(Fault::Step(m)) = verdict.fault() else {
        panic!("expected a fault at step {step}: {verdict:?}")
    };
    assert_eq!((m.step, m.field), (step, field), "{m:?}");
    verdict.fault().unwrap().clone()
}

#[tokio::test]
async fn fifty_honest_runs_are_never_flagged() {
    let (store, base, version) = job().await;
    for seed in 0..50 {
        let spec = JobSpec {
            seed,
            ..base.clone()
        };
        let log = train(&store, &spec).await;
        let sub = submission(&log, &spec, &version);
        let strategy = if seed % 5 == 0 {
            Strategy::Full
        } else {
            Strategy::Sampling { samples: 3 }
        };
        let verdict = Verifier::new(store.clone())
            .verify(&sub, strategy, &Seed::from_u64(seed))
            .await
            .unwrap();
        let Verdict::Accepted(report) = verdict else {
            panic!("honest run of seed {seed} flagged: {verdict:?}")
        };
        if strategy == Strategy::Full {
            assert_eq!(
                report.replayed_steps, STEPS,
                "full replay re-executes each step once"
            );
            assert_eq!(report.spans.len() as u64, STEPS / EVERY);
        } else {
            assert_eq!(report.sampled.len(), 3);
        }
    }
}

#[tokio::test]
async fn edited_checkpoint_weights_with_the_records_rehashed() {
    let (store, spec, version) = job().await;
    let log = train(&store, &spec).await;
    // The checkpoint after step 7 with one weight tensor scaled, and record 7 claiming exactly
    // those weights (so the checkpoint matches its record).
    let at = log.checkpoints[1];
    assert_eq!(at.step, 8);
    let mut ck = Checkpoint::get(&store, &at.cid, &CPU).await.unwrap();
    let name = ck.params.keys().next().unwrap().clone();
    ck.params
        .insert(name.clone(), (&ck.params[&name] * 1.01).unwrap());
    let forged = ck.put(&store).await.unwrap();
    let commit = oai_train::Commitment::of(ck.params.iter().map(|(k, t)| (k.as_str(), t))).unwrap();
    let cheat = forge(&store, &log, |r| {
        r[7].tensors = commit.leaves.clone();
        r[7].checkpoint = Some(forged);
    })
    .await;
    let fault = caught(
        &store,
        &submission(&cheat, &spec, &version),
        7,
        Field::Weights,
    )
    .await;
    assert!(fault.to_string().contains(&name), "{fault}");
}

/// A checkpoint far larger than the spec implies (here 64 MiB where the run's state is a few
/// KiB): a replay read every checkpoint whole, so a node could make each auditor hold any
/// amount. A replay now reads a node's checkpoint within what the spec implies
/// (`Footprint::checkpoint_bytes`), refused from its root block: the log is rejected, the
/// step before the checkpoint named, without the file being read.
#[tokio::test]
async fn a_checkpoint_larger_than_the_spec_implies_is_refused_unread() {
    let (store, spec, version) = job().await;
    let log = train(&store, &spec).await;
    let huge = oai_data::unixfs::import_bytes(&store, &vec![0u8; 64 << 20], Default::default())
        .await
        .unwrap()
        .root;
    let limit = oai_train::Footprint::of(&spec).checkpoint_bytes();
    assert!(limit < 2 << 20, "{limit}");
    let cheat = forge(&store, &log, |r| r[7].checkpoint = Some(huge)).await;
    let verdict = verify(&store, &submission(&cheat, &spec, &version), Strategy::Full).await;
    let fault = verdict.fault().expect("rejected").to_string();
    assert!(fault.contains("exceeds the limit"), "{fault}");
    let read = Checkpoint::get_within(&store, &huge, &CPU, limit).await;
    assert!(
        matches!(&read, Err(oai_train::Error::Malformed { reason, .. }) if reason.contains("67108864 bytes exceeds the limit")),
        "{read:?}"
    );
}

/// A record holds what the spec and header imply: `batch_size` batch entries, one digest per
/// parameter tensor. A node could pad its records up to the block limit (2 MiB each), and a
/// verifier held every record in memory; a record of another size is refused as it is read.
#[tokio::test]
async fn a_record_padded_past_the_spec_is_refused_as_it_is_read() {
    let (store, spec, version) = job().await;
    let log = train(&store, &spec).await;
    let cheat = forge(&store, &log, |r| {
        let extra = r[5].batch.clone();
        r[5].batch.extend(extra);
    })
    .await;
    let verdict = verify(&store, &submission(&cheat, &spec, &version), Strategy::Full).await;
    let fault = verdict.fault().expect("rejected").to_string();
    assert!(fault.contains("32 batch entries"), "{fault}");
}

#[tokio::test]
async fn a_skipped_step() {
    let (store, spec, version) = job().await;
    let log = train(&store, &spec).await;
    // Step 10 claims weights that did not move (the node skipped the work).
    let cheat = forge(&store, &log, |r| r[10].tensors = r[9].tensors.clone()).await;
    caught(
        &store,
        &submission(&cheat, &spec, &version),
        10,
        Field::Weights,
    )
    .await;
}

#[tokio::test]
async fn a_batch_swapped_for_other_valid_records() {
    let (store, spec, version) = job().await;
    let log = train(&store, &spec).await;
    let cheat = forge(&store, &log, |r| r[5].batch = r[6].batch.clone()).await;
    caught(
        &store,
        &submission(&cheat, &spec, &version),
        5,
        Field::Batch,
    )
    .await;
}

#[tokio::test]
async fn an_earlier_steps_update_replayed() {
    let (store, spec, version) = job().await;
    let log = train(&store, &spec).await;
    // Step 13 is step 12's record again (its batch, seed and update), renumbered.
    let cheat = forge(&store, &log, |r| {
        let mut again = r[12].clone();
        again.step = 13;
        again.checkpoint = r[13].checkpoint;
        r[13] = again;
    })
    .await;
    caught(
        &store,
        &submission(&cheat, &spec, &version),
        13,
        Field::Batch,
    )
    .await;
}

#[tokio::test]
async fn a_lie_about_the_loss_or_the_learning_rate() {
    let (store, spec, version) = job().await;
    let log = train(&store, &spec).await;
    let cheat = forge(&store, &log, |r| r[3].loss *= 0.5).await;
    caught(&store, &submission(&cheat, &spec, &version), 3, Field::Loss).await;
    let cheat = forge(&store, &log, |r| r[17].lr *= 2.0).await;
    caught(
        &store,
        &submission(&cheat, &spec, &version),
        17,
        Field::LearningRate,
    )
    .await;
}

#[tokio::test]
async fn a_changed_dropout_seed() {
    let (store, spec, version) = job().await;
    let log = train(&store, &spec).await;
    let cheat = forge(&store, &log, |r| r[2].dropout_seed = Seed::from_u64(99)).await;
    caught(
        &store,
        &submission(&cheat, &spec, &version),
        2,
        Field::DropoutSeed,
    )
    .await;
}

#[tokio::test]
async fn forged_optimiser_moments() {
    let (store, spec, version) = job().await;
    let log = train(&store, &spec).await;
    let at = log.checkpoints[2];
    let mut ck = Checkpoint::get(&store, &at.cid, &CPU).await.unwrap();
    let slot = ck.optimizer.keys().last().unwrap().clone();
    ck.optimizer
        .insert(slot.clone(), (&ck.optimizer[&slot] * 0.5).unwrap());
    let forged = ck.put(&store).await.unwrap();
    let cheat = forge(&store, &log, |r| r[11].checkpoint = Some(forged)).await;
    let fault = caught(
        &store,
        &submission(&cheat, &spec, &version),
        11,
        Field::Checkpoint,
    )
    .await;
    assert!(
        fault.to_string().contains(&format!("optim/{slot}")),
        "{fault}"
    );
}

#[tokio::test]
async fn a_log_truncated_or_extended_past_the_spec() {
    let (store, spec, version) = job().await;
    let log = train(&store, &spec).await;
    // Truncated: a well-formed shorter log (the node stopped at step 20) is not the job's.
    let short_spec = JobSpec {
        steps: 20,
        ..spec.clone()
    };
    let mut t = Trainer::new(store.clone(), spec.clone(), CPU)
        .await
        .unwrap();
    for _ in 0..20 {
        t.step().await.unwrap();
    }
    let (_, short) = t.publish().await.unwrap();
    let verdict = verify(&store, &submission(&short, &spec, &version), Strategy::Full).await;
    assert!(
        matches!(verdict.fault(), Some(Fault::Terms { reason }) if reason.contains("20 steps")),
        "{verdict:?}"
    );
    // Submitted for a 20-step job, it names the 24-step spec: not the job's either.
    let as_short = submission(&short, &short_spec, &version);
    let verdict = verify(&store, &as_short, Strategy::Full).await;
    assert!(
        matches!(verdict.fault(), Some(Fault::Terms { .. })),
        "{verdict:?}"
    );
    // Extended one step past the spec: the chain outruns the spec and is refused.
    let cheat = forge(&store, &log, |r| {
        let mut extra = r.last().unwrap().clone();
        extra.step += 1;
        r.push(extra);
    })
    .await;
    let verdict = verify(&store, &submission(&cheat, &spec, &version), Strategy::Full).await;
    assert!(
        matches!(
            verdict.fault(),
            Some(Fault::Log {
                step: Some(STEPS),
                ..
            })
        ),
        "{verdict:?}"
    );
}

#[tokio::test]
async fn a_valid_run_of_another_seed_or_dataset_spliced_in() {
    let (store, spec, version) = job().await;
    let log = train(&store, &spec).await;
    let other = train(
        &store,
        &JobSpec {
            seed: 7,
            ..spec.clone()
        },
    )
    .await;
    let theirs = oai_train::VerifiedLog::from_head(&store, &other.header, &other.head)
        .await
        .unwrap()
        .records(&store, ..)
        .await
        .unwrap();
    // The second half of another seed's run, re-chained after this run's first half.
    let cheat = forge(&store, &log, |r| r[12..].clone_from_slice(&theirs[12..])).await;
    caught(
        &store,
        &submission(&cheat, &spec, &version),
        12,
        Field::Batch,
    )
    .await;
    // A whole valid run on another dataset, submitted for this job.
    let elsewhere = Version::from_records(&store, records().into_iter().rev())
        .await
        .unwrap();
    let foreign = train(&store, &spec_on(&spec, elsewhere.cid())).await;
    let verdict = verify(
        &store,
        &submission(&foreign, &spec, &version),
        Strategy::Full,
    )
    .await;
    assert!(
        matches!(verdict.fault(), Some(Fault::Terms { .. })),
        "{verdict:?}"
    );
}

fn spec_on(spec: &JobSpec, dataset: Cid) -> JobSpec {
    JobSpec {
        dataset,
        ..spec.clone()
    }
}

#[tokio::test]
async fn initial_weights_not_from_the_specs_seed() {
    let (store, spec, version) = job().await;
    // A run of seed 43 whose header names the job's spec (seed 42): consistent records from
    // weights the job's seed does not give.
    let other = train(
        &store,
        &JobSpec {
            seed: 43,
            ..spec.clone()
        },
    )
    .await;
    let v = oai_train::VerifiedLog::from_head(&store, &other.header, &other.head)
        .await
        .unwrap();
    let header = log::LogHeader {
        spec: spec.put(&store).await.unwrap(),
        ..v.header.clone()
    };
    let header_cid = store
        .put(
            oai_core::ids::DAG_CBOR,
            log::encode(&header).unwrap().into(),
        )
        .await
        .unwrap();
    let records = v.records(&store, ..).await.unwrap();
    let (_, spoofed) = log::store_chain(&store, header_cid, header.init, records)
        .await
        .unwrap();
    let sub = submission(&spoofed, &spec, &version);
    caught(&store, &sub, 0, Field::Init).await;
    // A sampled audit far from the start checks the initial weights too.
    let verdict = Verifier::new(store.clone())
        .verify(&sub, Strategy::Sampling { samples: 1 }, &Seed::from_u64(5))
        .await
        .unwrap();
    assert!(
        matches!(verdict.fault(), Some(Fault::Step(m)) if m.field == Field::Init),
        "{verdict:?}"
    );
}

#[tokio::test]
async fn missing_blocks_are_errors_not_verdicts() {
    let (store, spec, version) = job().await;
    let log = train(&store, &spec).await;
    let sub = submission(&log, &spec, &version);
    // A verifier whose store lacks a checkpoint: an error (nobody served it), not a fault.
    let partial = MemStore::new();
    for cid in store.list().await.unwrap() {
        if cid != log.checkpoints[0].cid {
            partial
                .put_block(
                    oai_data::store::Block::verified(cid, store.get(&cid).await.unwrap()).unwrap(),
                )
                .await
                .unwrap();
        }
    }
    let got = Verifier::new(partial)
        .verify(&sub, Strategy::Full, &Seed::from_u64(1))
        .await;
    assert!(
        matches!(
            got,
            Err(oai_verify::Error::Train(ref e))
                if matches!(**e, oai_train::Error::Data(oai_data::Error::NotFound(_)))
        ),
        "{got:?}"
    );
    // A head nobody has: an error too.
    let nowhere = Submission {
        head: oai_core::ids::cid_v1(oai_core::ids::DAG_CBOR, b"nowhere"),
        ..sub.clone()
    };
    assert!(Verifier::new(store.clone())
        .verify(&nowhere, Strategy::Full, &Seed::from_u64(1))
        .await
        .is_err());
    // Zero samples is the caller's mistake.
    assert!(matches!(
        Verifier::new(store.clone())
            .verify(&sub, Strategy::Sampling { samples: 0 }, &Seed::from_u64(1))
            .await,
        Err(oai_verify::Error::InvalidInput(_))
    ));
}

#[tokio::test]
async fn spans_in_parallel_give_the_same_verdicts() {
    let (store, spec, version) = job().await;
    let log = train(&store, &spec).await;
    let sub = submission(&log, &spec, &version);
    let one = verify(&store, &sub, Strategy::Full).await;
    let four = Verifier::new(store.clone())
        .with_parallelism(4)
        .verify(&sub, Strategy::Full, &Seed::from_u64(1))
        .await
        .unwrap();
    assert_eq!(one, four);
    // Two forged steps in different intervals: the first is named whatever finishes first.
    let cheat = forge(&store, &log, |r| {
        r[5].loss += 1.0;
        r[18].loss += 1.0;
    })
    .await;
    let sub = submission(&cheat, &spec, &version);
    let parallel = Verifier::new(store.clone())
        .with_parallelism(4)
        .verify(&sub, Strategy::Full, &Seed::from_u64(1))
        .await
        .unwrap();
    assert_eq!(parallel.fault().and_then(Fault::step), Some(5));
}

/// The embedded EVM with the contracts deployed, a job's terms for `spec`, and funded accounts
/// (the node registered with 3 ETH).
struct Market<E> {
    chain: Contracts<std::sync::Arc<E>>,
    terms: JobTerms,
    eth: U256,
    accounts: Vec<Address>,
    requester: Address,
    node: Address,
    challenger: Address,
    referee: Address,
}

async fn market(spec: &JobSpec, version: &Version) -> Market<Revm> {
    let accounts: Vec<_> = (1..=8u8).map(Address::repeat_byte).collect();
    market_on(
        std::sync::Arc::new(Revm::with_seed(11)),
        accounts,
        spec,
        version,
    )
    .await
}

/// [`market`] on `evm`, acting for `accounts` (at least 7).
async fn market_on<E: oai_chain::Evm + 'static>(
    evm: std::sync::Arc<E>,
    accounts: Vec<Address>,
    spec: &JobSpec,
    version: &Version,
) -> Market<E> {
    let eth = U256::from(10u128.pow(18));
    for a in &accounts {
        oai_chain::Evm::set_balance(evm.as_ref(), *a, eth * U256::from(100))
            .await
            .unwrap();
    }
    let config = ChainConfig {
        min_stake: eth,
        unbond_delay: 7 * 86_400,
        move_timeout: 3_600,
        adjudication_timeout: 86_400,
        referees: vec![accounts[3]],
        threshold: 1,
        governance: None,
    };
    let (chain, _) = Contracts::deploy(evm, accounts[0], &config).await.unwrap();
    let terms = JobTerms {
        dataset_root: B256::from(version.root().0),
        spec: oai_verify::commitment(&spec.cid().unwrap()).unwrap(),
        steps: spec.steps,
        claim_window: 86_400,
        max_duration: 86_400,
        challenge_window: 86_400,
        required_stake: eth,
    };
    chain
        .register(accounts[2], eth * U256::from(3))
        .await
        .unwrap();
    Market {
        chain,
        terms,
        eth,
        requester: accounts[1],
        node: accounts[2],
        referee: accounts[3],
        challenger: accounts[6],
        accounts,
    }
}

impl<E: oai_chain::Evm + 'static> Market<E> {
    /// Post the job and let the node claim it; returns the job.
    async fn claimed(&self) -> u64 {
        let (job, _) = self
            .chain
            .post_job(self.requester, &self.terms, self.eth)
            .await
            .unwrap();
        self.chain.claim_job(self.node, job).await.unwrap();
        job
    }
}

/// A whole job through the embedded EVM: terms from the spec, the node's result as the chain
/// holds it, the audit seeded by a block made after the submission.
#[tokio::test]
async fn results_read_from_the_chain_are_verified() {
    let (store, spec, version) = job().await;
    let m = market(&spec, &version).await;
    let (chain, terms, eth, accounts) = (&m.chain, &m.terms, m.eth, &m.accounts);
    let (requester, node) = (m.requester, m.node);
    for cheat in [false, true] {
        let (job, _) = chain.post_job(requester, terms, eth).await.unwrap();
        chain.claim_job(node, job).await.unwrap();
        let mut log = train(&store, &spec).await;
        if cheat {
            log = forge(&store, &log, |r| r[9].grad_norm *= 2.0).await;
        }
        let (_, submitted) = oai_verify::submit_log(chain, &store, node, job, &log)
            .await
            .unwrap();
        // the audit waits for a block made after the submission
        chain
            .register(accounts[4 + cheat as usize], eth)
            .await
            .unwrap();
        let later = chain.block_number().await.unwrap();
        assert!(later > submitted.block);
        let randomness = chain.randomness(later).await.unwrap();
        let onchain = chain.job(job).await.unwrap();
        let sub = Submission::from_chain(&onchain.terms, &onchain.result.unwrap());
        assert_eq!(sub, submission(&log, &spec, &version));
        let seed = audit_seed(&sub, &randomness);
        let verdict = Verifier::new(store.clone())
            .verify(&sub, Strategy::Full, &seed)
            .await
            .unwrap();
        match cheat {
            false => assert!(verdict.is_accepted(), "{verdict:?}"),
            true => assert_eq!(verdict.fault().and_then(Fault::step), Some(9)),
        }
    }
}

#[test]
fn audit_steps_are_distinct_sorted_and_depend_on_the_randomness() {
    let sub = Submission {
        header: oai_core::ids::cid_v1(oai_core::ids::DAG_CBOR, b"h"),
        head: oai_core::ids::cid_v1(oai_core::ids::DAG_CBOR, b"t"),
        spec: oai_core::ids::cid_v1(oai_core::ids::DAG_CBOR, b"s"),
        dataset_root: Digest::of(b"d"),
        steps: 1_000_000,
    };
    let a = audit_seed(&sub, &B256::repeat_byte(1));
    let b = audit_seed(&sub, &B256::repeat_byte(2));
    let steps = oai_verify::audit_steps(&a, 1_000_000, 50);
    assert_eq!(steps.len(), 50);
    assert!(steps.windows(2).all(|w| w[0] < w[1]));
    assert!(steps.iter().all(|&s| s < 1_000_000));
    assert_eq!(steps, oai_verify::audit_steps(&a, 1_000_000, 50));
    assert_ne!(steps, oai_verify::audit_steps(&b, 1_000_000, 50));
    assert_eq!(
        oai_verify::audit_steps(&a, 7, 50),
        (0..7).collect::<Vec<_>>()
    );
}

/// The detection formulas against a simulation of the same draw: forged steps placed at
/// random, `k` audit steps from `audit_steps`, each checking its span from the last checkpoint.
#[test]
fn detection_formulas_match_a_simulation_of_the_draw() {
    let (n, every, trials) = (1_000u64, 10u64, 4_000u64);
    for (f, forgery) in [
        (0.01, Forgery::Spread),
        (0.1, Forgery::Spread),
        (0.5, Forgery::Spread),
        (0.01, Forgery::Concentrated),
        (0.1, Forgery::Concentrated),
    ] {
        let k = sampling::samples_needed(n, every, f, 0.9, forgery).unwrap();
        let formula = sampling::detection_probability(n, every, f, k, forgery);
        assert!(formula >= 0.9, "{f} {forgery:?}: k {k} gives {formula}");
        if k > 1 {
            assert!(sampling::detection_probability(n, every, f, k - 1, forgery) < 0.9);
        }
        let mut caught = 0;
        for t in 0..trials {
            let forged = sampling::simulated_forgery(&Seed::from_u64(t), n, f, forgery);
            let audit = oai_verify::audit_steps(&Seed::from_u64(t), n, k);
            if audit
                .iter()
                .any(|&s| (s - s % every..=s).any(|i| forged.binary_search(&i).is_ok()))
            {
                caught += 1;
            }
        }
        let measured = caught as f64 / trials as f64;
        eprintln!("f {f} {forgery:?}: k {k}, formula {formula:.3}, simulated {measured:.3}");
        assert!(
            (measured - formula).abs() < 0.05,
            "f {f} {forgery:?}: formula {formula:.3}, simulated {measured:.3}"
        );
    }
}

#[test]
fn the_chooser_meets_the_issue_target() {
    // 99% detection of a node that skips 10% of its steps, 10,000 steps, a restore costing 3
    // steps: some interval costs at most 5% of the training.
    let intervals = [1, 2, 5, 10, 20, 50, 100, 500, 1_000];
    let rows = sampling::frontier(10_000, 0.1, 0.99, Forgery::Spread, &intervals, 3.0);
    assert_eq!(rows.len(), intervals.len());
    for r in &rows {
        let p = sampling::detection_probability(10_000, r.every, 0.1, r.samples, Forgery::Spread);
        assert!(p >= 0.99, "{r:?}: {p}");
    }
    let best =
        sampling::choose(10_000, 0.1, 0.99, Forgery::Spread, &intervals, 3.0, 10_000).unwrap();
    assert!(best.compute_fraction <= 0.05, "{best:?}");
    // Storing fewer checkpoints never makes the chosen audit cheaper.
    let frugal =
        sampling::choose(10_000, 0.1, 0.99, Forgery::Spread, &intervals, 3.0, 100).unwrap();
    assert!(frugal.checkpoints <= 100 && frugal.compute_steps >= best.compute_steps);
    assert_eq!(
        sampling::samples_needed(10_000, 10, 0.0, 0.99, Forgery::Spread),
        None
    );
}

#[test]
fn strategies_and_verdicts_serialise() {
    let s = Strategy::Sampling { samples: 8 };
    let json = serde_json::to_string(&s).unwrap();
    assert_eq!(json, r#"{"strategy":"sampling","samples":8}"#);
    assert_eq!(serde_json::from_str::<Strategy>(&json).unwrap(), s);
    assert_eq!(
        serde_json::from_str::<Strategy>(r#"{"strategy":"full"}"#).unwrap(),
        Strategy::Full
    );
    assert!(serde_json::from_str::<Strategy>(r#"{"strategy":"vibes"}"#).is_err());
    let v = Verdict::Rejected(Fault::Terms { reason: "x".into() });
    let back: Verdict = serde_json::from_str(&serde_json::to_string(&v).unwrap()).unwrap();
    assert_eq!(back, v);
}

/// The optimistic game on real logs: the node's and the challenger's bisection moves come from
/// their own logs, the referee re-executes the one disputed step.
mod attacks;
mod liveness;

mod game;

/// The same game on real components: anvil for the chain, a js-ipfs node for every block (the
/// dataset, the spec, both logs and their checkpoints travel through it; the referee reads them
/// back from it). Runs when anvil and `OAI_IPFS_API` are there (`.ci/run` provides both).
#[cfg(all(feature = "alloy", feature = "ipfs"))]
mod on_anvil_and_ipfs;

/// The parties as agents ticking against the embedded EVM: an honest node and a cheating node
/// each take a job, a challenger audits both results, a referee judges the one disputed step.
/// The cheating node and the challenger are killed and started again mid-dispute.
mod agents;
