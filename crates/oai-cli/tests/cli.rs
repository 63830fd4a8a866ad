//! The `oai` binary end to end, on a temporary store.

use std::path::Path;
use std::process::{Command, Output};

fn oai(store: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_oai"))
        .arg("--store")
        .arg(store)
        .args(args)
        .output()
        .expect("run oai")
}

fn ok(store: &Path, args: &[&str]) -> String {
    let out = oai(store, args);
    assert!(
        out.status.success(),
        "oai {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn import_lines(store: &Path, name: &str, file: &Path) -> String {
    ok(
        store,
        &["dataset", "import", name, "--lines", file.to_str().unwrap()],
    )
}

fn field<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(key))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {key} in {out}"))
}

#[test]
fn datasets_files_and_cars_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let text = dir.path().join("notes.txt");

    // import, then re-import an edited file as the next version
    std::fs::write(&text, "alpha\nbeta\ngamma\n").unwrap();
    let v1 = import_lines(&store, "notes", &text);
    assert_eq!(field(&v1, "records"), "3");
    std::fs::write(&text, "alpha\nBETA\ngamma\ndelta\n").unwrap();
    let v2 = import_lines(&store, "notes", &text);
    assert_eq!(field(&v2, "parent"), field(&v1, "version"));
    assert_eq!(field(&v2, "changes"), "-1 +2");

    // diff by CID, prove, sample, fork
    let diff = ok(&store, &["dataset", "diff", field(&v1, "version"), "notes"]);
    assert_eq!(diff.lines().filter(|l| l.starts_with('+')).count(), 2);
    let proof = ok(&store, &["dataset", "prove", "notes", "1"]);
    assert!(proof.contains("\"BETA\"") && proof.contains("verified"));
    let a = ok(
        &store,
        &["dataset", "sample", "notes", "--seed", "3", "--batch", "2"],
    );
    let b = ok(
        &store,
        &["dataset", "sample", "notes", "--seed", "3", "--batch", "2"],
    );
    assert_eq!(a, b);
    assert_eq!(a.lines().count(), 2);
    ok(&store, &["dataset", "fork", "notes", "notes-fork"]);
    let list = ok(&store, &["dataset", "list"]);
    assert_eq!(list.lines().count(), 2);

    // a file: add, cat, CAR out and into a second store
    let data: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
    let file = dir.path().join("data.bin");
    std::fs::write(&file, &data).unwrap();
    let cid = ok(&store, &["add", file.to_str().unwrap(), "--name", "data"]);
    let cid = cid.trim();
    let back = dir.path().join("back.bin");
    ok(&store, &["cat", cid, "--output", back.to_str().unwrap()]);
    assert_eq!(std::fs::read(&back).unwrap(), data);
    let car = dir.path().join("notes.car");
    ok(&store, &["car", "export", "notes", car.to_str().unwrap()]);
    let other = dir.path().join("other");
    let roots = ok(&other, &["car", "import", car.to_str().unwrap()]);
    assert_eq!(roots.trim(), field(&v2, "version"));
    let shown = ok(&other, &["dataset", "show", roots.trim()]);
    assert_eq!(field(&shown, "root"), field(&v2, "root"));

    // gc keeps everything a head reaches
    ok(&store, &["gc"]);
    ok(&store, &["cat", cid, "--output", back.to_str().unwrap()]);
    ok(&store, &["dataset", "prove", field(&v1, "version"), "2"]);
}

#[test]
fn bad_input_fails_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let out = oai(&store, &["dataset", "show", "missing"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no dataset named \"missing\""));

    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, b"ok\n\xff\xfe\n").unwrap();
    let out = oai(
        &store,
        &["dataset", "import", "x", "--lines", bad.to_str().unwrap()],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not UTF-8 (line 2, byte 3)"));

    let car = dir.path().join("broken.car");
    std::fs::write(&car, [0x0a, 1, 2]).unwrap();
    let out = oai(&store, &["car", "import", car.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("truncated"));

    let out = oai(
        &store,
        &[
            "cat",
            "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));
}

#[test]
fn train_stop_resume_replay_and_prove_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    // 200 rows of 8 features, 3 classes: class c lights up features 2c and 2c+1.
    let csv: String = (0..200)
        .map(|i| {
            let c = i % 3;
            let feats: Vec<String> = (0..8)
                .map(|j| {
                    let on = j / 2 == c;
                    format!(
                        "{}",
                        if on {
                            10 + (i * 7 + j) % 6
                        } else {
                            (i * 3 + j) % 4
                        }
                    )
                })
                .collect();
            format!("{},{c}\n", feats.join(","))
        })
        .collect();
    let csv_path = dir.path().join("toy.csv");
    std::fs::write(&csv_path, csv).unwrap();
    let imported = ok(
        &store,
        &[
            "dataset",
            "import",
            "toy",
            "--csv",
            csv_path.to_str().unwrap(),
            "--scale",
            "0.0625",
        ],
    );
    assert_eq!(field(&imported, "records"), "200");

    let spec = ok(&store, &["train", "spec", "toy"]);
    let spec = spec
        .replace("\"steps\": 500", "\"steps\": 30")
        .replace("\"checkpoint_every\": 100", "\"checkpoint_every\": 10");
    let spec_path = dir.path().join("toy-run.json");
    std::fs::write(&spec_path, &spec).unwrap();

    let first = ok(
        &store,
        &[
            "train",
            "run",
            spec_path.to_str().unwrap(),
            "--stop-after",
            "14",
        ],
    );
    assert_eq!(field(&first, "steps"), "14");
    let resumed = ok(&store, &["train", "resume", "toy-run"]);
    assert_eq!(field(&resumed, "steps"), "30");

    // The same spec trained straight through gives the same root.
    let straight = ok(
        &store,
        &[
            "train",
            "run",
            spec_path.to_str().unwrap(),
            "--name",
            "straight",
        ],
    );
    assert_eq!(field(&straight, "root"), field(&resumed, "root"));

    let replay = ok(&store, &["train", "replay", "toy-run", "17"]);
    assert!(replay.contains("step 17: match"), "{replay}");
    let show = ok(&store, &["train", "show", "toy-run"]);
    assert!(show.contains("verified"));
    let audit = ok(
        &store,
        &["verify", "audit", "toy-run", "--samples", "4", "--json"],
    );
    let v: serde_json::Value = serde_json::from_str(audit.trim()).unwrap();
    assert_eq!(v["verdict"], "accepted", "{audit}");
    assert_eq!(v["sampled"], 4, "{audit}");
    let full = ok(
        &store,
        &["verify", "audit", "toy-run", "--parallelism", "2"],
    );
    assert!(
        full.contains("accepted: 30 steps sampled, 30 replayed"),
        "{full}"
    );
    let out = oai(&store, &["verify", "audit", "toy-run", "--samples", "0"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--samples must be at least 1"));
    let proof = ok(&store, &["train", "prove", field(&resumed, "log"), "29"]);
    assert!(proof.contains("verified against root"));

    let out = oai(&store, &["train", "replay", "toy-run", "30"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("out of range"));
    // Devices: the CPU is the default; a device this build or machine lacks is a clear error;
    // a malformed one is refused before anything runs.
    let on_cpu = ok(
        &store,
        &["train", "replay", "toy-run", "17", "--device", "cpu"],
    );
    assert!(on_cpu.contains("step 17: match"), "{on_cpu}");
    let out = oai(
        &store,
        &["train", "replay", "toy-run", "17", "--device", "cuda:99"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot open device cuda:99"), "{err}");
    assert!(err.contains("--features cuda"), "{err}");
    for bad in ["gpu", "cuda:x", "cpu:1"] {
        let out = oai(
            &store,
            &["train", "replay", "toy-run", "17", "--device", bad],
        );
        assert_eq!(out.status.code(), Some(2), "--device {bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("invalid value"), "{err}");
    }
    std::fs::write(&spec_path, spec.replace("\"adam_w\"", "\"lion\"")).unwrap();
    let out = oai(&store, &["train", "run", spec_path.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid job spec"));
}

/// `oai` with no account key or chain settings inherited from the environment.
fn oai_clean(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_oai"))
        .current_dir(dir)
        .args(args)
        .env_remove("OAI_KEY")
        .env_remove("OAI_KEY_FILE")
        .env_remove("OAI_RPC")
        .env_remove("OAI_DEPLOYMENT")
        .output()
        .expect("run oai");
    assert!(!out.status.success(), "oai {args:?} succeeded");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn chain_job_and_node_commands_fail_clearly_on_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let err = oai_clean(d, &["chain", "status"]);
    assert!(
        err.contains("no account key: give --key-file FILE or set OAI_KEY"),
        "{err}"
    );
    std::fs::write(d.join("bad.key"), "not a key\n").unwrap();
    #[cfg(unix)]
    {
        // a key file others may read is refused before it is read
        let err = oai_clean(d, &["chain", "status", "--key-file", "bad.key"]);
        assert!(err.contains("chmod 600"), "{err}");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(d.join("bad.key"), std::fs::Permissions::from_mode(0o600))
            .unwrap();
    }
    let err = oai_clean(d, &["chain", "status", "--key-file", "bad.key"]);
    assert!(
        err.contains("key file bad.key does not hold a private key"),
        "{err}"
    );
    // a well-formed key: the next missing piece is the deployment, then the node
    let key = Command::new(env!("CARGO_BIN_EXE_oai"))
        .current_dir(d)
        .args(["chain", "dev-key", "0", "good.key"])
        .output()
        .unwrap();
    assert!(key.status.success());
    let err = oai_clean(d, &["chain", "jobs"]);
    assert!(err.contains("run `oai chain deploy` first"), "{err}");
    std::fs::write(d.join("deployment.json"), "{\"market\": 1}").unwrap();
    let err = oai_clean(d, &["chain", "jobs", "--key-file", "good.key"]);
    assert!(
        err.contains("deployment deployment.json is malformed"),
        "{err}"
    );
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let rpc = format!("http://{}", free.local_addr().unwrap());
    drop(free);
    let err = oai_clean(
        d,
        &[
            "chain",
            "dev-fund",
            "0x0000000000000000000000000000000000000001",
            "1",
            "--rpc",
            &rpc,
        ],
    );
    assert!(
        err.contains(&format!("connecting to the Ethereum node at {rpc}")),
        "{err}"
    );
    let err = oai_clean(d, &["job", "fund", "1", "lots", "--key-file", "good.key"]);
    assert!(err.contains("\"lots\" is not an ETH amount"), "{err}");

    // oai node: no role, a config with an unknown key or a bad value
    let err = oai_clean(d, &["node", "--key-file", "good.key"]);
    assert!(err.contains("no role"), "{err}");
    std::fs::write(d.join("node.toml"), "roles = [\"trainer\"]\nstake = 1\n").unwrap();
    let err = oai_clean(d, &["node", "--config", "node.toml"]);
    assert!(err.contains("unknown field `stake`"), "{err}");
    std::fs::write(
        d.join("node.toml"),
        "roles = [\"trainer\"]\nstake_eth = \"x\"\nkey_file = \"good.key\"\n",
    )
    .unwrap();
    let err = oai_clean(d, &["node", "--config", "node.toml"]);
    assert!(err.contains("\"x\" is not an ETH amount"), "{err}");
}

#[test]
fn rag_ingest_query_update_and_serve_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let notes = dir.path().join("notes.txt");
    std::fs::write(
        &notes,
        "A fork of a dataset costs no bytes.\nA cheating node loses its stake.\nCAR files carry blocks.\n",
    )
    .unwrap();
    import_lines(&store, "notes", &notes);
    let first = ok(&store, &["rag", "ingest", "notes"]);
    assert!(
        first.contains("index notes: 3 embedded, 0 unchanged, 0 removed"),
        "{first}"
    );
    let q = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec![
            "rag",
            "query",
            "notes",
            "What does a cheating node lose?",
            "--json",
        ];
        args.extend_from_slice(extra);
        serde_json::from_str(ok(&store, &args).trim()).unwrap()
    };
    let a = q(&[]);
    assert_eq!(a["answer"], "A cheating node loses its stake.", "{a}");
    assert_eq!(a["citations"].as_array().unwrap().len(), 1, "{a}");
    // a chat model answers from the same passages and cites the ones it was given
    if let Some(model) = std::env::var_os("OAI_SMOLLM2") {
        let a = q(&["--gguf", model.to_str().unwrap(), "--k", "2"]);
        let answer = a["answer"].as_str().unwrap();
        assert!(answer.contains("stake"), "{a}");
        assert_eq!(a["citations"].as_array().unwrap().len(), 2, "{a}");
    }

    // the next version: only the changed line is embedded
    std::fs::write(
        &notes,
        "A fork of a dataset costs no bytes.\nA cheating node loses its whole stake.\nCAR files carry blocks.\n",
    )
    .unwrap();
    import_lines(&store, "notes", &notes);
    let second = ok(&store, &["rag", "ingest", "notes"]);
    assert!(
        second.contains("1 embedded, 0 unchanged, 1 removed"),
        "{second}"
    );
    assert_eq!(q(&[])["answer"], "A cheating node loses its whole stake.");

    // a peer serving the same index over gRPC, and a dead peer: the answer stands, the dead
    // peer is reported
    let free = || {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let (addr, dead) = (free(), free());
    let mut server = Command::new(env!("CARGO_BIN_EXE_oai"))
        .arg("--store")
        .arg(&store)
        .args(["rag", "serve", "notes", "--listen", &addr])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let peer = format!("http://{addr}");
    let dead = format!("http://{dead}");
    let a = q(&["--peer", &peer, "--peer", &dead]);
    server.kill().unwrap();
    server.wait().unwrap();
    assert_eq!(a["answer"], "A cheating node loses its whole stake.", "{a}");
    assert_eq!(a["answered"].as_array().unwrap().len(), 2, "{a}");
    assert_eq!(a["failures"].as_array().unwrap().len(), 1, "{a}");

    let out = oai(&store, &["rag", "query", "nothing", "?"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no index named \"nothing\""));
}

/// A small labelled-points dataset and a 30-step MLP spec for it in `store`; the spec's path.
fn points_job(store: &Path, dir: &Path) -> std::path::PathBuf {
    let csv: String = (0..240)
        .map(|i| {
            let c = i % 3;
            let x = (i * 37 % 100) as f64 / 100.0;
            format!(
                "{:.3},{:.3},{:.3},{c}\n",
                c as f64 + x,
                x - c as f64,
                x * c as f64
            )
        })
        .collect();
    let points = dir.join("points.csv");
    std::fs::write(&points, csv).unwrap();
    ok(
        store,
        &[
            "dataset",
            "import",
            "points",
            "--csv",
            points.to_str().unwrap(),
        ],
    );
    let full = ok(store, &["train", "spec", "points", "--model", "mlp"]);
    let mut spec: serde_json::Value = serde_json::from_str(&full).unwrap();
    spec["steps"] = 30.into();
    spec["checkpoint_every"] = 10.into();
    spec["batch_size"] = 16.into();
    let path = dir.join("spec.json");
    std::fs::write(&path, spec.to_string()).unwrap();
    path
}

/// The summary `oai node --embedded` prints last.
fn embedded_summary(out: &str) -> serde_json::Value {
    serde_json::from_str(out.lines().last().expect("a summary")).unwrap()
}

#[test]
fn node_embedded_plays_jobs_until_they_settle() {
    let dir = tempfile::tempdir().unwrap();
    let (d, store) = (dir.path(), dir.path().join("store"));
    let spec = points_job(&store, d);
    let spec = spec.to_str().unwrap();

    // An honest trainer, a challenger and a referee: the result is accepted and paid.
    let out = ok(&store, &["node", "--embedded", "--post", spec]);
    let s = embedded_summary(&out);
    assert_eq!(s["jobs"][0]["status"], "Paid", "{out}");
    assert_eq!(s["accounts"]["trainer"]["stake_eth"], "1", "{out}");
    assert!(out.contains("trained 30 steps, submitted head"), "{out}");
    assert!(out.contains("nobody has anything to do"), "{out}");

    // A trainer that forges step 13's loss, twice over: caught by bisection, both slashed.
    std::fs::write(d.join("cheat.toml"), "forge_loss_at_step = 13\n").unwrap();
    let cheat = d.join("cheat.toml");
    let out = ok(
        &store,
        &[
            "node",
            "--embedded",
            "--config",
            cheat.to_str().unwrap(),
            "--post",
            spec,
        ],
    );
    let s = embedded_summary(&out);
    assert_eq!(s["jobs"][0]["status"], "Slashed", "{out}");
    assert_eq!(s["accounts"]["trainer"]["stake_eth"], "0", "{out}");
    assert!(out.contains("step 13 is wrong: challenged"), "{out}");

    // Bad input: no job, a job but no trainer, --post without --embedded, a malformed spec.
    let fails = |args: &[&str]| {
        let out = oai(&store, args);
        assert!(!out.status.success(), "oai {args:?} succeeded");
        String::from_utf8(out.stderr).unwrap()
    };
    let err = fails(&["node", "--embedded"]);
    assert!(err.contains("--embedded needs a job to play"), "{err}");
    let err = fails(&["node", "--embedded", "--role", "challenger", "--post", spec]);
    assert!(err.contains("nobody would train"), "{err}");
    let err = fails(&["node", "--post", spec]);
    assert!(err.contains("--embedded"), "{err}");
    std::fs::write(d.join("bad.json"), "{\"steps\": 3}").unwrap();
    let bad = d.join("bad.json");
    let err = fails(&["node", "--embedded", "--post", bad.to_str().unwrap()]);
    assert!(err.contains("job spec"), "{err}");
}

#[test]
fn an_ipfs_node_that_is_not_there_is_a_clear_error_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (d, store) = (dir.path(), dir.path().join("store"));
    let notes = d.join("notes.txt");
    std::fs::write(&notes, "one\ntwo\n").unwrap();
    import_lines(&store, "notes", &notes);
    let before = ok(&store, &["dataset", "list"]);
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", free.local_addr().unwrap());
    drop(free);
    std::fs::write(&notes, "one\ntwo\nthree\n").unwrap();
    for args in [
        vec![
            "dataset",
            "import",
            "notes",
            "--lines",
            notes.to_str().unwrap(),
        ],
        vec!["dataset", "show", "notes"],
    ] {
        let out = oai(&store, &[&["--ipfs", url.as_str()], &args[..]].concat());
        assert!(!out.status.success(), "{args:?} succeeded without IPFS");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(
            err.contains(&format!("IPFS node at {url}")) && err.contains("unreachable"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(
        ok(&store, &["dataset", "list"]),
        before,
        "the failed import moved no head"
    );
}

/// `oai generate` answers with SmolLM2 (`OAI_SMOLLM2`, skipped without it unless
/// `OAI_REQUIRE_REAL`), the same tokens every time; a file that is not a model is a clear
/// error.
#[test]
fn generate_answers_with_a_gguf_model_and_refuses_other_files() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_model = dir.path().join("notes.txt");
    std::fs::write(&not_a_model, "not a model").unwrap();
    let out = oai(
        dir.path(),
        &["generate", "hi", "--gguf", not_a_model.to_str().unwrap()],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("gguf"), "{err}");
    let Some(model) = std::env::var_os("OAI_SMOLLM2") else {
        assert!(
            std::env::var_os("OAI_REQUIRE_REAL").is_none(),
            "OAI_SMOLLM2 is not set and OAI_REQUIRE_REAL is"
        );
        eprintln!("skipped: set OAI_SMOLLM2 (scripts/fetch_models.sh) to generate");
        return;
    };
    let ask = || {
        ok(
            dir.path(),
            &[
                "generate",
                "What is the capital of France?",
                "--max-tokens",
                "12",
                "--gguf",
                model.to_str().unwrap(),
            ],
        )
    };
    let answer = ask();
    assert!(answer.contains("Paris"), "{answer}");
    assert_eq!(ask(), answer, "greedy answers are the same every time");
}
