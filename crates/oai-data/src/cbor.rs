//! Decoding of DAG-CBOR blocks, with the one error shape every caller reports.

use oai_core::Cid;
use serde::de::DeserializeOwned;

use crate::{Error, Result};

/// Decode `bytes` as DAG-CBOR into `T`; a failure is [`Error::Malformed`] naming `what` and,
/// when given, the block it came from.
pub(crate) fn decode<T: DeserializeOwned>(
    what: &'static str,
    origin: Option<&Cid>,
    bytes: &[u8],
) -> Result<T> {
    serde_ipld_dagcbor::from_slice(bytes).map_err(|e| Error::Malformed {
        what,
        reason: match origin {
            Some(cid) => format!("{cid}: {e}"),
            None => e.to_string(),
        },
    })
}
