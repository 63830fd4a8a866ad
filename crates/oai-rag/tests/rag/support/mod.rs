//! Test support shared by the tests of this crate.

#[cfg(feature = "qdrant")]
pub mod qdrant_fake;
