//! Helpers shared by this crate's test binaries.

use std::process::Command;

/// Run the ignored test `test` of this test binary in a child process (behind `wrapper`, e.g.
/// `["qemu-x86_64", "-cpu", "Haswell"]`, when not empty) with `env` set; assert it succeeded
/// and return the lines of its output that start with `prefix`, without the prefix.
pub fn child_lines(
    wrapper: &[&str],
    test: &str,
    env: &[(&str, &str)],
    prefix: &str,
) -> Vec<String> {
    let exe = std::env::current_exe().unwrap();
    let exe = exe.to_str().unwrap();
    let mut argv: Vec<&str> = wrapper.to_vec();
    argv.extend([exe, test, "--exact", "--ignored", "--nocapture"]);
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{argv:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix(prefix))
        .map(String::from)
        .collect()
}
