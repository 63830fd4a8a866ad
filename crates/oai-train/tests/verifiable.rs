//! Verifiable kernels give the same bits on every machine of a class: the same training steps
//! run with the machine's real L1 cache geometry, with faked geometries (sysfs cache files
//! bind-mounted in a private mount namespace, `unshare -m`), and under an emulated Haswell CPU
//! (`qemu-x86_64 -cpu Haswell`, AVX2 where this host may have AVX-512) must write the same log:
//! same root, so the same weights commitment after every step. Native candle kernels run
//! alongside as the control that shows the fake geometry really reaches gemm.
//!
//! Each run is a child process (this test binary running the ignored `child_trains` test).
//! Without root or `unshare`, or without `qemu-x86_64` (Debian `qemu-user`), the tests skip with a
//! message, unless `OAI_REQUIRE_REAL` is set (as in `.ci/run`, which runs as root).

use std::path::Path;
use std::process::Command;

use oai_core::Seed;
use oai_data::dataset::{Record, Tensor as RecordTensor, Version};
use oai_data::MemStore;
use oai_train::{
    corpus, JobSpec, Kernels, LlamaSpec, ModelSpec, OptimizerSpec, Schedule, Trainer,
    TransformerSpec,
};

mod support;

const CPU: oai_train::candle::Device = oai_train::candle::Device::Cpu;

/// An MLP with 784 inputs and batch 128 (large enough that plain gemm's k-blocking depends on
/// the L1 geometry), a small transformer (attention, softmax, GELU, layer norm) and a small
/// Llama (RMSNorm, rotary positions, grouped-query attention, SwiGLU, tied embeddings).
async fn workloads(kernels: Kernels) -> Vec<(&'static str, MemStore, JobSpec)> {
    let mut rng = Seed::from_u64(11).rng();
    let mlp_records: Vec<Record> = (0..256u64)
        .map(|i| {
            let values: Vec<f32> = (0..784)
                .map(|_| (oai_core::seed::RngCore::next_u32(&mut rng) >> 8) as f32 / 16_777_216.0)
                .collect();
            Record::Labeled {
                input: RecordTensor::from_f32(vec![784], &values).unwrap(),
                label: i % 10,
            }
        })
        .collect();
    let text: Vec<u8> = (0..4000u32)
        .map(|i| b"open data, open training; "[(i * 7 % 26) as usize])
        .collect();
    let windows = corpus::byte_windows(&text, 32, 29).unwrap();
    let mut out = Vec::new();
    for (name, records, model, batch_size) in [
        (
            "mlp",
            mlp_records,
            ModelSpec::Mlp {
                input: 784,
                hidden: vec![256],
                classes: 10,
                dropout: 0.1,
            },
            128,
        ),
        (
            "transformer",
            windows.clone(),
            ModelSpec::Transformer(TransformerSpec {
                vocab: 256,
                context: 32,
                d_model: 64,
                heads: 4,
                layers: 1,
                d_ff: 256,
                dropout: 0.1,
            }),
            4,
        ),
        (
            "llama",
            windows.clone(),
            ModelSpec::Llama(LlamaSpec {
                vocab: 256,
                context: 32,
                d_model: 64,
                layers: 1,
                heads: 4,
                kv_heads: 2,
                d_ff: 128,
                rope_theta: 10_000.0,
                rms_eps: 1e-5,
                tie_embeddings: true,
            }),
            4,
        ),
    ] {
        let store = MemStore::new();
        let dataset = Version::from_records(&store, records).await.unwrap().cid();
        let spec = JobSpec {
            dataset,
            model,
            optimizer: OptimizerSpec::adam_w(0.01),
            schedule: Schedule::Constant { lr: 1e-3 },
            batch_size,
            steps: 3,
            checkpoint_every: 0,
            grad_clip: Some(1.0),
            seed: 7,
            kernels,
            compute_class: None,
        };
        out.push((name, store, spec));
    }
    out
}

/// Run by the tests below in a child process: trains each workload with the kernels named by
/// `OAI_CHILD_KERNELS` and prints its compute class and log root.
#[tokio::test]
#[ignore = "helper: run in a child process by the tests of this file"]
async fn child_trains() {
    let kernels = match std::env::var("OAI_CHILD_KERNELS").as_deref() {
        Ok("native") => Kernels::Native,
        _ => Kernels::Verifiable,
    };
    for (name, store, spec) in workloads(kernels).await {
        let mut t = Trainer::new(store, spec, CPU).await.unwrap();
        let class = t.env().class.clone();
        let (_, log) = t.train_and_publish().await.unwrap();
        println!("RESULT {name} {class} {}", log.root);
    }
}

/// The verifiable kernels' bits, pinned: the weights commitment after the last step and the log
/// root of each workload of [`workloads`] (3 steps each), as computed on an x86-64-v3 machine.
/// Every machine that runs this test checks that it computes the same bits as that machine.
///
/// A change of these values is a breaking change: logs written before it no longer replay.
/// It must come with a new [`Kernels::version`] (the weights changed: the kernels compute other
/// bits) or a new log format (only the roots changed: `oai_train::log::LOG_FORMAT`). To
/// regenerate, run `cargo test -p oai-train --test verifiable pinned` and copy the values the
/// failure prints.
const PINNED: [(&str, &str, &str); 3] = [
    (
        "mlp",
        "a1d6bc10facc261725b7f4ce7f83b02152de40309ee6c7b30a730d96f79b3eab",
        "5250f7b2cd58ab4a3c96c491dcf81a37fa7162e1b93456adce13a287e32c9ad7",
    ),
    (
        "transformer",
        "243f63d60cecf3648afc98b7c8a6093eb2fc440165da88b894420dc3e767b694",
        "7b573945a0cb25c9de481621c1b2306c2a977e6d066187e31bf3842b9d282319",
    ),
    (
        "llama",
        "bd732aa12759f52b81a7287bdb52d4c9d0f4e2ddf5038377393cdfc0e7502a84",
        "cd4348ac52a9657163ac2d490c26bbdadbee4d8be8820d3c73a57e935aa2dc4b",
    ),
];

#[tokio::test]
async fn verifiable_bits_equal_the_pinned_values() {
    let class = oai_train::ComputeEnv::detect(&CPU, Kernels::Verifiable).class;
    if class != "x86_64-v3/cpu" {
        return skip_or_fail(&format!(
            "the pinned values are for class x86_64-v3/cpu, this machine is {class}"
        ));
    }
    let mut got = Vec::new();
    for (name, store, spec) in workloads(Kernels::Verifiable).await {
        let mut t = Trainer::new(store, spec, CPU).await.unwrap();
        let (_, log) = t.train_and_publish().await.unwrap();
        got.push((name, t.weights().root.to_string(), log.root.to_string()));
    }
    let pinned: Vec<(&str, String, String)> = PINNED
        .iter()
        .map(|(n, w, r)| (*n, w.to_string(), r.to_string()))
        .collect();
    assert_eq!(
        got, pinned,
        "verifiable bits differ from the pinned ones (as (workload, weights, log root))"
    );
}

/// What one child run printed: `(workload, class, root)` per workload.
type Results = Vec<(String, String, String)>;

fn run_child(wrapper: &[&str], kernels: &str) -> Results {
    let results: Results = support::child_lines(
        wrapper,
        "child_trains",
        &[("OAI_CHILD_KERNELS", kernels)],
        "RESULT ",
    )
    .iter()
    .map(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        (f[0].to_string(), f[1].to_string(), f[2].to_string())
    })
    .collect();
    assert_eq!(results.len(), 3, "{wrapper:?} printed {results:?}");
    results
}

fn skip_or_fail(reason: &str) {
    if std::env::var_os("OAI_REQUIRE_REAL").is_some() {
        panic!("{reason}, and OAI_REQUIRE_REAL is set");
    }
    eprintln!("skipped: {reason}");
}

/// Bind-mounts files reading `$1` and `$2` over the size and ways of every L1 data cache in
/// sysfs, then runs the rest of the arguments (inside `unshare -m`, so only that process sees
/// them).
const FAKE_L1D: &str = r#"
set -e
size="$1"; ways="$2"; shift 2
fake=$(mktemp -d)
echo "$size" > "$fake/size"; echo "$ways" > "$fake/ways"
n=0
for d in /sys/devices/system/cpu/cpu[0-9]*/cache/index*; do
  [ "$(cat "$d/level")" = 1 ] && [ "$(cat "$d/type")" = Data ] || continue
  mount --bind "$fake/size" "$d/size"
  mount --bind "$fake/ways" "$d/ways_of_associativity"
  n=$((n + 1))
done
[ "$n" -gt 0 ]
exec "$@"
"#;

fn fake_geometry(size: &str, ways: &str) -> Vec<String> {
    ["unshare", "-m", "sh", "-c", FAKE_L1D, "sh", size, ways]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn can_fake_geometry() -> Result<(), String> {
    if !Path::new("/sys/devices/system/cpu/cpu0/cache").is_dir() {
        return Err("this machine has no sysfs cache description to fake".into());
    }
    let probe = Command::new("unshare")
        .args(["-m", "sh", "-c", "mount --bind /proc/version /proc/version"])
        .output();
    match probe {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!(
            "cannot create a mount namespace here (needs root): {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Err(format!("`unshare` is not available: {e}")),
    }
}

/// L1d geometries to fake, as `(size, ways)`: every one but the machine's own is tried, so at
/// least three always differ from it (a 48K 12-way machine, as on Ice Lake and later or a recent
/// EPYC, would otherwise compare its own geometry with itself).
const FAKE_GEOMETRIES: [(&str, &str); 4] =
    [("32K", "8"), ("48K", "12"), ("16K", "4"), ("64K", "4")];

/// The L1d geometry a native run saw, from its class (`.../l1d-48K-12w`).
fn geometry_of(class: &str) -> &str {
    class.rsplit_once("/l1d-").map_or("unknown", |(_, g)| g)
}

#[test]
fn cache_geometry_does_not_change_verifiable_bits() {
    if let Err(reason) = can_fake_geometry() {
        return skip_or_fail(&reason);
    }
    let real = run_child(&[], "verifiable");
    let real_native = run_child(&[], "native");
    let own = geometry_of(&real_native[0].1).to_string();
    let mut native_differs = Vec::new();
    for (size, ways) in FAKE_GEOMETRIES {
        let geometry = format!("{size}-{ways}w");
        if geometry == own {
            eprintln!("L1d {geometry}: this machine's own geometry, not faked");
            continue;
        }
        let wrapper = fake_geometry(size, ways);
        let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
        let fake = run_child(&wrapper, "verifiable");
        assert_eq!(fake, real, "L1d {geometry} changed verifiable bits");
        let fake_native = run_child(&wrapper, "native");
        let (real_mlp, fake_mlp) = (&real_native[0], &fake_native[0]);
        assert_eq!(
            geometry_of(&fake_mlp.1),
            geometry,
            "the child did not see the fake geometry: {fake_mlp:?}"
        );
        eprintln!(
            "L1d {geometry} (this machine: {own}): native MLP root {} (real geometry {}), \
             verifiable {}",
            fake_mlp.2, real_mlp.2, fake[0].2
        );
        if fake_mlp.2 != real_mlp.2 {
            native_differs.push(geometry);
        }
    }
    // The control: plain gemm sums in another order under at least one of the fakes, so the
    // fakes do reach gemm (which geometries change its k-blocks depends on the SIMD width).
    assert!(
        !native_differs.is_empty(),
        "no fake geometry changed the native bits (this machine: {own}): the fakes did not reach gemm"
    );
    eprintln!("native bits changed under L1d {native_differs:?}");
}

#[test]
fn emulated_haswell_gives_the_same_bits() {
    if Command::new("qemu-x86_64")
        .arg("--version")
        .output()
        .is_err()
    {
        return skip_or_fail("qemu-x86_64 (Debian qemu-user) is not installed");
    }
    let real = run_child(&[], "verifiable");
    let qemu = ["qemu-x86_64", "-cpu", "Haswell"];
    let haswell = run_child(&qemu, "verifiable");
    assert_eq!(haswell, real, "an emulated Haswell changed verifiable bits");
    assert!(real[0].1.ends_with("/cpu"), "{real:?}");
    // the control: the emulated CPU really is another machine (no AVX-512, whatever the host has)
    let native = run_child(&qemu, "native");
    assert!(native[0].1.contains("-avx2-fma/"), "{native:?}");
    assert!(!native[0].1.contains("avx512"), "{native:?}");
}
