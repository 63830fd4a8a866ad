//! `oai train`: run a job spec with a full training log, resume it, replay or prove a step.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use oai::core::{ids, Cid};
use oai::train::candle::Device;
use oai::train::{
    replay_step_on, run_names, JobSpec, StepOutcome, Trainer, TrainingLog, VerifiedLog,
};

use crate::{resolve, Blocks, StoreRepo};

#[derive(Subcommand)]
pub enum TrainCommand {
    /// Train the job spec in a JSON file and publish its log (kept under the head `runs/NAME`).
    /// Example: `oai train run digits-run.json --stop-after 200`.
    Run {
        /// The job spec (JSON; `oai train spec` prints one).
        spec: PathBuf,
        /// Train on this dataset (name or version CID) instead of the spec's.
        #[arg(long)]
        dataset: Option<String>,
        /// Run name (default: the spec file's stem).
        #[arg(long)]
        name: Option<String>,
        /// Stop and publish after this many steps of this invocation (resume later).
        #[arg(long)]
        stop_after: Option<u64>,
        #[command(flatten)]
        device: DeviceOpt,
    },
    /// Continue a run (name or log CID) from its last checkpoint up to the spec's steps.
    /// Example: `oai train resume digits-run`.
    Resume {
        /// Run name or log CID.
        log: String,
        /// Stop and publish after this many steps of this invocation.
        #[arg(long)]
        stop_after: Option<u64>,
        #[command(flatten)]
        device: DeviceOpt,
    },
    /// Re-execute one step from the nearest checkpoint and compare it with the log, bit for
    /// bit. Exits with status 2 on a mismatch. A log is judged only on its own compute class:
    /// a GPU's log on that GPU, with `--device`. Example: `oai train replay digits-run 137`.
    Replay {
        /// Run name or log CID.
        log: String,
        /// Step index.
        step: u64,
        #[command(flatten)]
        device: DeviceOpt,
    },
    /// Verify a log's hash chain and root, and print it. Example: `oai train show digits-run`.
    Show {
        /// Run name or log CID.
        log: String,
    },
    /// Print a step record with its inclusion proof against the log root, and check it.
    /// Example: `oai train prove digits-run 137`.
    Prove {
        /// Run name or log CID.
        log: String,
        /// Step index.
        step: u64,
    },
    /// Print an example job spec for a dataset (an MLP for labelled tensors, a transformer
    /// language model for byte windows). Example: `oai train spec digits > digits-run.json`.
    Spec {
        /// Dataset name or version CID.
        dataset: String,
        /// Model: `mlp` or `transformer`.
        #[arg(long, default_value = "mlp")]
        model: String,
    },
}

/// A log's CID by run name (`runs/NAME`) or CID.
pub async fn log_cid(repo: &StoreRepo, name_or_cid: &str) -> Result<Cid> {
    Ok(run_names::resolve(repo.refs(), name_or_cid).await?)
}

async fn train_and_publish(
    repo: &StoreRepo,
    name: &str,
    mut trainer: Trainer<Blocks>,
    stop_after: Option<u64>,
) -> Result<()> {
    let until = trainer.stop_at(stop_after);
    let bar = crate::progress::bar(until - trainer.step_index(), "steps");
    let mut warned = false;
    let trained = trainer
        .train(stop_after, |r| {
            bar.inc(1);
            if r.skipped() && !warned {
                warned = true;
                bar.suspend(|| {
                    eprintln!(
                        "step {:>6}  loss {}  |g| {}: not finite, the step is skipped (the \
                         weights stay as they were; see docs/training.md)",
                        r.step, r.loss, r.grad_norm
                    )
                });
            }
            if r.step % 50 == 0 || r.step + 1 == until {
                bar.suspend(|| {
                    eprintln!("step {:>6}  loss {:.4}  lr {:.2e}", r.step, r.loss, r.lr)
                });
            }
            ControlFlow::Continue(())
        })
        .await?;
    bar.finish_and_clear();
    let (cid, log) = trainer.publish_as(repo.refs(), name).await?;
    print_log(&cid, &log);
    eprintln!(
        "{} steps in {:.1} s ({:.1} steps/s); head runs/{name}",
        trained.steps,
        trained.elapsed.as_secs_f64(),
        trained.steps_per_second()
    );
    if trained.skipped > 0 {
        eprintln!(
            "{} of the {} steps were skipped (loss or gradient not finite)",
            trained.skipped, trained.steps
        );
    }
    Ok(())
}

fn print_log(cid: &Cid, log: &TrainingLog) {
    println!("log          {cid}");
    println!("root         {}", log.root);
    println!("steps        {}", log.steps);
    println!("head         {}", log.head);
    for c in &log.checkpoints {
        println!("checkpoint   {:>6} {}", c.step, c.cid);
    }
}

pub async fn run(repo: &StoreRepo, cmd: TrainCommand) -> Result<()> {
    let store = repo.blocks();
    match cmd {
        TrainCommand::Run {
            spec,
            dataset,
            name,
            stop_after,
            device,
        } => {
            let json = std::fs::read_to_string(&spec)
                .with_context(|| format!("reading {}", spec.display()))?;
            let mut job = JobSpec::from_json(&json)?;
            if let Some(d) = dataset {
                job.dataset = resolve(repo, &d).await?.cid();
            }
            let name = match name {
                Some(n) => n,
                None => spec
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .context("give --name")?
                    .to_string(),
            };
            let trainer = Trainer::new(store.clone(), job, device.open()?).await?;
            println!("spec         {}", trainer.spec().cid()?);
            println!("compute      {}", trainer.env().class);
            println!("kernels      {}", trainer.env().kernels);
            train_and_publish(repo, &name, trainer, stop_after).await?;
        }
        TrainCommand::Resume {
            log,
            stop_after,
            device,
        } => {
            let cid = log_cid(repo, &log).await?;
            let trainer = Trainer::resume(store.clone(), &cid, device.open()?).await?;
            eprintln!("resumed at step {}", trainer.step_index());
            let name = if ids::parse(&log).is_ok() {
                cid.to_string()
            } else {
                log
            };
            train_and_publish(repo, &name, trainer, stop_after).await?;
        }
        TrainCommand::Replay { log, step, device } => {
            let cid = log_cid(repo, &log).await?;
            let t = Instant::now();
            let spin = crate::progress::spinner("replaying");
            let outcome = replay_step_on(&cid, step, store, device.open()?).await?;
            spin.finish_and_clear();
            let secs = t.elapsed().as_secs_f64();
            match outcome {
                StepOutcome::Match {
                    step,
                    weights_after,
                } => println!("step {step}: match (weights {weights_after}) in {secs:.2} s"),
                StepOutcome::Mismatch(m) => {
                    println!(
                        "step {}: MISMATCH in {}{}\n  logged   {}\n  replayed {}",
                        m.step,
                        m.field,
                        m.tensor.map(|t| format!(" of {t}")).unwrap_or_default(),
                        m.logged,
                        m.replayed
                    );
                    std::process::exit(2);
                }
            }
        }
        TrainCommand::Show { log } => {
            let cid = log_cid(repo, &log).await?;
            let v = VerifiedLog::load(store, &cid).await?;
            print_log(&cid, &v.log);
            println!("spec         {}", v.header.spec);
            println!("compute      {}", v.header.env.class);
            println!("kernels      {}", v.header.env.kernels);
            println!("parameters   {}", v.header.params.len());
            for r in v.records(store, v.log.steps.saturating_sub(5)..).await? {
                println!(
                    "step {:>6}  loss {:.4}  lr {:.2e}  |g| {:.3}",
                    r.step, r.loss, r.lr, r.grad_norm
                );
            }
            println!("verified     hash chain, commitments, batch roots and Merkle root");
        }
        TrainCommand::Prove { log, step } => {
            let cid = log_cid(repo, &log).await?;
            let v = VerifiedLog::load(store, &cid).await?;
            let p = v.prove(store, step).await?;
            println!("{}", serde_json::to_string_pretty(&p)?);
            if !p.verify(&v.log.root) {
                bail!("proof does not verify against {}", v.log.root);
            }
            println!("verified against root {}", v.log.root);
        }
        TrainCommand::Spec { dataset, model } => {
            let v = resolve(repo, &dataset).await?;
            let spec = example_spec(&v, store, &model).await?;
            println!("{}", spec.to_json());
        }
    }
    Ok(())
}

/// The `--device` option of the commands that compute.
#[derive(Args, Debug, Clone, Copy)]
pub struct DeviceOpt {
    /// Where to compute: `cpu`, `cuda[:N]` or `metal[:N]` (GPUs need native kernels in the spec
    /// and an `oai` built with the `cuda` or `metal` feature).
    #[arg(long, default_value = "cpu", value_parser = parse_device)]
    device: DeviceArg,
}

/// A `--device` value: parsed when the arguments are, opened when the command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceArg {
    /// The CPU.
    Cpu,
    /// CUDA device N.
    Cuda(usize),
    /// Metal device N.
    Metal(usize),
}

fn parse_device(s: &str) -> Result<DeviceArg, String> {
    let (kind, n) = match s.split_once(':') {
        Some((kind, n)) => (
            kind,
            n.parse()
                .map_err(|_| format!("device number {n:?} is not a number"))?,
        ),
        None => (s, 0),
    };
    match kind {
        "cpu" if n == 0 => Ok(DeviceArg::Cpu),
        "cuda" => Ok(DeviceArg::Cuda(n)),
        "metal" => Ok(DeviceArg::Metal(n)),
        _ => Err(format!("{s:?}: expected cpu, cuda[:N] or metal[:N]")),
    }
}

impl DeviceOpt {
    fn open(self) -> Result<Device> {
        let (device, kind, n) = match self.device {
            DeviceArg::Cpu => return Ok(Device::Cpu),
            DeviceArg::Cuda(n) => (Device::new_cuda(n), "cuda", n),
            DeviceArg::Metal(n) => (Device::new_metal(n), "metal", n),
        };
        device.with_context(|| {
            format!(
                "cannot open device {kind}:{n} (is there such a device, and was oai built with \
                 `--features {kind}`?)"
            )
        })
    }
}

/// A reasonable starting spec for `v`, sized from its first record.
async fn example_spec(
    v: &oai::data::dataset::Version,
    store: &Blocks,
    model: &str,
) -> Result<JobSpec> {
    use oai::data::dataset::Record;
    use oai::train::{ModelSpec, OptimizerSpec, Schedule, TransformerSpec};
    if v.is_empty() {
        bail!("dataset is empty");
    }
    let first = v.record(store, 0).await?;
    let model = match (model, &first) {
        ("mlp", Record::Labeled { input, .. }) => ModelSpec::Mlp {
            input: input.shape().iter().product::<u64>() as usize,
            hidden: vec![128],
            classes: 10,
            dropout: 0.1,
        },
        ("transformer", Record::Bytes(b)) => ModelSpec::Transformer(TransformerSpec {
            vocab: 256,
            context: b.len() - 1,
            d_model: 64,
            heads: 4,
            layers: 2,
            d_ff: 256,
            dropout: 0.0,
        }),
        (m, r) => bail!(
            "no example spec for model {m:?} on records like {}",
            crate::preview(r)
        ),
    };
    let batch_size = 32.min(v.len());
    Ok(JobSpec {
        dataset: v.cid(),
        model,
        optimizer: OptimizerSpec::adam_w(1e-4),
        schedule: Schedule::WarmupCosine {
            lr: 3e-3,
            warmup: 20,
            decay_steps: 500,
            min_lr: 1e-4,
        },
        batch_size,
        steps: 500,
        checkpoint_every: 100,
        grad_clip: Some(1.0),
        seed: 0,
        kernels: Default::default(),
        compute_class: None,
    })
}
