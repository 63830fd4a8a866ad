//! The suite every [`Evm`] backend must pass: [`run`] deploys fresh contracts for each
//! scenario (registry; a paid job; expired, cancelled and never-taken jobs; contract funders
//! that re-enter the market or reject ether; the dispute endings: node cheats, challenger
//! lies, either side times out, the adjudicator stays silent; dataset DAOs and forks; a
//! dispute over a 1,000,000-step log), checks every revert's decoded custom error and that
//! each scenario's balances (plus gas fees paid) sum to what went in. It panics on a failed
//! check, like a test, and returns the gas of every transaction so backends can be compared.

mod adversary;
mod attacks;
mod claims;
mod dao;
mod dispute;
mod funders;
mod governance;
mod jobs;

use std::sync::Arc;

use alloy::primitives::{keccak256, Address, B256, U256};
use alloy::sol_types::SolCall;

use crate::error::Origin;
use crate::{
    Chain, ChainConfig, Contracts, Error, Evm, GovernanceConfig, JobTerms, Outcome, Receipt,
    Result, Revert, Tx, TxReceipt,
};

pub use adversary::{adversarial_game, GameOutcome, GamePlan};
pub use claims::Claims;
pub use dispute::{measure_dispute, measure_terms_dispute, DisputeGas};

/// Accounts the suite needs; [`run`] gives each [`FUNDING`] wei.
pub const ACCOUNTS: usize = 12;
/// Wei each account starts a run with.
pub const FUNDING: u128 = 1_000 * ETH;
/// One ether in wei.
pub const ETH: u128 = 1_000_000_000_000_000_000;

/// Gas of each transaction of a run, labelled, in order.
pub type GasReport = Vec<(String, u64)>;

/// The accounts' roles.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Roles {
    pub deployer: Address,
    pub node: Address,
    pub node2: Address,
    pub requester: Address,
    pub funder: Address,
    pub challenger: Address,
    pub referees: [Address; 3],
    pub members: [Address; 3],
}

impl Roles {
    fn new(a: &[Address]) -> Self {
        assert!(a.len() >= ACCOUNTS, "the suite needs {ACCOUNTS} accounts");
        Roles {
            deployer: a[0],
            node: a[1],
            node2: a[2],
            requester: a[3],
            funder: a[4],
            challenger: a[5],
            referees: [a[6], a[7], a[8]],
            members: [a[9], a[10], a[11]],
        }
    }
}

/// The deployment parameters the suite uses: min stake 1 ETH, unbond delay 7 days, move
/// timeout 1 hour, adjudication timeout 3 days, referees 2-of-3.
pub fn config(referees: &[Address]) -> ChainConfig {
    ChainConfig {
        min_stake: U256::from(ETH),
        unbond_delay: 7 * DAY,
        move_timeout: HOUR,
        adjudication_timeout: 3 * DAY,
        referees: referees.to_vec(),
        threshold: 2,
        governance: None,
    }
}

/// [`config`] with a `TrainingDAO` of `members` (weights 1, 2 and 3 for three members: a
/// quorum of 50% of the weight, a day's timelock), as every scenario of the suite deploys.
pub fn governed_config(referees: &[Address], members: &[Address]) -> ChainConfig {
    ChainConfig {
        governance: Some(GovernanceConfig {
            members: members
                .iter()
                .zip(1u64..)
                .map(|(m, w)| (*m, U256::from(w)))
                .collect(),
            quorum_bps: 5000,
            delay: DAY,
        }),
        ..config(referees)
    }
}

pub(crate) const HOUR: u64 = 3600;
pub(crate) const DAY: u64 = 24 * HOUR;

/// Terms of the suite's jobs: 100 steps, 2 days to claim, 1 day to submit, 1 day to challenge,
/// 2 ETH stake.
pub(crate) fn terms(tag: &str) -> JobTerms {
    JobTerms {
        dataset_root: keccak256(format!("dataset {tag}")),
        spec: keccak256(format!("spec {tag}")),
        steps: 100,
        claim_window: 2 * DAY as u32,
        max_duration: DAY as u32,
        challenge_window: DAY as u32,
        required_stake: U256::from(2 * ETH),
    }
}

/// c_i of an honest run: what re-executing the log gives.
pub fn honest(step: u64) -> B256 {
    claims::sha(&claims::honest_block(step))
}

/// c_i of a run that went wrong at some step.
pub fn forged(step: u64) -> B256 {
    claims::sha(&claims::forged_block(step))
}

/// Wei as `U256`.
pub(crate) fn eth(n: u128) -> U256 {
    U256::from(n * ETH)
}

/// One scenario on a fresh deployment: records each transaction's gas and fee.
pub(crate) struct Scenario<E> {
    pub chain: Contracts<Arc<E>>,
    pub r: Roles,
    name: &'static str,
    pub gas: GasReport,
    fees: U256,
    watched: Vec<Address>,
    start: U256,
}

impl<E: Evm> Scenario<E> {
    async fn new(evm: Arc<E>, r: Roles, name: &'static str, gas: &mut GasReport) -> Result<Self> {
        let config = governed_config(&r.referees, &r.members);
        let (chain, deploy) = Contracts::deploy(evm, r.deployer, &config).await?;
        gas.extend(deploy.into_iter().map(|(l, g)| (format!("{name}: {l}"), g)));
        let d = chain.deployment();
        let watched = vec![
            r.node,
            r.node2,
            r.requester,
            r.funder,
            r.challenger,
            r.referees[0],
            r.referees[1],
            r.referees[2],
            r.members[0],
            r.members[1],
            r.members[2],
            d.registry,
            d.market,
            d.adjudicator,
        ];
        let watched = watched.into_iter().chain(d.dao).collect();
        let mut s = Scenario {
            chain,
            r,
            name,
            gas: Vec::new(),
            fees: U256::ZERO,
            watched,
            start: U256::ZERO,
        };
        s.start = s.total().await?;
        Ok(s)
    }

    /// Also count `who`'s balance in the conservation check (a contract the scenario deploys:
    /// call right after deploying it, before it holds anything).
    pub fn watch(&mut self, who: Address) {
        self.watched.push(who);
    }

    async fn total(&self) -> Result<U256> {
        let mut sum = U256::ZERO;
        for a in &self.watched {
            sum += self.chain.balance(*a).await?;
        }
        Ok(sum)
    }

    fn record(&mut self, label: &str, gas_used: u64, fee: U256) {
        self.fees += fee;
        self.gas.push((format!("{}: {label}", self.name), gas_used));
    }

    /// A transaction that must succeed: record its gas and fee.
    pub fn ok(&mut self, label: &str, r: Result<Receipt>) -> Receipt {
        let r = r.unwrap_or_else(|e| panic!("[{}] {label}: {e}", self.name));
        self.record(label, r.gas_used, r.fee);
        r
    }

    /// Like [`Scenario::ok`] for calls that also return a value.
    pub fn ok2<T>(&mut self, label: &str, r: Result<(T, Receipt)>) -> T {
        let (v, receipt) = r.unwrap_or_else(|e| panic!("[{}] {label}: {e}", self.name));
        self.ok(label, Ok(receipt));
        v
    }

    /// A transaction that must revert with the custom error `want` accepts.
    pub fn reverts<T: std::fmt::Debug>(
        &self,
        label: &str,
        r: Result<T>,
        want: impl Fn(&Revert) -> bool,
    ) {
        match r {
            Err(Error::Reverted { revert, .. }) if want(&revert) => {}
            other => panic!("[{}] {label}: expected a revert, got {other:?}", self.name),
        }
    }

    /// Balances of every account and contract involved (the market's includes what it
    /// burned), plus gas fees paid, equal what they held when the scenario started: no wei
    /// created, none lost.
    pub async fn check_conservation(&self, when: &str) -> Result<()> {
        let now = self.total().await?;
        assert_eq!(
            now + self.fees,
            self.start,
            "[{}] wei not conserved {when}",
            self.name
        );
        Ok(())
    }

    /// After everyone has withdrawn, the market holds nothing but what it burned.
    pub async fn check_market_empty(&self) -> Result<()> {
        let held = self.chain.balance(self.chain.deployment().market).await?;
        let burned = self.chain.burned().await?;
        assert_eq!(held, burned, "[{}] wei stuck in the market", self.name);
        Ok(())
    }

    /// A raw transaction that must succeed (for contracts outside the deployment).
    pub async fn send_raw(&mut self, label: &str, tx: Tx) -> Result<TxReceipt> {
        match self.chain.evm().send(tx).await? {
            Outcome::Success(rc) => {
                self.record(label, rc.gas_used, rc.fee);
                Ok(rc)
            }
            other => panic!("[{}] {label}: {other:?}", self.name),
        }
    }

    /// A raw transaction that must revert with the custom error `want` accepts (decoded as
    /// `origin`'s first).
    pub async fn raw_reverts(
        &self,
        label: &str,
        origin: Origin,
        tx: Tx,
        want: impl Fn(&Revert) -> bool,
    ) -> Result<()> {
        match self.chain.evm().send(tx).await? {
            Outcome::Revert(data) if want(&Revert::decode(origin, &data)) => Ok(()),
            other => panic!("[{}] {label}: expected a revert, got {other:?}", self.name),
        }
    }

    /// A view call to a contract outside the deployment.
    pub async fn call_raw<C: SolCall>(&self, to: Address, call: C) -> Result<C::Return> {
        match self.chain.evm().call(to, call.abi_encode().into()).await? {
            Outcome::Success(out) => {
                Ok(C::abi_decode_returns(&out).expect("the ABI's return type"))
            }
            other => panic!("[{}] {}: {other:?}", self.name, C::SIGNATURE),
        }
    }

    /// Withdraw everything the market owes each of `who`.
    pub async fn withdraw_all(&mut self, who: &[Address]) -> Result<()> {
        for a in who {
            if self.chain.owed(*a).await? > U256::ZERO {
                let r = self.chain.withdraw(*a).await;
                self.ok("TrainingMarket.withdraw", r);
            }
        }
        Ok(())
    }
}

/// Give each of `accounts` [`FUNDING`] wei.
pub(crate) async fn fund<E: Evm>(evm: &E, accounts: &[Address]) -> Result<()> {
    for a in accounts {
        evm.set_balance(*a, U256::from(FUNDING)).await?;
    }
    Ok(())
}

/// Run every scenario on `evm` with `accounts` (at least [`ACCOUNTS`]; each is given
/// [`FUNDING`] wei first). Returns the gas of every transaction, in order.
pub async fn run<E: Evm + 'static>(evm: Arc<E>, accounts: &[Address]) -> Result<GasReport> {
    let r = Roles::new(accounts);
    fund(evm.as_ref(), accounts).await?;
    let mut gas = GasReport::new();
    macro_rules! scenario {
        ($name:literal, $f:path) => {{
            let mut s = Scenario::new(evm.clone(), r, $name, &mut gas).await?;
            $f(&mut s).await?;
            gas.append(&mut s.gas);
        }};
    }
    scenario!("registry", jobs::registry);
    scenario!("paid job", jobs::paid_job);
    scenario!("expired and cancelled jobs", jobs::expired_and_cancelled);
    scenario!("job never taken", jobs::never_taken);
    scenario!("re-entrancy", funders::reentrancy);
    scenario!("funder that rejects ether", funders::ether_rejecting_funder);
    scenario!("dispute: node cheats", dispute::node_cheats);
    scenario!("dispute: challenger lies", dispute::challenger_lies);
    scenario!("dispute: node times out", dispute::node_times_out);
    scenario!(
        "dispute: challenger times out",
        dispute::challenger_times_out
    );
    scenario!("dispute: adjudicator silent", dispute::adjudicator_silent);
    scenario!("dispute: terms fault", dispute::terms_fault);
    scenario!(
        "dispute: terms challenge of a good result",
        dispute::terms_challenge_of_a_good_result
    );
    scenario!("data requests", dispute::data_requests);
    scenario!(
        "attack: a node withholds a record",
        dispute::a_node_withholds_a_record
    );
    scenario!("dataset DAO", dao::votes_and_forks);
    scenario!(
        "attack: the loser times out a decided case",
        attacks::the_loser_times_out_a_decided_case
    );
    scenario!(
        "attack: a node challenges its own result",
        attacks::a_node_challenges_its_own_result
    );
    scenario!(
        "attack: a minority passes a DAO proposal",
        attacks::a_minority_passes_a_dao_proposal
    );
    scenario!(
        "attack: a minority of referees decides",
        attacks::a_minority_of_referees_decides
    );
    scenario!(
        "attack: a removed referee's vote decides",
        governance::a_removed_referees_vote_decides
    );
    scenario!(
        "training DAO: parameters, floor and admission",
        governance::parameters_floor_and_admission
    );
    scenario!(
        "attack: the deployer takes the rules later",
        governance::the_deployer_takes_the_rules_later
    );
    let mut s = Scenario::new(evm.clone(), r, "dispute over 1,000,000 steps", &mut gas).await?;
    dispute::full_dispute(&mut s, 1_000_000, 777_777).await?;
    gas.append(&mut s.gas);
    block_randomness(evm.as_ref()).await?;
    Ok(gas)
}

/// Made blocks have randomness, different from block to block and never zero; a block not yet
/// made is refused (an audit must not run on randomness that is not there yet).
async fn block_randomness<E: Evm>(evm: &E) -> Result<()> {
    let latest = evm.block_number().await?;
    let (a, b) = (
        evm.randomness(latest - 1).await?,
        evm.randomness(latest).await?,
    );
    assert!(
        a != b && a != B256::ZERO && b != B256::ZERO,
        "randomness of blocks {} and {latest}: {a} {b}",
        latest - 1
    );
    assert!(matches!(
        evm.randomness(latest + 1).await,
        Err(crate::Error::InvalidInput(_))
    ));
    Ok(())
}
