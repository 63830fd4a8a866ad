//! [`Builder`]: a dataset version built from records, streaming.

use bytes::Bytes;
use oai_core::{ids, merkle::MerkleTree, Cid, Digest};

use std::collections::BTreeMap;

use super::chunker::cut_page;
use super::manifest::{chunk_leaf, ChunkRef, Manifest, PageRef, FORMAT, MAX_TOP_PAGES};
use super::record::Encoded;
use super::{Chunking, Record, Version};
use crate::store::{Block, PutQueue};
use crate::{BlockStore, Result};

/// Builds a dataset version from records, streaming: only the current chunk and page are held.
#[derive(Debug)]
pub struct Builder<'a, S: ?Sized> {
    store: &'a S,
    puts: PutQueue<'a>,
    chunking: Chunking,
    schema: String,
    pub(super) metadata: BTreeMap<String, String>,
    parent: Option<Cid>,
    current: Vec<Encoded>,
    current_bytes: u64,
    page: Vec<ChunkRef>,
    pages: Vec<PageRef>,
    leaves: Vec<Digest>,
    records: u64,
    bytes: u64,
}

impl<'a, S: BlockStore + ?Sized> Builder<'a, S> {
    /// A builder writing into `store` with default chunking and no parent.
    pub fn new(store: &'a S) -> Self {
        Self {
            store,
            puts: PutQueue::new(PutQueue::DEFAULT_LIMIT),
            chunking: Chunking::default(),
            schema: String::new(),
            metadata: BTreeMap::new(),
            parent: None,
            current: Vec::new(),
            current_bytes: 0,
            page: Vec::new(),
            pages: Vec::new(),
            leaves: Vec::new(),
            records: 0,
            bytes: 0,
        }
    }

    /// Set the chunking parameters (checked in [`Builder::finish`] and before the first push).
    pub fn chunking(mut self, c: Chunking) -> Self {
        self.chunking = c;
        self
    }

    /// Describe the schema.
    pub fn schema(mut self, s: impl Into<String>) -> Self {
        self.schema = s.into();
        self
    }

    /// Add a metadata entry.
    pub fn meta(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.metadata.insert(k.into(), v.into());
        self
    }

    /// Record the version this one derives from.
    pub fn parent(mut self, p: Option<Cid>) -> Self {
        self.parent = p;
        self
    }

    /// Append a record.
    pub async fn push(&mut self, record: Record) -> Result<()> {
        self.push_encoded(Encoded::new(record)?).await
    }

    pub(crate) async fn push_encoded(&mut self, e: Encoded) -> Result<()> {
        if self.records == 0 && self.current.is_empty() {
            self.chunking.validate()?;
        }
        let size = e.bytes.len() as u64;
        let prefix = e.digest.prefix_u64();
        self.current_bytes += size;
        self.current.push(e);
        if self.chunking.cut_after(prefix, size, self.current_bytes) {
            self.flush_chunk().await?;
        }
        Ok(())
    }

    async fn flush_chunk(&mut self) -> Result<()> {
        if self.current.is_empty() {
            return Ok(());
        }
        let block = Block::new(ids::DAG_CBOR, encode_chunk(&self.current))?;
        let digests: Vec<Digest> = self.current.iter().map(|e| e.digest).collect();
        let root = MerkleTree::new(&digests).root();
        let cid = *block.cid();
        self.puts.put(self.store, block).await?;
        let r = ChunkRef {
            cid,
            root,
            bytes: self.current_bytes,
            records: self.current.len() as u64,
        };
        self.current.clear();
        self.current_bytes = 0;
        self.append_chunk(r).await
    }

    /// Whether no records are waiting for a chunk boundary.
    pub(super) fn at_chunk_boundary(&self) -> bool {
        self.current.is_empty()
    }

    /// Append a stored chunk as is (only at a chunk boundary).
    pub(super) async fn append_chunk(&mut self, r: ChunkRef) -> Result<()> {
        debug_assert!(self.at_chunk_boundary());
        self.leaves
            .push(chunk_leaf(&r.root, self.records, r.records));
        self.records += r.records;
        self.bytes += r.bytes;
        let anchor = ids::digest_of(&r.cid)?.prefix_u64();
        self.page.push(r);
        if cut_page(anchor, self.page.len()) {
            self.flush_page().await?;
        }
        Ok(())
    }

    async fn flush_page(&mut self) -> Result<()> {
        if self.page.is_empty() {
            return Ok(());
        }
        let page = std::mem::take(&mut self.page);
        let r = self.put_page(&page, page.len() as u64).await?;
        self.pages.push(r);
        Ok(())
    }

    /// Store a page (of chunk references, or of pages for index pages) holding `chunks`
    /// chunks in all; returns its reference.
    async fn put_page<T: serde::Serialize>(&mut self, items: &[T], chunks: u64) -> Result<PageRef> {
        let block = Block::new(
            ids::DAG_CBOR,
            serde_ipld_dagcbor::to_vec(items).expect("pages encode"),
        )?;
        let r = PageRef {
            cid: *block.cid(),
            chunks,
        };
        self.puts.put(self.store, block).await?;
        Ok(r)
    }

    /// Group the chunk pages into levels of index pages (content-defined, like the pages
    /// themselves) until at most [`MAX_TOP_PAGES`] remain; returns the depth and the top level.
    async fn index_pages(&mut self) -> Result<(u64, Vec<PageRef>)> {
        let mut level = std::mem::take(&mut self.pages);
        let mut depth = 0;
        while level.len() > MAX_TOP_PAGES {
            let mut next = Vec::new();
            let mut group: Vec<PageRef> = Vec::new();
            let n = level.len();
            for (i, p) in level.into_iter().enumerate() {
                let anchor = ids::digest_of(&p.cid)?.prefix_u64();
                group.push(p);
                if cut_page(anchor, group.len()) || i + 1 == n {
                    let chunks = group.iter().map(|p| p.chunks).sum();
                    next.push(self.put_page(&group, chunks).await?);
                    group.clear();
                }
            }
            level = next;
            depth += 1;
        }
        Ok((depth, level))
    }

    /// Write the last chunk, page and the manifest; returns the new version.
    pub async fn finish(mut self) -> Result<Version> {
        self.chunking.validate()?;
        self.flush_chunk().await?;
        self.flush_page().await?;
        let (depth, pages) = self.index_pages().await?;
        // everything the manifest links to is stored before the manifest is
        self.puts.drain().await?;
        let manifest = Manifest {
            root: MerkleTree::new(&self.leaves).root(),
            bytes: self.bytes,
            depth,
            pages,
            format: FORMAT,
            parent: self.parent,
            schema: self.schema,
            records: self.records,
            chunking: self.chunking,
            metadata: self.metadata,
        };
        let cid = self
            .store
            .put(ids::DAG_CBOR, Bytes::from(manifest.encode()))
            .await?;
        Version::from_manifest(self.store, cid, manifest).await
    }
}

fn encode_chunk(records: &[Encoded]) -> Vec<u8> {
    // a dag-cbor array header followed by the records' own canonical encodings
    let mut out = Vec::with_capacity(records.iter().map(|e| e.bytes.len()).sum::<usize>() + 9);
    let n = records.len() as u64;
    match n {
        0..=23 => out.push(0x80 | n as u8),
        24..=0xff => out.extend_from_slice(&[0x98, n as u8]),
        0x100..=0xffff => {
            out.push(0x99);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(0x9a);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
        _ => {
            out.push(0x9b);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
    for e in records {
        out.extend_from_slice(&e.bytes);
    }
    out
}
