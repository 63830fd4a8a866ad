//! Attacks on the contracts, each played by direct calls: a party tries to be paid for a fault
//! or to escape a verdict, and the scenario checks where every wei ends (net of the gas each
//! account paid).

use std::collections::BTreeMap;

use alloy::primitives::{keccak256, Address, U256};
use alloy::sol_types::SolConstructor;

use super::dispute::{finish, play, referees_decide, reveal, submitted_job};
use super::{eth, honest, terms, Claims, Scenario, DAY, HOUR};
use crate::bindings::{
    DatasetDAO::DatasetDAOErrors as D, RefereeAdjudicator,
    RefereeAdjudicator::RefereeAdjudicatorErrors as Ref, TrainingMarket::TrainingMarketErrors as M,
};
use crate::error::Origin;
use crate::{Chain, Contracts, DaoConfig, Error, Evm, JobStatus, Receipt, Result, Revert, Tx};

/// What accounts are worth (balances, bonded stake, what the market owes them) plus the gas
/// fees each paid since the ledger opened: a party's loss or gain net of gas.
pub(super) struct Ledger {
    start: BTreeMap<Address, U256>,
    fees: BTreeMap<Address, U256>,
}

impl Ledger {
    pub(super) async fn open<E: Evm>(s: &Scenario<E>, who: &[Address]) -> Result<Self> {
        let mut start = BTreeMap::new();
        for a in who {
            start.insert(*a, worth(s, *a).await?);
        }
        Ok(Ledger {
            start,
            fees: BTreeMap::new(),
        })
    }

    /// A transaction `who` sends that must succeed.
    pub(super) fn ok<E: Evm>(
        &mut self,
        s: &mut Scenario<E>,
        who: Address,
        label: &str,
        r: Result<Receipt>,
    ) -> Receipt {
        let r = s.ok(label, r);
        *self.fees.entry(who).or_default() += r.fee;
        r
    }

    /// The change in what `who` together are worth since the ledger opened, gas refunded:
    /// (gained, lost) in wei.
    pub(super) async fn net<E: Evm>(
        &self,
        s: &Scenario<E>,
        who: &[Address],
    ) -> Result<(U256, U256)> {
        let (mut now, mut then) = (U256::ZERO, U256::ZERO);
        for a in who {
            now += worth(s, *a).await? + self.fees.get(a).copied().unwrap_or_default();
            then += self.start[a];
        }
        Ok(if now >= then {
            (now - then, U256::ZERO)
        } else {
            (U256::ZERO, then - now)
        })
    }
}

/// Balance + bonded stake (locked or not, unbonding included) + what the market owes.
async fn worth<E: Evm>(s: &Scenario<E>, who: Address) -> Result<U256> {
    let st = s.chain.stake(who).await?;
    Ok(s.chain.balance(who).await? + st.stake + st.unbonding + s.chain.owed(who).await?)
}

/// Post a 100-step job (1 ETH from the requester, 1 ETH from the funder, 2 ETH stake), claimed
/// by `node` and submitted as the log `claims`.
async fn job_submitted_by<E: Evm>(
    s: &mut Scenario<E>,
    l: &mut Ledger,
    node: Address,
    claims: &Claims,
) -> Result<crate::JobId> {
    let r = s.r;
    let (job, rc) = s
        .chain
        .post_job(r.requester, &terms("attack"), eth(1))
        .await
        .unwrap_or_else(|e| panic!("postJob: {e}"));
    l.ok(s, r.requester, "TrainingMarket.postJob", Ok(rc));
    let f = s.chain.fund_job(r.funder, job, eth(1)).await;
    l.ok(s, r.funder, "TrainingMarket.fund", f);
    let c = s.chain.claim_job(node, job).await;
    l.ok(s, node, "TrainingMarket.claim", c);
    let sub = claims.submit(&s.chain, node, job).await;
    l.ok(s, node, "TrainingMarket.submit", sub);
    Ok(job)
}

/// The referees decide that the node forged its step; the node, which lost, calls `timeout`
/// once the adjudication deadline has passed, before anyone resolves. The verdict stands: the
/// node is slashed, not the dispute voided with the window restarted.
pub(crate) async fn the_loser_times_out_a_decided_case<E: Evm>(s: &mut Scenario<E>) -> Result<()> {
    let r = s.r;
    let node = Claims::wrong_from(1000, 617);
    let job = submitted_job(s, &node).await?;
    let ch = s
        .chain
        .challenge(r.challenger, job, honest(1000), eth(2))
        .await;
    s.ok("TrainingMarket.challenge", ch);
    play(s, job, &node, &honest, usize::MAX).await?;
    reveal(s, job, &node).await?;
    referees_decide(s, job).await?;
    s.chain.advance_time(3 * DAY + 1).await?;
    let t = s.chain.timeout(r.node, job).await;
    s.ok("TrainingMarket.timeout (a decided case)", t);
    let c = &s.chain;
    assert_eq!(
        c.job(job).await?.status,
        JobStatus::Slashed,
        "the verdict settles the dispute, whoever calls and whenever"
    );
    assert_eq!(c.owed(r.challenger).await?, eth(3));
    finish(s, job, true).await
}

/// A node submits garbage and plays both sides from two accounts. (1) Its second account
/// challenges first and then goes silent, so the node wins its own bond back and the window
/// restarts: half the bond is burned, and the honest challenger, locked out while the sham
/// dispute ran, challenges in the new window and wins. (2) On a second job the second account
/// challenges and the node loses on purpose, handing its stake to itself: half is burned.
/// Each time the attacker loses wei, the requester and funder lose none, and the honest
/// challenger gains.
pub(crate) async fn a_node_challenges_its_own_result<E: Evm>(s: &mut Scenario<E>) -> Result<()> {
    let r = s.r;
    let (node, puppet) = (r.node, r.node2);
    let attacker = [node, puppet];
    let mut l = Ledger::open(s, &[node, puppet, r.requester, r.funder, r.challenger]).await?;
    let reg = s.chain.register(node, eth(4)).await;
    l.ok(s, node, "NodeRegistry.register", reg);

    // (1) the puppet challenges first, then never moves
    let garbage = Claims::wrong_from(100, 1);
    let job = job_submitted_by(s, &mut l, node, &garbage).await?;
    let ch = s.chain.challenge(puppet, job, honest(100), eth(2)).await;
    l.ok(s, puppet, "TrainingMarket.challenge (puppet)", ch);
    s.reverts(
        "the honest challenge while the sham dispute runs",
        s.chain
            .challenge(r.challenger, job, honest(100), eth(2))
            .await,
        |e| matches!(e, Revert::Market(M::WrongStatus(_))),
    );
    let d = s.chain.dispute(job).await?.expect("dispute");
    let mv = garbage.bisect(&s.chain, node, job, d.mid()).await;
    l.ok(s, node, "TrainingMarket.bisect", mv);
    s.chain.advance_time(HOUR + 1).await?;
    let t = s.chain.timeout(node, job).await;
    l.ok(s, node, "TrainingMarket.timeout (puppet silent)", t);
    assert_eq!(s.chain.job(job).await?.status, JobStatus::Submitted);
    assert_eq!(s.chain.burned().await?, eth(1), "half the puppet's bond");
    // the window restarted: the honest challenger gets its turn and the node cannot answer
    let ch = s
        .chain
        .challenge(r.challenger, job, honest(100), eth(2))
        .await;
    l.ok(s, r.challenger, "TrainingMarket.challenge (honest)", ch);
    s.chain.advance_time(HOUR + 1).await?;
    let t = s.chain.timeout(r.challenger, job).await;
    l.ok(s, r.challenger, "TrainingMarket.timeout (node silent)", t);
    assert_eq!(s.chain.job(job).await?.status, JobStatus::Slashed);
    for who in [r.requester, r.funder] {
        let rf = s.chain.refund(who, job).await;
        l.ok(s, who, "TrainingMarket.refund", rf);
    }

    // (2) a second job: the node hands its stake to its puppet by losing on purpose
    let job2 = job_submitted_by(s, &mut l, node, &garbage).await?;
    let ch = s.chain.challenge(puppet, job2, honest(100), eth(2)).await;
    l.ok(s, puppet, "TrainingMarket.challenge (puppet)", ch);
    s.chain.advance_time(HOUR + 1).await?;
    let t = s.chain.timeout(puppet, job2).await;
    l.ok(
        s,
        puppet,
        "TrainingMarket.timeout (node silent on purpose)",
        t,
    );
    assert_eq!(s.chain.job(job2).await?.status, JobStatus::Slashed);
    for who in [r.requester, r.funder] {
        let rf = s.chain.refund(who, job2).await;
        l.ok(s, who, "TrainingMarket.refund", rf);
    }
    for who in [node, puppet, r.requester, r.funder, r.challenger] {
        if s.chain.owed(who).await? > U256::ZERO {
            let w = s.chain.withdraw(who).await;
            l.ok(s, who, "TrainingMarket.withdraw", w);
        }
    }

    // every wei accounted for, net of each party's gas
    assert_eq!(
        l.net(s, &attacker).await?,
        (U256::ZERO, eth(1) + eth(2) + eth(1)),
        "the attacker loses half the puppet's bond, its stake to the honest challenger, and half its stake to itself"
    );
    for honest_party in [r.requester, r.funder] {
        assert_eq!(l.net(s, &[honest_party]).await?, (U256::ZERO, U256::ZERO));
    }
    assert_eq!(
        l.net(s, &[r.challenger]).await?,
        (eth(1), U256::ZERO),
        "the honest challenger gains the unburned half of the stake"
    );
    assert_eq!(s.chain.burned().await?, eth(3));
    s.check_market_empty().await?;
    s.check_conservation("after the self-challenges").await
}

/// A 30% quorum: one member with 40% of the weight votes yes, the other 60% vote no. The
/// proposal reaches the quorum but yes does not beat no, so it never executes.
pub(crate) async fn a_minority_passes_a_dao_proposal<E: Evm>(s: &mut Scenario<E>) -> Result<()> {
    let [a, b, c] = s.r.members;
    let cfg = DaoConfig {
        members: vec![
            (a, U256::from(40)),
            (b, U256::from(30)),
            (c, U256::from(30)),
        ],
        root: keccak256("dataset v0"),
        quorum_bps: 3000,
        delay: DAY,
    };
    let dao = s.ok2("deploy DatasetDAO", s.chain.create_dao(a, &cfg).await);
    let v1 = keccak256("the minority's version");
    let p = s.ok2(
        "DatasetDAO.propose",
        s.chain.propose(a, dao, v1, keccak256("proposal")).await,
    );
    for (m, yes) in [(a, true), (b, false), (c, false)] {
        let v = s.chain.vote(m, dao, p, yes).await;
        s.ok("DatasetDAO.vote", v);
    }
    s.chain.advance_time(DAY).await?;
    s.reverts(
        "execute a proposal most weight voted against",
        s.chain.execute(a, dao, p).await,
        |e| matches!(e, Revert::Dao(D::Rejected(x)) if x.yesWeight == U256::from(40) && x.noWeight == U256::from(60)),
    );
    assert_eq!(s.chain.dao(dao).await?.root, keccak256("dataset v0"));
    s.check_conservation("after the DAO vote").await
}

/// An adjudicator whose threshold is not a strict majority (1 of 3: one referee decides alone,
/// and two referees could decide a case both ways) cannot be deployed, neither through
/// [`Contracts::deploy`] nor by a direct deployment of the contract.
pub(crate) async fn a_minority_of_referees_decides<E: Evm>(s: &mut Scenario<E>) -> Result<()> {
    let r = s.r;
    for threshold in [1u64, 0] {
        let mut cfg = super::config(&r.referees);
        cfg.threshold = threshold;
        let refused = Contracts::deploy(s.chain.evm().clone(), r.deployer, &cfg).await;
        assert!(
            matches!(refused, Err(Error::InvalidInput(_))),
            "threshold {threshold} of 3: {:?}",
            refused.map(|(c, _)| c.deployment())
        );
        let args = RefereeAdjudicator::constructorCall {
            referees_: r.referees.to_vec(),
            threshold_: U256::from(threshold),
        };
        let mut data = RefereeAdjudicator::BYTECODE.to_vec();
        data.extend_from_slice(&args.abi_encode());
        let tx = Tx {
            from: r.deployer,
            to: None,
            data: data.into(),
            value: U256::ZERO,
        };
        s.raw_reverts("deploy a minority adjudicator", Origin::Referee, tx, |e| {
            matches!(e, Revert::Referee(Ref::BadReferees(_)))
        })
        .await?;
    }
    Ok(())
}
