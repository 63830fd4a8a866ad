//! Integration tests of oai-data: store conformance, UnixFS/CAR against real IPFS tools,
//! datasets (fork/diff/apply laws, proofs, sampler, proposals, GC) and bad input.
//!
//! Real components: set `OAI_IPFS_API` (e.g. `http://127.0.0.1:5801`, a js-ipfs or kubo RPC
//! API) and `OAI_IPFS_CAR` (path of npm `ipfs-car`'s CLI) to run the tests that need them;
//! `.ci/run` starts both. Without them those tests print why they skip, unless
//! `OAI_REQUIRE_REAL` is set (as `.ci/run` does), which turns a missing component into a failure.

use oai_data::dataset::{Chunking, Record, Version};
use oai_data::MemStore;

mod datasets;
mod files;
mod laws;
mod stores;

/// Skip (with a message) when a real component is not configured, or fail under
/// `OAI_REQUIRE_REAL`.
fn skip_without(var: &str, what: &str) {
    assert!(
        std::env::var_os("OAI_REQUIRE_REAL").is_none(),
        "{var} is not set but OAI_REQUIRE_REAL is ({what})"
    );
    eprintln!("SKIP: {var} is not set ({what})");
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

fn text_records(n: usize, salt: &str) -> Vec<Record> {
    (0..n)
        .map(|i| Record::Text(format!("{salt} record {i} {}", "x".repeat(i % 300))))
        .collect()
}

/// A version of `records` with the given chunking.
async fn build(s: &MemStore, chunking: Chunking, records: Vec<Record>) -> Version {
    let mut b = oai_data::dataset::Builder::new(s).chunking(chunking);
    for r in records {
        b.push(r).await.unwrap();
    }
    b.finish().await.unwrap()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}
