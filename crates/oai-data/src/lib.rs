//! Content-addressed, forkable datasets for oai.
//!
//! - [`store`]: the [`BlockStore`] and [`RefStore`] traits with memory, filesystem and IPFS
//!   implementations; every read is verified against its CID.
//! - [`unixfs`]: file import byte-identical to IPFS (three import profiles), streaming, and
//!   reading files back.
//! - [`car`]: CARv1 export and import.
//! - [`dataset`]: records, content-defined chunks, versions, forks, diffs, inclusion proofs,
//!   the deterministic batch sampler and DAO data proposals.
//! - [`gc`]: garbage collection that keeps every block reachable from a head.

pub mod car;
mod cbor;
pub mod dataset;
mod error;
pub mod gc;
pub mod store;
pub mod unixfs;

pub use error::{CasConflict, Error, Result};
pub use store::{BlockStore, FsStore, MemStore, RefStore};
