//! Stakes, escrowed training rewards, fraud-proof disputes and dataset DAOs on the EVM.
//!
//! The Solidity contracts live in `contracts/` and are committed compiled (`artifacts/`,
//! solc 0.8.30, checked in CI): `NodeRegistry` (stakes), `TrainingMarket` (crowdfunded jobs,
//! optimistic results, bisection disputes with timeouts), `IStepAdjudicator` with the m-of-n
//! `RefereeAdjudicator`, and `DatasetDAO` (versions by vote, forks). [`Chain`] is the narrow
//! domain trait oai uses; [`Contracts`] implements it over any [`Evm`]: the embedded [`Revm`]
//! (default, in-process, time travel) or, with feature `alloy`, [`rpc::RpcEvm`] against a real
//! node such as anvil. Both run one conformance suite ([`conformance`]) with equal gas.

pub mod bindings;
mod chain;
pub mod conformance;
mod contracts;
mod embedded;
mod error;
mod evm;
#[cfg(feature = "alloy")]
pub mod rpc;

pub use alloy::primitives::{Address, B256, U256};
pub use chain::{
    Chain, ChainConfig, DaoConfig, DaoState, Deployment, Dispute, Event, Job, JobId, JobResult,
    JobStatus, JobTerms, NodeStake, Receipt, Turn,
};
pub use contracts::{Contracts, DeployGas};
pub use embedded::{Revm, CHAIN_ID, GENESIS_TIME, HARDFORK};
pub use error::{Error, Result, Revert};
pub use evm::{Evm, Outcome, Tx, TxReceipt};
