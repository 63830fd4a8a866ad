//! Benches of oai-train. Before criterion runs, prints side-by-side reports measured in the same
//! process:
//! - verifiable kernels (fixed-slice matmul, libm exp/log/tanh) vs plain candle kernels: steps/s
//!   of the same trainer with logging off, rounds alternating between the two;
//! - logging overhead: steps/s of the fully logged trainer (weights commitment every step, a
//!   hash-chained step record, checkpoints every 100 steps) next to the same trainer with
//!   logging off, on the 784-1024-1024-10 MLP and on a small transformer LM; rounds alternate
//!   between the two modes; printed: the best round of each and the median per-round ratio.
//!   a step's weights are hashed on the pool while the calling thread loads the next batch;
//! - replay cost: replaying one step right after a checkpoint and nine steps after it, next to
//!   one training step and the time to write one checkpoint.
//!
//! Run: `cargo bench -p oai-benches --bench train` (`OAI_BENCH_STEPS` steps per round, default 20)

use criterion::Criterion;
use oai_benches::report::{self, Row, Side};
use oai_benches::{runtime, time_steps, train_workloads, trainer, Workload};
use oai_data::MemStore;
use oai_train::candle::Device;
use oai_train::{replay_step, JobSpec, Kernels, Trainer};
use std::time::Instant;

fn steps_per_round() -> u64 {
    std::env::var("OAI_BENCH_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20)
}

/// Alternating rounds of logging off / on per workload.
const ROUNDS: usize = 7;

/// Steps/s of `a` and `b` in alternating rounds: prints the best round of each, the overhead
/// of `b` over `a` between best rounds, and the median per-round overhead.
fn print_ab(
    rt: &tokio::runtime::Runtime,
    (title, name): (&str, &str),
    (label_a, a): (&str, &mut Trainer<MemStore>),
    (label_b, b): (&str, &mut Trainer<MemStore>),
    target: Option<f64>,
) {
    let n = steps_per_round();
    let mut rounds = Vec::new();
    for _ in 0..ROUNDS {
        rounds.push((time_steps(rt, a, n), time_steps(rt, b, n)));
    }
    let best_a = rounds.iter().map(|r| r.0).min().expect("rounds");
    let best_b = rounds.iter().map(|r| r.1).min().expect("rounds");
    let mut ratios: Vec<f64> = rounds
        .iter()
        .map(|(a, b)| b.as_secs_f64() / a.as_secs_f64() - 1.0)
        .collect();
    ratios.sort_by(f64::total_cmp);
    println!(
        "{:<38} {:>9.2} {:>9.2} {:>9.1}% {:>9.1}%",
        name,
        1.0 / best_a.as_secs_f64(),
        1.0 / best_b.as_secs_f64(),
        (best_b.as_secs_f64() / best_a.as_secs_f64() - 1.0) * 100.0,
        ratios[ratios.len() / 2] * 100.0,
    );
    report::record(Row {
        target,
        ..Row::new(
            "train",
            format!("{title}: {name} (best of {ROUNDS} alternating rounds)"),
            Side::new(label_b, 1.0 / best_b.as_secs_f64(), "steps/s"),
            Side::new(label_a, 1.0 / best_a.as_secs_f64(), "steps/s"),
            true,
        )
    });
}

fn replay_report(rt: &tokio::runtime::Runtime, w: &Workload) {
    let spec = JobSpec {
        steps: 21,
        checkpoint_every: 10,
        ..w.spec.clone()
    };
    let mut t = rt
        .block_on(Trainer::new(w.store.clone(), spec, Device::Cpu))
        .expect("trainer");
    // 21 steps: the last checkpoint is at 20, so the one timed next is really written.
    let step = time_steps(rt, &mut t, 21);
    let start = Instant::now();
    rt.block_on(t.checkpoint()).expect("checkpoint");
    let checkpoint = start.elapsed();
    let (log, _) = rt.block_on(t.publish()).expect("publish");
    let replay = |s: u64| {
        let start = Instant::now();
        let out = rt.block_on(replay_step(&log, s, &w.store)).expect("replay");
        assert!(out.is_match(), "{out:?}");
        start.elapsed()
    };
    let (near, far) = (replay(10), replay(19));
    println!(
        "{:<38} {:>9.1} {:>13.1} {:>12.1} ({:.1}x) {:>12.1} ({:.1}x)",
        w.name,
        step.as_secs_f64() * 1e3,
        checkpoint.as_secs_f64() * 1e3,
        near.as_secs_f64() * 1e3,
        near.as_secs_f64() / step.as_secs_f64(),
        far.as_secs_f64() * 1e3,
        far.as_secs_f64() / step.as_secs_f64(),
    );
    for (what, d) in [
        ("replay of step 10 (right after a checkpoint)", near),
        ("replay of step 19 (nine steps after one)", far),
    ] {
        report::record(Row::new(
            "train",
            format!("replay cost, checkpoints every 10 steps: {}", w.name),
            Side::new(what, d.as_secs_f64() * 1e3, "ms"),
            Side::new("one training step", step.as_secs_f64() * 1e3, "ms"),
            false,
        ));
    }
}

fn main() {
    oai_train::keep_freed_memory();
    let rt = runtime();
    let work = train_workloads(&rt);
    // (title, (column, kernels, logging) of the baseline, the same of the compared trainer,
    // the ratio an issue asks for)
    let comparisons = [
        (
            "verifiable kernels vs plain candle, logging off",
            ("candle/s", Kernels::Native, false),
            ("verif/s", Kernels::Verifiable, false),
            None,
        ),
        (
            "logging overhead, verifiable kernels",
            ("off st/s", Kernels::Verifiable, false),
            ("on st/s", Kernels::Verifiable, true),
            Some(0.95), // logging costs at most 5%
        ),
    ];
    let label = |kernels: Kernels, logging: bool| {
        format!(
            "{} kernels, logging {}",
            match kernels {
                Kernels::Native => "plain candle",
                Kernels::Verifiable => "verifiable",
            },
            if logging { "on" } else { "off" }
        )
    };
    for (title, (col_a, kernels_a, log_a), (col_b, kernels_b, log_b), target) in comparisons {
        println!(
            "\n{title} ({} steps/round, {ROUNDS} alternating rounds; best rounds and median \
             per-round overhead)",
            steps_per_round()
        );
        println!(
            "{:<38} {:>9} {:>9} {:>10} {:>10}",
            "workload", col_a, col_b, "best", "median"
        );
        for w in &work {
            let mut a = trainer(&rt, w, kernels_a, log_a);
            let mut b = trainer(&rt, w, kernels_b, log_b);
            print_ab(
                &rt,
                (title, w.name),
                (&label(kernels_a, log_a), &mut a),
                (&label(kernels_b, log_b), &mut b),
                target,
            );
        }
    }
    println!("\nreplay cost (checkpoints every 10 steps)");
    println!(
        "{:<38} {:>9} {:>13} {:>19} {:>19}",
        "workload", "step ms", "checkpoint ms", "replay step 10 ms", "replay step 19 ms"
    );
    for w in &work {
        replay_report(&rt, w);
    }
    if report::recording() {
        return; // the report needs the side-by-side figures only
    }
    let mut c = Criterion::default().configure_from_args().sample_size(10);
    for w in &work {
        let mut t = rt
            .block_on(Trainer::new(w.store.clone(), w.spec.clone(), Device::Cpu))
            .expect("trainer");
        c.bench_function(&format!("logged step: {}", w.name), |b| {
            b.iter(|| rt.block_on(t.step()).expect("step"))
        });
    }
    c.final_summary();
}
