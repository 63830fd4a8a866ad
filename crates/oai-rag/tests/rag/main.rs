//! Integration tests of oai-rag. Tests with the real all-MiniLM-L6-v2 read its files from the
//! directory named by `OAI_MINILM` (`scripts/fetch_models.sh` prepares it; `.ci/run` sets it)
//! and skip without it unless `OAI_REQUIRE_REAL` is set.

use oai_rag::{Embedder, Error, MiniLm};

mod named;
mod support;

fn model() -> Option<MiniLm> {
    match std::env::var("OAI_MINILM") {
        Ok(dir) => Some(MiniLm::load(&dir, &candle_core::Device::Cpu).unwrap()),
        Err(_) if std::env::var_os("OAI_REQUIRE_REAL").is_some() => {
            panic!("OAI_MINILM is not set and OAI_REQUIRE_REAL is")
        }
        Err(_) => {
            eprintln!("skipped: set OAI_MINILM (scripts/fetch_models.sh) to run on the real model");
            None
        }
    }
}

fn texts(t: &[&str]) -> Vec<String> {
    t.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn minilm_matches_the_reference_embedding() {
    let Some(m) = model() else { return };
    assert_eq!(m.dim(), 384);
    let v = m
        .embed(&texts(&["This is an example sentence"]))
        .await
        .unwrap();
    let want = [0.067657, 0.063496, 0.048713, 0.079305, 0.037448];
    for (i, w) in want.iter().enumerate() {
        assert!((v[0][i] - w).abs() < 1e-4, "dim {i}: {} vs {w}", v[0][i]);
    }
    let norm: f32 = v[0].iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-5);
}

#[tokio::test]
async fn batches_pad_without_changing_vectors_and_similar_texts_are_close() {
    let Some(m) = model() else { return };
    let batch = texts(&[
        "The cat sits on the mat.",
        "A cat is sitting on a mat, looking out of the window at the birds in the garden.",
        "Quarterly revenue grew by twelve percent.",
    ]);
    let together = m.embed(&batch).await.unwrap();
    for (i, t) in batch.iter().enumerate() {
        let alone = m.embed(std::slice::from_ref(t)).await.unwrap();
        let diff = alone[0]
            .iter()
            .zip(&together[i])
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(
            diff < 1e-5,
            "text {i} changes by {diff} when padded in a batch"
        );
    }
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    assert!(dot(&together[0], &together[1]) > dot(&together[0], &together[2]) + 0.3);
    // Long input is truncated, not refused; empty input is refused.
    let long = "word ".repeat(5000);
    assert_eq!(m.embed(&[long]).await.unwrap()[0].len(), 384);
    assert!(matches!(
        m.embed(&texts(&["fine", "  "])).await,
        Err(Error::InvalidInput(_))
    ));
    assert!(m.embed(&[]).await.unwrap().is_empty());
}

#[test]
fn missing_model_files_are_a_typed_error() {
    let dir = std::env::temp_dir().join("oai-no-model-here");
    assert!(matches!(
        MiniLm::load(&dir, &candle_core::Device::Cpu),
        Err(Error::Model { .. })
    ));
}

#[tokio::test]
async fn flat_store_passes_the_conformance_suite() {
    oai_rag::vector::conformance::run(&oai_rag::FlatStore::new(8).unwrap()).await;
}

#[tokio::test]
async fn embedded_sentences_are_found_by_meaning_with_their_source_cids() {
    let Some(m) = model() else { return };
    use oai_data::dataset::Record;
    use oai_rag::{Entry, FlatStore, VectorStore};
    let docs = texts(&[
        "The Rust compiler checks ownership and borrowing at compile time.",
        "Bread is baked from flour, water, yeast and salt.",
        "IPFS names every block by the hash of its content.",
    ]);
    let vectors = m.embed(&docs).await.unwrap();
    let store = FlatStore::new(m.dim()).unwrap();
    let entries: Vec<Entry> = docs
        .iter()
        .zip(vectors)
        .map(|(d, vector)| Entry {
            source: Record::Text(d.clone()).cid(),
            vector,
            meta: Default::default(),
        })
        .collect();
    store.upsert(entries).await.unwrap();
    let q = m
        .embed(&texts(&["content addressing with hashes"]))
        .await
        .unwrap();
    let hits = store.search(&q[0], 1, None).await.unwrap();
    assert_eq!(hits[0].source, Record::Text(docs[2].clone()).cid());
}

#[tokio::test]
async fn hnsw_store_passes_the_conformance_suite() {
    oai_rag::vector::conformance::run(&oai_rag::HnswStore::new(8).unwrap()).await;
}

/// A store of dimension 0 could hold nothing but empty vectors, whose every score is 0: each
/// store refuses to be made so (the bindings checked it for them before).
#[test]
fn stores_of_dimension_zero_are_refused() {
    use oai_rag::vector::HnswParams;
    assert!(matches!(
        oai_rag::FlatStore::new(0),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        oai_rag::HnswStore::new(0),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        oai_rag::HnswStore::with_params(0, HnswParams::default()),
        Err(Error::InvalidInput(_))
    ));
}

/// Clustered unit vectors, 40 centres, spread 0.35 (real embeddings are clustered too).
fn clustered(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
    oai_rag::vector::conformance::clustered(n, dim, 40, 0.35, seed)
}

#[tokio::test]
async fn hnsw_recall_against_exact_search_and_determinism() {
    use oai_rag::{Entry, FlatStore, HnswStore, VectorStore};
    let dim = 32;
    let entries: Vec<Entry> = clustered(4000, dim, 1)
        .into_iter()
        .enumerate()
        .map(|(i, vector)| Entry {
            source: oai_core::ids::cid_v1(oai_core::ids::RAW, &(i as u64).to_le_bytes()),
            vector,
            meta: Default::default(),
        })
        .collect();
    let (flat, hnsw, again) = (
        FlatStore::new(dim).unwrap(),
        HnswStore::new(dim).unwrap(),
        HnswStore::new(dim).unwrap(),
    );
    for s in [&hnsw, &again] {
        for batch in entries.chunks(500) {
            s.upsert(batch.to_vec()).await.unwrap();
        }
    }
    flat.upsert(entries).await.unwrap();
    let queries = clustered(200, dim, 2);
    let mut found = 0;
    for q in &queries {
        let exact: Vec<_> = flat.search(q, 10, None).await.unwrap();
        let approx = hnsw.search(q, 10, None).await.unwrap();
        assert_eq!(
            approx,
            again.search(q, 10, None).await.unwrap(),
            "same build, same answer"
        );
        found += approx
            .iter()
            .filter(|h| exact.iter().any(|e| e.source == h.source))
            .count();
    }
    let recall = found as f64 / (10 * queries.len()) as f64;
    println!("HNSW recall@10 on clustered vectors: {recall:.4}");
    assert!(recall >= 0.95, "recall@10 {recall}");
}

#[tokio::test]
async fn hnsw_saves_to_a_block_store_and_refuses_corrupt_indexes() {
    use ipld_core::ipld::Ipld;
    use oai_data::{BlockStore, MemStore};
    use oai_rag::{Entry, Filter, HnswStore, VectorStore};
    let store = MemStore::new();
    let index = HnswStore::new(16).unwrap();
    let entries: Vec<Entry> = clustered(1200, 16, 3)
        .into_iter()
        .enumerate()
        .map(|(i, vector)| Entry {
            source: oai_core::ids::cid_v1(oai_core::ids::RAW, &(i as u64).to_le_bytes()),
            vector,
            meta: [("shard".to_string(), (i % 3).to_string())].into(),
        })
        .collect();
    index.upsert(entries.clone()).await.unwrap();
    index.remove(&[entries[5].source]).await.unwrap();
    let cid = index.save(&store).await.unwrap();
    assert_eq!(
        cid,
        index.save(&store).await.unwrap(),
        "saving is deterministic"
    );
    let back = HnswStore::load(&store, &cid).await.unwrap();
    assert_eq!(back.len().await.unwrap(), 1199);
    let shard = Filter::eq("shard", "2");
    for q in clustered(20, 16, 4) {
        assert_eq!(
            back.search(&q, 10, Some(&shard)).await.unwrap(),
            index.search(&q, 10, Some(&shard)).await.unwrap()
        );
    }

    // A corrupt index: junk where a page should be, a wrong count, a missing page.
    let block: Ipld = serde_ipld_dagcbor::from_slice(&store.get(&cid).await.unwrap()).unwrap();
    let Ipld::Map(map) = block else {
        panic!("index is a map")
    };
    let with = |key: &str, value: Ipld| {
        let mut m = map.clone();
        m.insert(key.to_string(), value);
        serde_ipld_dagcbor::to_vec(&Ipld::Map(m)).unwrap()
    };
    let junk = store
        .put(
            oai_core::ids::DAG_CBOR,
            serde_ipld_dagcbor::to_vec(&vec![1u8, 2, 3]).unwrap().into(),
        )
        .await
        .unwrap();
    let junk_page = store
        .put(
            oai_core::ids::DAG_CBOR,
            with("pages", Ipld::List(vec![Ipld::Link(junk)])).into(),
        )
        .await
        .unwrap();
    let wrong_count = store
        .put(
            oai_core::ids::DAG_CBOR,
            with("count", Ipld::Integer(7)).into(),
        )
        .await
        .unwrap();
    for bad in [junk_page, wrong_count, junk] {
        assert!(
            matches!(HnswStore::load(&store, &bad).await, Err(Error::Index(_))),
            "{bad}"
        );
    }
    let missing = oai_core::ids::cid_v1(oai_core::ids::DAG_CBOR, b"never stored");
    let missing = store
        .put(
            oai_core::ids::DAG_CBOR,
            with("pages", Ipld::List(vec![Ipld::Link(missing)])).into(),
        )
        .await
        .unwrap();
    assert!(matches!(
        HnswStore::load(&store, &missing).await,
        Err(Error::Data(oai_data::Error::NotFound(_)))
    ));
}

/// 60 distinct passages about different things.
fn passages_about_things() -> Vec<String> {
    let animals = ["fox", "whale", "sparrow", "beetle", "horse", "octopus"];
    let places = [
        "forest", "ocean", "city", "desert", "mountain", "river", "library", "kitchen", "garden",
        "harbour",
    ];
    (0..60)
        .map(|i| {
            format!(
                "Note {i}: the {} was seen near the {} on day {}.",
                animals[i % 6],
                places[i % 10],
                i * 7 % 31
            )
        })
        .collect()
}

#[tokio::test]
async fn ingest_is_incremental_by_dataset_diff_and_idempotent() {
    use oai_data::dataset::{ChangeSet, Record, Version};
    use oai_data::MemStore;
    use oai_rag::{FlatStore, IngestReport, Ingestor, VectorStore};
    let Some(m) = model() else { return };
    let store = MemStore::new();
    let texts = passages_about_things();
    let v1 = Version::from_records(&store, texts[..50].iter().map(|t| Record::Text(t.clone())))
        .await
        .unwrap();
    let ingest =
        Ingestor::new(m.clone(), FlatStore::new(m.dim()).unwrap()).with_meta("corpus", "notes");
    let r = ingest.ingest(&store, &v1).await.unwrap();
    assert_eq!((r.embedded, r.skipped), (50, 0));
    let again = ingest.ingest(&store, &v1).await.unwrap();
    assert_eq!(
        again,
        IngestReport {
            embedded: 0,
            skipped: 50,
            removed: 0
        }
    );

    // v2: three passages replaced, two added; only those five are embedded.
    let mut changes = ChangeSet::default();
    changes
        .replace(&store, 3, Record::Text(texts[50].clone()))
        .await
        .unwrap();
    changes
        .insert(&store, 10, Record::Text(texts[53].clone()))
        .await
        .unwrap();
    changes
        .replace(&store, 20, Record::Text(texts[51].clone()))
        .await
        .unwrap();
    changes
        .insert(&store, 30, Record::Text(texts[54].clone()))
        .await
        .unwrap();
    changes
        .replace(&store, 41, Record::Text(texts[52].clone()))
        .await
        .unwrap();
    let v2 = v1.apply(&store, &changes).await.unwrap();
    let r = ingest.update(&store, &v1, &v2).await.unwrap();
    assert_eq!((r.embedded, r.removed), (5, 3));
    assert_eq!(ingest.index().len().await.unwrap(), 52);
    let again = ingest.update(&store, &v1, &v2).await.unwrap();
    assert_eq!((again.embedded, again.removed), (0, 0));

    // The index now answers like a fresh ingest of v2.
    let fresh = Ingestor::new(m.clone(), FlatStore::new(m.dim()).unwrap());
    fresh.ingest(&store, &v2).await.unwrap();
    let q = m.embed(&[texts[53].clone()]).await.unwrap();
    let a = ingest.index().search(&q[0], 5, None).await.unwrap();
    let b = fresh.index().search(&q[0], 5, None).await.unwrap();
    assert_eq!(
        a.iter().map(|h| h.source).collect::<Vec<_>>(),
        b.iter().map(|h| h.source).collect::<Vec<_>>()
    );
    assert_eq!(a[0].source, Record::Text(texts[53].clone()).cid());
    assert_eq!(a[0].meta["corpus"], "notes");

    // Non-text passages are refused.
    let bytes = Version::from_records(&store, [Record::Bytes(vec![0xff, 0xfe])])
        .await
        .unwrap();
    assert!(matches!(
        ingest.ingest(&store, &bytes).await,
        Err(Error::InvalidInput(_))
    ));
}

fn passage(text: &str) -> oai_rag::Passage {
    oai_rag::Passage {
        source: oai_data::dataset::Record::Text(text.to_string()).cid(),
        text: text.to_string(),
    }
}

#[tokio::test]
async fn extractive_answers_cite_the_passage_they_quote() {
    use oai_rag::{Extractive, Generator};
    let ps: Vec<_> = passages_about_things()[..12]
        .iter()
        .map(|t| passage(t))
        .collect();
    let a = Extractive
        .answer("Where was the octopus seen?", &ps)
        .await
        .unwrap();
    assert!(a.text.contains("octopus"), "{}", a.text);
    assert_eq!(a.citations.len(), 1);
    let cited = ps.iter().find(|p| p.source == a.citations[0]).unwrap();
    assert!(cited.text.contains(&a.text));
    let none = Extractive.answer("zzz qqq", &ps).await.unwrap();
    assert!(none.text.is_empty() && none.citations.is_empty());
    assert!(matches!(
        Extractive.answer(" ", &ps).await,
        Err(Error::InvalidInput(_))
    ));
}

#[cfg(feature = "local-lm")]
#[tokio::test]
async fn a_local_quantised_lm_answers_from_passages_that_fit_and_cites_them() {
    use oai_data::dataset::Version;
    use oai_data::MemStore;
    use oai_rag::{Generator, LocalLm};
    use oai_train::model::Quantization;
    use oai_train::{
        corpus, JobSpec, ModelSpec, OptimizerSpec, Schedule, Trainer, TransformerSpec,
    };
    let spec_t = TransformerSpec {
        vocab: 128,
        context: 64,
        d_model: 32,
        heads: 2,
        layers: 1,
        d_ff: 64,
        dropout: 0.0,
    };
    let store = MemStore::new();
    let text = passages_about_things().join("\n");
    let data = Version::from_records(
        &store,
        corpus::byte_windows(text.as_bytes(), 64, 13).unwrap(),
    )
    .await
    .unwrap();
    let spec = JobSpec {
        dataset: data.cid(),
        model: ModelSpec::Transformer(spec_t.clone()),
        optimizer: OptimizerSpec::adam_w(0.0),
        schedule: Schedule::Constant { lr: 3e-3 },
        batch_size: 8,
        steps: 20,
        checkpoint_every: 0,
        grad_clip: Some(1.0),
        seed: 3,
        kernels: Default::default(),
        compute_class: None,
    };
    let mut t = Trainer::new(store.clone(), spec, candle_core::Device::Cpu)
        .await
        .unwrap();
    let (_, log) = t.train_and_publish().await.unwrap();
    let ckpt = log.checkpoints.last().unwrap().cid;
    let ps: Vec<_> = [
        "The fox ran.",
        "Whales sing.",
        "A much longer passage that cannot fit.",
    ]
    .iter()
    .map(|t| passage(t))
    .collect();
    for q in [Quantization::Int8, Quantization::Int4] {
        let lm = LocalLm::load(&store, &ckpt, spec_t.clone(), q)
            .await
            .unwrap()
            .max_new(20);
        let a = lm.answer("Who ran?", &ps).await.unwrap();
        assert_eq!(
            a.citations,
            vec![ps[0].source, ps[1].source],
            "{q:?}: only what fits is cited"
        );
        assert!(a.text.len() <= 20);
        assert_eq!(
            a,
            lm.answer("Who ran?", &ps).await.unwrap(),
            "greedy decoding is deterministic"
        );
        assert!(matches!(
            lm.answer("", &ps).await,
            Err(Error::InvalidInput(_))
        ));
    }
    // A checkpoint of another architecture is refused.
    let wrong = TransformerSpec {
        d_model: 64,
        ..spec_t
    };
    assert!(matches!(
        LocalLm::load(&store, &ckpt, wrong, Quantization::Int8).await,
        Err(Error::Model { .. })
    ));
}

/// SmolLM2 (`OAI_SMOLLM2`) answers from the passages it is given and cites those that fit its
/// prompt; the same answer twice; a file that is not a chat model is refused.
#[cfg(feature = "local-lm")]
#[tokio::test]
async fn a_gguf_chat_model_answers_from_passages_and_cites_them() {
    use oai_rag::{ChatLm, Generator};
    let notes = std::env::temp_dir().join(format!("oai-rag-notes-{}.gguf", std::process::id()));
    std::fs::write(&notes, "not a model").unwrap();
    let refused = ChatLm::from_gguf(&notes);
    std::fs::remove_file(&notes).unwrap();
    assert!(matches!(refused, Err(Error::Model { .. })));
    let missing = ChatLm::from_gguf(notes.with_extension("missing")).unwrap_err();
    assert_eq!(missing.kind(), oai_core::ErrorKind::NotFound);
    let Some(path) = std::env::var_os("OAI_SMOLLM2") else {
        assert!(
            std::env::var_os("OAI_REQUIRE_REAL").is_none(),
            "OAI_SMOLLM2 is not set and OAI_REQUIRE_REAL is"
        );
        eprintln!("skipped: set OAI_SMOLLM2 (scripts/fetch_models.sh)");
        return;
    };
    let lm = ChatLm::from_gguf(&path).unwrap().max_new(40);
    let ps = [
        passage("The Eiffel Tower stands on the Champ de Mars in Paris."),
        passage("Rust is a programming language that guarantees memory safety."),
    ];
    let a = lm
        .answer("In which city is the Eiffel Tower?", &ps)
        .await
        .unwrap();
    println!("SmolLM2 over two passages: {:?}", a.text);
    assert!(a.text.contains("Paris"), "{}", a.text);
    assert_eq!(a.citations, vec![ps[0].source, ps[1].source]);
    assert_eq!(
        lm.answer("In which city is the Eiffel Tower?", &ps)
            .await
            .unwrap(),
        a
    );
    // a prompt budget that holds the first passage only cites the first only
    let tight = ChatLm::from_gguf(&path).unwrap().prompt_tokens(60);
    let one = tight
        .answer("In which city is the Eiffel Tower?", &ps)
        .await
        .unwrap();
    assert_eq!(one.citations, vec![ps[0].source]);
    assert!(matches!(
        lm.answer(" ", &ps).await,
        Err(Error::InvalidInput(_))
    ));
}

/// The Qdrant backend against an in-process server built from the gRPC services qdrant-client
/// generates (no Qdrant server can be installed here): the conformance suite, the exact
/// requests it sends, and answers that do not check out.
#[cfg(feature = "qdrant")]
mod qdrant;

/// Federated queries over gRPC between peers on 127.0.0.1: three honest peers with overlapping
/// passages, one slow, one dead, one that alters passages, one that sends more than asked.
#[cfg(feature = "federation")]
mod federation;
