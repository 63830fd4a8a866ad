//! What changed between two versions ([`Diff`], [`Version::diff`]) and changes to apply to one
//! ([`ChangeSet`], [`Version::apply`]).

use oai_core::{ids, Cid, Digest};
use serde::{Deserialize, Serialize};

use super::record::Encoded;
use super::Version;
use super::{Builder, Record};
use crate::{BlockStore, Error, Result};

impl Version {
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
            .chunking(self.manifest().chunking)
            .schema(self.manifest().schema.clone())
            .parent(Some(self.cid()));
        b.metadata = self.manifest().metadata.clone();
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
