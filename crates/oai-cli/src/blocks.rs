//! Where a command's blocks live: the filesystem store (`--store`), or an IPFS node (`--ipfs
//! URL`) with the heads kept in the filesystem store.

use oai::core::Cid;
use oai::data::store::Block;
use oai::data::store::IpfsStore;
use oai::data::{BlockStore, FsStore, Result};

/// The block store of a command.
#[derive(Debug, Clone)]
pub enum Blocks {
    /// The filesystem store.
    Fs(FsStore),
    /// An IPFS node over its RPC API.
    Ipfs(IpfsStore),
}

#[async_trait::async_trait]
impl BlockStore for Blocks {
    async fn put_block(&self, block: Block) -> Result<()> {
        match self {
            Self::Fs(s) => s.put_block(block).await,
            Self::Ipfs(s) => s.put_block(block).await,
        }
    }

    async fn get(&self, cid: &Cid) -> Result<bytes::Bytes> {
        match self {
            Self::Fs(s) => s.get(cid).await,
            Self::Ipfs(s) => s.get(cid).await,
        }
    }

    async fn has(&self, cid: &Cid) -> Result<bool> {
        match self {
            Self::Fs(s) => s.has(cid).await,
            Self::Ipfs(s) => s.has(cid).await,
        }
    }

    async fn delete(&self, cid: &Cid) -> Result<()> {
        match self {
            Self::Fs(s) => s.delete(cid).await,
            Self::Ipfs(s) => s.delete(cid).await,
        }
    }

    async fn list(&self) -> Result<Vec<Cid>> {
        match self {
            Self::Fs(s) => s.list().await,
            Self::Ipfs(s) => s.list().await,
        }
    }
}
