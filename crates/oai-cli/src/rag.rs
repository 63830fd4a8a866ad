//! `oai rag`: index a dataset's passages, ask questions over the local index and federated
//! peers with citations, serve the index to peers.
//!
//! An index is saved under a name (`oai::rag::named`: an HNSW graph in the block store and a
//! descriptor under the head `indexes/NAME`); ingesting a new version of the dataset re-embeds
//! only what the diff changed.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use oai::rag::federation::grpc::{self, GrpcPeer};
use oai::rag::federation::{Federation, KnowledgePeer, LocalPeer, PeerQuery};
use oai::rag::{named, ChatLm, Embedder, Extractive, Generator, HashedWords, HnswStore, MiniLm};
use oai::train::candle::Device;
use serde_json::json;

use crate::{resolve, StoreRepo};

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

    fn name(&self) -> String {
        match self {
            Self::MiniLm(e) => e.name(),
            Self::Hashed(e) => e.name(),
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
    fn open(&self) -> Result<AnyEmbedder> {
        Ok(match &self.minilm {
            Some(dir) => AnyEmbedder::MiniLm(MiniLm::load(dir, &Device::Cpu)?),
            None => AnyEmbedder::Hashed(HashedWords::new(HASHED_DIM)?),
        })
    }
}

/// An index, its passages and its embedder, ready to query.
async fn open_index(
    repo: &StoreRepo,
    name: &str,
    opt: &EmbedOpt,
) -> Result<(LocalPeer<HnswStore>, AnyEmbedder)> {
    let embedder = opt.open()?;
    let index = named::open(repo.blocks(), repo.refs(), name, &embedder)
        .await
        .map_err(|e| match e {
            oai::rag::Error::Data(oai::data::Error::UnknownName { .. }) => anyhow::anyhow!(
                "no index named {name:?} (run `oai rag ingest DATASET --index {name}`)"
            ),
            e => e.into(),
        })?;
    Ok((index.into_peer(name), embedder))
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
        /// Answer with this Llama-family chat model (a GGUF file, e.g. SmolLM2 from
        /// `scripts/fetch_models.sh`) instead of the best-matching sentence.
        #[arg(long)]
        gguf: Option<std::path::PathBuf>,
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
            let embedder = embed.open()?;
            let t = std::time::Instant::now();
            let spin = crate::progress::spinner("embedding");
            let (report, descriptor) =
                named::ingest(store, repo.refs(), &name, embedder, &version).await?;
            spin.finish_and_clear();
            println!(
                "index {name}: {} embedded, {} unchanged, {} removed in {:.2} s ({}), head {}",
                report.embedded,
                report.skipped,
                report.removed,
                t.elapsed().as_secs_f64(),
                descriptor.embedder,
                named::head(&name),
            );
        }
        RagCommand::Query {
            index,
            question,
            k,
            peers,
            deadline_ms,
            json,
            gguf,
            embed,
        } => {
            let generator: Box<dyn Generator> = match &gguf {
                Some(path) => Box::new(ChatLm::from_gguf(path)?),
                None => Box::new(Extractive),
            };
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
            let a = generator.answer(&question, &answer.passages()).await?;
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
