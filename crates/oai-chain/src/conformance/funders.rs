//! Contract accounts as funders: one that re-enters the market when paid, one that cannot be
//! paid at all.

use alloy::primitives::{Address, Bytes, U256};
use alloy::sol_types::{SolCall, SolConstructor, SolError};

use super::{eth, terms, Scenario};
use crate::bindings::TrainingMarket::{self, TrainingMarketErrors as M};
use crate::error::Origin;
use crate::{Chain, Evm, JobId, Result, Revert, Tx};

alloy::sol!(
    #[sol(all_derives)]
    #[allow(missing_docs)]
    TestFunder,
    "artifacts/TestFunder.json"
);

/// Deploy a `TestFunder` (from the scenario's funder), post a job and have the contract fund
/// it with 2 ETH; then the requester cancels and the contract takes its refund (credited).
async fn funded_and_cancelled<E: Evm>(
    s: &mut Scenario<E>,
    reject_ether: bool,
) -> Result<(Address, JobId)> {
    let r = s.r;
    let mut code = TestFunder::BYTECODE.to_vec();
    let market = s.chain.deployment().market;
    code.extend(
        TestFunder::constructorCall {
            market_: market,
            rejectEther_: reject_ether,
        }
        .abi_encode(),
    );
    let deploy = Tx {
        from: r.funder,
        to: None,
        data: code.into(),
        value: U256::ZERO,
    };
    let funder = s
        .send_raw("deploy TestFunder", deploy)
        .await?
        .created
        .expect("a creation has an address");
    s.watch(funder);
    let job = s.ok2(
        "TrainingMarket.postJob",
        s.chain
            .post_job(
                r.requester,
                &crate::JobTerms {
                    required_stake: eth(3), // the reward may grow to 3 ETH
                    ..terms("contract funder")
                },
                eth(1),
            )
            .await,
    );
    let fund = TestFunder::fundCall {
        jobId: U256::from(job),
    };
    s.send_raw("TestFunder.fund", funder_tx(s, funder, fund, eth(2)))
        .await?;
    let cancel = s.chain.cancel_job(r.requester, job).await;
    s.ok("TrainingMarket.cancel", cancel);
    let refund = TestFunder::refundCall {
        jobId: U256::from(job),
    };
    s.send_raw(
        "TestFunder.refund",
        funder_tx(s, funder, refund, U256::ZERO),
    )
    .await?;
    assert_eq!(s.chain.owed(funder).await?, eth(2));
    Ok((funder, job))
}

fn funder_tx<E, C: SolCall>(s: &Scenario<E>, funder: Address, call: C, value: U256) -> Tx {
    Tx {
        from: s.r.funder,
        to: Some(funder),
        data: Bytes::from(call.abi_encode()),
        value,
    }
}

async fn settle_requester<E: Evm>(s: &mut Scenario<E>, job: JobId) -> Result<()> {
    let rf = s.chain.refund(s.r.requester, job).await;
    s.ok("TrainingMarket.refund", rf);
    s.withdraw_all(&[s.r.requester]).await?;
    s.check_market_empty().await?;
    s.check_conservation("after the contract funder is paid")
        .await
}

/// When paid, the contract calls `withdraw` again from its `receive`: it is paid once and the
/// re-entry hits the guard.
pub(crate) async fn reentrancy<E: Evm>(s: &mut Scenario<E>) -> Result<()> {
    let (attacker, job) = funded_and_cancelled(s, false).await?;
    let withdraw = funder_tx(s, attacker, TestFunder::withdrawCall {}, U256::ZERO);
    s.send_raw("TestFunder.withdraw (re-enters)", withdraw)
        .await?;
    let payments = s.call_raw(attacker, TestFunder::paymentsCall {}).await?;
    let received = s.call_raw(attacker, TestFunder::receivedCall {}).await?;
    let succeeded = s
        .call_raw(attacker, TestFunder::reentrySucceededCall {})
        .await?;
    let err = s
        .call_raw(attacker, TestFunder::reentryErrorCall {})
        .await?;
    assert_eq!(
        (payments, received),
        (U256::from(1), eth(2)),
        "paid exactly once"
    );
    assert!(!succeeded, "the re-entrant withdraw must fail");
    let guard = TrainingMarket::Reentrancy {};
    assert_eq!(
        err.as_ref(),
        guard.abi_encode().as_slice(),
        "the re-entry hits the guard"
    );
    assert_eq!(s.chain.balance(attacker).await?, eth(2));
    settle_requester(s, job).await
}

/// A contract that cannot receive ether: `withdraw` fails and keeps its credit, `withdrawTo`
/// pays it to another account.
pub(crate) async fn ether_rejecting_funder<E: Evm>(s: &mut Scenario<E>) -> Result<()> {
    let (funder, job) = funded_and_cancelled(s, true).await?;
    let withdraw = funder_tx(s, funder, TestFunder::withdrawCall {}, U256::ZERO);
    s.raw_reverts(
        "pay a contract that rejects ether",
        Origin::Market,
        withdraw,
        |e| matches!(e, Revert::Market(M::TransferFailed(_))),
    )
    .await?;
    assert_eq!(s.chain.owed(funder).await?, eth(2), "the credit is kept");
    let beneficiary = s.r.challenger;
    let before = s.chain.balance(beneficiary).await?;
    let to = TestFunder::withdrawToCall { to: beneficiary };
    s.send_raw(
        "TestFunder.withdrawTo",
        funder_tx(s, funder, to, U256::ZERO),
    )
    .await?;
    assert_eq!(s.chain.balance(beneficiary).await?, before + eth(2));
    assert_eq!(s.chain.owed(funder).await?, U256::ZERO);
    settle_requester(s, job).await
}
