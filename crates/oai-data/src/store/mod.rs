//! Storage traits and their implementations.
//!
//! - [`BlockStore`]: immutable blocks named by CID. Contract, for every implementation:
//!   1. `put_block(cid, bytes)` first checks that `bytes` hash to `cid` and refuses otherwise
//!      ([`Error::CorruptBlock`]); it is idempotent, and concurrent puts of the same block are
//!      fine.
//!   2. `get(cid)` returns exactly the bytes that were put, verified against `cid` on every
//!      read: a store never hands out bytes that do not match ([`Error::CorruptBlock`]); a
//!      missing block is [`Error::NotFound`].
//!   3. `has(cid)` says whether `get` would find the block (without reading it).
//!   4. `delete(cid)` removes a block (no error if absent); `list()` names every stored block.
//!      These two serve garbage collection ([`crate::gc`]).
//!   5. A failed or interrupted put never corrupts or removes what is already stored.
//! - [`RefStore`]: named, mutable heads (branches, forks) updated by compare-and-swap.
//!
//! Implementations: [`MemStore`] (both traits), [`FsStore`] (both traits, crash-safe), and
//! `IpfsStore` (blocks over the kubo RPC API, feature `ipfs`). [`conformance`] holds the test
//! suite every implementation must pass.

pub mod conformance;
mod fs;
#[cfg(feature = "ipfs")]
mod ipfs;
mod mem;

pub use fs::FsStore;
#[cfg(feature = "ipfs")]
pub use ipfs::IpfsStore;
pub use mem::MemStore;

use async_trait::async_trait;
use bytes::Bytes;
use oai_core::{ids, Cid};
use std::fmt::Debug;

use crate::{Error, Result};

/// Largest block any oai store accepts (IPFS nodes exchange blocks up to 2 MiB).
pub const MAX_BLOCK_SIZE: usize = 2 << 20;

/// Immutable, content-addressed blocks. See the [module docs](self) for the contract.
#[async_trait]
pub trait BlockStore: Send + Sync + Debug {
    /// Store `bytes` under `cid` after checking that they match.
    async fn put_block(&self, cid: &Cid, bytes: Bytes) -> Result<()>;
    /// The verified bytes of `cid`.
    async fn get(&self, cid: &Cid) -> Result<Bytes>;
    /// Whether `cid` is stored.
    async fn has(&self, cid: &Cid) -> Result<bool>;
    /// Remove `cid` if present.
    async fn delete(&self, cid: &Cid) -> Result<()>;
    /// Every stored CID, in no particular order.
    async fn list(&self) -> Result<Vec<Cid>>;

    /// Store `bytes` as a CIDv1 block of `codec` (sha2-256) and return its CID.
    async fn put(&self, codec: u64, bytes: Bytes) -> Result<Cid> {
        let cid = ids::cid_v1(codec, &bytes);
        self.put_block(&cid, bytes).await?;
        Ok(cid)
    }
}

/// Named heads (branches, forks, dataset versions), updated atomically.
///
/// Contract: `compare_and_swap(name, expected, new)` sets the head to `new` only if it is
/// currently `expected` (`None` = absent), and otherwise fails with [`Error::CasConflict`]
/// carrying the actual head, changing nothing. `new = None` deletes the head. Names match
/// `[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*`, at most 255 bytes.
#[async_trait]
pub trait RefStore: Send + Sync + Debug {
    /// The current head of `name`.
    async fn get_ref(&self, name: &str) -> Result<Option<Cid>>;
    /// Atomically replace the head of `name` if it equals `expected`.
    async fn compare_and_swap(
        &self,
        name: &str,
        expected: Option<Cid>,
        new: Option<Cid>,
    ) -> Result<()>;
    /// All heads, sorted by name.
    async fn list_refs(&self) -> Result<Vec<(String, Cid)>>;
}

#[async_trait]
impl<T: BlockStore + ?Sized> BlockStore for std::sync::Arc<T> {
    async fn put_block(&self, cid: &Cid, bytes: Bytes) -> Result<()> {
        (**self).put_block(cid, bytes).await
    }
    async fn get(&self, cid: &Cid) -> Result<Bytes> {
        (**self).get(cid).await
    }
    async fn has(&self, cid: &Cid) -> Result<bool> {
        (**self).has(cid).await
    }
    async fn delete(&self, cid: &Cid) -> Result<()> {
        (**self).delete(cid).await
    }
    async fn list(&self) -> Result<Vec<Cid>> {
        (**self).list().await
    }
}

/// Check `bytes` against `cid` and the block size limit: the gate of every put and every get.
pub fn check_block(cid: &Cid, bytes: &[u8]) -> Result<()> {
    if bytes.len() > MAX_BLOCK_SIZE {
        return Err(Error::BlockTooLarge {
            size: bytes.len(),
            limit: MAX_BLOCK_SIZE,
        });
    }
    ids::verify(cid, bytes).map_err(Error::from)
}

/// Check a ref name against the rules in [`RefStore`].
pub fn check_ref_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidRefName(name.to_string()))
    }
}
