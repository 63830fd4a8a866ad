use cid::Cid;

/// Errors of `oai-core`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes do not hash to the digest the CID names.
    #[error("content does not match CID {cid}: the bytes hash to {actual}")]
    CidMismatch {
        /// The CID the bytes were expected to match.
        cid: Cid,
        /// Hex of the digest the bytes actually have.
        actual: String,
    },
    /// The CID uses a hash function oai does not verify.
    #[error("unsupported multihash code 0x{0:x} (oai verifies sha2-256 only)")]
    UnsupportedHash(u64),
    /// The CID names a codec oai does not know.
    #[error("unknown codec 0x{0:x}")]
    UnknownCodec(u64),
    /// A CID could not be parsed.
    #[error("invalid CID: {0}")]
    InvalidCid(String),
    /// A hex string could not be parsed as a digest.
    #[error("invalid digest: {0}")]
    InvalidDigest(String),
}

/// Result type of `oai-core`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What kind of failure an error of any oai crate is, for callers that branch on it (the
/// bindings turn it into an exception class or a status code). Each crate's error has a
/// `kind()` method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Bytes that do not match their CID, a proof, log or checkpoint that does not check out.
    Integrity,
    /// A block, file, dataset, run or model that is not there.
    NotFound,
    /// An argument, spec, CID or file content that is malformed or out of range.
    InvalidInput,
    /// A node or server (IPFS, Ethereum, Qdrant) that cannot be reached or failed.
    Unavailable,
    /// A named head moved under a compare-and-swap.
    Conflict,
    /// A log of another compute class or kernel version than this machine runs.
    Compute,
    /// A contract call reverted.
    Reverted,
    /// Anything else (an I/O error, a failing backend library).
    Other,
}

impl Error {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::CidMismatch { .. } => ErrorKind::Integrity,
            Error::UnsupportedHash(_)
            | Error::UnknownCodec(_)
            | Error::InvalidCid(_)
            | Error::InvalidDigest(_) => ErrorKind::InvalidInput,
        }
    }
}
