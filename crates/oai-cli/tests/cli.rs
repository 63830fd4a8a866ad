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
    assert!(String::from_utf8_lossy(&out.stderr).contains("not UTF-8 (line 2)"));

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
