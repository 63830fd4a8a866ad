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
