//! The dispute game move by move on the embedded EVM.

use super::*;
use oai_train::VerifiedLog;
use oai_verify::game::{challenge, challenger_move, node_move, referee_move, Judgement};

/// Post the job, let the node claim it and submit `log` (its blocks in `store`); returns
/// the job.
pub(super) async fn submitted<E: oai_chain::Evm + 'static, S: Store>(
    m: &Market<E>,
    store: &S,
    log: &TrainingLog,
) -> u64 {
    let job = m.claimed().await;
    oai_verify::submit_log(&m.chain, store, m.node, job, log)
        .await
        .unwrap();
    job
}

pub(super) async fn load<S: Store>(store: &S, log: &TrainingLog) -> VerifiedLog {
    VerifiedLog::from_head(store, &log.header, &log.head)
        .await
        .unwrap()
}

/// Both sides move from their logs until the dispute waits for the referee; returns the
/// number of rounds.
pub(super) async fn bisect<E: oai_chain::Evm + 'static>(
    m: &Market<E>,
    store: &impl oai_data::BlockStore,
    job: u64,
    node: &VerifiedLog,
    own: &VerifiedLog,
) -> u32 {
    let mut rounds = 0;
    loop {
        let d = m.chain.dispute(job).await.unwrap().expect("a dispute");
        if d.turn == Turn::Adjudication {
            return rounds;
        }
        if node_move(&m.chain, store, m.node, job, node)
            .await
            .unwrap()
            .is_some()
        {
            rounds += u32::from(d.turn == Turn::Node);
        }
        challenger_move(&m.chain, m.challenger, job, own)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_cheating_node_is_bisected_to_its_forged_step_and_slashed() {
    let (store, spec, version) = job().await;
    let m = market(&spec, &version).await;
    cheating_node_is_slashed(&m, &store, &spec).await;
}

/// The same game on a LoRA job over a pinned Llama base (the architecture of SmolLM2, small):
/// the forged adapter step is found, bisected to and slashed like any other.
#[tokio::test]
async fn a_node_forging_a_lora_step_of_a_llama_is_bisected_and_slashed() {
    use oai_train::{LlamaSpec, Model, Params};
    let store = MemStore::new();
    let base = LlamaSpec {
        vocab: 256,
        context: 16,
        d_model: 32,
        layers: 1,
        heads: 4,
        kv_heads: 2,
        d_ff: 48,
        rope_theta: 10_000.0,
        rms_eps: 1e-5,
        tie_embeddings: true,
    };
    let defs = Model::new(&ModelSpec::Llama(base.clone())).param_defs();
    let params = Params::init(&defs, Seed::from_u64(8), &CPU).unwrap();
    let base_weights = Checkpoint {
        step: 0,
        params: params.tensors().unwrap(),
        optimizer: Default::default(),
    }
    .put(&store)
    .await
    .unwrap();
    let text: Vec<u8> = (0..3000u32)
        .map(|i| b"open data, open training; "[(i * 7 % 26) as usize])
        .collect();
    let records = oai_train::corpus::byte_windows(&text, 16, 13).unwrap();
    let version = Version::from_records(&store, records).await.unwrap();
    let spec = JobSpec {
        model: ModelSpec::Lora {
            base: base.into(),
            base_weights,
            rank: 4,
            alpha: 8.0,
        },
        batch_size: 4,
        ..spec(version.cid(), 42)
    };
    let m = market(&spec, &version).await;
    cheating_node_is_slashed(&m, &store, &spec).await;
}

/// A node forges step 13; the challenger trains the job itself, audits the result and
/// challenges; both bisect from their logs to step 13; the referee's replay finds the node
/// wrong; it is slashed.
pub(super) async fn cheating_node_is_slashed<E: oai_chain::Evm + 'static, S: Store>(
    m: &Market<E>,
    store: &S,
    spec: &JobSpec,
) {
    let forged = forge(store, &train(store, spec).await, |r| r[13].grad_norm *= 2.0).await;
    let job = submitted(m, store, &forged).await;
    let own = load(store, &train(store, spec).await).await;
    let sub = Submission::from_chain(&m.terms, &m.chain.job(job).await.unwrap().result.unwrap());
    let audit = verify(store, &sub, Strategy::Full).await;
    assert_eq!(audit.fault().and_then(Fault::step), Some(13));
    assert!(challenge(&m.chain, m.challenger, job, &own)
        .await
        .unwrap()
        .is_some());
    let rounds = bisect(m, store, job, &load(store, &forged).await, &own).await;
    assert!(rounds <= STEPS.ilog2() + 1, "{rounds} rounds");
    let d = m.chain.dispute(job).await.unwrap().unwrap();
    assert_eq!(
        (d.lo, d.hi),
        (13, 14),
        "the bisection ends on the forged step"
    );
    let (judgement, _) = referee_move(&m.chain, m.referee, job, store, CPU)
        .await
        .unwrap()
        .unwrap();
    let Judgement::NodeWrong(Fault::Step(miss)) = judgement else {
        panic!("{judgement:?}")
    };
    assert_eq!((miss.step, miss.field), (13, Field::GradNorm));
    m.chain.resolve(m.challenger, job).await.unwrap();
    assert_eq!(m.chain.job(job).await.unwrap().status, JobStatus::Slashed);
    // the challenger gets its bond back and the unburned half of the node's stake
    assert_eq!(
        m.chain.owed(m.challenger).await.unwrap(),
        m.eth + m.eth / U256::from(2)
    );
}

#[tokio::test]
async fn a_challenger_of_an_honest_result_loses_its_bond() {
    let (store, spec, version) = job().await;
    let m = market(&spec, &version).await;
    let honest = train(&store, &spec).await;
    let job = submitted(&m, &store, &honest).await;
    // An honest challenger never challenges it.
    let same = load(&store, &train(&store, &spec).await).await;
    assert!(challenge(&m.chain, m.challenger, job, &same)
        .await
        .unwrap()
        .is_none());
    // A challenger whose "own log" is another seed's run disputes it from step 0 on.
    let liar = load(
        &store,
        &train(
            &store,
            &JobSpec {
                seed: 5,
                ..spec.clone()
            },
        )
        .await,
    )
    .await;
    assert!(challenge(&m.chain, m.challenger, job, &liar)
        .await
        .unwrap()
        .is_some());
    bisect(&m, &store, job, &load(&store, &honest).await, &liar).await;
    let d = m.chain.dispute(job).await.unwrap().unwrap();
    assert_eq!((d.lo, d.hi), (0, 1));
    let (judgement, _) = referee_move(&m.chain, m.referee, job, &store, CPU)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(judgement, Judgement::NodeCorrect);
    m.chain.resolve(m.node, job).await.unwrap();
    assert_eq!(m.chain.job(job).await.unwrap().status, JobStatus::Submitted);
    assert_eq!(
        m.chain.owed(m.node).await.unwrap(),
        m.eth / U256::from(2),
        "the unburned half of the bond goes to the node"
    );
}

/// An honest result disputed from step 20 on by a challenger that lies there; the referee
/// can reach the dataset and the spec but none of the node's log (the node's IPFS node is
/// down, say). It reads the header and the disputed record from the chain, lacks the
/// prefix the step replays from, and abstains: no vote on data it does not have. The case is
/// voided at its deadline (the bond back, the window restarted) and the honest node keeps
/// its stake. A referee that voted the node wrong for a block it could not fetch (the rule
/// before) had the honest node slashed here.
#[tokio::test]
async fn an_honest_node_is_never_slashed_for_data_a_referee_lacks() {
    let (store, spec, version) = job().await;
    let m = market(&spec, &version).await;
    let honest = train(&store, &spec).await;
    let job = submitted(&m, &store, &honest).await;
    let liar = forge(&store, &honest, |r| r[20].loss += 1.0).await;
    let liar = load(&store, &liar).await;
    challenge(&m.chain, m.challenger, job, &liar)
        .await
        .unwrap()
        .unwrap();
    bisect(&m, &store, job, &load(&store, &honest).await, &liar).await;
    let d = m.chain.dispute(job).await.unwrap().unwrap();
    assert_eq!((d.lo, d.hi, d.turn), (20, 21, Turn::Adjudication));
    let referee_store = MemStore::new();
    oai_data::car::import(&referee_store, &car_of(&store, &version.cid()).await[..])
        .await
        .unwrap();
    spec.put(&referee_store).await.unwrap();
    let (judgement, vote) = referee_move(&m.chain, m.referee, job, &referee_store, CPU)
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(judgement, Judgement::Unavailable(_)) && vote.is_none(),
        "{judgement:?}"
    );
    assert!(
        referee_store.has(&honest.header).await.unwrap(),
        "the header was taken from the chain"
    );
    assert!(
        m.chain.resolve(m.challenger, job).await.is_err(),
        "no verdict"
    );
    m.chain.advance_time(86_401).await.unwrap();
    m.chain.timeout(m.node, job).await.unwrap();
    let j = m.chain.job(job).await.unwrap();
    assert_eq!(j.status, JobStatus::Submitted, "voided, not decided");
    assert_eq!(
        m.chain.owed(m.challenger).await.unwrap(),
        m.eth,
        "bond back"
    );
    let stake = m.chain.stake(m.node).await.unwrap();
    assert_eq!(
        stake.locked, m.eth,
        "the node's stake is still whole, and locked"
    );
}

async fn car_of(store: &MemStore, root: &Cid) -> Vec<u8> {
    let mut car = Vec::new();
    oai_data::car::export(store, root, &mut car).await.unwrap();
    car
}

#[tokio::test]
async fn a_node_that_stops_answering_loses_by_timeout() {
    let (store, spec, version) = job().await;
    let m = market(&spec, &version).await;
    let forged = forge(&store, &train(&store, &spec).await, |r| r[5].lr *= 2.0).await;
    let job = submitted(&m, &store, &forged).await;
    let own = load(&store, &train(&store, &spec).await).await;
    challenge(&m.chain, m.challenger, job, &own).await.unwrap();
    // one round, then the node falls silent
    let node_log = load(&store, &forged).await;
    node_move(&m.chain, &store, m.node, job, &node_log)
        .await
        .unwrap()
        .unwrap();
    challenger_move(&m.chain, m.challenger, job, &own)
        .await
        .unwrap()
        .unwrap();
    assert!(m.chain.timeout(m.challenger, job).await.is_err(), "not yet");
    m.chain.advance_time(3_601).await.unwrap();
    m.chain.timeout(m.challenger, job).await.unwrap();
    assert_eq!(m.chain.job(job).await.unwrap().status, JobStatus::Slashed);
    // a restarted node finds nothing left to answer
    assert!(node_move(&m.chain, &store, m.node, job, &node_log)
        .await
        .unwrap()
        .is_none());
}
