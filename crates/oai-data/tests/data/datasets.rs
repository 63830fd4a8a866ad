//! Datasets: build, open, read, prove, fork, change sets, proposals, the sampler.

use bytes::Bytes;
use oai_core::{ids, Seed};
use oai_data::dataset::{ChangeSet, Chunking, Proposal, Record, Repo, Sampler, Tensor, Version};
use oai_data::{car, gc, BlockStore, Error, MemStore, RefStore};

use super::{build, text_records};

#[tokio::test]
async fn build_open_read_and_prove() {
    let s = MemStore::new();
    let recs = text_records(500, "a");
    let v = Version::from_records(&s, recs.clone()).await.unwrap();
    assert_eq!(v.len(), 500);
    assert!(
        v.chunks().len() > 3,
        "content-defined chunks: {}",
        v.chunks().len()
    );
    let opened = Version::open(&s, &v.cid()).await.unwrap();
    assert_eq!(opened, v);
    assert_eq!(opened.records(&s).await.unwrap(), recs);
    for i in [0u64, 1, 250, 499] {
        let (r, cid, proof) = v.prove(&s, i).await.unwrap();
        assert_eq!(r, recs[i as usize]);
        assert_eq!(cid, r.cid());
        assert!(proof.verify_cid(&cid, &v.root()));
        assert!(!proof.verify_cid(&Record::Text("other".into()).cid(), &v.root()));
        let mut wrong_index = proof.clone();
        wrong_index.index += 1;
        assert!(!wrong_index.verify_cid(&cid, &v.root()));
        assert!(proof.in_chunk.siblings.len() + proof.in_version.siblings.len() <= 2 * 9 + 2);
    }
    assert!(matches!(
        v.record(&s, 500).await,
        Err(Error::IndexOutOfRange { .. })
    ));
}

#[tokio::test]
async fn large_datasets_get_index_pages_and_behave_the_same() {
    // tiny chunks make thousands of pages, so the manifest needs two index levels
    let s = MemStore::new();
    let tiny = Chunking {
        min: 8,
        avg: 24,
        max: 64,
    };
    let recs: Vec<Record> = (0..12_000).map(|i| Record::Text(format!("r{i}"))).collect();
    let v = build(&s, tiny, recs.clone()).await;
    let m = v.manifest();
    assert!(
        m.depth >= 1,
        "depth {} with {} chunks",
        m.depth,
        v.chunks().len()
    );
    assert!(m.pages.len() <= oai_data::dataset::manifest::MAX_TOP_PAGES);
    let opened = Version::open(&s, &v.cid()).await.unwrap();
    assert_eq!(opened, v);
    assert_eq!(opened.records(&s).await.unwrap(), recs);
    let (_, cid, proof) = v.prove(&s, 11_111).await.unwrap();
    assert!(proof.verify_cid(&cid, &v.root()));

    // an edit rewrites one path of pages, not the index
    let before = s.total_bytes();
    let mut ch = ChangeSet::default();
    ch.replace(&s, 6000, Record::Text("edited".into()))
        .await
        .unwrap();
    let v2 = v.apply(&s, &ch).await.unwrap();
    let added = s.total_bytes() - before;
    assert!(added < 4096, "one edit cost {added} bytes");
    assert_eq!(
        v2.record(&s, 6000).await.unwrap(),
        Record::Text("edited".into())
    );

    // a CAR carries the index pages too
    let mut buf = Vec::new();
    car::export(&s, &v2.cid(), &mut buf).await.unwrap();
    let t = MemStore::new();
    car::import(&t, &buf[..]).await.unwrap();
    assert_eq!(
        Version::open(&t, &v2.cid()).await.unwrap().root(),
        v2.root()
    );

    // an index page that lies about its chunk count is caught
    let mut lying = m.clone();
    lying.pages[0].chunks += 1;
    let bad = s
        .put(ids::DAG_CBOR, Bytes::from(lying.encode()))
        .await
        .unwrap();
    assert!(matches!(
        Version::open(&s, &bad).await,
        Err(Error::Malformed { .. })
    ));
}

#[tokio::test]
async fn tensors_are_checked() {
    assert!(Tensor::from_f32(vec![2, 2], &[1.0, 2.0, 3.0]).is_err());
    let t = Tensor::from_f32(vec![2, 2], &[1.0, 2.0, 3.0, 4.0]).unwrap();
    let r = Record::Labeled { input: t, label: 3 };
    assert_eq!(Record::decode(&r.encode()).unwrap(), r);
}

#[tokio::test]
async fn malformed_manifest_and_tampered_chunk_are_typed_errors() {
    let s = MemStore::new();
    let v = Version::from_records(&s, text_records(50, "m"))
        .await
        .unwrap();
    let garbage = s
        .put(ids::DAG_CBOR, Bytes::from_static(&[0xa1, 0x61, 0x78, 0x01]))
        .await
        .unwrap();
    assert!(matches!(
        Version::open(&s, &garbage).await,
        Err(Error::Malformed { .. })
    ));
    let raw = s.put(ids::RAW, Bytes::from_static(b"x")).await.unwrap();
    assert!(matches!(
        Version::open(&s, &raw).await,
        Err(Error::Malformed { .. })
    ));

    // a manifest whose root lies about its pages
    let mut m = v.manifest().clone();
    m.root = oai_core::Digest::of(b"lie");
    let lying = s.put(ids::DAG_CBOR, Bytes::from(m.encode())).await.unwrap();
    assert!(matches!(
        Version::open(&s, &lying).await,
        Err(Error::Malformed { .. })
    ));

    // a chunk replaced in the store is caught
    let c = v.chunks()[0].cid;
    s.corrupt_for_test(&c, Bytes::from_static(b"\x80"));
    assert!(matches!(
        v.record(&s, 0).await,
        Err(Error::CorruptBlock { .. })
    ));
}

#[tokio::test]
async fn forks_share_chunks_and_cas_protects_heads() {
    let s = MemStore::new();
    let repo = Repo::new(s.clone(), s.clone());
    let v = Version::from_records(&s, text_records(2000, "f"))
        .await
        .unwrap();
    repo.set_head("wiki", None, &v).await.unwrap();
    let before = s.total_bytes();
    let forked = repo.fork("wiki", "wiki-es").await.unwrap();
    assert_eq!(forked.cid(), v.cid());
    assert_eq!(s.total_bytes(), before, "a fork costs no bytes");

    let mut ch = ChangeSet::default();
    ch.replace(&s, 1000, Record::Text("edited".into()))
        .await
        .unwrap();
    let next = repo.commit("wiki-es", &ch).await.unwrap();
    let added = s.total_bytes() - before;
    assert!(
        added < v.manifest().bytes / 10,
        "one edit added {added} bytes"
    );
    assert_eq!(next.manifest().parent, Some(v.cid()));
    let d = v.diff(&s, &next).await.unwrap();
    assert_eq!(d.removed.len(), 1);
    assert_eq!(d.added, vec![(1000, Record::Text("edited".into()).cid())]);

    // a stale writer loses the CAS and nothing is overwritten
    match repo.set_head("wiki-es", Some(v.cid()), &v).await {
        Err(Error::CasConflict(c)) => assert_eq!(c.actual, Some(next.cid())),
        other => panic!("expected CAS conflict, got {other:?}"),
    }
    assert!(matches!(
        repo.fork("wiki", "wiki-es").await,
        Err(Error::CasConflict(_))
    ));
    assert_eq!(repo.list().await.unwrap().len(), 2);

    // GC after dropping the original head keeps everything the fork needs
    s.compare_and_swap("datasets/wiki", Some(v.cid()), None)
        .await
        .unwrap();
    let orphan = s
        .put(ids::RAW, Bytes::from_static(b"orphan"))
        .await
        .unwrap();
    let report = gc::collect_refs(&s, &s).await.unwrap();
    assert!(report.deleted >= 1);
    assert!(!s.has(&orphan).await.unwrap());
    let head = repo.head("wiki-es").await.unwrap().unwrap();
    assert_eq!(head.records(&s).await.unwrap().len(), 2000);
    // the parent is still reachable through the fork's history
    assert_eq!(Version::open(&s, &v.cid()).await.unwrap().len(), 2000);
}

#[tokio::test]
async fn malformed_change_sets_are_refused() {
    let s = MemStore::new();
    let v = Version::from_records(&s, text_records(10, "cs"))
        .await
        .unwrap();
    let unsorted = ChangeSet {
        removed: vec![3, 3],
        inserted: vec![],
    };
    assert!(matches!(
        v.apply(&s, &unsorted).await,
        Err(Error::InvalidArgument(_))
    ));
    let past_end = ChangeSet {
        removed: vec![10],
        inserted: vec![],
    };
    assert!(matches!(
        v.apply(&s, &past_end).await,
        Err(Error::IndexOutOfRange { index: 10, len: 10 })
    ));
    let mut far_insert = ChangeSet::default();
    far_insert
        .insert(&s, 12, Record::Text("x".into()))
        .await
        .unwrap();
    assert!(matches!(
        v.apply(&s, &far_insert).await,
        Err(Error::InvalidArgument(_))
    ));
}

#[tokio::test]
async fn proposals_verify_and_tampering_is_caught() {
    let s = MemStore::new();
    let v = Version::from_records(&s, text_records(300, "p"))
        .await
        .unwrap();
    let mut ch = ChangeSet::default();
    ch.remove(3);
    ch.insert(&s, 10, Record::Text("new".into())).await.unwrap();
    let (p, pcid, result) = Proposal::create(&s, &v, &ch, "add a record").await.unwrap();
    let loaded = Proposal::load(&s, &pcid).await.unwrap();
    assert_eq!(loaded, p);
    assert_eq!(loaded.verify(&s).await.unwrap().cid(), result.cid());
    let mut lie = p.clone();
    lie.result_root = v.root();
    assert!(matches!(lie.verify(&s).await, Err(Error::Verification(_))));
}

#[tokio::test]
async fn sampler_is_deterministic_and_batches_verify() {
    let s = MemStore::new();
    let v = Version::from_records(&s, text_records(103, "s"))
        .await
        .unwrap();
    let mut a = Sampler::for_version(&v, Seed::from_u64(42), 10).unwrap();
    let mut b = Sampler::for_version(&v, Seed::from_u64(42), 10).unwrap();
    assert_eq!(a.steps_per_epoch(), 10);
    let mut seen = std::collections::BTreeSet::new();
    for step in 0..10 {
        let i = a.indices(0, step).unwrap();
        assert_eq!(i, b.indices(0, step).unwrap());
        seen.extend(i);
    }
    assert_eq!(seen.len(), 100, "an epoch draws each index at most once");
    assert_ne!(a.indices(1, 0).unwrap(), a.indices(0, 0).unwrap());
    let mut c = Sampler::for_version(&v, Seed::from_u64(43), 10).unwrap();
    assert_ne!(c.indices(0, 0).unwrap(), a.indices(0, 0).unwrap());
    // pinned: the permutation is part of the log format and must never change silently
    let pinned = Sampler::new(oai_core::Digest::of(b"root"), 10, Seed::from_u64(1), 3)
        .unwrap()
        .permutation(0);
    assert_eq!(pinned, vec![8, 4, 9, 1, 6, 2, 7, 3, 5, 0]);

    let batch = a.batch(&s, &v, 2, 3).await.unwrap();
    batch.verify(&v.root(), &mut b).unwrap();
    // the batch carries its records: those its CIDs name, as one proof at a time gives them
    assert_eq!(batch.data.len(), batch.indices.len());
    for (i, (record, cid)) in batch
        .indices
        .iter()
        .zip(batch.data.iter().zip(&batch.records))
    {
        let (one, one_cid, one_proof) = v.prove(&s, *i).await.unwrap();
        assert_eq!((record, cid), (&one, &one_cid));
        assert!(batch.proofs.contains(&one_proof));
    }
    let mut bad = batch.clone();
    bad.records.swap(0, 1);
    assert!(matches!(
        bad.verify(&v.root(), &mut b),
        Err(Error::Verification(_))
    ));
    assert!(Sampler::for_version(&v, Seed::from_u64(1), 0).is_err());
}
