use oai_core::{ids, Cid};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::Profile;
use crate::store::{Block, PutQueue};
use crate::{BlockStore, Result};

/// The outcome of an import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Imported {
    /// Root CID of the file.
    pub root: Cid,
    /// File size in bytes.
    pub size: u64,
    /// Cumulative size of the DAG (all blocks), as IPFS reports it.
    pub dag_size: u64,
}

/// A child of a node being built.
#[derive(Debug, Clone, Copy)]
struct Child {
    cid: Cid,
    file_size: u64,
    dag_size: u64,
}

async fn put_node<'a, S: BlockStore + ?Sized>(
    puts: &mut PutQueue<'a>,
    store: &'a S,
    profile: Profile,
    bytes: Vec<u8>,
) -> Result<Cid> {
    let block = node_block(profile, bytes)?;
    let cid = *block.cid();
    puts.put(store, block).await?;
    Ok(cid)
}

/// A dag-pb block under the profile's CID version.
fn node_block(profile: Profile, bytes: Vec<u8>) -> Result<Block> {
    if profile.cid_version() == 0 {
        Block::new_v0(bytes)
    } else {
        Block::new(ids::DAG_PB, bytes)
    }
}

/// Build a leaf block from one chunk (pure CPU: hashing, and wrapping for dag-pb leaves).
fn make_leaf(profile: Profile, chunk: Vec<u8>) -> Result<(Block, Child)> {
    let file_size = chunk.len() as u64;
    let block = if profile.raw_leaves() {
        Block::new(ids::RAW, chunk)?
    } else {
        node_block(profile, super::pb::file_leaf_node(&chunk))?
    };
    let child = Child {
        cid: *block.cid(),
        file_size,
        dag_size: block.data().len() as u64,
    };
    Ok((block, child))
}

async fn put_parent<'a, S: BlockStore + ?Sized>(
    puts: &mut PutQueue<'a>,
    store: &'a S,
    profile: Profile,
    children: &[Child],
) -> Result<Child> {
    let file_size = children.iter().map(|c| c.file_size).sum();
    let links: Vec<_> = children
        .iter()
        .map(|c| (c.cid, c.file_size, c.dag_size))
        .collect();
    let block = super::pb::file_node(&links);
    let dag_size = block.len() as u64 + children.iter().map(|c| c.dag_size).sum::<u64>();
    let cid = put_node(puts, store, profile, block).await?;
    Ok(Child {
        cid,
        file_size,
        dag_size,
    })
}

/// Leaves being hashed on blocking threads while the next chunk is read: bounds memory to
/// `LEAVES_IN_FLIGHT + 1` chunks and lets import use a second core.
const LEAVES_IN_FLIGHT: usize = 3;

/// Pending links of a balanced tree under construction, one list per height.
struct Tree<'a, S: ?Sized> {
    store: &'a S,
    puts: PutQueue<'a>,
    profile: Profile,
    levels: Vec<Vec<Child>>,
}

impl<'a, S: BlockStore + ?Sized> Tree<'a, S> {
    /// Add a leaf; every level that reaches `max_links` becomes a node one level up.
    async fn push_leaf(&mut self, block: Block, leaf: Child) -> Result<()> {
        self.puts.put(self.store, block).await?;
        self.levels[0].push(leaf);
        let mut h = 0;
        while self.levels[h].len() == self.profile.max_links() {
            let parent =
                put_parent(&mut self.puts, self.store, self.profile, &self.levels[h]).await?;
            self.levels[h].clear();
            if self.levels.len() == h + 1 {
                self.levels.push(Vec::new());
            }
            self.levels[h + 1].push(parent);
            h += 1;
        }
        Ok(())
    }

    /// Collapse: each level's leftovers become one node on the level above, until one root.
    async fn finish(mut self) -> Result<Child> {
        let mut h = 0;
        loop {
            let top = h + 1 == self.levels.len();
            if top && self.levels[h].len() == 1 {
                self.puts.drain().await?;
                return Ok(self.levels[h][0]);
            }
            if !self.levels[h].is_empty() {
                let parent =
                    put_parent(&mut self.puts, self.store, self.profile, &self.levels[h]).await?;
                self.levels[h].clear();
                if top {
                    self.levels.push(Vec::new());
                }
                self.levels[h + 1].push(parent);
            }
            h += 1;
        }
    }
}

async fn hashed_leaf(
    job: tokio::task::JoinHandle<Result<(Block, Child)>>,
) -> Result<(Block, Child)> {
    job.await
        .map_err(|e| crate::Error::Io(std::io::Error::other(format!("hashing task failed: {e}"))))?
}

/// Import a file from `reader` into `store` as a balanced UnixFS DAG.
///
/// Memory: a few chunks in flight plus at most `max_links` pending links per tree level.
/// Leaves are hashed on Tokio's blocking threads, in parallel with reading; the result does
/// not depend on scheduling.
pub async fn import<S, R>(store: &S, mut reader: R, profile: Profile) -> Result<Imported>
where
    S: BlockStore + ?Sized,
    R: AsyncRead + Unpin,
{
    let chunk_size = profile.chunk_size();
    let mut tree = Tree {
        store,
        puts: PutQueue::new(PutQueue::DEFAULT_LIMIT),
        profile,
        levels: vec![Vec::new()],
    };
    let mut in_flight = std::collections::VecDeque::new();
    let mut first = true;
    loop {
        let mut chunk = Vec::with_capacity(chunk_size);
        (&mut reader)
            .take(chunk_size as u64)
            .read_to_end(&mut chunk)
            .await?;
        let n = chunk.len();
        if n == 0 && !first {
            break;
        }
        first = false;
        in_flight.push_back(tokio::task::spawn_blocking(move || {
            make_leaf(profile, chunk)
        }));
        if in_flight.len() > LEAVES_IN_FLIGHT {
            let (block, leaf) = hashed_leaf(in_flight.pop_front().expect("non-empty")).await?;
            tree.push_leaf(block, leaf).await?;
        }
        if n < chunk_size {
            break;
        }
    }
    while let Some(job) = in_flight.pop_front() {
        let (block, leaf) = hashed_leaf(job).await?;
        tree.push_leaf(block, leaf).await?;
    }
    let root = tree.finish().await?;
    Ok(Imported {
        root: root.cid,
        size: root.file_size,
        dag_size: root.dag_size,
    })
}

/// Import an in-memory byte slice (see [`import`]).
pub async fn import_bytes<S: BlockStore + ?Sized>(
    store: &S,
    bytes: &[u8],
    profile: Profile,
) -> Result<Imported> {
    import(store, bytes, profile).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemStore;

    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i % 251) as u8).collect()
    }

    #[tokio::test]
    async fn default_profile_matches_ipfs_vectors() {
        let s = MemStore::new();
        let r = import_bytes(&s, &pattern(100), Profile::default())
            .await
            .unwrap();
        assert_eq!(
            r.root.to_string(),
            "bafkreif44cx7dhhvvjvhi2ndbvq5atsdo3slx5rycbjo5ht7gojfzfknki"
        );
        let r = import_bytes(&s, &pattern(1 << 20), Profile::default())
            .await
            .unwrap();
        assert_eq!(
            r.root.to_string(),
            "bafybeiedpcapwld4tkgtzwahfofgn4wex5ryysf4se6hwpmlrsh4ntnrau"
        );
        assert_eq!(r.size, 1 << 20);
    }

    #[tokio::test]
    async fn empty_files_match_ipfs() {
        let s = MemStore::new();
        let v1 = import_bytes(&s, b"", Profile::KuboCidV1).await.unwrap();
        assert_eq!(
            v1.root.to_string(),
            "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
        );
        let v0 = import_bytes(&s, b"", Profile::UnixfsV0_2015).await.unwrap();
        assert_eq!(
            v0.root.to_string(),
            "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"
        );
    }
}
