//! Stores that misbehave: a lying dataset store, failing loads of batches loaded ahead.

use super::*;

/// A store over a `MemStore` that misbehaves as peers do: it answers requests for some blocks
/// with other (valid) blocks (`swaps`: a lying peer), makes every read wait for the runtime once
/// (`slow`: a network store), and loses the blocks in `missing` while `broken` is set.
#[derive(Debug, Clone, Default)]
struct RiggedStore {
    inner: MemStore,
    swaps: std::collections::BTreeMap<Cid, Cid>,
    slow: bool,
    missing: std::collections::BTreeSet<Cid>,
    broken: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

#[async_trait::async_trait]
impl BlockStore for RiggedStore {
    async fn put_block(&self, block: oai_data::store::Block) -> oai_data::Result<()> {
        self.inner.put_block(block).await
    }
    async fn get(&self, cid: &Cid) -> oai_data::Result<bytes::Bytes> {
        if self.slow {
            tokio::task::yield_now().await;
        }
        if self.broken.load(std::sync::atomic::Ordering::SeqCst) && self.missing.contains(cid) {
            return Err(oai_data::Error::NotFound(*cid));
        }
        self.inner.get(self.swaps.get(cid).unwrap_or(cid)).await
    }
    async fn has(&self, cid: &Cid) -> oai_data::Result<bool> {
        self.inner.has(cid).await
    }
    async fn delete(&self, cid: &Cid) -> oai_data::Result<()> {
        self.inner.delete(cid).await
    }
    async fn list(&self) -> oai_data::Result<Vec<Cid>> {
        self.inner.list().await
    }
}

#[tokio::test]
async fn a_lying_dataset_store_is_an_error_not_a_verdict() {
    let (store, spec) = mlp_setup().await;
    let (log, _) = train(&store, &spec).await;
    let version = Version::open(&store, &spec.dataset).await.unwrap();
    // Every chunk is answered with the next one.
    let chunks = version.chunks();
    let liar = RiggedStore {
        inner: store.clone(),
        swaps: (0..chunks.len())
            .map(|i| (chunks[i].cid, chunks[(i + 1) % chunks.len()].cid))
            .collect(),
        ..RiggedStore::default()
    };
    for step in [0, 5] {
        let got = replay_step(&log, step, &liar).await;
        assert!(
            matches!(got, Err(Error::Data(oai_data::Error::Verification(_)))),
            "step {step}: {got:?}"
        );
    }
    assert!(replay_step(&log, 5, &store).await.unwrap().is_match());
}

/// A logged step loads the next step's batch while it hashes its weights. That changes no bit
/// (the same log on a store that answers at once and on one that makes every read wait, the
/// same weights as a run without a log), and a batch that fails to load fails its own step,
/// which succeeds once the store recovers, with the log as a straight run's.
#[tokio::test]
async fn batches_loaded_ahead_change_nothing_and_a_failed_load_fails_its_own_step() {
    let (store, spec) = mlp_setup().await;
    let (straight, _) = train(&store, &spec).await;
    let version = Version::open(&store, &spec.dataset).await.unwrap();
    let slow = RiggedStore {
        inner: store.clone(),
        slow: true,
        missing: version.chunks().iter().map(|c| c.cid).collect(),
        ..RiggedStore::default()
    };
    let mut t = Trainer::new(slow.clone(), spec.clone(), CPU).await.unwrap();
    t.step().await.unwrap();
    slow.broken.store(true, std::sync::atomic::Ordering::SeqCst);
    // step 1's batch was loaded during step 0; step 2's fails to load during step 1
    t.step().await.unwrap();
    let got = t.step().await;
    assert!(
        matches!(got, Err(Error::Data(oai_data::Error::NotFound(_)))),
        "{got:?}"
    );
    assert_eq!(t.step_index(), 2);
    let got = t.step().await;
    assert!(
        matches!(got, Err(Error::Data(oai_data::Error::NotFound(_)))),
        "a failed load is not kept: {got:?}"
    );
    slow.broken
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let (log, _) = t.train_and_publish().await.unwrap();
    assert_eq!(log, straight);

    let mut quiet = Trainer::new(store.clone(), spec.clone(), CPU)
        .await
        .unwrap();
    quiet.disable_logging();
    while quiet.step_index() < spec.steps {
        quiet.step().await.unwrap();
    }
    let logged = Trainer::resume(store.clone(), &straight, CPU)
        .await
        .unwrap();
    let bits = |t: &Trainer<MemStore>| -> Vec<Vec<u32>> {
        t.tensors()
            .values()
            .map(|v| {
                let v = v.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                v.into_iter().map(f32::to_bits).collect()
            })
            .collect()
    };
    assert_eq!(bits(&quiet), bits(&logged));
}
