//! Federated retrieval: local and gRPC peers, deadlines, lying peers.

use std::sync::Arc;
use std::time::Duration;

use oai_data::dataset::Record;
use oai_rag::federation::grpc::{serve, serve_limited, GrpcPeer};
use oai_rag::federation::{Federation, KnowledgePeer, LocalPeer, PeerHit, PeerQuery};
use oai_rag::vector::{Entry, FlatStore, VectorStore};
use oai_rag::{Error, Filter};

fn passage(i: u64) -> Record {
    Record::Text(format!("passage {i}: open data is checked by anyone"))
}

fn unit(i: u64) -> Vec<f32> {
    oai_rag::vector::conformance::unit_vector(1000 + i, 8)
}

async fn local(name: &str, items: &[u64]) -> LocalPeer<FlatStore> {
    let store = FlatStore::new(8).unwrap();
    store
        .upsert(
            items
                .iter()
                .map(|i| Entry {
                    source: passage(*i).cid(),
                    vector: unit(*i),
                    meta: [("half".to_string(), (i / 6).to_string())].into(),
                })
                .collect(),
        )
        .await
        .unwrap();
    LocalPeer::new(name, store, items.iter().map(|i| passage(*i)))
}

/// Generous on purpose: on a loaded machine an honest peer on loopback may take a second to
/// answer, and must still make the deadline. The client's own timeout is longer still, so a
/// peer that never answers is cut by the federation's deadline.
const DEADLINE: Duration = Duration::from_secs(3);
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// A peer that misbehaves around an honest one.
enum Twist {
    Slow(Duration),
    AlterText,
    TooMany,
}

struct Bad(LocalPeer<FlatStore>, Twist);

#[async_trait::async_trait]
impl KnowledgePeer for Bad {
    fn name(&self) -> &str {
        self.0.name()
    }
    async fn query(&self, q: &PeerQuery) -> oai_rag::Result<Vec<PeerHit>> {
        match self.1 {
            Twist::Slow(d) => {
                tokio::time::sleep(d).await;
                self.0.query(q).await
            }
            Twist::AlterText => {
                let mut hits = self.0.query(q).await?;
                hits[0].record = Record::Text("the moon is made of cheese".into()).encode();
                Ok(hits)
            }
            Twist::TooMany => {
                let wide = PeerQuery {
                    k: q.k + 1,
                    ..q.clone()
                };
                self.0.query(&wide).await
            }
        }
    }
}

/// Serve `peer` on a free port; returns its client.
async fn remote(peer: Arc<dyn KnowledgePeer>) -> Arc<dyn KnowledgePeer> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(serve(peer, listener));
    Arc::new(GrpcPeer::new(&url, CLIENT_TIMEOUT).unwrap())
}

async fn dead_peer() -> Arc<dyn KnowledgePeer> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    Arc::new(GrpcPeer::new(&url, CLIENT_TIMEOUT).unwrap())
}

/// A "peer" that answers every connection with bytes that are not HTTP/2 at all.
async fn garbage_peer() -> Arc<dyn KnowledgePeer> {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let _ = conn
                .write_all(b"HTTP/1.0 200 OK\r\n\r\n\x00\xffgarbage")
                .await;
        }
    });
    Arc::new(GrpcPeer::new(&url, CLIENT_TIMEOUT).unwrap())
}

/// A peer's server trusted any `k` (up to 2^32 - 1: a full scan and the whole corpus back)
/// and answered its own failures with their internal text. `k` is bounded
/// (`federation::MAX_K`), and a bad query is an invalid-argument status that says what is
/// wrong, nothing of the server's insides.
#[tokio::test]
async fn a_peer_refuses_an_unbounded_k_and_answers_typed_errors() {
    use oai_rag::federation::MAX_K;
    let ids: Vec<u64> = (0..12).collect();
    let peer = remote(Arc::new(local("a", &ids).await)).await;
    for k in [MAX_K + 1, u32::MAX as usize] {
        let q = PeerQuery {
            vector: unit(5),
            k,
            filter: None,
        };
        let err = peer.query(&q).await.unwrap_err().to_string();
        assert!(
            err.contains("invalid argument") && err.contains("k ="),
            "{k}: {err}"
        );
    }
    let q = PeerQuery {
        vector: vec![f32::NAN; 8],
        k: 3,
        filter: None,
    };
    let err = peer.query(&q).await.unwrap_err().to_string();
    assert!(err.contains("invalid argument"), "{err}");
    let ok = PeerQuery {
        vector: unit(5),
        k: MAX_K,
        filter: None,
    };
    assert_eq!(peer.query(&ok).await.unwrap().len(), ids.len());
    let wide = PeerQuery { k: MAX_K + 1, ..ok };
    assert!(matches!(
        Federation::new(vec![peer], DEADLINE).query(&wide).await,
        Err(oai_rag::Error::InvalidInput(_))
    ));
}

/// A client that floods a peer's server: past its per-client rate it is refused with
/// `RESOURCE_EXHAUSTED` (a typed error that says so, no work done for it), while a client
/// from another address is answered all the while. (A server answered every query of every
/// client before: one client could take all of its time.)
#[tokio::test]
async fn a_flooding_client_is_refused_past_its_rate_and_others_are_answered() {
    use oai_rag::federation::RateLimit;
    let ids: Vec<u64> = (0..12).collect();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let limit = RateLimit {
        per_second: 0.001,
        burst: 5,
    };
    tokio::spawn(serve_limited(
        Arc::new(local("a", &ids).await),
        listener,
        limit,
    ));
    let q = PeerQuery {
        vector: unit(5),
        k: 3,
        filter: None,
    };
    let from =
        |ip: &str| GrpcPeer::from_address(&url, CLIENT_TIMEOUT, Some(ip.parse().unwrap())).unwrap();
    let flooder = from("127.0.0.1");
    let mut refused = Vec::new();
    for _ in 0..20 {
        if let Err(e) = flooder.query(&q).await {
            refused.push(e.to_string());
        }
    }
    assert_eq!(refused.len(), 15, "the burst of 5 answered: {refused:?}");
    assert!(
        refused
            .iter()
            .all(|e| e.contains("too many queries from 127.0.0.1")),
        "{refused:?}"
    );
    let other = from("127.0.0.2");
    for _ in 0..5 {
        assert_eq!(other.query(&q).await.unwrap().len(), 3);
    }
}

#[tokio::test]
async fn federated_query_merges_honest_peers_and_ignores_bad_ones() {
    let a: Vec<u64> = (0..8).collect();
    let b: Vec<u64> = (4..12).collect();
    let c: Vec<u64> = (0..4).chain(8..12).collect();
    let honest = vec![
        remote(Arc::new(local("a", &a).await)).await,
        remote(Arc::new(local("b", &b).await)).await,
        remote(Arc::new(local("c", &c).await)).await,
    ];
    let mut all = honest.clone();
    for (name, twist) in [
        ("slow", Twist::Slow(Duration::from_secs(600))),
        ("liar", Twist::AlterText),
        ("greedy", Twist::TooMany),
    ] {
        all.push(remote(Arc::new(Bad(local(name, &a).await, twist))).await);
    }
    all.push(dead_peer().await);
    all.push(garbage_peer().await);
    let deadline = DEADLINE;
    let q = PeerQuery {
        vector: unit(5),
        k: 4,
        filter: None,
    };
    let answer = Federation::new(all.clone(), deadline)
        .query(&q)
        .await
        .unwrap();

    let names = |ps: &[Arc<dyn KnowledgePeer>]| -> Vec<String> {
        let mut n: Vec<String> = ps.iter().map(|p| p.name().to_string()).collect();
        n.sort();
        n
    };
    assert_eq!(answer.answered, names(&honest));
    assert_eq!(answer.failures.len(), 5, "{:?}", answer.failures);
    let reason = |i: usize| {
        answer
            .failures
            .iter()
            .find(|f| f.peer == all[i].name())
            .unwrap()
            .reason
            .clone()
    };
    assert!(reason(3).contains("no answer within"), "{}", reason(3));
    assert!(reason(4).contains("does not hash"), "{}", reason(4));
    assert!(reason(5).contains("5 hits for k = 4"), "{}", reason(5));
    assert!(reason(6).starts_with("error:"), "{}", reason(6));
    assert!(
        reason(7).starts_with("error:") || reason(7).starts_with("no answer"),
        "{}",
        reason(7)
    );

    // The bad peers changed nothing: the same merge as the honest peers alone.
    let clean = Federation::new(honest.clone(), deadline)
        .query(&q)
        .await
        .unwrap();
    assert_eq!(answer.hits, clean.hits);
    assert!(clean.failures.is_empty());
    // Passage 5 is the nearest; peers a and b both hold it, so it is fused once.
    assert_eq!(answer.hits[0].source, passage(5).cid());
    assert_eq!(answer.hits[0].peers.len(), 2);
    assert_eq!(answer.hits.len(), 4);
    let mut seen: Vec<_> = answer.hits.iter().map(|h| h.source).collect();
    seen.dedup();
    assert_eq!(seen.len(), 4, "no CID twice");
    for h in &answer.hits {
        assert_eq!(Record::Text(h.text.clone()).cid(), h.source);
    }
    assert!(answer.hits.windows(2).all(|w| w[0].score >= w[1].score));

    // Filters travel to the peers.
    let half1 = PeerQuery {
        filter: Some(Filter::eq("half", "1")),
        ..q.clone()
    };
    let filtered = Federation::new(honest.clone(), deadline)
        .query(&half1)
        .await
        .unwrap();
    assert!(!filtered.hits.is_empty());
    assert!(filtered.hits.iter().all(|h| h.meta["half"] == "1"));

    // A query no peer can answer is refused up front.
    let bad = PeerQuery { k: 0, ..q };
    assert!(matches!(
        Federation::new(honest, deadline).query(&bad).await,
        Err(Error::InvalidInput(_))
    ));
}
