//! Storage traits and their implementations.
//!
//! - [`BlockStore`]: immutable blocks named by CID. Contract, for every implementation:
//!   1. `put_block(block)` stores a [`Block`], whose bytes match its CID by construction
//!      (hashed by [`Block::new`] or checked by [`Block::verified`]), so nothing unverified
//!      ever reaches a store; puts are idempotent, and concurrent puts of the same block are
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
mod queue;

pub use fs::FsStore;
#[cfg(feature = "ipfs")]
pub use ipfs::{IpfsStore, PinnedRefs};
pub use mem::MemStore;
pub(crate) use queue::PutQueue;

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
    /// Store a block.
    async fn put_block(&self, block: Block) -> Result<()>;
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
        let block = Block::new(codec, bytes)?;
        let cid = *block.cid();
        self.put_block(block).await?;
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
    async fn put_block(&self, block: Block) -> Result<()> {
        (**self).put_block(block).await
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

#[async_trait]
impl<T: RefStore + ?Sized> RefStore for std::sync::Arc<T> {
    async fn get_ref(&self, name: &str) -> Result<Option<Cid>> {
        (**self).get_ref(name).await
    }
    async fn compare_and_swap(
        &self,
        name: &str,
        expected: Option<Cid>,
        new: Option<Cid>,
    ) -> Result<()> {
        (**self).compare_and_swap(name, expected, new).await
    }
    async fn list_refs(&self) -> Result<Vec<(String, Cid)>> {
        (**self).list_refs().await
    }
}

/// A block whose bytes are known to match its CID: either hashed here ([`Block::new`],
/// [`Block::new_v0`]) or checked ([`Block::verified`]). The only thing a [`BlockStore`] accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    cid: Cid,
    data: Bytes,
}

impl Block {
    /// Hash `data` into a CIDv1 block of `codec` (sha2-256).
    pub fn new(codec: u64, data: impl Into<Bytes>) -> Result<Self> {
        let data = data.into();
        check_size(&data)?;
        if !ids::is_known_codec(codec) {
            return Err(Error::UnknownCodec(codec));
        }
        Ok(Self {
            cid: ids::cid_v1(codec, &data),
            data,
        })
    }

    /// Hash `data` into a CIDv0 (dag-pb) block.
    pub fn new_v0(data: impl Into<Bytes>) -> Result<Self> {
        let data = data.into();
        check_size(&data)?;
        Ok(Self {
            cid: ids::cid_v0(&data),
            data,
        })
    }

    /// A block from bytes that claim to be `cid`, checked: [`Error::CorruptBlock`] if they
    /// are not, [`Error::UnknownCodec`] / [`Error::UnsupportedHash`] if oai cannot check.
    pub fn verified(cid: Cid, data: impl Into<Bytes>) -> Result<Self> {
        let data = data.into();
        check_block(&cid, &data)?;
        Ok(Self { cid, data })
    }

    /// A CIDv1 block from a digest the caller computed over `data` in this crate.
    pub(crate) fn from_digest(codec: u64, digest: &oai_core::Digest, data: Bytes) -> Result<Self> {
        check_size(&data)?;
        debug_assert_eq!(&oai_core::Digest::of(&data), digest);
        Ok(Self {
            cid: ids::cid_v1_of_digest(codec, digest),
            data,
        })
    }

    /// The CID.
    pub fn cid(&self) -> &Cid {
        &self.cid
    }

    /// The bytes.
    pub fn data(&self) -> &Bytes {
        &self.data
    }

    /// CID and bytes.
    pub fn into_parts(self) -> (Cid, Bytes) {
        (self.cid, self.data)
    }
}

fn check_size(bytes: &[u8]) -> Result<()> {
    if bytes.len() > MAX_BLOCK_SIZE {
        return Err(Error::BlockTooLarge {
            size: bytes.len(),
            limit: MAX_BLOCK_SIZE,
        });
    }
    Ok(())
}

/// Check `bytes` against `cid` and the block size limit: the gate of every get.
pub fn check_block(cid: &Cid, bytes: &[u8]) -> Result<()> {
    check_size(bytes)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_valid_by_construction() {
        let b = Block::new(ids::RAW, Bytes::from_static(b"abc")).unwrap();
        assert_eq!(b.cid(), &ids::cid_v1(ids::RAW, b"abc"));
        assert!(Block::verified(*b.cid(), Bytes::from_static(b"abc")).is_ok());
        match Block::verified(*b.cid(), Bytes::from_static(b"abd")) {
            Err(Error::CorruptBlock { cid, .. }) => assert_eq!(&cid, b.cid()),
            other => panic!("expected CorruptBlock, got {other:?}"),
        }
        assert!(matches!(
            Block::new(0x300, Bytes::new()),
            Err(Error::UnknownCodec(0x300))
        ));
        assert!(matches!(
            Block::new(ids::RAW, vec![0u8; MAX_BLOCK_SIZE + 1]),
            Err(Error::BlockTooLarge { .. })
        ));
        assert!(Block::new_v0(Bytes::new())
            .unwrap()
            .cid()
            .to_string()
            .starts_with("Qm"));
    }
}
