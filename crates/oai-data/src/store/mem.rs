use async_trait::async_trait;
use bytes::Bytes;
use oai_core::Cid;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use super::{check_block, check_ref_name, Block, BlockStore, RefStore};
use crate::{Error, Result};

/// An in-memory block and ref store. Cheap to clone (clones share the same data).
#[derive(Debug, Default, Clone)]
pub struct MemStore {
    blocks: Arc<Mutex<HashMap<Cid, Bytes>>>,
    refs: Arc<Mutex<BTreeMap<String, Cid>>>,
}

impl MemStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Total bytes of all blocks stored.
    pub fn total_bytes(&self) -> u64 {
        let blocks = self.blocks.lock().expect("mem store lock");
        blocks.values().map(|b| b.len() as u64).sum()
    }

    /// Overwrite a block's bytes without any check: only for tests of corruption handling.
    #[doc(hidden)]
    pub fn corrupt_for_test(&self, cid: &Cid, bytes: Bytes) {
        self.blocks
            .lock()
            .expect("mem store lock")
            .insert(*cid, bytes);
    }
}

#[async_trait]
impl BlockStore for MemStore {
    async fn put_block(&self, block: Block) -> Result<()> {
        let (cid, bytes) = block.into_parts();
        self.blocks
            .lock()
            .expect("mem store lock")
            .entry(cid)
            .or_insert(bytes);
        Ok(())
    }

    async fn get(&self, cid: &Cid) -> Result<Bytes> {
        let b = self
            .blocks
            .lock()
            .expect("mem store lock")
            .get(cid)
            .cloned()
            .ok_or(Error::NotFound(*cid))?;
        check_block(cid, &b)?;
        Ok(b)
    }

    async fn has(&self, cid: &Cid) -> Result<bool> {
        Ok(self
            .blocks
            .lock()
            .expect("mem store lock")
            .contains_key(cid))
    }

    async fn delete(&self, cid: &Cid) -> Result<()> {
        self.blocks.lock().expect("mem store lock").remove(cid);
        Ok(())
    }

    async fn list(&self) -> Result<Vec<Cid>> {
        Ok(self
            .blocks
            .lock()
            .expect("mem store lock")
            .keys()
            .copied()
            .collect())
    }
}

#[async_trait]
impl RefStore for MemStore {
    async fn get_ref(&self, name: &str) -> Result<Option<Cid>> {
        check_ref_name(name)?;
        Ok(self.refs.lock().expect("mem store lock").get(name).copied())
    }

    async fn compare_and_swap(
        &self,
        name: &str,
        expected: Option<Cid>,
        new: Option<Cid>,
    ) -> Result<()> {
        check_ref_name(name)?;
        let mut refs = self.refs.lock().expect("mem store lock");
        let actual = refs.get(name).copied();
        if actual != expected {
            return Err(Error::cas_conflict(name, expected, actual));
        }
        match new {
            Some(c) => refs.insert(name.to_string(), c),
            None => refs.remove(name),
        };
        Ok(())
    }

    async fn list_refs(&self) -> Result<Vec<(String, Cid)>> {
        Ok(self
            .refs
            .lock()
            .expect("mem store lock")
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect())
    }
}
