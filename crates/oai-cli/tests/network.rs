//! The whole loop as separate processes: `scripts/network_demo.sh` against this build's `oai`
//! and a real anvil (skips without one; fails under `OAI_REQUIRE_REAL`), with every block in
//! the IPFS node of `OAI_IPFS_API` when it is set. Mid-dispute the challenger and the cheating
//! trainer are killed with SIGKILL, the chain stops and starts again from its saved state, and
//! (with IPFS) the IPFS node goes away for a while: no honest party may lose by it.

use std::path::Path;
use std::process::Command;

#[test]
fn cheater_slashed_and_honest_node_paid_across_processes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let Some(anvil) = oai::chain::rpc::Anvil::locate(&root) else {
        assert!(
            std::env::var_os("OAI_REQUIRE_REAL").is_none(),
            "OAI_REQUIRE_REAL is set but there is no anvil (.ci/node or OAI_ANVIL)"
        );
        eprintln!("skipped: no anvil (install .ci/node or set OAI_ANVIL)");
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg(root.join("scripts/network_demo.sh"))
        .arg(work.path())
        .env("OAI_BIN", env!("CARGO_BIN_EXE_oai"))
        .env("OAI_ANVIL", &anvil)
        .output()
        .expect("run the network demo");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "network demo failed:\n{stderr}");
    eprintln!("{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let summary: serde_json::Value =
        serde_json::from_str(stdout.lines().last().expect("a summary line")).unwrap();
    let jobs = summary["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 2, "{summary}");
    for job in jobs {
        let node = &summary["node_of_job"][job["id"].to_string()];
        match job["status"].as_str().unwrap() {
            "Paid" => assert_eq!(node, "honest", "{summary}"),
            "Slashed" => assert_eq!(node, "cheater", "{summary}"),
            other => panic!("job {} ended {other}: {summary}", job["id"]),
        }
    }
    let parties = &summary["parties"];
    let eth =
        |who: &str, field: &str| -> f64 { parties[who][field].as_str().unwrap().parse().unwrap() };
    assert_eq!(
        eth("cheater", "stake_eth"),
        0.0,
        "the cheater keeps no stake: {summary}"
    );
    assert_eq!(eth("honest", "stake_eth"), 1.0, "{summary}");
    assert!(
        eth("honest", "balance_eth") > 99.5,
        "the honest node was paid: {summary}"
    );
    assert!(
        eth("challenger", "balance_eth") > 99.0,
        "the challenger was rewarded: {summary}"
    );
    for who in ["ada", "bo", "honest", "cheater", "challenger", "referee"] {
        assert_eq!(
            eth(who, "owed_eth"),
            0.0,
            "{who} withdrew everything: {summary}"
        );
    }
    let faults = &summary["faults"];
    for fault in [
        "challenger_killed_mid_dispute",
        "cheater_killed_mid_dispute",
        "chain_restarted_mid_dispute",
    ] {
        assert_eq!(faults[fault], true, "{fault}: {summary}");
    }
    assert!(
        faults["cheater_answers_after_restart"].as_u64().unwrap() >= 1,
        "the restarted cheater went on answering its dispute: {summary}"
    );
    // Gas per party, from the receipts of every block (each party's own transactions).
    let txs = |who: &str| parties[who]["txs"].as_u64().unwrap();
    let gas = |who: &str| parties[who]["gas"].as_u64().unwrap();
    assert!(
        txs("honest") >= 4,
        "register, claim, submit, finalize, withdraw: {summary}"
    );
    assert!(txs("challenger") >= 3, "stake, challenge, moves: {summary}");
    assert!(txs("referee") >= 1, "a vote: {summary}");
    assert!(
        txs("ada") >= 1 && txs("bo") >= 2,
        "posts and funds: {summary}"
    );
    for who in ["ada", "bo", "honest", "cheater", "challenger", "referee"] {
        assert!(
            gas(who) >= 21_000 * txs(who),
            "{who} paid at least the base gas of each transaction: {summary}"
        );
    }
    if let Ok(api) = std::env::var("OAI_IPFS_API") {
        assert_eq!(
            summary["blocks"],
            api.as_str(),
            "every block in the IPFS node"
        );
        assert!(
            faults["ipfs_outage_s"].as_u64().unwrap() > 0,
            "the IPFS node went away: {summary}"
        );
    }
}
