//! Ingest: documents -> passages (dataset records) -> embeddings -> index, and incremental
//! updates by dataset diff that embed only what changed.
//!
//! A passage is a `Record::Text`; its index entry is keyed by the record's CID, so every hit
//! names the exact passage it came from, and anyone holding the dataset can fetch and verify it.

use std::collections::{BTreeMap, BTreeSet};

use oai_core::Cid;
use oai_data::dataset::{Record, Version};
use oai_data::BlockStore;

use crate::{Embedder, Entry, Error, Result, VectorStore};

/// Split `doc` into passages of at most `max_chars` characters, cutting at paragraph breaks,
/// then sentence ends, then spaces, then anywhere; whitespace is trimmed and empty pieces
/// dropped. An empty or all-whitespace document is [`Error::InvalidInput`].
pub fn passages(doc: &str, max_chars: usize) -> Result<Vec<String>> {
    if doc.trim().is_empty() {
        return Err(Error::InvalidInput("empty document".into()));
    }
    let max_chars = max_chars.max(16);
    let mut out = Vec::new();
    for para in doc.split("\n\n").map(str::trim).filter(|p| !p.is_empty()) {
        let mut rest = para;
        while rest.chars().count() > max_chars {
            let limit = rest
                .char_indices()
                .nth(max_chars)
                .map_or(rest.len(), |(i, _)| i);
            let head = &rest[..limit];
            let cut = [". ", "! ", "? ", "\n", " "]
                .iter()
                .filter_map(|sep| head.rfind(sep).map(|i| i + sep.len()))
                .find(|&i| i > limit / 3)
                .unwrap_or(limit);
            let piece = rest[..cut].trim();
            if !piece.is_empty() {
                out.push(piece.to_string());
            }
            rest = rest[cut..].trim_start();
        }
        if !rest.is_empty() {
            out.push(rest.to_string());
        }
    }
    Ok(out)
}

/// [`passages`] of raw bytes, which must be UTF-8 ([`Error::InvalidInput`] names the offset).
pub fn passages_of_bytes(doc: &[u8], max_chars: usize) -> Result<Vec<String>> {
    let text = std::str::from_utf8(doc).map_err(|e| {
        Error::InvalidInput(format!("document is not UTF-8 at byte {}", e.valid_up_to()))
    })?;
    passages(text, max_chars)
}

/// What an ingest did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestReport {
    /// Passages embedded (not found in the index before).
    pub embedded: usize,
    /// Passages already indexed, skipped.
    pub skipped: usize,
    /// Entries removed.
    pub removed: usize,
}

/// Embeds dataset passages into a vector store.
#[derive(Debug, Clone)]
pub struct Ingestor<E, V> {
    embedder: E,
    index: V,
    batch: usize,
    meta: BTreeMap<String, String>,
}

impl<E: Embedder, V: VectorStore> Ingestor<E, V> {
    /// An ingestor embedding with `embedder` into `index`, 32 passages per batch.
    pub fn new(embedder: E, index: V) -> Self {
        Self {
            embedder,
            index,
            batch: 32,
            meta: BTreeMap::new(),
        }
    }

    /// Metadata given to every entry this ingestor writes (for filters).
    pub fn with_meta(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.meta.insert(key.into(), value.into());
        self
    }

    /// The index.
    pub fn index(&self) -> &V {
        &self.index
    }

    /// The index, once ingesting is done (e.g. to serve it as a federation peer).
    pub fn into_index(self) -> V {
        self.index
    }

    /// Index every passage of `version` not indexed yet (idempotent: a second call embeds
    /// nothing).
    pub async fn ingest<S: BlockStore + ?Sized>(
        &self,
        store: &S,
        version: &Version,
    ) -> Result<IngestReport> {
        let records = version.records(store).await?;
        let mut report = IngestReport::default();
        self.add(records, &mut report).await?;
        Ok(report)
    }

    /// Move the index from `old` to `new` by their diff: entries of passages that left are
    /// removed, passages that arrived are embedded; chunks the versions share are not read.
    pub async fn update<S: BlockStore + ?Sized>(
        &self,
        store: &S,
        old: &Version,
        new: &Version,
    ) -> Result<IngestReport> {
        let diff = old.diff(store, new).await?;
        let arriving: BTreeSet<Cid> = diff.added.iter().map(|(_, c)| *c).collect();
        let mut leaving = Vec::new();
        for c in diff
            .removed
            .iter()
            .map(|(_, c)| *c)
            .collect::<BTreeSet<_>>()
        {
            if !arriving.contains(&c) && self.index.contains(&c).await? {
                leaving.push(c);
            }
        }
        let mut report = IngestReport {
            removed: leaving.len(),
            ..Default::default()
        };
        self.index.remove(&leaving).await?;
        let mut records = Vec::with_capacity(diff.added.len());
        for (i, _) in &diff.added {
            records.push(new.record(store, *i).await?);
        }
        self.add(records, &mut report).await?;
        Ok(report)
    }

    async fn add(&self, records: Vec<Record>, report: &mut IngestReport) -> Result<()> {
        let mut todo: BTreeMap<Cid, String> = BTreeMap::new();
        for r in records {
            let cid = r.cid();
            let text = match r {
                Record::Text(t) => t,
                Record::Bytes(b) => String::from_utf8(b).map_err(|e| {
                    Error::InvalidInput(format!(
                        "passage {cid} is not UTF-8 at byte {}",
                        e.utf8_error().valid_up_to()
                    ))
                })?,
                other => {
                    return Err(Error::InvalidInput(format!(
                        "passage {cid} is not text: {other:?}"
                    )))
                }
            };
            if self.index.contains(&cid).await? || todo.contains_key(&cid) {
                report.skipped += 1;
            } else {
                todo.insert(cid, text);
            }
        }
        let todo: Vec<(Cid, String)> = todo.into_iter().collect();
        for batch in todo.chunks(self.batch) {
            let texts: Vec<String> = batch.iter().map(|(_, t)| t.clone()).collect();
            let vectors = self.embedder.embed(&texts).await?;
            let entries = batch
                .iter()
                .zip(vectors)
                .map(|((source, _), vector)| Entry {
                    source: *source,
                    vector,
                    meta: self.meta.clone(),
                })
                .collect();
            self.index.upsert(entries).await?;
            report.embedded += batch.len();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passages_cut_at_natural_boundaries() {
        let doc = "First paragraph. It has two sentences.\n\nSecond one is here.";
        assert_eq!(
            passages(doc, 100).unwrap(),
            vec![
                "First paragraph. It has two sentences.",
                "Second one is here."
            ]
        );
        let long = "word ".repeat(1000);
        let p = passages(&long, 200).unwrap();
        assert!(p.iter().all(|s| s.chars().count() <= 200 && !s.is_empty()));
        assert_eq!(p.concat().replace(' ', ""), long.replace(' ', ""));
        let unbroken = "x".repeat(1000);
        assert_eq!(passages(&unbroken, 100).unwrap().len(), 10);
        assert!(matches!(
            passages(" \n\n ", 100),
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            passages_of_bytes(b"ok \xff", 100),
            Err(Error::InvalidInput(m)) if m.contains("byte 3")
        ));
        let multibyte = "é".repeat(300);
        assert!(passages(&multibyte, 100)
            .unwrap()
            .iter()
            .all(|s| s.chars().count() <= 100));
    }
}
