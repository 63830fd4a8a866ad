use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use oai_core::Cid;

use super::{check_dim, check_query, check_vector, dot, rank, Entry, Filter, Hit, VectorStore};
use crate::Result;

/// Exact search over every entry, in memory: `O(n·dim)` per query, recall 1. The reference
/// that approximate indexes are measured against, and fine for small collections.
#[derive(Debug, Clone)]
pub struct FlatStore {
    dim: usize,
    entries: Arc<RwLock<BTreeMap<Cid, Entry>>>,
}

impl FlatStore {
    /// An empty store of `dim`-dimensional vectors; dimension 0 is [`crate::Error::InvalidInput`].
    pub fn new(dim: usize) -> Result<Self> {
        check_dim(dim)?;
        Ok(Self {
            dim,
            entries: Arc::default(),
        })
    }
}

#[async_trait::async_trait]
impl VectorStore for FlatStore {
    fn dim(&self) -> usize {
        self.dim
    }

    async fn upsert(&self, entries: Vec<Entry>) -> Result<()> {
        for e in &entries {
            check_vector(self.dim, &e.vector)?;
        }
        let mut map = self.entries.write().expect("flat store lock");
        for e in entries {
            map.insert(e.source, e);
        }
        Ok(())
    }

    async fn remove(&self, sources: &[Cid]) -> Result<()> {
        let mut map = self.entries.write().expect("flat store lock");
        for s in sources {
            map.remove(s);
        }
        Ok(())
    }

    async fn search(&self, query: &[f32], k: usize, filter: Option<&Filter>) -> Result<Vec<Hit>> {
        check_query(self.dim, query, k)?;
        let map = self.entries.read().expect("flat store lock");
        let mut hits: Vec<Hit> = map
            .values()
            .filter(|e| filter.is_none_or(|f| f.matches(&e.meta)))
            .map(|e| Hit {
                source: e.source,
                score: dot(query, &e.vector),
                meta: e.meta.clone(),
            })
            .collect();
        rank(&mut hits);
        hits.truncate(k);
        Ok(hits)
    }

    async fn contains(&self, source: &Cid) -> Result<bool> {
        Ok(self
            .entries
            .read()
            .expect("flat store lock")
            .contains_key(source))
    }

    async fn len(&self) -> Result<usize> {
        Ok(self.entries.read().expect("flat store lock").len())
    }
}
