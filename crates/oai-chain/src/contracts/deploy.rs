//! Deploying the contracts from their committed bytecode and wiring them up.

use alloy::primitives::{Address, Bytes, U256};
use alloy::sol_types::SolConstructor;

use super::calls::settled;
use super::{Contracts, DeployGas};
use crate::bindings::{DatasetDAO, NodeRegistry, RefereeAdjudicator, TrainingDAO, TrainingMarket};
use crate::chain::{ChainConfig, Deployment, Receipt};
use crate::error::Origin;
use crate::evm::{Evm, Tx, TxReceipt};
use crate::governance::strict_majority;
use crate::{Error, Result};

impl<E: Evm> Contracts<E> {
    /// Deploy registry, referee adjudicator and market from `deployer` and wire them up; with
    /// [`ChainConfig::governance`], then a `TrainingDAO` made the governor of all three, and
    /// without, their rules fixed for good (the governor set to nobody, so the deployer keeps
    /// no power to change them).
    pub async fn deploy(
        evm: E,
        deployer: Address,
        config: &ChainConfig,
    ) -> Result<(Self, DeployGas)> {
        // the adjudicator refuses it too; checked here before any gas is spent
        let n = config.referees.len();
        if !strict_majority(config.threshold, n) {
            return Err(Error::InvalidInput(format!(
                "threshold {} of {n} referees: it must be a strict majority of them",
                config.threshold
            )));
        }
        let mut gas = Vec::new();
        let registry_args = NodeRegistry::constructorCall {
            minStake_: config.min_stake,
            unbondDelay_: config.unbond_delay,
        };
        let (registry, r) = create(
            &evm,
            deployer,
            "NodeRegistry",
            &NodeRegistry::BYTECODE,
            registry_args,
        )
        .await?;
        gas.push(("deploy NodeRegistry", r.gas_used));
        let referee_args = RefereeAdjudicator::constructorCall {
            referees_: config.referees.clone(),
            threshold_: U256::from(config.threshold),
        };
        let (adjudicator, r) = create(
            &evm,
            deployer,
            "RefereeAdjudicator",
            &RefereeAdjudicator::BYTECODE,
            referee_args,
        )
        .await?;
        gas.push(("deploy RefereeAdjudicator", r.gas_used));
        let market_args = TrainingMarket::constructorCall {
            registry_: registry,
            adjudicator_: adjudicator,
            moveTimeout_: config.move_timeout,
            adjudicationTimeout_: config.adjudication_timeout,
        };
        let (market, r) = create(
            &evm,
            deployer,
            "TrainingMarket",
            &TrainingMarket::BYTECODE,
            market_args,
        )
        .await?;
        gas.push(("deploy TrainingMarket", r.gas_used));
        let mut this = Contracts::attach(
            evm,
            Deployment {
                registry,
                adjudicator,
                market,
                dao: None,
            },
        );
        let r = this
            .send(
                deployer,
                registry,
                Origin::Registry,
                NodeRegistry::setMarketCall { market_: market },
                U256::ZERO,
            )
            .await?;
        gas.push(("NodeRegistry.setMarket", r.gas_used));
        // the governor of all three: the DAO, or nobody for good (the zero address), so that
        // the deployer keeps no power to change the rules later
        let governor = match &config.governance {
            Some(g) => {
                let args = TrainingDAO::constructorCall {
                    members: g.members.iter().map(|(a, _)| *a).collect(),
                    weights: g.members.iter().map(|(_, w)| *w).collect(),
                    quorumBps_: g.quorum_bps,
                    delay_: g.delay,
                    registry_: registry,
                    market_: market,
                    adjudicator_: adjudicator,
                };
                let (dao, r) = create(
                    &this.evm,
                    deployer,
                    "TrainingDAO",
                    &TrainingDAO::BYTECODE,
                    args,
                )
                .await?;
                gas.push(("deploy TrainingDAO", r.gas_used));
                this.deployment.dao = Some(dao);
                dao
            }
            None => Address::ZERO,
        };
        let to = NodeRegistry::setGovernorCall {
            governor_: governor,
        };
        let r = this
            .send(deployer, registry, Origin::Registry, to, U256::ZERO)
            .await?;
        gas.push(("NodeRegistry.setGovernor", r.gas_used));
        let to = TrainingMarket::setGovernorCall {
            governor_: governor,
        };
        let r = this
            .send(deployer, market, Origin::Market, to, U256::ZERO)
            .await?;
        gas.push(("TrainingMarket.setGovernor", r.gas_used));
        let to = RefereeAdjudicator::setGovernorCall {
            governor_: governor,
        };
        let r = this
            .send(deployer, adjudicator, Origin::Referee, to, U256::ZERO)
            .await?;
        gas.push(("RefereeAdjudicator.setGovernor", r.gas_used));
        Ok((this, gas))
    }

    pub(super) async fn create_dao_with(
        &self,
        deployer: Address,
        args: DatasetDAO::constructorCall,
    ) -> Result<(Address, Receipt)> {
        let (dao, r) = create(
            &self.evm,
            deployer,
            "DatasetDAO",
            &DatasetDAO::BYTECODE,
            args,
        )
        .await?;
        Ok((dao, self.receipt(r)))
    }
}

/// Deploy `code` with constructor `args`.
async fn create<E: Evm, A: SolConstructor>(
    evm: &E,
    from: Address,
    name: &str,
    code: &Bytes,
    args: A,
) -> Result<(Address, TxReceipt)> {
    let mut data = code.to_vec();
    data.extend_from_slice(&args.abi_encode());
    let call = format!("deploy {name}");
    let tx = Tx {
        from,
        to: None,
        data: data.into(),
        value: U256::ZERO,
    };
    let r = settled(evm.send(tx).await?, &call, Origin::Other)?;
    let addr = r
        .created
        .ok_or_else(|| Error::Backend(format!("{call}: no contract address in the receipt")))?;
    Ok((addr, r))
}
