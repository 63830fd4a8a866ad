//! Two training jobs end to end on the embedded EVM, with real logs: an honest node is audited
//! and paid; a node that forged one step is challenged, bisected to that step from both sides'
//! logs, judged by a referee that re-executes the one step, and slashed. Prints the rounds, the
//! gas of every party, the time from challenge to slashing and the final balances.
//!
//! Run: `cargo run --release -p oai-examples --example verify_job [STEPS]` (default 10,000
//! steps of a small MLP, a checkpoint every 100).

use std::time::Instant;

use anyhow::{bail, Result};
use oai::chain::rpc::{dev_signers, Anvil, RpcEvm};
use oai::chain::{
    Address, Chain, ChainConfig, Contracts, Evm, JobStatus, JobTerms, Receipt, Revm, B256, U256,
};
use oai::core::Seed;
use oai::data::dataset::Version;
use oai::data::MemStore;
use oai::train::candle::Device;
use oai::train::log::store_chain;
use oai::train::{JobSpec, ModelSpec, OptimizerSpec, Schedule, Trainer, VerifiedLog};
use oai::verify::game::{challenge, challenger_move, node_move, referee_move, Judgement};
use oai::verify::sampling::{self, Forgery};
use oai::verify::{audit_seed, commitment, submit_log, Strategy, Submission, Verifier};

const ETH: u128 = 1_000_000_000_000_000_000;

#[tokio::main]
async fn main() -> Result<()> {
    let steps: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(10_000);
    let store = MemStore::new();
    let records = oai::train::corpus::seeded_classes(Seed::from_u64(3), 512, 8, 3);
    let version = Version::from_records(&store, records).await?;
    let spec = JobSpec {
        dataset: version.cid(),
        model: ModelSpec::Mlp {
            input: 8,
            hidden: vec![16],
            classes: 3,
            dropout: 0.1,
        },
        optimizer: OptimizerSpec::adam_w(0.01),
        schedule: Schedule::Constant { lr: 1e-3 },
        batch_size: 16,
        steps,
        checkpoint_every: 100,
        grad_clip: Some(1.0),
        seed: 42,
        kernels: Default::default(),
        compute_class: None,
    };
    let spec_cid = spec.put(&store).await?;

    // The node trains; a challenger that trains the same spec gets the very same log (training
    // is deterministic), so the example computes it once and gives both the result.
    let t = Instant::now();
    let honest = Trainer::new(store.clone(), spec.clone(), Device::Cpu)
        .await?
        .train_and_publish()
        .await?
        .1;
    let train_secs = t.elapsed().as_secs_f64();
    println!(
        "training: {steps} steps in {train_secs:.1} s (the challenger's own log is the same spec \
         trained again, bit for bit this log: computed once here)"
    );
    let own = VerifiedLog::from_head(&store, &honest.header, &honest.head).await?;

    let job = Job {
        store,
        spec,
        spec_cid,
        version,
        honest,
        own,
    };
    println!("\n##### on the embedded EVM");
    let names = ["deployer", "requester", "node", "challenger", "referee"];
    let who: Vec<Address> = (1..=names.len() as u8).map(Address::repeat_byte).collect();
    play(std::sync::Arc::new(Revm::with_seed(2026)), who, &job).await?;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    match Anvil::locate(&root) {
        Some(bin) => {
            println!("\n##### on anvil ({})", bin.display());
            let node = Anvil::start(&bin).await?;
            let signers = dev_signers(5);
            let who = signers.iter().map(|s| s.address()).collect();
            play(std::sync::Arc::new(RpcEvm::connect(node.url(), signers).await?), who, &job).await?;
        }
        None => println!("\n(no anvil: install npm @foundry-rs/anvil-linux-amd64 under .ci/node or set OAI_ANVIL to play on it too)"),
    }
    Ok(())
}

/// What both chains play with: the data, the spec and the honest log.
struct Job {
    store: MemStore,
    spec: JobSpec,
    spec_cid: oai::core::Cid,
    version: Version,
    honest: oai::train::TrainingLog,
    own: VerifiedLog,
}

/// The two jobs on `evm`, acting for `who` (deployer, requester, node, challenger, referee).
async fn play<E: Evm + 'static>(
    evm: std::sync::Arc<E>,
    who: Vec<Address>,
    job: &Job,
) -> Result<()> {
    let (store, spec, spec_cid) = (job.store.clone(), &job.spec, job.spec_cid);
    let (version, honest, own) = (&job.version, &job.honest, &job.own);
    let steps = spec.steps;
    let names = ["deployer", "requester", "node", "challenger", "referee"];
    // The chain: requester, node, challenger, referee.
    let eth = U256::from(ETH);
    for a in &who {
        evm.set_balance(*a, eth * U256::from(100)).await?;
    }
    let (requester, node, challenger, referee) = (who[1], who[2], who[3], who[4]);
    let config = ChainConfig {
        min_stake: eth,
        unbond_delay: 7 * 86_400,
        move_timeout: 3_600,
        adjudication_timeout: 86_400,
        referees: vec![referee],
        threshold: 1,
        governance: None,
    };
    let (chain, _) = Contracts::deploy(evm.clone(), who[0], &config).await?;
    let terms = JobTerms {
        dataset_root: B256::from(version.root().0),
        spec: commitment(&spec_cid)?,
        steps,
        claim_window: 86_400,
        max_duration: 86_400,
        challenge_window: 86_400,
        required_stake: eth * U256::from(2),
    };
    let mut gas = Gas::default();
    gas.add("node", chain.register(node, eth * U256::from(4)).await?);
    gas.add("challenger", chain.register(challenger, eth).await?);

    for cheat in [false, true] {
        let label = if cheat {
            "a cheating node"
        } else {
            "an honest node"
        };
        println!("\n== job with {label}");
        let (job, r) = chain.post_job(requester, &terms, eth).await?;
        gas.add("requester", r);
        gas.add("node", chain.claim_job(node, job).await?);
        let log = if cheat {
            // One forged step: its loss is a lie; every record is re-chained consistently.
            let mut records = own.records(&store, ..).await?;
            let forged = steps * 7 / 9;
            records[forged as usize].loss *= 0.5;
            println!("the node forges step {forged} and publishes a well-formed log");
            store_chain(&store, own.log.header, own.header.init, records)
                .await?
                .1
        } else {
            honest.clone()
        };
        let (_, submitted) = submit_log(&chain, &store, node, job, &log).await?;
        let submit_block = submitted.block;
        gas.add("node", submitted);

        // The challenger: a sampled audit seeded by a block made after the submission (on the
        // embedded chain a block is one transaction: the challenger tops up its stake), then a
        // comparison of its own log's head with the node's.
        gas.add("challenger", chain.top_up(challenger, U256::from(1)).await?);
        let later = chain.block_number().await?;
        if later <= submit_block {
            bail!("no block after the submission");
        }
        let j = chain.job(job).await?;
        let sub = Submission::from_chain(&j.terms, &j.result.expect("submitted"));
        let k = sampling::samples_needed(steps, spec.checkpoint_every, 0.1, 0.99, Forgery::Spread)
            .expect("samples");
        let seed = audit_seed(&sub, &chain.randomness(later).await?);
        let t = Instant::now();
        let audit = Verifier::new(store.clone())
            .verify(&sub, Strategy::Sampling { samples: k }, &seed)
            .await?;
        println!(
            "sampled audit ({k} steps for 99% against 10% skipped steps, seeded by block {later}): \
             {} in {:.2} s",
            match audit.fault() {
                None => "accepted".to_string(),
                Some(f) => format!("rejected: {f}"),
            },
            t.elapsed().as_secs_f64()
        );
        let t = Instant::now();
        match challenge(&chain, challenger, job, own).await? {
            None => {
                println!("the challenger's own log has the same head: no challenge");
                chain.advance_time(86_401).await?;
                gas.add("node", chain.finalize(node, job).await?);
                println!("challenge window over: finalized, the node is paid");
                continue;
            }
            Some(r) => {
                println!(
                    "the challenger's own log has another head: challenged (one forged step \
                     is what the full comparison finds; samples price laziness)"
                );
                gas.add("challenger", r);
            }
        }
        let node_log = VerifiedLog::from_head(&store, &log.header, &log.head).await?;
        let mut rounds = 0u32;
        loop {
            let d = chain.dispute(job).await?.expect("a dispute");
            if d.turn == oai::chain::Turn::Adjudication {
                println!(
                    "bisection: {rounds} rounds, interval [{}, {}]: step {} is disputed",
                    d.lo, d.hi, d.lo
                );
                break;
            }
            if let Some(r) = node_move(&chain, &store, node, job, &node_log).await? {
                gas.add("node", r);
                rounds += u32::from(d.turn == oai::chain::Turn::Node);
            }
            if let Some(r) = challenger_move(&chain, challenger, job, own).await? {
                gas.add("challenger", r);
            }
        }
        let (judgement, r) = referee_move(&chain, referee, job, &store, Device::Cpu)
            .await?
            .expect("a case");
        let Some(r) = r else {
            bail!("the referee could not judge the step: {judgement:?}");
        };
        gas.add("referee", r);
        match &judgement {
            Judgement::NodeWrong(f) => println!("referee re-executed the step: node wrong ({f})"),
            other => println!("referee: {other:?}"),
        }
        gas.add("challenger", chain.resolve(challenger, job).await?);
        let status = chain.job(job).await?.status;
        println!(
            "resolved: {status:?}, {:.2} s from the challenge to the slashing",
            t.elapsed().as_secs_f64()
        );
        if status != JobStatus::Slashed {
            bail!("the cheating node was not slashed");
        }
        gas.add("requester", chain.refund(requester, job).await?);
    }

    println!("\ngas per party:");
    for (party, g) in &gas.0 {
        println!("  {party:<10} {g:>10}");
    }
    println!("\nfinal balances (after withdrawing what the market owes), ETH:");
    for (i, a) in who.iter().enumerate().skip(1) {
        if chain.owed(*a).await? > U256::ZERO {
            chain.withdraw(*a).await?;
        }
        let stake = chain.stake(*a).await?;
        let wei = chain.balance(*a).await?;
        println!(
            "  {:<10} {:>8.3}   stake {:>6.3}",
            names[i],
            to_eth(wei),
            to_eth(stake.stake)
        );
    }
    Ok(())
}

/// Gas by party, in the order parties first paid.
#[derive(Default)]
struct Gas(Vec<(&'static str, u64)>);

impl Gas {
    fn add(&mut self, party: &'static str, r: Receipt) {
        match self.0.iter_mut().find(|(p, _)| *p == party) {
            Some((_, g)) => *g += r.gas_used,
            None => self.0.push((party, r.gas_used)),
        }
    }
}

fn to_eth(wei: U256) -> f64 {
    wei.to_string().parse::<f64>().unwrap_or(f64::NAN) / ETH as f64
}
