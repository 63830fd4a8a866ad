//! [`QdrantStore`]: a [`VectorStore`] kept in a Qdrant collection, over Qdrant's gRPC API
//! (`qdrant-client`). Feature `qdrant`.
//!
//! Each entry is one point: its id is a UUID derived from the source CID (so upserting a source
//! again replaces its point), its payload holds the CID as text under `oai_source` and the
//! metadata as a nested object under `meta` (so a [`Filter`] becomes `must` conditions on
//! `meta.<key>`). Vectors use the `Dot` distance, the score the other stores return. Every hit is
//! checked: its payload must name a CID whose derived id is the point's id, or the search is an
//! [`Error::Backend`] (a server cannot make a hit cite another source).

use std::collections::{BTreeMap, HashMap};

use oai_core::{ids, Cid, Digest};
use qdrant_client::qdrant::{
    point_id::PointIdOptions, value::Kind, Condition, CountPointsBuilder, CreateCollectionBuilder,
    DeletePointsBuilder, Distance, Filter as QdrantFilter, GetPointsBuilder, PointId, PointStruct,
    PointsIdsList, Query, QueryPointsBuilder, Struct, UpsertPointsBuilder, Value,
    VectorParamsBuilder,
};
use qdrant_client::Qdrant;

use super::{check_dim, check_query, check_vector, rank, Entry, Filter, Hit, VectorStore};
use crate::{Error, Result};

/// Payload key of the source CID.
pub const SOURCE_KEY: &str = "oai_source";
/// Payload key of the metadata object.
pub const META_KEY: &str = "meta";

/// A vector store in a Qdrant collection.
pub struct QdrantStore {
    client: Qdrant,
    collection: String,
    dim: usize,
}

impl std::fmt::Debug for QdrantStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QdrantStore")
            .field("collection", &self.collection)
            .field("dim", &self.dim)
            .finish()
    }
}

fn backend(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Backend(format!("qdrant {what}: {e}"))
}

/// The point id of `source`: a UUID made of the first 16 bytes of SHA-256 over the CID's bytes.
pub fn point_id(source: &Cid) -> String {
    let h = Digest::of(&source.to_bytes()).to_hex();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn string_value(s: &str) -> Value {
    Value {
        kind: Some(Kind::StringValue(s.to_string())),
    }
}

fn payload(e: &Entry) -> HashMap<String, Value> {
    let meta = Struct {
        fields: e
            .meta
            .iter()
            .map(|(k, v)| (k.clone(), string_value(v)))
            .collect(),
    };
    HashMap::from([
        (SOURCE_KEY.to_string(), string_value(&e.source.to_string())),
        (
            META_KEY.to_string(),
            Value {
                kind: Some(Kind::StructValue(meta)),
            },
        ),
    ])
}

/// Source and metadata of a returned point, checked against its id.
fn decode_point(
    id: Option<&PointId>,
    payload: &HashMap<String, Value>,
) -> Result<(Cid, BTreeMap<String, String>)> {
    let bad = |reason: String| Error::Backend(format!("qdrant returned a bad point: {reason}"));
    let Some(Kind::StringValue(text)) = payload.get(SOURCE_KEY).and_then(|v| v.kind.as_ref())
    else {
        return Err(bad(format!("no {SOURCE_KEY} in its payload")));
    };
    let source = ids::parse(text).map_err(|e| bad(format!("{SOURCE_KEY} {text:?}: {e}")))?;
    let id = match id.and_then(|i| i.point_id_options.as_ref()) {
        Some(PointIdOptions::Uuid(u)) => u.clone(),
        other => return Err(bad(format!("id {other:?} is not a UUID"))),
    };
    if id != point_id(&source) {
        return Err(bad(format!(
            "id {id} does not derive from its source {source}"
        )));
    }
    let mut meta = BTreeMap::new();
    match payload.get(META_KEY).and_then(|v| v.kind.as_ref()) {
        Some(Kind::StructValue(s)) => {
            for (k, v) in &s.fields {
                match &v.kind {
                    Some(Kind::StringValue(v)) => {
                        meta.insert(k.clone(), v.clone());
                    }
                    other => return Err(bad(format!("meta {k} is {other:?}, not a string"))),
                }
            }
        }
        None => {}
        other => return Err(bad(format!("{META_KEY} is {other:?}, not an object"))),
    }
    Ok((source, meta))
}

impl QdrantStore {
    /// Connect to a Qdrant gRPC endpoint (e.g. `http://127.0.0.1:6334`) and use `collection`,
    /// creating it (dot-product vectors of `dim` values) when it does not exist.
    pub async fn connect(url: &str, collection: &str, dim: usize) -> Result<Self> {
        check_dim(dim)?;
        let client = Qdrant::from_url(url)
            .skip_compatibility_check()
            .build()
            .map_err(|e| backend("connect", e))?;
        let exists = client
            .collection_exists(collection)
            .await
            .map_err(|e| backend("collection_exists", e))?;
        if !exists {
            client
                .create_collection(
                    CreateCollectionBuilder::new(collection)
                        .vectors_config(VectorParamsBuilder::new(dim as u64, Distance::Dot)),
                )
                .await
                .map_err(|e| backend("create_collection", e))?;
        }
        Ok(Self {
            client,
            collection: collection.to_string(),
            dim,
        })
    }

    /// The collection's name.
    pub fn collection(&self) -> &str {
        &self.collection
    }
}

fn filter(f: &Filter) -> QdrantFilter {
    QdrantFilter::must(
        f.equals
            .iter()
            .map(|(k, v)| Condition::matches(format!("{META_KEY}.{k}"), v.clone())),
    )
}

#[async_trait::async_trait]
impl VectorStore for QdrantStore {
    fn dim(&self) -> usize {
        self.dim
    }

    async fn upsert(&self, entries: Vec<Entry>) -> Result<()> {
        for e in &entries {
            check_vector(self.dim, &e.vector)?;
        }
        if entries.is_empty() {
            return Ok(());
        }
        let points: Vec<PointStruct> = entries
            .iter()
            .map(|e| PointStruct::new(point_id(&e.source), e.vector.clone(), payload(e)))
            .collect();
        self.client
            .upsert_points(UpsertPointsBuilder::new(&self.collection, points).wait(true))
            .await
            .map_err(|e| backend("upsert", e))?;
        Ok(())
    }

    async fn remove(&self, sources: &[Cid]) -> Result<()> {
        if sources.is_empty() {
            return Ok(());
        }
        let ids: Vec<PointId> = sources.iter().map(|s| point_id(s).into()).collect();
        self.client
            .delete_points(
                DeletePointsBuilder::new(&self.collection)
                    .points(PointsIdsList { ids })
                    .wait(true),
            )
            .await
            .map_err(|e| backend("delete", e))?;
        Ok(())
    }

    async fn search(&self, query: &[f32], k: usize, f: Option<&Filter>) -> Result<Vec<Hit>> {
        check_query(self.dim, query, k)?;
        let mut request = QueryPointsBuilder::new(&self.collection)
            .query(Query::new_nearest(query.to_vec()))
            .limit(k as u64)
            .with_payload(true);
        if let Some(f) = f.filter(|f| !f.equals.is_empty()) {
            request = request.filter(filter(f));
        }
        let response = self
            .client
            .query(request)
            .await
            .map_err(|e| backend("query", e))?;
        if response.result.len() > k {
            return Err(Error::Backend(format!(
                "qdrant returned {} hits for k = {k}",
                response.result.len()
            )));
        }
        let mut hits = Vec::with_capacity(response.result.len());
        for p in &response.result {
            let (source, meta) = decode_point(p.id.as_ref(), &p.payload)?;
            if !p.score.is_finite() || f.is_some_and(|f| !f.matches(&meta)) {
                return Err(Error::Backend(format!(
                    "qdrant returned a hit that fails the query: {source} score {}",
                    p.score
                )));
            }
            hits.push(Hit {
                source,
                score: p.score,
                meta,
            });
        }
        rank(&mut hits);
        Ok(hits)
    }

    async fn contains(&self, source: &Cid) -> Result<bool> {
        let response = self
            .client
            .get_points(
                GetPointsBuilder::new(&self.collection, vec![point_id(source).into()])
                    .with_payload(true),
            )
            .await
            .map_err(|e| backend("get", e))?;
        for p in &response.result {
            decode_point(p.id.as_ref(), &p.payload)?;
        }
        Ok(!response.result.is_empty())
    }

    async fn len(&self) -> Result<usize> {
        let response = self
            .client
            .count(CountPointsBuilder::new(&self.collection).exact(true))
            .await
            .map_err(|e| backend("count", e))?;
        Ok(response.result.map(|r| r.count).unwrap_or(0) as usize)
    }
}
