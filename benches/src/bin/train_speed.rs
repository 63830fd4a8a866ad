//! Steps/s of the train bench's workloads, as JSON lines for `benches/baselines/compare.py` to
//! set beside JAX and PyTorch: the verifiable kernels with the full log (what a node runs), the
//! same with logging off, and plain candle kernels with logging off. The three trainers of a
//! workload run in alternating rounds; each figure is the best round, with the median round
//! beside it. Each row also gives where a step's time went (`StepTimes`: milliseconds per step,
//! the mean over all rounds); a table of it goes to stderr.
//!
//! Usage: `cargo run --release -p oai-benches --bin train_speed [ROUNDS [STEPS [WORKLOAD
//! [CONFIG]]]]` (default 7 rounds of 20 steps of both workloads, all three configs; WORKLOAD
//! `mlp` or `transformer`: one, `all`: both; CONFIG: only the configs whose name starts with it,
//! e.g. `"verifiable, logged"` to profile what a node runs).
//! `benches/baselines/train_vs_baselines.sh` runs it and the JAX and PyTorch baselines.

use oai_benches::{runtime, time_phases, train_workloads, trainer};
use oai_train::{Kernels, StepTimes};
use std::time::Duration;

fn arg(i: usize, default: u64) -> u64 {
    std::env::args()
        .nth(i)
        .map(|s| s.parse().expect("ROUNDS and STEPS are whole numbers"))
        .unwrap_or(default)
}

fn main() {
    oai_train::keep_freed_memory();
    let (rounds, steps) = (arg(1, 7), arg(2, 20));
    let only = std::env::args().nth(3).filter(|w| w != "all");
    let config = std::env::args().nth(4).unwrap_or_default();
    let rt = runtime();
    let configs: Vec<_> = [
        ("verifiable, logged", Kernels::Verifiable, true),
        ("verifiable, logging off", Kernels::Verifiable, false),
        ("plain candle, logging off", Kernels::Native, false),
    ]
    .into_iter()
    .filter(|(name, ..)| name.starts_with(&config))
    .collect();
    for w in train_workloads(&rt) {
        if only.as_ref().is_some_and(|k| k != w.key) {
            continue;
        }
        let mut trainers: Vec<_> = configs
            .iter()
            .map(|(_, kernels, logging)| trainer(&rt, &w, *kernels, *logging))
            .collect();
        let mut per_step = vec![Vec::new(); configs.len()];
        let mut sums = vec![StepTimes::default(); configs.len()];
        for _ in 0..rounds {
            for ((t, times), sum) in trainers.iter_mut().zip(&mut per_step).zip(&mut sums) {
                let (step, round) = time_phases(&rt, t, steps);
                times.push(step);
                *sum += round;
            }
        }
        let (best, median): (Vec<Duration>, Vec<Duration>) =
            per_step.into_iter().map(best_and_median).unzip();
        // milliseconds per step of each phase, the mean over all rounds
        let phases: Vec<_> = sums
            .into_iter()
            .map(|sum| {
                (sum / rounds as u32)
                    .phases()
                    .map(|(_, d)| d.as_secs_f64() * 1e3)
            })
            .collect();
        let names = StepTimes::default().phases().map(|(name, _)| name);
        eprintln!("\n{} (ms per step)", w.name);
        eprintln!(
            "{:<28} {:>8} {}",
            "config",
            "step",
            names.map(|n| format!("{n:>9}")).join(" ")
        );
        for (((config, ..), best), phases) in configs.iter().zip(&best).zip(&phases) {
            eprintln!(
                "{config:<28} {:>8.2} {}",
                best.as_secs_f64() * 1e3,
                phases.map(|p| format!("{p:>9.2}")).join(" ")
            );
        }
        for ((((config, ..), best), median), phases) in
            configs.iter().zip(best).zip(median).zip(&phases)
        {
            let phases_ms: serde_json::Map<String, serde_json::Value> = names
                .iter()
                .zip(phases)
                .map(|(n, p)| (n.to_string(), (*p).into()))
                .collect();
            let row = serde_json::json!({
                "workload": w.key,
                "name": w.name,
                "config": config,
                "framework": format!("oai {}", env!("CARGO_PKG_VERSION")),
                "steps_per_s": 1.0 / best.as_secs_f64(),
                "median_steps_per_s": 1.0 / median.as_secs_f64(),
                "phases_ms": phases_ms,
                "rounds": rounds,
                "steps": steps,
            });
            println!("{row}");
        }
    }
}

/// The best (shortest) and the median of the rounds' times per step.
fn best_and_median(mut times: Vec<Duration>) -> (Duration, Duration) {
    times.sort();
    let n = times.len();
    let median = if n % 2 == 1 {
        times[n / 2]
    } else {
        (times[n / 2 - 1] + times[n / 2]) / 2
    };
    (times[0], median)
}
