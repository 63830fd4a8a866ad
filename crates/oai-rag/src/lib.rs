//! Retrieval over shared knowledge for oai.
//!
//! - [`embed`]: the [`Embedder`] trait and [`MiniLm`] (all-MiniLM-L6-v2 on candle, loaded from
//!   local files).

pub mod embed;
mod error;

pub use embed::{Embedder, MiniLm};
pub use error::{Error, Result};
