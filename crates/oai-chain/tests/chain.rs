//! oai-chain against its backends: the conformance suite on the embedded EVM and (feature
//! `alloy`) on a real anvil node, equal gas on both, the full-dispute gas budget, typed reverts.

use std::sync::Arc;

use oai_chain::conformance::{self, ACCOUNTS};
use oai_chain::{Address, Revm};

fn plain_accounts() -> Vec<Address> {
    (1..=ACCOUNTS as u8).map(Address::repeat_byte).collect()
}

#[tokio::test]
async fn conformance_on_the_embedded_evm() {
    let gas = conformance::run(Arc::new(Revm::new()), &plain_accounts())
        .await
        .unwrap();
    assert!(
        gas.len() > 100,
        "the suite sends every kind of transaction ({} sent)",
        gas.len()
    );
    assert!(
        gas.iter().all(|(_, g)| *g >= 21_000),
        "every transaction pays at least the base cost"
    );
}

#[tokio::test]
async fn a_dispute_over_a_million_steps_costs_under_two_and_a_half_million_gas() {
    let d =
        conformance::measure_dispute(Arc::new(Revm::new()), &plain_accounts(), 1_000_000, 777_777)
            .await
            .unwrap();
    assert_eq!(d.rounds.len(), 20, "bisection depth of 1,000,000 steps");
    assert!(
        d.total() < 2_500_000,
        "full dispute costs {} gas: {d:?}",
        d.total()
    );
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config::with_cases(32))]

    /// Whatever the log length and the forged step, the bisection ends on exactly that step
    /// (checked inside the scenario) within ceil(log2 N) rounds, and the node is slashed.
    #[test]
    fn bisection_finds_any_forged_step(steps in 1u64..=2_000_000, at in 0.0f64..1.0) {
        let cheat_at = 1 + ((steps - 1) as f64 * at) as u64;
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let d = rt
            .block_on(conformance::measure_dispute(Arc::new(Revm::new()), &plain_accounts(), steps, cheat_at))
            .unwrap();
        let depth = 64 - (steps - 1).leading_zeros() as usize; // ceil(log2 steps)
        proptest::prop_assert!(d.rounds.len() <= depth, "{} rounds for {steps} steps", d.rounds.len());
        proptest::prop_assert!(d.rounds.len() + 1 >= depth, "{} rounds for {steps} steps", d.rounds.len());
        // the protocol's budget for a whole dispute (21 rounds above 1,048,576 steps)
        proptest::prop_assert!(d.total() < 2_500_000, "{} gas for {steps} steps", d.total());
    }
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config::with_cases(2_000))]

    /// Thousands of games between an honest party and an adversary choosing any commitment at
    /// any move, any timing (silence included) and any of its accounts: a cheating node against
    /// an honest challenger, or an honest node against lying challengers. The honest party never
    /// loses a wei, the adversary never gains one, every wei is conserved (checked inside).
    #[test]
    fn no_adversary_wins_a_game(
        steps in 1u64..=64,
        forged in proptest::option::of(0u64..64),
        choices in proptest::collection::vec(proptest::num::u8::ANY, 0..96),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let plan = conformance::GamePlan { steps, forged_step: forged, choices };
        rt.block_on(conformance::adversarial_game(Arc::new(Revm::new()), &plain_accounts(), &plan))
            .unwrap();
    }
}

/// A real Ethereum node: anvil from npm (`.ci/run` installs it), `$OAI_ANVIL` or the `PATH`.
#[cfg(feature = "alloy")]
mod anvil {
    use super::*;
    use oai_chain::rpc::{dev_signers, Anvil, RpcEvm};
    use oai_chain::{Chain, Contracts, Error, Evm, Tx, U256};

    async fn start() -> Option<Anvil> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let Some(bin) = Anvil::locate(&root) else {
            assert!(
                std::env::var_os("OAI_REQUIRE_REAL").is_none(),
                "OAI_REQUIRE_REAL is set but no anvil was found (npm @foundry-rs/anvil-linux-amd64)"
            );
            eprintln!("skipped: no anvil (install npm @foundry-rs/anvil-linux-amd64 under .ci/node or set OAI_ANVIL)");
            return None;
        };
        Some(Anvil::start(&bin).await.unwrap())
    }

    #[tokio::test]
    async fn conformance_on_anvil_with_the_gas_of_the_embedded_evm() {
        let Some(node) = start().await else { return };
        let signers = dev_signers(ACCOUNTS);
        let accounts: Vec<Address> = signers.iter().map(|s| s.address()).collect();
        // pages of 7 blocks: every events() query spans many eth_getLogs pages
        let rpc = RpcEvm::connect(node.url(), signers)
            .await
            .unwrap()
            .with_log_page(7);
        let on_anvil = conformance::run(Arc::new(rpc), &accounts).await.unwrap();
        let embedded = conformance::run(Arc::new(Revm::new()), &accounts)
            .await
            .unwrap();
        assert_eq!(on_anvil.len(), embedded.len());
        for ((label, a), (_, e)) in on_anvil.iter().zip(&embedded) {
            assert_eq!(a, e, "gas of {label}: anvil {a}, embedded {e}");
        }
    }

    #[tokio::test]
    async fn a_revert_on_anvil_is_a_typed_error_and_spends_nothing() {
        let Some(node) = start().await else { return };
        let signers = dev_signers(ACCOUNTS);
        let accounts: Vec<Address> = signers.iter().map(|s| s.address()).collect();
        let rpc = Arc::new(RpcEvm::connect(node.url(), signers).await.unwrap());
        rpc.set_balance(accounts[0], U256::from(10u128.pow(20)))
            .await
            .unwrap();
        rpc.set_balance(accounts[1], U256::from(10u128.pow(20)))
            .await
            .unwrap();
        let config = conformance::config(&accounts[2..5]);
        let (chain, _) = Contracts::deploy(rpc.clone(), accounts[0], &config)
            .await
            .unwrap();
        let (balance, block) = (
            chain.balance(accounts[1]).await.unwrap(),
            rpc.block_number().await.unwrap(),
        );
        let err = chain
            .register(accounts[1], U256::from(1))
            .await
            .unwrap_err();
        let Error::Reverted { call, revert } = &err else {
            panic!("{err}")
        };
        assert_eq!(call, "register()");
        assert!(err.to_string().contains("StakeTooLow"), "{err}");
        assert!(
            matches!(revert, oai_chain::Revert::Registry(oai_chain::bindings::NodeRegistry::NodeRegistryErrors::StakeTooLow(x)) if x.sent == U256::from(1))
        );
        assert_eq!(
            chain.balance(accounts[1]).await.unwrap(),
            balance,
            "nothing spent"
        );
        assert_eq!(rpc.block_number().await.unwrap(), block, "nothing mined");

        let stranger = Address::repeat_byte(0xee);
        let tx = Tx {
            from: stranger,
            to: Some(accounts[1]),
            data: Default::default(),
            value: U256::ZERO,
        };
        assert!(matches!(rpc.send(tx).await, Err(Error::UnknownAccount(a)) if a == stranger));
        drop(node);
        assert!(
            matches!(chain.balance(accounts[1]).await, Err(Error::Backend(_))),
            "a stopped node is a backend error"
        );
    }

    /// An anvil on `port` that keeps its state in `state` (written when it stops on SIGTERM),
    /// mining only when told to if `mining` is false.
    fn anvil_with_state(
        bin: &std::path::Path,
        port: u16,
        state: &std::path::Path,
        mining: bool,
    ) -> std::process::Child {
        let mut cmd = std::process::Command::new(bin);
        cmd.args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--silent",
        ])
        .arg("--state")
        .arg(state)
        .stdout(std::process::Stdio::null());
        if !mining {
            cmd.arg("--no-mining");
        }
        cmd.spawn().unwrap()
    }

    async fn answering(url: &str) {
        for _ in 0..400 {
            if RpcEvm::connect(url, dev_signers(1)).await.is_ok() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("anvil did not answer on {url}");
    }

    /// The fault of the network demo, made certain: a transaction is in the node's pending pool
    /// when the node stops, and the node comes back from its saved state without it. The
    /// sender's wait rides out the outage and sends the same signed transaction again, which
    /// the node then mines; the next transaction takes the next nonce (alloy's cached nonces
    /// left a gap here, and every later transaction of the process waited behind it).
    #[tokio::test]
    async fn a_transaction_lost_in_a_node_restart_is_sent_again() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let Some(bin) = Anvil::locate(&root) else {
            assert!(std::env::var_os("OAI_REQUIRE_REAL").is_none(), "no anvil");
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.json");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}");
        let mut node = anvil_with_state(&bin, port, &state, false);
        answering(&url).await;
        let signers = dev_signers(2);
        let (from, to) = (signers[0].address(), signers[1].address());
        let rpc = RpcEvm::connect(&url, signers)
            .await
            .unwrap()
            .with_receipt_timeout(std::time::Duration::from_secs(60));
        rpc.set_balance(from, U256::from(10u128.pow(20)))
            .await
            .unwrap();
        let before = rpc.balance(to).await.unwrap();
        let sender = rpc.clone();
        let sent = tokio::spawn(async move {
            sender
                .send(Tx {
                    from,
                    to: Some(to),
                    data: Default::default(),
                    value: U256::from(12_345u64),
                })
                .await
        });
        use alloy::providers::Provider;
        let pool = |rpc: RpcEvm| async move {
            let pending: U256 = rpc
                .provider()
                .raw_request("eth_getTransactionCount".into(), (from, "pending"))
                .await
                .unwrap();
            pending
        };
        for _ in 0..200 {
            if pool(rpc.clone()).await == U256::from(1) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(
            pool(rpc.clone()).await,
            U256::from(1),
            "the transaction is pending"
        );
        let stopped = std::process::Command::new("kill")
            .args(["-TERM", &node.id().to_string()])
            .status()
            .unwrap();
        assert!(stopped.success());
        node.wait().unwrap();
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        assert!(!sent.is_finished(), "the sender waits through the outage");
        let mut node = anvil_with_state(&bin, port, &state, true);
        answering(&url).await;
        let receipt = tokio::time::timeout(std::time::Duration::from_secs(30), sent)
            .await
            .expect("the send ends once the node is back")
            .unwrap()
            .unwrap();
        assert!(
            matches!(receipt, oai_chain::Outcome::Success(_)),
            "{receipt:?}"
        );
        assert_eq!(
            rpc.balance(to).await.unwrap(),
            before + U256::from(12_345u64),
            "the value arrived once"
        );
        let next = rpc
            .send(Tx {
                from,
                to: Some(to),
                data: Default::default(),
                value: U256::from(1u64),
            })
            .await
            .unwrap();
        assert!(
            matches!(next, oai_chain::Outcome::Success(_)),
            "the next transaction takes the next nonce: {next:?}"
        );
        node.kill().unwrap();
        node.wait().unwrap();
    }
}
