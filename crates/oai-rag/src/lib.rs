//! Retrieval over shared knowledge for oai.
//!
//! - [`embed`]: the [`Embedder`] trait, [`MiniLm`] (all-MiniLM-L6-v2 on candle, loaded from
//!   local files) and [`HashedWords`] (feature hashing, no model file).
//! - [`vector`]: the [`VectorStore`] trait (every hit cites its source chunk's CID), exact
//!   [`FlatStore`], approximate [`HnswStore`], and the conformance suite.
//! - [`ingest`]: documents to passages to index entries, incremental by dataset diff.
//! - [`named`]: indexes saved under a name (`indexes/NAME`) that the CLI, Python and C open.
//! - [`generate`]: answers citing their passages' CIDs: [`Extractive`] (no model) and, with the
//!   feature `local-lm` (which builds oai-train), `LocalLm` (a quantised byte-level LM trained
//!   with oai-train) and `ChatLm` (a Llama-family chat model from a GGUF file, e.g. SmolLM2).

pub use candle_core as candle;

pub mod embed;
mod error;
pub mod federation;
pub mod generate;
pub mod ingest;
pub mod named;
pub mod vector;

pub use embed::{Embedder, HashedWords, MiniLm};
pub use error::{Error, Result};
pub use generate::{Answer, Extractive, Generator, Passage};
#[cfg(feature = "local-lm")]
pub use generate::{ChatLm, LocalLm};
pub use ingest::{IngestReport, Ingestor};
pub use vector::{Entry, Filter, FlatStore, Hit, HnswParams, HnswStore, VectorStore};
