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

/// Read a whole UnixFS file into memory (see [`cat`]).
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
