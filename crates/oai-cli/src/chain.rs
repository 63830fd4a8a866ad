//! `oai chain` and `oai job`: a deployment of the contracts on an Ethereum node over JSON-RPC,
//! its jobs, and every move of a job's life from the command line.
//!
//! A command acts for one account whose private key comes from `--key-file` or the environment
//! (`OAI_KEY`), never from the command line. The deployment's addresses live in a JSON file
//! (`--deployment`, written by `oai chain deploy`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use oai::chain::rpc::{dev_signers, RpcEvm, RECEIPT_TIMEOUT};
use oai::chain::{
    Address, Chain, ChainConfig, Contracts, Deployment, Evm, GovernanceConfig, Job, JobId,
    JobTerms, U256,
};
use oai::train::{JobSpec, VerifiedLog};
use oai::verify::agents::job_ids;
use oai::verify::{cid_of, Strategy, Submission, Verdict, Verifier};
use serde_json::json;

use crate::train::log_cid;

/// The signer type of the JSON-RPC backend.
pub type Signer = oai::chain::rpc::PrivateKeySigner;

/// Where the chain is and who acts on it.
#[derive(Args, Debug, Clone)]
pub struct ChainOpt {
    /// JSON-RPC URL of the Ethereum node.
    #[arg(long, env = "OAI_RPC", default_value = "http://127.0.0.1:8545")]
    pub rpc: String,
    /// The deployment file (`oai chain deploy` writes it).
    #[arg(long, env = "OAI_DEPLOYMENT", default_value = "deployment.json")]
    pub deployment: PathBuf,
    /// A file holding the account's private key (hex); otherwise `$OAI_KEY` holds the key.
    #[arg(long, env = "OAI_KEY_FILE")]
    pub key_file: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Seconds to wait for a sent transaction's receipt before giving up with an error.
    #[arg(long, env = "OAI_RECEIPT_TIMEOUT", default_value_t = RECEIPT_TIMEOUT.as_secs())]
    pub receipt_timeout: u64,
}

/// The account key: from `file`, else from `$OAI_KEY`. A key file that anyone but its owner
/// may read is refused (as ssh refuses such a private key).
pub fn load_key(file: Option<&Path>) -> Result<Signer> {
    let (text, from) = match file {
        Some(f) => {
            refuse_loose_permissions(f)?;
            (
                std::fs::read_to_string(f)
                    .with_context(|| format!("reading key file {}", f.display()))?,
                format!("key file {}", f.display()),
            )
        }
        None => (
            std::env::var("OAI_KEY")
                .context("no account key: give --key-file FILE or set OAI_KEY")?,
            "$OAI_KEY".to_string(),
        ),
    };
    let hex = text.trim();
    if hex.trim_start_matches("0x").len() != 64 {
        bail!("{from} does not hold a private key (64 hex digits)");
    }
    hex.parse()
        .map_err(|e| anyhow::anyhow!("{from} does not hold a valid private key: {e}"))
}

/// Refuse a key file its group or others may read or write.
#[cfg(unix)]
fn refuse_loose_permissions(f: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(f)
        .with_context(|| format!("reading key file {}", f.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        bail!(
            "key file {} is open to others (mode {:o}): `chmod 600 {}` first",
            f.display(),
            mode & 0o777,
            f.display()
        );
    }
    Ok(())
}

#[cfg(not(unix))]
fn refuse_loose_permissions(_: &Path) -> Result<()> {
    Ok(())
}

/// Write `key` to a new key file at `path`, readable and writable by its owner only.
fn write_key_file(path: &Path, key: &Signer) -> Result<()> {
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        open.mode(0o600);
    }
    let mut f = open
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        // an existing file keeps its mode through `open`: set it
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    use std::io::Write;
    writeln!(f, "{}", key.to_bytes()).with_context(|| format!("writing {}", path.display()))
}

/// `url` with any credentials (`user:password@`) replaced, for logs and messages.
pub fn redacted(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host_end = rest.find('/').unwrap_or(rest.len());
            match rest[..host_end].rfind('@') {
                Some(at) => format!("{scheme}://***{}", &rest[at..]),
                None => url.to_string(),
            }
        }
        None => url.to_string(),
    }
}

/// A deployment file: the contracts' addresses and the block they were deployed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentFile {
    /// `NodeRegistry`.
    pub registry: Address,
    /// `RefereeAdjudicator`.
    pub adjudicator: Address,
    /// `TrainingMarket`.
    pub market: Address,
    /// `TrainingDAO`, the governor of the three (absent in deployments made before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dao: Option<Address>,
    /// The block of the deployment (agents read events from there).
    pub block: u64,
}

impl DeploymentFile {
    /// Read and parse `path`.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "reading deployment {} (run `oai chain deploy` first)",
                path.display()
            )
        })?;
        serde_json::from_str(&text)
            .with_context(|| format!("deployment {} is malformed", path.display()))
    }

    fn addresses(&self) -> Deployment {
        Deployment {
            registry: self.registry,
            adjudicator: self.adjudicator,
            market: self.market,
            dao: self.dao,
        }
    }
}

/// A connected deployment, acting for `me`.
pub struct Connected {
    /// The contracts.
    pub chain: Contracts<RpcEvm>,
    /// The account acting.
    pub me: Address,
    /// The deployment.
    pub deployment: DeploymentFile,
}

impl ChainOpt {
    async fn evm(&self, signer: Signer) -> Result<RpcEvm> {
        Ok(RpcEvm::connect(&self.rpc, vec![signer])
            .await
            .with_context(|| format!("connecting to the Ethereum node at {}", redacted(&self.rpc)))?
            .with_receipt_timeout(std::time::Duration::from_secs(self.receipt_timeout)))
    }

    /// Connect to the deployment, acting for the account of the key.
    pub async fn connect(&self) -> Result<Connected> {
        self.connect_with(load_key(self.key_file.as_deref())?).await
    }

    /// Connect to read only: no key needed (a throwaway one signs nothing).
    pub async fn connect_reader(&self) -> Result<Connected> {
        if self.key_file.is_none() && std::env::var_os("OAI_KEY").is_none() {
            return self.connect_with(dev_signers(1).remove(0)).await;
        }
        self.connect().await
    }

    async fn connect_with(&self, signer: Signer) -> Result<Connected> {
        let me = signer.address();
        let deployment = DeploymentFile::read(&self.deployment)?;
        let evm = self.evm(signer).await?;
        Ok(Connected {
            chain: Contracts::attach(evm, deployment.addresses()),
            me,
            deployment,
        })
    }

    pub(crate) fn print(&self, value: serde_json::Value, text: impl FnOnce() -> String) {
        if self.json {
            println!("{value}");
        } else {
            println!("{}", text());
        }
    }
}

#[derive(Subcommand)]
pub enum ChainCommand {
    /// Deploy the contracts (registry, market, referee adjudicator) and write the deployment
    /// file. Example: `oai chain deploy --referee 0xabc... --key-file deployer.key`.
    Deploy {
        /// A referee of the adjudicator (repeat for several).
        #[arg(long = "referee", required = true)]
        referees: Vec<Address>,
        /// Referee votes needed for a verdict: a strict majority of the referees (the
        /// default: half of them, plus one).
        #[arg(long)]
        threshold: Option<u64>,
        /// Least stake of a node, in ETH.
        #[arg(long, default_value = "1")]
        min_stake_eth: String,
        /// Seconds a party has for its next bisection move.
        #[arg(long, default_value_t = 3_600)]
        move_timeout: u64,
        /// Seconds the referees have to decide.
        #[arg(long, default_value_t = 86_400)]
        adjudication_timeout: u64,
        /// Seconds between asking to unbond stake and withdrawing it.
        #[arg(long, default_value_t = 7 * 86_400)]
        unbond_delay: u64,
        /// A member of the training DAO that governs the deployment, `ADDRESS` or
        /// `ADDRESS=WEIGHT` (weight 1 by default; repeat for several; none: the deployer alone).
        #[arg(long = "member")]
        members: Vec<String>,
        /// Yes-weight a DAO change needs, in basis points of the members' total weight.
        #[arg(long, default_value_t = 5_000)]
        quorum_bps: u16,
        /// Seconds between a DAO change reaching its quorum and its execution.
        #[arg(long, default_value_t = 2 * 86_400)]
        timelock: u64,
        #[command(flatten)]
        chain: ChainOpt,
    },
    /// The chain's block and time, the deployment, and the account's balance, stake and what
    /// the market owes it. Example: `oai chain status --json`.
    Status {
        #[command(flatten)]
        chain: ChainOpt,
    },
    /// Gas and fees an account's transactions cost since the deployment (or `--from-block`),
    /// read from every block's receipts: for development chains and short ranges.
    /// Example: `oai chain spent --json --key-file node.key`.
    Spent {
        /// The account (default: the key's; then no key is needed).
        #[arg(long)]
        account: Option<Address>,
        /// First block read (default: the deployment's).
        #[arg(long)]
        from_block: Option<u64>,
        #[command(flatten)]
        chain: ChainOpt,
    },
    /// Every job of the market with its status (needs no key). Example: `oai chain jobs --json`.
    Jobs {
        #[command(flatten)]
        chain: ChainOpt,
    },
    /// One job in full (needs no key). Example: `oai chain job 1`.
    Job {
        /// Job id.
        id: JobId,
        #[command(flatten)]
        chain: ChainOpt,
    },
    /// Stake ETH as a node (registers, or tops up a registered node).
    /// Example: `oai chain stake 2 --key-file node.key`.
    Stake {
        /// ETH to stake.
        eth: String,
        #[command(flatten)]
        chain: ChainOpt,
    },
    /// Development chains only: write the deterministic throwaway key N (everyone can derive
    /// it: never fund it on a real chain) to FILE and print its address.
    /// Example: `oai chain dev-key 3 node.key`.
    DevKey {
        /// Key number.
        n: usize,
        /// The key file to write.
        file: PathBuf,
    },
    /// Development chains only (anvil): set an account's balance.
    /// Example: `oai chain dev-fund 0xabc... 100`.
    DevFund {
        /// The account.
        account: Address,
        /// ETH it holds afterwards.
        eth: String,
        /// JSON-RPC URL of the node.
        #[arg(long, env = "OAI_RPC", default_value = "http://127.0.0.1:8545")]
        rpc: String,
    },
}

#[derive(Subcommand)]
pub enum JobCommand {
    /// Post a job for the spec in FILE (stored in the block store; its dataset must be there
    /// too), with a reward in escrow. Prints the job id.
    /// Example: `oai job post spec.json --reward-eth 1 --stake-eth 1`.
    Post {
        /// The job spec (JSON).
        spec: PathBuf,
        /// ETH put in escrow for the node.
        #[arg(long, default_value = "1")]
        reward_eth: String,
        /// ETH of stake the node locks (and a challenger bonds).
        #[arg(long, default_value = "1")]
        stake_eth: String,
        #[command(flatten)]
        windows: Windows,
        #[command(flatten)]
        chain: ChainOpt,
    },
    /// Add ETH to a job's escrow. Example: `oai job fund 1 0.5`.
    Fund {
        /// Job id.
        id: JobId,
        /// ETH to add.
        eth: String,
        #[command(flatten)]
        chain: ChainOpt,
    },
    /// Claim an open job as a node (locks the job's stake). Example: `oai job claim 1`.
    Claim {
        /// Job id.
        id: JobId,
        #[command(flatten)]
        chain: ChainOpt,
    },
    /// Submit a trained run (name or log CID, from `oai train run`) as the job's result.
    /// Example: `oai job submit 1 my-run`.
    Submit {
        /// Job id.
        id: JobId,
        /// Run name or log CID.
        log: String,
        #[command(flatten)]
        chain: ChainOpt,
    },
    /// Replay a submitted result in full and challenge it if a step is wrong (bonding the
    /// job's stake); an accepted result is not challenged. Exits with 2 when it accepts.
    /// Example: `oai job challenge 1`.
    Challenge {
        /// Job id.
        id: JobId,
        #[command(flatten)]
        chain: ChainOpt,
    },
    /// Ask the node to post record INDEX of its submitted log on chain (bonding 1% of the
    /// job's stake, paid to the node when it answers; `oai node` answers for a trainer); the
    /// record is then read with the chain's events. Example: `oai job request-data 1 137`.
    RequestData {
        /// Job id.
        id: JobId,
        /// The record (its step), 0-based.
        index: u64,
        #[command(flatten)]
        chain: ChainOpt,
    },
    /// Slash a node that left a data request unanswered past its deadline (the requester
    /// takes its bond back and the winner's share of the stake). Example: `oai job
    /// timeout-data 1`.
    TimeoutData {
        /// Job id.
        id: JobId,
        #[command(flatten)]
        chain: ChainOpt,
    },
    /// Pay the node once the challenge window is over. Example: `oai job finalize 1`.
    Finalize {
        /// Job id.
        id: JobId,
        #[command(flatten)]
        chain: ChainOpt,
    },
    /// Take back a funder's share of a slashed or cancelled job. Example: `oai job refund 1`.
    Refund {
        /// Job id.
        id: JobId,
        #[command(flatten)]
        chain: ChainOpt,
    },
    /// Withdraw everything the market owes the account. Example: `oai job withdraw`.
    Withdraw {
        #[command(flatten)]
        chain: ChainOpt,
    },
}

/// Wei from a decimal ETH amount such as `1`, `0.25` (at most 18 decimals).
/// A DAO member as `ADDRESS` (weight 1) or `ADDRESS=WEIGHT`.
fn parse_member(s: &str) -> Result<(Address, U256)> {
    let (addr, weight) = s.split_once('=').unwrap_or((s, "1"));
    let addr: Address = addr
        .parse()
        .map_err(|e| anyhow::anyhow!("member {s:?}: {addr:?} is not an address: {e}"))?;
    let weight: u64 = weight
        .parse()
        .ok()
        .filter(|w| *w > 0)
        .with_context(|| format!("member {s:?}: the weight must be a whole number above 0"))?;
    Ok((addr, U256::from(weight)))
}

pub fn parse_eth(s: &str) -> Result<U256> {
    let bad = || format!("{s:?} is not an ETH amount (e.g. 1 or 0.25)");
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() && frac.is_empty()
        || frac.len() > 18
        || !whole
            .chars()
            .chain(frac.chars())
            .all(|c| c.is_ascii_digit())
    {
        bail!(bad());
    }
    let digits = format!("{whole}{frac:0<18}");
    U256::from_str_radix(digits.trim_start_matches('0').max("0"), 10).with_context(bad)
}

/// ETH as a decimal string, from wei.
pub fn format_eth(wei: U256) -> String {
    let s = format!("{wei:0>19}");
    let (whole, frac) = s.split_at(s.len() - 18);
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        whole.to_string()
    } else {
        format!("{whole}.{frac}")
    }
}

/// A job as the `--json` output shows it.
pub fn job_json(id: JobId, j: &Job) -> serde_json::Value {
    json!({
        "id": id,
        "status": format!("{:?}", j.status),
        "requester": j.requester,
        "node": j.node,
        "reward_eth": format_eth(j.reward),
        "steps": j.terms.steps,
        "spec": cid_of(&j.terms.spec).to_string(),
        "deadline": j.deadline,
        "result": j.result.as_ref().map(|r| json!({
            "header": cid_of(&r.genesis).to_string(),
            "head": cid_of(&r.head).to_string(),
        })),
    })
}

pub async fn run_chain(cmd: ChainCommand) -> Result<()> {
    match cmd {
        ChainCommand::Deploy {
            referees,
            threshold,
            min_stake_eth,
            move_timeout,
            adjudication_timeout,
            unbond_delay,
            members,
            quorum_bps,
            timelock,
            chain,
        } => {
            let signer = load_key(chain.key_file.as_deref())?;
            let me = signer.address();
            let mut members = members
                .iter()
                .map(|m| parse_member(m))
                .collect::<Result<Vec<_>>>()?;
            if members.is_empty() {
                members.push((me, U256::from(1)));
            }
            let evm = chain.evm(signer).await?;
            let block = evm.block_number().await?;
            let config = ChainConfig {
                min_stake: parse_eth(&min_stake_eth)?,
                unbond_delay,
                move_timeout,
                adjudication_timeout,
                threshold: threshold.unwrap_or(oai::chain::majority(referees.len())),
                referees,
                governance: Some(GovernanceConfig {
                    members,
                    quorum_bps,
                    delay: timelock,
                }),
            };
            let (contracts, gas) = Contracts::deploy(evm, me, &config).await?;
            let d = contracts.deployment();
            let file = DeploymentFile {
                registry: d.registry,
                adjudicator: d.adjudicator,
                market: d.market,
                dao: d.dao,
                block,
            };
            std::fs::write(&chain.deployment, serde_json::to_string_pretty(&file)?)
                .with_context(|| format!("writing {}", chain.deployment.display()))?;
            chain.print(json!({"deployment": file, "gas": gas.iter().map(|(_, g)| g).sum::<u64>()}), || {
                format!(
                    "registry     {}\nadjudicator  {}\nmarket       {}\ntraining DAO {}\nblock        {block}\ngas          {}\nwritten to   {}",
                    d.registry,
                    d.adjudicator,
                    d.market,
                    d.dao.map_or("none".to_string(), |a| a.to_string()),
                    gas.iter().map(|(_, g)| g).sum::<u64>(),
                    chain.deployment.display()
                )
            });
        }
        ChainCommand::Status { chain } => {
            let c = chain.connect().await?;
            let (block, now) = (c.chain.block_number().await?, c.chain.now().await?);
            let balance = c.chain.balance(c.me).await?;
            let stake = c.chain.stake(c.me).await?;
            let owed = c.chain.owed(c.me).await?;
            let jobs = job_ids(&c.chain, c.deployment.block).await?.len();
            chain.print(
                json!({
                    "block": block, "time": now, "deployment": c.deployment, "jobs": jobs,
                    "account": c.me, "balance_eth": format_eth(balance),
                    "stake_eth": format_eth(stake.stake), "locked_eth": format_eth(stake.locked),
                    "owed_eth": format_eth(owed),
                }),
                || {
                    format!(
                        "block        {block}\ntime         {now}\nmarket       {}\njobs         {jobs}\naccount      {}\nbalance      {} ETH\nstake        {} ETH ({} locked)\nowed         {} ETH",
                        c.deployment.market,
                        c.me,
                        format_eth(balance),
                        format_eth(stake.stake),
                        format_eth(stake.locked),
                        format_eth(owed)
                    )
                },
            );
        }
        ChainCommand::Spent {
            account,
            from_block,
            chain,
        } => {
            let c = match account {
                Some(_) => chain.connect_reader().await?,
                None => chain.connect().await?,
            };
            let who = account.unwrap_or(c.me);
            let (from, to) = (
                from_block.unwrap_or(c.deployment.block),
                c.chain.block_number().await?,
            );
            let s = c.chain.evm().spent(who, from, to).await?;
            chain.print(
                json!({"account": who, "from_block": from, "to_block": to, "txs": s.txs,
                       "gas": s.gas, "fee_eth": format_eth(s.fee)}),
                || {
                    format!(
                        "{who}: {} transactions in blocks {from}..={to}, {} gas, {} ETH in fees",
                        s.txs,
                        s.gas,
                        format_eth(s.fee)
                    )
                },
            );
        }
        ChainCommand::Jobs { chain } => {
            let c = chain.connect_reader().await?;
            let mut all = Vec::new();
            for id in job_ids(&c.chain, c.deployment.block).await? {
                all.push((id, c.chain.job(id).await?));
            }
            if chain.json {
                let v: Vec<_> = all.iter().map(|(id, j)| job_json(*id, j)).collect();
                println!("{}", serde_json::Value::Array(v));
            } else {
                for (id, j) in &all {
                    println!(
                        "{id}\t{:?}\tnode {}\treward {} ETH\t{} steps",
                        j.status,
                        j.node.map_or("-".to_string(), |n| n.to_string()),
                        format_eth(j.reward),
                        j.terms.steps
                    );
                }
            }
        }
        ChainCommand::Job { id, chain } => {
            let c = chain.connect_reader().await?;
            let j = c.chain.job(id).await?;
            let v = job_json(id, &j);
            chain.print(v.clone(), || {
                serde_json::to_string_pretty(&v).expect("json")
            });
        }
        ChainCommand::Stake { eth, chain } => {
            let amount = parse_eth(&eth)?;
            let c = chain.connect().await?;
            let r = if c.chain.stake(c.me).await?.stake.is_zero() {
                c.chain.register(c.me, amount).await?
            } else {
                c.chain.top_up(c.me, amount).await?
            };
            let stake = c.chain.stake(c.me).await?.stake;
            chain.print(
                json!({"account": c.me, "stake_eth": format_eth(stake), "gas": r.gas_used}),
                || format!("{} stakes {} ETH", c.me, format_eth(stake)),
            );
        }
        ChainCommand::DevKey { n, file } => {
            let key = dev_signers(n + 1).pop().expect("n + 1 keys");
            write_key_file(&file, &key)?;
            println!("{}", key.address());
        }
        ChainCommand::DevFund { account, eth, rpc } => {
            let evm = RpcEvm::connect(&rpc, dev_signers(1))
                .await
                .with_context(|| {
                    format!("connecting to the Ethereum node at {}", redacted(&rpc))
                })?;
            evm.set_balance(account, parse_eth(&eth)?).await?;
            println!("{account} holds {eth} ETH");
        }
    }
    Ok(())
}

const DAY: u32 = oai::verify::Windows::DAY;

/// A job's windows, in seconds.
#[derive(Args, Debug, Clone, Copy)]
pub struct Windows {
    /// Seconds a node has to claim the job.
    #[arg(long, default_value_t = DAY)]
    pub claim_window: u32,
    /// Seconds from the claim to the submission.
    #[arg(long, default_value_t = DAY)]
    pub max_duration: u32,
    /// Seconds a result can be challenged.
    #[arg(long, default_value_t = DAY)]
    pub challenge_window: u32,
}

impl From<Windows> for oai::verify::Windows {
    fn from(w: Windows) -> Self {
        Self {
            claim_window: w.claim_window,
            max_duration: w.max_duration,
            challenge_window: w.challenge_window,
        }
    }
}

/// The terms of a job for the spec in the JSON file `spec`: the spec is stored in `store`
/// (its CID returned) and the dataset it names must be there already (its root goes in the
/// terms).
pub async fn job_terms(
    store: &crate::Blocks,
    spec: &Path,
    required_stake: U256,
    windows: oai::verify::Windows,
) -> Result<(oai::prelude::Cid, JobTerms)> {
    let json =
        std::fs::read_to_string(spec).with_context(|| format!("reading {}", spec.display()))?;
    let spec = JobSpec::from_json(&json).with_context(|| format!("job spec {}", spec.display()))?;
    oai::verify::job_terms(store, &spec, required_stake, windows)
        .await
        .with_context(|| {
            format!(
                "the job's terms (the spec's dataset {} must be in the store)",
                spec.dataset
            )
        })
}

pub async fn run_job(repo: &crate::StoreRepo, cmd: JobCommand) -> Result<()> {
    let store = repo.blocks();
    match cmd {
        JobCommand::Post {
            spec,
            reward_eth,
            stake_eth,
            windows,
            chain,
        } => {
            let (spec_cid, terms) =
                job_terms(store, &spec, parse_eth(&stake_eth)?, windows.into()).await?;
            let reward = parse_eth(&reward_eth)?;
            let c = chain.connect().await?;
            let (id, r) = c.chain.post_job(c.me, &terms, reward).await?;
            chain.print(
                json!({"id": id, "spec": spec_cid.to_string(), "gas": r.gas_used}),
                || format!("job {id}: spec {spec_cid}, {} steps", terms.steps),
            );
        }
        JobCommand::Fund { id, eth, chain } => {
            let amount = parse_eth(&eth)?;
            let c = chain.connect().await?;
            let r = c.chain.fund_job(c.me, id, amount).await?;
            report(&chain, id, "funded", r.gas_used);
        }
        JobCommand::Claim { id, chain } => {
            let c = chain.connect().await?;
            let r = c.chain.claim_job(c.me, id).await?;
            report(&chain, id, "claimed", r.gas_used);
        }
        JobCommand::Submit { id, log, chain } => {
            let c = chain.connect().await?;
            let cid = log_cid(repo, &log).await?;
            let v = VerifiedLog::load(store, &cid).await?;
            let (_, r) = oai::verify::submit_log(&c.chain, store, c.me, id, &v.log).await?;
            report(&chain, id, "submitted", r.gas_used);
        }
        JobCommand::Challenge { id, chain } => {
            let c = chain.connect().await?;
            let job = c.chain.job(id).await?;
            let result = job.result.context("the job has no result to challenge")?;
            let sub = Submission::from_chain(&job.terms, &result);
            // the header as the node posted it on chain
            oai::verify::game::take_posted(&c.chain, store, id, &result.genesis).await?;
            let spin = crate::progress::spinner("replaying the result");
            let verdict = Verifier::new(store.clone())
                .verify(&sub, Strategy::Full, &oai::core::Seed::from_u64(0))
                .await?;
            spin.finish_and_clear();
            let fault = match verdict {
                Verdict::Accepted(_) => {
                    chain.print(json!({"id": id, "verdict": "accepted"}), || {
                        format!("job {id}: every step replays bit for bit: not challenged")
                    });
                    std::process::exit(2);
                }
                Verdict::Rejected(f) => f,
                other => bail!("a verdict this oai does not know: {other:?}"),
            };
            // a header that does not answer the job's terms is disputed on its face, without
            // bisection; any other fault through the bisection (which `oai node` with the
            // challenger role plays from the honest log)
            let terms = oai::verify::fault_on_its_face(store, &sub).await?.is_some();
            let stake = job.terms.required_stake;
            let r = if terms {
                c.chain.challenge_terms(c.me, id, stake).await?
            } else {
                let claim = oai::verify::game::disagreeing(&result.head);
                c.chain.challenge(c.me, id, claim, stake).await?
            };
            chain.print(
                json!({"id": id, "verdict": "rejected", "fault": fault.to_string(), "terms": terms, "gas": r.gas_used}),
                || format!("job {id}: {fault}: challenged{}", if terms { " on its terms" } else { "" }),
            );
        }
        JobCommand::RequestData { id, index, chain } => {
            let c = chain.connect().await?;
            let job = c.chain.job(id).await?;
            let bond = job.terms.required_stake.div_ceil(U256::from(100));
            let r = c.chain.request_data(c.me, id, index, bond).await?;
            chain.print(
                json!({"id": id, "index": index, "bond_wei": bond.to_string(), "gas": r.gas_used}),
                || {
                    format!(
                        "job {id}: record {index} requested, bond {bond} wei ({} gas)",
                        r.gas_used
                    )
                },
            );
        }
        JobCommand::TimeoutData { id, chain } => {
            let c = chain.connect().await?;
            let r = c.chain.timeout_data(c.me, id).await?;
            report(
                &chain,
                id,
                "node slashed: the requested record never came",
                r.gas_used,
            );
        }
        JobCommand::Finalize { id, chain } => {
            let c = chain.connect().await?;
            let r = c.chain.finalize(c.me, id).await?;
            report(&chain, id, "finalized", r.gas_used);
        }
        JobCommand::Refund { id, chain } => {
            let c = chain.connect().await?;
            let r = c.chain.refund(c.me, id).await?;
            report(&chain, id, "refunded", r.gas_used);
        }
        JobCommand::Withdraw { chain } => {
            let c = chain.connect().await?;
            let owed = c.chain.owed(c.me).await?;
            if owed.is_zero() {
                chain.print(json!({"withdrawn_eth": "0"}), || "nothing owed".into());
            } else {
                c.chain.withdraw(c.me).await?;
                chain.print(json!({"withdrawn_eth": format_eth(owed)}), || {
                    format!("withdrew {} ETH", format_eth(owed))
                });
            }
        }
    }
    Ok(())
}

fn report(chain: &ChainOpt, id: JobId, what: &str, gas: u64) {
    chain.print(json!({"id": id, "done": what, "gas": gas}), || {
        format!("job {id}: {what} ({gas} gas)")
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key file others can read is refused, as ssh refuses such a private key; `dev-key`
    /// writes its files readable by their owner only.
    #[cfg(unix)]
    #[test]
    fn key_files_others_can_read_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        let key = dev_signers(1).pop().unwrap();
        write_key_file(&path, &key).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(load_key(Some(&path)).unwrap().address(), key.address());
        for loose in [0o644, 0o640, 0o604] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(loose)).unwrap();
            let err = load_key(Some(&path)).unwrap_err().to_string();
            assert!(err.contains("chmod 600"), "{loose:o}: {err}");
        }
    }

    #[test]
    fn rpc_urls_are_logged_without_their_credentials() {
        assert_eq!(
            redacted("https://user:secret@rpc.example.org/v1/KEY?x=1"),
            "https://***@rpc.example.org/v1/KEY?x=1"
        );
        assert_eq!(redacted("http://127.0.0.1:8545"), "http://127.0.0.1:8545");
        assert_eq!(redacted("not a url"), "not a url");
    }

    #[test]
    fn eth_amounts_parse_and_print() {
        assert_eq!(parse_eth("1").unwrap(), U256::from(10u64.pow(18)));
        assert_eq!(parse_eth("0.25").unwrap(), U256::from(25 * 10u64.pow(16)));
        assert_eq!(format_eth(parse_eth("12.5").unwrap()), "12.5");
        assert_eq!(format_eth(U256::ZERO), "0");
        for bad in ["", ".", "-1", "1e18", "0.0000000000000000001", "one"] {
            assert!(parse_eth(bad).is_err(), "{bad:?}");
        }
    }
}
