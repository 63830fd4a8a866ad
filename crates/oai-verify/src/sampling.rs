//! Which steps an audit replays, and what that buys.
//!
//! **The draw.** The steps come from an audit seed derived from the result and from randomness
//! made after the result was committed ([`audit_seed`], e.g. a later block's `prevrandao`), so
//! a node cannot know at commit time which steps will be replayed. [`audit_steps`] draws
//! `samples` distinct steps from the seed (ChaCha20, rejection sampling: the same steps on
//! every machine).
//!
//! **The spans.** Replaying step `s` starts from the last checkpoint at or before `s` (every
//! `K` steps) and re-executes every step up to `s`, so one sample checks a span of
//! `L = s - ckpt(s) + 1` steps, uniform in `1..=K`. Samples in one checkpoint interval share
//! one restored checkpoint ([`plan_spans`]).
//!
//! **Detection.** A node that forges a fraction `f` of its `N` steps is caught when a replayed
//! span contains a forged step (a forged step is one whose record does not follow from the one
//! before; steps after it that compute honestly from the forged state replay fine from a later
//! checkpoint, so they do not count).
//! - *Spread* forgery (`fN` steps at random positions): one sample misses with probability
//!   about `m = E[(1-f)^L] = (1-f)(1-(1-f)^K) / (K f)`, and `k` samples detect with
//!   probability `1 - m^k` ([`detection_probability`]).
//! - *Concentrated* forgery (one run of `fN` consecutive steps): one sample catches it when its
//!   span reaches into the run, with probability about `p = min(1, (fN + (K-1)/2) / N)`;
//!   `k` samples: `1 - (1-p)^k`.
//!
//! Both treat the samples as independent (they are drawn without replacement, and spans in one
//! interval overlap), which is accurate while `k` is small against `N / K`; the tests check the
//! formulas against a simulation of the draw. [`samples_needed`] inverts them: the smallest
//! `k` for a target probability. [`Costs`] gives the compute (steps re-executed, checkpoint
//! loads) and storage (checkpoints kept) of an audit, so a requester can pick `K` and `k` on
//! the frontier ([`frontier`]).

use oai_chain::bindings::TrainingMarket::TrainingMarketEvents;
use oai_chain::{Chain, Event, JobId, B256, U256};
use oai_core::seed::uniform_below;
use oai_core::{Digest, Seed};
use serde::{Deserialize, Serialize};

use crate::submission::Submission;

/// The audit seed of `submission` under `randomness` (a value made after the submission, such
/// as the `prevrandao` of a later block): SHA-256 over a label, the header, the head and the
/// randomness.
pub fn audit_seed(submission: &Submission, randomness: &B256) -> Seed {
    Seed(
        Digest::of_parts(&[
            b"oai-verify/audit",
            &submission.header.to_bytes(),
            &submission.head.to_bytes(),
            randomness.as_slice(),
        ])
        .0,
    )
}

/// Blocks between a result's submission and the block whose randomness seeds its sampled
/// audits ([`audit_seed_block`]). The randomness of the block a result lands in is known before
/// it lands (an Ethereum block's `prevrandao` is the RANDAO mix after the block before it), so
/// a node seeded by it could grind its head until the sampled steps miss its forgeries. 64
/// blocks (two epochs, about 13 minutes on mainnet) lie past the proposers' lookahead: nobody
/// knows that block's randomness when the result is submitted. A challenge window must leave
/// time for the delay and the audit.
pub const AUDIT_SEED_DELAY: u64 = 64;

/// The block whose randomness seeds the sampled audits of job `job`'s current result: `delay`
/// blocks (at least 1) after the block its last `Submitted` event is in. One fixed block, so
/// every auditor draws the same steps, at any time after.
pub async fn audit_seed_block<C: Chain + ?Sized>(
    chain: &C,
    job: JobId,
    delay: u64,
) -> crate::Result<u64> {
    let submitted = chain
        .events(0)
        .await?
        .into_iter()
        .filter_map(|(block, e)| match e {
            Event::Market(TrainingMarketEvents::Submitted(s)) if s.jobId == U256::from(job) => {
                Some(block)
            }
            _ => None,
        })
        .max()
        .ok_or_else(|| crate::Error::InvalidInput(format!("job {job} has no submission")))?;
    Ok(submitted.saturating_add(delay.max(1)))
}

/// Where the seed of a sampled audit stands ([`audit_seed_of`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditSeed {
    /// The seed block is made: the seed.
    Ready(Seed),
    /// The seed block is not made yet: audit once block `block` is.
    Pending {
        /// The block whose randomness will seed the audit.
        block: u64,
    },
}

/// The audit seed of `submission`, job `job`'s current result, under the randomness of its
/// [`audit_seed_block`], or the block to wait for while it is not made.
pub async fn audit_seed_of<C: Chain + ?Sized>(
    chain: &C,
    job: JobId,
    submission: &Submission,
    delay: u64,
) -> crate::Result<AuditSeed> {
    let block = audit_seed_block(chain, job, delay).await?;
    if chain.block_number().await? < block {
        return Ok(AuditSeed::Pending { block });
    }
    Ok(AuditSeed::Ready(audit_seed(
        submission,
        &chain.randomness(block).await?,
    )))
}

/// `samples` distinct steps of `0..steps` drawn from `seed`, sorted (all steps when
/// `samples >= steps`).
pub fn audit_steps(seed: &Seed, steps: u64, samples: u32) -> Vec<u64> {
    let k = u64::from(samples).min(steps);
    if k == steps {
        return (0..steps).collect();
    }
    // Floyd's algorithm: k draws, each O(log k), no allocation by `steps`.
    let mut rng = seed.derive(b"audit steps").rng();
    let mut chosen = std::collections::BTreeSet::new();
    for j in steps - k..steps {
        let t = uniform_below(&mut rng, j + 1);
        if !chosen.insert(t) {
            chosen.insert(j);
        }
    }
    chosen.into_iter().collect()
}

/// Group sorted `sampled` steps by the last checkpoint at or before each (`checkpoint_of`), as
/// replay spans `(first, last)`: one restored checkpoint per group.
pub fn plan_spans(sampled: &[u64], checkpoint_of: impl Fn(u64) -> u64) -> Vec<(u64, u64)> {
    let mut spans: Vec<(u64, u64, u64)> = Vec::new();
    for &s in sampled {
        let c = checkpoint_of(s);
        match spans.last_mut() {
            Some((ck, _, last)) if *ck == c => *last = s,
            _ => spans.push((c, s, s)),
        }
    }
    spans.into_iter().map(|(_, f, l)| (f, l)).collect()
}

/// How a dishonest node spreads its forged steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Forgery {
    /// `f * N` steps forged at random positions (a node that skips a fraction of its steps).
    Spread,
    /// One run of `f * N` consecutive steps (a poisoning edit).
    Concentrated,
}

/// Where a simulated forger puts its forged steps, for measuring detection against the
/// formulas: `ceil(f * steps)` steps of `0..steps`, sorted, drawn from `seed` at random
/// positions ([`Forgery::Spread`]) or as one run from a random start
/// ([`Forgery::Concentrated`]).
pub fn simulated_forgery(seed: &Seed, steps: u64, f: f64, forgery: Forgery) -> Vec<u64> {
    let m = ((f.clamp(0.0, 1.0) * steps as f64).ceil() as u64).min(steps);
    match forgery {
        Forgery::Spread => audit_steps(&seed.derive(b"forged steps"), steps, m as u32),
        Forgery::Concentrated => {
            let mut rng = seed.derive(b"forged run").rng();
            let start = uniform_below(&mut rng, steps - m + 1);
            (start..start + m).collect()
        }
    }
}

/// The probability that `samples` sampled steps catch a node that forges a fraction `f` of
/// `steps` steps, with a checkpoint every `every` steps (see the module docs).
pub fn detection_probability(
    steps: u64,
    every: u64,
    f: f64,
    samples: u32,
    forgery: Forgery,
) -> f64 {
    if f <= 0.0 || steps == 0 || samples == 0 {
        return 0.0;
    }
    let miss = miss_per_sample(steps, every, f, forgery);
    (1.0 - miss.powi(samples.min(i32::MAX as u32) as i32)).clamp(0.0, 1.0)
}

/// The smallest number of samples that catches such a node with probability at least
/// `target` (< 1); `None` when no number of samples can (f = 0).
pub fn samples_needed(
    steps: u64,
    every: u64,
    f: f64,
    target: f64,
    forgery: Forgery,
) -> Option<u32> {
    if !(0.0..1.0).contains(&target) || f <= 0.0 || steps == 0 {
        return None;
    }
    let miss = miss_per_sample(steps, every, f, forgery);
    if miss <= 0.0 {
        return Some(1);
    }
    let k = ((1.0 - target).ln() / miss.ln()).ceil();
    (k.is_finite() && k >= 1.0).then(|| (k as u64).min(steps) as u32)
}

/// The probability that one sampled step's span misses every forged step.
fn miss_per_sample(steps: u64, every: u64, f: f64, forgery: Forgery) -> f64 {
    let k = effective_interval(steps, every) as f64;
    let f = f.min(1.0);
    match forgery {
        Forgery::Spread if f >= 1.0 => 0.0,
        Forgery::Spread => (1.0 - f) * (1.0 - (1.0 - f).powf(k)) / (k * f),
        Forgery::Concentrated => {
            let n = steps as f64;
            let reach = (f * n).ceil() + (k - 1.0) / 2.0;
            (1.0 - reach / n).max(0.0)
        }
    }
}

/// The checkpoint interval replay sees: `every`, or the whole log when there are none in it.
fn effective_interval(steps: u64, every: u64) -> u64 {
    if every == 0 {
        steps.max(1)
    } else {
        every.min(steps.max(1))
    }
}

/// What an audit costs, in units of one training step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Costs {
    /// Samples drawn.
    pub samples: u32,
    /// Checkpoint interval.
    pub every: u64,
    /// Expected steps re-executed: `samples * (K + 1) / 2`.
    pub replayed_steps: f64,
    /// Expected compute, with each checkpoint restore costing `load_cost` steps:
    /// `samples * ((K + 1) / 2 + load_cost)`.
    pub compute_steps: f64,
    /// `compute_steps` as a fraction of the training's own `N` steps.
    pub compute_fraction: f64,
    /// Checkpoints the node stores and serves: `ceil(N / K)`.
    pub checkpoints: u64,
}

/// The costs of auditing `samples` steps of an `steps`-step log with a checkpoint every
/// `every` steps, a restore costing `load_cost` steps.
pub fn costs(steps: u64, every: u64, samples: u32, load_cost: f64) -> Costs {
    let k = effective_interval(steps, every);
    let per_sample = (k as f64 + 1.0) / 2.0;
    let replayed = f64::from(samples) * per_sample;
    let compute = f64::from(samples) * (per_sample + load_cost);
    Costs {
        samples,
        every: k,
        replayed_steps: replayed,
        compute_steps: compute,
        compute_fraction: compute / steps.max(1) as f64,
        checkpoints: steps.div_ceil(k),
    }
}

/// For each checkpoint interval in `intervals`: the samples that reach `target` against a
/// fraction `f` of forged steps, and what that costs. The requester's chooser: take the row
/// with the compute and storage it can afford.
pub fn frontier(
    steps: u64,
    f: f64,
    target: f64,
    forgery: Forgery,
    intervals: &[u64],
    load_cost: f64,
) -> Vec<Costs> {
    intervals
        .iter()
        .filter_map(|&every| {
            samples_needed(steps, every, f, target, forgery)
                .map(|k| costs(steps, every, k, load_cost))
        })
        .collect()
}

/// The cheapest row of [`frontier`] by compute, storing at most `max_checkpoints`.
pub fn choose(
    steps: u64,
    f: f64,
    target: f64,
    forgery: Forgery,
    intervals: &[u64],
    load_cost: f64,
    max_checkpoints: u64,
) -> Option<Costs> {
    frontier(steps, f, target, forgery, intervals, load_cost)
        .into_iter()
        .filter(|c| c.checkpoints <= max_checkpoints)
        .min_by(|a, b| a.compute_steps.total_cmp(&b.compute_steps))
}
