//! `oai`: the command line of the oai SDK.
//!
//! Blocks and heads live in a filesystem store (`--store`, default `.oai`, or `$OAI_STORE`).
//! Run `oai --help` for the commands.

use anyhow::{bail, Context, Result};
use blocks::Blocks;
use clap::{Parser, Subcommand, ValueEnum};
use oai::core::{ids, Seed};
use oai::data::dataset::{sources, Record, Repo, Sampler, Version};
use oai::data::{car, gc, unixfs, FsStore, RefStore};
use std::path::PathBuf;
use std::time::Instant;
use tokio::io::AsyncWriteExt;

mod blocks;
mod chain;
mod dao;
mod generate;
mod node;
mod progress;
mod rag;
mod train;
mod verify;

#[derive(Parser)]
#[command(
    name = "oai",
    version,
    about = "Content-addressed, forkable datasets and verifiable training for open AI"
)]
struct Cli {
    /// Directory of the block and ref store.
    #[arg(long, env = "OAI_STORE", default_value = ".oai", global = true)]
    store: PathBuf,
    /// Keep blocks in the IPFS node at this RPC API URL (e.g. `http://127.0.0.1:5001`); heads
    /// stay in `--store`.
    #[arg(long, env = "OAI_IPFS", global = true)]
    ipfs: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Import a file as IPFS would (same CID as `ipfs add`), streaming.
    /// Example: `oai add big.bin --name big`.
    Add {
        /// The file.
        file: PathBuf,
        /// Import profile.
        #[arg(long, value_enum, default_value_t = ProfileArg::KuboCidv1)]
        profile: ProfileArg,
        /// Keep the file under the head `files/NAME` (so `gc` keeps it).
        #[arg(long)]
        name: Option<String>,
    },
    /// Write a file's bytes (verified block by block) to stdout or `--output`.
    /// Example: `oai cat bafkrei... -o copy.bin`.
    Cat {
        /// Root CID of the file.
        cid: String,
        /// Output file.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Datasets: import, fork, diff, prove, sample.
    #[command(subcommand)]
    Dataset(DatasetCommand),
    /// CAR files.
    #[command(subcommand)]
    Car(CarCommand),
    /// Training: run a job spec with a full log, resume, replay or prove a step.
    #[command(subcommand)]
    Train(train::TrainCommand),
    /// Delete every block no head (dataset, `files/`, `runs/` or `indexes/` name) reaches.
    /// Example: `oai gc`.
    Gc,
    /// The contracts on an Ethereum node: deploy, status, jobs, stake.
    #[command(subcommand)]
    Chain(chain::ChainCommand),
    /// A job's life: post, fund, claim, submit, challenge, finalize, refund, withdraw.
    #[command(subcommand)]
    Job(chain::JobCommand),
    /// The training DAO: the rules in force, changes proposed, voted and executed.
    #[command(subcommand)]
    Dao(dao::DaoCommand),
    /// Run a node playing trainer, challenger and/or referee until SIGINT or SIGTERM.
    /// Example: `oai node --config node.toml --key-file node.key`.
    Node(node::NodeArgs),
    /// Audit a published run, or a job's result on chain, by replaying it.
    #[command(subcommand)]
    Verify(verify::VerifyCommand),
    /// Generate text with a Llama-family GGUF model on this machine (SmolLM2 by default,
    /// `OAI_SMOLLM2`), streamed; greedy unless given a temperature.
    /// Example: `oai generate "What is the capital of France?"`.
    Generate(generate::GenerateArgs),
    /// Retrieval: index a dataset's passages, answer questions with citations, serve peers.
    #[command(subcommand)]
    Rag(rag::RagCommand),
}

#[derive(Subcommand)]
enum DatasetCommand {
    /// Import records into dataset NAME; if NAME exists, the import becomes its next version
    /// (only changed chunks are stored). Example: `oai dataset import notes --lines notes.txt`.
    #[command(group = clap::ArgGroup::new("source").required(true).multiple(false))]
    Import {
        /// Dataset name.
        name: String,
        #[command(flatten)]
        source: Source,
        /// Schema description stored in the manifest.
        #[arg(long, default_value = "")]
        schema: String,
    },
    /// List datasets and their heads. Example: `oai dataset list`.
    List,
    /// Show a dataset version (by name or manifest CID). Example: `oai dataset show notes`.
    Show {
        /// Name or CID.
        dataset: String,
    },
    /// Fork dataset FROM as TO (no bytes copied). Example: `oai dataset fork notes notes-es`.
    Fork {
        /// Existing dataset.
        from: String,
        /// New name.
        to: String,
    },
    /// Records removed and added between two versions. Example: `oai dataset diff notes notes-es`.
    Diff {
        /// Old version (name or CID).
        a: String,
        /// New version (name or CID).
        b: String,
    },
    /// Print a record with its inclusion proof, and check the proof.
    /// Example: `oai dataset prove notes 42`.
    Prove {
        /// Name or CID.
        dataset: String,
        /// Record index.
        index: u64,
    },
    /// Print the record indices and CIDs of a deterministic batch.
    /// Example: `oai dataset sample notes --seed 7 --batch 32`.
    Sample {
        /// Name or CID.
        dataset: String,
        /// Seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Batch size.
        #[arg(long, default_value_t = 8)]
        batch: u64,
        /// Epoch.
        #[arg(long, default_value_t = 0)]
        epoch: u64,
        /// Step within the epoch.
        #[arg(long, default_value_t = 0)]
        step: u64,
    },
}

/// Where imported records come from (exactly one).
#[derive(clap::Args)]
#[group(skip)]
struct Source {
    /// A UTF-8 text file: one text record per line.
    #[arg(long, group = "source")]
    lines: Option<PathBuf>,
    /// A directory: one bytes record per file, in file-name order.
    #[arg(long, group = "source")]
    files: Option<PathBuf>,
    /// A CSV of numeric features with an integer class in the last column: one labelled f32
    /// tensor record per line (features times `--scale`).
    #[arg(long, group = "source")]
    csv: Option<PathBuf>,
    /// A text file cut into byte windows of `--context + 1` bytes every `--stride` bytes (for
    /// the transformer language model).
    #[arg(long, group = "source")]
    windows: Option<PathBuf>,
    /// Scale of CSV features.
    #[arg(long, default_value_t = 1.0, requires = "csv")]
    scale: f32,
    /// Context length of byte windows.
    #[arg(long, default_value_t = 64, requires = "windows")]
    context: usize,
    /// Stride of byte windows.
    #[arg(long, default_value_t = 64, requires = "windows")]
    stride: usize,
}

#[derive(Subcommand)]
enum CarCommand {
    /// Write everything reachable from CID (a file or a dataset version) to a CARv1 file.
    /// Example: `oai car export notes notes.car`.
    Export {
        /// Root (a CID or a dataset name).
        root: String,
        /// Output file.
        file: PathBuf,
    },
    /// Import a CARv1 file (every block verified); prints its roots.
    /// Example: `oai car import notes.car`.
    Import {
        /// The CAR file.
        file: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum ProfileArg {
    /// CIDv1, raw leaves, 256 KiB, 174 links (`ipfs add --cid-version=1`).
    KuboCidv1,
    /// CIDv0, 256 KiB, 174 links (kubo's legacy default).
    UnixfsV0_2015,
    /// CIDv1, raw leaves, 1 MiB, 1024 links (IPIP-499).
    UnixfsV1_2025,
}

impl From<ProfileArg> for unixfs::Profile {
    fn from(p: ProfileArg) -> Self {
        match p {
            ProfileArg::KuboCidv1 => unixfs::Profile::KuboCidV1,
            ProfileArg::UnixfsV0_2015 => unixfs::Profile::UnixfsV0_2015,
            ProfileArg::UnixfsV1_2025 => unixfs::Profile::UnixfsV1_2025,
        }
    }
}

/// Datasets over the command's blocks, heads in the filesystem store.
type StoreRepo = Repo<Blocks, FsStore>;

/// A dataset version by name (its head) or by manifest CID.
async fn resolve(repo: &StoreRepo, name_or_cid: &str) -> Result<Version> {
    repo.resolve(name_or_cid).await.map_err(|e| match e {
        oai::data::Error::UnknownName { .. } => anyhow::anyhow!("{e} (see `oai dataset list`)"),
        other => other.into(),
    })
}

fn read_records(src: &Source) -> Result<Vec<Record>> {
    if let Some(path) = &src.csv {
        return Ok(oai::train::corpus::labeled_from_csv_file(path, src.scale)?);
    }
    if let Some(path) = &src.windows {
        return Ok(oai::train::corpus::byte_windows(
            &sources::read_file(path)?,
            src.context,
            src.stride,
        )?);
    }
    if let Some(path) = &src.lines {
        return Ok(sources::lines_of_file(path)?);
    }
    let dir = src
        .files
        .as_deref()
        .context("give --lines, --files, --csv or --windows")?;
    Ok(sources::files_in(dir)?)
}

fn describe(v: &Version) -> String {
    let m = v.manifest();
    format!(
        "version  {}\nroot     {}\nrecords  {}\nbytes    {}\nchunks   {}\nparent   {}\nschema   {}",
        v.cid(),
        v.root(),
        m.records,
        m.bytes,
        v.chunks().len(),
        m.parent.map_or("-".to_string(), |p| p.to_string()),
        m.schema
    )
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Chain(cmd) => return chain::run_chain(cmd).await,
        Command::Dao(cmd) => return dao::run_dao(cmd).await,
        Command::Generate(args) => return generate::run(args),
        _ => {}
    }
    let fs = FsStore::open(&cli.store)
        .await
        .with_context(|| format!("opening store {}", cli.store.display()))?;
    let store = match &cli.ipfs {
        Some(url) => Blocks::Ipfs(oai::data::store::IpfsStore::new(url)?),
        None => Blocks::Fs(fs.clone()),
    };
    let repo = Repo::new(store.clone(), fs.clone());
    match cli.command {
        Command::Add {
            file,
            profile,
            name,
        } => {
            let f = tokio::fs::File::open(&file)
                .await
                .with_context(|| format!("opening {}", file.display()))?;
            let t = Instant::now();
            let spin = progress::spinner("importing");
            let r = unixfs::import(&store, tokio::io::BufReader::new(f), profile.into()).await?;
            spin.finish_and_clear();
            let secs = t.elapsed().as_secs_f64();
            println!("{}", r.root);
            if let Some(name) = name {
                let refname = format!("files/{name}");
                let old = fs.get_ref(&refname).await?;
                fs.compare_and_swap(&refname, old, Some(r.root)).await?;
            }
            eprintln!(
                "{} bytes in {secs:.2} s ({:.0} MB/s)",
                r.size,
                r.size as f64 / 1e6 / secs.max(1e-9)
            );
        }
        Command::Cat { cid, output } => {
            use futures::StreamExt;
            let cid = ids::parse(&cid)?;
            let mut out: Box<dyn tokio::io::AsyncWrite + Unpin> = match output {
                Some(p) => Box::new(tokio::fs::File::create(p).await?),
                None => Box::new(tokio::io::stdout()),
            };
            let mut s = std::pin::pin!(unixfs::cat(store.clone(), cid));
            while let Some(chunk) = s.next().await {
                out.write_all(&chunk?).await?;
            }
            out.flush().await?;
        }
        Command::Dataset(cmd) => dataset(&repo, cmd).await?,
        Command::Train(cmd) => train::run(&repo, cmd).await?,
        Command::Car(CarCommand::Export { root, file }) => {
            let cid = match ids::parse(&root) {
                Ok(c) => c,
                Err(_) => resolve(&repo, &root).await?.cid(),
            };
            let mut f = tokio::fs::File::create(&file).await?;
            let n = car::export(&store, &cid, &mut f).await?;
            println!("{n} blocks from {cid} written to {}", file.display());
        }
        Command::Car(CarCommand::Import { file }) => {
            let f = tokio::fs::File::open(&file).await?;
            for root in car::import(&store, tokio::io::BufReader::new(f)).await? {
                println!("{root}");
            }
        }
        Command::Gc => {
            let r = gc::collect_refs(&store, &fs).await?;
            println!("kept {} blocks, deleted {}", r.kept, r.deleted);
        }
        Command::Job(cmd) => chain::run_job(&repo, cmd).await?,
        Command::Verify(cmd) => verify::run(&repo, cmd).await?,
        Command::Node(args) => node::run(&store, &fs, args).await?,
        Command::Rag(cmd) => rag::run(&repo, cmd).await?,
        Command::Chain(_) | Command::Dao(_) | Command::Generate(_) => unreachable!("handled above"),
    }
    Ok(())
}

async fn dataset(repo: &StoreRepo, cmd: DatasetCommand) -> Result<()> {
    let store = repo.blocks();
    match cmd {
        DatasetCommand::Import {
            name,
            source,
            schema,
        } => {
            let records = read_records(&source)?;
            let bar = progress::bar(records.len() as u64, "records");
            let (head, v) = repo
                .import(&name, &schema, records.into_iter().inspect(|_| bar.inc(1)))
                .await?;
            bar.finish_and_clear();
            println!("{}", describe(&v));
            if let Some(old) = head {
                let d = old.diff(store, &v).await?;
                println!("changes  -{} +{}", d.removed.len(), d.added.len());
            }
        }
        DatasetCommand::List => {
            for (name, cid) in repo.list().await? {
                println!("{name}\t{cid}");
            }
        }
        DatasetCommand::Show { dataset } => {
            println!("{}", describe(&resolve(repo, &dataset).await?))
        }
        DatasetCommand::Fork { from, to } => {
            let v = repo.fork(&from, &to).await?;
            println!("{to} -> {}", v.cid());
        }
        DatasetCommand::Diff { a, b } => {
            let (va, vb) = (resolve(repo, &a).await?, resolve(repo, &b).await?);
            let d = va.diff(store, &vb).await?;
            for (i, cid) in &d.removed {
                println!("- {i}\t{cid}");
            }
            for (i, cid) in &d.added {
                println!("+ {i}\t{cid}");
            }
            eprintln!("{} removed, {} added", d.removed.len(), d.added.len());
        }
        DatasetCommand::Prove { dataset, index } => {
            let v = resolve(repo, &dataset).await?;
            let (record, cid, proof) = v.prove(store, index).await?;
            println!("record   {cid}\nindex    {index}\nroot     {}", v.root());
            println!("value    {}", preview(&record));
            println!(
                "in_chunk {} hashes, in_version {} hashes",
                proof.in_chunk.siblings.len(),
                proof.in_version.siblings.len()
            );
            if !proof.verify_cid(&cid, &v.root()) {
                bail!("the proof does not verify");
            }
            println!("verified");
        }
        DatasetCommand::Sample {
            dataset,
            seed,
            batch,
            epoch,
            step,
        } => {
            let v = resolve(repo, &dataset).await?;
            let mut s = Sampler::for_version(&v, Seed::from_u64(seed), batch)?;
            let b = s.batch(store, &v, epoch, step).await?;
            let mut check = Sampler::for_version(&v, Seed::from_u64(seed), batch)?;
            b.verify(&v.root(), &mut check)?;
            for (i, cid) in b.indices.iter().zip(&b.records) {
                println!("{i}\t{cid}");
            }
        }
    }
    Ok(())
}

fn preview(r: &Record) -> String {
    match r {
        Record::Text(t) => format!("{:?}", t.chars().take(80).collect::<String>()),
        Record::Bytes(b) => format!("{} bytes", b.len()),
        Record::Tensor(t) => format!("tensor {:?} {:?}", t.dtype(), t.shape()),
        Record::Labeled { input, label } => {
            format!(
                "tensor {:?} {:?}, label {label}",
                input.dtype(),
                input.shape()
            )
        }
        other => format!("{other:?}"),
    }
}

#[tokio::main]
async fn main() {
    // a training process: keep freed heap memory (faster steps; see oai_train::keep_freed_memory)
    oai::train::keep_freed_memory();
    let cli = Cli::parse();
    if let Err(e) = run(cli).await {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
