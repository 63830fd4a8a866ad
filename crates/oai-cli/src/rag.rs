//! `oai rag`: index a dataset's passages, ask questions over the local index and federated
//! peers with citations, serve the index to peers.
//!
//! An index is saved through the block store (an HNSW graph) with a small descriptor (the
//! dataset version it indexes and the embedder it was made with) under the head
//! `indexes/NAME`; ingesting a new version of the dataset re-embeds only what the diff changed.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use oai::core::Cid;
use oai::data::dataset::Version;
use oai::data::{BlockStore, RefStore};
use oai::rag::federation::grpc::{self, GrpcPeer};
use oai::rag::federation::{Federation, KnowledgePeer, LocalPeer, PeerQuery};
use oai::rag::{Embedder, Extractive, Generator, HashedWords, HnswStore, Ingestor, MiniLm};
use oai::train::candle::Device;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{resolve, Blocks, StoreRepo};

/// Which embedder.
#[derive(Args, Debug, Clone)]
pub struct EmbedOpt {
    /// Embed with all-MiniLM-L6-v2 from this directory (`scripts/fetch_models.sh`); default:
    /// hashed words (no model file).
    #[arg(long, env = "OAI_MINILM")]
    minilm: Option<PathBuf>,
}

/// The embedders `oai rag` knows.
#[derive(Debug, Clone)]
enum AnyEmbedder {
    MiniLm(MiniLm),
    Hashed(HashedWords),
}

#[async_trait::async_trait]
impl Embedder for AnyEmbedder {
    fn dim(&self) -> usize {
        match self {
            Self::MiniLm(e) => e.dim(),
            Self::Hashed(e) => e.dim(),
        }
    }

    async fn embed(&self, texts: &[String]) -> oai::rag::Result<Vec<Vec<f32>>> {
        match self {
            Self::MiniLm(e) => e.embed(texts).await,
            Self::Hashed(e) => e.embed(texts).await,
        }
    }
}

/// Dimension of the hashed-words embedder of `oai rag`.
const HASHED_DIM: usize = 512;

impl EmbedOpt {
    fn open(&self) -> Result<(AnyEmbedder, String)> {
        Ok(match &self.minilm {
            Some(dir) => (
                AnyEmbedder::MiniLm(MiniLm::load(dir, &Device::Cpu)?),
                "all-MiniLM-L6-v2".to_string(),
            ),
            None => (
                AnyEmbedder::Hashed(HashedWords::new(HASHED_DIM)?),
                format!("hashed-words-{HASHED_DIM}"),
            ),
        })
    }
}

/// What `indexes/NAME` points to (DAG-CBOR).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IndexDescriptor {
    /// The HNSW index block.
    index: Cid,
    /// The dataset version indexed.
    dataset: Cid,
    /// The embedder's name.
    embedder: String,
}

fn index_ref(name: &str) -> String {
    format!("indexes/{name}")
}

async fn load_descriptor(repo: &StoreRepo, name: &str) -> Result<Option<IndexDescriptor>> {
    let Some(cid) = repo.refs().get_ref(&index_ref(name)).await? else {
        return Ok(None);
    };
    let bytes = repo.blocks().get(&cid).await?;
    Ok(Some(serde_ipld_dagcbor::from_slice(&bytes).with_context(
        || format!("index {name}: malformed descriptor {cid}"),
    )?))
}

/// An index, its passages and its embedder, ready to query.
async fn open_index(
    repo: &StoreRepo,
    name: &str,
    opt: &EmbedOpt,
) -> Result<(LocalPeer<HnswStore>, AnyEmbedder)> {
    let store: &Blocks = repo.blocks();
    let d = load_descriptor(repo, name).await?.with_context(|| {
        format!("no index named {name:?} (run `oai rag ingest DATASET --index {name}`)")
    })?;
    let (embedder, kind) = opt.open()?;
    if kind != d.embedder {
        bail!("index {name} was embedded with {}, not {kind}", d.embedder);
    }
    let index = HnswStore::load(store, &d.index).await?;
    let version = Version::open(store, &d.dataset).await?;
    let passages = version.records(store).await?;
    Ok((
        LocalPeer::new(format!("local:{name}"), index, passages),
        embedder,
    ))
}

#[derive(Subcommand)]
pub enum RagCommand {
    /// Embed the passages (text records) of DATASET into the index NAME; again after the
    /// dataset changed, re-embed only what the diff changed.
    /// Example: `oai rag ingest notes --index notes`.
    Ingest {
        /// Dataset name or version CID.
        dataset: String,
        /// Index name (default: the dataset's).
        #[arg(long)]
        index: Option<String>,
        #[command(flatten)]
        embed: EmbedOpt,
    },
    /// Answer QUESTION from the index and any federated peers, citing the passages by CID
    /// (each checked against its text). Example: `oai rag query notes "What is a fork?"`.
    Query {
        /// Index name.
        index: String,
        /// The question.
        question: String,
        /// Passages to retrieve.
        #[arg(long, default_value_t = 3)]
        k: usize,
        /// A peer serving its index over gRPC (repeat for several).
        #[arg(long = "peer")]
        peers: Vec<String>,
        /// Milliseconds to wait for peers.
        #[arg(long, default_value_t = 3_000)]
        deadline_ms: u64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        embed: EmbedOpt,
    },
    /// Serve the index NAME to federated peers over gRPC until SIGINT or SIGTERM.
    /// Example: `oai rag serve notes --listen 127.0.0.1:7001`.
    Serve {
        /// Index name.
        index: String,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:7001")]
        listen: String,
        #[command(flatten)]
        embed: EmbedOpt,
    },
}

pub async fn run(repo: &StoreRepo, cmd: RagCommand) -> Result<()> {
    let store = repo.blocks();
    match cmd {
        RagCommand::Ingest {
            dataset,
            index,
            embed,
        } => {
            let version = resolve(repo, &dataset).await?;
            let name = index.unwrap_or(dataset);
            let (embedder, kind) = embed.open()?;
            let old = load_descriptor(repo, &name).await?;
            let t = std::time::Instant::now();
            let spin = crate::progress::spinner("embedding");
            let (report, hnsw) = match &old {
                Some(d) if d.embedder != kind => {
                    bail!("index {name} was embedded with {}, not {kind}", d.embedder)
                }
                Some(d) => {
                    let hnsw = HnswStore::load(store, &d.index).await?;
                    let ingestor = Ingestor::new(embedder, hnsw);
                    let before = Version::open(store, &d.dataset).await?;
                    let r = ingestor.update(store, &before, &version).await?;
                    (r, ingestor.into_index())
                }
                None => {
                    let ingestor = Ingestor::new(embedder.clone(), HnswStore::new(embedder.dim())?);
                    let r = ingestor.ingest(store, &version).await?;
                    (r, ingestor.into_index())
                }
            };
            spin.finish_and_clear();
            let descriptor = IndexDescriptor {
                index: hnsw.save(store).await?,
                dataset: version.cid(),
                embedder: kind,
            };
            // DAG-CBOR: the index and the dataset are links, so `oai gc` keeps them
            let cid = store
                .put(
                    oai::core::ids::DAG_CBOR,
                    serde_ipld_dagcbor::to_vec(&descriptor)?.into(),
                )
                .await?;
            let refname = index_ref(&name);
            let prev = repo.refs().get_ref(&refname).await?;
            repo.refs()
                .compare_and_swap(&refname, prev, Some(cid))
                .await?;
            println!(
                "index {name}: {} embedded, {} unchanged, {} removed in {:.2} s ({}), head {refname}",
                report.embedded,
                report.skipped,
                report.removed,
                t.elapsed().as_secs_f64(),
                descriptor.embedder
            );
        }
        RagCommand::Query {
            index,
            question,
            k,
            peers,
            deadline_ms,
            json,
            embed,
        } => {
            let (local, embedder) = open_index(repo, &index, &embed).await?;
            let mut all: Vec<Arc<dyn KnowledgePeer>> = vec![Arc::new(local)];
            for url in &peers {
                all.push(Arc::new(GrpcPeer::new(url, Duration::from_secs(2))?));
            }
            let vector = embedder
                .embed(std::slice::from_ref(&question))
                .await?
                .pop()
                .context("no embedding")?;
            let federation = Federation::new(all, Duration::from_millis(deadline_ms));
            let answer = federation
                .query(&PeerQuery {
                    vector,
                    k,
                    filter: None,
                })
                .await?;
            let a = Extractive.answer(&question, &answer.passages()).await?;
            if json {
                println!(
                    "{}",
                    json!({
                        "answer": a.text,
                        "citations": a.citations.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
                        "hits": answer.hits.iter().map(|h| json!({
                            "source": h.source.to_string(), "score": h.score, "text": h.text,
                            "peers": h.peers,
                        })).collect::<Vec<_>>(),
                        "answered": answer.answered,
                        "failures": answer.failures.iter().map(|f| json!({"peer": f.peer, "reason": f.reason})).collect::<Vec<_>>(),
                    })
                );
            } else {
                println!("{}", a.text);
                for c in &a.citations {
                    println!("  cites {c}");
                }
                for h in &answer.hits {
                    let opening: String = h.text.chars().take(80).collect();
                    println!(
                        "  hit {} ({:.4}, {}): {opening:?}",
                        h.source,
                        h.score,
                        h.peers.join(", ")
                    );
                }
                for f in &answer.failures {
                    eprintln!("peer {} failed: {}", f.peer, f.reason);
                }
            }
        }
        RagCommand::Serve {
            index,
            listen,
            embed,
        } => {
            let (local, _) = open_index(repo, &index, &embed).await?;
            let listener = tokio::net::TcpListener::bind(&listen)
                .await
                .with_context(|| format!("listening on {listen}"))?;
            eprintln!("serving index {index} on http://{}", listener.local_addr()?);
            tokio::select! {
                r = grpc::serve(Arc::new(local), listener) => r?,
                s = crate::node::shutdown_signal() => eprintln!("{}: stopped", s?),
            }
        }
    }
    Ok(())
}
