//! A job's life move by move from the command line against a real anvil (skips without one;
//! fails under `OAI_REQUIRE_REAL`): deploy, stake, post, claim, train, submit, audit the result,
//! a challenge of an honest result refused, finalize, withdraw; a move out of turn is the
//! contract's decoded error; a result of another spec challenged on its terms.

use std::path::Path;
use std::process::{Command, Output};

use oai::chain::rpc::{dev_signers, Anvil, RpcEvm};
use oai::chain::Evm;

struct Cli<'a> {
    dir: &'a Path,
    rpc: String,
}

impl Cli<'_> {
    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_oai"))
            .current_dir(self.dir)
            .args(args)
            .env("OAI_STORE", self.dir.join("store"))
            .env("OAI_RPC", &self.rpc)
            .env("OAI_DEPLOYMENT", self.dir.join("deployment.json"))
            .env_remove("OAI_KEY")
            .env_remove("OAI_IPFS")
            .output()
            .expect("run oai")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "oai {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.ok(args);
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
    }
}

/// A fresh anvil and a working directory; `None` (skipped) without anvil.
async fn anvil() -> Option<(Anvil, tempfile::TempDir)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let Some(bin) = Anvil::locate(&root) else {
        assert!(
            std::env::var_os("OAI_REQUIRE_REAL").is_none(),
            "OAI_REQUIRE_REAL is set but there is no anvil (.ci/node or OAI_ANVIL)"
        );
        eprintln!("skipped: no anvil (install .ci/node or set OAI_ANVIL)");
        return None;
    };
    Some((
        Anvil::start(&bin).await.unwrap(),
        tempfile::tempdir().unwrap(),
    ))
}

impl Cli<'_> {
    /// A development key file `<name>.key` for each of `names`, funded with 100 ETH; their
    /// addresses (lowercase).
    fn accounts(&self, names: &[&str]) -> Vec<String> {
        let mut who = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let key = format!("{name}.key");
            let addr = self.ok(&["chain", "dev-key", &i.to_string(), &key]);
            self.ok(&["chain", "dev-fund", addr.trim(), "100"]);
            who.push(addr.trim().to_lowercase());
        }
        who
    }
}

#[tokio::test]
async fn a_job_move_by_move_from_the_command_line() {
    let Some((anvil, dir)) = anvil().await else {
        return;
    };
    let cli = Cli {
        dir: dir.path(),
        rpc: anvil.url().to_string(),
    };
    let who = cli.accounts(&["deployer", "requester", "node", "referee"]);
    cli.ok(&[
        "chain",
        "deploy",
        "--referee",
        &who[3],
        "--key-file",
        "deployer.key",
    ]);

    // the requester's data and spec, then the job
    let csv: String = (0..90)
        .map(|i| format!("{},{},{}\n", i % 7, (i * 3) % 5, i % 3))
        .collect();
    std::fs::write(dir.path().join("toy.csv"), csv).unwrap();
    cli.ok(&["dataset", "import", "toy", "--csv", "toy.csv"]);
    let mut spec: serde_json::Value =
        serde_json::from_str(&cli.ok(&["train", "spec", "toy"])).unwrap();
    spec["steps"] = 12.into();
    spec["checkpoint_every"] = 4.into();
    std::fs::write(dir.path().join("spec.json"), spec.to_string()).unwrap();
    let posted = cli.json(&[
        "job",
        "post",
        "spec.json",
        "--reward-eth",
        "1.5",
        "--stake-eth",
        "1.5",
        "--challenge-window",
        "3600",
        "--key-file",
        "requester.key",
        "--json",
    ]);
    let id = posted["id"].to_string();

    // the node: stake, claim, train, submit
    let staked = cli.json(&["chain", "stake", "2", "--key-file", "node.key", "--json"]);
    assert_eq!(staked["stake_eth"], "2");
    cli.ok(&["job", "claim", &id, "--key-file", "node.key"]);
    let run = cli.ok(&["train", "run", "spec.json", "--name", "r"]);
    cli.ok(&["job", "submit", &id, "r", "--key-file", "node.key"]);
    let job = cli.json(&["chain", "job", &id, "--json"]);
    assert_eq!(job["status"], "Submitted", "{job}");
    let header = run
        .lines()
        .find_map(|l| l.strip_prefix("head"))
        .map(str::trim)
        .unwrap();
    assert_eq!(job["result"]["head"], header, "{job} vs {run}");

    // anyone audits it, with steps drawn from a block made after the submission: none can be
    // drawn until it is made; a challenge of an honest result is refused before anything is sent
    let sampled = [
        "verify",
        "result",
        &id,
        "--samples",
        "3",
        "--seed-delay",
        "2",
        "--json",
    ];
    let out = cli.run(&sampled);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("audit again once block"), "{err}");
    let evm = RpcEvm::connect(anvil.url(), dev_signers(1)).await.unwrap();
    for _ in 0..2 {
        evm.advance_time(1).await.unwrap();
    }
    let audit = cli.json(&sampled);
    assert_eq!(audit["verdict"], "accepted", "{audit}");
    let out = cli.run(&[
        "job",
        "challenge",
        &id,
        "--key-file",
        "requester.key",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"verdict\":\"accepted\""));

    // finalizing early is the market's decoded error; after the window it pays
    let out = cli.run(&["job", "finalize", &id, "--key-file", "node.key"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("TrainingMarket.ChallengeWindowOpen"), "{err}");
    evm.advance_time(3_601).await.unwrap();
    cli.ok(&["job", "finalize", &id, "--key-file", "node.key"]);
    assert_eq!(cli.json(&["chain", "job", &id, "--json"])["status"], "Paid");
    let paid = cli.json(&["job", "withdraw", "--key-file", "node.key", "--json"]);
    assert_eq!(paid["withdrawn_eth"], "1.5");
    let status = cli.json(&["chain", "status", "--key-file", "node.key", "--json"]);
    assert_eq!(status["owed_eth"], "0", "{status}");
    assert_eq!(status["stake_eth"], "2", "{status}");
    assert_eq!(status["locked_eth"], "0", "{status}");
    let jobs = cli.json(&["chain", "jobs", "--json"]);
    assert_eq!(jobs.as_array().unwrap().len(), 1);

    // a result of another spec than the job's is wrong on its face: challenged on its terms,
    // without bisection
    let id = cli.json(&[
        "job",
        "post",
        "spec.json",
        "--reward-eth",
        "1",
        "--stake-eth",
        "1.5",
        "--key-file",
        "requester.key",
        "--json",
    ])["id"]
        .to_string();
    cli.ok(&["job", "claim", &id, "--key-file", "node.key"]);
    spec["seed"] = 7.into();
    std::fs::write(dir.path().join("other.json"), spec.to_string()).unwrap();
    cli.ok(&["train", "run", "other.json", "--name", "other"]);
    cli.ok(&["job", "submit", &id, "other", "--key-file", "node.key"]);
    let out = cli.json(&[
        "job",
        "challenge",
        &id,
        "--key-file",
        "requester.key",
        "--json",
    ]);
    assert_eq!(
        (&out["verdict"], &out["terms"]),
        (&"rejected".into(), &true.into()),
        "{out}"
    );
    let job = cli.json(&["chain", "job", &id, "--json"]);
    assert_eq!(job["status"], "Disputed", "{job}");

    // a record asked for on chain that the node never posts (no `oai node` runs here): after
    // the move timeout the requester slashes it
    cli.ok(&["chain", "stake", "2", "--key-file", "node.key"]);
    let id = cli.json(&[
        "job",
        "post",
        "spec.json",
        "--reward-eth",
        "1",
        "--stake-eth",
        "1",
        "--key-file",
        "requester.key",
        "--json",
    ])["id"]
        .to_string();
    cli.ok(&["job", "claim", &id, "--key-file", "node.key"]);
    cli.ok(&["job", "submit", &id, "r", "--key-file", "node.key"]);
    let asked = cli.json(&[
        "job",
        "request-data",
        &id,
        "5",
        "--key-file",
        "requester.key",
        "--json",
    ]);
    assert_eq!(asked["bond_wei"], "10000000000000000", "{asked}");
    let out = cli.run(&["job", "timeout-data", &id, "--key-file", "requester.key"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("NotTimedOut"));
    evm.advance_time(3_601).await.unwrap();
    cli.ok(&["job", "timeout-data", &id, "--key-file", "requester.key"]);
    let job = cli.json(&["chain", "job", &id, "--json"]);
    assert_eq!(job["status"], "Slashed", "{job}");
}

/// The training DAO from the command line: a deployment with two members, a new referee set
/// proposed, voted in by the majority's weight, refused in its timelock, executed after it.
#[tokio::test]
async fn the_training_dao_changes_the_referees_from_the_command_line() {
    let Some((anvil, dir)) = anvil().await else {
        return;
    };
    let cli = Cli {
        dir: dir.path(),
        rpc: anvil.url().to_string(),
    };
    let who = cli.accounts(&["deployer", "alice", "bob", "referee", "newcomer"]);
    let (alice, bob) = (format!("{}=1", who[1]), format!("{}=2", who[2]));
    cli.ok(&[
        "chain",
        "deploy",
        "--referee",
        &who[3],
        "--member",
        &alice,
        "--member",
        &bob,
        "--timelock",
        "60",
        "--key-file",
        "deployer.key",
    ]);
    let rules = cli.json(&["dao", "show", "--json"]);
    assert_eq!(rules["referees"], serde_json::json!([who[3]]), "{rules}");
    assert_eq!(
        (rules["threshold"].as_u64(), rules["epoch"].as_u64()),
        (Some(1), Some(0))
    );
    assert!(rules["dao"].is_string(), "{rules}");

    let out = cli.run(&[
        "dao",
        "propose",
        "referees",
        "--referee",
        &who[3],
        "--referee",
        &who[4],
        "--threshold",
        "1",
        "--key-file",
        "alice.key",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("strict majority"));
    let proposed = cli.json(&[
        "dao",
        "propose",
        "referees",
        "--referee",
        &who[4],
        "--key-file",
        "alice.key",
        "--json",
    ]);
    let id = proposed["id"].to_string();
    cli.ok(&["dao", "vote", &id, "yes", "--key-file", "bob.key"]);
    let out = cli.run(&["dao", "execute", &id, "--key-file", "alice.key"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("TimelockActive"), "{err}");
    let evm = RpcEvm::connect(anvil.url(), dev_signers(1)).await.unwrap();
    evm.advance_time(61).await.unwrap();
    cli.ok(&["dao", "execute", &id, "--key-file", "alice.key"]);
    let rules = cli.json(&["dao", "show", "--json"]);
    assert_eq!(rules["referees"], serde_json::json!([who[4]]), "{rules}");
    assert_eq!(rules["epoch"].as_u64(), Some(1));
    let p = cli.json(&["dao", "proposal", &id, "--json"]);
    assert_eq!(
        (p["executed"].as_bool(), p["yes"].as_str()),
        (Some(true), Some("2")),
        "{p}"
    );
}
