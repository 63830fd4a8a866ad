//! Agents stay live whatever others do: long work runs beside the ticks, a job the node cannot
//! finish is refused before it is claimed, and one job's failure does not stop the others.
//! The agents tick as they do in `oai node` (no waiting for their background work).

use super::game::load;
use super::*;
use oai_verify::agents::{ChallengerAgent, NodeAgent, NodeLimits, RefereeAgent};
use oai_verify::game::{challenge, challenger_move};

/// Steps of the long jobs: long enough that training or replaying them outlasts a whole
/// dispute of the short job (a few seconds here).
const LONG: u64 = 400;

/// The job's spec trained for `steps` steps.
fn long(spec: &JobSpec, steps: u64) -> JobSpec {
    JobSpec {
        steps,
        checkpoint_every: 100,
        ..spec.clone()
    }
}

/// Post `spec` (its spec in `store`) on `m` at the usual terms; returns the job.
async fn post<E: oai_chain::Evm + 'static, S: Store>(
    m: &Market<E>,
    store: &S,
    spec: &JobSpec,
    terms: impl FnOnce(JobTerms) -> JobTerms,
) -> u64 {
    post_paying(m, store, spec, terms, m.eth).await
}

/// [`post`], paying `reward`.
async fn post_paying<E: oai_chain::Evm + 'static, S: Store>(
    m: &Market<E>,
    store: &S,
    spec: &JobSpec,
    terms: impl FnOnce(JobTerms) -> JobTerms,
    reward: U256,
) -> u64 {
    spec.put(store).await.unwrap();
    let terms = terms(JobTerms {
        spec: oai_verify::commitment(&spec.cid().unwrap()).unwrap(),
        steps: spec.steps,
        ..m.terms.clone()
    });
    m.chain
        .post_job(m.requester, &terms, reward)
        .await
        .unwrap()
        .0
}

/// The stock node trained a long job inside its tick: a dispute on an older job waited for
/// the whole training, and in `oai node` the node lost it by timeout. Training runs in the
/// background now: every move of the older job's dispute is answered while the long job
/// trains, and the long job is submitted once done.
#[tokio::test]
async fn a_node_mid_training_answers_a_dispute_on_an_older_job_in_time() {
    let (store, spec, version) = job().await;
    let m = market(&spec, &version).await;
    let older = post(&m, &store, &spec, |t| t).await;
    let mut node = NodeAgent::new(m.chain.clone(), store.clone(), m.node);
    until_quiet(&mut node).await;
    assert_eq!(
        m.chain.job(older).await.unwrap().status,
        JobStatus::Submitted
    );
    // the node takes a long job and trains it
    let newer = post(&m, &store, &long(&spec, LONG), |t| t).await;
    let mut lines = Vec::new();
    while m.chain.job(newer).await.unwrap().status == JobStatus::Open {
        lines.extend(node.tick().await.unwrap());
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(
        m.chain.job(newer).await.unwrap().status,
        JobStatus::Claimed,
        "training, not trained inside the tick: {lines:#?}"
    );
    // now a lying challenger disputes the older, honest result with a run of another seed
    let liar = JobSpec {
        seed: 5,
        ..spec.clone()
    };
    let liar = load(&store, &train(&store, &liar).await).await;
    challenge(&m.chain, m.challenger, older, &liar)
        .await
        .unwrap()
        .unwrap();
    let mut referee = RefereeAgent::new(m.chain.clone(), store.clone(), m.referee);
    while m.chain.dispute(older).await.unwrap().is_some() {
        lines.extend(node.tick().await.unwrap());
        challenger_move(&m.chain, m.challenger, older, &liar)
            .await
            .unwrap();
        lines.extend(referee.tick().await.unwrap());
        assert!(lines.len() < 200, "{lines:#?}");
    }
    assert_eq!(
        m.chain.job(older).await.unwrap().status,
        JobStatus::Submitted,
        "the honest node won its dispute: {lines:#?}"
    );
    assert_eq!(
        m.chain.job(newer).await.unwrap().status,
        JobStatus::Claimed,
        "the dispute ended while the long job still trained: {lines:#?}"
    );
    assert!(node.busy());
    until_quiet(&mut node).await;
    assert_eq!(
        m.chain.job(newer).await.unwrap().status,
        JobStatus::Submitted
    );
}

/// A cheater submits a decoy (a long log, forged at its last step) before the result it cares
/// about. The stock challenger replayed the decoy inside its tick, and every move of its other
/// disputes waited for that replay. Audits run in the background now: the cheat on the short
/// job is disputed and slashed while the decoy's audit still runs.
#[tokio::test]
async fn a_decoy_does_not_hold_up_the_challenger() {
    let (store, spec, version) = job().await;
    let m = market(&spec, &version).await;
    let decoy_node = m.accounts[4];
    m.chain.register(decoy_node, m.eth).await.unwrap();
    let decoy_spec = long(&spec, LONG);
    let decoy = post(&m, &store, &decoy_spec, |t| t).await;
    m.chain.claim_job(decoy_node, decoy).await.unwrap();
    let decoy_log = train(&store, &decoy_spec).await;
    let decoy_log = forge(&store, &decoy_log, |r| r[LONG as usize - 1].loss += 1.0).await;
    oai_verify::submit_log(&m.chain, &store, decoy_node, decoy, &decoy_log)
        .await
        .unwrap();
    let cheat = post(&m, &store, &spec, |t| t).await;
    let c = || m.chain.clone();
    let mut node =
        NodeAgent::new(c(), store.clone(), m.node).forging(Box::new(|r| r[13].loss += 4.0));
    until_quiet(&mut node).await;
    assert_eq!(
        m.chain.job(cheat).await.unwrap().status,
        JobStatus::Submitted
    );
    let mut challenger = ChallengerAgent::new(c(), store.clone(), m.challenger);
    let mut referee = RefereeAgent::new(c(), store.clone(), m.referee);
    let mut lines = Vec::new();
    while m.chain.job(cheat).await.unwrap().status != JobStatus::Slashed {
        lines.extend(challenger.tick().await.unwrap());
        lines.extend(node.tick().await.unwrap());
        lines.extend(referee.tick().await.unwrap());
        assert!(lines.len() < 200, "{lines:#?}");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(
        m.chain.job(decoy).await.unwrap().status,
        JobStatus::Submitted,
        "the cheat was slashed while the decoy was still being audited: {lines:#?}"
    );
    assert!(challenger.busy());
    until_quiet(&mut challenger).await;
    assert_eq!(
        m.chain.job(decoy).await.unwrap().status,
        JobStatus::Disputed
    );
}

/// `spec` posted and claimed by the node, which submits its run edited by `forgery`; the
/// challenger disputes it with the honest run and both bisect until the case waits for the
/// referee. Returns the job.
async fn adjudicated<E: oai_chain::Evm + 'static>(
    m: &Market<E>,
    store: &MemStore,
    spec: &JobSpec,
    forgery: impl FnOnce(&mut Vec<StepRecord>),
) -> u64 {
    let job = post(m, store, spec, |t| t).await;
    m.chain.claim_job(m.node, job).await.unwrap();
    let honest = train(store, spec).await;
    let forged = forge(store, &honest, forgery).await;
    oai_verify::submit_log(&m.chain, store, m.node, job, &forged)
        .await
        .unwrap();
    let honest = load(store, &honest).await;
    challenge(&m.chain, m.challenger, job, &honest)
        .await
        .unwrap()
        .unwrap();
    super::game::bisect(m, store, job, &load(store, &forged).await, &honest).await;
    job
}

/// A case whose step is far from its checkpoint (a long replay) is waiting for the referee, and
/// then another. The stock referee replayed the first inside its tick, and the vote on the
/// second waited for it (in `oai node`, past the case's deadline: voided, the window
/// restarted, the cheater's stake held that much longer). Judging runs in the background now:
/// the second case is voted and the cheater slashed while the first is still being replayed.
#[tokio::test]
async fn a_slow_case_does_not_hold_up_the_referee() {
    let (store, spec, version) = job().await;
    let m = market(&spec, &version).await;
    // the decoy's forged step is its last: a replay of LONG steps from the initial state
    let decoy_spec = JobSpec {
        checkpoint_every: LONG,
        ..long(&spec, LONG)
    };
    let decoy = adjudicated(&m, &store, &decoy_spec, |r| {
        r[LONG as usize - 1].loss += 1.0
    })
    .await;
    // the cheat: a short job forged at step 13
    let cheat = adjudicated(&m, &store, &spec, |r| r[13].loss += 4.0).await;
    for job in [decoy, cheat] {
        let d = m.chain.dispute(job).await.unwrap().unwrap();
        assert_eq!(d.turn, Turn::Adjudication, "job {job}");
    }
    let mut referee = RefereeAgent::new(m.chain.clone(), store.clone(), m.referee);
    let mut lines = Vec::new();
    while m.chain.resolve(m.challenger, cheat).await.is_err() {
        lines.extend(referee.tick().await.unwrap());
        assert!(lines.len() < 20, "{lines:#?}");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(m.chain.job(cheat).await.unwrap().status, JobStatus::Slashed);
    assert!(
        referee.busy(),
        "the cheat was slashed while the decoy's step was still being replayed: {lines:#?}"
    );
    assert_eq!(
        m.chain.job(decoy).await.unwrap().status,
        JobStatus::Disputed
    );
    until_quiet(&mut referee).await;
    m.chain.resolve(m.challenger, decoy).await.unwrap();
    assert_eq!(m.chain.job(decoy).await.unwrap().status, JobStatus::Slashed);
}

/// Jobs that would cost a node its stake after the claim: a spec that fails at its first step
/// (the node failed mid-training and the job expired on it), one far longer than
/// its duration allows, one beyond the node's limits, one that pays too little. Each is
/// refused before the claim (said once), and the node goes on to the good job after them.
#[tokio::test]
async fn a_poison_job_is_refused_before_claiming_and_costs_nothing() {
    let (store, spec, version) = job().await;
    let m = market(&spec, &version).await;
    // a model whose input does not match the dataset's records: its first step fails
    let misfit = JobSpec {
        model: ModelSpec::Mlp {
            input: 9,
            hidden: vec![16],
            classes: 3,
            dropout: 0.0,
        },
        ..spec.clone()
    };
    let poison = post(&m, &store, &misfit, |t| t).await;
    let too_long = post(&m, &store, &long(&spec, 10_000_000), |t| JobTerms {
        max_duration: 60,
        ..t
    })
    .await;
    let too_big_spec = JobSpec {
        model: ModelSpec::Mlp {
            input: 8,
            hidden: vec![4_096, 4_096],
            classes: 3,
            dropout: 0.0,
        },
        ..spec.clone()
    };
    let too_big = post(&m, &store, &too_big_spec, |t| t).await;
    let seven = JobSpec {
        seed: 7,
        ..spec.clone()
    };
    let cheap = post_paying(&m, &store, &seven, |t| t, m.eth / U256::from(2)).await;
    let good = post(&m, &store, &spec, |t| t).await;
    let stake = m.chain.stake(m.node).await.unwrap();
    let limits = NodeLimits {
        max_params: 1_000_000,
        min_reward: m.eth,
        ..NodeLimits::default()
    };
    let mut node = NodeAgent::new(m.chain.clone(), store.clone(), m.node).limits(limits);
    let lines = until_quiet(&mut node).await;
    for (job, why) in [
        (poison, "its spec fails"),
        (too_long, "the job allows 60 s"),
        (too_big, "parameters, this node takes at most 1000000"),
        (cheap, "this node takes at least"),
    ] {
        let said: Vec<_> = lines
            .iter()
            .filter(|l| l.starts_with(&format!("job {job}: refused")))
            .collect();
        assert_eq!(said.len(), 1, "job {job} refused once: {lines:#?}");
        assert!(said[0].contains(why), "job {job}: {said:?}");
        assert_eq!(m.chain.job(job).await.unwrap().status, JobStatus::Open);
    }
    assert_eq!(
        m.chain.job(good).await.unwrap().status,
        JobStatus::Submitted
    );
    assert_eq!(m.chain.stake(m.node).await.unwrap().stake, stake.stake);
    assert!(
        until_quiet(&mut node).await.is_empty(),
        "nothing said twice"
    );
}

/// A spec whose loss stops being finite only after the node's trial steps: the stock node
/// claimed it, its training stopped at the first non-finite step, and it could submit nothing
/// before its deadline: `expire` took its stake for the spec's fault. A step whose loss or
/// gradient norm is not finite is part of the computation now: skipped (the weights and
/// optimiser state left as they were) and logged as such, so the job completes, replays bit for
/// bit, passes its audit and is paid.
#[tokio::test]
async fn a_spec_that_diverges_after_the_trial_costs_the_node_nothing() {
    let (store, spec, version) = job().await;
    let m = market(&spec, &version).await;
    // lr 0 at step 0 (the trial), then far too large: the weights overflow by step 2
    let diverging = JobSpec {
        optimizer: OptimizerSpec::Sgd {
            momentum: 0.0,
            weight_decay: 0.0,
        },
        schedule: Schedule::WarmupCosine {
            lr: 1e38,
            warmup: 2,
            decay_steps: 4,
            min_lr: 1e38,
        },
        grad_clip: None,
        ..spec.clone()
    };
    let id = post(&m, &store, &diverging, |t| t).await;
    let stake = m.chain.stake(m.node).await.unwrap();
    let limits = NodeLimits {
        trial_steps: 1,
        ..NodeLimits::default()
    };
    let mut node = NodeAgent::new(m.chain.clone(), store.clone(), m.node).limits(limits);
    let said = until_quiet(&mut node).await;
    let job = m.chain.job(id).await.unwrap();
    assert_eq!(job.status, JobStatus::Submitted, "{said:#?}");
    let result = job.result.unwrap();
    let log = oai_train::VerifiedLog::from_head(
        &store,
        &oai_verify::cid_of(&result.genesis),
        &oai_verify::cid_of(&result.head),
    )
    .await
    .unwrap();
    let records = log.records(&store, ..).await.unwrap();
    assert!(records[0].loss.is_finite(), "the trial step is a real one");
    let skipped = records.iter().filter(|r| r.skipped()).count();
    assert!(skipped > 0, "the spec diverges: {records:#?}");
    for r in records.iter().filter(|r| r.skipped()) {
        assert_eq!(
            r.weights_after, r.weights_before,
            "a skipped step changes nothing"
        );
    }
    // the audit replays it bit for bit, skipped steps included: nobody challenges
    let mut challenger = ChallengerAgent::new(m.chain.clone(), store.clone(), m.challenger);
    let judged = until_quiet(&mut challenger).await;
    assert_eq!(
        m.chain.job(id).await.unwrap().status,
        JobStatus::Submitted,
        "{judged:#?}"
    );
    m.chain.advance_time(86_400 * 30).await.unwrap();
    until_quiet(&mut node).await;
    assert_eq!(m.chain.job(id).await.unwrap().status, JobStatus::Paid);
    assert_eq!(m.chain.stake(m.node).await.unwrap().stake, stake.stake);
}

/// A store that counts the reads of one block.
#[derive(Debug, Clone)]
struct Counting {
    inner: MemStore,
    block: Cid,
    reads: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

#[async_trait::async_trait]
impl BlockStore for Counting {
    async fn put_block(&self, block: oai_data::store::Block) -> oai_data::Result<()> {
        self.inner.put_block(block).await
    }
    async fn get(&self, cid: &Cid) -> oai_data::Result<bytes::Bytes> {
        if *cid == self.block {
            self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        self.inner.get(cid).await
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

/// A requester that withholds the last chunk of its dataset had the node fetch and check the
/// whole dataset again on every tick (a chunk not there yet is tried again): a cheap way to
/// keep a node downloading. The node now waits before each new try (2 s, doubling up to
/// 10 minutes), and still claims the job once the chunk turns up.
#[tokio::test]
async fn a_withheld_chunk_is_tried_again_with_backoff() {
    let (store, spec, version) = job().await;
    let m = market(&spec, &version).await;
    let chunks = version.chunks();
    let (first, last) = (chunks[0].cid, chunks.last().unwrap().cid);
    let withheld = store.get(&last).await.unwrap();
    store.delete(&last).await.unwrap();
    let id = post(&m, &store, &spec, |t| t).await;
    let counting = Counting {
        inner: store.clone(),
        block: first,
        reads: Default::default(),
    };
    let mut node = NodeAgent::new(m.chain.clone(), counting.clone(), m.node);
    let mut lines = Vec::new();
    for _ in 0..10 {
        lines.extend(step(&mut node).await);
    }
    let reads = counting.reads.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        reads <= 2,
        "the dataset was read {reads} times in 10 ticks: {lines:#?}"
    );
    assert_eq!(m.chain.job(id).await.unwrap().status, JobStatus::Open);
    store.put(last.codec(), withheld).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    let said = until_quiet(&mut node).await;
    assert_eq!(
        m.chain.job(id).await.unwrap().status,
        JobStatus::Submitted,
        "{said:#?}"
    );
}

/// One job's error ended the stock node's whole tick: here a restarted node that lost one
/// job's log (a data request on it fails) never reached its other job's dispute, and in
/// `oai node` lost that one too, by timeout. Each job's error is said once now and the tick
/// goes on to the next job.
#[tokio::test]
async fn one_failing_job_does_not_stop_the_agents_other_jobs() {
    let (store, spec, version) = job().await;
    let m = market(&spec, &version).await;
    let other = JobSpec {
        seed: 43,
        ..spec.clone()
    };
    let broken = post(&m, &store, &spec, |t| t).await;
    let disputed = post(&m, &store, &other, |t| t).await;
    let mut node = NodeAgent::new(m.chain.clone(), store.clone(), m.node);
    until_quiet(&mut node).await;
    let head = m.chain.job(broken).await.unwrap().result.unwrap().head;
    store.delete(&oai_verify::cid_of(&head)).await.unwrap();
    m.chain
        .request_data(m.challenger, broken, 7, m.eth / U256::from(100))
        .await
        .unwrap();
    let liar = load(&store, &train(&store, &JobSpec { seed: 5, ..other }).await).await;
    challenge(&m.chain, m.challenger, disputed, &liar)
        .await
        .unwrap()
        .unwrap();
    // started again: its cache of logs is gone, the chain and the store are what it has
    let mut node = NodeAgent::new(m.chain.clone(), store.clone(), m.node);
    let turn = m.chain.dispute(disputed).await.unwrap().unwrap().turn;
    assert_eq!(turn, Turn::Node);
    let did = node.tick().await.unwrap();
    let errors = |did: &[String]| {
        did.iter()
            .filter(|l| l.starts_with(&format!("job {broken}: error")))
            .count()
    };
    assert_eq!(errors(&did), 1, "{did:#?}");
    assert!(
        did.iter()
            .any(|l| l == &format!("job {disputed}: answered a bisection move")),
        "{did:#?}"
    );
    let d = m.chain.dispute(disputed).await.unwrap().unwrap();
    assert_eq!(d.turn, Turn::Challenger);
    challenger_move(&m.chain, m.challenger, disputed, &liar)
        .await
        .unwrap();
    let again = node.tick().await.unwrap();
    assert_eq!(errors(&again), 0, "said once: {again:#?}");
    assert!(
        again
            .iter()
            .any(|l| l == &format!("job {disputed}: answered a bisection move")),
        "{again:#?}"
    );
}

/// Work that finishes during a round (after its agent ticked, before the round ends) was lost to
/// the play: nobody had said anything, nothing ran any more, so the chain's clock moved on
/// before the agent took the outcome: `oai node --embedded` paid a cheater whose audit finished
/// a moment too late, one run in two. The play now ticks again after any round that began
/// with work running.
#[tokio::test]
async fn work_that_finishes_during_a_round_is_taken_before_time_passes() {
    use oai_verify::agents::{play_until_settled, Agent};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    /// Its work runs until its first tick and is done right after: the tick saw it running.
    struct Finishing(Arc<AtomicUsize>);
    #[async_trait::async_trait]
    impl Agent for Finishing {
        async fn tick(&mut self) -> oai_verify::Result<Vec<String>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(Vec::new())
        }
        fn busy(&self) -> bool {
            self.0.load(Ordering::SeqCst) == 0
        }
    }
    let (_, spec, version) = job().await;
    let m = market(&spec, &version).await;
    let ticks = Arc::new(AtomicUsize::new(0));
    let mut agents: [(&str, Box<dyn Agent>); 1] = [("worker", Box::new(Finishing(ticks.clone())))];
    play_until_settled(&m.chain, &mut agents, 0, 600, 10, |_| {})
        .await
        .unwrap();
    assert_eq!(
        ticks.load(Ordering::SeqCst),
        2,
        "ticked again to take the outcome before the play ended"
    );
}
