//! Named indexes (`indexes/NAME`): what the CLI makes and Python and C open.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use oai_core::{ids, Cid, ErrorKind};
use oai_data::dataset::{ChangeSet, Record, Version};
use oai_data::{BlockStore, MemStore, RefStore};
use oai_rag::{named, Error, HashedWords, VectorStore};

fn notes(n: usize) -> Vec<Record> {
    (0..n)
        .map(|i| {
            Record::Text(format!(
                "note {i} about topic {} and colour {}",
                i % 7,
                i % 5
            ))
        })
        .collect()
}

async fn version(store: &MemStore, records: Vec<Record>) -> Version {
    Version::from_records(store, records).await.unwrap()
}

#[tokio::test]
async fn a_named_index_is_made_moved_by_diff_and_opened_with_its_embedder_only() {
    let store = MemStore::new();
    let hashed = HashedWords::new(64).unwrap();
    let v1 = version(&store, notes(30)).await;
    let (r, d1) = named::ingest(&store, &store, "notes", hashed, &v1)
        .await
        .unwrap();
    assert_eq!((r.embedded, r.skipped, r.removed), (30, 0, 0));
    assert_eq!(
        (d1.dataset, d1.embedder.as_str()),
        (v1.cid(), "hashed-words-64")
    );

    // A new version moves the index by the diff: one passage replaced, one added.
    let mut changes = ChangeSet::default();
    let new = Record::Text("a passage about ferns and moss".into());
    changes.replace(&store, 4, new.clone()).await.unwrap();
    changes
        .insert(&store, 9, Record::Text("a passage about rivers".into()))
        .await
        .unwrap();
    let v2 = v1.apply(&store, &changes).await.unwrap();
    let (r, d2) = named::ingest(&store, &store, "notes", hashed, &v2)
        .await
        .unwrap();
    assert_eq!((r.embedded, r.removed), (2, 1));
    assert_eq!(d2.dataset, v2.cid());

    let opened = named::open(&store, &store, "notes", &hashed).await.unwrap();
    assert_eq!(opened.descriptor, d2);
    assert_eq!(opened.passages, v2.records(&store).await.unwrap());
    assert_eq!(opened.index.len().await.unwrap(), 31);
    let q = oai_rag::Embedder::embed(&hashed, &["ferns and moss".into()])
        .await
        .unwrap();
    let hits = opened.index.search(&q[0], 1, None).await.unwrap();
    assert_eq!(hits[0].source, new.cid());

    // Vectors of another model land in another space: refused, even at the same dimension.
    let other = HashedWords::new(32).unwrap();
    let err = named::open(&store, &store, "notes", &other)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    assert_eq!(
        err.to_string(),
        "invalid input: index notes was embedded with hashed-words-64, not hashed-words-32"
    );
    let head = store.get_ref(&named::head("notes")).await.unwrap();
    let err = named::ingest(&store, &store, "notes", other, &v1)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    assert_eq!(store.get_ref(&named::head("notes")).await.unwrap(), head);

    let err = named::open(&store, &store, "nope", &hashed)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(err.to_string(), "no index named \"nope\"");
}

#[tokio::test]
async fn a_head_that_names_no_descriptor_or_a_missing_index_is_a_typed_error() {
    let store = MemStore::new();
    let hashed = HashedWords::new(64).unwrap();
    // A head pointing at a block that is not a descriptor.
    let junk = store
        .put(ids::RAW, b"not cbor".to_vec().into())
        .await
        .unwrap();
    store
        .compare_and_swap(&named::head("junk"), None, Some(junk))
        .await
        .unwrap();
    let err = named::open(&store, &store, "junk", &hashed)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity, "{err}");

    // A descriptor whose index block is not in the store.
    let v = version(&store, notes(3)).await;
    let (_, mut d) = named::ingest(&store, &store, "notes", hashed, &v)
        .await
        .unwrap();
    d.index = ids::cid_v1(ids::DAG_CBOR, b"an index nobody saved");
    let cid = store
        .put(
            ids::DAG_CBOR,
            serde_ipld_dagcbor::to_vec(&d).unwrap().into(),
        )
        .await
        .unwrap();
    let head = store.get_ref(&named::head("notes")).await.unwrap();
    store
        .compare_and_swap(&named::head("notes"), head, Some(cid))
        .await
        .unwrap();
    let err = named::open(&store, &store, "notes", &hashed)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

/// Heads that another writer moves while an ingest embeds: before the ingest reads the head a
/// second time or writes it, whichever comes first.
#[derive(Debug)]
struct Racing {
    refs: MemStore,
    other: Cid,
    reads: AtomicUsize,
    raced: AtomicBool,
}

impl Racing {
    async fn race(&self, name: &str) -> oai_data::Result<()> {
        if !self.raced.swap(true, Ordering::SeqCst) {
            let head = self.refs.get_ref(name).await?;
            self.refs
                .compare_and_swap(name, head, Some(self.other))
                .await?;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl RefStore for Racing {
    async fn get_ref(&self, name: &str) -> oai_data::Result<Option<Cid>> {
        if self.reads.fetch_add(1, Ordering::SeqCst) > 0 {
            self.race(name).await?;
        }
        self.refs.get_ref(name).await
    }

    async fn compare_and_swap(
        &self,
        name: &str,
        expected: Option<Cid>,
        new: Option<Cid>,
    ) -> oai_data::Result<()> {
        self.race(name).await?;
        self.refs.compare_and_swap(name, expected, new).await
    }

    async fn list_refs(&self) -> oai_data::Result<Vec<(String, Cid)>> {
        self.refs.list_refs().await
    }
}

#[tokio::test]
async fn two_writers_racing_on_one_name_do_not_lose_each_others_work() {
    let store = MemStore::new();
    let hashed = HashedWords::new(64).unwrap();
    let v = version(&store, notes(5)).await;
    let theirs = ids::cid_v1(ids::DAG_CBOR, b"the other writer's descriptor");
    let refs = Racing {
        refs: MemStore::new(),
        other: theirs,
        reads: AtomicUsize::new(0),
        raced: AtomicBool::new(false),
    };
    let err = named::ingest(&store, &refs, "notes", hashed, &v)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert_eq!(
        refs.get_ref(&named::head("notes")).await.unwrap(),
        Some(theirs),
        "the other writer's head stands"
    );
}
