//! QdrantStore against an in-process Qdrant gRPC server that can be made to lie.

use std::collections::BTreeMap;

use oai_core::ids;
use oai_rag::vector::qdrant::{point_id, META_KEY, SOURCE_KEY};
use oai_rag::vector::{Entry, Filter, QdrantStore, VectorStore};
use oai_rag::Error;
use qdrant_client::qdrant as q;

use super::support::qdrant_fake::{FakeQdrant, Lie};

#[tokio::test]
async fn qdrant_store_passes_the_conformance_suite() {
    let (_fake, url) = FakeQdrant::start().await;
    let store = QdrantStore::connect(&url, "suite", 8).await.unwrap();
    oai_rag::vector::conformance::run(&store).await;
}

fn entry(i: u64) -> Entry {
    let mut vector = vec![0.0; 4];
    vector[i as usize % 4] = 1.0;
    Entry {
        source: ids::cid_v1(ids::RAW, &i.to_le_bytes()),
        vector,
        meta: BTreeMap::from([("lang".to_string(), "en".to_string())]),
    }
}

#[tokio::test]
async fn qdrant_store_sends_the_requests_qdrant_expects() {
    let (fake, url) = FakeQdrant::start().await;
    let store = QdrantStore::connect(&url, "docs", 4).await.unwrap();
    // connecting again finds the collection instead of creating it twice
    QdrantStore::connect(&url, "docs", 4).await.unwrap();
    let r = fake.received();
    assert_eq!(r.exists.len(), 2);
    assert_eq!(r.creates.len(), 1);
    let create = &r.creates[0];
    assert_eq!(create.collection_name, "docs");
    let Some(q::vectors_config::Config::Params(params)) = create
        .vectors_config
        .as_ref()
        .and_then(|c| c.config.as_ref())
    else {
        panic!("{create:?}")
    };
    assert_eq!((params.size, params.distance), (4, q::Distance::Dot as i32));

    let e = entry(1);
    store.upsert(vec![e.clone()]).await.unwrap();
    let up = &fake.received().upserts[0];
    assert_eq!((up.collection_name.as_str(), up.wait), ("docs", Some(true)));
    assert_eq!(up.points.len(), 1);
    let p = &up.points[0];
    assert_eq!(p.id, Some(q::PointId::from(point_id(&e.source))));
    let Some(q::value::Kind::StringValue(src)) = &p.payload[SOURCE_KEY].kind else {
        panic!("{p:?}")
    };
    assert_eq!(src, &e.source.to_string());
    let Some(q::value::Kind::StructValue(meta)) = &p.payload[META_KEY].kind else {
        panic!("{p:?}")
    };
    assert_eq!(
        meta.fields["lang"].kind,
        Some(q::value::Kind::StringValue("en".into()))
    );

    let hits = store
        .search(&e.vector, 3, Some(&Filter::eq("lang", "en")))
        .await
        .unwrap();
    assert_eq!(hits[0].source, e.source);
    let query = &fake.received().queries[0];
    assert_eq!(query.limit, Some(3));
    assert_eq!(
        query.with_payload,
        Some(q::WithPayloadSelector {
            selector_options: Some(q::with_payload_selector::SelectorOptions::Enable(true))
        })
    );
    let filter = query.filter.as_ref().unwrap();
    assert_eq!(filter.must.len(), 1);
    let Some(q::condition::ConditionOneOf::Field(field)) = &filter.must[0].condition_one_of else {
        panic!("{filter:?}")
    };
    assert_eq!(field.key, "meta.lang");
    assert_eq!(
        field.r#match.as_ref().unwrap().match_value,
        Some(q::r#match::MatchValue::Keyword("en".into()))
    );

    assert_eq!(store.len().await.unwrap(), 1);
    assert_eq!(fake.received().counts[0].exact, Some(true));
    store.remove(&[e.source]).await.unwrap();
    let del = &fake.received().deletes[0];
    assert_eq!(del.wait, Some(true));
    let Some(q::points_selector::PointsSelectorOneOf::Points(list)) = del
        .points
        .as_ref()
        .and_then(|p| p.points_selector_one_of.as_ref())
    else {
        panic!("{del:?}")
    };
    assert_eq!(list.ids, vec![q::PointId::from(point_id(&e.source))]);
    assert!(!store.contains(&e.source).await.unwrap());

    // A refused batch sends nothing at all.
    let mut bad = entry(2);
    bad.vector.push(0.0);
    let before = fake.received().upserts.len();
    assert!(matches!(
        store.upsert(vec![entry(3), bad]).await,
        Err(Error::Dimension {
            expected: 4,
            got: 5
        })
    ));
    assert_eq!(fake.received().upserts.len(), before);
}

#[tokio::test]
async fn hits_a_server_cannot_back_are_errors() {
    let (fake, url) = FakeQdrant::start().await;
    let store = QdrantStore::connect(&url, "docs", 4).await.unwrap();
    store.upsert((0..4).map(entry).collect()).await.unwrap();
    for lie in [Lie::SwapSources, Lie::DropPayload] {
        fake.lie(lie);
        let got = store.search(&entry(0).vector, 4, None).await;
        assert!(matches!(got, Err(Error::Backend(_))), "{lie:?}: {got:?}");
    }
    fake.lie(Lie::None);
    assert_eq!(
        store.search(&entry(0).vector, 4, None).await.unwrap().len(),
        4
    );
    // no server at all: a typed error, not a panic
    // a port that was free a moment ago: nothing listens there (port 9 may have a server)
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = QdrantStore::connect(&format!("http://127.0.0.1:{port}"), "docs", 4).await;
    assert!(matches!(dead, Err(Error::Backend(_))), "{dead:?}");
}
