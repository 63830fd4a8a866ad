//! Datasets: records grouped into content-defined chunks, versions named by the CID of their
//! manifest, forks that share every unchanged chunk, diffs, inclusion proofs, a deterministic
//! batch sampler and DAO data proposals.
//!
//! Block layout (all dag-cbor, sha2-256, CIDv1): a [`Manifest`] links pages; a page is a list of
//! [`ChunkRef`]s; a chunk is a list of [`Record`]s. The version root is a Merkle root over one
//! leaf per chunk ([`manifest::chunk_leaf`]), each leaf binding the chunk's record-digest root
//! and index range, so a [`RecordProof`] proves a record at a global index in about
//! 2 * log2(n) hashes.

mod builder;
mod chunker;
mod diff;
/// Manifest, chunk and proof types (the on-store format).
pub mod manifest;
mod proposal;
mod record;
mod repo;
mod sampler;
pub mod sources;
mod version;

pub use builder::Builder;
pub use chunker::Chunking;
pub use diff::{ChangeSet, Diff};
pub use manifest::{ChunkRef, Manifest, RecordProof};
pub use proposal::Proposal;
pub use record::{DType, Record, Tensor};
pub use repo::Repo;
pub use sampler::{Batch, Sampler};
pub use version::Version;
