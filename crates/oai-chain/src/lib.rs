//! Stakes, escrowed training rewards, fraud-proof disputes and dataset DAOs on the EVM.
//!
//! The Solidity contracts live in `contracts/` and are committed compiled (`artifacts/`,
//! solc 0.8.30, checked in CI): `NodeRegistry` (stakes), `TrainingMarket` (crowdfunded jobs,
//! optimistic results, bisection disputes with timeouts), `IStepAdjudicator` with the m-of-n
//! `RefereeAdjudicator`, `DatasetDAO` (versions by vote, forks) and `TrainingDAO` (the
//! referee set, the market's parameters, the stake floor and node admission, by vote). [`Chain`] is the narrow
//! domain trait oai uses; [`Contracts`] implements it over any [`Evm`]: the embedded [`Revm`]
//! (default, in-process, time travel) or, with feature `alloy`, [`rpc::RpcEvm`] against a real
//! node such as anvil. Both run one conformance suite ([`conformance`]) with equal gas.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use oai_chain::bindings::TrainingMarket::TrainingMarketErrors;
//! use oai_chain::{Address, Chain, ChainConfig, Contracts, Evm, JobTerms, Revert, Revm, B256, U256};
//!
//! let eth = U256::from(10u64.pow(18));
//! let [deployer, node, requester] = [1u8, 2, 3].map(Address::repeat_byte);
//! let evm = Revm::new(); // in-process; `rpc::RpcEvm` talks to a real node
//! for a in [node, requester] {
//!     evm.set_balance(a, eth * U256::from(10)).await?;
//! }
//! let config = ChainConfig {
//!     min_stake: eth,
//!     unbond_delay: 7 * 86_400,
//!     move_timeout: 3_600,
//!     adjudication_timeout: 3 * 86_400,
//!     referees: vec![Address::repeat_byte(9)],
//!     threshold: 1,
//!     governance: None,
//! };
//! let (chain, _gas) = Contracts::deploy(evm, deployer, &config).await?;
//! let terms = JobTerms {
//!     dataset_root: B256::repeat_byte(0xd1),
//!     spec: B256::repeat_byte(0x5c),
//!     steps: 1_000,
//!     claim_window: 86_400,
//!     max_duration: 86_400,
//!     challenge_window: 86_400,
//!     required_stake: eth,
//! };
//! let (job, _) = chain.post_job(requester, &terms, eth).await?;
//! // claiming without stake reverts with the market's custom error, decoded
//! let err = chain.claim_job(node, job).await.unwrap_err();
//! assert!(matches!(err.revert(), Some(Revert::Market(TrainingMarketErrors::InsufficientStake(_)))));
//! chain.register(node, eth * U256::from(2)).await?;
//! let receipt = chain.claim_job(node, job).await?;
//! assert!(receipt.gas_used > 21_000);
//! # Ok::<(), oai_chain::Error>(())
//! # }).unwrap();
//! ```

pub mod bindings;
mod chain;
pub mod conformance;
mod contracts;
mod embedded;
mod error;
mod evm;
mod governance;
#[cfg(feature = "alloy")]
pub mod rpc;

pub use alloy::primitives::{Address, B256, U256};
pub use chain::{
    Chain, ChainConfig, DaoConfig, DaoState, DataRequest, Deployment, Dispute, Event, Job, JobId,
    JobResult, JobStatus, JobTerms, NodeStake, Receipt, Turn, TERMS_STEP,
};
pub use contracts::{Contracts, DeployGas};
pub use embedded::{Revm, CHAIN_ID, GENESIS_TIME, HARDFORK};
pub use error::{Error, Result, Revert};
pub use evm::{Evm, LogFilter, Outcome, Tx, TxReceipt};
pub use governance::{
    majority, strict_majority, Change, Governance, GovernanceConfig, MarketParameters, Proposal,
};
