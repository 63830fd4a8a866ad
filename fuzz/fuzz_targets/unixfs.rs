//! dag-pb / UnixFS: a node as a peer serves it. Decoding must not panic; a file read from it
//! (its children missing or not) stays within the limit it is read with.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use oai_core::ids;
use oai_data::unixfs::{self, pb};
use oai_data::{BlockStore, MemStore};

fuzz_target!(|data: &[u8]| {
    if let Ok(node) = pb::PbNode::decode(data) {
        if let Some(d) = &node.data {
            let _ = pb::UnixFsData::decode(d);
        }
    }
    let _ = pb::UnixFsData::decode(data);
    futures::executor::block_on(async {
        let store = MemStore::new();
        // a one-byte leaf, so that a node linking it has something to read
        store.put(ids::RAW, Bytes::from_static(b"x")).await.unwrap();
        if let Ok(root) = store.put(ids::DAG_PB, Bytes::copy_from_slice(data)).await {
            let limit = 1 << 16;
            if let Ok(bytes) = unixfs::read_to_vec_within(&store, &root, "file", limit).await {
                assert!(bytes.len() as u64 <= limit);
            }
        }
    });
});
