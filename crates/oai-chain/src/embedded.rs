//! The embedded EVM: revm in-process, no external node. The default backend.

use std::sync::Mutex;

use alloy::primitives::{Address, Bytes, Log, TxKind, B256, U256};
use async_trait::async_trait;
use revm::context::result::{ExecutionResult, Output};
use revm::context::{BlockEnv, CfgEnv, Context, Journal, TxEnv};
use revm::database::{CacheDB, EmptyDB};
use revm::database_interface::DatabaseRef;
use revm::primitives::hardfork::SpecId;
use revm::state::AccountInfo;
use revm::{ExecuteCommitEvm, ExecuteEvm, MainBuilder, MainContext, MainnetEvm};

use crate::evm::{Evm, LogFilter, Outcome, Tx, TxReceipt};
use crate::{Error, Result};

/// The hardfork both backends run (anvil is started with `--hardfork prague`).
pub const HARDFORK: SpecId = SpecId::PRAGUE;
/// Chain id of the embedded chain (anvil's default, so signed transactions match).
pub const CHAIN_ID: u64 = 31337;
/// Timestamp of the embedded chain's first block: a fixed start keeps runs identical.
pub const GENESIS_TIME: u64 = 1_767_225_600; // 2026-01-01T00:00:00Z
/// Gas limit given to every transaction and call.
const TX_GAS_LIMIT: u64 = 16_000_000;

type Db = CacheDB<EmptyDB>;
type Ctx = Context<BlockEnv, TxEnv, CfgEnv, Db, Journal<Db>, ()>;

/// revm in-process (the EVM is built per transaction over the kept state, as revm's EVM is not
/// `Send`): each successful transaction is its own block, and [`Evm::advance_time`] makes an
/// empty one (the clock moves only then); gas is free (base fee and gas price 0), so balances move only by
/// the value transfers the contracts make. Block `n`'s `prevrandao` is
/// `keccak256("oai embedded prevrandao" ‖ seed ‖ n)` ([`Revm::with_seed`]; seed 0 by default):
/// unknown before the block, the same in every run with the same seed.
pub struct Revm {
    state: Mutex<State>,
    seed: u64,
}

struct State {
    db: Db,
    block: BlockEnv,
    logs: Vec<(u64, Log)>,
}

impl std::fmt::Debug for Revm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Revm")
            .field("hardfork", &HARDFORK)
            .finish_non_exhaustive()
    }
}

impl Default for Revm {
    fn default() -> Self {
        Self::new()
    }
}

impl Revm {
    /// A fresh chain: no accounts, block 1 at [`GENESIS_TIME`], randomness seed 0.
    pub fn new() -> Self {
        Self::with_seed(0)
    }

    /// A fresh chain whose blocks' `prevrandao` derive from `seed`.
    pub fn with_seed(seed: u64) -> Self {
        let block = BlockEnv {
            number: U256::from(1),
            timestamp: U256::from(GENESIS_TIME),
            gas_limit: 30_000_000,
            basefee: 0,
            prevrandao: Some(prevrandao(seed, 1)),
            ..BlockEnv::default()
        };
        Revm {
            state: Mutex::new(State {
                db: Db::default(),
                block,
                logs: Vec::new(),
            }),
            seed,
        }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, State>> {
        self.state
            .lock()
            .map_err(|_| Error::Backend("embedded EVM poisoned by a panic".into()))
    }
}

impl State {
    fn account(&self, who: Address) -> Result<AccountInfo> {
        let info = self.db.basic_ref(who);
        Ok(info
            .map_err(|e| Error::Backend(format!("{e:?}")))?
            .unwrap_or_default())
    }

    fn block(&self) -> u64 {
        self.block.number.saturating_to()
    }

    /// Run `tx` on the current state; `commit` keeps its changes when it succeeds.
    fn run(&mut self, tx: TxEnv, commit: bool) -> Result<ExecutionResult> {
        let mut evm: MainnetEvm<Ctx> = Context::mainnet()
            .with_db(std::mem::take(&mut self.db))
            .with_block(self.block.clone())
            .modify_cfg_chained(|cfg| {
                cfg.set_spec_and_mainnet_gas_params(HARDFORK);
                cfg.chain_id = CHAIN_ID;
            })
            .build_mainnet();
        let result = match evm.transact(tx) {
            Ok(done) => {
                if commit && done.result.is_success() {
                    evm.commit(done.state);
                }
                Ok(done.result)
            }
            Err(e) => Err(backend(e)),
        };
        self.db = std::mem::take(&mut evm.ctx.journaled_state.database);
        result
    }

    fn tx_env(&self, from: Address, kind: TxKind, data: Bytes, value: U256) -> Result<TxEnv> {
        let nonce = self.account(from)?.nonce;
        Ok(TxEnv::builder()
            .caller(from)
            .kind(kind)
            .data(data)
            .value(value)
            .gas_limit(TX_GAS_LIMIT)
            .gas_price(0)
            .nonce(nonce)
            .chain_id(Some(CHAIN_ID))
            .build_fill())
    }
}

/// The embedded chain's `prevrandao` of block `number`.
fn prevrandao(seed: u64, number: u64) -> B256 {
    let mut bytes = b"oai embedded prevrandao".to_vec();
    bytes.extend(seed.to_be_bytes());
    bytes.extend(number.to_be_bytes());
    alloy::primitives::keccak256(bytes)
}

fn backend<E: std::fmt::Debug>(e: E) -> Error {
    Error::Backend(format!("revm: {e:?}"))
}

#[async_trait]
impl Evm for Revm {
    async fn send(&self, tx: Tx) -> Result<Outcome<TxReceipt>> {
        let mut st = self.lock()?;
        let kind = tx.to.map_or(TxKind::Create, TxKind::Call);
        let env = st.tx_env(tx.from, kind, tx.data, tx.value)?;
        match st.run(env, true)? {
            ExecutionResult::Success {
                gas, logs, output, ..
            } => {
                let block = st.block();
                st.logs.extend(logs.iter().cloned().map(|l| (block, l)));
                st.block.number += U256::from(1);
                st.block.prevrandao = Some(prevrandao(self.seed, st.block()));
                let created = match output {
                    Output::Create(_, addr) => addr,
                    Output::Call(_) => None,
                };
                Ok(Outcome::Success(TxReceipt {
                    gas_used: gas.tx_gas_used(),
                    fee: U256::ZERO,
                    block,
                    logs,
                    created,
                }))
            }
            ExecutionResult::Revert { output, .. } => Ok(Outcome::Revert(output)),
            ExecutionResult::Halt { reason, .. } => Ok(Outcome::Halt(format!("{reason:?}"))),
        }
    }

    async fn call(&self, to: Address, data: Bytes) -> Result<Outcome<Bytes>> {
        let mut st = self.lock()?;
        let env = st.tx_env(Address::ZERO, TxKind::Call(to), data, U256::ZERO)?;
        Ok(match st.run(env, false)? {
            ExecutionResult::Success { output, .. } => Outcome::Success(output.into_data()),
            ExecutionResult::Revert { output, .. } => Outcome::Revert(output),
            ExecutionResult::Halt { reason, .. } => Outcome::Halt(format!("{reason:?}")),
        })
    }

    async fn balance(&self, who: Address) -> Result<U256> {
        Ok(self.lock()?.account(who)?.balance)
    }

    async fn now(&self) -> Result<u64> {
        Ok(self.lock()?.block.timestamp.saturating_to())
    }

    async fn block_number(&self) -> Result<u64> {
        // the last mined block: the current env is the block the next transaction goes in
        Ok(self.lock()?.block().saturating_sub(1))
    }

    async fn randomness(&self, block: u64) -> Result<B256> {
        let latest = self.block_number().await?;
        if block == 0 || block > latest {
            return Err(Error::InvalidInput(format!(
                "block {block} is not made yet (latest {latest}; the embedded chain starts at 1)"
            )));
        }
        Ok(prevrandao(self.seed, block))
    }

    async fn logs(&self, filter: &LogFilter) -> Result<Vec<(u64, Log)>> {
        let st = self.lock()?;
        Ok(st
            .logs
            .iter()
            .filter(|(b, l)| (filter.from_block..=filter.to_block).contains(b) && filter.matches(l))
            .cloned()
            .collect())
    }

    async fn advance_time(&self, secs: u64) -> Result<()> {
        // an empty block `secs` later, as a development node mines one
        let mut st = self.lock()?;
        st.block.timestamp += U256::from(secs);
        st.block.number += U256::from(1);
        st.block.prevrandao = Some(prevrandao(self.seed, st.block()));
        Ok(())
    }

    async fn set_balance(&self, who: Address, wei: U256) -> Result<()> {
        let mut st = self.lock()?;
        let mut info = st.account(who)?;
        info.balance = wei;
        st.db.insert_account_info(who, info);
        Ok(())
    }
}
