//! Dataset DAO scenario: proposals, votes, quorum and delay, stale proposals, forks.

use alloy::primitives::{keccak256, U256};

use super::{Scenario, DAY};
use crate::bindings::DatasetDAO::DatasetDAOErrors as D;
use crate::{Chain, DaoConfig, Evm, Result, Revert};

pub(crate) async fn votes_and_forks<E: Evm>(s: &mut Scenario<E>) -> Result<()> {
    let [a, b, c] = s.r.members;
    let outsider = s.r.funder;
    let v0 = keccak256("dataset v0");
    let (v1, v2, v3) = (
        keccak256("dataset v1"),
        keccak256("dataset v2"),
        keccak256("dataset v3 (fork)"),
    );
    let cfg = DaoConfig {
        members: vec![
            (a, U256::from(50)),
            (b, U256::from(30)),
            (c, U256::from(20)),
        ],
        root: v0,
        quorum_bps: 6000,
        delay: DAY,
    };
    let dao = s.ok2("deploy DatasetDAO", s.chain.create_dao(a, &cfg).await);
    let ch = &s.chain;
    s.reverts(
        "proposal by a non-member",
        ch.propose(outsider, dao, v1, keccak256("p")).await,
        |e| matches!(e, Revert::Dao(D::NotMember(_))),
    );
    let p1 = s.ok2(
        "DatasetDAO.propose",
        s.chain.propose(c, dao, v1, keccak256("proposal v1")).await,
    );
    // a competing proposal on the same base: it goes stale once p1 executes
    let p2 = s.ok2(
        "DatasetDAO.propose",
        s.chain.propose(b, dao, v2, keccak256("proposal v2")).await,
    );
    let vote = s.chain.vote(a, dao, p1, true).await;
    s.ok("DatasetDAO.vote", vote);
    let ch = &s.chain;
    s.reverts("vote twice", ch.vote(a, dao, p1, false).await, |e| {
        matches!(e, Revert::Dao(D::AlreadyVoted(_)))
    });
    s.reverts(
        "vote by a non-member",
        ch.vote(outsider, dao, p1, true).await,
        |e| matches!(e, Revert::Dao(D::NotMember(_))),
    );
    s.reverts("execute before quorum", ch.execute(outsider, dao, p1).await, |e| {
        matches!(e, Revert::Dao(D::QuorumNotReached(x)) if x.yesWeight == U256::from(50) && x.required == U256::from(60))
    });
    let vote = ch.vote(c, dao, p1, true).await;
    s.ok("DatasetDAO.vote (reaches quorum)", vote);
    let ch = &s.chain;
    s.reverts(
        "execute before the delay",
        ch.execute(outsider, dao, p1).await,
        |e| matches!(e, Revert::Dao(D::TimelockActive(_))),
    );
    for m in [a, b] {
        let vote = s.chain.vote(m, dao, p2, true).await;
        s.ok("DatasetDAO.vote", vote);
    }
    s.chain.advance_time(DAY).await?;
    let ex = s.chain.execute(outsider, dao, p1).await;
    s.ok("DatasetDAO.execute", ex);
    let ch = &s.chain;
    s.reverts("execute twice", ch.execute(outsider, dao, p1).await, |e| {
        matches!(e, Revert::Dao(D::AlreadyExecuted(_)))
    });
    s.reverts("execute a stale proposal", ch.execute(outsider, dao, p2).await, |e| {
        matches!(e, Revert::Dao(D::StaleProposal(x)) if x.parentRoot == v0 && x.currentRoot == v1)
    });
    let st = ch.dao(dao).await?;
    assert_eq!(
        (st.root, st.version, st.total_weight, st.parent),
        (v1, 1, U256::from(100), None)
    );

    // c disagrees with where the DAO goes next and forks it; a follows, the outsider cannot
    let fork = s.ok2("deploy DatasetDAO (fork)", s.chain.fork_dao(c, dao).await);
    let ch = &s.chain;
    s.reverts(
        "fork by a non-member",
        ch.fork_dao(outsider, dao).await,
        |e| matches!(e, Revert::Dao(D::NotMember(_))),
    );
    let join = ch.join_dao(a, fork).await;
    s.ok("DatasetDAO.join", join);
    let ch = &s.chain;
    s.reverts("join twice", ch.join_dao(a, fork).await, |e| {
        matches!(e, Revert::Dao(D::AlreadyMember(_)))
    });
    s.reverts(
        "join by a non-member of the parent",
        ch.join_dao(outsider, fork).await,
        |e| matches!(e, Revert::Dao(D::NotMember(_))),
    );
    s.reverts(
        "join a DAO that is no fork",
        ch.join_dao(a, dao).await,
        |e| matches!(e, Revert::Dao(D::NotAFork(_))),
    );
    let st = ch.dao(fork).await?;
    assert_eq!(
        (st.root, st.version, st.total_weight, st.parent),
        (v1, 1, U256::from(70), Some(dao))
    );
    let p = s.ok2(
        "DatasetDAO.propose",
        s.chain.propose(c, fork, v3, keccak256("proposal v3")).await,
    );
    for m in [c, a] {
        let vote = s.chain.vote(m, fork, p, true).await;
        s.ok("DatasetDAO.vote", vote);
    }
    s.chain.advance_time(DAY).await?;
    let ex = s.chain.execute(c, fork, p).await;
    s.ok("DatasetDAO.execute", ex);
    assert_eq!(s.chain.dao(fork).await?.root, v3, "the fork moves on");
    assert_eq!(s.chain.dao(dao).await?.root, v1, "the parent is untouched");
    let events = s.chain.events(0).await?;
    let forked = events.iter().any(|(_, e)| {
        matches!(e, crate::Event::Dao { dao: d, event: crate::bindings::DatasetDAO::DatasetDAOEvents::Forked(f) }
            if *d == fork && f.parent == dao && f.root == v1)
    });
    assert!(forked, "the fork's Forked event is readable from the chain");
    // In chain order, and a later start block gives exactly the later events (a node is asked
    // in pages of blocks: the anvil run uses pages of a few blocks).
    assert!(
        events.windows(2).all(|w| w[0].0 <= w[1].0),
        "events in chain order"
    );
    let from = events[events.len() / 2].0;
    let later: Vec<_> = events.iter().filter(|(b, _)| *b >= from).cloned().collect();
    assert_eq!(s.chain.events(from).await?, later);
    s.check_conservation("after the DAO votes").await
}
