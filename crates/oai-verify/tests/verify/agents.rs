//! The parties as agents against the embedded EVM, across restarts.

use super::*;
use oai_verify::agents::{ChallengerAgent, NodeAgent, RefereeAgent};

#[tokio::test]
async fn agents_pay_the_honest_node_and_slash_the_cheater_across_restarts() {
    let (store, spec, version) = job().await;
    let m = market(&spec, &version).await;
    agents_play(&m, &store, &spec, true).await;
}

#[tokio::test]
async fn a_node_stopped_after_claiming_trains_again_and_submits() {
    let (store, spec, version) = job().await;
    let m = market(&spec, &version).await;
    spec.put(&store).await.unwrap();
    // The node claimed the job and died before it submitted.
    let job = m.claimed().await;
    let mut other = NodeAgent::new(m.chain.clone(), store.clone(), m.accounts[4]);
    assert!(until_quiet(&mut other).await.is_empty(), "not its job");
    let mut node = NodeAgent::new(m.chain.clone(), store.clone(), m.node);
    let did = until_quiet(&mut node).await;
    assert!(
        did.iter()
            .any(|l| l.starts_with(&format!("job {job}: resumed a claimed job"))),
        "{did:?}"
    );
    let j = m.chain.job(job).await.unwrap();
    assert_eq!(j.status, JobStatus::Submitted);
    let straight = train(&store, &spec).await;
    assert_eq!(
        oai_verify::cid_of(&j.result.unwrap().head),
        straight.head,
        "the same head as a run that never stopped"
    );
}

/// The agents' game on `m` with the blocks in `store`. Gas is free on the embedded EVM, so
/// there (`exact`) balances move by exactly what the market pays; elsewhere by that less
/// the gas each party paid.
pub(super) async fn agents_play<E: oai_chain::Evm + 'static, S: Store>(
    m: &Market<E>,
    store: &S,
    spec: &JobSpec,
    exact: bool,
) {
    spec.put(store).await.unwrap();
    let cheater = m.accounts[4];
    m.chain
        .register(cheater, m.eth * U256::from(3))
        .await
        .unwrap();
    let terms = JobTerms {
        challenge_window: 7_200,
        ..m.terms.clone()
    };
    for _ in 0..2 {
        m.chain.post_job(m.requester, &terms, m.eth).await.unwrap();
    }
    let before = (
        m.chain.balance(m.node).await.unwrap(),
        m.chain.balance(cheater).await.unwrap(),
        m.chain.balance(m.challenger).await.unwrap(),
    );
    let c = || m.chain.clone();
    let forging = || -> oai_verify::agents::Forgery { Box::new(|r| r[13].loss += 1.0) };
    let mut honest = NodeAgent::new(c(), store.clone(), m.node);
    let store = store.clone();
    let mut cheat = NodeAgent::new(c(), store.clone(), cheater).forging(forging());
    let mut challenger = ChallengerAgent::new(c(), store.clone(), m.challenger);
    let mut referee = RefereeAgent::new(c(), store.clone(), m.referee);
    let mut lines = Vec::new();
    let mut restarted = false;
    for _ in 0..60 {
        lines.extend(step(&mut honest).await);
        lines.extend(step(&mut cheat).await);
        lines.extend(step(&mut challenger).await);
        lines.extend(step(&mut referee).await);
        let two = m.chain.job(2).await.unwrap();
        if !restarted && two.status == JobStatus::Disputed {
            // both crash mid-bisection and start again from the chain's state
            restarted = true;
            cheat = NodeAgent::new(c(), store.clone(), cheater).forging(forging());
            challenger = ChallengerAgent::new(c(), store.clone(), m.challenger);
        }
        m.chain.advance_time(600).await.unwrap();
        let (one, two) = (m.chain.job(1).await.unwrap(), m.chain.job(2).await.unwrap());
        if one.status == JobStatus::Paid
            && two.status == JobStatus::Slashed
            && m.chain.owed(m.node).await.unwrap().is_zero()
            && m.chain.owed(m.challenger).await.unwrap().is_zero()
        {
            break;
        }
    }
    let (one, two) = (m.chain.job(1).await.unwrap(), m.chain.job(2).await.unwrap());
    assert_eq!(
        (one.node, one.status),
        (Some(m.node), JobStatus::Paid),
        "{lines:#?}"
    );
    assert_eq!(
        (two.node, two.status),
        (Some(cheater), JobStatus::Slashed),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("job 2: step 13 is wrong: challenged")),
        "{lines:#?}"
    );
    assert!(!lines
        .iter()
        .any(|l| l.starts_with("job 1") && l.contains("challenged")));
    let after = (
        m.chain.balance(m.node).await.unwrap(),
        m.chain.balance(cheater).await.unwrap(),
        m.chain.balance(m.challenger).await.unwrap(),
    );
    if exact {
        assert_eq!(
            after.0,
            before.0 + m.eth,
            "the honest node is paid the reward"
        );
        assert_eq!(
            after.1, before.1,
            "the cheater's slashed stake stays in the registry"
        );
        assert_eq!(
            after.2,
            before.2 + m.eth / U256::from(2),
            "the challenger gains the unburned half of the cheater's stake"
        );
    } else {
        let fees = m.eth / U256::from(100); // far more than the gas of a few dozen calls
        let half = m.eth / U256::from(2);
        assert!(after.0 + fees > before.0 + m.eth && after.0 < before.0 + m.eth);
        assert!(after.1 <= before.1);
        assert!(after.2 + fees > before.2 + half && after.2 < before.2 + half);
    }
    assert_eq!(
        m.chain.stake(cheater).await.unwrap().stake,
        m.eth * U256::from(2),
        "the cheater lost the job's stake"
    );
    // As a long-running task: ticks until told to stop; nothing is left to do here.
    let mut reported = Vec::new();
    oai_verify::agents::run(
        referee,
        std::time::Duration::from_millis(1),
        tokio::time::sleep(std::time::Duration::from_millis(30)),
        |r| reported.push(r.map_err(|e| e.to_string())),
    )
    .await;
    assert!(reported.iter().all(|r| r.is_ok()), "{reported:?}");
}
