//! Federated retrieval: a node publishes a query to its peers and merges their top hits.
//!
//! A [`KnowledgePeer`] answers a [`PeerQuery`] (an embedding, `k`, a metadata filter) with
//! [`PeerHit`]s that carry the passage itself: the canonical record bytes whose CID the hit
//! cites. [`Federation::query`] asks every peer at once with a deadline per peer, checks every
//! answer (each hit's bytes must hash to its CID and decode to a text passage; scores finite and
//! ranked; at most `k` hits) and drops the whole answer of a peer that fails any check, so a
//! lying, slow or dead peer never poisons the merged answer: it is listed in
//! [`FederatedAnswer::failures`] instead. Answers are merged by reciprocal-rank fusion and
//! deduplicated by CID, ties broken by CID, so the same answers give the same merge.
//!
//! [`LocalPeer`] answers from a local [`VectorStore`]; with feature `federation`,
//! `grpc::GrpcPeer` asks a remote peer over gRPC (tonic) and `grpc::serve` exposes any peer.

#[cfg(feature = "federation")]
pub mod grpc;
#[cfg(feature = "federation")]
mod limit;

#[cfg(feature = "federation")]
pub use limit::RateLimit;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use oai_core::{ids, Cid};
use oai_data::dataset::Record;

use crate::vector::{Filter, VectorStore};
use crate::{Error, Result};

/// What a node asks its peers.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerQuery {
    /// The query embedding (the federation agrees on one embedding model).
    pub vector: Vec<f32>,
    /// Hits wanted from each peer.
    pub k: usize,
    /// Metadata every hit must match.
    pub filter: Option<Filter>,
}

/// One hit of a peer, with the passage it cites.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerHit {
    /// The passage record's CID.
    pub source: Cid,
    /// The peer's score (dot product with the query).
    pub score: f32,
    /// The entry's metadata.
    pub meta: BTreeMap<String, String>,
    /// The passage record's canonical bytes ([`Record::encode`]); they hash to `source`.
    pub record: Vec<u8>,
}

/// A node that answers retrieval queries from its own index.
#[async_trait::async_trait]
pub trait KnowledgePeer: Send + Sync {
    /// A name for reports (an address, a node id).
    fn name(&self) -> &str;
    /// The peer's best hits for `query`, best first.
    async fn query(&self, query: &PeerQuery) -> Result<Vec<PeerHit>>;
}

/// A peer answering from a local vector store and the passages it indexed.
pub struct LocalPeer<V> {
    name: String,
    index: V,
    passages: BTreeMap<Cid, Vec<u8>>,
}

impl<V> std::fmt::Debug for LocalPeer<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalPeer")
            .field("name", &self.name)
            .field("passages", &self.passages.len())
            .finish()
    }
}

impl<V: VectorStore> LocalPeer<V> {
    /// A peer named `name` answering from `index`, whose entries cite `passages` (the records
    /// that were ingested, e.g. `version.records(store)`).
    pub fn new(
        name: impl Into<String>,
        index: V,
        passages: impl IntoIterator<Item = Record>,
    ) -> Self {
        let passages = passages
            .into_iter()
            .map(|r| {
                let bytes = r.encode();
                (ids::cid_v1(ids::DAG_CBOR, &bytes), bytes)
            })
            .collect();
        Self {
            name: name.into(),
            index,
            passages,
        }
    }
}

#[async_trait::async_trait]
impl<V: VectorStore> KnowledgePeer for LocalPeer<V> {
    fn name(&self) -> &str {
        &self.name
    }

    async fn query(&self, q: &PeerQuery) -> Result<Vec<PeerHit>> {
        let hits = self.index.search(&q.vector, q.k, q.filter.as_ref()).await?;
        let mut out = Vec::with_capacity(hits.len());
        for h in hits {
            // An entry without its passage cannot be cited; leave it out rather than lie.
            if let Some(record) = self.passages.get(&h.source) {
                out.push(PeerHit {
                    source: h.source,
                    score: h.score,
                    meta: h.meta,
                    record: record.clone(),
                });
            }
        }
        Ok(out)
    }
}

/// A merged hit.
#[derive(Debug, Clone, PartialEq)]
pub struct FederatedHit {
    /// The passage's CID (checked against its text).
    pub source: Cid,
    /// The passage.
    pub text: String,
    /// Reciprocal-rank fusion score: the sum over peers of `1 / (60 + rank)`, rank from 1.
    pub score: f64,
    /// The best score any peer gave it.
    pub best_peer_score: f32,
    /// Metadata, as the first (by name) peer that returned it gave it.
    pub meta: BTreeMap<String, String>,
    /// The peers that returned it, sorted.
    pub peers: Vec<String>,
}

/// Why a peer's answer was left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerFailure {
    /// The peer.
    pub peer: String,
    /// What happened: timeout, transport error, or which check its answer failed.
    pub reason: String,
}

/// The merged answer of a federated query.
#[derive(Debug, Clone, PartialEq)]
pub struct FederatedAnswer {
    /// At most `k` hits, best first.
    pub hits: Vec<FederatedHit>,
    /// Peers whose answers were used, sorted.
    pub answered: Vec<String>,
    /// Peers whose answers were not, sorted by peer.
    pub failures: Vec<PeerFailure>,
}

impl FederatedAnswer {
    /// The hits as passages for a [`crate::Generator`], best first.
    pub fn passages(&self) -> Vec<crate::Passage> {
        self.hits
            .iter()
            .map(|h| crate::Passage {
                source: h.source,
                text: h.text.clone(),
            })
            .collect()
    }
}

/// The rank constant of reciprocal-rank fusion (the usual 60).
pub const RRF_K: f64 = 60.0;

/// The most hits one query may ask of a peer: a peer's server refuses more (a query for
/// millions would be a full scan and the whole corpus back), and so does [`Federation::query`].
pub const MAX_K: usize = 1_000;

/// What is wrong with `query`, if anything: `k` in `1..=MAX_K`, a finite non-empty vector.
pub(crate) fn query_problem(query: &PeerQuery) -> Option<String> {
    if query.k == 0 || query.k > MAX_K {
        return Some(format!("k = {}: it must be 1..={MAX_K}", query.k));
    }
    if query.vector.is_empty() || query.vector.iter().any(|x| !x.is_finite()) {
        return Some("the query vector must be finite and non-empty".into());
    }
    None
}

/// A set of peers queried together.
#[derive(Clone)]
pub struct Federation {
    peers: Vec<Arc<dyn KnowledgePeer>>,
    deadline: Duration,
}

impl std::fmt::Debug for Federation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.peers.iter().map(|p| p.name()).collect();
        f.debug_struct("Federation")
            .field("peers", &names)
            .field("deadline", &self.deadline)
            .finish()
    }
}

/// The passage text of a hit whose answer passed the checks.
struct Checked {
    hit: PeerHit,
    text: String,
}

/// Check one peer's answer; `Err` names the first problem.
fn check_answer(q: &PeerQuery, hits: Vec<PeerHit>) -> std::result::Result<Vec<Checked>, String> {
    if hits.len() > q.k {
        return Err(format!("{} hits for k = {}", hits.len(), q.k));
    }
    let mut out: Vec<Checked> = Vec::with_capacity(hits.len());
    for (i, hit) in hits.into_iter().enumerate() {
        if let Err(e) = ids::verify(&hit.source, &hit.record) {
            return Err(format!(
                "hit {i}: passage does not hash to {}: {e}",
                hit.source
            ));
        }
        let text = match Record::decode(&hit.record) {
            Ok(Record::Text(t)) => t,
            Ok(other) => return Err(format!("hit {i}: {} is not text: {other:?}", hit.source)),
            Err(e) => return Err(format!("hit {i}: {} does not decode: {e}", hit.source)),
        };
        if !hit.score.is_finite() {
            return Err(format!("hit {i}: score {}", hit.score));
        }
        if let Some(prev) = out.last() {
            if prev.hit.score < hit.score {
                return Err(format!("hit {i}: hits are not sorted best first"));
            }
        }
        if out.iter().any(|c| c.hit.source == hit.source) {
            return Err(format!("hit {i}: {} returned twice", hit.source));
        }
        if let Some(f) = &q.filter {
            if !f.matches(&hit.meta) {
                return Err(format!("hit {i}: {} fails the filter", hit.source));
            }
        }
        out.push(Checked { hit, text });
    }
    Ok(out)
}

impl Federation {
    /// Peers queried together, each given `deadline` to answer.
    pub fn new(peers: Vec<Arc<dyn KnowledgePeer>>, deadline: Duration) -> Self {
        Self { peers, deadline }
    }

    /// The peers.
    pub fn peers(&self) -> &[Arc<dyn KnowledgePeer>] {
        &self.peers
    }

    /// Ask every peer for its `query.k` best hits at once and merge the answers that pass the
    /// checks. Never fails because of a peer: failures are reported in the answer.
    pub async fn query(&self, query: &PeerQuery) -> Result<FederatedAnswer> {
        if let Some(problem) = query_problem(query) {
            return Err(Error::InvalidInput(format!("a federated query: {problem}")));
        }
        let asks = self.peers.iter().map(|peer| {
            let peer = peer.clone();
            let deadline = self.deadline;
            async move {
                let answer = tokio::time::timeout(deadline, peer.query(query)).await;
                (peer.name().to_string(), answer)
            }
        });
        let answers = futures::future::join_all(asks).await;
        let mut used: Vec<(String, Vec<Checked>)> = Vec::new();
        let mut failures = Vec::new();
        for (peer, answer) in answers {
            let reason = match answer {
                Err(_) => format!("no answer within {:?}", self.deadline),
                Ok(Err(e)) => format!("error: {e}"),
                Ok(Ok(hits)) => match check_answer(query, hits) {
                    Ok(checked) => {
                        used.push((peer, checked));
                        continue;
                    }
                    Err(why) => format!("bad answer: {why}"),
                },
            };
            failures.push(PeerFailure { peer, reason });
        }
        used.sort_by(|a, b| a.0.cmp(&b.0));
        failures.sort_by(|a, b| a.peer.cmp(&b.peer));
        let answered = used.iter().map(|(p, _)| p.clone()).collect();
        Ok(FederatedAnswer {
            hits: fuse(used, query.k),
            answered,
            failures,
        })
    }
}

/// Reciprocal-rank fusion of checked answers (peers in name order), deduplicated by CID.
fn fuse(answers: Vec<(String, Vec<Checked>)>, k: usize) -> Vec<FederatedHit> {
    let mut merged: BTreeMap<Cid, FederatedHit> = BTreeMap::new();
    for (peer, hits) in answers {
        for (rank, c) in hits.into_iter().enumerate() {
            let rrf = 1.0 / (RRF_K + rank as f64 + 1.0);
            let e = merged.entry(c.hit.source).or_insert_with(|| FederatedHit {
                source: c.hit.source,
                text: c.text,
                score: 0.0,
                best_peer_score: c.hit.score,
                meta: c.hit.meta,
                peers: Vec::new(),
            });
            e.score += rrf;
            e.best_peer_score = e.best_peer_score.max(c.hit.score);
            e.peers.push(peer.clone());
        }
    }
    let mut hits: Vec<FederatedHit> = merged.into_values().collect();
    hits.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.source.to_bytes().cmp(&b.source.to_bytes()))
    });
    hits.truncate(k);
    hits
}
