//! CARv1 import: any bytes a peer sends as a CAR. Import verifies every block against its CID
//! before storing it; nothing may panic, and every stored block must read back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oai_data::{car, BlockStore, MemStore};

fuzz_target!(|data: &[u8]| {
    let store = MemStore::new();
    let _ = futures::executor::block_on(car::import(&store, data));
    futures::executor::block_on(async {
        for cid in store.list().await.expect("a memory store lists") {
            store.get(&cid).await.expect("what import stored verifies");
        }
    });
});
