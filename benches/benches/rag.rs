//! Benches of oai-rag, printed side by side in one run:
//! - embedding throughput of all-MiniLM-L6-v2 on this CPU, on real sentences (CPython's pydoc
//!   topics from `OAI_TEXT`, else generated ones), per batch size;
//! - vector search on real embeddings: WordNet 3.0 glosses (`OAI_WORDNET`, see
//!   `scripts/fetch_wordnet.sh`), `OAI_BENCH_VECTORS` of them (default 100,000) indexed, 1,000
//!   other glosses as queries: build time, recall@10 against exact search and query latency
//!   (p50, p95) of [`HnswStore`] next to [`FlatStore`]. Embeddings are computed once and cached
//!   in `target/tmp/bench-cache/`.
//!
//! - federated query latency: 3 peers on 127.0.0.1, each an HNSW index of 5,000 clustered
//!   384-dimensional vectors served over gRPC, queried together (k = 10, every answer checked
//!   and fused), next to one in-process search of one such index. Needs no model.
//!
//! The embedding and search reports need the model files (`OAI_MINILM`, see
//! `scripts/fetch_models.sh`) and skip without them.
//! Run: `cargo bench -p oai-benches --bench rag`

use oai_benches::report::{self, Row, Side};
use oai_data::dataset::Record;
use oai_rag::federation::grpc::{serve_limited, GrpcPeer};
use oai_rag::federation::RateLimit;
use oai_rag::federation::{Federation, KnowledgePeer, LocalPeer, PeerQuery};
use oai_rag::{Entry, FlatStore, HnswStore, MiniLm, VectorStore};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn sentences(n: usize) -> Vec<String> {
    let text = std::env::var("OAI_TEXT")
        .ok()
        .and_then(|p| std::fs::read_to_string(p).ok());
    let mut out: Vec<String> = match text {
        Some(t) => t
            .split(['.', '\n'])
            .map(str::trim)
            .filter(|s| s.split_whitespace().count() >= 5)
            .map(String::from)
            .take(n)
            .collect(),
        None => Vec::new(),
    };
    let mut i = 0;
    while out.len() < n {
        out.push(format!(
            "Sentence number {i} talks about open data, logged training and retrieval."
        ));
        i += 1;
    }
    out
}

fn throughput_report(model: &MiniLm) {
    let all = sentences(512);
    let words: usize = all.iter().map(|s| s.split_whitespace().count()).sum();
    println!(
        "\nembedding throughput, all-MiniLM-L6-v2, {} sentences ({:.1} words on average)",
        all.len(),
        words as f64 / all.len() as f64
    );
    println!("{:>6} {:>12}", "batch", "sentences/s");
    let mut one_at_a_time = None;
    for batch in [1, 8, 32, 128] {
        model.embed_blocking(&all[..batch]).expect("warm-up");
        let start = Instant::now();
        for chunk in all.chunks(batch) {
            model.embed_blocking(chunk).expect("embed");
        }
        let rate = all.len() as f64 / start.elapsed().as_secs_f64();
        println!("{batch:>6} {rate:>12.1}");
        match one_at_a_time {
            None => one_at_a_time = Some(rate),
            Some(single) => report::record(Row::new(
                "rag",
                format!("embedding with all-MiniLM-L6-v2, {} sentences", all.len()),
                Side::new(format!("batches of {batch}"), rate, "sentences/s"),
                Side::new("one at a time", single, "sentences/s"),
                true,
            )),
        }
    }
}

/// The glosses of WordNet's data files, in file order.
fn glosses(dir: &str) -> Vec<String> {
    let mut out = Vec::new();
    for pos in ["noun", "verb", "adj", "adv"] {
        let text = std::fs::read_to_string(format!("{dir}/data.{pos}")).expect("WordNet data file");
        out.extend(
            text.lines()
                .filter(|l| !l.starts_with("  "))
                .filter_map(|l| l.split_once(" | ").map(|(_, g)| g.trim().to_string())),
        );
    }
    out
}

/// Embeddings of `texts`, from the cache when present.
fn embeddings(model: &MiniLm, texts: &[String], name: &str) -> Vec<Vec<f32>> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-cache");
    let path = dir.join(format!("{name}-{}.f32", texts.len()));
    let dim = 384;
    if let Ok(bytes) = std::fs::read(&path) {
        if bytes.len() == texts.len() * dim * 4 {
            return bytes
                .chunks_exact(dim * 4)
                .map(|v| {
                    v.chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect()
                })
                .collect();
        }
    }
    let start = Instant::now();
    let mut out = Vec::with_capacity(texts.len());
    for (i, chunk) in texts.chunks(16).enumerate() {
        out.extend(model.embed_blocking(chunk).expect("embed"));
        if i % 500 == 0 {
            eprintln!(
                "embedded {} of {} ({:.0} s)",
                out.len(),
                texts.len(),
                start.elapsed().as_secs_f64()
            );
        }
    }
    std::fs::create_dir_all(&dir).expect("cache dir");
    let bytes: Vec<u8> = out.iter().flatten().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(&path, bytes).expect("write cache");
    out
}

fn percentile(mut d: Vec<Duration>, p: f64) -> Duration {
    d.sort();
    d[((d.len() - 1) as f64 * p) as usize]
}

fn search_report(model: &MiniLm, dir: &str) {
    let n: usize = std::env::var("OAI_BENCH_VECTORS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let all = glosses(dir);
    let queries_n = 1000.min(all.len().saturating_sub(n));
    assert!(
        queries_n > 0,
        "WordNet has {} glosses, need more than {n}",
        all.len()
    );
    let vectors = embeddings(model, &all[..n], "wordnet");
    let queries = embeddings(model, &all[n..n + queries_n], "wordnet-queries");
    let entries: Vec<Entry> = vectors
        .into_iter()
        .enumerate()
        .map(|(i, vector)| Entry {
            source: oai_core::ids::cid_v1(oai_core::ids::RAW, &(i as u64).to_le_bytes()),
            vector,
            meta: Default::default(),
        })
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let flat = FlatStore::new(384).expect("dimension 384");
    let hnsw = HnswStore::new(384).expect("dimension 384");
    let start = Instant::now();
    rt.block_on(flat.upsert(entries.clone())).expect("flat");
    let flat_build = start.elapsed();
    let start = Instant::now();
    for batch in entries.chunks(1000) {
        rt.block_on(hnsw.upsert(batch.to_vec())).expect("hnsw");
    }
    let hnsw_build = start.elapsed();
    let (mut flat_t, mut hnsw_t, mut found) = (Vec::new(), Vec::new(), 0usize);
    for q in &queries {
        let t = Instant::now();
        let exact = rt.block_on(flat.search(q, 10, None)).expect("search");
        flat_t.push(t.elapsed());
        let t = Instant::now();
        let approx = rt.block_on(hnsw.search(q, 10, None)).expect("search");
        hnsw_t.push(t.elapsed());
        found += approx
            .iter()
            .filter(|h| exact.iter().any(|e| e.source == h.source))
            .count();
    }
    println!(
        "\nvector search: {n} WordNet gloss embeddings (384 dims), {} gloss queries, k = 10",
        queries.len()
    );
    println!(
        "{:<28} {:>10} {:>10} {:>10} {:>10}",
        "store", "build s", "recall@10", "p50 ms", "p95 ms"
    );
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{:<28} {:>10.1} {:>10.4} {:>10.3} {:>10.3}",
        "FlatStore (exact)",
        flat_build.as_secs_f64(),
        1.0,
        ms(percentile(flat_t.clone(), 0.5)),
        ms(percentile(flat_t.clone(), 0.95))
    );
    println!(
        "{:<28} {:>10.1} {:>10.4} {:>10.3} {:>10.3}",
        "HnswStore (m 16, ef 128)",
        hnsw_build.as_secs_f64(),
        found as f64 / (10 * queries.len()) as f64,
        ms(percentile(hnsw_t.clone(), 0.5)),
        ms(percentile(hnsw_t.clone(), 0.95))
    );
    let measure = format!(
        "vector search, {n} WordNet gloss embeddings (384 dims), {} queries, k = 10",
        queries.len()
    );
    report::record(Row::new(
        "rag",
        measure.clone(),
        Side::new(
            "HnswStore (m 16, ef 128), p50",
            ms(percentile(hnsw_t, 0.5)),
            "ms",
        ),
        Side::new(
            "FlatStore (exact scan), p50",
            ms(percentile(flat_t, 0.5)),
            "ms",
        ),
        false,
    ));
    report::record(Row::new(
        "rag",
        measure,
        Side::new(
            "HnswStore recall@10",
            found as f64 / (10 * queries.len()) as f64,
            "",
        ),
        Side::new("FlatStore (exact)", 1.0, ""),
        true,
    ));
}

/// `n` unit vectors of dimension 384 around 50 seeded centres.
fn clustered(n: usize, seed: u64) -> Vec<Vec<f32>> {
    oai_rag::vector::conformance::clustered(n, 384, 50, 0.3, seed)
}

fn federation_report() {
    const PER_PEER: usize = 5_000;
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let _in_runtime = rt.enter(); // gRPC channels spawn their connection tasks
    let mut peers: Vec<Arc<dyn KnowledgePeer>> = Vec::new();
    let mut first: Option<Arc<LocalPeer<HnswStore>>> = None;
    let start = Instant::now();
    for p in 0..3u64 {
        let vectors = clustered(PER_PEER, 77 + p);
        let records: Vec<Record> = (0..PER_PEER)
            .map(|i| Record::Text(format!("peer {p} passage {i}")))
            .collect();
        let store = HnswStore::new(384).expect("dimension 384");
        let entries = records
            .iter()
            .zip(vectors)
            .map(|(r, vector)| Entry {
                source: r.cid(),
                vector,
                meta: Default::default(),
            })
            .collect();
        rt.block_on(store.upsert(entries)).expect("index");
        let local = Arc::new(LocalPeer::new(format!("peer{p}"), store, records));
        first.get_or_insert_with(|| local.clone());
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        // one client asks thousands of times a second: no per-client limit here
        rt.spawn(serve_limited(local, listener, RateLimit::none()));
        peers.push(Arc::new(
            GrpcPeer::new(&url, Duration::from_secs(2)).expect("peer"),
        ));
    }
    let built = start.elapsed();
    let federation = Federation::new(peers, Duration::from_secs(2));
    let first = first.expect("a peer");
    let queries = clustered(300, 5);
    let (mut fed, mut local) = (Vec::new(), Vec::new());
    for (i, v) in queries.iter().enumerate() {
        let q = PeerQuery {
            vector: v.clone(),
            k: 10,
            filter: None,
        };
        let t = Instant::now();
        let answer = rt.block_on(federation.query(&q)).expect("query");
        let d = t.elapsed();
        assert!(answer.failures.is_empty(), "{:?}", answer.failures);
        let t = Instant::now();
        rt.block_on(first.query(&q)).expect("local");
        if i >= 20 {
            // the first queries open the connections
            fed.push(d);
            local.push(t.elapsed());
        }
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "\nfederated query, 3 peers x {PER_PEER} vectors (HNSW, dim 384) over gRPC on 127.0.0.1, \
         k = 10, {} queries (indexes built in {:.1} s)",
        fed.len(),
        built.as_secs_f64()
    );
    println!("{:<34} {:>9} {:>9}", "", "p50 ms", "p95 ms");
    println!(
        "{:<34} {:>9.3} {:>9.3}",
        "one peer, in process",
        ms(percentile(local.clone(), 0.5)),
        ms(percentile(local.clone(), 0.95))
    );
    println!(
        "{:<34} {:>9.3} {:>9.3}",
        "federation of 3 (gRPC, checked)",
        ms(percentile(fed.clone(), 0.5)),
        ms(percentile(fed.clone(), 0.95))
    );
    report::record(Row::new(
        "rag",
        format!(
            "federated query, 3 peers x {PER_PEER} vectors over gRPC on 127.0.0.1, k = 10, {} queries",
            fed.len()
        ),
        Side::new("federation of 3 (gRPC, checked), p50", ms(percentile(fed, 0.5)), "ms"),
        Side::new("one peer in process, p50", ms(percentile(local, 0.5)), "ms"),
        false,
    ));
}

fn main() {
    federation_report();
    let Ok(dir) = std::env::var("OAI_MINILM") else {
        println!("skipped: set OAI_MINILM (scripts/fetch_models.sh)");
        return;
    };
    let model = MiniLm::load(&dir, &oai_rag::candle::Device::Cpu).expect("model");
    throughput_report(&model);
    match std::env::var("OAI_WORDNET") {
        Ok(wn) => search_report(&model, &wn),
        Err(_) => println!("\nvector search skipped: set OAI_WORDNET (scripts/fetch_wordnet.sh)"),
    }
}
