//! oai-chain against its backends: the conformance suite on the embedded EVM and (feature
//! `alloy`) on a real anvil node, equal gas on both, the full-dispute gas budget, typed reverts.

use std::sync::Arc;

use oai_chain::conformance::{self, ACCOUNTS};
use oai_chain::{Address, Revm};

fn plain_accounts() -> Vec<Address> {
    (1..=ACCOUNTS as u8).map(|i| Address::repeat_byte(i)).collect()
}

#[tokio::test]
async fn conformance_on_the_embedded_evm() {
    let gas = conformance::run(Arc::new(Revm::new()), &plain_accounts()).await.unwrap();
    assert!(gas.len() > 100, "the suite sends every kind of transaction ({} sent)", gas.len());
    assert!(gas.iter().all(|(_, g)| *g >= 21_000), "every transaction pays at least the base cost");
}

#[tokio::test]
async fn a_dispute_over_a_million_steps_costs_under_two_million_gas() {
    let d = conformance::measure_dispute(Arc::new(Revm::new()), &plain_accounts(), 1_000_000, 777_777)
        .await
        .unwrap();
    assert_eq!(d.rounds.len(), 20, "bisection depth of 1,000,000 steps");
    assert!(d.total() < 2_000_000, "full dispute costs {} gas: {d:?}", d.total());
}
