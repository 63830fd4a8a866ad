//! The kernels' bits rest on exact versions of candle, gemm and libm: this crate pins them, its
//! version strings name them, and the workspace's `Cargo.lock` resolves to them.

use oai_kernels::{NATIVE_KERNELS, VERIFIABLE_KERNELS};

/// The versions `Cargo.lock` resolves `name` to.
fn locked(lock: &str, name: &str) -> Vec<String> {
    lock.split("[[package]]")
        .filter(|p| p.lines().any(|l| l.trim() == format!("name = \"{name}\"")))
        .filter_map(|p| {
            let line = p.lines().find(|l| l.trim().starts_with("version = "))?;
            Some(
                line.trim()["version = ".len()..]
                    .trim_matches('"')
                    .to_string(),
            )
        })
        .collect()
}

/// The version `manifest` pins `name` to (`name = "=x.y.z"`).
fn pinned(manifest: &str, name: &str) -> String {
    let line = manifest
        .lines()
        .find(|l| l.starts_with(&format!("{name} = ")))
        .unwrap_or_else(|| panic!("Cargo.toml depends on {name}"));
    let v = line.split('"').nth(1).expect("a version in quotes");
    v.strip_prefix('=')
        .unwrap_or_else(|| panic!("{name} is pinned with '=': {line}"))
        .to_string()
}

/// The version `kernels` names `prefix` with (`gemm-0.19.0` in `.../gemm-0.19.0/...`).
fn named(kernels: &str, prefix: &str) -> String {
    kernels
        .split('/')
        .find_map(|part| part.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("{kernels} names no {prefix}"))
        .to_string()
}

#[test]
fn the_kernel_versions_name_the_pinned_and_locked_versions() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let lock = std::fs::read_to_string(format!("{root}/Cargo.lock")).expect("the workspace's lock");
    let manifest = include_str!("../Cargo.toml");
    for (name, prefix) in [
        ("candle-core", "candle-"),
        ("candle-nn", "candle-"),
        ("gemm", "gemm-"),
        ("libm", "libm-"),
    ] {
        let pin = pinned(manifest, name);
        assert_eq!(
            locked(&lock, name),
            std::slice::from_ref(&pin),
            "{name}: one version, the pinned one"
        );
        for kernels in [VERIFIABLE_KERNELS, NATIVE_KERNELS] {
            if name == "libm" && kernels == NATIVE_KERNELS {
                continue; // native kernels use the system's libm through candle
            }
            let says = named(kernels, prefix);
            // a version string names the exact version or its major.minor
            assert!(
                pin == says || pin.starts_with(&format!("{says}.")),
                "{kernels} names {prefix}{says}, Cargo.toml pins {name} {pin}"
            );
        }
    }
}
