//! `oai verify`: audit a published training log, or a job's result on chain, by replaying it.

use crate::{Blocks, StoreRepo};
use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use oai::chain::{Chain, JobId};
use oai::core::Seed;
use oai::verify::{
    audit_seed_of, AuditSeed, Strategy, Submission, Verdict, Verifier, AUDIT_SEED_DELAY,
};
use serde_json::json;

use crate::chain::ChainOpt;
use crate::train::log_cid;

/// How to audit.
#[derive(Args, Debug, Clone, Copy)]
pub struct AuditOpt {
    /// Replay this many sampled steps instead of every step.
    #[arg(long)]
    samples: Option<u32>,
    /// Seed of the sampled steps for a local log (a job's audit takes the randomness of the
    /// block `--seed-delay` blocks after its submission instead).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// A job's sampled steps are drawn from the randomness of the block this many blocks after
    /// its submission (unknown when the node submitted; at least 1).
    #[arg(long, default_value_t = AUDIT_SEED_DELAY)]
    seed_delay: u64,
    /// Checkpoint intervals replayed at once.
    #[arg(long, default_value_t = 1)]
    parallelism: usize,
}

impl AuditOpt {
    fn strategy(self) -> Result<Strategy> {
        match self.samples {
            None => Ok(Strategy::Full),
            Some(0) => bail!("--samples must be at least 1"),
            Some(samples) => Ok(Strategy::Sampling { samples }),
        }
    }
}

#[derive(Subcommand)]
pub enum VerifyCommand {
    /// Audit a published run (name or log CID) against its own spec and dataset. Exits with 2
    /// when it is rejected. Example: `oai verify audit my-run --samples 20`.
    Audit {
        /// Run name or log CID.
        log: String,
        #[command(flatten)]
        audit: AuditOpt,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Audit the result of job ID on chain (its blocks must be in the store; needs no key).
    /// Exits with 2 when it is rejected. Example: `oai verify result 1 --json`.
    Result {
        /// Job id.
        id: JobId,
        #[command(flatten)]
        audit: AuditOpt,
        #[command(flatten)]
        chain: ChainOpt,
    },
}

async fn audit(
    store: &Blocks,
    sub: &Submission,
    opt: AuditOpt,
    seed: Seed,
    json: bool,
) -> Result<()> {
    let strategy = opt.strategy()?;
    let t = std::time::Instant::now();
    let spin = crate::progress::spinner("auditing");
    let verdict = Verifier::new(store.clone())
        .with_parallelism(opt.parallelism)
        .verify(sub, strategy, &seed)
        .await?;
    spin.finish_and_clear();
    let secs = t.elapsed().as_secs_f64();
    let out = match &verdict {
        Verdict::Accepted(r) => json!({"verdict": "accepted", "replayed_steps": r.replayed_steps,
            "sampled": r.sampled.len(), "seconds": secs}),
        Verdict::Rejected(f) => json!({"verdict": "rejected", "fault": f.to_string(),
            "step": f.step(), "seconds": secs}),
        other => bail!("a verdict this oai does not know: {other:?}"),
    };
    if json {
        println!("{out}");
    } else {
        match &verdict {
            Verdict::Accepted(r) => println!(
                "accepted: {} steps sampled, {} replayed bit for bit in {secs:.2} s",
                r.sampled.len(),
                r.replayed_steps
            ),
            Verdict::Rejected(f) => println!("rejected: {f}"),
            _ => unreachable!("refused above"),
        }
    }
    if !verdict.is_accepted() {
        std::process::exit(2);
    }
    Ok(())
}

pub async fn run(repo: &StoreRepo, cmd: VerifyCommand) -> Result<()> {
    let store = repo.blocks();
    match cmd {
        VerifyCommand::Audit {
            log,
            audit: opt,
            json,
        } => {
            let cid = log_cid(repo, &log).await?;
            let sub = Submission::of_published(store, &cid).await?;
            audit(store, &sub, opt, Seed::from_u64(opt.seed), json).await
        }
        VerifyCommand::Result {
            id,
            audit: opt,
            chain,
        } => {
            let c = chain.connect_reader().await?;
            let job = c.chain.job(id).await?;
            let Some(result) = job.result else {
                bail!("job {id} has no result ({:?})", job.status);
            };
            let sub = Submission::from_chain(&job.terms, &result);
            let seed = match opt.strategy()? {
                Strategy::Full => Seed::from_u64(0),
                _ => match audit_seed_of(&c.chain, id, &sub, opt.seed_delay).await? {
                    AuditSeed::Ready(seed) => seed,
                    AuditSeed::Pending { block } => {
                        let latest = c.chain.block_number().await?;
                        bail!(
                            "job {id}'s sampled steps are drawn from the randomness of block \
                             {block}, {} blocks after its submission, and the latest block is \
                             {latest}: audit again once block {block} is made (or audit every \
                             step: no --samples)",
                            opt.seed_delay.max(1)
                        );
                    }
                },
            };
            audit(store, &sub, opt, seed, chain.json).await
        }
    }
}
