//! `oai node`: a long-running process playing one or more of oai-verify's roles (trainer,
//! challenger, referee) against a deployment on an Ethereum node and a block store, or, with
//! `--embedded`, a single-process demo on an embedded EVM that plays the jobs it is given
//! until they settle.
//!
//! Everything it acts on is read again from the chain and the store, so a node stopped (or
//! killed) mid-dispute and started again picks up where the chain stands. Logs are JSON lines
//! on stdout (`{"t":..,"role":..,"level":..,"msg":..}`); SIGINT and SIGTERM stop it cleanly
//! after the tick in progress.

use std::path::{Path, PathBuf};

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use oai::chain::Chain;
use oai::verify::agents::{self, Agent, ChallengerAgent, NodeAgent, NodeLimits, RefereeAgent};
use oai::verify::Strategy;
use serde::Deserialize;
use serde_json::json;

use crate::chain::{load_key, parse_eth, ChainOpt};
use crate::Blocks;
use oai::data::FsStore;

/// A role a node plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Claims jobs it can do, trains, submits, answers disputes, finalizes, withdraws.
    Trainer,
    /// Audits submitted results, challenges bad ones and bisects to the bad step.
    Challenger,
    /// Judges one-step cases by re-executing the step and votes.
    Referee,
}

impl Role {
    /// Its name in configs and logs.
    pub fn name(self) -> &'static str {
        match self {
            Role::Trainer => "trainer",
            Role::Challenger => "challenger",
            Role::Referee => "referee",
        }
    }
}

/// The TOML config of `oai node`. Unknown keys are errors.
///
/// ```toml
/// roles = ["trainer"]            # trainer, challenger, referee: one or more
/// poll_ms = 1000                 # between ticks
/// stake_eth = "1"                # a trainer or challenger stakes this much if it has no stake
/// key_file = "node.key"          # else --key-file or $OAI_KEY
/// rpc = "http://127.0.0.1:8545"  # else --rpc
/// deployment = "deployment.json" # else --deployment
/// receipt_timeout_s = 30         # no receipt by then: an error, the next tick acts again
///
/// [audit]                        # the challenger's audits
/// strategy = "full"              # or "sampling" with samples = K
/// parallelism = 2
/// seed_delay_blocks = 64         # sampled steps from the block this many after a submission
///
/// [limits]                       # the jobs a trainer takes on (defaults: NodeLimits)
/// min_reward_eth = "0.01"
/// max_params = 200000000
/// max_batch = 65536
/// max_steps = 100000000
/// max_memory_gib = 8
/// trial_steps = 3                # trained before claiming, to time a step
/// margin = 2.0                   # time per step x steps x margin must fit the job's duration
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Roles to play.
    #[serde(default)]
    pub roles: Vec<Role>,
    /// Milliseconds between ticks.
    pub poll_ms: Option<u64>,
    /// Stake to register with when the account has none.
    pub stake_eth: Option<String>,
    /// Key file.
    pub key_file: Option<PathBuf>,
    /// JSON-RPC URL.
    pub rpc: Option<String>,
    /// Deployment file.
    pub deployment: Option<PathBuf>,
    /// Seconds to wait for a transaction's receipt (default 30); one lost by a node that went
    /// down is given up on then, and the next tick reads the chain and acts again, well within
    /// a move timeout.
    pub receipt_timeout_s: Option<u64>,
    /// How the challenger audits.
    #[serde(default)]
    pub audit: AuditConfig,
    /// The jobs a trainer takes on.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Demonstrations only: a trainer that halves the loss it logs for this step (a cheater
    /// the others must catch).
    pub forge_loss_at_step: Option<u64>,
}

/// How the challenger audits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// `full` or `sampling`.
    #[serde(default = "full")]
    pub strategy: String,
    /// Steps a sampled audit replays.
    pub samples: Option<u32>,
    /// Checkpoint intervals replayed at once.
    #[serde(default = "one")]
    pub parallelism: usize,
    /// Sampled steps are drawn from the randomness of the block this many blocks after a
    /// submission (default `AUDIT_SEED_DELAY`, 64; `--embedded`: 1).
    pub seed_delay_blocks: Option<u64>,
}

/// The jobs a trainer takes on; unset keys keep [`NodeLimits`]'s defaults.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// The least reward, in ETH.
    pub min_reward_eth: Option<String>,
    /// The most parameters.
    pub max_params: Option<u64>,
    /// The largest batch.
    pub max_batch: Option<u64>,
    /// The most steps.
    pub max_steps: Option<u64>,
    /// The most memory a step may need, GiB.
    pub max_memory_gib: Option<u64>,
    /// Steps trained before claiming.
    pub trial_steps: Option<u64>,
    /// Margin on the measured time.
    pub margin: Option<f64>,
}

impl LimitsConfig {
    fn limits(&self) -> Result<NodeLimits> {
        let d = NodeLimits::default();
        let margin = self.margin.unwrap_or(d.margin);
        if !(margin.is_finite() && margin >= 1.0) {
            bail!("limits.margin {margin}: expected a number >= 1");
        }
        Ok(NodeLimits {
            min_reward: match &self.min_reward_eth {
                Some(eth) => parse_eth(eth)?,
                None => d.min_reward,
            },
            max_params: self.max_params.unwrap_or(d.max_params),
            max_batch: self.max_batch.unwrap_or(d.max_batch),
            max_steps: self.max_steps.unwrap_or(d.max_steps),
            max_memory: match self.max_memory_gib {
                Some(g) => g
                    .checked_mul(1 << 30)
                    .with_context(|| format!("limits.max_memory_gib {g} is too large"))?,
                None => d.max_memory,
            },
            trial_steps: self.trial_steps.unwrap_or(d.trial_steps),
            margin,
        })
    }
}

fn full() -> String {
    "full".into()
}

fn one() -> usize {
    1
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            strategy: full(),
            samples: None,
            parallelism: 1,
            seed_delay_blocks: None,
        }
    }
}

impl AuditConfig {
    fn strategy(&self) -> Result<Strategy> {
        match (self.strategy.as_str(), self.samples) {
            ("full", None) => Ok(Strategy::Full),
            ("full", Some(_)) => bail!("audit.samples is only for strategy = \"sampling\""),
            ("sampling", Some(k)) if k > 0 => Ok(Strategy::Sampling { samples: k }),
            ("sampling", _) => bail!("strategy = \"sampling\" needs audit.samples > 0"),
            (s, _) => bail!("audit.strategy {s:?}: expected \"full\" or \"sampling\""),
        }
    }
}

impl NodeConfig {
    /// Parse a config file.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config {}", path.display()))?;
        let config: Self =
            toml::from_str(&text).with_context(|| format!("config {}", path.display()))?;
        config
            .audit
            .strategy()
            .with_context(|| format!("config {}", path.display()))?;
        config
            .limits
            .limits()
            .with_context(|| format!("config {}", path.display()))?;
        Ok(config)
    }
}

/// The options of `oai node` (they override the config file's values).
#[derive(Args, Debug)]
pub struct NodeArgs {
    /// TOML config file.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Roles to play (repeat or separate by commas).
    #[arg(long, value_enum, value_delimiter = ',')]
    role: Vec<Role>,
    /// JSON-RPC URL of the Ethereum node (else the config's `rpc`).
    #[arg(long, env = "OAI_RPC")]
    rpc: Option<String>,
    /// Deployment file (else the config's `deployment`).
    #[arg(long, env = "OAI_DEPLOYMENT")]
    deployment: Option<PathBuf>,
    /// Key file (else the config's `key_file`, else `$OAI_KEY`).
    #[arg(long, env = "OAI_KEY_FILE")]
    key_file: Option<PathBuf>,
    /// A single-process demo instead: deploy the contracts on an embedded EVM in this process
    /// (in memory, gone when it exits), give every role its own development account, post the
    /// `--post` jobs from a requester's, and play until they are settled: when nobody has
    /// anything to do a day passes on the chain, so challenge windows close. Prints a JSON
    /// summary (the jobs, each account's balance and stake) and exits. Roles default to all
    /// three; `--rpc`, `--deployment` and the key are not used.
    /// Example: `oai node --embedded --post spec.json`.
    #[arg(long)]
    embedded: bool,
    /// With `--embedded`: a job spec (JSON, its dataset in the store) to post; repeat for
    /// several jobs.
    #[arg(long = "post", requires = "embedded")]
    post: Vec<PathBuf>,
}

/// One JSON log line.
fn log(started: Instant, role: &str, level: &str, msg: impl std::fmt::Display) {
    println!(
        "{}",
        json!({"t": (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0, "role": role, "level": level, "msg": msg.to_string()})
    );
}

/// Run the node until SIGINT or SIGTERM. A trainer names the log of each live job in `refs`
/// (the store's heads) until the job settles, so that `oai gc` keeps it.
pub async fn run(store: &Blocks, refs: &FsStore, args: NodeArgs) -> Result<()> {
    let started = Instant::now();
    let config = match &args.config {
        Some(p) => NodeConfig::read(p)?,
        None => NodeConfig::default(),
    };
    let mut roles = if args.role.is_empty() {
        config.roles.clone()
    } else {
        args.role.clone()
    };
    if args.embedded && roles.is_empty() {
        roles = vec![Role::Trainer, Role::Challenger, Role::Referee];
    }
    roles.sort();
    roles.dedup();
    if roles.is_empty() {
        bail!("no role: give --role trainer,challenger,referee or `roles` in the config");
    }
    let strategy = config.audit.strategy()?;
    if args.embedded {
        return embedded(store, refs, &args.post, &config, &roles, strategy, started).await;
    }
    let opt = ChainOpt {
        rpc: args
            .rpc
            .or(config.rpc.clone())
            .unwrap_or_else(|| "http://127.0.0.1:8545".into()),
        deployment: args
            .deployment
            .or(config.deployment.clone())
            .unwrap_or_else(|| "deployment.json".into()),
        key_file: args.key_file.or(config.key_file.clone()),
        json: true,
        receipt_timeout: config.receipt_timeout_s.unwrap_or(30).max(1),
    };
    load_key(opt.key_file.as_deref())?;
    let store = store.clone();
    let stake = config.stake_eth.as_deref().map(parse_eth).transpose()?;
    let poll = Duration::from_millis(config.poll_ms.unwrap_or(1000).max(10));

    let c = opt.connect().await?;
    let (chain, me, from) = (c.chain, c.me, c.deployment.block);
    log(
        started,
        "node",
        "info",
        format!(
            "account {me}, roles {roles:?}, store {}, chain {} (market {}), from block {from}",
            match &store {
                Blocks::Fs(_) => "filesystem",
                Blocks::Ipfs(_) => "IPFS",
            },
            crate::chain::redacted(&opt.rpc),
            c.deployment.market
        ),
    );
    if let Some(stake) = stake {
        if roles.iter().any(|r| *r != Role::Referee) && chain.stake(me).await?.stake.is_zero() {
            chain.register(me, stake).await?;
            log(
                started,
                "node",
                "info",
                format!("registered with stake {stake} wei"),
            );
        }
    }

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    for role in roles {
        let agent = agent(
            role,
            chain.clone(),
            &store,
            refs,
            me,
            from,
            &config,
            strategy,
            started,
        )?;
        let name = role.name();
        let mut rx = stop_rx.clone();
        tasks.push(tokio::spawn(async move {
            agents::run(
                agent,
                poll,
                async move {
                    let _ = rx.wait_for(|s| *s).await;
                },
                move |r| match r {
                    Ok(line) => log(started, name, "info", line),
                    Err(e) => log(started, name, "error", e),
                },
            )
            .await
        }));
    }

    let signal = shutdown_signal().await?;
    log(
        started,
        "node",
        "info",
        format!("{signal}: stopping after the tick in progress"),
    );
    stop_tx.send(true).ok();
    for t in tasks {
        t.await.context("an agent task panicked")?;
    }
    log(started, "node", "info", "stopped");
    Ok(())
}

/// The agent playing `role` for `me` on `chain`, reading events from block `from`.
#[allow(clippy::too_many_arguments)]
fn agent<C: Chain + Clone + 'static>(
    role: Role,
    chain: C,
    store: &Blocks,
    refs: &FsStore,
    me: oai::chain::Address,
    from: u64,
    config: &NodeConfig,
    strategy: Strategy,
    started: Instant,
) -> Result<Box<dyn Agent>> {
    // live jobs' logs are named in the repository's refs (so `oai gc` keeps them) and, on an
    // IPFS node, also pinned there (so the node's own GC keeps them)
    let keep: std::sync::Arc<dyn oai::data::RefStore> = match store {
        Blocks::Fs(_) => std::sync::Arc::new(refs.clone()),
        Blocks::Ipfs(ipfs) => std::sync::Arc::new(oai::data::store::PinnedRefs::new(
            refs.clone(),
            ipfs.clone(),
        )),
    };
    let store = store.clone();
    Ok(match role {
        Role::Trainer => {
            let mut a = NodeAgent::new(chain, store, me)
                .from_block(from)
                .limits(config.limits.limits()?)
                .keeping(keep);
            if let Some(step) = config.forge_loss_at_step {
                log(
                    started,
                    "trainer",
                    "warn",
                    format!("demonstration: this trainer forges the loss of step {step}"),
                );
                a = a.forging(oai::verify::agents::halve_loss_at(step));
            }
            Box::new(a)
        }
        Role::Challenger => Box::new(
            ChallengerAgent::new(chain, store, me)
                .auditing(strategy, config.audit.parallelism)
                .audit_seed_delay(
                    config
                        .audit
                        .seed_delay_blocks
                        .unwrap_or(oai::verify::AUDIT_SEED_DELAY),
                )
                .from_block(from)
                .keeping(keep),
        ),
        Role::Referee => Box::new(RefereeAgent::new(chain, store, me).from_block(from)),
    })
}

/// `oai node --embedded`: deploy on an in-process EVM, post `specs`, play `roles` (each with
/// its own development account) until every job is settled, print a summary.
async fn embedded(
    store: &Blocks,
    refs: &FsStore,
    specs: &[PathBuf],
    config: &NodeConfig,
    roles: &[Role],
    strategy: Strategy,
    started: Instant,
) -> Result<()> {
    use oai::chain::{Address, ChainConfig, Contracts, Evm, Revm, U256};
    // the embedded chain makes a block only per transaction or idle round, and its randomness
    // is a stand-in anyone can compute: sampled audits wait one block, not 64 idle days
    let mut config = config.clone();
    config.audit.seed_delay_blocks.get_or_insert(1);
    let config = &config;
    if specs.is_empty() {
        bail!(
            "--embedded needs a job to play: --post SPEC.json (nobody else can reach this chain)"
        );
    }
    if !roles.contains(&Role::Trainer) {
        bail!("--embedded: nobody would train the jobs: add the trainer role");
    }
    let eth = U256::from(10u64.pow(18));
    let stake = match config.stake_eth.as_deref() {
        Some(s) => parse_eth(s)?,
        None => eth,
    };
    let (deployer, requester) = (Address::repeat_byte(0xde), Address::repeat_byte(0x01));
    let account = |role: Role| Address::repeat_byte(0x10 + role as u8);
    let evm = std::sync::Arc::new(Revm::with_seed(1));
    for a in [deployer, requester]
        .into_iter()
        .chain(roles.iter().map(|r| account(*r)))
    {
        evm.set_balance(a, eth * U256::from(100)).await?;
    }
    let chain_config = ChainConfig {
        min_stake: stake.min(eth),
        unbond_delay: 7 * 86_400,
        move_timeout: 3_600,
        adjudication_timeout: 86_400,
        referees: vec![account(Role::Referee)],
        threshold: 1,
        governance: None,
    };
    let (chain, _) = Contracts::deploy(evm, deployer, &chain_config).await?;
    for role in roles.iter().filter(|r| **r != Role::Referee) {
        chain.register(account(*role), stake).await?;
    }
    for path in specs {
        let (spec, terms) = crate::chain::job_terms(store, path, stake, Default::default()).await?;
        let (id, _) = chain.post_job(requester, &terms, eth.min(stake)).await?;
        log(
            started,
            "node",
            "info",
            format!(
                "embedded chain: job {id} posted ({} steps of spec {spec}, 1 ETH)",
                terms.steps
            ),
        );
    }
    let mut agents: Vec<(String, Box<dyn Agent>)> = roles
        .iter()
        .map(|r| {
            let a = agent(
                *r,
                chain.clone(),
                store,
                refs,
                account(*r),
                0,
                config,
                strategy,
                started,
            )?;
            Ok((r.name().to_string(), a))
        })
        .collect::<Result<_>>()?;
    let play = agents::play_until_settled(&chain, &mut agents, 0, 86_401, 1_000, |p| match p {
        agents::Played::Did { agent, line } => log(started, agent, "info", line),
        agents::Played::Idle { secs } => log(
            started,
            "node",
            "info",
            format!("nobody has anything to do: {secs} s pass on the embedded chain"),
        ),
    });
    tokio::select! {
        played = play => { played?; }
        signal = shutdown_signal() => {
            log(started, "node", "info", format!("{}: stopped before the jobs settled", signal?));
            return Ok(());
        }
    }
    let mut jobs = Vec::new();
    for id in agents::job_ids(&chain, 0).await? {
        jobs.push(crate::chain::job_json(id, &chain.job(id).await?));
    }
    let mut accounts = serde_json::Map::new();
    let named = std::iter::once(("requester", requester))
        .chain(roles.iter().map(|r| (r.name(), account(*r))));
    for (name, a) in named {
        accounts.insert(
            name.into(),
            json!({
                "account": a,
                "balance_eth": crate::chain::format_eth(chain.balance(a).await?),
                "stake_eth": crate::chain::format_eth(chain.stake(a).await?.stake),
            }),
        );
    }
    log(started, "node", "info", "settled");
    println!("{}", json!({"jobs": jobs, "accounts": accounts}));
    Ok(())
}

/// Wait for SIGINT or SIGTERM; its name.
pub async fn shutdown_signal() -> Result<&'static str> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<NodeConfig> {
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("node.toml");
        std::fs::write(&p, text)?;
        NodeConfig::read(&p)
    }

    #[test]
    fn configs_parse_and_bad_ones_are_named() {
        let c = parse("roles = [\"trainer\", \"referee\"]\npoll_ms = 50\n[audit]\nstrategy = \"sampling\"\nsamples = 8\n").unwrap();
        assert_eq!(c.roles, vec![Role::Trainer, Role::Referee]);
        assert_eq!(
            c.audit.strategy().unwrap(),
            Strategy::Sampling { samples: 8 }
        );
        let err = format!(
            "{:#}",
            parse("roles = [\"trainer\"]\npol_ms = 5\n").unwrap_err()
        );
        assert!(err.contains("unknown field `pol_ms`"), "{err}");
        let err = format!("{:#}", parse("roles = [\"miner\"]\n").unwrap_err());
        assert!(err.contains("unknown variant `miner`"), "{err}");
        let err = format!("{:#}", parse("poll_ms = \"fast\"\n").unwrap_err());
        assert!(err.contains("poll_ms"), "{err}");
        let err = format!(
            "{:#}",
            parse("[audit]\nstrategy = \"sampling\"\n").unwrap_err()
        );
        assert!(err.contains("needs audit.samples"), "{err}");
    }
}
