//! CUDA bits: is native training on an NVIDIA GPU repeatable run to run, and how far are its
//! bits from the CPU's? Trains the train benches' two workloads (the 784-1024-1024-10 MLP and
//! the transformer LM) for `OAI_BITS_STEPS` steps (default 30), fully logged:
//! - on the CPU with verifiable kernels (the bits logs are judged by) and with plain candle;
//! - on CUDA device 0 with plain candle kernels (verifiable kernels run on the CPU only), twice
//!   in this process.
//!
//! Every run's last step is then replayed from the initial state (derived from the spec) on the
//! run's own device.
//! The runs are compared pairwise: same log root, the first step whose weights commitment
//! differs, and the distance between the final weights (elements that differ, largest distance
//! in units in the last place, largest absolute difference, relative L2) and between the
//! losses. Op probes compare single ops (matmul, row sums, exp, softmax) the same way, over ten
//! CUDA repeats each.
//!
//! `FINGERPRINT` lines carry each run's log root so that two processes can be compared
//! (`scripts/gpu_bits.sh run` runs this twice and compares them).
//!
//! Run: `cargo bench -p oai-benches --features cuda --bench cuda_bits` on a machine with an
//! NVIDIA GPU, or `scripts/gpu_bits.sh build` on a build machine and `scripts/gpu_bits.sh run`
//! on the GPU machine. Without the `cuda` feature or without a GPU it measures the CPU runs and
//! says why the CUDA ones are missing.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use oai_benches::{runtime, train_workloads, Workload};
use oai_core::seed::RngCore;
use oai_core::{Digest, Seed};
use oai_train::candle::{Device, Tensor, D};
use oai_train::{replay_step_on, ComputeEnv, JobSpec, Kernels, Trainer, VerifiedLog};

type Rt = tokio::runtime::Runtime;
type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Repeats of each op probe on the GPU.
const REPEATS: usize = 10;

fn steps() -> u64 {
    std::env::var("OAI_BITS_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30u64)
        .max(2)
}

/// What the comparisons need of one training run.
struct Trace {
    label: &'static str,
    class: String,
    root: Digest,
    /// Weights commitment root after each step, in step order.
    weights: Vec<Digest>,
    losses: Vec<f32>,
    /// Final weights by name, copied to the host.
    tensors: BTreeMap<String, Vec<f32>>,
    /// Mean wall time of a step after the first.
    step: Duration,
    /// Whether replaying the last step on the run's device gave the logged bits.
    replays: bool,
}

fn train(
    rt: &Rt,
    w: &Workload,
    label: &'static str,
    kernels: Kernels,
    device: &Device,
    n: u64,
) -> Result<Trace> {
    let spec = JobSpec {
        kernels,
        steps: n,
        checkpoint_every: 0,
        ..w.spec.clone()
    };
    let mut t = rt.block_on(Trainer::new(w.store.clone(), spec, device.clone()))?;
    rt.block_on(t.step())?;
    let start = Instant::now();
    for _ in 1..n {
        rt.block_on(t.step())?;
    }
    let step = start.elapsed() / (n - 1) as u32;
    let mut tensors = BTreeMap::new();
    for (name, t) in t.tensors() {
        tensors.insert(name, host(&t)?);
    }
    let class = t.env().class.clone();
    let (cid, log) = rt.block_on(t.publish())?;
    let vlog = rt.block_on(VerifiedLog::load(&w.store, &cid))?;
    let records = rt.block_on(vlog.records(&w.store, ..))?;
    let replays = rt
        .block_on(replay_step_on(&cid, n - 1, &w.store, device.clone()))?
        .is_match();
    Ok(Trace {
        label,
        class,
        root: log.root,
        weights: records.iter().map(|r| r.weights_after).collect(),
        losses: records.iter().map(|r| r.loss).collect(),
        tensors,
        step,
        replays,
    })
}

fn host(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.flatten_all()?.to_device(&Device::Cpu)?.to_vec1::<f32>()?)
}

/// How far `a` is from `b`, element by element. Distances in units in the last place are
/// summarised by their median over the differing elements: near zero a tiny difference that
/// crosses the sign is billions of ULPs, so a maximum says little.
#[derive(Default)]
struct Distance {
    total: usize,
    /// The distance in ULPs of each differing element.
    ulps: Vec<u64>,
    max_abs: f32,
    sq_diff: f64,
    sq_ref: f64,
}

impl Distance {
    fn add(&mut self, a: &[f32], b: &[f32]) {
        assert_eq!(a.len(), b.len(), "compared tensors differ in size");
        for (&x, &y) in a.iter().zip(b) {
            self.total += 1;
            if x.to_bits() != y.to_bits() {
                self.ulps.push(ordered(x).abs_diff(ordered(y)));
                self.max_abs = self.max_abs.max((x - y).abs());
            }
            self.sq_diff += (f64::from(x) - f64::from(y)).powi(2);
            self.sq_ref += f64::from(y).powi(2);
        }
    }

    fn of(a: &[f32], b: &[f32]) -> Self {
        let mut d = Self::default();
        d.add(a, b);
        d
    }

    fn differing(&self) -> usize {
        self.ulps.len()
    }

    fn columns(&mut self) -> String {
        self.ulps.sort_unstable();
        format!(
            "{:>9.3}% {:>10} {:>11.3e} {:>9.2e}",
            100.0 * self.differing() as f64 / self.total.max(1) as f64,
            self.ulps.get(self.ulps.len() / 2).copied().unwrap_or(0),
            self.max_abs,
            (self.sq_diff / self.sq_ref.max(f64::MIN_POSITIVE)).sqrt(),
        )
    }
}

/// `x` on a line where neighbouring floats are neighbouring integers (-0.0 and 0.0 both 0).
fn ordered(x: f32) -> i64 {
    let bits = i64::from(x.to_bits() as i32);
    if bits < 0 {
        i64::from(i32::MIN) - bits
    } else {
        bits
    }
}

fn compare(a: &Trace, b: &Trace) {
    let first = a
        .weights
        .iter()
        .zip(&b.weights)
        .position(|(x, y)| x != y)
        .map_or("-".to_string(), |s| s.to_string());
    let mut d = Distance::default();
    for (name, x) in &a.tensors {
        d.add(x, &b.tensors[name]);
    }
    let loss = a
        .losses
        .iter()
        .zip(&b.losses)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    println!(
        "  {:<36} {:>5} {:>6} {} {:>10.3e}",
        format!("{} vs {}", a.label, b.label),
        if a.root == b.root { "yes" } else { "no" },
        first,
        d.columns(),
        loss,
    );
}

fn report(rt: &Rt, w: &Workload, index: usize, gpu: Option<&Device>, n: u64) {
    println!("\n{} ({n} steps)", w.name);
    let mut runs: Vec<(&'static str, Kernels, Device)> = vec![
        ("cpu verifiable", Kernels::Verifiable, Device::Cpu),
        ("cpu candle", Kernels::Native, Device::Cpu),
    ];
    if let Some(gpu) = gpu {
        runs.push(("cuda candle", Kernels::Native, gpu.clone()));
        runs.push(("cuda candle again", Kernels::Native, gpu.clone()));
    }
    println!(
        "  {:<20} {:>9} {:>8}  {:<64} class",
        "run", "step ms", "replays", "log root"
    );
    let mut traces = Vec::new();
    for (label, kernels, device) in runs {
        match train(rt, w, label, kernels, &device, n) {
            Ok(t) => {
                println!(
                    "  {:<20} {:>9.2} {:>8}  {:<64} {}",
                    label,
                    t.step.as_secs_f64() * 1e3,
                    if t.replays { "yes" } else { "NO" },
                    t.root.to_hex(),
                    t.class
                );
                println!(
                    "FINGERPRINT {index} {} {}",
                    label.replace(' ', "-"),
                    t.root.to_hex()
                );
                traces.push(t);
            }
            Err(e) => println!("  {label:<20} failed: {e}"),
        }
    }
    println!(
        "  {:<36} {:>5} {:>6} {:>10} {:>10} {:>11} {:>9} {:>10}",
        "pair", "same", "first", "differ", "p50 ulp", "max |diff|", "rel L2", "max |dloss|"
    );
    let find = |label: &str| traces.iter().find(|t| t.label == label);
    for (a, b) in [
        ("cuda candle again", "cuda candle"),
        ("cuda candle", "cpu candle"),
        ("cuda candle", "cpu verifiable"),
        ("cpu candle", "cpu verifiable"),
    ] {
        if let (Some(a), Some(b)) = (find(a), find(b)) {
            compare(a, b);
        }
    }
}

/// `shape` values uniform in `[-2, 2)` from `seed`.
fn seeded(shape: &[usize], seed: u64) -> Result<Tensor> {
    let mut rng = Seed::from_u64(seed).rng();
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|_| (rng.next_u32() >> 8) as f32 / (1u32 << 22) as f32 - 2.0)
        .collect();
    Ok(Tensor::from_vec(v, shape, &Device::Cpu)?)
}

type Op = fn(Kernels, &Tensor, &Tensor) -> Result<Tensor>;

fn probe(name: &str, op: Op, a: &Tensor, b: &Tensor, gpu: Option<&Device>) -> Result<()> {
    let verifiable = host(&op(Kernels::Verifiable, a, b)?)?;
    let candle = host(&op(Kernels::Native, a, b)?)?;
    let mut line = format!(
        "  {name:<24} {}",
        Distance::of(&candle, &verifiable).columns()
    );
    if let Some(gpu) = gpu {
        let (ga, gb) = (a.to_device(gpu)?, b.to_device(gpu)?);
        let first = host(&op(Kernels::Native, &ga, &gb)?)?;
        let mut same = 1;
        for _ in 1..REPEATS {
            let again = host(&op(Kernels::Native, &ga, &gb)?)?;
            same += usize::from(Distance::of(&again, &first).differing() == 0);
        }
        line += &format!(
            " {:>7} {} {}",
            format!("{same}/{REPEATS}"),
            Distance::of(&first, &verifiable).columns(),
            Distance::of(&first, &candle).columns()
        );
    }
    println!("{line}");
    Ok(())
}

fn probes(gpu: Option<&Device>) -> Result<()> {
    println!(
        "\nop probes (1024 x 1024 seeded inputs; per comparison: % differing, median ulp of \
         those, max |diff|, rel L2; repeat: GPU results bit-identical to the first)"
    );
    let mut header = format!("  {:<24} {:>43}", "op", "cpu candle vs cpu verifiable");
    if gpu.is_some() {
        header += &format!(
            " {:>7} {:>43} {:>43}",
            "repeat", "cuda vs cpu verifiable", "cuda vs cpu candle"
        );
    }
    println!("{header}");
    let a = seeded(&[1024, 1024], 1)?;
    let b = seeded(&[1024, 1024], 2)?;
    let ops: [(&str, Op); 4] = [
        ("matmul a @ b", |k, a, b| Ok(k.matmul(a, b)?)),
        ("row sums of a", |_, a, _| Ok(a.sum_keepdim(D::Minus1)?)),
        ("exp(a)", |k, a, _| Ok(k.exp(a)?)),
        ("softmax(a) over rows", |k, a, _| Ok(k.softmax_last_dim(a)?)),
    ];
    for (name, op) in ops {
        if let Err(e) = probe(name, op, &a, &b, gpu) {
            println!("  {name:<24} failed: {e}");
        }
    }
    Ok(())
}

fn main() -> Result<()> {
    let rt = runtime();
    let gpu = match Device::new_cuda(0) {
        Ok(d) => {
            println!("GPU: {}", ComputeEnv::detect(&d, Kernels::Native).class);
            Some(d)
        }
        Err(e) => {
            println!(
                "no CUDA device ({e}); measuring the CPU runs only. Build with `--features cuda` \
                 and run on a machine with an NVIDIA GPU for the rest."
            );
            None
        }
    };
    println!(
        "CPU: {}",
        ComputeEnv::detect(&Device::Cpu, Kernels::Native).class
    );
    let n = steps();
    for (i, w) in train_workloads(&rt).iter().enumerate() {
        report(&rt, w, i, gpu.as_ref(), n);
    }
    probes(gpu.as_ref())
}
