use bytes::Bytes;
use futures::{Stream, TryStreamExt};
use oai_core::{ids, Cid};

use super::pb::{DataType, PbNode, UnixFsData};
use crate::{BlockStore, Error, Result};

struct Walk<S> {
    store: S,
    /// Nodes still to visit, last = next, each with the file size its parent promised.
    stack: Vec<(Cid, Option<u64>)>,
}

/// Stream the bytes of the UnixFS file (or raw block) `root`, verifying every block.
///
/// Errors: a missing block is [`Error::NotFound`], a block of an unknown codec
/// [`Error::UnknownCodec`], a node whose sizes disagree with its children
/// [`Error::Truncated`], a directory or garbage node [`Error::Malformed`].
pub fn cat<S: BlockStore + Clone + 'static>(
    store: S,
    root: Cid,
) -> impl Stream<Item = Result<Bytes>> + Send + 'static {
    let walk = Walk {
        store,
        stack: vec![(root, None)],
    };
    futures::stream::try_unfold(walk, |mut w| async move {
        while let Some((cid, expect)) = w.stack.pop() {
            let block = w.store.get(&cid).await?;
            let (bytes, children) = decode_file_node(&cid, block)?;
            let size = match &children {
                Some(kids) => kids
                    .iter()
                    .try_fold(0u64, |sum, (_, s)| sum.checked_add(*s))
                    .ok_or_else(|| Error::Malformed {
                        what: "UnixFS node",
                        reason: format!("{cid}: its children's sizes add up past 2^64 bytes"),
                    })?,
                None => bytes.len() as u64,
            };
            if let Some(e) = expect {
                if e != size {
                    return Err(Error::Truncated {
                        what: "UnixFS file",
                        detail: format!("{cid} holds {size} bytes, its parent says {e}"),
                    });
                }
            }
            if let Some(kids) = children {
                w.stack
                    .extend(kids.into_iter().rev().map(|(c, s)| (c, Some(s))));
            }
            if !bytes.is_empty() {
                return Ok(Some((bytes, w)));
            }
        }
        Ok(None)
    })
}

type Children = Option<Vec<(Cid, u64)>>;

/// The inline bytes of a file node and, for inner nodes, its children with their file sizes.
fn decode_file_node(cid: &Cid, block: Bytes) -> Result<(Bytes, Children)> {
    match cid.codec() {
        ids::RAW => Ok((block, None)),
        ids::DAG_PB => {
            let node = PbNode::decode(&block)?;
            let data =
                UnixFsData::decode(node.data.as_deref().ok_or_else(|| Error::Malformed {
                    what: "UnixFS node",
                    reason: format!("{cid} has no Data"),
                })?)?;
            if data.kind == DataType::Directory {
                return Err(Error::Malformed {
                    what: "UnixFS node",
                    reason: format!("{cid} is a directory, not a file"),
                });
            }
            let inline = Bytes::from(data.data.unwrap_or_default());
            if node.links.is_empty() {
                return Ok((inline, None));
            }
            if node.links.len() != data.blocksizes.len() {
                return Err(Error::Malformed {
                    what: "UnixFS node",
                    reason: format!(
                        "{cid}: {} links but {} blocksizes",
                        node.links.len(),
                        data.blocksizes.len()
                    ),
                });
            }
            let kids = node
                .links
                .iter()
                .zip(&data.blocksizes)
                .map(|(l, s)| Ok((ids::from_bytes(&l.hash)?, *s)))
                .collect::<Result<Vec<_>>>()?;
            if kids.iter().any(|(_, s)| *s == 0) {
                // no importer links an empty child; walking them costs visits without bytes,
                // so a DAG of them could take any time to read nothing
                return Err(Error::Malformed {
                    what: "UnixFS node",
                    reason: format!("{cid} links a child of 0 bytes"),
                });
            }
            if !inline.is_empty() {
                return Err(Error::Malformed {
                    what: "UnixFS node",
                    reason: format!("{cid} has both data and links"),
                });
            }
            Ok((inline, Some(kids)))
        }
        other => Err(Error::UnknownCodec(other)),
    }
}

/// The size the UnixFS file (or raw block) `root` declares: its children's sizes added up, or
/// its own bytes. One block is read; [`cat`] checks the rest against it.
pub async fn declared_size<S: BlockStore + ?Sized>(store: &S, root: &Cid) -> Result<u64> {
    let (bytes, children) = decode_file_node(root, store.get(root).await?)?;
    match children {
        Some(kids) => kids
            .iter()
            .try_fold(0u64, |sum, (_, s)| sum.checked_add(*s))
            .ok_or_else(|| Error::Malformed {
                what: "UnixFS node",
                reason: format!("{root}: its children's sizes add up past 2^64 bytes"),
            }),
        None => Ok(bytes.len() as u64),
    }
}

/// Read a UnixFS file of at most `limit` bytes into memory (see [`cat`]). A file whose root
/// declares more is [`Error::TooLarge`] before any other block is read: a DAG that links one
/// child many times, its size doubling with every level, costs one block, not its size. Every
/// node's size is checked against its parent's as the file streams, so no more than the
/// declared size is ever read.
pub async fn read_to_vec_within<S: BlockStore + Clone + 'static>(
    store: &S,
    root: &Cid,
    what: &'static str,
    limit: u64,
) -> Result<Vec<u8>> {
    let size = declared_size(store, root).await?;
    if size > limit {
        return Err(Error::TooLarge { what, size, limit });
    }
    read_to_vec(store, root).await
}

/// Read a whole UnixFS file into memory (see [`cat`]); from a peer, bound it with
/// [`read_to_vec_within`].
pub async fn read_to_vec<S: BlockStore + Clone + 'static>(
    store: &S,
    root: &Cid,
) -> Result<Vec<u8>> {
    cat(store.clone(), *root)
        .try_fold(Vec::new(), |mut acc, b| async move {
            acc.extend_from_slice(&b);
            Ok(acc)
        })
        .await
}
