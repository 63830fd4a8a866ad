//! Named indexes: an [`HnswStore`] saved through the block store with a descriptor (the dataset
//! version it indexes and the embedder it was made with) under the head `indexes/NAME` of a
//! [`RefStore`]. `oai rag ingest` makes them; the CLI, Python and C open them by name.
//!
//! Ingesting a new version of the dataset into a named index re-embeds only what the diff
//! changed; the head moves by compare-and-swap from the descriptor the update started from, so
//! two writers racing on one name cannot lose each other's work silently (the later one gets
//! [`oai_data::Error::CasConflict`]).

use oai_core::{ids, Cid};
use oai_data::dataset::{Record, Version};
use oai_data::{BlockStore, RefStore};
use serde::{Deserialize, Serialize};

use crate::federation::LocalPeer;
use crate::{Embedder, Error, HnswStore, IngestReport, Ingestor, Result};

/// What the head `indexes/NAME` points to (a DAG-CBOR block whose links keep the index and the
/// dataset reachable, so `oai gc` keeps them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexDescriptor {
    /// The saved HNSW index ([`HnswStore::save`]).
    pub index: Cid,
    /// The dataset version indexed.
    pub dataset: Cid,
    /// The name of the embedder it was made with ([`Embedder::name`]).
    pub embedder: String,
}

/// A named index opened for searching: its descriptor, its index and its dataset's passages
/// (each read from the store, so each checked against its CID).
#[derive(Debug)]
pub struct NamedIndex {
    /// The descriptor the head pointed to.
    pub descriptor: IndexDescriptor,
    /// The index.
    pub index: HnswStore,
    /// The indexed dataset version's records.
    pub passages: Vec<Record>,
}

impl NamedIndex {
    /// The index and its passages as the local peer of a federation, named `local:NAME`.
    pub fn into_peer(self, name: &str) -> LocalPeer<HnswStore> {
        LocalPeer::new(format!("local:{name}"), self.index, self.passages)
    }
}

/// The head that names index `name`: `indexes/NAME`.
pub fn head(name: &str) -> String {
    format!("indexes/{name}")
}

/// The descriptor of index `name` and its CID, or `None` when no index has that name.
pub async fn descriptor<S, R>(
    blocks: &S,
    refs: &R,
    name: &str,
) -> Result<Option<(Cid, IndexDescriptor)>>
where
    S: BlockStore + ?Sized,
    R: RefStore + ?Sized,
{
    let Some(cid) = refs.get_ref(&head(name)).await? else {
        return Ok(None);
    };
    let bytes = blocks.get(&cid).await?;
    let d = serde_ipld_dagcbor::from_slice(&bytes).map_err(|e| {
        Error::Index(format!(
            "index {name}: descriptor {cid} does not decode: {e}"
        ))
    })?;
    Ok(Some((cid, d)))
}

/// `InvalidInput` unless `embedder` is the one the index was made with: vectors of another
/// model land in another space, and a search with them finds noise.
fn check_embedder(name: &str, d: &IndexDescriptor, embedder: &dyn Embedder) -> Result<()> {
    let ours = embedder.name();
    if ours != d.embedder {
        return Err(Error::InvalidInput(format!(
            "index {name} was embedded with {}, not {ours}",
            d.embedder
        )));
    }
    Ok(())
}

/// The index `name` and its descriptor, to search with vectors of `embedder` (the one it was
/// made with): `oai_data::Error::UnknownName` when there is no such index.
pub async fn load<S, R>(
    blocks: &S,
    refs: &R,
    name: &str,
    embedder: &dyn Embedder,
) -> Result<(IndexDescriptor, HnswStore)>
where
    S: BlockStore + ?Sized,
    R: RefStore + ?Sized,
{
    let (_, descriptor) =
        descriptor(blocks, refs, name)
            .await?
            .ok_or_else(|| oai_data::Error::UnknownName {
                what: "index",
                name: name.to_string(),
            })?;
    check_embedder(name, &descriptor, embedder)?;
    let index = HnswStore::load(blocks, &descriptor.index).await?;
    Ok((descriptor, index))
}

/// [`load`], with the indexed dataset's passages, to search and answer from.
pub async fn open<S, R>(
    blocks: &S,
    refs: &R,
    name: &str,
    embedder: &dyn Embedder,
) -> Result<NamedIndex>
where
    S: BlockStore + ?Sized,
    R: RefStore + ?Sized,
{
    let (descriptor, index) = load(blocks, refs, name, embedder).await?;
    let version = Version::open(blocks, &descriptor.dataset).await?;
    let passages = version.records(blocks).await?;
    Ok(NamedIndex {
        descriptor,
        index,
        passages,
    })
}

/// Embed the text records of `version` into index `name` and point the name at the result:
/// a new index when there is none by that name; otherwise the index moves from the version it
/// holds to `version` by their diff (only what arrived is embedded, what left is removed).
/// Refused, with nothing moved, when the index was made with another embedder or the head
/// moved meanwhile.
pub async fn ingest<S, R, E>(
    blocks: &S,
    refs: &R,
    name: &str,
    embedder: E,
    version: &Version,
) -> Result<(IngestReport, IndexDescriptor)>
where
    S: BlockStore + ?Sized,
    R: RefStore + ?Sized,
    E: Embedder,
{
    let old = descriptor(blocks, refs, name).await?;
    let embedder_name = embedder.name();
    let (report, index) = match &old {
        Some((_, d)) => {
            check_embedder(name, d, &embedder)?;
            let ingestor = Ingestor::new(embedder, HnswStore::load(blocks, &d.index).await?);
            let before = Version::open(blocks, &d.dataset).await?;
            let report = ingestor.update(blocks, &before, version).await?;
            (report, ingestor.into_index())
        }
        None => {
            let index = HnswStore::new(embedder.dim())?;
            let ingestor = Ingestor::new(embedder, index);
            let report = ingestor.ingest(blocks, version).await?;
            (report, ingestor.into_index())
        }
    };
    let descriptor = IndexDescriptor {
        index: index.save(blocks).await?,
        dataset: version.cid(),
        embedder: embedder_name,
    };
    let bytes = serde_ipld_dagcbor::to_vec(&descriptor)
        .map_err(|e| Error::Index(format!("index {name}: descriptor does not encode: {e}")))?;
    let cid = blocks.put(ids::DAG_CBOR, bytes.into()).await?;
    refs.compare_and_swap(&head(name), old.map(|(cid, _)| cid), Some(cid))
        .await?;
    Ok((report, descriptor))
}
