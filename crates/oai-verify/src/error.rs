//! The crate's error type. A verifier's own trouble (a missing block, a store that lies, a log
//! it cannot judge on this machine) is an error; what the node did wrong is a
//! [`crate::Verdict`], never an error.

/// What can go wrong while verifying (never a verdict about the node).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Training or replay failed for a reason that is not the node's fault (a missing or corrupt
    /// block, another compute class, a dataset store that serves other chunks, ...).
    #[error(transparent)]
    Train(Box<oai_train::Error>),
    /// A block store failed.
    #[error(transparent)]
    Data(#[from] oai_data::Error),
    /// The chain failed or reverted.
    #[error(transparent)]
    Chain(#[from] oai_chain::Error),
    /// A value given to the verifier is unusable (e.g. zero samples).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// [`crate::agents::play_until_settled`] ran out of rounds with jobs still open.
    #[error("not settled: {0}")]
    Unsettled(String),
    /// An audit task panicked or was cancelled.
    #[error("audit task failed: {0}")]
    Task(String),
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// What kind of failure this is.
    pub fn kind(&self) -> oai_core::ErrorKind {
        match self {
            Error::Train(t) => t.kind(),
            Error::Data(d) => d.kind(),
            Error::Chain(c) => c.kind(),
            Error::InvalidInput(_) => oai_core::ErrorKind::InvalidInput,
            Error::Unsettled(_) | Error::Task(_) => oai_core::ErrorKind::Other,
        }
    }
}

impl From<oai_train::Error> for Error {
    fn from(e: oai_train::Error) -> Self {
        Error::Train(Box::new(e))
    }
}
