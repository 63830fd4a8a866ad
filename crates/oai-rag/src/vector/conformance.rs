//! The test suite every [`VectorStore`] must pass (call [`run`] with an empty store of
//! dimension 8; a store of dimension 0 must be refused when it is made, which each
//! implementation's own tests check), and the seeded vectors tests and benches of stores draw
//! from.

use std::collections::BTreeMap;

use oai_core::{ids, Cid, Seed};

use super::{Entry, Filter, VectorStore};
use crate::Error;

fn source(i: u64) -> Cid {
    ids::cid_v1(ids::DAG_CBOR, &i.to_le_bytes())
}

/// Uniform values in `[-1, 1)` from `seed`'s ChaCha20 stream.
fn uniform(seed: u64) -> impl FnMut() -> f32 {
    let mut rng = Seed::from_u64(seed).rng();
    move || (oai_core::seed::RngCore::next_u32(&mut rng) >> 8) as f32 / (1 << 23) as f32 - 1.0
}

fn normalised(v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / n).collect()
}

/// A seeded unit vector of dimension `dim`: uniform values in `[-1, 1)`, normalised.
pub fn unit_vector(seed: u64, dim: usize) -> Vec<f32> {
    let mut u = uniform(seed);
    normalised((0..dim).map(|_| u()).collect())
}

/// `n` unit vectors of dimension `dim` around `centres` seeded centres (vector `i` around
/// centre `i % centres`, each value moved by up to `spread`). Clustered like real embeddings:
/// uniform random vectors are the worst case for approximate search, not a fair test.
pub fn clustered(n: usize, dim: usize, centres: usize, spread: f32, seed: u64) -> Vec<Vec<f32>> {
    let mut u = uniform(seed);
    let cs: Vec<Vec<f32>> = (0..centres)
        .map(|_| (0..dim).map(|_| u()).collect())
        .collect();
    (0..n)
        .map(|i| normalised(cs[i % centres].iter().map(|c| c + spread * u()).collect()))
        .collect()
}

fn unit(i: u64) -> Vec<f32> {
    unit_vector(i, 8)
}

fn entry(i: u64) -> Entry {
    Entry {
        source: source(i),
        vector: unit(i),
        meta: BTreeMap::from([("parity".to_string(), (i % 2).to_string())]),
    }
}

/// Run the suite; panics with the failing check.
pub async fn run<S: VectorStore>(store: &S) {
    assert_eq!(
        store.dim(),
        8,
        "the suite needs an empty store of dimension 8"
    );
    assert_eq!(
        store.len().await.unwrap(),
        0,
        "the suite needs an empty store"
    );
    assert!(store.search(&unit(0), 5, None).await.unwrap().is_empty());

    store.upsert((0..50).map(entry).collect()).await.unwrap();
    assert_eq!(store.len().await.unwrap(), 50);
    // Upserting again replaces, never duplicates.
    store.upsert((0..10).map(entry).collect()).await.unwrap();
    assert_eq!(store.len().await.unwrap(), 50);

    // An entry is its own best match; scores are sorted.
    for i in [0, 17, 49] {
        let hits = store.search(&unit(i), 5, None).await.unwrap();
        assert_eq!(hits.len(), 5);
        assert_eq!(
            hits[0].source,
            source(i),
            "entry {i} is not its own nearest"
        );
        assert!((hits[0].score - 1.0).abs() < 1e-5);
        assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
    }
    // k larger than the store gives everything.
    assert_eq!(store.search(&unit(3), 500, None).await.unwrap().len(), 50);

    // Filters.
    let odd = Filter::eq("parity", "1");
    let hits = store.search(&unit(4), 10, Some(&odd)).await.unwrap();
    assert_eq!(hits.len(), 10);
    assert!(hits.iter().all(|h| h.meta["parity"] == "1"));
    assert!(store
        .search(&unit(4), 10, Some(&Filter::eq("parity", "x")))
        .await
        .unwrap()
        .is_empty());

    // Bad vectors are refused and the batch stores nothing.
    let mut short = entry(100);
    short.vector.pop();
    assert!(matches!(
        store.upsert(vec![entry(101), short]).await,
        Err(Error::Dimension {
            expected: 8,
            got: 7
        })
    ));
    let mut nan = entry(102);
    nan.vector[0] = f32::NAN;
    assert!(matches!(
        store.upsert(vec![nan]).await,
        Err(Error::InvalidInput(_))
    ));
    assert_eq!(store.len().await.unwrap(), 50);
    assert!(matches!(
        store.search(&[0.0; 3], 1, None).await,
        Err(Error::Dimension { .. })
    ));
    // k = 0 asks for nothing: an error, not an empty answer
    assert!(matches!(
        store.search(&unit(1), 0, None).await,
        Err(Error::InvalidInput(_))
    ));

    // Removal.
    assert!(store.contains(&source(17)).await.unwrap());
    store.remove(&[source(17), source(999)]).await.unwrap();
    assert_eq!(store.len().await.unwrap(), 49);
    assert!(!store.contains(&source(17)).await.unwrap());
    let hits = store.search(&unit(17), 50, None).await.unwrap();
    assert!(hits.iter().all(|h| h.source != source(17)));
}
