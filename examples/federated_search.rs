//! Retrieval over shared knowledge spread across three nodes: each node holds part of a corpus
//! (CPython's pydoc topics, every passage on two of the three nodes) as a dataset, embeds it with
//! all-MiniLM-L6-v2 into its own HNSW index and serves it over gRPC on 127.0.0.1. A fourth node
//! publishes a question to all three, merges their hits (reciprocal-rank fusion, deduplicated by
//! CID, every cited passage checked against its CID) and answers from them, citing the CIDs.
//!
//! Run: `eval "$(scripts/fetch_models.sh)"; eval "$(scripts/fetch_training_data.sh)"; cargo run
//! --release -p oai-examples --example federated_search ["QUESTION"]` (reads `OAI_MINILM` and
//! `OAI_TEXT`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use oai::data::dataset::{Record, Version};
use oai::data::MemStore;
use oai::rag::federation::grpc::{serve, GrpcPeer};
use oai::rag::federation::{Federation, KnowledgePeer, LocalPeer, PeerQuery};
use oai::rag::ingest::passages;
use oai::rag::{Embedder, Extractive, Generator, HnswStore, Ingestor, MiniLm};

/// Passages taken from the corpus (kept small so the example embeds in well under a minute).
const PASSAGES: usize = 600;

#[tokio::main]
async fn main() -> Result<()> {
    let question = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "How do I give a function parameter a default value?".into());
    let model_dir =
        std::env::var("OAI_MINILM").context("set OAI_MINILM (scripts/fetch_models.sh)")?;
    let text_path =
        std::env::var("OAI_TEXT").context("set OAI_TEXT (scripts/fetch_training_data.sh)")?;
    let model = MiniLm::load(&model_dir, &oai::rag::candle::Device::Cpu)?;
    let corpus = std::fs::read_to_string(&text_path).with_context(|| text_path.clone())?;
    let all: Vec<String> = passages(&corpus, 400)?
        .into_iter()
        .filter(|p| p.len() > 80)
        .take(PASSAGES)
        .collect();

    // Three nodes, each holding the passages i with i % 3 != node: every passage on two nodes.
    let mut peers: Vec<Arc<dyn KnowledgePeer>> = Vec::new();
    for node in 0..3 {
        let start = Instant::now();
        let records: Vec<Record> = all
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 3 != node)
            .map(|(_, p)| Record::Text(p.clone()))
            .collect();
        let store = MemStore::new();
        let version = Version::from_records(&store, records.clone()).await?;
        let ingestor = Ingestor::new(model.clone(), HnswStore::new(model.dim())?);
        let report = ingestor.ingest(&store, &version).await?;
        let peer = LocalPeer::new(format!("node{node}"), ingestor.into_index(), records);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        tokio::spawn(serve(Arc::new(peer), listener));
        println!(
            "node{node}: dataset {} ({} passages embedded in {:.1} s), serving {url}",
            version.cid(),
            report.embedded,
            start.elapsed().as_secs_f64()
        );
        peers.push(Arc::new(GrpcPeer::new(&url, Duration::from_secs(2))?));
    }

    // The asking node: embed the question, publish it, merge.
    let federation = Federation::new(peers, Duration::from_secs(2));
    let vector = model
        .embed(std::slice::from_ref(&question))
        .await?
        .remove(0);
    let start = Instant::now();
    let answer = federation
        .query(&PeerQuery {
            vector,
            k: 5,
            filter: None,
        })
        .await?;
    println!(
        "\nQ: {question}\nmerged answers of {:?} in {:.1} ms; failures: {:?}",
        answer.answered,
        start.elapsed().as_secs_f64() * 1e3,
        answer.failures
    );
    for h in &answer.hits {
        let preview: String = h.text.chars().take(90).collect();
        println!(
            "  {:.4}  {}  from {:?}\n          {}...",
            h.score,
            h.source,
            h.peers,
            preview.replace('\n', " ")
        );
    }
    let reply = Extractive.answer(&question, &answer.passages()).await?;
    let cited: Vec<String> = reply.citations.iter().map(|c| c.to_string()).collect();
    println!("\nA: {}\n   citing {}", reply.text, cited.join(", "));
    Ok(())
}
