//! The transport under the contracts: something that runs EVM transactions and calls.
//!
//! [`Evm`] is what a backend implements: the embedded [`crate::Revm`] and, with feature
//! `alloy`, [`crate::rpc::RpcEvm`] against a real node. [`crate::Contracts`] builds the
//! domain-level [`crate::Chain`] on any of them, so every backend runs the very same calldata.

use alloy::primitives::{Address, Bytes, Log, B256, U256};
use async_trait::async_trait;

use crate::Result;

/// A transaction: a call (`to: Some`) or a contract creation (`to: None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tx {
    /// The sender; the backend must be able to act for it.
    pub from: Address,
    /// The callee, or `None` to deploy `data` as creation code.
    pub to: Option<Address>,
    /// Calldata or creation code.
    pub data: Bytes,
    /// Wei sent along.
    pub value: U256,
}

/// A mined, successful transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxReceipt {
    /// Gas used (what the receipt reports, refunds applied).
    pub gas_used: u64,
    /// Wei the sender paid for gas (`gas_used` x effective gas price; 0 on the embedded EVM).
    pub fee: U256,
    /// Block the transaction was mined in.
    pub block: u64,
    /// Logs it emitted, in order.
    pub logs: Vec<Log>,
    /// The new contract's address, for a creation.
    pub created: Option<Address>,
}

/// What running a transaction or call came to. A reverted transaction is not mined: backends
/// find the revert before sending (the embedded EVM discards the state, a node's gas estimate
/// fails), so nonces and balances are untouched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<T> {
    /// It succeeded.
    Success(T),
    /// It reverted with this data.
    Revert(Bytes),
    /// The EVM halted (out of gas, invalid opcode, ...).
    Halt(String),
}

/// Which logs [`Evm::logs`] returns: in blocks `from_block..=to_block`, those emitted by one of
/// `addresses`, and those of any address whose first topic (the event signature) is one of
/// `topics` (events that contracts deployed by anyone emit, such as every dataset DAO's).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogFilter {
    /// First block searched.
    pub from_block: u64,
    /// Last block searched (inclusive).
    pub to_block: u64,
    /// Contracts whose every log is wanted.
    pub addresses: Vec<Address>,
    /// Event signatures wanted from any contract.
    pub topics: Vec<B256>,
}

impl LogFilter {
    /// Whether `log` is one the filter asks for (the block range aside).
    pub fn matches(&self, log: &Log) -> bool {
        self.addresses.contains(&log.address)
            || log
                .topics()
                .first()
                .is_some_and(|t| self.topics.contains(t))
    }
}

/// An EVM to run transactions on: the embedded revm or a node over JSON-RPC.
#[async_trait]
pub trait Evm: Send + Sync + std::fmt::Debug {
    /// Run a transaction and, when it succeeds, commit it in a new block.
    async fn send(&self, tx: Tx) -> Result<Outcome<TxReceipt>>;
    /// Run a read-only call against the latest state; nothing is committed.
    async fn call(&self, to: Address, data: Bytes) -> Result<Outcome<Bytes>>;
    /// An account's balance in wei.
    async fn balance(&self, who: Address) -> Result<U256>;
    /// The latest block's timestamp (seconds).
    async fn now(&self) -> Result<u64>;
    /// The latest block number.
    async fn block_number(&self) -> Result<u64>;
    /// Block `block`'s `prevrandao` (post-merge `mixHash`); a block not yet made is
    /// [`crate::Error::InvalidInput`].
    async fn randomness(&self, block: u64) -> Result<B256>;
    /// The logs `filter` asks for, in chain order, with their block numbers. A node is asked in
    /// pages of block ranges, never for an unbounded range.
    async fn logs(&self, filter: &LogFilter) -> Result<Vec<(u64, Log)>>;
    /// Mine one block `secs` after the latest (development chains only).
    async fn advance_time(&self, secs: u64) -> Result<()>;
    /// Set an account's balance (development chains only).
    async fn set_balance(&self, who: Address, wei: U256) -> Result<()>;
}

#[async_trait]
impl<E: Evm + ?Sized> Evm for std::sync::Arc<E> {
    async fn send(&self, tx: Tx) -> Result<Outcome<TxReceipt>> {
        (**self).send(tx).await
    }
    async fn call(&self, to: Address, data: Bytes) -> Result<Outcome<Bytes>> {
        (**self).call(to, data).await
    }
    async fn balance(&self, who: Address) -> Result<U256> {
        (**self).balance(who).await
    }
    async fn now(&self) -> Result<u64> {
        (**self).now().await
    }
    async fn block_number(&self) -> Result<u64> {
        (**self).block_number().await
    }
    async fn randomness(&self, block: u64) -> Result<B256> {
        (**self).randomness(block).await
    }
    async fn logs(&self, filter: &LogFilter) -> Result<Vec<(u64, Log)>> {
        (**self).logs(filter).await
    }
    async fn advance_time(&self, secs: u64) -> Result<()> {
        (**self).advance_time(secs).await
    }
    async fn set_balance(&self, who: Address, wei: U256) -> Result<()> {
        (**self).set_balance(who, wei).await
    }
}
