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
