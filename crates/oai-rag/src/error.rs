use oai_core::ErrorKind;

/// Errors of `oai-rag`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A store or dataset error from `oai-data`.
    #[error(transparent)]
    Data(#[from] oai_data::Error),
    /// A tensor operation failed.
    #[error("tensor error: {0}")]
    Candle(#[from] candle_core::Error),
    /// Model files are missing or unreadable.
    #[error("model files at {path}: {reason}")]
    Model {
        /// The file or directory.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The tokenizer failed.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// A vector of the wrong dimension.
    #[error("vector has dimension {got}, the index holds {expected}")]
    Dimension {
        /// The index's dimension.
        expected: usize,
        /// The vector's.
        got: usize,
    },
    /// A stored index that does not decode or does not hold together.
    #[error("corrupt or malformed index: {0}")]
    Index(String),
    /// A remote backend (a Qdrant server, a knowledge peer) failed or answered something that
    /// does not check out.
    #[error("backend: {0}")]
    Backend(String),
    /// Invalid input (empty text, non-finite vector, ...).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// This process was forked after its parent computed: the compute threads did not survive
    /// the fork ([`oai_core::fork`]).
    #[error("{}", oai_core::fork::explain(*.parent))]
    Forked {
        /// The process that computed.
        parent: u32,
    },
}

/// Refuse to compute in a child forked after its parent computed; note that this process does.
pub(crate) fn compute_here() -> Result<()> {
    oai_core::fork::compute().map_err(|parent| Error::Forked { parent })
}

impl Error {
    /// What kind of failure this is: model files that are not there are
    /// [`ErrorKind::NotFound`], a vector of the wrong size or an empty text
    /// [`ErrorKind::InvalidInput`], a corrupt saved index [`ErrorKind::Integrity`], a Qdrant
    /// server that fails [`ErrorKind::Unavailable`].
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Data(d) => d.kind(),
            Error::Model { path, .. } if !std::path::Path::new(path).exists() => {
                ErrorKind::NotFound
            }
            Error::Dimension { .. } | Error::InvalidInput(_) => ErrorKind::InvalidInput,
            Error::Index(_) => ErrorKind::Integrity,
            Error::Backend(_) => ErrorKind::Unavailable,
            Error::Model { .. } | Error::Candle(_) | Error::Tokenizer(_) | Error::Forked { .. } => {
                ErrorKind::Other
            }
        }
    }
}

/// Result type of `oai-rag`.
pub type Result<T, E = Error> = std::result::Result<T, E>;
