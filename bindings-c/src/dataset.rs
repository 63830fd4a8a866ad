//! `oai_dataset`: a dataset version (immutable, named by its manifest CID): import, open, fork,
//! append, diff, read a record, prove a record and verify the proof.

use std::ffi::c_char;
use std::sync::Arc;

use oai::core::Digest;
use oai::data::dataset::{sources, ChangeSet, Record, RecordProof, Version};
use serde_json::json;

use crate::buffers::{set_bytes, str_arg, Out};
use crate::handles::{self, Object};
use crate::runtime::block_on;
use crate::status::{call, oai_status, Error, Result};
use crate::store::{cid_arg, oai_store, store_arg, StoreHandle};

/// A dataset version (opaque). Immutable and thread-safe; it keeps its store's blocks
/// reachable, so it stays usable after its store handle is freed.
#[allow(non_camel_case_types)]
pub struct oai_dataset {
    _private: [u8; 0],
}

/// What an `oai_dataset` handle holds.
pub struct DatasetHandle {
    store: Arc<StoreHandle>,
    version: Version,
}

fn register(store: Arc<StoreHandle>, version: Version, out: Out<*mut oai_dataset>) {
    let handle = DatasetHandle { store, version };
    out.set(handles::insert(Object::Dataset(Arc::new(handle))));
}

fn dataset_arg(ds: *const oai_dataset, what: &str) -> Result<Arc<DatasetHandle>> {
    match handles::get(ds, what)? {
        Object::Dataset(d) => Ok(d),
        other => Err(handles::wrong_kind(what, "oai_dataset", &other)),
    }
}

/// Import the UTF-8 file at `path`, a text record per line, as the next version of dataset
/// `name` (its first if there is none; only changed chunks are stored) and move the head
/// `name` to it; the new version in `*out`.
///
/// # Safety
/// `name` and `path` are NULL or NUL-terminated strings; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn oai_dataset_import_lines(
    store: *const oai_store,
    name: *const c_char,
    path: *const c_char,
    out: *mut *mut oai_dataset,
) -> oai_status {
    // SAFETY: the caller's contract.
    unsafe { import(store, name, path, out, |p| Ok(sources::lines_of_file(p)?)) }
}

/// Import the CSV file at `path` as [`oai_dataset_import_lines`] imports lines: each line
/// numeric features with an integer class last (the layout of scikit-learn's digits), a
/// labelled float32 record per line with the features times `scale`. The records an MLP job
/// trains on.
///
/// # Safety
/// `name` and `path` are NULL or NUL-terminated strings; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn oai_dataset_import_csv(
    store: *const oai_store,
    name: *const c_char,
    path: *const c_char,
    scale: f32,
    out: *mut *mut oai_dataset,
) -> oai_status {
    // SAFETY: the caller's contract.
    unsafe {
        import(store, name, path, out, |p| {
            Ok(oai::train::corpus::labeled_from_csv_file(p, scale)?)
        })
    }
}

/// Import the records `read` makes of the file at `path` as the next version of `name`.
///
/// # Safety
/// As [`oai_dataset_import_lines`].
unsafe fn import(
    store: *const oai_store,
    name: *const c_char,
    path: *const c_char,
    out: *mut *mut oai_dataset,
    read: impl FnOnce(&std::path::Path) -> Result<Vec<Record>>,
) -> oai_status {
    call(|| {
        let store = store_arg(store, "store")?;
        // SAFETY: the caller's contract.
        let name = unsafe { str_arg(name, "name") }?;
        // SAFETY: the caller's contract.
        let path = unsafe { str_arg(path, "path") }?;
        let out = Out::new(out, "out")?;
        let records = read(path.as_ref())?;
        let (_, version) = block_on(store.repo.import(name, "", records))??;
        register(store, version, out);
        Ok(())
    })
}

/// Open a dataset version by name (its head) or by manifest CID into `*out`.
///
/// # Safety
/// `name_or_cid` is NULL or a NUL-terminated string; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn oai_dataset_open(
    store: *const oai_store,
    name_or_cid: *const c_char,
    out: *mut *mut oai_dataset,
) -> oai_status {
    call(|| {
        let store = store_arg(store, "store")?;
        // SAFETY: the caller's contract.
        let name = unsafe { str_arg(name_or_cid, "name_or_cid") }?;
        let out = Out::new(out, "out")?;
        let version = block_on(store.repo.resolve(name))??;
        register(store, version, out);
        Ok(())
    })
}

/// Fork dataset `from` as `to`: a new head on the same version, sharing every block
/// (`OAI_ERROR_CONFLICT` if `to` exists); the version in `*out`.
///
/// # Safety
/// `from` and `to` are NULL or NUL-terminated strings; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn oai_dataset_fork(
    store: *const oai_store,
    from: *const c_char,
    to: *const c_char,
    out: *mut *mut oai_dataset,
) -> oai_status {
    call(|| {
        let store = store_arg(store, "store")?;
        // SAFETY: the caller's contract.
        let from = unsafe { str_arg(from, "from") }?;
        // SAFETY: the caller's contract.
        let to = unsafe { str_arg(to, "to") }?;
        let out = Out::new(out, "out")?;
        let version = block_on(store.repo.fork(from, to))??;
        register(store, version, out);
        Ok(())
    })
}

/// Append `count` text records (`lines[0..count]`) to dataset `name` and move its head to
/// the new version (compare-and-swap: `OAI_ERROR_CONFLICT` if another writer moved it
/// first); the new version in `*out`.
///
/// # Safety
/// `lines` points to `count` NUL-terminated strings (or is NULL with `count` 0); `name` is
/// NULL or a NUL-terminated string; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn oai_dataset_append_lines(
    store: *const oai_store,
    name: *const c_char,
    lines: *const *const c_char,
    count: usize,
    out: *mut *mut oai_dataset,
) -> oai_status {
    call(|| {
        let store = store_arg(store, "store")?;
        // SAFETY: the caller's contract.
        let name = unsafe { str_arg(name, "name") }?;
        let out = Out::new(out, "out")?;
        if count > 0 && lines.is_null() {
            return Err(Error::null("lines"));
        }
        let texts = (0..count)
            .map(|i| {
                // SAFETY: `lines` has `count` readable entries by the caller's contract.
                let line = unsafe { *lines.add(i) };
                // SAFETY: each entry is NULL or a NUL-terminated string.
                unsafe { str_arg(line, &format!("lines[{i}]")) }.map(str::to_string)
            })
            .collect::<Result<Vec<_>>>()?;
        let version = block_on(async {
            let head =
                store
                    .repo
                    .head(name)
                    .await?
                    .ok_or_else(|| oai::data::Error::UnknownName {
                        what: "dataset",
                        name: name.to_string(),
                    })?;
            let mut changes = ChangeSet::default();
            for (i, text) in texts.into_iter().enumerate() {
                let index = head.len() + i as u64;
                changes
                    .insert(store.blocks(), index, Record::Text(text))
                    .await?;
            }
            // against the head the indices were computed from: a writer who moved it since
            // makes this a conflict, not an append in the wrong place
            let next = head.apply(store.blocks(), &changes).await?;
            store.repo.set_head(name, Some(head.cid()), &next).await?;
            Ok::<_, oai::data::Error>(next)
        })??;
        register(store, version, out);
        Ok(())
    })
}

/// Free a dataset handle (NULL is ignored).
///
/// # Safety
/// Any pointer value is accepted; a freed or foreign one is `OAI_ERROR_WRONG_HANDLE`.
#[no_mangle]
pub unsafe extern "C" fn oai_dataset_free(dataset: *mut oai_dataset) -> oai_status {
    call(|| handles::free(dataset, "dataset", |o| matches!(o, Object::Dataset(_))))
}

/// The version's CID (its manifest's) in `*cid_out` (free with `oai_string_free`).
///
/// # Safety
/// `cid_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn oai_dataset_cid(
    dataset: *const oai_dataset,
    cid_out: *mut *mut c_char,
) -> oai_status {
    call(|| {
        let ds = dataset_arg(dataset, "dataset")?;
        Out::new(cid_out, "cid_out")?.set_string(&ds.version.cid().to_string());
        Ok(())
    })
}

/// The version root (64 hex digits: the Merkle root record proofs are checked against) in
/// `*root_out` (free with `oai_string_free`).
///
/// # Safety
/// `root_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn oai_dataset_root(
    dataset: *const oai_dataset,
    root_out: *mut *mut c_char,
) -> oai_status {
    call(|| {
        let ds = dataset_arg(dataset, "dataset")?;
        Out::new(root_out, "root_out")?.set_string(&ds.version.root().to_string());
        Ok(())
    })
}

/// The number of records in `*len_out`.
///
/// # Safety
/// `len_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn oai_dataset_len(
    dataset: *const oai_dataset,
    len_out: *mut u64,
) -> oai_status {
    call(|| {
        let ds = dataset_arg(dataset, "dataset")?;
        Out::new(len_out, "len_out")?.set(ds.version.len());
        Ok(())
    })
}

/// The bytes of record `index` (a text record's UTF-8, without a NUL; a bytes record's
/// bytes) in a new buffer `*data_out`, `*len_out` (free with `oai_bytes_free`). Tensor
/// records are `OAI_ERROR_INVALID_INPUT`; an index past the end too.
///
/// # Safety
/// `data_out` and `len_out` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn oai_dataset_record(
    dataset: *const oai_dataset,
    index: u64,
    data_out: *mut *mut u8,
    len_out: *mut usize,
) -> oai_status {
    call(|| {
        let ds = dataset_arg(dataset, "dataset")?;
        let data_out = Out::new(data_out, "data_out")?;
        let len_out = Out::new(len_out, "len_out")?;
        let bytes = match block_on(ds.version.record(ds.store.blocks(), index))?? {
            Record::Text(t) => t.into_bytes(),
            Record::Bytes(b) => b,
            _ => {
                return Err(Error::invalid(format!(
                    "record {index} is a tensor: liboai reads text and bytes records"
                )))
            }
        };
        set_bytes(data_out, len_out, bytes);
        Ok(())
    })
}

/// What changed from version `a` to version `b`, as JSON in `*json_out` (free with
/// `oai_string_free`): `{"removed": [[index in a, record CID], ...], "added": [[index in b,
/// record CID], ...]}`. Chunks the two share are not read.
///
/// # Safety
/// `json_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn oai_dataset_diff(
    a: *const oai_dataset,
    b: *const oai_dataset,
    json_out: *mut *mut c_char,
) -> oai_status {
    call(|| {
        let a = dataset_arg(a, "a")?;
        let b = dataset_arg(b, "b")?;
        let json_out = Out::new(json_out, "json_out")?;
        let d = block_on(a.version.diff(a.store.blocks(), &b.version))??;
        let list = |items: &[(u64, oai::core::Cid)]| {
            items
                .iter()
                .map(|(i, c)| json!([i, c.to_string()]))
                .collect::<Vec<_>>()
        };
        let value = json!({"removed": list(&d.removed), "added": list(&d.added)});
        json_out.set_string(&value.to_string());
        Ok(())
    })
}

/// An inclusion proof of record `index` against the version root, as JSON in `*proof_out`
/// (free with `oai_string_free`): `{"record": CID, "root": hex, "proof": {...}}`. It travels
/// as text and is checked by [`oai_proof_verify`] with the root alone.
///
/// # Safety
/// `proof_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn oai_dataset_prove(
    dataset: *const oai_dataset,
    index: u64,
    proof_out: *mut *mut c_char,
) -> oai_status {
    call(|| {
        let ds = dataset_arg(dataset, "dataset")?;
        let proof_out = Out::new(proof_out, "proof_out")?;
        let (_, cid, proof) = block_on(ds.version.prove(ds.store.blocks(), index))??;
        let value = json!({
            "record": cid.to_string(),
            "root": ds.version.root().to_string(),
            "proof": proof,
        });
        proof_out.set_string(&value.to_string());
        Ok(())
    })
}

/// Check a proof from [`oai_dataset_prove`]: `*valid_out` is true when its record sits at its
/// index under `root` (64 hex digits; NULL: the root the proof names, which only checks the
/// proof is consistent; pass the root you trust). A proof that is not such JSON is
/// `OAI_ERROR_INVALID_INPUT`.
///
/// # Safety
/// `proof_json` and `root` are NULL or NUL-terminated strings; `valid_out` is NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn oai_proof_verify(
    proof_json: *const c_char,
    root: *const c_char,
    valid_out: *mut bool,
) -> oai_status {
    call(|| {
        // SAFETY: the caller's contract.
        let text = unsafe { str_arg(proof_json, "proof_json") }?;
        // SAFETY: the caller's contract.
        let root = unsafe { crate::buffers::opt_str_arg(root, "root") }?;
        let valid_out = Out::new(valid_out, "valid_out")?;
        let bad = |e: &dyn std::fmt::Display| Error::invalid(format!("proof_json: {e}"));
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| bad(&e))?;
        let field = |name: &str| {
            value
                .get(name)
                .ok_or_else(|| bad(&format!("no field {name:?}")))
        };
        let record = cid_arg(
            field("record")?
                .as_str()
                .ok_or_else(|| bad(&"record is not a string"))?,
            "record",
        )?;
        let proof: RecordProof =
            serde_json::from_value(field("proof")?.clone()).map_err(|e| bad(&e))?;
        let root_hex = match root {
            Some(r) => r.to_string(),
            None => field("root")?
                .as_str()
                .ok_or_else(|| bad(&"root is not a string"))?
                .to_string(),
        };
        let root: Digest = root_hex
            .parse()
            .map_err(|e| Error::invalid(format!("root {root_hex:?}: {e}")))?;
        valid_out.set(proof.verify_cid(&record, &root));
        Ok(())
    })
}
