//! Calls to the contracts and what comes back: ABI-encoded transactions and views, reverts
//! decoded, receipts with their events decoded by the contract that emitted them.

use alloy::primitives::{Address, Bytes, Log, U256};
use alloy::sol_types::{SolCall, SolEventInterface};

use super::Contracts;
use crate::bindings::{DatasetDAO, NodeRegistry, RefereeAdjudicator, TrainingDAO, TrainingMarket};
use crate::chain::{Event, JobId, JobStatus, Receipt};
use crate::error::{Origin, Revert};
use crate::evm::{Evm, Outcome, Tx, TxReceipt};
use crate::{Error, Result};

impl<E: Evm> Contracts<E> {
    /// Send `call` to `to`; a revert becomes [`Error::Reverted`] with the decoded error.
    pub(super) async fn send<C: SolCall + Send>(
        &self,
        from: Address,
        to: Address,
        origin: Origin,
        call: C,
        value: U256,
    ) -> Result<Receipt> {
        let tx = Tx {
            from,
            to: Some(to),
            data: Bytes::from(call.abi_encode()),
            value,
        };
        let r = settled(self.evm.send(tx).await?, C::SIGNATURE, origin)?;
        Ok(self.receipt(r))
    }

    /// Run a view call and decode its return value.
    pub(super) async fn view<C: SolCall + Send>(
        &self,
        to: Address,
        origin: Origin,
        call: C,
    ) -> Result<C::Return> {
        let outcome = self.evm.call(to, Bytes::from(call.abi_encode())).await?;
        let out = settled(outcome, C::SIGNATURE, origin)?;
        C::abi_decode_returns(&out).map_err(|e| Error::Decode {
            call: C::SIGNATURE.into(),
            reason: e.to_string(),
        })
    }

    pub(super) fn receipt(&self, r: TxReceipt) -> Receipt {
        let events = r.logs.iter().filter_map(|l| self.decode_event(l)).collect();
        Receipt {
            gas_used: r.gas_used,
            fee: r.fee,
            block: r.block,
            events,
        }
    }

    pub(super) fn decode_event(&self, log: &Log) -> Option<Event> {
        let d = &self.deployment;
        if log.address == d.registry {
            NodeRegistry::NodeRegistryEvents::decode_log(log)
                .ok()
                .map(|l| Event::Registry(l.data))
        } else if log.address == d.market {
            TrainingMarket::TrainingMarketEvents::decode_log(log)
                .ok()
                .map(|l| Event::Market(l.data))
        } else if log.address == d.adjudicator {
            RefereeAdjudicator::RefereeAdjudicatorEvents::decode_log(log)
                .ok()
                .map(|l| Event::Referee(l.data))
        } else if Some(log.address) == d.dao {
            TrainingDAO::TrainingDAOEvents::decode_log(log)
                .ok()
                .map(|l| Event::Governance(l.data))
        } else {
            DatasetDAO::DatasetDAOEvents::decode_log(log)
                .ok()
                .map(|l| Event::Dao {
                    dao: log.address,
                    event: l.data,
                })
        }
    }

    pub(super) async fn market<C: SolCall + Send>(
        &self,
        from: Address,
        call: C,
        value: U256,
    ) -> Result<Receipt> {
        self.send(from, self.deployment.market, Origin::Market, call, value)
            .await
    }

    pub(super) async fn registry<C: SolCall + Send>(
        &self,
        from: Address,
        call: C,
        value: U256,
    ) -> Result<Receipt> {
        self.send(
            from,
            self.deployment.registry,
            Origin::Registry,
            call,
            value,
        )
        .await
    }

    /// The deployment's training DAO, or [`Error::InvalidInput`] without one.
    pub(super) fn training_dao(&self) -> Result<Address> {
        self.deployment
            .dao
            .ok_or_else(|| Error::InvalidInput("this deployment has no training DAO".into()))
    }

    pub(super) async fn governance_tx<C: SolCall + Send>(
        &self,
        from: Address,
        call: C,
    ) -> Result<Receipt> {
        let dao = self.training_dao()?;
        self.send(from, dao, Origin::Governance, call, U256::ZERO)
            .await
    }

    pub(super) async fn dao_tx<C: SolCall + Send>(
        &self,
        from: Address,
        dao: Address,
        call: C,
    ) -> Result<Receipt> {
        self.send(from, dao, Origin::Dao, call, U256::ZERO).await
    }
}

/// A transaction's or call's outcome as a result: a revert decoded (`origin`'s errors first).
pub(super) fn settled<T>(outcome: Outcome<T>, call: &str, origin: Origin) -> Result<T> {
    match outcome {
        Outcome::Success(r) => Ok(r),
        Outcome::Revert(data) => Err(Error::Reverted {
            call: call.into(),
            revert: Revert::decode(origin, &data),
        }),
        Outcome::Halt(reason) => Err(Error::Halted {
            call: call.into(),
            reason,
        }),
    }
}

pub(super) fn job_u256(job: JobId) -> U256 {
    U256::from(job)
}

pub(super) fn status(raw: u8) -> Result<JobStatus> {
    // the order of `TrainingMarket.Status` (0 = None: no such job)
    const STATUSES: [JobStatus; 7] = [
        JobStatus::Open,
        JobStatus::Claimed,
        JobStatus::Submitted,
        JobStatus::Disputed,
        JobStatus::Paid,
        JobStatus::Slashed,
        JobStatus::Cancelled,
    ];
    (raw as usize)
        .checked_sub(1)
        .and_then(|i| STATUSES.get(i).copied())
        .ok_or_else(|| Error::Decode {
            call: "getJob".into(),
            reason: format!("status {raw}"),
        })
}

pub(super) fn nonzero(a: Address) -> Option<Address> {
    (a != Address::ZERO).then_some(a)
}

/// The id a transaction's event announces (`JobPosted`, `Proposed`).
pub(super) fn id_from_event(
    r: &Receipt,
    call: &str,
    event: &str,
    id: impl Fn(&Event) -> Option<U256>,
) -> Result<u64> {
    let decode = |reason: String| Error::Decode {
        call: call.into(),
        reason,
    };
    let v = r
        .events
        .iter()
        .find_map(id)
        .ok_or_else(|| decode(format!("no {event} event")))?;
    u64::try_from(v).map_err(|_| decode(format!("{event} id {v} does not fit u64")))
}
