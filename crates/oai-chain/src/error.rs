//! The crate's error type and the decoding of contract reverts into typed custom errors.

use alloy::primitives::{Address, Bytes, U256};
use alloy::sol_types::{Panic, Revert as RevertReason, SolError, SolInterface};

use oai_core::ErrorKind;

use crate::bindings::{DatasetDAO, NodeRegistry, RefereeAdjudicator, TrainingDAO, TrainingMarket};

/// Errors of oai-chain.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A transaction or call reverted; the revert data decoded into a contract's custom error.
    #[error("{call} reverted: {revert}")]
    Reverted {
        /// The contract function that was called (or `deploy <Contract>`).
        call: String,
        /// The decoded reason.
        revert: Revert,
    },
    /// The EVM halted (out of gas, invalid opcode...) without revert data.
    #[error("{call} halted: {reason}")]
    Halted {
        /// The contract function that was called.
        call: String,
        /// What the EVM reported.
        reason: String,
    },
    /// The backend (EVM, node, transport) failed.
    #[error("chain backend: {0}")]
    Backend(String),
    /// The backend cannot act for this account (no signer for it).
    #[error("no signer for account {0}")]
    UnknownAccount(Address),
    /// A contract answered something that does not decode as its ABI says.
    #[error("cannot decode the answer of {call}: {reason}")]
    Decode {
        /// The contract function that was called.
        call: String,
        /// The decoder's message.
        reason: String,
    },
    /// Arguments that no contract call could accept (checked before sending).
    #[error("invalid input: {0}")]
    InvalidInput(String),
}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A decoded revert: the custom error of the contract that raised it, or Solidity's built-in
/// `Error(string)` / `Panic(uint256)`, or the raw bytes when nothing matches.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Revert {
    /// A `NodeRegistry` custom error.
    Registry(NodeRegistry::NodeRegistryErrors),
    /// A `TrainingMarket` custom error.
    Market(TrainingMarket::TrainingMarketErrors),
    /// A `RefereeAdjudicator` custom error.
    Referee(RefereeAdjudicator::RefereeAdjudicatorErrors),
    /// A `DatasetDAO` custom error.
    Dao(DatasetDAO::DatasetDAOErrors),
    /// A `TrainingDAO` custom error.
    Governance(TrainingDAO::TrainingDAOErrors),
    /// `revert("...")` / `require(.., "...")`.
    Message(String),
    /// A Solidity panic (arithmetic overflow 0x11, division by zero 0x12, ...).
    Panic(U256),
    /// Revert data no known ABI decodes (empty for a bare `revert()`).
    Raw(Bytes),
}

/// Which contract was called, to decode its errors first (a revert may bubble up from a
/// contract it called, so the others are tried after it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    Registry,
    Market,
    Referee,
    Dao,
    Governance,
    Other,
}

impl Revert {
    /// Decode revert data, trying `origin`'s errors first.
    pub(crate) fn decode(origin: Origin, data: &[u8]) -> Self {
        let order = [
            Origin::Registry,
            Origin::Market,
            Origin::Referee,
            Origin::Dao,
            Origin::Governance,
        ];
        let first = order.iter().filter(|o| **o == origin);
        for o in first.chain(order.iter().filter(|o| **o != origin)) {
            let decoded = match o {
                Origin::Registry => {
                    NodeRegistry::NodeRegistryErrors::abi_decode(data).map(Revert::Registry)
                }
                Origin::Market => {
                    TrainingMarket::TrainingMarketErrors::abi_decode(data).map(Revert::Market)
                }
                Origin::Referee => RefereeAdjudicator::RefereeAdjudicatorErrors::abi_decode(data)
                    .map(Revert::Referee),
                Origin::Dao => DatasetDAO::DatasetDAOErrors::abi_decode(data).map(Revert::Dao),
                Origin::Governance => {
                    TrainingDAO::TrainingDAOErrors::abi_decode(data).map(Revert::Governance)
                }
                Origin::Other => continue,
            };
            if let Ok(revert) = decoded {
                return revert;
            }
        }
        if let Ok(r) = RevertReason::abi_decode(data) {
            return Revert::Message(r.reason);
        }
        if let Ok(p) = Panic::abi_decode(data) {
            return Revert::Panic(p.code);
        }
        Revert::Raw(Bytes::copy_from_slice(data))
    }
}

impl std::fmt::Display for Revert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Revert::Registry(e) => write!(f, "NodeRegistry.{e:?}"),
            Revert::Market(e) => write!(f, "TrainingMarket.{e:?}"),
            Revert::Referee(e) => write!(f, "RefereeAdjudicator.{e:?}"),
            Revert::Dao(e) => write!(f, "DatasetDAO.{e:?}"),
            Revert::Governance(e) => write!(f, "TrainingDAO.{e:?}"),
            Revert::Message(m) => write!(f, "Error({m:?})"),
            Revert::Panic(code) => write!(f, "Panic({code:#x})"),
            Revert::Raw(b) if b.is_empty() => write!(f, "revert without data"),
            Revert::Raw(b) => write!(f, "unknown revert data {b}"),
        }
    }
}

impl Error {
    /// What kind of failure this is: a revert is [`ErrorKind::Reverted`], an account nobody
    /// can sign for and arguments no contract accepts [`ErrorKind::InvalidInput`], a node that
    /// fails [`ErrorKind::Unavailable`].
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Reverted { .. } => ErrorKind::Reverted,
            Error::UnknownAccount(_) | Error::InvalidInput(_) => ErrorKind::InvalidInput,
            Error::Backend(_) => ErrorKind::Unavailable,
            Error::Halted { .. } | Error::Decode { .. } => ErrorKind::Other,
        }
    }

    /// The decoded revert, when this is one.
    pub fn revert(&self) -> Option<&Revert> {
        match self {
            Error::Reverted { revert, .. } => Some(revert),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use alloy::sol_types::SolError;

    use super::*;

    #[test]
    fn reverts_decode_into_the_contract_errors_builtins_or_raw_bytes() {
        let stake = NodeRegistry::StakeTooLow {
            sent: U256::from(1),
            minimum: U256::from(2),
        }
        .abi_encode();
        let want = Revert::Registry(NodeRegistry::NodeRegistryErrors::StakeTooLow(
            NodeRegistry::StakeTooLow {
                sent: U256::from(1),
                minimum: U256::from(2),
            },
        ));
        // bubbled up through the market: still found, in the registry's errors
        assert_eq!(Revert::decode(Origin::Market, &stake), want);
        assert_eq!(Revert::decode(Origin::Other, &stake), want);
        assert_eq!(
            want.to_string(),
            "NodeRegistry.StakeTooLow(StakeTooLow { sent: 1, minimum: 2 })"
        );

        // errors several contracts declare decode as the called contract's
        let guard = TrainingMarket::Reentrancy {}.abi_encode();
        assert!(matches!(
            Revert::decode(Origin::Market, &guard),
            Revert::Market(_)
        ));
        assert!(matches!(
            Revert::decode(Origin::Registry, &guard),
            Revert::Registry(_)
        ));

        let msg = RevertReason {
            reason: "no".into(),
        }
        .abi_encode();
        assert_eq!(
            Revert::decode(Origin::Market, &msg),
            Revert::Message("no".into())
        );
        let panic = Panic {
            code: U256::from(0x11),
        }
        .abi_encode();
        assert_eq!(
            Revert::decode(Origin::Market, &panic),
            Revert::Panic(U256::from(0x11))
        );
        assert_eq!(Revert::decode(Origin::Dao, &[]), Revert::Raw(Bytes::new()));
        assert_eq!(
            Revert::decode(Origin::Dao, &[]).to_string(),
            "revert without data"
        );
        let junk = [0xde, 0xad, 0xbe, 0xef, 1];
        assert_eq!(
            Revert::decode(Origin::Dao, &junk),
            Revert::Raw(Bytes::copy_from_slice(&junk))
        );
    }
}
