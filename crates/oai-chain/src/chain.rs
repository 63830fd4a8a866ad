//! The domain-level [`Chain`] trait and the values it speaks in.

use alloy::primitives::{Address, B256, U256};
use async_trait::async_trait;

use crate::bindings::{DatasetDAO, NodeRegistry, RefereeAdjudicator, TrainingDAO, TrainingMarket};
use crate::governance::{Change, Governance, GovernanceConfig, Proposal};
use crate::Result;

/// A job's id in the market (ids start at 1).
pub type JobId = u64;

/// What a requester asks for when posting a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobTerms {
    /// Version root of the dataset to train on (an oai-data version root).
    pub dataset_root: B256,
    /// Digest of the job spec (model and training config) block.
    pub spec: B256,
    /// Training steps the job asks for (> 0; the spec's `steps`): a result covers exactly these,
    /// and the bisection runs over them.
    pub steps: u64,
    /// Seconds nodes may claim the job once it is open; after that anyone may cancel it and
    /// funders take refunds.
    pub claim_window: u32,
    /// Seconds a node has from claiming to submitting.
    pub max_duration: u32,
    /// Seconds anyone may challenge a submission.
    pub challenge_window: u32,
    /// Stake the node locks when claiming; also the bond a challenger posts.
    pub required_stake: U256,
}

/// A node's published training result: the two ends of what the bisection disputes and the
/// Merkle root that binds everything in between. With oai-train, `genesis` is the SHA-256 of
/// the log header's bytes (the digest of its CID; the header itself is posted with the result,
/// [`Chain::submit_result`]) and c_i the SHA-256 of step record i-1's bytes (each record links
/// its predecessor), so `head` is the digest of `TrainingLog::head` and `root` is
/// `TrainingLog::root`. Everything else about the result (the final weights, the checkpoints)
/// follows from `head` by content address. The step count is the job's ([`JobTerms::steps`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobResult {
    /// c_0, the commitment to the state before the first step: the SHA-256 of the header.
    pub genesis: B256,
    /// c_steps, the commitment after the last step: the training log's chained head (the
    /// bisection game runs from `genesis` to here; non-zero, not `genesis`).
    pub head: B256,
    /// The Merkle root (`oai_core::merkle` rules) over c_1..c_steps, leaf i-1 = c_i: every
    /// commitment the node posts in a dispute is proven against it ([`Chain::bisect`]).
    pub root: B256,
}

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    /// Posted, waiting for a node (and for funders).
    Open,
    /// A node took it and must submit by the deadline.
    Claimed,
    /// A result is published; the challenge window runs until the deadline.
    Submitted,
    /// A challenger disputes the result.
    Disputed,
    /// The node was paid.
    Paid,
    /// The node was found cheating; funders take refunds.
    Slashed,
    /// The requester withdrew the job before a node took it; funders take refunds.
    Cancelled,
}

/// A job as the market stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Who posted it.
    pub requester: Address,
    /// The node that claimed it, if any.
    pub node: Option<Address>,
    /// Where it stands.
    pub status: JobStatus,
    /// Open: claim by; Claimed: submit by; Submitted: end of the challenge window (unix seconds).
    pub deadline: u64,
    /// The escrowed reward (all funders together).
    pub reward: U256,
    /// The posted terms.
    pub terms: JobTerms,
    /// The submitted result, once there is one.
    pub result: Option<JobResult>,
}

/// Whose move a dispute waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// The node posts its commitment at [`Dispute::mid`].
    Node,
    /// The challenger posts its commitment at [`Dispute::mid`].
    Challenger,
    /// The interval is one step; the adjudicator decides it.
    Adjudication,
    /// The interval is one step; the node posts the record behind its c_hi
    /// ([`Chain::reveal`]) before the adjudicator decides.
    Reveal,
}

/// A running dispute: both sides agree on c_lo; the challenger disputes the node's c_hi.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dispute {
    /// Who challenged.
    pub challenger: Address,
    /// The current mover's deadline (unix seconds).
    pub deadline: u64,
    /// Whose move it is.
    pub turn: Turn,
    /// Lower end of the interval.
    pub lo: u64,
    /// Upper end of the interval.
    pub hi: u64,
    /// The challenger's bond.
    pub bond: U256,
    /// c_lo, agreed by both.
    pub agreed: B256,
    /// The node's c_hi, which the challenger disputes.
    pub node_hi: B256,
    /// The node's posted c_mid in this round (meaningful on the challenger's turn).
    pub node_mid: B256,
}

/// A request that a job's node post one record of its submitted log on chain
/// ([`Chain::request_data`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataRequest {
    /// Who asked (and bonded).
    pub by: Address,
    /// When the node's answer is due (unix seconds).
    pub deadline: u64,
    /// The record asked for: record `index`, whose SHA-256 is c_(index+1).
    pub index: u64,
    /// The requester's bond, paid to the node when it answers.
    pub bond: U256,
}

/// The step of a terms case ([`Chain::challenge_terms`]): the dispute is over the whole
/// result, from its genesis to its head, not over one step (the market's `TERMS`).
pub const TERMS_STEP: u64 = u64::MAX;

impl Dispute {
    /// The step both sides post a commitment for this round.
    pub fn mid(&self) -> u64 {
        self.lo + (self.hi - self.lo) / 2
    }

    /// Whether the dispute is over the result's terms ([`Chain::challenge_terms`]): `agreed`
    /// is then the result's genesis and `node_hi` its head.
    pub fn is_terms(&self) -> bool {
        self.lo == TERMS_STEP
    }
}

/// A node's bond in the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeStake {
    /// Registered at all.
    pub registered: bool,
    /// Bonded wei, locked part included.
    pub stake: U256,
    /// Wei locked for claimed jobs.
    pub locked: U256,
    /// Wei leaving the bond.
    pub unbonding: U256,
    /// When the unbonding wei can be withdrawn.
    pub unbond_at: u64,
}

/// Parameters of a deployment of the registry, adjudicator and market.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainConfig {
    /// Minimum stake to register a node.
    pub min_stake: U256,
    /// Seconds between requesting an unbond and withdrawing it.
    pub unbond_delay: u64,
    /// Seconds each side has for a bisection move.
    pub move_timeout: u64,
    /// Seconds the adjudicator has before an undecided dispute is voided.
    pub adjudication_timeout: u64,
    /// The referee set of the m-of-n adjudicator.
    pub referees: Vec<Address>,
    /// Votes needed for a verdict (m): a strict majority of the referees (`2m > n`), so two
    /// disjoint groups can never decide a case both ways.
    pub threshold: u64,
    /// A `TrainingDAO` to govern the deployment (`None`: its rules never change).
    pub governance: Option<GovernanceConfig>,
}

/// Addresses of a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deployment {
    /// `NodeRegistry`.
    pub registry: Address,
    /// `RefereeAdjudicator` (an `IStepAdjudicator`).
    pub adjudicator: Address,
    /// `TrainingMarket`.
    pub market: Address,
    /// `TrainingDAO`, the governor of the three, if the deployment has one.
    pub dao: Option<Address>,
}

/// A new dataset DAO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaoConfig {
    /// Members and their voting weights (> 0).
    pub members: Vec<(Address, U256)>,
    /// The dataset's current version root.
    pub root: B256,
    /// Yes-weight needed, in basis points of the total weight (1..=10000).
    pub quorum_bps: u16,
    /// Seconds between reaching quorum and executing.
    pub delay: u64,
}

/// A dataset DAO's current version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DaoState {
    /// Current version root.
    pub root: B256,
    /// Number of executed proposals (forks keep their parent's count).
    pub version: u64,
    /// Sum of the members' weights.
    pub total_weight: U256,
    /// The DAO this one forked from, if any.
    pub parent: Option<Address>,
}

/// A decoded contract event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// From the registry.
    Registry(NodeRegistry::NodeRegistryEvents),
    /// From the market.
    Market(TrainingMarket::TrainingMarketEvents),
    /// From the referee adjudicator.
    Referee(RefereeAdjudicator::RefereeAdjudicatorEvents),
    /// From the training DAO.
    Governance(TrainingDAO::TrainingDAOEvents),
    /// From a dataset DAO.
    Dao {
        /// Which DAO.
        dao: Address,
        /// What happened.
        event: DatasetDAO::DatasetDAOEvents,
    },
}

/// A mined transaction, with its events decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// Gas used.
    pub gas_used: u64,
    /// Wei paid for gas.
    pub fee: U256,
    /// Block it was mined in.
    pub block: u64,
    /// Its events.
    pub events: Vec<Event>,
}

/// The chain as oai sees it: stakes, jobs, disputes, referees, dataset DAOs, events and time.
///
/// Every transaction names the account it is sent from; a backend must hold that account's
/// key (the embedded EVM acts for any address). A revert is [`crate::Error::Reverted`] with
/// the contract's custom error decoded, and changes nothing.
#[async_trait]
pub trait Chain: Send + Sync + std::fmt::Debug {
    /// The contracts this chain talks to.
    fn deployment(&self) -> Deployment;

    // ---- registry ----
    /// Register `node` with `stake` wei.
    async fn register(&self, node: Address, stake: U256) -> Result<Receipt>;
    /// Add `amount` to `node`'s stake.
    async fn top_up(&self, node: Address, amount: U256) -> Result<Receipt>;
    /// Start unbonding `amount` of `node`'s free stake.
    async fn request_unbond(&self, node: Address, amount: U256) -> Result<Receipt>;
    /// Pay out `node`'s unbonded stake after the delay.
    async fn withdraw_stake(&self, node: Address) -> Result<Receipt>;
    /// Pay out `node`'s unbonded stake after the delay to `to`.
    async fn withdraw_stake_to(&self, node: Address, to: Address) -> Result<Receipt>;
    /// `node`'s bond.
    async fn stake(&self, node: Address) -> Result<NodeStake>;

    // ---- market ----
    /// Post a job escrowing `reward`.
    async fn post_job(
        &self,
        requester: Address,
        terms: &JobTerms,
        reward: U256,
    ) -> Result<(JobId, Receipt)>;
    /// Add `amount` to a job's reward.
    async fn fund_job(&self, funder: Address, job: JobId, amount: U256) -> Result<Receipt>;
    /// Cancel an unclaimed job: the requester at any time, anyone after the claim window.
    async fn cancel_job(&self, requester: Address, job: JobId) -> Result<Receipt>;
    /// A registered node claims a job.
    async fn claim_job(&self, node: Address, job: JobId) -> Result<Receipt>;
    /// The node publishes its result with its log `header` (whose SHA-256 must be
    /// `result.genesis`; [`crate::Error::InvalidInput`] otherwise, before anything is sent).
    async fn submit_result(
        &self,
        node: Address,
        job: JobId,
        header: &[u8],
        result: &JobResult,
    ) -> Result<Receipt>;
    /// Reopen a job whose node missed its deadline (its locked stake goes to the requester).
    async fn expire_job(&self, caller: Address, job: JobId) -> Result<Receipt>;
    /// Challenge a result, bonding `bond` and claiming `claimed_final` as the true c_steps.
    async fn challenge(
        &self,
        challenger: Address,
        job: JobId,
        claimed_final: B256,
        bond: U256,
    ) -> Result<Receipt>;
    /// Challenge a result on its face, bonding `bond`: its log does not answer the job's terms
    /// (step count, spec, dataset, compute class). No bisection: the adjudicator decides the
    /// terms case ([`Dispute::is_terms`]) at once.
    async fn challenge_terms(&self, challenger: Address, job: JobId, bond: U256)
        -> Result<Receipt>;
    /// Post this round's commitment at the dispute's mid step.
    async fn bisect(&self, mover: Address, job: JobId, commitment: B256) -> Result<Receipt>;
    /// The node's last move of a step dispute ([`Turn::Reveal`]): post `record`, the block
    /// whose SHA-256 is the disputed c_hi, and prove c_lo and c_hi against the result's root:
    /// `agreed_proof` the Merkle siblings of leaf lo-1 (empty for lo = 0), `hi_proof` those of
    /// leaf lo (empty when hi is the last step) (`oai_core::MerkleProof::siblings`).
    async fn reveal(
        &self,
        node: Address,
        job: JobId,
        record: &[u8],
        agreed_proof: &[B256],
        hi_proof: &[B256],
    ) -> Result<Receipt>;
    /// Within the challenge window, ask `job`'s node to post record `index` of its log on
    /// chain, bonding `bond` (at least 1% of the required stake; the node's pay for posting).
    /// No dispute can open while the request runs; the node answers within the move timeout
    /// or is slashed ([`Chain::timeout_data`]).
    async fn request_data(
        &self,
        requester: Address,
        job: JobId,
        index: u64,
        bond: U256,
    ) -> Result<Receipt>;
    /// The node answers the running data request: `record` with `proof`, the Merkle siblings
    /// of its leaf under the result's root.
    async fn answer_data(
        &self,
        node: Address,
        job: JobId,
        record: &[u8],
        proof: &[B256],
    ) -> Result<Receipt>;
    /// Slash a node that left a data request unanswered past its deadline (anyone may call).
    async fn timeout_data(&self, caller: Address, job: JobId) -> Result<Receipt>;
    /// A job's running data request.
    async fn data_request(&self, job: JobId) -> Result<Option<DataRequest>>;
    /// A block of `job`'s result posted on chain (its header at submission, a record revealed
    /// in a dispute or posted for a data request) whose SHA-256 is `digest`; `None` when none
    /// was.
    async fn posted_block(&self, job: JobId, digest: B256) -> Result<Option<Vec<u8>>>;
    /// Apply the adjudicator's verdict.
    async fn resolve(&self, caller: Address, job: JobId) -> Result<Receipt>;
    /// End a dispute whose mover missed its deadline.
    async fn timeout(&self, caller: Address, job: JobId) -> Result<Receipt>;
    /// Pay the node after an unchallenged window.
    async fn finalize(&self, caller: Address, job: JobId) -> Result<Receipt>;
    /// Credit a funder's contribution back (cancelled or slashed jobs).
    async fn refund(&self, funder: Address, job: JobId) -> Result<Receipt>;
    /// Pay out everything the market owes `account`.
    async fn withdraw(&self, account: Address) -> Result<Receipt>;
    /// Pay out everything the market owes `account` to `to` (for accounts that cannot receive).
    async fn withdraw_to(&self, account: Address, to: Address) -> Result<Receipt>;
    /// A job.
    async fn job(&self, job: JobId) -> Result<Job>;
    /// A job's running dispute.
    async fn dispute(&self, job: JobId) -> Result<Option<Dispute>>;
    /// What the market owes `account`.
    async fn owed(&self, account: Address) -> Result<U256>;

    /// Wei the market has burned so far: the share of every forfeited stake or bond that pays
    /// nobody, so that losing a dispute on purpose to one's own other account always costs.
    async fn burned(&self) -> Result<U256>;
    /// The adjudicator case id of a one-step dispute.
    async fn case_id(&self, job: JobId, dispute: &Dispute) -> Result<B256>;

    // ---- referees ----
    /// A referee votes on a case.
    async fn referee_vote(
        &self,
        referee: Address,
        case: B256,
        node_correct: bool,
    ) -> Result<Receipt>;

    // ---- dataset DAOs ----
    /// Deploy a new dataset DAO.
    async fn create_dao(&self, deployer: Address, config: &DaoConfig)
        -> Result<(Address, Receipt)>;
    /// `member` of `parent` deploys a fork of it.
    async fn fork_dao(&self, member: Address, parent: Address) -> Result<(Address, Receipt)>;
    /// A member of the fork's parent joins the fork.
    async fn join_dao(&self, member: Address, dao: Address) -> Result<Receipt>;
    /// Propose `new_root` (described by the proposal block `proposal`) on top of the current root.
    async fn propose(
        &self,
        member: Address,
        dao: Address,
        new_root: B256,
        proposal: B256,
    ) -> Result<(u64, Receipt)>;
    /// Vote on a proposal.
    async fn vote(
        &self,
        member: Address,
        dao: Address,
        proposal: u64,
        support: bool,
    ) -> Result<Receipt>;
    /// Execute a passed proposal.
    async fn execute(&self, caller: Address, dao: Address, proposal: u64) -> Result<Receipt>;
    /// A DAO's current version.
    async fn dao(&self, dao: Address) -> Result<DaoState>;

    // ---- the training DAO ----
    /// `member` proposes `change` to the deployment's training DAO; returns its id.
    /// [`crate::Error::InvalidInput`] when the deployment has none.
    async fn propose_change(&self, member: Address, change: &Change) -> Result<(u64, Receipt)>;
    /// `member` votes on a proposed change.
    async fn vote_change(&self, member: Address, id: u64, support: bool) -> Result<Receipt>;
    /// Execute a passed change (anyone, once its timelock is over).
    async fn execute_change(&self, caller: Address, id: u64) -> Result<Receipt>;
    /// A proposed change and its vote.
    async fn proposal(&self, id: u64) -> Result<Proposal>;
    /// The rules in force: the referee set, the market's parameters, the stake floor, admission.
    async fn governance(&self) -> Result<Governance>;
    /// Whether `node` may register and claim jobs now (registration open, or it is admitted).
    async fn may_work(&self, node: Address) -> Result<bool>;

    // ---- events, balances and time ----
    /// Events of the deployment's contracts and of every dataset DAO (any other log that
    /// decodes as a `DatasetDAO` event), from block `from_block` on, with their block numbers.
    async fn events(&self, from_block: u64) -> Result<Vec<(u64, Event)>>;
    /// An account's balance in wei.
    async fn balance(&self, who: Address) -> Result<U256>;
    /// The latest block's timestamp.
    async fn now(&self) -> Result<u64>;
    /// The latest block's number.
    async fn block_number(&self) -> Result<u64>;
    /// The randomness of block `block` (its `prevrandao`, the post-merge `mixHash`): a value
    /// nobody knows before that block is made, for audits of results submitted earlier. A
    /// block not yet made is [`crate::Error::InvalidInput`].
    async fn randomness(&self, block: u64) -> Result<B256>;
    /// Move time forward: one block `secs` after the latest (development chains).
    async fn advance_time(&self, secs: u64) -> Result<()>;
}
