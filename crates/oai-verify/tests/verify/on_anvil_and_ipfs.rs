//! The whole dispute on anvil with the blocks on a real IPFS node.

use super::*;
use oai_chain::rpc::{dev_signers, Anvil, RpcEvm};
use oai_data::store::IpfsStore;

fn skip(what: &str) {
    assert!(
        std::env::var_os("OAI_REQUIRE_REAL").is_none(),
        "OAI_REQUIRE_REAL is set but {what}"
    );
    eprintln!("skipped: {what}");
}

/// anvil with the contracts, and the job's data in the IPFS node; `None` (skipped) without
/// them. The anvil process lives as long as the returned handle.
async fn real_market() -> Option<(Anvil, Market<RpcEvm>, IpfsStore, JobSpec, Version)> {
    let Ok(api) = std::env::var("OAI_IPFS_API") else {
        skip("OAI_IPFS_API is not set (a kubo-style RPC, e.g. .ci/ipfs-daemon.sh)");
        return None;
    };
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let Some(bin) = Anvil::locate(&root) else {
        skip("no anvil (npm @foundry-rs/anvil-linux-amd64 under .ci/node, or OAI_ANVIL)");
        return None;
    };
    let node = Anvil::start(&bin).await.unwrap();
    let signers = dev_signers(8);
    let accounts: Vec<Address> = signers.iter().map(|s| s.address()).collect();
    let evm = std::sync::Arc::new(RpcEvm::connect(node.url(), signers).await.unwrap());
    let (store, spec, version) = job_in(IpfsStore::new(&api).unwrap()).await;
    let m = market_on(evm, accounts, &spec, &version).await;
    Some((node, m, store, spec, version))
}

#[tokio::test]
async fn a_cheating_node_is_slashed_on_anvil_with_its_blocks_in_ipfs() {
    let Some((_anvil, m, store, spec, _)) = real_market().await else {
        return;
    };
    game::cheating_node_is_slashed(&m, &store, &spec).await;
}

#[tokio::test]
async fn the_agents_play_on_anvil_with_their_blocks_in_ipfs() {
    let Some((_anvil, m, store, spec, _)) = real_market().await else {
        return;
    };
    agents::agents_play(&m, &store, &spec, false).await;
}

#[tokio::test]
async fn a_node_that_answers_the_game_with_honest_commitments_is_slashed_on_anvil() {
    let Some((_anvil, m, store, spec, _)) = real_market().await else {
        return;
    };
    attacks::equivocating_node_is_slashed(&m, &store, &spec, false).await;
}

#[tokio::test]
async fn a_node_that_publishes_nothing_is_slashed_on_anvil() {
    let Some((_anvil, m, store, spec, version)) = real_market().await else {
        return;
    };
    attacks::withholding_node_is_slashed(&m, &store, &spec, &version, false).await;
}
