use bytes::Bytes;
use oai_core::{ids, Cid};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::pb::{DataType, PbLink, PbNode, UnixFsData};
use super::Profile;
use crate::store::Block;
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

async fn put_node<S: BlockStore + ?Sized>(
    store: &S,
    profile: Profile,
    bytes: Vec<u8>,
) -> Result<Cid> {
    let block = if profile.cid_version() == 0 {
        Block::new_v0(bytes)?
    } else {
        Block::new(ids::DAG_PB, bytes)?
    };
    let cid = *block.cid();
    store.put_block(block).await?;
    Ok(cid)
}

async fn put_leaf<S: BlockStore + ?Sized>(
    store: &S,
    profile: Profile,
    chunk: &[u8],
) -> Result<Child> {
    if profile.raw_leaves() {
        let cid = store.put(ids::RAW, Bytes::copy_from_slice(chunk)).await?;
        return Ok(Child {
            cid,
            file_size: chunk.len() as u64,
            dag_size: chunk.len() as u64,
        });
    }
    let data = UnixFsData {
        kind: DataType::File,
        data: (!chunk.is_empty()).then(|| chunk.to_vec()),
        filesize: Some(chunk.len() as u64),
        blocksizes: vec![],
    };
    let block = PbNode {
        links: vec![],
        data: Some(data.encode()),
    }
    .encode();
    let dag_size = block.len() as u64;
    let cid = put_node(store, profile, block).await?;
    Ok(Child {
        cid,
        file_size: chunk.len() as u64,
        dag_size,
    })
}

async fn put_parent<S: BlockStore + ?Sized>(
    store: &S,
    profile: Profile,
    children: &[Child],
) -> Result<Child> {
    let file_size = children.iter().map(|c| c.file_size).sum();
    let data = UnixFsData {
        kind: DataType::File,
        data: None,
        filesize: Some(file_size),
        blocksizes: children.iter().map(|c| c.file_size).collect(),
    };
    let node = PbNode {
        links: children
            .iter()
            .map(|c| PbLink {
                hash: c.cid.to_bytes(),
                name: String::new(),
                tsize: c.dag_size,
            })
            .collect(),
        data: Some(data.encode()),
    };
    let block = node.encode();
    let dag_size = block.len() as u64 + children.iter().map(|c| c.dag_size).sum::<u64>();
    let cid = put_node(store, profile, block).await?;
    Ok(Child {
        cid,
        file_size,
        dag_size,
    })
}

/// Fill `buf` from `reader` until it is full or the input ends; returns the bytes read.
async fn read_full<R: AsyncRead + Unpin>(reader: &mut R, buf: &mut [u8]) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        let k = reader.read(&mut buf[n..]).await?;
        if k == 0 {
            break;
        }
        n += k;
    }
    Ok(n)
}

/// Import a file from `reader` into `store` as a balanced UnixFS DAG.
///
/// Memory: one chunk plus at most `max_links` pending links per tree level.
pub async fn import<S, R>(store: &S, mut reader: R, profile: Profile) -> Result<Imported>
where
    S: BlockStore + ?Sized,
    R: AsyncRead + Unpin,
{
    let max = profile.max_links();
    let mut buf = vec![0u8; profile.chunk_size()];
    // levels[0] holds leaves, levels[i] nodes of height i, each not yet grouped into a parent
    let mut levels: Vec<Vec<Child>> = vec![Vec::new()];
    let mut first = true;
    loop {
        let n = read_full(&mut reader, &mut buf).await?;
        if n == 0 && !first {
            break;
        }
        first = false;
        let leaf = put_leaf(store, profile, &buf[..n]).await?;
        levels[0].push(leaf);
        let mut h = 0;
        while levels[h].len() == max {
            let parent = put_parent(store, profile, &levels[h]).await?;
            levels[h].clear();
            if levels.len() == h + 1 {
                levels.push(Vec::new());
            }
            levels[h + 1].push(parent);
            h += 1;
        }
        if n < buf.len() {
            break;
        }
    }
    // collapse: each level's leftovers become one node on the level above, until one root
    let mut h = 0;
    loop {
        let top = h + 1 == levels.len();
        if top && levels[h].len() == 1 {
            let root = levels[h][0];
            return Ok(Imported {
                root: root.cid,
                size: root.file_size,
                dag_size: root.dag_size,
            });
        }
        if !levels[h].is_empty() {
            let parent = put_parent(store, profile, &levels[h]).await?;
            levels[h].clear();
            if top {
                levels.push(Vec::new());
            }
            levels[h + 1].push(parent);
        }
        h += 1;
    }
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
