//! Builds the C tests in `tests/c/` with the system C compiler against liboai, the shared and
//! the static library both, and `examples/c/verify_step.c`, and runs them under valgrind (leak
//! checking on; any error or definite leak fails). Without a C compiler, valgrind or
//! pkg-config the test says so and skips, unless `OAI_REQUIRE_REAL` is set (CI), where that
//! fails. `OAI_IPFS_API`, `OAI_MINILM` and `OAI_SMOLLM2` (an IPFS node, the all-MiniLM-L6-v2
//! files, the SmolLM2 GGUF) add their parts of the C tests.

use std::path::{Path, PathBuf};
use std::process::Command;

/// target/<profile>/deps, where cargo puts liboai.so and liboai.a (and this test).
fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().to_path_buf()
}

/// `pkg-config ARGS oai` over the oai.pc the build script wrote.
fn pkg_config(args: &[&str]) -> Vec<String> {
    let pc_dir = lib_dir().parent().unwrap().join("pkgconfig");
    let out = Command::new("pkg-config")
        .args(args)
        .arg("oai")
        .env("PKG_CONFIG_PATH", &pc_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pkg-config {args:?} oai: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .map(String::from)
        .collect()
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn require(tool: &str) -> bool {
    if have(tool) {
        return true;
    }
    assert!(
        std::env::var_os("OAI_REQUIRE_REAL").is_none(),
        "{tool} is needed for the C tests"
    );
    eprintln!("skipping the C tests: no {tool}");
    false
}

/// Compile `source` into `exe` with `flags` (the header's directory, the library and what it
/// needs).
fn compile(source: &Path, exe: &Path, flags: &[String]) {
    let out = Command::new("cc")
        .args([
            "-std=c11",
            "-D_DEFAULT_SOURCE",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-g",
            "-O1",
        ])
        .arg(source)
        .arg("-o")
        .arg(exe)
        .args(flags)
        .arg("-lpthread")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cc {}: {}",
        source.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Run `exe WORK_DIR` under valgrind, without the environment variables `unset`; fails on
/// any memory error or definite/indirect leak, and unless its output has `expect`.
fn run_under_valgrind(exe: &Path, expect: &str, unset: &[&str]) {
    let work = tempfile::tempdir().unwrap();
    let mut valgrind = Command::new("valgrind");
    for var in unset {
        valgrind.env_remove(var);
    }
    let out = valgrind
        .args([
            "--error-exitcode=99",
            "--leak-check=full",
            "--errors-for-leak-kinds=definite,indirect",
            "--show-leak-kinds=definite,indirect",
            "--quiet",
        ])
        .arg(exe)
        .arg(work.path())
        .env("LD_LIBRARY_PATH", lib_dir())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{} under valgrind: {text}",
        exe.display()
    );
    assert!(text.contains(expect), "{text}");
    print!("{}: {text}", exe.display());
}

const PASSED: &str = "all C API checks passed";

/// In CI (`OAI_REQUIRE_REAL`) the C tests must reach the real IPFS node and model too.
fn require_real_env() {
    if std::env::var_os("OAI_REQUIRE_REAL").is_some() {
        for var in ["OAI_IPFS_API", "OAI_MINILM", "OAI_SMOLLM2"] {
            assert!(
                std::env::var_os(var).is_some(),
                "{var} is needed for the C tests"
            );
        }
    }
}

#[test]
fn the_c_api_tests_pass_under_valgrind_with_the_shared_and_the_static_library() {
    if !require("cc") || !require("valgrind") || !require("pkg-config") {
        return;
    }
    require_real_env();
    let dir = lib_dir();
    let (shared, static_) = (dir.join("liboai.so"), dir.join("liboai.a"));
    assert!(
        shared.exists() && static_.exists(),
        "no liboai in {}",
        dir.display()
    );
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/test_api.c");
    let bin = tempfile::tempdir().unwrap();

    // The shared library as a user links it: `cc app.c $(pkg-config --cflags --libs oai)`.
    let with_shared = bin.path().join("test_api_shared");
    compile(&source, &with_shared, &pkg_config(&["--cflags", "--libs"]));
    run_under_valgrind(&with_shared, PASSED, &[]);

    // The static library by path (next to the shared one, `-loai` would pick the shared),
    // with the system libraries it needs from `pkg-config --static --libs`.
    let with_static = bin.path().join("test_api_static");
    let mut flags = pkg_config(&["--cflags"]);
    flags.push(static_.display().to_string());
    flags.extend(
        pkg_config(&["--static", "--libs"])
            .into_iter()
            .filter(|f| f.starts_with("-l") && f != "-loai"),
    );
    compile(&source, &with_static, &flags);
    // generation under valgrind takes a minute and links nothing the rest does not: once
    run_under_valgrind(&with_static, PASSED, &["OAI_SMOLLM2"]);
}

#[test]
fn the_c_example_trains_replays_and_verifies_a_step() {
    if !require("cc") || !require("valgrind") || !require("pkg-config") {
        return;
    }
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/c/verify_step.c");
    let bin = tempfile::tempdir().unwrap();
    let exe = bin.path().join("verify_step");
    compile(&source, &exe, &pkg_config(&["--cflags", "--libs"]));
    run_under_valgrind(&exe, "sampled audit: accepted", &[]);
}
