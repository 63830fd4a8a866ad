//! The training network's rules and the `TrainingDAO` that changes them by vote: the referee set
//! and its threshold, the market's parameters (burn, timeouts, challenge-window bounds), the
//! stake floor and node admission.

use alloy::primitives::{Address, U256};
use alloy::sol_types::SolValue;

use crate::bindings::TrainingDAO;
use crate::bindings::TrainingMarket;

/// Whether `threshold` votes are a strict majority of `referees` (`2m > n`, `m <= n`): two
/// disjoint groups of referees can never both reach it. The adjudicator refuses any other.
pub fn strict_majority(threshold: u64, referees: usize) -> bool {
    threshold <= referees as u64 && threshold.saturating_mul(2) > referees as u64
}

/// The smallest strict majority of `referees` (half of them, plus one): the default threshold.
pub fn majority(referees: usize) -> u64 {
    referees as u64 / 2 + 1
}

/// A `TrainingDAO` to deploy with the contracts ([`crate::ChainConfig::governance`]): it becomes
/// the governor of the registry, the adjudicator and the market.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GovernanceConfig {
    /// Members and their voting weights (> 0).
    pub members: Vec<(Address, U256)>,
    /// Yes-weight a change needs, in basis points of the total weight (1..=10000); it must
    /// also be above the no-weight.
    pub quorum_bps: u16,
    /// Seconds between reaching the quorum and executing (the timelock).
    pub delay: u64,
}

/// The market's rules a DAO may change (`TrainingMarket.Parameters`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarketParameters {
    /// Share of a lost dispute's forfeited deposit that is burned, in basis points (1..=9999).
    pub burn_bps: u16,
    /// Seconds each side has for a move (60 s to 30 days).
    pub move_timeout: u64,
    /// Seconds the adjudicator has before an undecided case is voided (60 s to 90 days).
    pub adjudication_timeout: u64,
    /// Shortest challenge window a job may ask for, in seconds (>= 1).
    pub min_challenge_window: u32,
    /// Longest challenge window a job may ask for, in seconds (>= the shortest).
    pub max_challenge_window: u32,
}

impl MarketParameters {
    pub(crate) fn to_sol(self) -> TrainingMarket::Parameters {
        TrainingMarket::Parameters {
            burnBps: self.burn_bps,
            moveTimeout: self.move_timeout,
            adjudicationTimeout: self.adjudication_timeout,
            minChallengeWindow: self.min_challenge_window,
            maxChallengeWindow: self.max_challenge_window,
        }
    }

    pub(crate) fn from_sol(p: &TrainingMarket::Parameters) -> Self {
        MarketParameters {
            burn_bps: p.burnBps,
            move_timeout: p.moveTimeout,
            adjudication_timeout: p.adjudicationTimeout,
            min_challenge_window: p.minChallengeWindow,
            max_challenge_window: p.maxChallengeWindow,
        }
    }
}

/// A change of the rules, proposed to and voted by the `TrainingDAO`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A new referee set and threshold (a strict majority of it); votes cast under the old set
    /// stop counting.
    Referees {
        /// The new set, in order (at most 64, no repeats).
        referees: Vec<Address>,
        /// Votes a verdict needs.
        threshold: u64,
    },
    /// New market parameters.
    Parameters(MarketParameters),
    /// A new stake floor (> 0): the least a node registers with and a job may require.
    MinStake(U256),
    /// Registration open to every node (`true`) or only to admitted ones.
    Admission {
        /// Open to all.
        open: bool,
    },
    /// Admit a node, or withdraw its admission (it then claims no new job).
    Admit {
        /// The node.
        node: Address,
        /// Admitted or not.
        admitted: bool,
    },
}

impl Change {
    /// The contract's `Kind` and the ABI encoding of the arguments.
    pub(crate) fn encode(&self) -> (u8, Vec<u8>) {
        match self {
            Change::Referees {
                referees,
                threshold,
            } => (
                0,
                (referees.clone(), U256::from(*threshold)).abi_encode_params(),
            ),
            Change::Parameters(p) => (1, p.to_sol().abi_encode()),
            Change::MinStake(floor) => (2, floor.abi_encode()),
            Change::Admission { open } => (3, open.abi_encode()),
            Change::Admit { node, admitted } => (4, (*node, *admitted).abi_encode_params()),
        }
    }

    /// The change a `TrainingDAO` proposal holds; `None` when it does not decode.
    pub(crate) fn decode(change: &TrainingDAO::Change) -> Option<Self> {
        let a = &change.args[..];
        Some(match change.kind {
            0 => {
                let (referees, threshold) = <(Vec<Address>, U256)>::abi_decode_params(a).ok()?;
                Change::Referees {
                    referees,
                    threshold: threshold.try_into().ok()?,
                }
            }
            1 => Change::Parameters(MarketParameters::from_sol(
                &TrainingMarket::Parameters::abi_decode(a).ok()?,
            )),
            2 => Change::MinStake(U256::abi_decode(a).ok()?),
            3 => Change::Admission {
                open: bool::abi_decode(a).ok()?,
            },
            4 => {
                let (node, admitted) = <(Address, bool)>::abi_decode_params(a).ok()?;
                Change::Admit { node, admitted }
            }
            _ => return None,
        })
    }
}

/// The rules in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Governance {
    /// The `TrainingDAO` that may change them (`None`: they never change).
    pub dao: Option<Address>,
    /// The referee set, in order.
    pub referees: Vec<Address>,
    /// Votes a verdict needs.
    pub threshold: u64,
    /// The referee set's version (one more at each change).
    pub epoch: u32,
    /// The market's parameters.
    pub parameters: MarketParameters,
    /// The stake floor.
    pub min_stake: U256,
    /// Whether every node may register and claim (else only admitted ones).
    pub open: bool,
}

/// A change proposed to the `TrainingDAO`, and where its vote stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// The change.
    pub change: Change,
    /// Who proposed it.
    pub proposer: Address,
    /// Weight voted for it.
    pub yes: U256,
    /// Weight voted against it.
    pub no: U256,
    /// When it may execute (the quorum's time plus the delay), once it reached the quorum.
    pub ready_at: Option<u64>,
    /// Whether it was executed.
    pub executed: bool,
}
