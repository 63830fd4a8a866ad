//! The test suite every [`BlockStore`] and [`RefStore`] implementation must pass.
//!
//! Call [`block_store`] and [`ref_store`] from a test with a fresh store; they panic with a
//! message naming the broken rule. Content is made unique per call, so a shared store (such as
//! a real IPFS node) can be used.

use bytes::Bytes;
use oai_core::ids;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{Block, BlockStore, RefStore, MAX_BLOCK_SIZE};
use crate::Error;

fn unique(label: &str) -> Vec<u8> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos();
    format!(
        "oai conformance {label} {nanos} {:?}",
        std::thread::current().id()
    )
    .into_bytes()
}

/// Check the [`BlockStore`] contract on `store`.
pub async fn block_store<S: BlockStore + Clone + 'static>(store: &S) {
    // put + get + has round-trip, for every codec oai writes
    for codec in [ids::RAW, ids::DAG_PB, ids::DAG_CBOR] {
        let data = Bytes::from(unique(&format!("codec {codec}")));
        let cid = store.put(codec, data.clone()).await.expect("put");
        assert_eq!(cid, ids::cid_v1(codec, &data), "put returns the CIDv1");
        assert_eq!(
            store.get(&cid).await.expect("get"),
            data,
            "get returns what was put"
        );
        assert!(store.has(&cid).await.expect("has"), "has after put");
        store
            .put(codec, data.clone())
            .await
            .expect("put is idempotent");
    }

    // empty block
    let empty = store.put(ids::RAW, Bytes::new()).await.expect("put empty");
    assert!(store.get(&empty).await.expect("get empty").is_empty());

    // a missing block is NotFound
    let missing = ids::cid_v1(ids::RAW, &unique("missing"));
    assert!(!store.has(&missing).await.expect("has missing"));
    match store.get(&missing).await {
        Err(Error::NotFound(c)) => assert_eq!(c, missing),
        other => panic!("get of a missing block must be NotFound, got {other:?}"),
    }

    // a block put with `put_block` after verification reads back
    let data = Bytes::from(unique("verified"));
    let cid = ids::cid_v1(ids::DAG_CBOR, &data);
    let block = Block::verified(cid, data.clone()).expect("matching bytes verify");
    store.put_block(block).await.expect("put_block");
    assert_eq!(store.get(&cid).await.expect("get"), data);

    // unknown codec and oversized blocks are refused with their own errors
    assert!(matches!(
        store.put(0x300, Bytes::from(unique("codec"))).await,
        Err(Error::UnknownCodec(0x300))
    ));
    let big = Bytes::from(vec![7u8; MAX_BLOCK_SIZE + 1]);
    assert!(matches!(
        store.put(ids::RAW, big).await,
        Err(Error::BlockTooLarge { .. })
    ));

    // concurrent writers of the same block
    let data = Bytes::from(unique("concurrent"));
    let cid = ids::cid_v1(ids::RAW, &data);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let s = store.clone();
            let d = data.clone();
            tokio::spawn(async move { s.put(ids::RAW, d).await })
        })
        .collect();
    for t in tasks {
        t.await.expect("task").expect("concurrent put");
    }
    assert_eq!(store.get(&cid).await.expect("get"), data);

    // list and delete
    let listed = store.list().await.expect("list");
    assert!(
        listed.iter().any(|c| c.hash() == cid.hash()),
        "list names stored blocks"
    );
    store.delete(&cid).await.expect("delete");
    assert!(!store.has(&cid).await.expect("has"), "deleted");
    store
        .delete(&cid)
        .await
        .expect("delete of an absent block is fine");
}

/// Check the [`RefStore`] contract on `store`.
pub async fn ref_store<S: RefStore + Clone + 'static>(store: &S) {
    let a = ids::cid_v1(ids::RAW, b"a");
    let b = ids::cid_v1(ids::RAW, b"b");
    let name = "datasets/demo/main";

    assert_eq!(store.get_ref(name).await.expect("get"), None);
    store
        .compare_and_swap(name, None, Some(a))
        .await
        .expect("create");
    assert_eq!(store.get_ref(name).await.expect("get"), Some(a));

    match store.compare_and_swap(name, None, Some(b)).await {
        Err(Error::CasConflict(c)) => assert_eq!(c.actual, Some(a)),
        other => panic!("stale CAS must conflict, got {other:?}"),
    }
    assert_eq!(
        store.get_ref(name).await.expect("get"),
        Some(a),
        "a lost CAS changes nothing"
    );

    store
        .compare_and_swap(name, Some(a), Some(b))
        .await
        .expect("advance");
    store
        .compare_and_swap("datasets/demo/fork-1", None, Some(a))
        .await
        .expect("fork");
    let refs = store.list_refs().await.expect("list");
    assert_eq!(
        refs,
        vec![
            ("datasets/demo/fork-1".to_string(), a),
            ("datasets/demo/main".to_string(), b)
        ],
        "list_refs is sorted by name"
    );

    store
        .compare_and_swap(name, Some(b), None)
        .await
        .expect("delete");
    assert_eq!(store.get_ref(name).await.expect("get"), None);

    for bad in [
        "",
        "/x",
        "x/",
        "a//b",
        "../x",
        "a/./b",
        "sp ace",
        "new\nline",
    ] {
        assert!(
            matches!(store.get_ref(bad).await, Err(Error::InvalidRefName(_))),
            "name {bad:?} must be refused"
        );
        assert!(matches!(
            store.compare_and_swap(bad, None, Some(a)).await,
            Err(Error::InvalidRefName(_))
        ));
    }

    // racing writers: of 8 CAS from the same expected value exactly one wins
    let race = "race/head";
    store
        .compare_and_swap(race, None, Some(a))
        .await
        .expect("seed");
    let tasks: Vec<_> = (0..8u8)
        .map(|i| {
            let s = store.clone();
            tokio::spawn(async move {
                let new = ids::cid_v1(ids::RAW, &[i]);
                s.compare_and_swap(race, Some(a), Some(new)).await
            })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        match t.await.expect("task") {
            Ok(()) => wins += 1,
            Err(Error::CasConflict(_)) => {}
            Err(e) => panic!("unexpected error in CAS race: {e}"),
        }
    }
    assert_eq!(wins, 1, "exactly one racing CAS wins");
}
