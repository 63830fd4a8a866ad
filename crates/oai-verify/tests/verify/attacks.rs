//! Attacks on the dispute game by a node that plays it against the stock agents: each is an
//! adversary written out move by move; the honest challenger must end with more than it
//! started, the node slashed.

use super::game::{load, submitted};
use super::*;
use oai_train::VerifiedLog;
use oai_verify::agents::{play_until_settled, Agent, ChallengerAgent, Played, RefereeAgent};
use oai_verify::game::commitment_at;

/// The job of these tests posted on a fresh embedded market, its spec in the store: the
/// store, the spec, the market and the job's id.
async fn posted_job() -> (MemStore, JobSpec, Market<Revm>, u64) {
    let (store, spec, version) = job().await;
    let m = market(&spec, &version).await;
    spec.put(&store).await.unwrap();
    let (id, _) = m
        .chain
        .post_job(m.requester, &m.terms, m.eth)
        .await
        .unwrap();
    (store, spec, m, id)
}

/// What `who` holds and is owed.
async fn worth<E: oai_chain::Evm + 'static>(m: &Market<E>, who: Address) -> U256 {
    m.chain.balance(who).await.unwrap() + m.chain.owed(who).await.unwrap()
}

/// The honest challenger ended `gained` wei richer: exactly `want` where gas is free (the
/// embedded EVM, `exact`), else `want` less its gas, far under 1% of an ether.
fn check_gain<E>(m: &Market<E>, before: U256, after: U256, want: U256, exact: bool) {
    let fees = if exact {
        U256::ZERO
    } else {
        m.eth / U256::from(100)
    };
    assert!(
        after <= before + want && after + fees >= before + want,
        "the challenger went from {before} to {after} wei; expected {want} more (less gas)"
    );
}

/// The stock challenger and referee play job `job` against a node whose every bisection move
/// is `answer(mid)` and that reveals from the log it submitted (`submitted`) where it can (it
/// stays silent where its proofs do not hold), until the job is slashed or 120 rounds have
/// passed; returns what they did.
async fn play_against<E: oai_chain::Evm + 'static, S: Store>(
    m: &Market<E>,
    store: &S,
    job: u64,
    submitted: &VerifiedLog,
    answer: impl Fn(u64) -> B256,
) -> Vec<String> {
    let mut challenger = ChallengerAgent::new(m.chain.clone(), store.clone(), m.challenger);
    let mut referee = RefereeAgent::new(m.chain.clone(), store.clone(), m.referee);
    let mut lines = Vec::new();
    for _ in 0..120 {
        lines.extend(step(&mut challenger).await);
        lines.extend(step(&mut referee).await);
        if let Some(d) = m.chain.dispute(job).await.unwrap() {
            if d.turn == Turn::Node {
                let c = answer(d.mid());
                m.chain.bisect(m.node, job, c).await.unwrap();
                lines.push(format!("node: c_{} = {c}", d.mid()));
            }
            if d.turn == Turn::Reveal {
                let r = oai_verify::game::node_move(&m.chain, store, m.node, job, submitted).await;
                lines.push(format!("node: reveal: {:?}", r.map(|r| r.is_some())));
            }
        }
        if m.chain.job(job).await.unwrap().status == JobStatus::Slashed {
            lines.extend(step(&mut challenger).await); // withdraws
            break;
        }
        m.chain.advance_time(600).await.unwrap();
    }
    lines
}

/// The node forged step 13, then answers every bisection move with the honest run's
/// commitment instead of its own log's. A challenger that disputes every commitment above the
/// forged step whatever it is would drive the case to an honest step 13 and lose its bond,
/// again and again; one that agrees exactly with the honest commitments drives it to the
/// node's own last record, which does not follow.
pub(super) async fn equivocating_node_is_slashed<E: oai_chain::Evm + 'static, S: Store>(
    m: &Market<E>,
    store: &S,
    spec: &JobSpec,
    exact: bool,
) {
    spec.put(store).await.unwrap();
    let honest = load(store, &train(store, spec).await).await;
    let forged = forge(store, &train(store, spec).await, |r| r[13].loss += 1.0).await;
    let job = submitted(m, store, &forged).await;
    let before = worth(m, m.challenger).await;
    let node = load(store, &forged).await;
    let lines = play_against(m, store, job, &node, |mid| {
        commitment_at(&honest, mid).unwrap()
    })
    .await;
    assert_eq!(
        m.chain.job(job).await.unwrap().status,
        JobStatus::Slashed,
        "{lines:#?}"
    );
    let after = worth(m, m.challenger).await;
    // the bond back and the unburned half of the stake
    check_gain(m, before, after, m.eth / U256::from(2), exact);
}

#[tokio::test]
async fn a_node_that_answers_the_game_with_honest_commitments_is_slashed() {
    let (store, spec, version) = job().await;
    let m = market(&spec, &version).await;
    equivocating_node_is_slashed(&m, &store, &spec, true).await;
}

/// A fault without a bad step: the node stops one step short and submits a log of correct
/// steps. Every step it did replays: the fault is the log's length. The challenger plays the
/// game from the honest log (resumed from the node's header), agrees with every commitment
/// of the node's, and the game ends on the last step, whose c_N the node's log does not have:
/// it cannot reveal it, and loses by timeout.
#[tokio::test]
async fn a_node_that_stops_one_step_short_is_slashed() {
    let (store, spec, version) = job().await;
    let m = market(&spec, &version).await;
    spec.put(&store).await.unwrap();
    let full = load(&store, &train(&store, &spec).await).await;
    let short_head = oai_verify::cid_of(&commitment_at(&full, STEPS - 1).unwrap());
    let short = VerifiedLog::from_head(&store, &full.log.header, &short_head)
        .await
        .unwrap();
    let said = ["not the honest log: challenged", "timed out the other side"];
    fault_is_slashed(&m, &store, &short, &said).await;
}

/// What the challenger and the referee say of a terms fault.
const TERMS_SAID: [&str; 2] = [
    "wrong on its face (terms): challenged",
    "terms judged: NodeWrong(Terms",
];

/// The node submits `log`, which is not the job's, and answers every move from it: the node
/// is slashed, the challenger gains the unburned half of its stake, and the challenger and
/// the referee said each of `said`.
async fn fault_is_slashed(m: &Market<Revm>, store: &MemStore, log: &VerifiedLog, said: &[&str]) {
    let job = submitted(m, store, &log.log).await;
    let before = worth(m, m.challenger).await;
    let lines = play_against(m, store, job, log, |mid| commitment_at(log, mid).unwrap()).await;
    assert_eq!(
        m.chain.job(job).await.unwrap().status,
        JobStatus::Slashed,
        "{lines:#?}"
    );
    for said in said {
        assert!(lines.iter().any(|l| l.contains(said)), "{lines:#?}");
    }
    let after = worth(m, m.challenger).await;
    check_gain(m, before, after, m.eth / U256::from(2), true);
}

/// The job's spec names this machine's compute class; the node submits a log whose header
/// names another (here one no referee of this test has). That is wrong on its face: the
/// challenger's audit and the referee decide it as a terms fault, where a replay would only
/// have been an error of the referee's (no vote, the dispute voided, the window restarted,
/// again and again).
#[tokio::test]
async fn a_log_of_another_compute_class_than_the_job_names_is_slashed() {
    let (store, base, version) = job().await;
    let here = load(&store, &train(&store, &base).await)
        .await
        .header
        .env
        .class;
    let spec = JobSpec {
        compute_class: Some(here),
        ..base
    };
    let m = market(&spec, &version).await;
    spec.put(&store).await.unwrap();
    let honest = load(&store, &train(&store, &spec).await).await;
    let mut header = honest.header.clone();
    header.env.class = "aarch64-neon/cpu".into();
    let header = store
        .put(
            oai_core::ids::DAG_CBOR,
            log::encode(&header).unwrap().into(),
        )
        .await
        .unwrap();
    let records = honest.records(&store, ..).await.unwrap();
    let (_, other) = log::store_chain(&store, header, honest.header.init, records)
        .await
        .unwrap();
    let other = load(&store, &other).await;
    fault_is_slashed(&m, &store, &other, &TERMS_SAID).await;
}

/// The requester withholds a chunk of its dataset (here: deleted from the store the node reads).
/// A node that claimed the job could not train it, and after the deadline the requester would
/// `expire` the job and take the node's stake. The node checks every chunk before it claims,
/// refuses the job, and loses nothing.
#[tokio::test]
async fn a_requester_that_withholds_its_dataset_cannot_take_the_nodes_stake() {
    let (store, spec, version) = job().await;
    let m = market(&spec, &version).await;
    spec.put(&store).await.unwrap();
    let chunk = version.chunks().last().unwrap().cid;
    store.delete(&chunk).await.unwrap();
    let (job, _) = m
        .chain
        .post_job(m.requester, &m.terms, m.eth)
        .await
        .unwrap();
    let stake = m.chain.stake(m.node).await.unwrap().stake;
    let mut node = oai_verify::agents::NodeAgent::new(m.chain.clone(), store.clone(), m.node);
    let mut lines = Vec::new();
    for _ in 0..3 {
        lines.extend(step(&mut node).await);
    }
    // it tried (in the background), said why it cannot claim once, and keeps trying quietly
    let mut later = Vec::new();
    for _ in 0..4 {
        later.extend(step(&mut node).await);
    }
    assert!(later.is_empty(), "{lines:#?} then {later:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("error") && l.contains("not found")),
        "{lines:#?}"
    );
    m.chain.advance_time(86_401).await.unwrap();
    if m.chain.job(job).await.unwrap().status == JobStatus::Claimed {
        m.chain.expire_job(m.requester, job).await.unwrap();
    }
    assert_eq!(
        m.chain.stake(m.node).await.unwrap().stake,
        stake,
        "the node kept its stake: {lines:#?}"
    );
    assert_eq!(m.chain.job(job).await.unwrap().node, None, "{lines:#?}");
}

/// An honest result disputed by a lying challenger reaches the referee, whose own IPFS node is
/// down. A referee that took every fetch failure for withheld data would vote the honest node
/// wrong; it must cast no vote (an error of its own) and judge once its store answers.
#[cfg(feature = "ipfs")]
#[tokio::test]
async fn a_referee_whose_own_ipfs_node_is_down_does_not_vote() {
    use oai_verify::game::{challenge, referee_move, Judgement};
    let (store, spec, version) = job().await;
    let m = market(&spec, &version).await;
    let honest = train(&store, &spec).await;
    let job = submitted(&m, &store, &honest).await;
    let liar = JobSpec {
        seed: 5,
        ..spec.clone()
    };
    let liar = load(&store, &train(&store, &liar).await).await;
    challenge(&m.chain, m.challenger, job, &liar)
        .await
        .unwrap()
        .unwrap();
    super::game::bisect(&m, &store, job, &load(&store, &honest).await, &liar).await;
    // nothing listens on port 9 of the loopback
    let down = oai_data::store::IpfsStore::new("http://127.0.0.1:9").unwrap();
    let refused = referee_move(&m.chain, m.referee, job, &down, CPU).await;
    assert!(
        matches!(
            refused,
            Err(oai_verify::Error::Data(
                oai_data::Error::IpfsUnreachable { .. }
            ))
        ),
        "{refused:?}"
    );
    let d = m.chain.dispute(job).await.unwrap().unwrap();
    assert_eq!(d.turn, Turn::Adjudication, "no vote was cast");
    assert!(
        m.chain.resolve(m.node, job).await.is_err(),
        "no verdict yet"
    );
    let (judgement, _) = referee_move(&m.chain, m.referee, job, &store, CPU)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(judgement, Judgement::NodeCorrect);
    m.chain.resolve(m.node, job).await.unwrap();
    assert_eq!(m.chain.job(job).await.unwrap().status, JobStatus::Submitted);
}

/// A garbage collection while a job is live would delete the node's log (nothing names it),
/// and the node would then lose a dispute by the availability rule. A node `keeping` its logs
/// names each under `jobs/<market>/<job>` until the job settles: the collection keeps every
/// block an audit needs, and once the job is paid the name goes and the log can be collected.
#[tokio::test]
async fn garbage_collection_keeps_a_live_jobs_log_until_it_settles() {
    let (store, _, m, job) = posted_job().await;
    let refs: std::sync::Arc<dyn oai_data::RefStore> = std::sync::Arc::new(store.clone());
    let mut node =
        oai_verify::agents::NodeAgent::new(m.chain.clone(), store.clone(), m.node).keeping(refs);
    until_quiet(&mut node).await;
    let j = m.chain.job(job).await.unwrap();
    assert_eq!(j.status, JobStatus::Submitted);
    let sub = Submission::from_chain(&j.terms, &j.result.unwrap());
    let collected = oai_data::gc::collect_refs(&store, &store).await.unwrap();
    assert!(collected.kept > 0);
    let audit = verify(&store, &sub, Strategy::Full).await;
    assert!(
        audit.is_accepted(),
        "the log, checkpoints and data survived: {audit:?}"
    );
    m.chain.advance_time(86_400).await.unwrap();
    step(&mut node).await; // finalizes
    step(&mut node).await; // the job is settled: its log is no longer kept
    assert_eq!(m.chain.job(job).await.unwrap().status, JobStatus::Paid);
    oai_data::gc::collect_refs(&store, &store).await.unwrap();
    assert!(
        !store.has(&sub.head).await.unwrap(),
        "collected once settled"
    );
}

/// A node that publishes nothing: it forges step 13, keeps every block of its log in a store
/// of its own and submits. The stock challenger used to take a log it could not fetch for its
/// own trouble and never challenge, and the node was paid. Now the challenger computes the
/// honest log from the node's header (which the chain holds) and challenges; the node plays
/// from its log and must post the record the game ends on, on chain, with its proofs; the
/// referee judges it from the chain and the honest prefix, which the challenger serves.
pub(super) async fn withholding_node_is_slashed<E: oai_chain::Evm + 'static, S: Store>(
    m: &Market<E>,
    network: &S,
    spec: &JobSpec,
    version: &oai_data::dataset::Version,
    exact: bool,
) {
    use oai_verify::agents::{ChallengerAgent, NodeAgent, RefereeAgent};
    spec.put(network).await.unwrap();
    // the node's own store: the job's spec and dataset, and then its log, which it keeps
    let private = MemStore::new();
    let mut car = Vec::new();
    oai_data::car::export(network, &version.cid(), &mut car)
        .await
        .unwrap();
    oai_data::car::import(&private, &car[..]).await.unwrap();
    spec.put(&private).await.unwrap();
    let (job, _) = m
        .chain
        .post_job(m.requester, &m.terms, m.eth)
        .await
        .unwrap();
    let before = worth(m, m.challenger).await;
    let c = || m.chain.clone();
    // a forgery of its own: the other tests' forged logs may already be on the network
    let forging: oai_verify::agents::Forgery = Box::new(|r| r[13].loss += 2.5);
    let mut agents: [(&str, Box<dyn Agent>); 3] = [
        (
            "node",
            Box::new(NodeAgent::new(c(), private.clone(), m.node).forging(forging)),
        ),
        (
            "challenger",
            Box::new(ChallengerAgent::new(c(), network.clone(), m.challenger)),
        ),
        (
            "referee",
            Box::new(RefereeAgent::new(c(), network.clone(), m.referee)),
        ),
    ];
    let mut lines = Vec::new();
    play_until_settled(&m.chain, &mut agents, 0, 600, 60, |p| {
        if let Played::Did { line, .. } = p {
            lines.push(line.to_string());
        }
    })
    .await
    .unwrap();
    let head = m.chain.job(job).await.unwrap().result.unwrap().head;
    assert!(
        !network.has(&oai_verify::cid_of(&head)).await.unwrap(),
        "the node's log never reached the network"
    );
    assert_eq!(
        m.chain.job(job).await.unwrap().status,
        JobStatus::Slashed,
        "{lines:#?}"
    );
    for said in [
        "not the honest log: challenged",
        "revealed the disputed record",
        "step 13 judged: NodeWrong",
    ] {
        assert!(lines.iter().any(|l| l.contains(said)), "{said}: {lines:#?}");
    }
    let after = worth(m, m.challenger).await;
    check_gain(m, before, after, m.eth / U256::from(2), exact);
}

#[tokio::test]
async fn a_node_that_publishes_nothing_is_slashed() {
    let (store, spec, version) = job().await;
    let m = market(&spec, &version).await;
    withholding_node_is_slashed(&m, &store, &spec, &version, true).await;
}

/// A challenger `keeping` its honest logs names each under `challenges/<market>/<job>` while
/// the job is live: where the node serves nothing, the referee judges from that log's prefix,
/// and a garbage collection must not take it. Once the job is slashed, the name goes.
#[tokio::test]
async fn a_challenger_keeps_its_honest_log_until_the_job_settles() {
    use oai_data::RefStore;
    use oai_verify::agents::{ChallengerAgent, NodeAgent, RefereeAgent};
    let (store, spec, m, _) = posted_job().await;
    let refs: std::sync::Arc<dyn oai_data::RefStore> = std::sync::Arc::new(store.clone());
    let name = format!("challenges/{}/1", m.chain.deployment().market);
    let c = || m.chain.clone();
    let mut node =
        NodeAgent::new(c(), store.clone(), m.node).forging(Box::new(|r| r[13].loss += 4.0));
    let mut challenger = ChallengerAgent::new(c(), store.clone(), m.challenger).keeping(refs);
    until_quiet(&mut node).await;
    until_quiet(&mut challenger).await;
    assert_eq!(m.chain.job(1).await.unwrap().status, JobStatus::Disputed);
    let head = store
        .get_ref(&name)
        .await
        .unwrap()
        .expect("the honest log is named");
    let collected = oai_data::gc::collect_refs(&store, &store).await.unwrap();
    assert!(collected.kept > 0);
    let honest = VerifiedLog::from_head(
        &store,
        &load(&store, &train(&store, &spec).await).await.log.header,
        &head,
    )
    .await
    .expect("the honest log survived the collection");
    assert_eq!(honest.log.steps, STEPS);
    let mut agents: [(&str, Box<dyn Agent>); 3] = [
        ("node", Box::new(node)),
        ("challenger", Box::new(challenger)),
        (
            "referee",
            Box::new(RefereeAgent::new(c(), store.clone(), m.referee)),
        ),
    ];
    play_until_settled(&m.chain, &mut agents, 0, 600, 60, |_| {})
        .await
        .unwrap();
    assert_eq!(m.chain.job(1).await.unwrap().status, JobStatus::Slashed);
    agents[1].1.tick().await.unwrap(); // the challenger sees the job settled
    assert_eq!(
        store.get_ref(&name).await.unwrap(),
        None,
        "released once settled"
    );
}

/// An auditor that cannot fetch a record asks for it on chain (`request_data`, 1% of the
/// stake as bond): the stock node posts it with its proof within the move timeout and is paid
/// the bond, the record reads back from the chain as the node's, and the job pays as usual.
/// (A node that leaves a request unanswered is slashed: the conformance suite's "a node
/// withholds a record".)
#[tokio::test]
async fn a_data_request_is_answered_by_the_stock_node() {
    use oai_verify::agents::NodeAgent;
    let (store, _, m, job) = posted_job().await;
    let mut node = NodeAgent::new(m.chain.clone(), store.clone(), m.node);
    until_quiet(&mut node).await;
    let bond = m.eth / U256::from(100);
    m.chain
        .request_data(m.challenger, job, 7, bond)
        .await
        .unwrap();
    let before = m.chain.balance(m.node).await.unwrap();
    let did = step(&mut node).await;
    assert!(
        did.iter().any(|l| l.contains("posted a requested record")),
        "{did:?}"
    );
    // paid the bond (and withdrew it in the same tick; gas is free on the embedded EVM)
    assert_eq!(m.chain.balance(m.node).await.unwrap(), before + bond);
    let result = m.chain.job(job).await.unwrap().result.unwrap();
    let sub = Submission::from_chain(&m.terms, &result);
    let log = VerifiedLog::from_head(&store, &sub.header, &sub.head)
        .await
        .unwrap();
    let posted = m
        .chain
        .posted_block(job, commitment_at(&log, 8).unwrap())
        .await
        .unwrap()
        .expect("the record is on chain");
    assert_eq!(posted, log.record_bytes(&store, 7).await.unwrap());
    for _ in 0..4 {
        m.chain.advance_time(86_400).await.unwrap();
        step(&mut node).await;
    }
    assert_eq!(m.chain.job(job).await.unwrap().status, JobStatus::Paid);
}

/// A job whose claim window has passed stays Open until someone cancels it. The stock node
/// tried to claim it every tick; the claim reverted, the revert ended the tick, and every job
/// after it went untouched (here a fresh job it never claimed; in `oai node`, a dispute it
/// never answered). A stale job is not claimed: the node takes the next one.
#[tokio::test]
async fn a_stale_job_does_not_stop_the_node() {
    use oai_verify::agents::NodeAgent;
    let (store, spec, version) = job().await;
    let m = market(&spec, &version).await;
    spec.put(&store).await.unwrap();
    let stale = JobTerms {
        claim_window: 60,
        ..m.terms.clone()
    };
    let (first, _) = m.chain.post_job(m.requester, &stale, m.eth).await.unwrap();
    m.chain.advance_time(61).await.unwrap();
    let (second, _) = m
        .chain
        .post_job(m.requester, &m.terms, m.eth)
        .await
        .unwrap();
    let mut node = NodeAgent::new(m.chain.clone(), store.clone(), m.node);
    let did = until_quiet(&mut node).await;
    assert_eq!(m.chain.job(first).await.unwrap().status, JobStatus::Open);
    assert_eq!(
        m.chain.job(second).await.unwrap().status,
        JobStatus::Submitted,
        "{did:?}"
    );
}

/// A node that knows which steps a sampled audit replays can grind its head (re-forge until
/// the draw misses its forgeries). Audits were seeded by the latest block when the auditor
/// looked, which can be the block the result lands in, whose randomness is known before it
/// lands (an Ethereum block's `prevrandao` is the mix after the block before). The seed now
/// comes from the block `AUDIT_SEED_DELAY` blocks after the submission: at submit time it is not
/// made and its randomness cannot be read, and every auditor draws the same steps from it.
#[tokio::test]
async fn the_sampled_steps_cannot_be_known_at_submit_time() {
    use oai_verify::{audit_seed_block, audit_seed_of, AuditSeed, AUDIT_SEED_DELAY};
    let (store, spec, version) = job().await;
    let m = market(&spec, &version).await;
    let log = train(&store, &spec).await;
    let job = m.claimed().await;
    let (result, submitted) = oai_verify::submit_log(&m.chain, &store, m.node, job, &log)
        .await
        .unwrap();
    let sub = Submission::from_chain(&m.terms, &result);
    let block = audit_seed_block(&m.chain, job, AUDIT_SEED_DELAY)
        .await
        .unwrap();
    assert_eq!(block, submitted.block + AUDIT_SEED_DELAY);
    assert_eq!(
        audit_seed_of(&m.chain, job, &sub, AUDIT_SEED_DELAY)
            .await
            .unwrap(),
        AuditSeed::Pending { block }
    );
    assert!(m.chain.randomness(block).await.is_err(), "not made yet");
    while m.chain.block_number().await.unwrap() < block - 1 {
        m.chain.advance_time(12).await.unwrap();
    }
    assert_eq!(
        audit_seed_of(&m.chain, job, &sub, AUDIT_SEED_DELAY)
            .await
            .unwrap(),
        AuditSeed::Pending { block },
        "one block short"
    );
    m.chain.advance_time(12).await.unwrap();
    let AuditSeed::Ready(seed) = audit_seed_of(&m.chain, job, &sub, AUDIT_SEED_DELAY)
        .await
        .unwrap()
    else {
        panic!("the block is made")
    };
    assert_eq!(
        seed,
        oai_verify::audit_seed(&sub, &m.chain.randomness(block).await.unwrap())
    );
    assert_ne!(
        seed,
        oai_verify::audit_seed(&sub, &m.chain.randomness(submitted.block).await.unwrap()),
        "not the submission block's"
    );
    m.chain.advance_time(12).await.unwrap();
    let later = audit_seed_of(&m.chain, job, &sub, AUDIT_SEED_DELAY)
        .await
        .unwrap();
    assert_eq!(
        later,
        AuditSeed::Ready(seed),
        "every auditor, at any time, draws the same steps"
    );
}

/// The stock challenger auditing by samples waits for the block that seeds its draw (said
/// once), then audits, and a forged result is caught and slashed as with a full audit.
#[tokio::test]
async fn a_sampling_challenger_waits_for_its_seed_block_and_catches_a_forgery() {
    use oai_verify::agents::{ChallengerAgent, NodeAgent, RefereeAgent};
    let (store, _, m, job) = posted_job().await;
    let c = || m.chain.clone();
    let mut agents: [(&str, Box<dyn Agent>); 3] = [
        (
            "node",
            Box::new(
                NodeAgent::new(c(), store.clone(), m.node).forging(Box::new(|r| r[13].loss += 4.0)),
            ),
        ),
        (
            "challenger",
            Box::new(
                ChallengerAgent::new(c(), store.clone(), m.challenger)
                    .auditing(
                        Strategy::Sampling {
                            samples: STEPS as u32,
                        },
                        1,
                    )
                    .audit_seed_delay(3),
            ),
        ),
        (
            "referee",
            Box::new(RefereeAgent::new(c(), store.clone(), m.referee)),
        ),
    ];
    let mut lines = Vec::new();
    play_until_settled(&m.chain, &mut agents, 0, 600, 80, |p| {
        if let Played::Did { agent, line } = p {
            lines.push(format!("{agent}: {line}"));
        }
    })
    .await
    .unwrap();
    assert_eq!(m.chain.job(job).await.unwrap().status, JobStatus::Slashed);
    let waits = lines
        .iter()
        .filter(|l| l.contains("waits for block"))
        .count();
    assert_eq!(waits, 1, "{lines:#?}");
}
