//! The internal Tokio runtime every blocking call runs on, made on first use.

use std::future::Future;
use std::sync::OnceLock;

use crate::status::{oai_status, Error, Result};

static RUNTIME: OnceLock<std::result::Result<tokio::runtime::Runtime, String>> = OnceLock::new();

/// Run `fut` to completion on the runtime, from the calling (C) thread.
pub fn block_on<F: Future>(fut: F) -> Result<F::Output> {
    let rt = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .thread_name("oai-runtime")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    });
    match rt {
        Ok(rt) => Ok(rt.block_on(fut)),
        Err(e) => Err(Error::new(
            oai_status::OAI_ERROR_OTHER,
            format!("cannot start liboai's runtime: {e}"),
        )),
    }
}
