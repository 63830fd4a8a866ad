//! Saving an [`HnswStore`] to a [`BlockStore`] and loading it back, every block verified.
//!
//! Layout (DAG-CBOR): an index block `{format, dim, m, ef_construction, ef_search, entry,
//! count, pages: [link]}` and pages of at most [`NODES_PER_PAGE`] nodes
//! `{source (CID bytes), vector (f32 LE bytes), meta, links: [[u32]], removed}`, each page
//! well under the 2 MiB block limit for 384-dimensional vectors. Source CIDs are stored as
//! bytes, not links: they name chunks of datasets that live elsewhere.

use std::collections::BTreeMap;

use oai_core::{ids, Cid};
use oai_data::BlockStore;
use serde::{Deserialize, Serialize};

use super::{Graph, HnswParams, HnswStore, Node};
use crate::vector::{check_vector, Entry};
use crate::{Error, Result};

/// Nodes per page block.
pub const NODES_PER_PAGE: usize = 512;
const FORMAT: &str = "oai-hnsw/1";

#[derive(Serialize, Deserialize)]
struct IndexBlock {
    format: String,
    dim: u64,
    m: u64,
    ef_construction: u64,
    ef_search: u64,
    entry: Option<u32>,
    count: u64,
    pages: Vec<Cid>,
}

#[derive(Serialize, Deserialize)]
struct PageNode {
    #[serde(with = "serde_bytes")]
    source: Vec<u8>,
    #[serde(with = "serde_bytes")]
    vector: Vec<u8>,
    meta: BTreeMap<String, String>,
    links: Vec<Vec<u32>>,
    removed: bool,
}

fn malformed(reason: impl std::fmt::Display) -> Error {
    Error::Index(reason.to_string())
}

impl HnswStore {
    /// Store the index (graph, vectors, metadata) in `store`; returns the index block's CID.
    pub async fn save<S: BlockStore + ?Sized>(&self, store: &S) -> Result<Cid> {
        let (pages, entry, count) = {
            let g = self.graph.read().expect("hnsw lock");
            let pages: Vec<Vec<u8>> = g
                .nodes
                .chunks(NODES_PER_PAGE)
                .map(|chunk| {
                    let nodes: Vec<PageNode> = chunk
                        .iter()
                        .map(|n| PageNode {
                            source: n.entry.source.to_bytes(),
                            vector: n
                                .entry
                                .vector
                                .iter()
                                .flat_map(|v| v.to_le_bytes())
                                .collect(),
                            meta: n.entry.meta.clone(),
                            links: n.links.clone(),
                            removed: n.removed,
                        })
                        .collect();
                    serde_ipld_dagcbor::to_vec(&nodes).map_err(malformed)
                })
                .collect::<Result<_>>()?;
            (pages, g.entry, g.nodes.len() as u64)
        };
        let mut links = Vec::with_capacity(pages.len());
        for p in pages {
            links.push(store.put(ids::DAG_CBOR, p.into()).await?);
        }
        let index = IndexBlock {
            format: FORMAT.into(),
            dim: self.dim as u64,
            m: self.params.m as u64,
            ef_construction: self.params.ef_construction as u64,
            ef_search: self.params.ef_search as u64,
            entry,
            count,
            pages: links,
        };
        let bytes = serde_ipld_dagcbor::to_vec(&index).map_err(malformed)?;
        Ok(store.put(ids::DAG_CBOR, bytes.into()).await?)
    }

    /// Load an index saved by [`HnswStore::save`]. Blocks are verified by the store; a block
    /// that decodes to something else than an index, a vector of the wrong size, a link to a
    /// node that does not exist or a wrong count is [`Error::Index`].
    pub async fn load<S: BlockStore + ?Sized>(store: &S, cid: &Cid) -> Result<Self> {
        let index: IndexBlock =
            serde_ipld_dagcbor::from_slice(&store.get(cid).await?).map_err(malformed)?;
        if index.format != FORMAT {
            return Err(malformed(format!(
                "format {:?}, want {FORMAT:?}",
                index.format
            )));
        }
        let dim = index.dim as usize;
        let mut g = Graph::default();
        for page in &index.pages {
            let nodes: Vec<PageNode> =
                serde_ipld_dagcbor::from_slice(&store.get(page).await?).map_err(malformed)?;
            for n in nodes {
                if n.vector.len() != dim * 4 {
                    return Err(malformed(format!(
                        "a vector of {} bytes in an index of dimension {dim}",
                        n.vector.len()
                    )));
                }
                let vector: Vec<f32> = n
                    .vector
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                check_vector(dim, &vector)?;
                if n.links.is_empty() {
                    return Err(malformed("a node without layers"));
                }
                let source = Cid::try_from(n.source.as_slice()).map_err(malformed)?;
                let id = g.nodes.len() as u32;
                if !n.removed {
                    g.by_source.insert(source, id);
                }
                g.nodes.push(Node {
                    entry: Entry {
                        source,
                        vector,
                        meta: n.meta,
                    },
                    links: n.links,
                    removed: n.removed,
                });
            }
        }
        let len = g.nodes.len();
        if len as u64 != index.count {
            return Err(malformed(format!(
                "{len} nodes, the index says {}",
                index.count
            )));
        }
        let valid = |i: u32| (i as usize) < len;
        if g.nodes
            .iter()
            .flat_map(|n| n.links.iter().flatten())
            .any(|&i| !valid(i))
            || index.entry.is_some_and(|e| !valid(e))
            || (index.entry.is_none() && len > 0)
        {
            return Err(malformed("a link or the entry point names no node"));
        }
        g.entry = index.entry;
        let params = HnswParams {
            m: index.m as usize,
            ef_construction: index.ef_construction as usize,
            ef_search: index.ef_search as usize,
        };
        let s = HnswStore::with_params(dim, params)?;
        *s.graph.write().expect("hnsw lock") = g;
        Ok(s)
    }
}
