use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use std::fmt;

use super::{Block, BlockStore};
use crate::Result;

/// Block puts in flight, at most `limit` at a time, so that a store that pays a round trip or
/// an fsync per block overlaps them. Errors surface at a later `put` or at [`PutQueue::drain`],
/// which callers run before they write anything that links to the queued blocks.
pub(crate) struct PutQueue<'a> {
    pending: FuturesUnordered<BoxFuture<'a, Result<()>>>,
    limit: usize,
}

impl fmt::Debug for PutQueue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PutQueue")
            .field("in_flight", &self.pending.len())
            .field("limit", &self.limit)
            .finish()
    }
}

impl<'a> PutQueue<'a> {
    /// Puts of one builder or importer in flight at once.
    pub const DEFAULT_LIMIT: usize = 16;

    pub fn new(limit: usize) -> Self {
        Self {
            pending: FuturesUnordered::new(),
            limit: limit.max(1),
        }
    }

    /// Queue a put; waits while `limit` puts are in flight.
    pub async fn put<S: BlockStore + ?Sized>(&mut self, store: &'a S, block: Block) -> Result<()> {
        self.pending.push(store.put_block(block));
        while self.pending.len() >= self.limit {
            if let Some(r) = self.pending.next().await {
                r?;
            }
        }
        Ok(())
    }

    /// Wait for every queued put.
    pub async fn drain(&mut self) -> Result<()> {
        while let Some(r) = self.pending.next().await {
            r?;
        }
        Ok(())
    }
}
