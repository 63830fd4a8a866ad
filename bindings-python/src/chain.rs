//! `oai.Chain`: the oai contracts (stakes, escrowed jobs, bisection disputes, referees) on the
//! embedded EVM, with jobs posted from specs in a store and results submitted from logs.

use std::future::Future;
use std::sync::Arc;

use oai::chain::{
    Address, Chain as _, ChainConfig, Contracts, Deployment, Evm, JobId, JobStatus, Revm, Turn,
    U256,
};
use oai::verify::{
    audit_seed_of, cid_of, AuditSeed, Strategy, Submission, Verifier, Windows, AUDIT_SEED_DELAY,
};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::chain_values::{address, int, Addr, ChainEvent, Wei, Word};
use crate::errors;
use crate::runtime::block_on;
use crate::store::Store;
use crate::train::{job_spec, Log};
use crate::verify::{strategy, Verdict};

/// The contracts over any EVM backend.
pub type AnyChain = Contracts<Arc<dyn Evm>>;

const DAY: u32 = Windows::DAY;
/// One ether in wei.
const ETH: U256 = U256::from_limbs([1_000_000_000_000_000_000, 0, 0, 0]);

/// The oai contracts on an EVM: `Chain.embedded(referees=[...])` deploys them on an in-process
/// EVM (no node, no gas fees, a clock that moves only with `advance_time`). Addresses are `0x`
/// hex strings, amounts are ints of wei, transactions return a `Receipt`; a revert raises
/// `ChainRevertError` with the contract's error decoded and changes nothing.
#[pyclass(frozen, module = "oai")]
pub struct Chain {
    chain: AnyChain,
}

impl Chain {
    /// The contracts (for agents).
    pub fn contracts(&self) -> &AnyChain {
        &self.chain
    }

    /// Run `f` on the chain with the GIL released.
    pub(crate) fn read<T, F, Fut>(&self, py: Python<'_>, f: F) -> PyResult<T>
    where
        F: FnOnce(AnyChain) -> Fut + Send,
        Fut: Future<Output = oai::chain::Result<T>> + Send,
        T: Send,
    {
        let chain = self.chain.clone();
        block_on(py, async move { f(chain).await })?.map_err(errors::chain)
    }

    /// Send the transaction `f` makes; its receipt with the events decoded.
    pub(crate) fn send<F, Fut>(&self, py: Python<'_>, f: F) -> PyResult<Receipt>
    where
        F: FnOnce(AnyChain) -> Fut + Send,
        Fut: Future<Output = oai::chain::Result<oai::chain::Receipt>> + Send,
    {
        let r = self.read(py, f)?;
        Receipt::new(py, &r, &self.chain.deployment())
    }
}

#[pymethods]
impl Chain {
    /// Deploy the registry, the m-of-n referee adjudicator and the market on a fresh embedded
    /// EVM. `threshold` defaults to a strict majority of the referees (it must be one). `seed`
    /// fixes the blocks' randomness (the same seed, the same chain). With `dao_members` (a list
    /// of `(address, weight)`), a training DAO governs the deployment (`propose_change`, ...):
    /// a change needs `quorum_bps` of the weight, more yes than no, and `timelock` seconds.
    #[staticmethod]
    #[pyo3(signature = (*, referees, threshold = None, min_stake = Wei(ETH),
        unbond_delay = 7 * 86_400, move_timeout = 3_600, adjudication_timeout = 86_400, seed = 0,
        deployer = None, dao_members = None, quorum_bps = 5_000, timelock = 86_400))]
    #[allow(clippy::too_many_arguments)]
    fn embedded(
        py: Python<'_>,
        referees: Vec<Addr>,
        threshold: Option<u64>,
        min_stake: Wei,
        unbond_delay: u64,
        move_timeout: u64,
        adjudication_timeout: u64,
        seed: u64,
        deployer: Option<Addr>,
        dao_members: Option<Vec<(Addr, u64)>>,
        quorum_bps: u16,
        timelock: u64,
    ) -> PyResult<Self> {
        let governance = dao_members.map(|members| oai::chain::GovernanceConfig {
            members: members
                .into_iter()
                .map(|(a, w)| (a.0, U256::from(w)))
                .collect(),
            quorum_bps,
            delay: timelock,
        });
        let config = ChainConfig {
            min_stake: min_stake.0,
            unbond_delay,
            move_timeout,
            adjudication_timeout,
            threshold: threshold.unwrap_or(oai::chain::majority(referees.len())),
            governance,
            referees: referees.into_iter().map(|a| a.0).collect(),
        };
        let deployer = deployer.map_or(Address::repeat_byte(0xde), |a| a.0);
        let evm: Arc<dyn Evm> = Arc::new(Revm::with_seed(seed));
        let (chain, _) =
            block_on(py, Contracts::deploy(evm, deployer, &config))?.map_err(errors::chain)?;
        Ok(Chain { chain })
    }

    /// The contracts' addresses: `{"registry", "adjudicator", "market", "dao"}` (`dao`: the
    /// training DAO, `None` for an embedded chain, whose rules never change).
    #[getter]
    fn deployment<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let Deployment {
            registry,
            adjudicator,
            market,
            dao,
        } = self.chain.deployment();
        let d = PyDict::new(py);
        d.set_item("registry", address(&registry))?;
        d.set_item("adjudicator", address(&adjudicator))?;
        d.set_item("market", address(&market))?;
        d.set_item("dao", dao.map(|a| address(&a)))?;
        Ok(d)
    }

    // ---- accounts, time ----

    /// `account`'s balance in wei.
    fn balance<'py>(&self, py: Python<'py>, account: Addr) -> PyResult<Bound<'py, PyAny>> {
        let wei = self.read(py, |c| async move { c.balance(account.0).await })?;
        int(py, wei)
    }

    /// Set `account`'s balance (development chains).
    fn set_balance(&self, py: Python<'_>, account: Addr, wei: Wei) -> PyResult<()> {
        self.read(py, |c| async move {
            c.evm().set_balance(account.0, wei.0).await
        })
    }

    /// The latest block's timestamp (unix seconds).
    fn now(&self, py: Python<'_>) -> PyResult<u64> {
        self.read(py, |c| async move { c.now().await })
    }

    /// The latest block's number.
    fn block_number(&self, py: Python<'_>) -> PyResult<u64> {
        self.read(py, |c| async move { c.block_number().await })
    }

    /// Block `block`'s randomness (`prevrandao`) as a `0x` hex string.
    fn randomness(&self, py: Python<'_>, block: u64) -> PyResult<String> {
        self.read(py, |c| async move { c.randomness(block).await })
            .map(|r| r.to_string())
    }

    /// Move the clock forward `secs` seconds (development chains).
    fn advance_time(&self, py: Python<'_>, secs: u64) -> PyResult<()> {
        self.read(py, |c| async move { c.advance_time(secs).await })
    }

    /// The events of the contracts (and of every dataset DAO) from block `from_block` on.
    #[pyo3(signature = (from_block = 0))]
    fn events(&self, py: Python<'_>, from_block: u64) -> PyResult<Vec<ChainEvent>> {
        let events = self.read(py, |c| async move { c.events(from_block).await })?;
        let d = self.chain.deployment();
        events
            .iter()
            .map(|(block, e)| ChainEvent::new(py, *block, e, &d))
            .collect()
    }

    // ---- registry ----

    /// Register `node` with `stake` wei.
    fn register(&self, py: Python<'_>, node: Addr, stake: Wei) -> PyResult<Receipt> {
        self.send(py, |c| async move { c.register(node.0, stake.0).await })
    }

    /// Add `amount` wei to `node`'s stake.
    fn top_up(&self, py: Python<'_>, node: Addr, amount: Wei) -> PyResult<Receipt> {
        self.send(py, |c| async move { c.top_up(node.0, amount.0).await })
    }

    /// Start unbonding `amount` wei of `node`'s free stake.
    fn request_unbond(&self, py: Python<'_>, node: Addr, amount: Wei) -> PyResult<Receipt> {
        self.send(
            py,
            |c| async move { c.request_unbond(node.0, amount.0).await },
        )
    }

    /// Pay out `node`'s unbonded stake after the delay (to `to`, or to `node`).
    #[pyo3(signature = (node, *, to = None))]
    fn withdraw_stake(&self, py: Python<'_>, node: Addr, to: Option<Addr>) -> PyResult<Receipt> {
        let to = to.unwrap_or(node);
        self.send(
            py,
            |c| async move { c.withdraw_stake_to(node.0, to.0).await },
        )
    }

    /// `node`'s bond.
    fn stake(&self, py: Python<'_>, node: Addr) -> PyResult<NodeStake> {
        let s = self.read(py, |c| async move { c.stake(node.0).await })?;
        Ok(NodeStake {
            registered: s.registered,
            stake: int(py, s.stake)?.unbind(),
            locked: int(py, s.locked)?.unbind(),
            unbonding: int(py, s.unbonding)?.unbind(),
            unbond_at: s.unbond_at,
        })
    }

    // ---- market ----

    /// Post a job to train `spec` (a dict or JSON; its dataset, or `dataset` by name or CID,
    /// must be in `store`): the spec is stored in `store`, its dataset's version root goes in
    /// the terms, `reward` wei is escrowed from `requester`. Returns the job's id.
    #[pyo3(signature = (requester, store, spec, *, reward, required_stake, dataset = None,
        claim_window = DAY, max_duration = DAY, challenge_window = DAY))]
    #[allow(clippy::too_many_arguments)]
    fn post_job(
        &self,
        py: Python<'_>,
        requester: Addr,
        store: &Bound<'_, Store>,
        spec: &Bound<'_, PyAny>,
        reward: Wei,
        required_stake: Wei,
        dataset: Option<String>,
        claim_window: u32,
        max_duration: u32,
        challenge_window: u32,
    ) -> PyResult<JobId> {
        let mut spec = job_spec(py, spec)?;
        let inner = store.get().inner()?;
        let windows = Windows {
            claim_window,
            max_duration,
            challenge_window,
        };
        let terms = block_on(py, async move {
            if let Some(d) = dataset {
                spec.dataset = crate::store::resolve(&inner.repo, &d).await?.cid();
            }
            oai::verify::job_terms(inner.blocks(), &spec, required_stake.0, windows)
                .await
                .map(|(_, terms)| terms)
                .map_err(errors::verify)
        })??;
        let (id, _) = self.read(py, |c| async move {
            c.post_job(requester.0, &terms, reward.0).await
        })?;
        Ok(id)
    }

    /// Add `amount` wei to job `job`'s reward.
    fn fund_job(&self, py: Python<'_>, funder: Addr, job: JobId, amount: Wei) -> PyResult<Receipt> {
        self.send(
            py,
            |c| async move { c.fund_job(funder.0, job, amount.0).await },
        )
    }

    /// Cancel an unclaimed job (the requester at any time, anyone after the claim window).
    fn cancel_job(&self, py: Python<'_>, caller: Addr, job: JobId) -> PyResult<Receipt> {
        self.send(py, |c| async move { c.cancel_job(caller.0, job).await })
    }

    /// A registered `node` claims job `job`, locking the required stake.
    fn claim_job(&self, py: Python<'_>, node: Addr, job: JobId) -> PyResult<Receipt> {
        self.send(py, |c| async move { c.claim_job(node.0, job).await })
    }

    /// `node` submits `log` (a published `Log`) as job `job`'s result: its header (bytes and
    /// commitment), its head commitment and its Merkle root over the step records.
    fn submit_result(
        &self,
        py: Python<'_>,
        node: Addr,
        job: JobId,
        log: &Bound<'_, Log>,
    ) -> PyResult<Receipt> {
        let v = log.get().verified();
        let result = Submission::chain_result(&v.log).map_err(errors::verify)?;
        let header = oai::train::log::encode(&v.header).map_err(errors::train)?;
        self.send(py, |c| async move {
            c.submit_result(node.0, job, &header, &result).await
        })
    }

    /// Reopen a job whose node missed its deadline.
    fn expire_job(&self, py: Python<'_>, caller: Addr, job: JobId) -> PyResult<Receipt> {
        self.send(py, |c| async move { c.expire_job(caller.0, job).await })
    }

    /// Challenge job `job`'s result, claiming `claimed_final` as the true final commitment
    /// (default: any value other than the node's) and bonding `bond` wei (default: the job's
    /// required stake). The bisection that follows is played by the agents (`NodeAgent`,
    /// `ChallengerAgent`, `RefereeAgent`) or by `bisect` and `referee_vote`.
    #[pyo3(signature = (challenger, job, *, claimed_final = None, bond = None))]
    fn challenge(
        &self,
        py: Python<'_>,
        challenger: Addr,
        job: JobId,
        claimed_final: Option<Word>,
        bond: Option<Wei>,
    ) -> PyResult<Receipt> {
        self.send(py, |c| async move {
            let j = c.job(job).await?;
            let claim = match (claimed_final, &j.result) {
                (Some(w), _) => w.0,
                (None, Some(r)) => oai::verify::game::disagreeing(&r.head),
                (None, None) => {
                    return Err(oai::chain::Error::InvalidInput(format!(
                        "job {job} has no result to challenge ({:?})",
                        j.status
                    )))
                }
            };
            let bond = bond.map_or(j.terms.required_stake, |b| b.0);
            c.challenge(challenger.0, job, claim, bond).await
        })
    }

    /// Post this round's commitment at the dispute's mid step.
    fn bisect(
        &self,
        py: Python<'_>,
        mover: Addr,
        job: JobId,
        commitment: Word,
    ) -> PyResult<Receipt> {
        self.send(
            py,
            |c| async move { c.bisect(mover.0, job, commitment.0).await },
        )
    }

    /// The node's reveal, once the bisection has found the step (the dispute's turn is
    /// "reveal"): post the record behind its disputed commitment from `log` (the log it
    /// submitted) with the proofs of both commitments against its root.
    fn reveal(
        &self,
        py: Python<'_>,
        node: Addr,
        job: JobId,
        log: &Bound<'_, Log>,
    ) -> PyResult<Receipt> {
        let (v, store) = (log.get().verified().clone(), log.get().store()?);
        self.send(py, |c| async move {
            match c.dispute(job).await? {
                Some(d) if d.turn == Turn::Reveal => {}
                other => {
                    return Err(oai::chain::Error::InvalidInput(format!(
                        "job {job} waits for no reveal ({other:?})"
                    )))
                }
            }
            oai::verify::game::node_move(&c, store.blocks(), node.0, job, &v)
                .await
                .map_err(|e| oai::chain::Error::InvalidInput(e.to_string()))?
                .ok_or_else(|| oai::chain::Error::InvalidInput(format!("job {job}: no move")))
        })
    }

    /// Apply the adjudicator's verdict on job `job`'s one-step dispute.
    fn resolve(&self, py: Python<'_>, caller: Addr, job: JobId) -> PyResult<Receipt> {
        self.send(py, |c| async move { c.resolve(caller.0, job).await })
    }

    /// End a dispute whose mover missed its deadline.
    fn timeout(&self, py: Python<'_>, caller: Addr, job: JobId) -> PyResult<Receipt> {
        self.send(py, |c| async move { c.timeout(caller.0, job).await })
    }

    /// Pay the node after an unchallenged window.
    fn finalize(&self, py: Python<'_>, caller: Addr, job: JobId) -> PyResult<Receipt> {
        self.send(py, |c| async move { c.finalize(caller.0, job).await })
    }

    /// Credit `funder`'s contribution to a cancelled or slashed job back (see `withdraw`).
    fn refund(&self, py: Python<'_>, funder: Addr, job: JobId) -> PyResult<Receipt> {
        self.send(py, |c| async move { c.refund(funder.0, job).await })
    }

    /// Pay out everything the market owes `account` (to `to`, or to `account`).
    #[pyo3(signature = (account, *, to = None))]
    fn withdraw(&self, py: Python<'_>, account: Addr, to: Option<Addr>) -> PyResult<Receipt> {
        let to = to.unwrap_or(account);
        self.send(py, |c| async move { c.withdraw_to(account.0, to.0).await })
    }

    /// What the market owes `account`, in wei.
    fn owed<'py>(&self, py: Python<'py>, account: Addr) -> PyResult<Bound<'py, PyAny>> {
        let wei = self.read(py, |c| async move { c.owed(account.0).await })?;
        int(py, wei)
    }

    /// Job `job` (`NotFound`-free: an id never posted reverts with `ChainRevertError`).
    fn job(&self, py: Python<'_>, job: JobId) -> PyResult<Job> {
        let j = self.read(py, |c| async move { c.job(job).await })?;
        Job::new(py, job, &j)
    }

    /// Job `job`'s running dispute, or `None`.
    fn dispute(&self, py: Python<'_>, job: JobId) -> PyResult<Option<Dispute>> {
        let d = self.read(py, |c| async move { c.dispute(job).await })?;
        d.map(|d| Dispute::new(py, &d)).transpose()
    }

    /// The adjudicator's case id of job `job`'s one-step dispute (a `0x` hex string).
    fn case_id(&self, py: Python<'_>, job: JobId) -> PyResult<String> {
        self.read(py, |c| async move {
            let Some(d) = c.dispute(job).await? else {
                return Err(oai::chain::Error::InvalidInput(format!(
                    "job {job} has no dispute"
                )));
            };
            c.case_id(job, &d).await
        })
        .map(|id| id.to_string())
    }

    /// `referee` votes on case `case`: whether the node's step is correct.
    fn referee_vote(
        &self,
        py: Python<'_>,
        referee: Addr,
        case: Word,
        node_correct: bool,
    ) -> PyResult<Receipt> {
        self.send(py, |c| async move {
            c.referee_vote(referee.0, case.0, node_correct).await
        })
    }

    /// Audit job `job`'s result with the blocks of `store`: every step (`samples=None`) or
    /// `samples` steps drawn from the randomness of the block `seed_delay` blocks after its
    /// submission (an `InvalidInputError` until that block is made), `parallelism` checkpoint
    /// intervals at once. A forged step is a rejected `Verdict`.
    #[pyo3(signature = (store, job, *, samples = None, parallelism = 1, seed_delay = AUDIT_SEED_DELAY))]
    fn verify_result(
        &self,
        py: Python<'_>,
        store: &Bound<'_, Store>,
        job: JobId,
        samples: Option<u32>,
        parallelism: usize,
        seed_delay: u64,
    ) -> PyResult<Verdict> {
        let strategy = strategy(samples, parallelism)?;
        let blocks = store.get().inner()?.blocks().clone();
        let chain = self.chain.clone();
        let verdict = block_on(py, async move {
            let j = chain.job(job).await?;
            let Some(result) = j.result else {
                return Err(oai::verify::Error::InvalidInput(format!(
                    "job {job} has no result ({:?})",
                    j.status
                )));
            };
            let sub = Submission::from_chain(&j.terms, &result);
            let seed = match strategy {
                Strategy::Full => oai::core::Seed::from_u64(0),
                _ => match audit_seed_of(&chain, job, &sub, seed_delay).await? {
                    AuditSeed::Ready(seed) => seed,
                    AuditSeed::Pending { block } => {
                        return Err(oai::verify::Error::InvalidInput(format!(
                            "job {job}'s sampled steps are drawn from the randomness of block \
                             {block}, not made yet: audit again once it is"
                        )));
                    }
                },
            };
            Verifier::new(blocks)
                .with_parallelism(parallelism)
                .verify(&sub, strategy, &seed)
                .await
        })?
        .map_err(errors::verify)?;
        Ok(Verdict::from(verdict))
    }

    fn __repr__(&self) -> String {
        format!(
            "<oai.Chain embedded EVM, market {}>",
            address(&self.chain.deployment().market)
        )
    }
}

/// A mined transaction: gas, fee (0 on the embedded EVM), block and decoded events.
#[pyclass(frozen, get_all, module = "oai")]
pub struct Receipt {
    /// Gas used.
    gas_used: u64,
    /// Wei paid for gas.
    fee: Py<PyAny>,
    /// The block it was mined in.
    block: u64,
    /// Its events, decoded.
    events: Vec<Py<ChainEvent>>,
}

impl Receipt {
    fn new(py: Python<'_>, r: &oai::chain::Receipt, d: &Deployment) -> PyResult<Self> {
        Ok(Receipt {
            gas_used: r.gas_used,
            fee: int(py, r.fee)?.unbind(),
            block: r.block,
            events: r
                .events
                .iter()
                .map(|e| Py::new(py, ChainEvent::new(py, r.block, e, d)?))
                .collect::<PyResult<_>>()?,
        })
    }
}

#[pymethods]
impl Receipt {
    fn __repr__(&self) -> String {
        let names: Vec<String> = self
            .events
            .iter()
            .map(|e| e.get().name().to_string())
            .collect();
        format!(
            "<oai.Receipt block {}, gas {}, events [{}]>",
            self.block,
            self.gas_used,
            names.join(", ")
        )
    }
}

/// A node's bond in the registry (wei).
#[pyclass(frozen, get_all, module = "oai")]
pub struct NodeStake {
    /// Registered at all.
    registered: bool,
    /// Bonded wei, the locked part included.
    stake: Py<PyAny>,
    /// Wei locked for claimed jobs.
    locked: Py<PyAny>,
    /// Wei leaving the bond.
    unbonding: Py<PyAny>,
    /// When the unbonding wei can be withdrawn (unix seconds).
    unbond_at: u64,
}

#[pymethods]
impl NodeStake {
    fn __repr__(&self) -> String {
        format!(
            "<oai.NodeStake registered={} stake={} locked={}>",
            self.registered, self.stake, self.locked
        )
    }
}

fn status_name(s: JobStatus) -> &'static str {
    match s {
        JobStatus::Open => "open",
        JobStatus::Claimed => "claimed",
        JobStatus::Submitted => "submitted",
        JobStatus::Disputed => "disputed",
        JobStatus::Paid => "paid",
        JobStatus::Slashed => "slashed",
        JobStatus::Cancelled => "cancelled",
    }
}

/// A job as the market stores it; its result, once submitted, as the CIDs of the log's header
/// and last record.
#[pyclass(frozen, get_all, module = "oai")]
pub struct Job {
    /// Its id.
    id: JobId,
    /// Who posted it.
    requester: String,
    /// The node that claimed it, if any.
    node: Option<String>,
    /// `open`, `claimed`, `submitted`, `disputed`, `paid`, `slashed` or `cancelled`.
    status: String,
    /// Open: claim by; claimed: submit by; submitted: end of the challenge window.
    deadline: u64,
    /// The escrowed reward in wei.
    reward: Py<PyAny>,
    /// The job spec's CID.
    spec: String,
    /// The dataset's version root (hex).
    dataset_root: String,
    /// Training steps asked for.
    steps: u64,
    /// Seconds to claim.
    claim_window: u32,
    /// Seconds from claim to submission.
    max_duration: u32,
    /// Seconds to challenge.
    challenge_window: u32,
    /// Stake a node locks to claim (and a challenger's bond), in wei.
    required_stake: Py<PyAny>,
    /// The submitted log's header CID.
    header: Option<String>,
    /// The submitted log's last record CID.
    head: Option<String>,
}

impl Job {
    fn new(py: Python<'_>, id: JobId, j: &oai::chain::Job) -> PyResult<Self> {
        Ok(Job {
            id,
            requester: address(&j.requester),
            node: j.node.as_ref().map(address),
            status: status_name(j.status).into(),
            deadline: j.deadline,
            reward: int(py, j.reward)?.unbind(),
            spec: cid_of(&j.terms.spec).to_string(),
            dataset_root: j.terms.dataset_root.to_string(),
            steps: j.terms.steps,
            claim_window: j.terms.claim_window,
            max_duration: j.terms.max_duration,
            challenge_window: j.terms.challenge_window,
            required_stake: int(py, j.terms.required_stake)?.unbind(),
            header: j.result.map(|r| cid_of(&r.genesis).to_string()),
            head: j.result.map(|r| cid_of(&r.head).to_string()),
        })
    }
}

#[pymethods]
impl Job {
    fn __repr__(&self) -> String {
        format!(
            "<oai.Job {} {}: {} steps, reward {} wei>",
            self.id, self.status, self.steps, self.reward
        )
    }
}

/// A running dispute over the interval `lo..hi` of steps: both sides agree on the commitment
/// at `lo`; the challenger disputes the node's at `hi`.
#[pyclass(frozen, get_all, module = "oai")]
pub struct Dispute {
    /// Who challenged.
    challenger: String,
    /// The current mover's deadline (unix seconds).
    deadline: u64,
    /// Whose move: `node`, `challenger` or `adjudication`.
    turn: String,
    /// Lower end.
    lo: u64,
    /// Upper end.
    hi: u64,
    /// The step both sides post a commitment for this round.
    mid: u64,
    /// The challenger's bond in wei.
    bond: Py<PyAny>,
    /// The commitment at `lo` both agree on.
    agreed: String,
    /// The node's commitment at `hi`.
    node_hi: String,
    /// The node's commitment at `mid` this round (on the challenger's turn).
    node_mid: String,
}

impl Dispute {
    fn new(py: Python<'_>, d: &oai::chain::Dispute) -> PyResult<Self> {
        Ok(Dispute {
            challenger: address(&d.challenger),
            deadline: d.deadline,
            turn: match d.turn {
                Turn::Node => "node",
                Turn::Challenger => "challenger",
                Turn::Adjudication => "adjudication",
                Turn::Reveal => "reveal",
            }
            .into(),
            lo: d.lo,
            hi: d.hi,
            mid: d.mid(),
            bond: int(py, d.bond)?.unbind(),
            agreed: d.agreed.to_string(),
            node_hi: d.node_hi.to_string(),
            node_mid: d.node_mid.to_string(),
        })
    }
}

#[pymethods]
impl Dispute {
    fn __repr__(&self) -> String {
        format!(
            "<oai.Dispute steps {}..{}, {}'s move>",
            self.lo, self.hi, self.turn
        )
    }
}
