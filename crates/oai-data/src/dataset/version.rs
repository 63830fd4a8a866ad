use bytes::Bytes;
use oai_core::{ids, merkle::MerkleTree, Cid, Digest};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::chunker::cut_page;
use super::manifest::{
    chunk_leaf, ChunkRef, Manifest, PageRef, RecordProof, FORMAT, MAX_TOP_PAGES,
};
use super::record::Encoded;
use super::{Chunking, Record};
use crate::store::{Block, PutQueue};
use crate::{cbor, BlockStore, Error, Result};

/// Builds a dataset version from records, streaming: only the current chunk and page are held.
#[derive(Debug)]
pub struct Builder<'a, S: ?Sized> {
    store: &'a S,
    puts: PutQueue<'a>,
    chunking: Chunking,
    schema: String,
    metadata: BTreeMap<String, String>,
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
    fn at_chunk_boundary(&self) -> bool {
        self.current.is_empty()
    }

    /// Append a stored chunk as is (only at a chunk boundary).
    async fn append_chunk(&mut self, r: ChunkRef) -> Result<()> {
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
    async fn put_page<T: Serialize>(&mut self, items: &[T], chunks: u64) -> Result<PageRef> {
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

/// An opened dataset version: its manifest and chunk list (records load on demand).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    cid: Cid,
    manifest: Manifest,
    chunks: Vec<ChunkRef>,
    /// Global index of each chunk's first record.
    starts: Vec<u64>,
    /// The version tree over chunk leaves, kept to hand out proofs without rebuilding it.
    tree: MerkleTree,
}

impl Version {
    /// Build a version from `records` with default settings.
    pub async fn from_records<S: BlockStore + ?Sized>(
        store: &S,
        records: impl IntoIterator<Item = Record>,
    ) -> Result<Self> {
        let mut b = Builder::new(store);
        for r in records {
            b.push(r).await?;
        }
        b.finish().await
    }

    /// Open the version whose manifest is `cid`, checking its pages against its root.
    pub async fn open<S: BlockStore + ?Sized>(store: &S, cid: &Cid) -> Result<Self> {
        if cid.codec() != ids::DAG_CBOR {
            return Err(Error::Malformed {
                what: "manifest",
                reason: format!("{cid} is not a dag-cbor block"),
            });
        }
        let manifest = Manifest::decode(&store.get(cid).await?)?;
        Self::from_manifest(store, *cid, manifest).await
    }

    async fn from_manifest<S: BlockStore + ?Sized>(
        store: &S,
        cid: Cid,
        manifest: Manifest,
    ) -> Result<Self> {
        let mut level = manifest.pages.clone();
        for _ in 0..manifest.depth {
            let mut next = Vec::new();
            for p in &level {
                let kids: Vec<PageRef> = load_page(store, p).await?;
                let under: u64 = kids.iter().map(|k| k.chunks).sum();
                check_page_count(p, under)?;
                next.extend(kids);
            }
            level = next;
        }
        let mut chunks = Vec::new();
        for p in &level {
            let page: Vec<ChunkRef> = load_page(store, p).await?;
            check_page_count(p, page.len() as u64)?;
            chunks.extend(page);
        }
        let mut starts = Vec::with_capacity(chunks.len());
        let (mut n, mut bytes) = (0u64, 0u64);
        let mut leaves = Vec::with_capacity(chunks.len());
        for c in &chunks {
            starts.push(n);
            leaves.push(chunk_leaf(&c.root, n, c.records));
            n += c.records;
            bytes += c.bytes;
        }
        let tree = MerkleTree::new(&leaves);
        if n != manifest.records || bytes != manifest.bytes || tree.root() != manifest.root {
            return Err(Error::Malformed {
                what: "manifest",
                reason: format!("{cid}: record count, byte count or root disagree with its pages"),
            });
        }
        Ok(Self {
            cid,
            manifest,
            chunks,
            starts,
            tree,
        })
    }

    /// CID of the manifest: the version's identity.
    pub fn cid(&self) -> Cid {
        self.cid
    }
    /// The version root (Merkle root that record proofs verify against).
    pub fn root(&self) -> Digest {
        self.manifest.root
    }
    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }
    /// Number of records.
    pub fn len(&self) -> u64 {
        self.manifest.records
    }
    /// Whether the version has no records.
    pub fn is_empty(&self) -> bool {
        self.manifest.records == 0
    }
    /// The chunks, in record order.
    pub fn chunks(&self) -> &[ChunkRef] {
        &self.chunks
    }

    fn locate(&self, index: u64) -> Result<usize> {
        if index >= self.len() {
            return Err(Error::IndexOutOfRange {
                index,
                len: self.len(),
            });
        }
        Ok(self.starts.partition_point(|&s| s <= index) - 1)
    }

    pub(crate) async fn load_chunk<S: BlockStore + ?Sized>(
        &self,
        store: &S,
        i: usize,
    ) -> Result<Vec<Encoded>> {
        Ok(self.load_chunk_tree(store, i).await?.0)
    }

    /// [`Version::load_chunk`], with the Merkle tree over the chunk's record digests that
    /// checked it (what record proofs are cut from).
    async fn load_chunk_tree<S: BlockStore + ?Sized>(
        &self,
        store: &S,
        i: usize,
    ) -> Result<(Vec<Encoded>, MerkleTree)> {
        let r = &self.chunks[i];
        let records: Vec<Record> = cbor::decode("chunk", Some(&r.cid), &store.get(&r.cid).await?)?;
        let enc = records
            .into_iter()
            .map(Encoded::new)
            .collect::<Result<Vec<_>>>()?;
        let digests: Vec<Digest> = enc.iter().map(|e| e.digest).collect();
        let tree = MerkleTree::new(&digests);
        if enc.len() as u64 != r.records || tree.root() != r.root {
            return Err(Error::Verification(format!(
                "chunk {} does not match the root and count its page lists",
                r.cid
            )));
        }
        Ok((enc, tree))
    }

    /// The record at `index`.
    pub async fn record<S: BlockStore + ?Sized>(&self, store: &S, index: u64) -> Result<Record> {
        let c = self.locate(index)?;
        let mut recs = self.load_chunk(store, c).await?;
        Ok(recs.swap_remove((index - self.starts[c]) as usize).record)
    }

    /// All records, in order (loads the whole dataset).
    pub async fn records<S: BlockStore + ?Sized>(&self, store: &S) -> Result<Vec<Record>> {
        let mut out = Vec::with_capacity(self.len() as usize);
        for i in 0..self.chunks.len() {
            out.extend(
                self.load_chunk(store, i)
                    .await?
                    .into_iter()
                    .map(|e| e.record),
            );
        }
        Ok(out)
    }

    /// Fetch every chunk from `store` and check it against its CID, record count and Merkle
    /// root, one chunk at a time (memory stays bounded by one chunk): the whole dataset is
    /// there and is what the root commits. A node runs this before it takes a job on the
    /// dataset, so that a requester cannot withhold a chunk to make the job fail on the node.
    pub async fn check_complete<S: BlockStore + ?Sized>(&self, store: &S) -> Result<()> {
        for i in 0..self.chunks.len() {
            self.load_chunk(store, i).await?;
        }
        Ok(())
    }

    /// The CIDs of all records, in order.
    pub async fn record_cids<S: BlockStore + ?Sized>(&self, store: &S) -> Result<Vec<Cid>> {
        let mut out = Vec::with_capacity(self.len() as usize);
        for i in 0..self.chunks.len() {
            out.extend(self.load_chunk(store, i).await?.iter().map(Encoded::cid));
        }
        Ok(out)
    }

    /// The record at `index`, its CID and its inclusion proof against [`Version::root`].
    pub async fn prove<S: BlockStore + ?Sized>(
        &self,
        store: &S,
        index: u64,
    ) -> Result<(Record, Cid, RecordProof)> {
        let mut one = self.prove_many(store, &[index]).await?;
        Ok(one.pop().expect("one index, one proof"))
    }

    /// [`Version::prove`] of each of `indices`, in their order: each chunk they fall in is read,
    /// checked and hashed once, however many of them it holds (a batch of records drawn from
    /// a few chunks reads those chunks once, not once a record).
    pub async fn prove_many<S: BlockStore + ?Sized>(
        &self,
        store: &S,
        indices: &[u64],
    ) -> Result<Vec<(Record, Cid, RecordProof)>> {
        let mut chunks: std::collections::BTreeMap<usize, (Vec<Encoded>, MerkleTree)> =
            std::collections::BTreeMap::new();
        let mut out = Vec::with_capacity(indices.len());
        for &index in indices {
            let c = self.locate(index)?;
            if let std::collections::btree_map::Entry::Vacant(slot) = chunks.entry(c) {
                slot.insert(self.load_chunk_tree(store, c).await?);
            }
            let (recs, tree) = &chunks[&c];
            let offset = index - self.starts[c];
            let e = &recs[offset as usize];
            out.push((
                e.record.clone(),
                e.cid(),
                RecordProof {
                    index,
                    first: self.starts[c],
                    chunk_root: self.chunks[c].root,
                    in_chunk: tree.proof(offset).expect("offset in chunk"),
                    in_version: self.tree.proof(c as u64).expect("chunk in version"),
                },
            ));
        }
        Ok(out)
    }

    /// Records removed and added between `self` and `other`, as an edit script: removing
    /// `removed` (indices in `self`) and inserting `added` (indices in `other`) turns `self`
    /// into `other`. Chunks the two share are skipped without being read.
    pub async fn diff<S: BlockStore + ?Sized>(&self, store: &S, other: &Version) -> Result<Diff> {
        Ok(self.diff_records(store, other).await?.0)
    }

    async fn diff_records<S: BlockStore + ?Sized>(
        &self,
        store: &S,
        other: &Version,
    ) -> Result<(Diff, Vec<Encoded>)> {
        let a: Vec<Cid> = self.chunks.iter().map(|c| c.cid).collect();
        let b: Vec<Cid> = other.chunks.iter().map(|c| c.cid).collect();
        let mut diff = Diff::default();
        let mut added_records = Vec::new();
        for (old, new) in changed_ranges(&a, &b) {
            let mut ra = Vec::new();
            for i in old.clone() {
                ra.extend(self.load_chunk(store, i).await?);
            }
            let mut rb = Vec::new();
            for i in new.clone() {
                rb.extend(other.load_chunk(store, i).await?);
            }
            let base_a = old.clone().next().map_or(0, |i| self.starts[i]);
            let base_b = new.clone().next().map_or(0, |i| other.starts[i]);
            let da: Vec<Digest> = ra.iter().map(|e| e.digest).collect();
            let db: Vec<Digest> = rb.iter().map(|e| e.digest).collect();
            for (ro, rn) in changed_ranges(&da, &db) {
                for i in ro {
                    diff.removed.push((base_a + i as u64, ra[i].cid()));
                }
                for i in rn {
                    diff.added.push((base_b + i as u64, rb[i].cid()));
                    added_records.push(rb[i].clone());
                }
            }
        }
        diff.removed.sort();
        let mut pairs: Vec<_> = diff.added.drain(..).zip(added_records).collect();
        pairs.sort_by_key(|((i, _), _)| *i);
        let (added, recs): (Vec<_>, Vec<_>) = pairs.into_iter().unzip();
        diff.added = added;
        Ok((diff, recs))
    }

    /// The [`ChangeSet`] that turns `self` into `other`, storing the added records as blocks.
    pub async fn changes_to<S: BlockStore + ?Sized>(
        &self,
        store: &S,
        other: &Version,
    ) -> Result<ChangeSet> {
        let (diff, recs) = self.diff_records(store, other).await?;
        for e in recs {
            store.put_block(e.into_block()?).await?;
        }
        Ok(ChangeSet {
            removed: diff.removed.into_iter().map(|(i, _)| i).collect(),
            inserted: diff.added,
        })
    }

    /// Apply `changes` and store the result as a new version whose parent is `self`, with the
    /// same chunking, schema and metadata. Only chunks near a change are read and re-chunked
    /// (until the chunker falls back onto one of `self`'s boundaries); the others are reused
    /// as they are, so the work and the new bytes are proportional to the changes. The result
    /// is the same version as building the edited records from scratch.
    pub async fn apply<S: BlockStore + ?Sized>(
        &self,
        store: &S,
        changes: &ChangeSet,
    ) -> Result<Version> {
        changes.check(self.len())?;
        let mut b = Builder::new(store)
            .chunking(self.manifest.chunking)
            .schema(self.manifest.schema.clone())
            .parent(Some(self.cid));
        b.metadata = self.manifest.metadata.clone();
        let mut removed = changes.removed.iter().peekable();
        let mut inserts = changes.inserted.iter().peekable();
        let mut out_pos = 0u64;
        let mut base_idx = 0u64;
        let last = self.chunks.len().saturating_sub(1);
        for c in 0..self.chunks.len() {
            let r = self.chunks[c];
            let end = base_idx + r.records;
            // the last chunk may end where the data ended rather than at a cut, so it is
            // always re-chunked
            let untouched = c != last
                && removed.peek().is_none_or(|&&i| i >= end)
                && inserts
                    .peek()
                    .is_none_or(|(at, _)| *at >= out_pos + r.records);
            if untouched && b.at_chunk_boundary() && store.has(&r.cid).await? {
                b.append_chunk(r).await?;
                out_pos += r.records;
                base_idx = end;
                continue;
            }
            for e in self.load_chunk(store, c).await? {
                while let Some((_, cid)) = inserts.next_if(|(at, _)| *at == out_pos) {
                    b.push_encoded(load_record(store, cid).await?).await?;
                    out_pos += 1;
                }
                if removed.next_if(|&&r| r == base_idx).is_none() {
                    b.push_encoded(e).await?;
                    out_pos += 1;
                }
                base_idx += 1;
            }
        }
        for (at, cid) in inserts {
            if *at != out_pos {
                return Err(Error::InvalidArgument(format!(
                    "insert at {at} is past the end of the result ({out_pos} records)"
                )));
            }
            b.push_encoded(load_record(store, cid).await?).await?;
            out_pos += 1;
        }
        b.finish().await
    }
}

async fn load_page<S: BlockStore + ?Sized, T: serde::de::DeserializeOwned>(
    store: &S,
    p: &PageRef,
) -> Result<Vec<T>> {
    cbor::decode("page", Some(&p.cid), &store.get(&p.cid).await?)
}

fn check_page_count(p: &PageRef, found: u64) -> Result<()> {
    if found != p.chunks {
        return Err(Error::Malformed {
            what: "page",
            reason: format!(
                "{} holds {found} chunks, its parent says {}",
                p.cid, p.chunks
            ),
        });
    }
    Ok(())
}

/// The `(old, new)` index ranges where Myers' diff of `a` and `b` finds changes.
fn changed_ranges<T: std::hash::Hash + Eq + Ord>(
    a: &[T],
    b: &[T],
) -> Vec<(std::ops::Range<usize>, std::ops::Range<usize>)> {
    use similar::{capture_diff_slices, Algorithm, DiffTag};
    capture_diff_slices(Algorithm::Myers, a, b)
        .iter()
        .map(|op| op.as_tag_tuple())
        .filter(|(tag, _, _)| *tag != DiffTag::Equal)
        .map(|(_, old, new)| (old, new))
        .collect()
}

async fn load_record<S: BlockStore + ?Sized>(store: &S, cid: &Cid) -> Result<Encoded> {
    if cid.codec() != ids::DAG_CBOR {
        return Err(Error::UnknownCodec(cid.codec()));
    }
    let bytes = store.get(cid).await?;
    Encoded::new(Record::decode(&bytes)?)
}

fn strictly_ascending(mut items: impl Iterator<Item = u64>) -> bool {
    let Some(mut prev) = items.next() else {
        return true;
    };
    items.all(|i| std::mem::replace(&mut prev, i) < i)
}

/// What changed between two versions (see [`Version::diff`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    /// `(index in the old version, record CID)`, ascending.
    pub removed: Vec<(u64, Cid)>,
    /// `(index in the new version, record CID)`, ascending.
    pub added: Vec<(u64, Cid)>,
}

/// Changes to a version: remove records by their index in the base, then insert records
/// (stored as standalone dag-cbor blocks) at their index in the result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeSet {
    // DAG-CBOR canonical key order
    /// Indices in the base to remove, strictly ascending.
    pub removed: Vec<u64>,
    /// `(index in the result, record CID)`, strictly ascending by index.
    pub inserted: Vec<(u64, Cid)>,
}

impl ChangeSet {
    /// Store `record` as a block and schedule its insertion at `index` of the result
    /// (inserts must be added in ascending index order).
    pub async fn insert<S: BlockStore + ?Sized>(
        &mut self,
        store: &S,
        index: u64,
        record: Record,
    ) -> Result<()> {
        let e = Encoded::new(record)?;
        let cid = e.cid();
        store.put_block(e.into_block()?).await?;
        self.inserted.push((index, cid));
        Ok(())
    }

    /// Schedule removal of the base record at `index` (ascending order).
    pub fn remove(&mut self, index: u64) {
        self.removed.push(index);
    }

    /// Replace the base record at `index` (with no other changes before it in the result,
    /// the position is the same): remove plus insert.
    pub async fn replace<S: BlockStore + ?Sized>(
        &mut self,
        store: &S,
        index: u64,
        record: Record,
    ) -> Result<()> {
        self.remove(index);
        self.insert(store, index, record).await
    }

    fn check(&self, base_len: u64) -> Result<()> {
        if !strictly_ascending(self.removed.iter().copied())
            || !strictly_ascending(self.inserted.iter().map(|(i, _)| *i))
        {
            return Err(Error::InvalidArgument(
                "change indices must be strictly ascending".into(),
            ));
        }
        if let Some(&last) = self.removed.last() {
            if last >= base_len {
                return Err(Error::IndexOutOfRange {
                    index: last,
                    len: base_len,
                });
            }
        }
        Ok(())
    }

    /// Canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        serde_ipld_dagcbor::to_vec(self).expect("change sets encode")
    }

    /// Decode a change set block.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        crate::cbor::decode("change set", None, bytes)
    }
}
