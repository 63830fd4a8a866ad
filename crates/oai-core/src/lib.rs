//! Core types of oai, shared by every other crate and free of I/O.
//!
//! - [`Digest`]: a SHA-256 digest, the hash every oai object is named by.
//! - [`ids`]: CID construction and verification (CIDv0/CIDv1, sha2-256) over the `cid` crate.
//! - [`merkle`]: a binary Merkle tree with small (log n) inclusion proofs that verify without the
//!   data.
//! - [`seed`]: explicit, derivable seeds and a portable seeded RNG.

mod digest;
mod error;
pub mod fork;
pub mod ids;
pub mod merkle;
pub mod seed;

pub use cid::Cid;
pub use digest::Digest;
pub use error::{Error, ErrorKind, Result};
pub use merkle::{MerkleProof, MerkleTree};
pub use seed::Seed;
