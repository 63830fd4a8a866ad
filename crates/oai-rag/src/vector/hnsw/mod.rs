use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashSet};
use std::sync::{Arc, RwLock};

use oai_core::{Cid, Digest};

use super::{check_dim, check_query, check_vector, dot, rank, Entry, Filter, Hit, VectorStore};

mod persist;
use crate::Result;

/// Parameters of an [`HnswStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HnswParams {
    /// Links per node on upper layers (twice as many on layer 0).
    pub m: usize,
    /// Candidate list size while inserting.
    pub ef_construction: usize,
    /// Candidate list size while searching (at least `k`).
    pub ef_search: usize,
}

impl Default for HnswParams {
    fn default() -> Self {
        Self {
            m: 16,
            ef_construction: 128,
            ef_search: 128,
        }
    }
}

/// Approximate nearest-neighbour search with a hierarchical navigable small-world graph
/// (Malkov & Yashunin), in memory. A node's layer is derived from its source CID, so the same
/// entries inserted in the same order build the same graph on every machine. Removed or
/// replaced entries become tombstones that searches skip. With a filter, the graph is searched
/// first; when fewer than `k` hits pass, the matching entries are scanned exactly.
/// [`HnswStore::save`] / [`HnswStore::load`] persist it through a `BlockStore`.
#[derive(Debug, Clone)]
pub struct HnswStore {
    dim: usize,
    params: HnswParams,
    graph: Arc<RwLock<Graph>>,
}

#[derive(Debug, Default)]
struct Graph {
    nodes: Vec<Node>,
    by_source: BTreeMap<Cid, u32>,
    entry: Option<u32>,
}

#[derive(Debug)]
struct Node {
    entry: Entry,
    /// Neighbour lists, one per layer `0..=level`.
    links: Vec<Vec<u32>>,
    removed: bool,
}

/// Candidate ordered by score (then index, so ties are deterministic).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Scored(f32, u32);

impl Eq for Scored {}
impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scored {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0
            .total_cmp(&other.0)
            .then_with(|| other.1.cmp(&self.1))
    }
}

impl HnswStore {
    /// An empty store of `dim`-dimensional vectors with default parameters; dimension 0 is
    /// [`crate::Error::InvalidInput`].
    pub fn new(dim: usize) -> Result<Self> {
        Self::with_params(dim, HnswParams::default())
    }

    /// An empty store with `params`; dimension 0 is [`crate::Error::InvalidInput`].
    pub fn with_params(dim: usize, params: HnswParams) -> Result<Self> {
        check_dim(dim)?;
        Ok(Self {
            dim,
            params: HnswParams {
                m: params.m.max(2),
                ef_construction: params.ef_construction.max(1),
                ef_search: params.ef_search.max(1),
            },
            graph: Arc::default(),
        })
    }
}

/// The layer of a node: geometric with ratio 1/m, drawn from the digest of its source CID.
fn level_of(source: &Cid, m: usize) -> usize {
    let d = Digest::of(&source.to_bytes());
    let u = (u64::from_le_bytes(d.0[..8].try_into().expect("8 bytes")) >> 11) as f64
        / (1u64 << 53) as f64;
    let ml = 1.0 / libm::log(m as f64);
    (-libm::log(1.0 - u) * ml) as usize
}

impl Graph {
    fn score(&self, q: &[f32], i: u32) -> f32 {
        dot(q, &self.nodes[i as usize].entry.vector)
    }

    /// Greedy best-first search of one layer from `starts`, keeping the `ef` best.
    fn search_layer(&self, q: &[f32], starts: &[u32], ef: usize, layer: usize) -> Vec<Scored> {
        let mut seen: HashSet<u32> = starts.iter().copied().collect();
        let mut candidates: BinaryHeap<Scored> = starts
            .iter()
            .map(|&i| Scored(self.score(q, i), i))
            .collect();
        let mut best: BinaryHeap<Reverse<Scored>> =
            candidates.iter().map(|&s| Reverse(s)).collect();
        while best.len() > ef {
            best.pop();
        }
        while let Some(c) = candidates.pop() {
            let worst = best.peek().map(|r| r.0 .0).unwrap_or(f32::NEG_INFINITY);
            if best.len() >= ef && c.0 < worst {
                break;
            }
            for &n in &self.nodes[c.1 as usize].links[layer] {
                if !seen.insert(n) {
                    continue;
                }
                let s = Scored(self.score(q, n), n);
                let worst = best.peek().map(|r| r.0 .0).unwrap_or(f32::NEG_INFINITY);
                if best.len() < ef || s.0 > worst {
                    candidates.push(s);
                    best.push(Reverse(s));
                    if best.len() > ef {
                        best.pop();
                    }
                }
            }
        }
        let mut out: Vec<Scored> = best.into_iter().map(|r| r.0).collect();
        out.sort_by(|a, b| b.cmp(a));
        out
    }

    /// Greedy descent from the entry point `ep` through the layers above `down_to - 1`: the
    /// node nearest `q` on layer `down_to` (or `ep` when it has no such layer).
    fn descend(&self, q: &[f32], mut ep: u32, down_to: usize) -> u32 {
        let top = self.nodes[ep as usize].links.len() - 1;
        for layer in (down_to..=top).rev() {
            ep = self.search_layer(q, &[ep], 1, layer)[0].1;
        }
        ep
    }

    /// The paper's neighbour heuristic: take candidates best first, skipping one that is
    /// closer to an already chosen neighbour than to the base node (keeps links diverse).
    fn select(&self, candidates: &[Scored], m: usize) -> Vec<u32> {
        let mut chosen: Vec<u32> = Vec::with_capacity(m);
        for c in candidates {
            if chosen.len() == m {
                break;
            }
            let v = &self.nodes[c.1 as usize].entry.vector;
            if chosen
                .iter()
                .all(|&o| dot(v, &self.nodes[o as usize].entry.vector) < c.0)
            {
                chosen.push(c.1);
            }
        }
        // Fill up with the best skipped ones so sparse regions keep enough links.
        for c in candidates {
            if chosen.len() == m {
                break;
            }
            if !chosen.contains(&c.1) {
                chosen.push(c.1);
            }
        }
        chosen
    }

    fn insert(&mut self, entry: Entry, p: &HnswParams) {
        if let Some(&old) = self.by_source.get(&entry.source) {
            self.nodes[old as usize].removed = true;
        }
        let level = level_of(&entry.source, p.m);
        let id = self.nodes.len() as u32;
        let q = entry.vector.clone();
        self.by_source.insert(entry.source, id);
        self.nodes.push(Node {
            entry,
            links: vec![Vec::new(); level + 1],
            removed: false,
        });
        let Some(mut ep) = self.entry else {
            self.entry = Some(id);
            return;
        };
        let top = self.nodes[ep as usize].links.len() - 1;
        ep = self.descend(&q, ep, level + 1);
        let mut starts = vec![ep];
        for layer in (0..=level.min(top)).rev() {
            let found = self.search_layer(&q, &starts, p.ef_construction, layer);
            let max = if layer == 0 { 2 * p.m } else { p.m };
            let neighbours = self.select(&found, p.m);
            self.nodes[id as usize].links[layer] = neighbours.clone();
            for n in neighbours {
                self.nodes[n as usize].links[layer].push(id);
                if self.nodes[n as usize].links[layer].len() > max {
                    let base = self.nodes[n as usize].entry.vector.clone();
                    let mut cands: Vec<Scored> = self.nodes[n as usize].links[layer]
                        .iter()
                        .map(|&o| Scored(self.score(&base, o), o))
                        .collect();
                    cands.sort_by(|a, b| b.cmp(a));
                    let kept = self.select(&cands, max);
                    self.nodes[n as usize].links[layer] = kept;
                }
            }
            starts = found.iter().map(|s| s.1).collect();
        }
        if level > top {
            self.entry = Some(id);
        }
    }

    fn hit(&self, i: u32, score: f32) -> Hit {
        let e = &self.nodes[i as usize].entry;
        Hit {
            source: e.source,
            score,
            meta: e.meta.clone(),
        }
    }

    fn search(&self, q: &[f32], k: usize, filter: Option<&Filter>, ef: usize) -> Vec<Hit> {
        let Some(ep) = self.entry else {
            return Vec::new();
        };
        let ep = self.descend(q, ep, 1);
        let live = |i: u32| {
            let n = &self.nodes[i as usize];
            !n.removed && filter.is_none_or(|f| f.matches(&n.entry.meta))
        };
        let mut hits: Vec<Hit> = self
            .search_layer(q, &[ep], ef.max(k), 0)
            .into_iter()
            .filter(|s| live(s.1))
            .map(|s| self.hit(s.1, s.0))
            .collect();
        if hits.len() < k {
            // Too few pass (a selective filter, many tombstones or a small index): scan the
            // matching entries exactly.
            hits = self
                .by_source
                .values()
                .filter(|&&i| live(i))
                .map(|&i| self.hit(i, self.score(q, i)))
                .collect();
        }
        rank(&mut hits);
        hits.truncate(k);
        hits
    }
}

#[async_trait::async_trait]
impl VectorStore for HnswStore {
    fn dim(&self) -> usize {
        self.dim
    }

    async fn upsert(&self, entries: Vec<Entry>) -> Result<()> {
        for e in &entries {
            check_vector(self.dim, &e.vector)?;
        }
        let mut g = self.graph.write().expect("hnsw lock");
        for e in entries {
            g.insert(e, &self.params);
        }
        Ok(())
    }

    async fn remove(&self, sources: &[Cid]) -> Result<()> {
        let mut g = self.graph.write().expect("hnsw lock");
        for s in sources {
            if let Some(i) = g.by_source.remove(s) {
                g.nodes[i as usize].removed = true;
            }
        }
        Ok(())
    }

    async fn search(&self, query: &[f32], k: usize, filter: Option<&Filter>) -> Result<Vec<Hit>> {
        check_query(self.dim, query, k)?;
        let g = self.graph.read().expect("hnsw lock");
        Ok(g.search(query, k, filter, self.params.ef_search))
    }

    async fn contains(&self, source: &Cid) -> Result<bool> {
        Ok(self
            .graph
            .read()
            .expect("hnsw lock")
            .by_source
            .contains_key(source))
    }

    async fn len(&self) -> Result<usize> {
        Ok(self.graph.read().expect("hnsw lock").by_source.len())
    }
}
