//! liboai: the C API of oai (`include/oai.h`, generated from this crate by cbindgen).
//!
//! Conventions, the same for every function:
//! - it returns an [`status::oai_status`]; on failure the thread's last error (code and
//!   message) says what went wrong, and nothing the caller owns was changed;
//! - no panic crosses the boundary: one is caught and returned as `OAI_ERROR_PANIC`;
//! - handles are opaque keys into a registry ([`handles`]): a null, freed or foreign handle, or
//!   a handle of another kind, is an error, never a dereference;
//! - strings in are NUL-terminated UTF-8, strings and buffers out belong to the caller
//!   ([`buffers`]);
//! - blocking work runs on one internal Tokio runtime ([`runtime`]).

pub mod buffers;
pub mod dataset;
pub mod generate;
pub mod handles;
pub mod info;
pub mod rag;
pub mod runtime;
pub mod status;
pub mod store;
pub mod train;
