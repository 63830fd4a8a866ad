//! # oai
//!
//! The crate to `cargo add`: it re-exports the oai crates.
//!
//! - [`core`]: digests, CIDs, Merkle proofs, seeds (`oai-core`).
//! - [`data`]: content-addressed, forkable datasets; block and ref stores; UnixFS and CAR
//!   (`oai-data`). Feature `ipfs` adds the IPFS block store.
//! - [`train`]: deterministic, fully logged training on candle with checkpoints and single-step
//!   replay (`oai-train`, default feature `train`; `cuda` / `metal` for GPUs).
//! - [`rag`]: sentence embeddings (all-MiniLM-L6-v2 on candle) for retrieval over shared
//!   knowledge (`oai-rag`, default feature `rag`).
//! - [`chain`]: Solidity contracts for node stakes, crowdfunded training jobs with bisection
//!   fraud proofs, referees and dataset DAOs, on an embedded EVM or (feature `alloy`) a real
//!   Ethereum node (`oai-chain`, default feature `chain`).
//! - [`verify`]: checking a training node's work: audits of sampled steps seeded by chain
//!   randomness, full replays, verdicts naming the first bad step (`oai-verify`, default
//!   feature `verify`).
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use oai::data::{dataset::{Record, Version}, MemStore};
//! let store = MemStore::new();
//! let v = Version::from_records(&store, (0..100).map(|i| Record::Text(format!("doc {i}")))).await?;
//! let (_, cid, proof) = v.prove(&store, 42).await?;
//! assert!(proof.verify_cid(&cid, &v.root()));
//! # Ok::<(), oai::data::Error>(())
//! # }).unwrap();
//! ```

#[cfg(feature = "chain")]
pub use oai_chain as chain;
pub use oai_core as core;
pub use oai_data as data;
#[cfg(feature = "rag")]
pub use oai_rag as rag;
#[cfg(feature = "train")]
pub use oai_train as train;
#[cfg(feature = "verify")]
pub use oai_verify as verify;

/// The items most programs use.
pub mod prelude {
    pub use oai_core::{Cid, Digest, MerkleProof, Seed};
    pub use oai_data::dataset::{ChangeSet, Record, Repo, Sampler, Tensor, Version};
    pub use oai_data::{BlockStore, FsStore, MemStore, RefStore};
    #[cfg(feature = "train")]
    pub use oai_train::{replay_step, JobSpec, StepOutcome, Trainer, TrainingLog};
}

#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
