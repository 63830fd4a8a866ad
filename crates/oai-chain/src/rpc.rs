//! The JSON-RPC backend (feature `alloy`): [`RpcEvm`] drives any Ethereum node through alloy,
//! signing locally with the keys it is given; [`Anvil`] starts a local anvil node.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alloy::eips::Encodable2718;
use alloy::network::{EthereumWallet, NetworkTransactionBuilder, TransactionBuilder};
use alloy::primitives::{keccak256, Address, Bytes, Log, TxHash, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::{BlockNumberOrTag, Filter, TransactionReceipt, TransactionRequest};
use alloy::transports::{RpcError, TransportError};
use async_trait::async_trait;

pub use alloy::signers::local::PrivateKeySigner;

use crate::evm::{Evm, LogFilter, Outcome, Tx, TxReceipt};
use crate::{Error, Result};

/// An Ethereum node over JSON-RPC. Transactions are signed locally with the given keys (one
/// per account the caller acts for); reverts are found by the gas estimate, so a reverting
/// transaction is never broadcast. A sent transaction is watched by polling its receipt; if
/// the node forgets it (a restart that drops the pending pool), the same signed bytes are sent
/// again, so a node that comes back loses nothing the caller sent.
#[derive(Debug, Clone)]
pub struct RpcEvm {
    provider: DynProvider,
    wallet: EthereumWallet,
    chain_id: u64,
    accounts: BTreeSet<Address>,
    log_page: u64,
    receipt_timeout: Duration,
}

/// How long [`Evm::send`] waits for a transaction's receipt unless
/// [`RpcEvm::with_receipt_timeout`] says otherwise. While it waits, a node that is down is
/// asked again and a node that forgot the transaction gets it again; a node that is still down
/// (or refuses the transaction) at the end gives a [`Error::Backend`] instead of a wait forever,
/// and the caller reads the chain again and decides (nonces come from the node every time, so
/// a lost transaction leaves no gap).
pub const RECEIPT_TIMEOUT: Duration = Duration::from_secs(120);

/// What one account's transactions cost in a range of blocks ([`RpcEvm::spent`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Spent {
    /// Transactions sent.
    pub txs: u64,
    /// Gas they used.
    pub gas: u64,
    /// Fees paid: gas used times the effective gas price, summed (wei).
    pub fee: U256,
}

/// Blocks per `eth_getLogs` request unless [`RpcEvm::with_log_page`] says otherwise (public
/// providers cap a request at a few thousand blocks or results).
pub const LOG_PAGE_BLOCKS: u64 = 2_000;

fn backend(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Backend(format!("{what}: {e}"))
}

/// The revert data in a node's error answer (`None`: the error is no revert).
fn revert_data(e: &TransportError) -> Option<Bytes> {
    let payload = e.as_error_resp()?;
    payload
        .as_revert_data()
        .or_else(|| payload.message.contains("revert").then(Bytes::new))
}

impl RpcEvm {
    /// Connect to the node at `url` (e.g. `http://127.0.0.1:8545`), acting for `signers`.
    pub async fn connect(url: &str, signers: Vec<PrivateKeySigner>) -> Result<Self> {
        let mut iter = signers.into_iter();
        let first = iter
            .next()
            .ok_or_else(|| Error::InvalidInput("no signer given".into()))?;
        let mut accounts = BTreeSet::from([first.address()]);
        let mut wallet = EthereumWallet::from(first);
        for s in iter {
            accounts.insert(s.address());
            wallet.register_signer(s);
        }
        let url = url
            .parse()
            .map_err(|e| Error::InvalidInput(format!("node url {url:?}: {e}")))?;
        let provider = ProviderBuilder::new().connect_http(url).erased();
        let chain_id = provider
            .get_chain_id()
            .await
            .map_err(|e| backend("eth_chainId", e))?;
        Ok(RpcEvm {
            provider,
            wallet,
            chain_id,
            accounts,
            log_page: LOG_PAGE_BLOCKS,
            receipt_timeout: RECEIPT_TIMEOUT,
        })
    }

    /// Wait at most `timeout` for a sent transaction's receipt (default [`RECEIPT_TIMEOUT`]).
    pub fn with_receipt_timeout(mut self, timeout: Duration) -> Self {
        self.receipt_timeout = timeout;
        self
    }

    /// What the transactions `from` sent in blocks `from_block..=to_block` cost, by reading
    /// every block's receipts (`eth_getBlockReceipts`): one request a block, so meant for
    /// development chains and short ranges, not for scanning a public chain's history.
    pub async fn spent(&self, from: Address, from_block: u64, to_block: u64) -> Result<Spent> {
        let mut spent = Spent::default();
        for block in from_block..=to_block {
            let receipts = self
                .provider
                .get_block_receipts(BlockNumberOrTag::Number(block).into())
                .await
                .map_err(|e| backend(&format!("eth_getBlockReceipts for block {block}"), e))?
                .ok_or_else(|| Error::InvalidInput(format!("block {block} is not made yet")))?;
            for r in receipts.iter().filter(|r| r.from == from) {
                spent.txs += 1;
                spent.gas += r.gas_used;
                spent.fee += U256::from(r.gas_used) * U256::from(r.effective_gas_price);
            }
        }
        Ok(spent)
    }

    /// Ask `eth_getLogs` for at most `blocks` blocks at a time (at least 1; default
    /// [`LOG_PAGE_BLOCKS`]).
    pub fn with_log_page(mut self, blocks: u64) -> Self {
        self.log_page = blocks.max(1);
        self
    }

    /// The alloy provider, for anything beyond the [`Evm`] surface.
    pub fn provider(&self) -> &DynProvider {
        &self.provider
    }

    /// Poll for the receipt of the transaction `hash` (signed bytes `raw`) until
    /// [`RpcEvm::with_receipt_timeout`] runs out. Errors reaching the node are retried; a node
    /// that knows neither the receipt nor the transaction lost it (a restart) and is sent `raw`
    /// again; a node that refuses `raw` then is answered at once with its reason.
    async fn receipt(&self, hash: TxHash, raw: &[u8]) -> Result<TransactionReceipt> {
        let deadline = Instant::now() + self.receipt_timeout;
        let poll = self.provider.client().poll_interval();
        loop {
            let last_error = match self.provider.get_transaction_receipt(hash).await {
                Ok(Some(r)) => return Ok(r),
                Ok(None) => match self.provider.get_transaction_by_hash(hash).await {
                    Ok(Some(_)) => None,
                    Ok(None) => match self.provider.send_raw_transaction(raw).await {
                        Ok(_) => None,
                        Err(RpcError::ErrorResp(e)) => {
                            return Err(Error::Backend(format!(
                                "transaction {hash} was dropped by the node, which refused it \
                                 when sent again: {e}"
                            )))
                        }
                        Err(e) => Some(format!("eth_sendRawTransaction: {e}")),
                    },
                    Err(e) => Some(format!("eth_getTransactionByHash: {e}")),
                },
                Err(e) => Some(format!("eth_getTransactionReceipt: {e}")),
            };
            let now = Instant::now();
            if now >= deadline {
                let why = last_error
                    .map(|e| format!(" (last: {e})"))
                    .unwrap_or_default();
                return Err(Error::Backend(format!(
                    "transaction receipt: transaction {hash} was not confirmed within {} s{why}",
                    self.receipt_timeout.as_secs_f64()
                )));
            }
            tokio::time::sleep(poll.min(deadline - now)).await;
        }
    }

    async fn dev_call(&self, method: &'static str, params: serde_json::Value) -> Result<()> {
        self.provider
            .raw_request::<_, serde_json::Value>(method.into(), params)
            .await
            .map_err(|e| backend(method, e))?;
        Ok(())
    }
}

#[async_trait]
impl Evm for RpcEvm {
    async fn send(&self, tx: Tx) -> Result<Outcome<TxReceipt>> {
        if !self.accounts.contains(&tx.from) {
            return Err(Error::UnknownAccount(tx.from));
        }
        let mut req = TransactionRequest::default()
            .with_from(tx.from)
            .with_input(tx.data)
            .with_value(tx.value);
        match tx.to {
            Some(to) => req.set_to(to),
            None => req.set_create(),
        }
        let gas = match self.provider.estimate_gas(req.clone()).await {
            Ok(gas) => gas,
            Err(e) => {
                return match revert_data(&e) {
                    Some(data) => Ok(Outcome::Revert(data)),
                    None => Err(backend("eth_estimateGas", e)),
                }
            }
        };
        let nonce = self
            .provider
            .get_transaction_count(tx.from)
            .pending()
            .await
            .map_err(|e| backend("eth_getTransactionCount", e))?;
        let fees = self
            .provider
            .estimate_eip1559_fees()
            .await
            .map_err(|e| backend("eth_feeHistory", e))?;
        let signed = req
            .with_gas_limit(gas)
            .with_nonce(nonce)
            .with_chain_id(self.chain_id)
            .with_max_fee_per_gas(fees.max_fee_per_gas)
            .with_max_priority_fee_per_gas(fees.max_priority_fee_per_gas)
            .build(&self.wallet)
            .await
            .map_err(|e| backend("signing the transaction", e))?;
        let raw = signed.encoded_2718();
        // The returned watcher is not used: `receipt` polls, and sends again if need be.
        let _watcher = self
            .provider
            .send_raw_transaction(&raw)
            .await
            .map_err(|e| backend("eth_sendRawTransaction", e))?;
        let r = self.receipt(*signed.tx_hash(), &raw).await?;
        if !r.status() {
            return Ok(Outcome::Halt(format!(
                "transaction {} failed on chain",
                r.transaction_hash
            )));
        }
        Ok(Outcome::Success(TxReceipt {
            gas_used: r.gas_used,
            fee: U256::from(r.gas_used) * U256::from(r.effective_gas_price),
            block: r.block_number.unwrap_or_default(),
            logs: r.inner.logs().iter().map(|l| l.inner.clone()).collect(),
            created: r.contract_address,
        }))
    }

    async fn call(&self, to: Address, data: Bytes) -> Result<Outcome<Bytes>> {
        let req = TransactionRequest::default().with_to(to).with_input(data);
        match self.provider.call(req).await {
            Ok(out) => Ok(Outcome::Success(out)),
            Err(e) => match revert_data(&e) {
                Some(data) => Ok(Outcome::Revert(data)),
                None => Err(backend("eth_call", e)),
            },
        }
    }

    async fn balance(&self, who: Address) -> Result<U256> {
        self.provider
            .get_balance(who)
            .await
            .map_err(|e| backend("eth_getBalance", e))
    }

    async fn now(&self) -> Result<u64> {
        let block = self
            .provider
            .get_block_by_number(BlockNumberOrTag::Latest)
            .await
            .map_err(|e| backend("eth_getBlockByNumber", e))?
            .ok_or_else(|| Error::Backend("the node has no latest block".into()))?;
        Ok(block.header.timestamp)
    }

    async fn block_number(&self) -> Result<u64> {
        self.provider
            .get_block_number()
            .await
            .map_err(|e| backend("eth_blockNumber", e))
    }

    async fn randomness(&self, block: u64) -> Result<alloy::primitives::B256> {
        let b = self
            .provider
            .get_block_by_number(BlockNumberOrTag::Number(block))
            .await
            .map_err(|e| backend("eth_getBlockByNumber", e))?
            .ok_or_else(|| Error::InvalidInput(format!("block {block} is not made yet")))?;
        Ok(b.header.mix_hash)
    }

    /// Pages of [`RpcEvm::with_log_page`] blocks; per page one request by address and one by
    /// event signature (a node's filter cannot say "this address or that topic"), merged in
    /// chain order by block and log index.
    async fn logs(&self, filter: &LogFilter) -> Result<Vec<(u64, Log)>> {
        let mut out = std::collections::BTreeMap::new();
        let mut from = filter.from_block;
        while from <= filter.to_block {
            let to = filter.to_block.min(from.saturating_add(self.log_page - 1));
            let page = Filter::new().from_block(from).to_block(to);
            let mut asks = Vec::new();
            if !filter.addresses.is_empty() {
                asks.push(page.clone().address(filter.addresses.clone()));
            }
            if !filter.topics.is_empty() {
                asks.push(page.event_signature(filter.topics.clone()));
            }
            for ask in asks {
                let logs =
                    self.provider.get_logs(&ask).await.map_err(|e| {
                        backend(&format!("eth_getLogs for blocks {from}..={to}"), e)
                    })?;
                for l in logs {
                    let at = (l.block_number, l.log_index);
                    let (Some(block), Some(index)) = at else {
                        return Err(Error::Backend(format!(
                            "eth_getLogs returned a log without block number or index: {l:?}"
                        )));
                    };
                    out.insert((block, index), (block, l.inner));
                }
            }
            match to.checked_add(1) {
                Some(next) => from = next,
                None => break,
            }
        }
        Ok(out.into_values().collect())
    }

    /// Mines one block `secs` after the latest (`evm_setNextBlockTimestamp` + `evm_mine`),
    /// which also works on a node whose clock [`Anvil`] froze.
    async fn advance_time(&self, secs: u64) -> Result<()> {
        let next = self.now().await? + secs;
        self.dev_call("evm_setNextBlockTimestamp", serde_json::json!([next]))
            .await?;
        self.dev_call("evm_mine", serde_json::json!([])).await
    }

    async fn set_balance(&self, who: Address, wei: U256) -> Result<()> {
        self.dev_call("anvil_setBalance", serde_json::json!([who, wei]))
            .await
    }
}

/// `n` deterministic throwaway keys (keccak256 of "oai-chain dev account {i}") for development
/// chains and tests. Everyone can derive them: never send them real funds.
pub fn dev_signers(n: usize) -> Vec<PrivateKeySigner> {
    (0..n)
        .map(|i| {
            let key = keccak256(format!("oai-chain dev account {i}"));
            PrivateKeySigner::from_bytes(&key).expect("a keccak digest is a valid secp256k1 key")
        })
        .collect()
}

/// A local anvil node on a free 127.0.0.1 port, stopped when dropped. It runs like the
/// embedded EVM: the pinned hardfork, genesis at [`crate::GENESIS_TIME`], and a frozen clock
/// (every block keeps the latest timestamp until [`Evm::advance_time`]), so the same
/// transactions store the same values and cost the same gas on both, whatever the wall clock
/// does between them.
#[derive(Debug)]
pub struct Anvil {
    child: Child,
    url: String,
}

impl Anvil {
    /// Where to find anvil: `$OAI_ANVIL`, the binary `.ci/run` installs from npm
    /// (`@foundry-rs/anvil-linux-amd64`) under `workspace_root`, or `anvil` on the `PATH`.
    pub fn locate(workspace_root: &Path) -> Option<PathBuf> {
        if let Some(p) = std::env::var_os("OAI_ANVIL") {
            return Some(PathBuf::from(p));
        }
        let npm =
            workspace_root.join(".ci/node/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil");
        if npm.is_file() {
            return Some(npm);
        }
        std::env::var_os("PATH")?
            .to_str()?
            .split(':')
            .map(|d| Path::new(d).join("anvil"))
            .find(|p| p.is_file())
    }

    /// Start `bin` and wait (up to 20 s) until it answers JSON-RPC.
    pub async fn start(bin: &Path) -> Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| backend("finding a free port", e))?
            .port();
        let child = Command::new(bin)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--hardfork",
                "prague",
                "--silent",
                "--timestamp",
                &crate::GENESIS_TIME.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| backend(&format!("starting {}", bin.display()), e))?;
        let mut node = Anvil {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let url = node.url.parse().map_err(|e| backend("anvil url", e))?;
        let probe = ProviderBuilder::new().connect_http(url);
        let start = Instant::now();
        loop {
            if probe.get_chain_id().await.is_ok() {
                probe
                    .raw_request::<_, serde_json::Value>(
                        "anvil_setBlockTimestampInterval".into(),
                        [0],
                    )
                    .await
                    .map_err(|e| backend("anvil_setBlockTimestampInterval", e))?;
                return Ok(node);
            }
            if let Ok(Some(status)) = node.child.try_wait() {
                return Err(Error::Backend(format!("anvil exited at start: {status}")));
            }
            if start.elapsed() > Duration::from_secs(20) {
                return Err(Error::Backend(format!(
                    "anvil did not answer on {} within 20 s",
                    node.url
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The node's JSON-RPC endpoint.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
