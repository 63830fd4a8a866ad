//! Registry and job scenarios without disputes.

use alloy::primitives::{B256, U256};
use alloy::sol_types::SolCall;

use super::{eth, honest, terms, Claims, Scenario, DAY};
use crate::bindings::{
    NodeRegistry, NodeRegistry::NodeRegistryErrors as R, TrainingMarket::TrainingMarketErrors as M,
};
use crate::error::Origin;
use crate::{Chain, Evm, JobResult, JobStatus, JobTerms, Result, Revert, Tx};

pub(crate) async fn registry<E: Evm>(s: &mut Scenario<E>) -> Result<()> {
    let (c, n) = (&s.chain, s.r.node);
    s.reverts(
        "register below the minimum",
        c.register(n, eth(1) / U256::from(2)).await,
        |e| matches!(e, Revert::Registry(R::StakeTooLow(x)) if x.minimum == eth(1)),
    );
    s.reverts(
        "top up before registering",
        c.top_up(n, eth(1)).await,
        |e| matches!(e, Revert::Registry(R::NotRegistered(_))),
    );
    let r = c.register(n, eth(2)).await;
    s.ok("NodeRegistry.register", r);
    let c = &s.chain;
    s.reverts("register twice", c.register(n, eth(2)).await, |e| {
        matches!(e, Revert::Registry(R::AlreadyRegistered(_)))
    });
    let r = c.top_up(n, eth(1)).await;
    s.ok("NodeRegistry.topUp", r);
    let c = &s.chain;
    s.reverts(
        "unbond more than the stake",
        c.request_unbond(n, eth(4)).await,
        |e| matches!(e, Revert::Registry(R::InsufficientFreeStake(x)) if x.free == eth(3)),
    );
    let r = c.request_unbond(n, eth(2)).await;
    s.ok("NodeRegistry.requestUnbond", r);
    let c = &s.chain;
    s.reverts(
        "withdraw before the unbond delay",
        c.withdraw_stake(n).await,
        |e| matches!(e, Revert::Registry(R::UnbondingNotReady(_))),
    );
    c.advance_time(7 * DAY).await?;
    let before = c.balance(n).await?;
    let r = c.withdraw_stake(n).await;
    let r = s.ok("NodeRegistry.withdraw", r);
    let c = &s.chain;
    assert_eq!(
        c.balance(n).await? + r.fee,
        before + eth(2),
        "unbonded stake paid once"
    );
    s.reverts("withdraw twice", c.withdraw_stake(n).await, |e| {
        matches!(e, Revert::Registry(R::NothingToWithdraw(_)))
    });
    let st = c.stake(n).await?;
    assert_eq!(
        (st.stake, st.locked, st.unbonding),
        (eth(1), U256::ZERO, U256::ZERO)
    );

    let unbond = c.request_unbond(n, eth(1)).await;
    s.ok("NodeRegistry.requestUnbond", unbond);
    s.chain.advance_time(7 * DAY).await?;
    let before = s.chain.balance(s.r.node2).await?;
    let w = s.chain.withdraw_stake_to(n, s.r.node2).await;
    s.ok("NodeRegistry.withdrawTo", w);
    let c = &s.chain;
    assert_eq!(
        c.balance(s.r.node2).await?,
        before + eth(1),
        "paid to the named account"
    );

    // only the market locks and slashes, and the market is set once, by the deployer
    let d = c.deployment();
    let registry_tx = |from, call: Vec<u8>| Tx {
        from,
        to: Some(d.registry),
        data: call.into(),
        value: U256::ZERO,
    };
    let set = NodeRegistry::setMarketCall { market_: n }.abi_encode();
    let slash = NodeRegistry::slashCall {
        node: n,
        amount: eth(1),
    }
    .abi_encode();
    s.raw_reverts(
        "set the market again",
        Origin::Registry,
        registry_tx(s.r.deployer, set),
        |e| matches!(e, Revert::Registry(R::MarketAlreadySet(x)) if x.market == d.market),
    )
    .await?;
    s.raw_reverts(
        "slash by someone else than the market",
        Origin::Registry,
        registry_tx(n, slash),
        |e| matches!(e, Revert::Registry(R::NotMarket(_))),
    )
    .await?;
    s.check_conservation("after unbonding").await
}

pub(crate) async fn paid_job<E: Evm>(s: &mut Scenario<E>) -> Result<()> {
    let r = s.r;
    let t = terms("paid");
    let no_steps = JobTerms {
        steps: 0,
        ..t.clone()
    };
    s.reverts(
        "post a job without steps",
        s.chain.post_job(r.requester, &no_steps, eth(1)).await,
        |e| matches!(e, Revert::Market(M::BadJobTerms(_))),
    );
    s.reverts(
        "post a reward above the stake",
        s.chain.post_job(r.requester, &t, eth(3)).await,
        |e| matches!(e, Revert::Market(M::RewardAboveStake(x)) if x.reward == eth(3) && x.stake == eth(2)),
    );
    let one_wei = JobTerms {
        required_stake: U256::from(1),
        ..t.clone()
    };
    s.reverts(
        "post a stake below the registry's minimum",
        s.chain.post_job(r.requester, &one_wei, U256::from(1)).await,
        |e| matches!(e, Revert::Market(M::StakeBelowFloor(x)) if x.floor == eth(1)),
    );
    let job = s.ok2(
        "TrainingMarket.postJob",
        s.chain
            .post_job(r.requester, &t, eth(1) / U256::from(2))
            .await,
    );
    let f = s
        .chain
        .fund_job(r.funder, job, eth(1) / U256::from(2))
        .await;
    s.ok("TrainingMarket.fund", f);
    s.reverts(
        "claim without stake",
        s.chain.claim_job(r.node, job).await,
        |e| matches!(e, Revert::Market(M::InsufficientStake(x)) if x.free == U256::ZERO),
    );
    let reg = s.chain.register(r.node, eth(3)).await;
    s.ok("NodeRegistry.register", reg);
    let claim = s.chain.claim_job(r.node, job).await;
    s.ok("TrainingMarket.claim", claim);
    let reg = s.chain.register(r.node2, eth(3)).await;
    s.ok("NodeRegistry.register", reg);
    let c = &s.chain;
    s.reverts(
        "double claim",
        c.claim_job(r.node2, job).await,
        |e| matches!(e, Revert::Market(M::AlreadyClaimed(x)) if x.node == r.node),
    );
    s.reverts(
        "withdraw of locked stake",
        c.request_unbond(r.node, eth(3)).await,
        |e| matches!(e, Revert::Registry(R::InsufficientFreeStake(x)) if x.free == eth(1)),
    );
    s.reverts(
        "submit by another node",
        Claims::honest(100).submit(c, r.node2, job).await,
        |e| matches!(e, Revert::Market(M::NotJobNode(_))),
    );
    let f = c.fund_job(r.funder, job, eth(1)).await;
    s.ok("TrainingMarket.fund (claimed)", f);
    s.reverts(
        "fund the reward past the locked stake",
        s.chain.fund_job(r.funder, job, U256::from(1)).await,
        |e| matches!(e, Revert::Market(M::RewardAboveStake(x)) if x.stake == eth(2)),
    );
    let good = Claims::honest(100);
    let header = good.block(0);
    for (what, bad) in [
        (
            "submit a result whose head is its genesis",
            JobResult {
                head: honest(0),
                ..good.result()
            },
        ),
        (
            "submit a result without a head",
            JobResult {
                head: B256::ZERO,
                ..good.result()
            },
        ),
        (
            "submit a result without a root",
            JobResult {
                root: B256::ZERO,
                ..good.result()
            },
        ),
    ] {
        let res = s.chain.submit_result(r.node, job, &header, &bad).await;
        s.reverts(what, res, |e| {
            matches!(e, Revert::Market(M::InvalidResult(_)))
        });
    }
    let bad = good.result();
    let other = s
        .chain
        .submit_result(r.node, job, b"another header", &bad)
        .await;
    assert!(
        matches!(other, Err(crate::Error::InvalidInput(_))),
        "a header that is not the genesis' is refused before it is sent"
    );
    let sub = good.submit(&s.chain, r.node, job).await;
    s.ok("TrainingMarket.submit", sub);
    let c = &s.chain;
    s.reverts(
        "fund after submission",
        c.fund_job(r.funder, job, eth(1)).await,
        |e| matches!(e, Revert::Market(M::FundingClosed(_))),
    );
    s.reverts(
        "finalize inside the window",
        c.finalize(r.node, job).await,
        |e| matches!(e, Revert::Market(M::ChallengeWindowOpen(_))),
    );
    c.advance_time(DAY).await?;
    s.reverts(
        "challenge after the window",
        c.challenge(r.challenger, job, honest(7), eth(2)).await,
        |e| matches!(e, Revert::Market(M::ChallengeWindowClosed(_))),
    );
    let fin = c.finalize(r.requester, job).await;
    s.ok("TrainingMarket.finalize", fin);
    let c = &s.chain;
    s.reverts("double finalize", c.finalize(r.requester, job).await, |e| {
        matches!(e, Revert::Market(M::AlreadyFinalized(_)))
    });
    let j = c.job(job).await?;
    assert_eq!(
        (j.status, j.reward, j.node),
        (JobStatus::Paid, eth(2), Some(r.node))
    );
    assert_eq!(j.result, Some(Claims::honest(100).result()));
    assert_eq!(c.owed(r.node).await?, eth(2));
    assert_eq!(c.stake(r.node).await?.locked, U256::ZERO, "stake unlocked");
    let before = s.chain.balance(r.node2).await?;
    let w = s.chain.withdraw_to(r.node, r.node2).await;
    s.ok("TrainingMarket.withdrawTo", w);
    assert_eq!(
        s.chain.balance(r.node2).await?,
        before + eth(2),
        "paid to the named account"
    );
    s.reverts("withdraw twice", s.chain.withdraw(r.node).await, |e| {
        matches!(e, Revert::Market(M::NothingToWithdraw(_)))
    });
    s.check_market_empty().await?;
    s.check_conservation("after payment").await
}

pub(crate) async fn expired_and_cancelled<E: Evm>(s: &mut Scenario<E>) -> Result<()> {
    let r = s.r;
    let t = terms("expired");
    let job = s.ok2(
        "TrainingMarket.postJob",
        s.chain.post_job(r.requester, &t, eth(1)).await,
    );
    let f = s.chain.fund_job(r.funder, job, eth(1)).await;
    s.ok("TrainingMarket.fund", f);
    let reg = s.chain.register(r.node, eth(2)).await;
    s.ok("NodeRegistry.register", reg);
    let claim = s.chain.claim_job(r.node, job).await;
    s.ok("TrainingMarket.claim", claim);
    let c = &s.chain;
    s.reverts(
        "expire before the deadline",
        c.expire_job(r.requester, job).await,
        |e| matches!(e, Revert::Market(M::NotExpired(_))),
    );
    c.advance_time(DAY + 1).await?;
    s.reverts(
        "submit after the deadline",
        Claims::honest(10).submit(c, r.node, job).await,
        |e| matches!(e, Revert::Market(M::SubmitDeadlinePassed(_))),
    );
    let ex = c.expire_job(r.funder, job).await;
    s.ok("TrainingMarket.expire", ex);
    let c = &s.chain;
    let j = c.job(job).await?;
    assert_eq!(
        (j.status, j.node),
        (JobStatus::Open, None),
        "an expired job is open again"
    );
    assert_eq!(
        c.owed(r.requester).await?,
        eth(2),
        "the idle node's stake goes to the requester"
    );
    assert_eq!(c.stake(r.node).await?.stake, U256::ZERO);
    s.reverts(
        "cancel by a funder",
        c.cancel_job(r.funder, job).await,
        |e| matches!(e, Revert::Market(M::NotRequester(_))),
    );
    s.reverts("refund of a live job", c.refund(r.funder, job).await, |e| {
        matches!(e, Revert::Market(M::NotRefundable(_)))
    });
    let cancel = c.cancel_job(r.requester, job).await;
    s.ok("TrainingMarket.cancel", cancel);
    for who in [r.requester, r.funder] {
        let rf = s.chain.refund(who, job).await;
        s.ok("TrainingMarket.refund", rf);
    }
    s.reverts("refund twice", s.chain.refund(r.funder, job).await, |e| {
        matches!(e, Revert::Market(M::NothingToRefund(_)))
    });
    assert_eq!(s.chain.owed(r.requester).await?, eth(3));
    s.withdraw_all(&[r.requester, r.funder]).await?;
    s.check_market_empty().await?;
    s.check_conservation("after refunds").await
}

/// Nobody claims a crowdfunded job in its claim window: anyone may cancel it, every funder
/// gets back exactly what it put in.
pub(crate) async fn never_taken<E: Evm>(s: &mut Scenario<E>) -> Result<()> {
    let r = s.r;
    let job = s.ok2(
        "TrainingMarket.postJob",
        s.chain.post_job(r.requester, &terms("idle"), eth(1)).await,
    );
    let f = s.chain.fund_job(r.funder, job, eth(1)).await;
    s.ok("TrainingMarket.fund", f);
    let reg = s.chain.register(r.node, eth(2)).await;
    s.ok("NodeRegistry.register", reg);
    let c = &s.chain;
    s.reverts(
        "cancel by a funder inside the claim window",
        c.cancel_job(r.funder, job).await,
        |e| matches!(e, Revert::Market(M::NotRequester(_))),
    );
    c.advance_time(2 * DAY + 1).await?;
    s.reverts(
        "claim after the claim window",
        c.claim_job(r.node, job).await,
        |e| matches!(e, Revert::Market(M::ClaimWindowClosed(_))),
    );
    let cancel = c.cancel_job(r.funder, job).await;
    s.ok("TrainingMarket.cancel (claim window over)", cancel);
    for who in [r.funder, r.requester] {
        let rf = s.chain.refund(who, job).await;
        s.ok("TrainingMarket.refund", rf);
    }
    s.withdraw_all(&[r.requester, r.funder]).await?;
    assert_eq!(s.chain.job(job).await?.status, JobStatus::Cancelled);
    s.check_market_empty().await?;
    s.check_conservation("after refunds").await
}
