use oai_core::{Cid, ErrorKind};

/// Errors of `oai-data`. Every failure mode of a store, importer or dataset has its own variant.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A block's bytes do not hash to its CID (corrupt storage or a lying peer).
    #[error("corrupt block {cid}: its bytes hash to {actual}")]
    CorruptBlock {
        /// The CID that was asked for.
        cid: Cid,
        /// Hex of the digest the bytes have.
        actual: String,
    },
    /// No block with this CID is stored.
    #[error("block not found: {0}")]
    NotFound(Cid),
    /// The CID names a codec oai cannot decode.
    #[error("unknown codec 0x{0:x}")]
    UnknownCodec(u64),
    /// The CID uses a hash function oai does not verify.
    #[error("unsupported hash function 0x{0:x} (oai verifies sha2-256)")]
    UnsupportedHash(u64),
    /// A CID could not be parsed.
    #[error("invalid CID: {0}")]
    InvalidCid(String),
    /// Input ended before a complete object was read (truncated file, CAR or block).
    #[error("truncated {what}: {detail}")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Where it ended.
        detail: String,
    },
    /// An object could not be decoded (manifest, chunk, UnixFS node, CAR header, ...).
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was being decoded.
        what: &'static str,
        /// Why it failed.
        reason: String,
    },
    /// A compare-and-swap on a named head lost a race: the head is not what the caller expected.
    #[error("CAS conflict on ref {:?}: expected {:?}, found {:?}", .0.name, .0.expected, .0.actual)]
    CasConflict(Box<CasConflict>),
    /// A ref name that is empty, too long, or has characters outside `[A-Za-z0-9._/-]`.
    #[error("invalid ref name {0:?}")]
    InvalidRefName(String),
    /// The IPFS node could not be reached.
    #[error("IPFS node at {url} unreachable: {reason}")]
    IpfsUnreachable {
        /// The RPC base URL.
        url: String,
        /// The transport error.
        reason: String,
    },
    /// The IPFS node answered with an error.
    #[error("IPFS node error ({status}): {body}")]
    Ipfs {
        /// HTTP status.
        status: u16,
        /// Response body.
        body: String,
    },
    /// A record index past the end of a dataset.
    #[error("record index {index} out of range (dataset has {len} records)")]
    IndexOutOfRange {
        /// The index asked for.
        index: u64,
        /// The number of records.
        len: u64,
    },
    /// A proof, proposal or batch does not check out against its root.
    #[error("verification failed: {0}")]
    Verification(String),
    /// An invalid argument (zero batch size, bad chunking parameters, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A block larger than the store accepts.
    #[error("block of {size} bytes exceeds the limit of {limit}")]
    BlockTooLarge {
        /// Size of the block.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A file larger than the reader takes: refused from what its root declares, before its
    /// bytes are read.
    #[error("{what} of {size} bytes exceeds the limit of {limit}")]
    TooLarge {
        /// What was being read.
        what: &'static str,
        /// The size it declares.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// No named head of this kind and name (a dataset, a run).
    #[error("no {what} named {name:?}")]
    UnknownName {
        /// What the head names: "dataset", "run".
        what: &'static str,
        /// The name asked for.
        name: String,
    },
    /// An operating-system I/O error.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl From<oai_core::Error> for Error {
    fn from(e: oai_core::Error) -> Self {
        match e {
            oai_core::Error::CidMismatch { cid, actual } => Error::CorruptBlock { cid, actual },
            oai_core::Error::UnknownCodec(c) => Error::UnknownCodec(c),
            oai_core::Error::UnsupportedHash(c) => Error::UnsupportedHash(c),
            oai_core::Error::InvalidCid(s) => Error::InvalidCid(s),
            other => Error::Malformed {
                what: "value",
                reason: other.to_string(),
            },
        }
    }
}

/// The details of [`Error::CasConflict`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CasConflict {
    /// The ref name.
    pub name: String,
    /// What the caller expected.
    pub expected: Option<Cid>,
    /// What the head actually is.
    pub actual: Option<Cid>,
}

impl Error {
    /// A [`Error::CasConflict`].
    pub fn cas_conflict(name: &str, expected: Option<Cid>, actual: Option<Cid>) -> Self {
        Error::CasConflict(Box::new(CasConflict {
            name: name.to_string(),
            expected,
            actual,
        }))
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::CorruptBlock { .. } | Error::Verification(_) | Error::Truncated { .. } => {
                ErrorKind::Integrity
            }
            Error::NotFound(_) | Error::UnknownName { .. } => ErrorKind::NotFound,
            Error::InvalidCid(_)
            | Error::InvalidArgument(_)
            | Error::InvalidRefName(_)
            | Error::IndexOutOfRange { .. }
            | Error::UnknownCodec(_)
            | Error::UnsupportedHash(_)
            | Error::BlockTooLarge { .. }
            | Error::TooLarge { .. }
            | Error::Malformed { .. } => ErrorKind::InvalidInput,
            Error::CasConflict(_) => ErrorKind::Conflict,
            Error::IpfsUnreachable { .. } | Error::Ipfs { .. } => ErrorKind::Unavailable,
            Error::Io(io) if io.kind() == std::io::ErrorKind::NotFound => ErrorKind::NotFound,
            Error::Io(_) => ErrorKind::Other,
        }
    }
}

/// Result type of `oai-data`.
pub type Result<T, E = Error> = std::result::Result<T, E>;
