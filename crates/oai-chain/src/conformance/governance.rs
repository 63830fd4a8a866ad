//! Training DAO scenarios: the referee set, the market's parameters, the stake floor and node
//! admission changed by vote, and what the change does to what runs.

use alloy::primitives::U256;
use alloy::sol_types::SolCall;

use super::dispute::{play, reveal, submitted_job};
use super::{eth, honest, terms, Claims, Scenario, DAY, HOUR};
use crate::bindings::{
    NodeRegistry::NodeRegistryErrors as R, RefereeAdjudicator,
    RefereeAdjudicator::RefereeAdjudicatorErrors as Ref, TrainingDAO::TrainingDAOErrors as G,
    TrainingMarket::TrainingMarketErrors as M,
};
use crate::error::Origin;
use crate::{Chain, Change, Evm, JobStatus, JobTerms, MarketParameters, Result, Revert, Tx};

/// The suite's members propose `change`, the two heavier ones vote it in (5 of 6 weight, the
/// quorum is 3), the timelock passes and an outsider executes it; returns its id.
async fn pass<E: Evm>(s: &mut Scenario<E>, label: &str, change: Change) -> Result<u64> {
    let [a, b, c] = s.r.members;
    let id = s.ok2(
        &format!("TrainingDAO.propose ({label})"),
        s.chain.propose_change(a, &change).await,
    );
    for m in [b, c] {
        let v = s.chain.vote_change(m, id, true).await;
        s.ok("TrainingDAO.vote", v);
    }
    s.chain.advance_time(DAY).await?;
    let x = s.chain.execute_change(s.r.funder, id).await;
    s.ok(&format!("TrainingDAO.execute ({label})"), x);
    Ok(id)
}

/// A referee votes the cheating node right on a case, and the DAO then removes it and adds
/// another. Were its vote still counted, one more vote for the node (from the newcomer) would
/// reach the threshold and the cheater would win. Votes cast under the old set stop counting:
/// the case needs two votes of the new set, the removed referee cannot vote any more, and the
/// two honest referees slash the node.
pub(crate) async fn a_removed_referees_vote_decides<E: Evm>(s: &mut Scenario<E>) -> Result<()> {
    let r = s.r;
    let node = Claims::wrong_from(100, 40);
    let job = submitted_job(s, &node).await?;
    let ch = s
        .chain
        .challenge(r.challenger, job, honest(100), eth(2))
        .await;
    s.ok("TrainingMarket.challenge", ch);
    play(s, job, &node, &honest, usize::MAX).await?;
    reveal(s, job, &node).await?;
    let d = s.chain.dispute(job).await?.expect("dispute");
    let case = s.chain.case_id(job, &d).await?;
    let corrupt = r.referees[0];
    let v = s.chain.referee_vote(corrupt, case, true).await;
    s.ok("RefereeAdjudicator.vote (corrupt)", v);

    // only the DAO changes the set
    let call = RefereeAdjudicator::setRefereesCall {
        referees_: vec![r.funder],
        threshold_: U256::from(1),
    };
    let tx = Tx {
        from: r.members[2],
        to: Some(s.chain.deployment().adjudicator),
        data: call.abi_encode().into(),
        value: U256::ZERO,
    };
    s.raw_reverts(
        "set the referees without the DAO",
        Origin::Referee,
        tx,
        |e| matches!(e, Revert::Referee(Ref::NotGovernor(_))),
    )
    .await?;
    let newcomer = r.node2;
    let change = Change::Referees {
        referees: vec![r.referees[1], r.referees[2], newcomer],
        threshold: 2,
    };
    let [a, b, c] = r.members;
    let id = s.ok2(
        "TrainingDAO.propose (referees)",
        s.chain.propose_change(a, &change).await,
    );
    let c1 = &s.chain;
    s.reverts(
        "proposal by a non-member",
        c1.propose_change(r.funder, &change).await,
        |e| matches!(e, Revert::Governance(G::NotMember(_))),
    );
    let v = c1.vote_change(c, id, true).await;
    s.ok("TrainingDAO.vote (reaches quorum)", v);
    let c1 = &s.chain;
    s.reverts(
        "execute in the timelock",
        c1.execute_change(b, id).await,
        |e| matches!(e, Revert::Governance(G::TimelockActive(_))),
    );
    c1.advance_time(DAY).await?;
    let x = c1.execute_change(b, id).await;
    s.ok("TrainingDAO.execute (referees)", x);
    let c1 = &s.chain;
    s.reverts("execute twice", c1.execute_change(b, id).await, |e| {
        matches!(e, Revert::Governance(G::AlreadyExecuted(_)))
    });
    let p = c1.proposal(id).await?;
    assert_eq!((p.change, p.executed, p.yes), (change, true, U256::from(3)));
    let g = c1.governance().await?;
    assert_eq!(
        (g.referees, g.threshold, g.epoch),
        (vec![r.referees[1], r.referees[2], newcomer], 2, 1)
    );

    s.reverts(
        "a removed referee votes",
        c1.referee_vote(corrupt, case, true).await,
        |e| matches!(e, Revert::Referee(Ref::NotReferee(_))),
    );
    let v = c1.referee_vote(newcomer, case, true).await;
    s.ok("RefereeAdjudicator.vote (newcomer, for the node)", v);
    let c1 = &s.chain;
    s.reverts(
        "resolve on one vote of the new set",
        c1.resolve(r.challenger, job).await,
        |e| matches!(e, Revert::Market(M::NoVerdict(_))),
    );
    for referee in [r.referees[1], r.referees[2]] {
        let v = s.chain.referee_vote(referee, case, false).await;
        s.ok("RefereeAdjudicator.vote", v);
    }
    let res = s.chain.resolve(r.challenger, job).await;
    s.ok("TrainingMarket.resolve (node slashed)", res);
    assert_eq!(s.chain.job(job).await?.status, JobStatus::Slashed);
    super::dispute::finish(s, job, true).await
}

/// The DAO changes the market's parameters (a 20% burn, a two-hour move timeout, challenge
/// windows between an hour and two days), the stake floor and admission; each applies to what
/// comes next. A change out of the market's bounds passes the vote but cannot execute.
pub(crate) async fn parameters_floor_and_admission<E: Evm>(s: &mut Scenario<E>) -> Result<()> {
    let r = s.r;
    let reg = s.chain.register(r.node, eth(3)).await;
    s.ok("NodeRegistry.register", reg);
    let params = MarketParameters {
        burn_bps: 2000,
        move_timeout: 2 * HOUR,
        adjudication_timeout: 2 * DAY,
        min_challenge_window: HOUR as u32,
        max_challenge_window: 2 * DAY as u32,
    };
    pass(s, "parameters", Change::Parameters(params)).await?;
    assert_eq!(s.chain.governance().await?.parameters, params);
    let bad = Change::Parameters(MarketParameters {
        burn_bps: 10_000,
        ..params
    });
    let [a, b, c] = r.members;
    let id = s.ok2(
        "TrainingDAO.propose (a burn of everything)",
        s.chain.propose_change(a, &bad).await,
    );
    for m in [b, c] {
        let v = s.chain.vote_change(m, id, true).await;
        s.ok("TrainingDAO.vote", v);
    }
    s.chain.advance_time(DAY).await?;
    s.reverts(
        "execute parameters out of bounds",
        s.chain.execute_change(a, id).await,
        |e| matches!(e, Revert::Market(M::BadParameters(_))),
    );
    assert!(!s.chain.proposal(id).await?.executed);
    for (what, window) in [
        ("a challenge window under the bound", HOUR as u32 - 1),
        ("a challenge window over the bound", 2 * DAY as u32 + 1),
    ] {
        let t = JobTerms {
            challenge_window: window,
            ..terms("governed")
        };
        s.reverts(what, s.chain.post_job(r.requester, &t, eth(1)).await, |e| {
            matches!(e, Revert::Market(M::ChallengeWindowOutOfBounds(_)))
        });
    }

    // the move timeout and the burn apply to a dispute that starts now
    let node = Claims::wrong_from(100, 10);
    let job = s.ok2(
        "TrainingMarket.postJob",
        s.chain
            .post_job(r.requester, &terms("governed"), eth(1))
            .await,
    );
    let cl = s.chain.claim_job(r.node, job).await;
    s.ok("TrainingMarket.claim", cl);
    let sub = node.submit(&s.chain, r.node, job).await;
    s.ok("TrainingMarket.submit", sub);
    let ch = s
        .chain
        .challenge(r.challenger, job, honest(100), eth(2))
        .await;
    s.ok("TrainingMarket.challenge", ch);
    s.chain.advance_time(HOUR + 1).await?;
    s.reverts(
        "timeout within the new move timeout",
        s.chain.timeout(r.challenger, job).await,
        |e| matches!(e, Revert::Market(M::NotTimedOut(_))),
    );
    s.chain.advance_time(HOUR).await?;
    let t = s.chain.timeout(r.challenger, job).await;
    s.ok("TrainingMarket.timeout (node silent)", t);
    assert_eq!(
        s.chain.burned().await?,
        eth(2) / U256::from(5),
        "20% of the stake"
    );
    let rf = s.chain.refund(r.requester, job).await;
    s.ok("TrainingMarket.refund", rf);

    // the stake floor
    pass(s, "min stake", Change::MinStake(eth(2))).await?;
    s.reverts(
        "register below the new floor",
        s.chain.register(r.node2, eth(1)).await,
        |e| matches!(e, Revert::Registry(R::StakeTooLow(x)) if x.minimum == eth(2)),
    );
    let t = JobTerms {
        required_stake: eth(1),
        ..terms("governed")
    };
    s.reverts(
        "a job's stake below the new floor",
        s.chain.post_job(r.requester, &t, eth(1)).await,
        |e| matches!(e, Revert::Market(M::StakeBelowFloor(_))),
    );

    // admission
    pass(s, "closed", Change::Admission { open: false }).await?;
    assert!(!s.chain.governance().await?.open);
    s.reverts(
        "register unadmitted",
        s.chain.register(r.node2, eth(2)).await,
        |e| matches!(e, Revert::Registry(R::NotAdmitted(_))),
    );
    let j = s.ok2(
        "TrainingMarket.postJob",
        s.chain
            .post_job(r.requester, &terms("governed"), eth(1))
            .await,
    );
    let top = s.chain.top_up(r.node, eth(2)).await;
    s.ok("NodeRegistry.topUp", top);
    s.reverts(
        "a registered node that was never admitted claims",
        s.chain.claim_job(r.node, j).await,
        |e| matches!(e, Revert::Registry(R::NotAdmitted(_))),
    );
    pass(
        s,
        "admit",
        Change::Admit {
            node: r.node2,
            admitted: true,
        },
    )
    .await?;
    assert!(s.chain.may_work(r.node2).await? && !s.chain.may_work(r.node).await?);
    let reg = s.chain.register(r.node2, eth(2)).await;
    s.ok("NodeRegistry.register (admitted)", reg);
    let cl = s.chain.claim_job(r.node2, j).await;
    s.ok("TrainingMarket.claim (admitted)", cl);
    s.withdraw_all(&[r.node, r.node2, r.requester, r.challenger])
        .await?;
    s.check_conservation("after the training DAO's changes")
        .await
}

/// A deployment without a training DAO: its rules never change. The deployer could otherwise
/// hand them to an account of its own later (`setGovernor` once, by the deployer) and, say,
/// replace the referees in the middle of a dispute; `Contracts::deploy` fixes them at once.
pub(crate) async fn the_deployer_takes_the_rules_later<E: Evm>(s: &mut Scenario<E>) -> Result<()> {
    let r = s.r;
    let cfg = super::config(&r.referees);
    let (plain, _) = crate::Contracts::deploy(s.chain.evm().clone(), r.deployer, &cfg).await?;
    let d = plain.deployment();
    assert_eq!(d.dao, None);
    let calls = [
        (
            d.registry,
            Origin::Registry,
            crate::bindings::NodeRegistry::setGovernorCall {
                governor_: r.deployer,
            }
            .abi_encode(),
        ),
        (
            d.market,
            Origin::Market,
            crate::bindings::TrainingMarket::setGovernorCall {
                governor_: r.deployer,
            }
            .abi_encode(),
        ),
        (
            d.adjudicator,
            Origin::Referee,
            RefereeAdjudicator::setGovernorCall {
                governor_: r.deployer,
            }
            .abi_encode(),
        ),
    ];
    for (to, origin, data) in calls {
        let tx = Tx {
            from: r.deployer,
            to: Some(to),
            data: data.into(),
            value: U256::ZERO,
        };
        s.raw_reverts("the deployer takes the rules", origin, tx, |e| {
            matches!(
                e,
                Revert::Registry(R::GovernorAlreadySet(_))
                    | Revert::Market(M::GovernorAlreadySet(_))
                    | Revert::Referee(Ref::GovernorAlreadySet(_))
            )
        })
        .await?;
    }
    let g = plain.governance().await?;
    assert_eq!((g.dao, g.referees), (None, r.referees.to_vec()));
    Ok(())
}
