//! Named runs: a published log's CID kept under the head `runs/NAME` of a [`RefStore`], as
//! `oai train run` and the bindings publish them ([`crate::Trainer::publish_as`]).

use oai_core::{ids, Cid};
use oai_data::RefStore;

use crate::Result;

/// The head that names run `name`: `runs/NAME`.
pub fn head(name: &str) -> String {
    format!("runs/{name}")
}

/// Point run `name` at the log `log` (whatever it named before).
pub async fn set<R: RefStore + ?Sized>(refs: &R, name: &str, log: Cid) -> Result<()> {
    let head = head(name);
    let old = refs.get_ref(&head).await?;
    Ok(refs.compare_and_swap(&head, old, Some(log)).await?)
}

/// A log's CID from a run name or the CID itself; `oai_data::Error::UnknownName` when it is
/// neither.
pub async fn resolve<R: RefStore + ?Sized>(refs: &R, name_or_cid: &str) -> Result<Cid> {
    if let Ok(cid) = ids::parse(name_or_cid) {
        return Ok(cid);
    }
    refs.get_ref(&head(name_or_cid)).await?.ok_or_else(|| {
        oai_data::Error::UnknownName {
            what: "run",
            name: name_or_cid.to_string(),
        }
        .into()
    })
}

#[cfg(test)]
mod tests {
    use oai_data::MemStore;

    use super::*;

    #[tokio::test]
    async fn a_named_run_resolves_and_an_unknown_one_is_not_found() {
        let refs = MemStore::new();
        let log = ids::cid_v1(ids::RAW, b"log");
        set(&refs, "digits", log).await.unwrap();
        let again = ids::cid_v1(ids::RAW, b"log 2");
        set(&refs, "digits", again).await.unwrap();
        assert_eq!(resolve(&refs, "digits").await.unwrap(), again);
        assert_eq!(resolve(&refs, &log.to_string()).await.unwrap(), log);
        let err = resolve(&refs, "nope").await.unwrap_err();
        assert_eq!(err.kind(), oai_core::ErrorKind::NotFound);
        assert_eq!(err.to_string(), "no run named \"nope\"");
    }
}
