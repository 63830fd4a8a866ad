//! Strategies and verdicts: the closed, serialisable vocabulary the bindings pass around.

use oai_train::Mismatch;
use serde::{Deserialize, Serialize};

/// How a result is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "strategy", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Strategy {
    /// Replay `samples` steps drawn from an audit seed the node could not know when it
    /// committed (see [`crate::audit_seed`]), each from the last checkpoint before it, plus the
    /// initial weights. Prices laziness: see [`crate::sampling`] for the detection probability
    /// and the samples a target needs.
    Sampling {
        /// Steps to draw (distinct; all of them when the log is shorter).
        samples: u32,
    },
    /// Replay every step, each checkpoint interval once: finds any forged step, at the cost of
    /// the training's own compute.
    Full,
}

/// What a verifier concluded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Verdict {
    /// Every check passed.
    Accepted(Report),
    /// The result is wrong; the fault names the first bad step where there is one.
    Rejected(Fault),
}

impl Verdict {
    /// Whether the result was accepted.
    pub fn is_accepted(&self) -> bool {
        matches!(self, Verdict::Accepted(_))
    }

    /// The fault of a rejected result.
    pub fn fault(&self) -> Option<&Fault> {
        match self {
            Verdict::Rejected(f) => Some(f),
            Verdict::Accepted(_) => None,
        }
    }
}

/// What an accepted audit checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// The steps drawn for the audit (every step for [`Strategy::Full`]), sorted.
    pub sampled: Vec<u64>,
    /// The spans replayed, `(first, last)` inclusive; each starts from the last committed
    /// checkpoint at or before `first`.
    pub spans: Vec<(u64, u64)>,
    /// Steps re-executed in all (from each span's checkpoint to its last step).
    pub replayed_steps: u64,
}

/// Why a result was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Fault {
    /// Re-executing a step gave other bits than its record: the step, the first differing field
    /// (and tensor), what the log says and what replay computed.
    Step(Mismatch),
    /// The log itself is broken: its chain, commitments, checkpoint list or encodings (`step`
    /// where one can be named).
    Log {
        /// The step where it breaks, when known.
        step: Option<u64>,
        /// What is wrong.
        reason: String,
    },
    /// The log is not an answer to the job: another spec, dataset or step count.
    Terms {
        /// What differs.
        reason: String,
    },
}

impl Fault {
    /// The first bad step, where one is named.
    pub fn step(&self) -> Option<u64> {
        match self {
            Fault::Step(m) => Some(m.step),
            Fault::Log { step, .. } => *step,
            Fault::Terms { .. } => None,
        }
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Step(m) => {
                write!(f, "step {}: {}", m.step, m.field)?;
                if let Some(t) = &m.tensor {
                    write!(f, " of {t}")?;
                }
                write!(f, " differs (log {}, replay {})", m.logged, m.replayed)
            }
            Fault::Log {
                step: Some(s),
                reason,
            } => write!(f, "broken log at step {s}: {reason}"),
            Fault::Log { step: None, reason } => write!(f, "broken log: {reason}"),
            Fault::Terms { reason } => write!(f, "not the job's log: {reason}"),
        }
    }
}
