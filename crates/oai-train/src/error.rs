use oai_core::{Cid, Digest, ErrorKind};

/// Errors of `oai-train`. Each way a run, a log or a checkpoint can be wrong has its own variant;
/// none of them overwrites stored data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A store, dataset or proof error from `oai-data`.
    #[error(transparent)]
    Data(#[from] oai_data::Error),
    /// A tensor operation failed.
    #[error("tensor error: {0}")]
    Candle(#[from] candle_core::Error),
    /// The job spec is invalid: unknown model or optimiser, zero sizes, bad hyper-parameters.
    #[error("invalid job spec: {0}")]
    InvalidSpec(String),
    /// An object could not be decoded (log record, header, checkpoint file).
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was being decoded.
        what: &'static str,
        /// Why it failed.
        reason: String,
    },
    /// The log's hash chain, step order, commitments or Merkle root do not check out.
    #[error("broken training log at step {step}: {reason}")]
    BrokenLog {
        /// The step where the chain breaks.
        step: u64,
        /// What is wrong.
        reason: String,
    },
    /// A checkpoint's weights do not match the commitment the log records for its step.
    #[error(
        "checkpoint {} at step {} has weights {}, the log commits to {}",
        .0.cid, .0.step, .0.actual, .0.expected
    )]
    CheckpointMismatch(Box<CheckpointMismatch>),
    /// A batch's records do not prove against the dataset root.
    #[error("step {step}: batch does not prove against the dataset root: {reason}")]
    BatchProof {
        /// The step.
        step: u64,
        /// What failed.
        reason: String,
    },
    /// The log was written on another compute class; its bits cannot be judged here (this is
    /// not a verdict on the log).
    #[error(
        "log was written on compute class {log:?}, this machine is {here:?}: replay it on a \
         machine of class {log:?}"
    )]
    IncompatibleCompute {
        /// The class in the log header.
        log: String,
        /// The class of this machine.
        here: String,
    },
    /// The log was written with another version of the kernels; its bits cannot be judged
    /// here (this is not a verdict on the log).
    #[error(
        "log was computed with kernels {log:?}, this build has {here:?}: replay it with an \
         oai-train release that ships kernels {log:?}"
    )]
    KernelMismatch {
        /// The kernels in the log header.
        log: String,
        /// The kernels of this build.
        here: String,
    },
    /// The log header names no compute class, so no replay can promise to judge it fairly.
    #[error(
        "log header names no compute class: it cannot be replayed fairly; ask the node for a log \
         written by oai-train, which records one"
    )]
    MissingComputeClass,
    /// Resuming re-executed a logged step and got other bits than the log.
    #[error("cannot resume: re-executing step {step} disagrees with the log ({field})")]
    ResumeMismatch {
        /// The step.
        step: u64,
        /// The first field that differs.
        field: String,
    },
    /// A step index past the end of the log.
    #[error("step {step} out of range (log has {steps} steps)")]
    StepOutOfRange {
        /// The step asked for.
        step: u64,
        /// Steps in the log.
        steps: u64,
    },
    /// This process was forked after its parent trained or replayed: the compute threads did
    /// not survive the fork, and a step would wait for them forever ([`oai_core::fork`]).
    #[error("{}", oai_core::fork::explain(*.parent))]
    Forked {
        /// The process that computed.
        parent: u32,
    },
}

/// The details of [`Error::CheckpointMismatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointMismatch {
    /// The checkpoint file.
    pub cid: Cid,
    /// Its step.
    pub step: u64,
    /// The log's commitment.
    pub expected: Digest,
    /// What the checkpoint holds.
    pub actual: Digest,
}

impl From<oai_core::Error> for Error {
    fn from(e: oai_core::Error) -> Self {
        Error::Data(e.into())
    }
}

/// A kernel's error is a tensor error, as it was when the kernels lived in this crate, or
/// input a kernel cannot take.
impl From<oai_kernels::Error> for Error {
    fn from(e: oai_kernels::Error) -> Self {
        match e {
            oai_kernels::Error::Candle(e) => Error::Candle(e),
            oai_kernels::Error::InvalidInput(reason) => Error::malformed("kernel input", reason),
        }
    }
}

impl Error {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Data(d) => d.kind(),
            Error::InvalidSpec(_) | Error::Malformed { .. } | Error::StepOutOfRange { .. } => {
                ErrorKind::InvalidInput
            }
            Error::BrokenLog { .. }
            | Error::CheckpointMismatch(_)
            | Error::BatchProof { .. }
            | Error::ResumeMismatch { .. } => ErrorKind::Integrity,
            Error::IncompatibleCompute { .. }
            | Error::KernelMismatch { .. }
            | Error::MissingComputeClass => ErrorKind::Compute,
            Error::Candle(_) | Error::Forked { .. } => ErrorKind::Other,
        }
    }

    pub(crate) fn malformed(what: &'static str, reason: impl std::fmt::Display) -> Self {
        Error::Malformed {
            what,
            reason: reason.to_string(),
        }
    }
}

/// Result type of `oai-train`.
pub type Result<T, E = Error> = std::result::Result<T, E>;
