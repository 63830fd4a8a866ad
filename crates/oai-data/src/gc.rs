//! Garbage collection: delete every block not reachable from the given roots.
//!
//! Forks share chunks, so a block is only garbage when no head reaches it: [`collect_refs`]
//! marks from every head in a [`RefStore`] (following manifests to their parents, pages,
//! chunks, change sets and UnixFS links) and sweeps the rest. Run it while no writer is adding
//! blocks that are not yet reachable from a head.

use oai_core::Cid;
use std::collections::{BTreeMap, HashSet};

use crate::{car, BlockStore, RefStore, Result};

/// What a collection did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GcReport {
    /// Blocks reachable from the roots.
    pub kept: u64,
    /// Blocks deleted.
    pub deleted: u64,
}

/// Every block reachable from `roots` with its size in bytes, sorted by CID. Dataset versions
/// link their parent, so a version's reachable set includes its history.
pub async fn reachable<S: BlockStore + ?Sized>(
    store: &S,
    roots: &[Cid],
) -> Result<Vec<(Cid, u64)>> {
    let mut stack: Vec<Cid> = roots.to_vec();
    let mut seen = BTreeMap::new();
    while let Some(cid) = stack.pop() {
        if seen.contains_key(&cid) {
            continue;
        }
        let block = store.get(&cid).await?;
        stack.extend(car::links(&cid, &block)?);
        seen.insert(cid, block.len() as u64);
    }
    Ok(seen.into_iter().collect())
}

/// Keep blocks reachable from `roots`, delete the rest. Blocks are matched by multihash, so a
/// store that reports CIDs with another codec (IPFS) is handled.
pub async fn collect<S: BlockStore + ?Sized>(store: &S, roots: &[Cid]) -> Result<GcReport> {
    let kept = reachable(store, roots).await?;
    let live: HashSet<Vec<u8>> = kept.iter().map(|(c, _)| c.hash().to_bytes()).collect();
    let mut report = GcReport {
        kept: kept.len() as u64,
        deleted: 0,
    };
    for cid in store.list().await? {
        if !live.contains(&cid.hash().to_bytes()) {
            store.delete(&cid).await?;
            report.deleted += 1;
        }
    }
    Ok(report)
}

/// [`collect`] with every head of `refs` as a root.
pub async fn collect_refs<S: BlockStore + ?Sized, R: RefStore + ?Sized>(
    store: &S,
    refs: &R,
) -> Result<GcReport> {
    let roots: Vec<Cid> = refs
        .list_refs()
        .await?
        .into_iter()
        .map(|(_, c)| c)
        .collect();
    collect(store, &roots).await
}
