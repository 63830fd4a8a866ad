//! [`Contracts`]: the [`Chain`] over any [`Evm`], speaking the committed contracts' ABI.

use alloy::primitives::{Address, Bytes, Log, B256, U256};
use alloy::sol_types::{SolCall, SolConstructor, SolEventInterface};
use async_trait::async_trait;

use crate::bindings::{DatasetDAO, NodeRegistry, RefereeAdjudicator, TrainingDAO, TrainingMarket};
use crate::chain::{
    Chain, ChainConfig, DaoConfig, DaoState, DataRequest, Deployment, Dispute, Event, Job, JobId,
    JobResult, JobStatus, JobTerms, NodeStake, Receipt, Turn,
};
use crate::error::{Origin, Revert};
use crate::evm::{Evm, LogFilter, Outcome, Tx, TxReceipt};
use crate::governance::{strict_majority, Change, Governance, MarketParameters, Proposal};
use crate::{Error, Result};

/// The oai contracts on an EVM backend: the one implementation of [`Chain`], so every
/// backend sends byte-identical transactions. Cheap to clone when the backend is (an `Arc`,
/// an `RpcEvm`): every clone talks to the same chain.
#[derive(Debug, Clone)]
pub struct Contracts<E> {
    evm: E,
    deployment: Deployment,
}

/// Gas of each deployment transaction, in order.
pub type DeployGas = Vec<(&'static str, u64)>;

impl<E: Evm> Contracts<E> {
    /// Talk to an existing deployment.
    pub fn attach(evm: E, deployment: Deployment) -> Self {
        Contracts { evm, deployment }
    }

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

    /// The contracts' addresses.
    pub fn deployment(&self) -> Deployment {
        self.deployment
    }

    /// The backend.
    pub fn evm(&self) -> &E {
        &self.evm
    }

    /// Send `call` to `to`; a revert becomes [`Error::Reverted`] with the decoded error.
    async fn send<C: SolCall + Send>(
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
    async fn view<C: SolCall + Send>(
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

    fn receipt(&self, r: TxReceipt) -> Receipt {
        let events = r.logs.iter().filter_map(|l| self.decode_event(l)).collect();
        Receipt {
            gas_used: r.gas_used,
            fee: r.fee,
            block: r.block,
            events,
        }
    }

    fn decode_event(&self, log: &Log) -> Option<Event> {
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

    async fn market<C: SolCall + Send>(
        &self,
        from: Address,
        call: C,
        value: U256,
    ) -> Result<Receipt> {
        self.send(from, self.deployment.market, Origin::Market, call, value)
            .await
    }

    async fn registry<C: SolCall + Send>(
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
    fn training_dao(&self) -> Result<Address> {
        self.deployment
            .dao
            .ok_or_else(|| Error::InvalidInput("this deployment has no training DAO".into()))
    }

    async fn governance_tx<C: SolCall + Send>(&self, from: Address, call: C) -> Result<Receipt> {
        let dao = self.training_dao()?;
        self.send(from, dao, Origin::Governance, call, U256::ZERO)
            .await
    }

    async fn dao_tx<C: SolCall + Send>(
        &self,
        from: Address,
        dao: Address,
        call: C,
    ) -> Result<Receipt> {
        self.send(from, dao, Origin::Dao, call, U256::ZERO).await
    }

    async fn create_dao_with(
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

/// A transaction's or call's outcome as a result: a revert decoded (`origin`'s errors first).
fn settled<T>(outcome: Outcome<T>, call: &str, origin: Origin) -> Result<T> {
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

fn job_u256(job: JobId) -> U256 {
    U256::from(job)
}

fn status(raw: u8) -> Result<JobStatus> {
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

fn nonzero(a: Address) -> Option<Address> {
    (a != Address::ZERO).then_some(a)
}

/// The id a transaction's event announces (`JobPosted`, `Proposed`).
fn id_from_event(
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

#[async_trait]
impl<E: Evm> Chain for Contracts<E> {
    fn deployment(&self) -> Deployment {
        self.deployment
    }

    async fn register(&self, node: Address, stake: U256) -> Result<Receipt> {
        self.registry(node, NodeRegistry::registerCall {}, stake)
            .await
    }

    async fn top_up(&self, node: Address, amount: U256) -> Result<Receipt> {
        self.registry(node, NodeRegistry::topUpCall {}, amount)
            .await
    }

    async fn request_unbond(&self, node: Address, amount: U256) -> Result<Receipt> {
        self.registry(node, NodeRegistry::requestUnbondCall { amount }, U256::ZERO)
            .await
    }

    async fn withdraw_stake(&self, node: Address) -> Result<Receipt> {
        self.registry(node, NodeRegistry::withdrawCall {}, U256::ZERO)
            .await
    }

    async fn withdraw_stake_to(&self, node: Address, to: Address) -> Result<Receipt> {
        self.registry(node, NodeRegistry::withdrawToCall { to }, U256::ZERO)
            .await
    }

    async fn stake(&self, node: Address) -> Result<NodeStake> {
        let n = self
            .view(
                self.deployment.registry,
                Origin::Registry,
                NodeRegistry::nodesCall(node),
            )
            .await?;
        Ok(NodeStake {
            registered: n.registered,
            stake: n.stake,
            locked: n.locked,
            unbonding: n.unbonding,
            unbond_at: n.unbondAt,
        })
    }

    async fn post_job(
        &self,
        requester: Address,
        terms: &JobTerms,
        reward: U256,
    ) -> Result<(JobId, Receipt)> {
        let call = TrainingMarket::postJobCall {
            datasetRoot: terms.dataset_root,
            specCid: terms.spec,
            steps: terms.steps,
            claimWindow: terms.claim_window,
            maxDuration: terms.max_duration,
            challengeWindow: terms.challenge_window,
            requiredStake: terms.required_stake,
        };
        let r = self.market(requester, call, reward).await?;
        let id = id_from_event(&r, "postJob", "JobPosted", |e| match e {
            Event::Market(TrainingMarket::TrainingMarketEvents::JobPosted(p)) => Some(p.jobId),
            _ => None,
        })?;
        Ok((id, r))
    }

    async fn fund_job(&self, funder: Address, job: JobId, amount: U256) -> Result<Receipt> {
        self.market(
            funder,
            TrainingMarket::fundCall {
                jobId: job_u256(job),
            },
            amount,
        )
        .await
    }

    async fn cancel_job(&self, requester: Address, job: JobId) -> Result<Receipt> {
        self.market(
            requester,
            TrainingMarket::cancelCall {
                jobId: job_u256(job),
            },
            U256::ZERO,
        )
        .await
    }

    async fn claim_job(&self, node: Address, job: JobId) -> Result<Receipt> {
        self.market(
            node,
            TrainingMarket::claimCall {
                jobId: job_u256(job),
            },
            U256::ZERO,
        )
        .await
    }

    async fn submit_result(
        &self,
        node: Address,
        job: JobId,
        header: &[u8],
        result: &JobResult,
    ) -> Result<Receipt> {
        let digest = B256::from(oai_core::Digest::of(header).0);
        if digest != result.genesis {
            return Err(Error::InvalidInput(format!(
                "the header's SHA-256 is {digest}, the result's genesis {}",
                result.genesis
            )));
        }
        let call = TrainingMarket::submitCall {
            jobId: job_u256(job),
            header: header.to_vec().into(),
            head: result.head,
            root: result.root,
        };
        self.market(node, call, U256::ZERO).await
    }

    async fn expire_job(&self, caller: Address, job: JobId) -> Result<Receipt> {
        self.market(
            caller,
            TrainingMarket::expireCall {
                jobId: job_u256(job),
            },
            U256::ZERO,
        )
        .await
    }

    async fn challenge(
        &self,
        challenger: Address,
        job: JobId,
        claimed_final: B256,
        bond: U256,
    ) -> Result<Receipt> {
        let call = TrainingMarket::challengeCall {
            jobId: job_u256(job),
            challengerFinal: claimed_final,
        };
        self.market(challenger, call, bond).await
    }

    async fn challenge_terms(
        &self,
        challenger: Address,
        job: JobId,
        bond: U256,
    ) -> Result<Receipt> {
        let call = TrainingMarket::challengeTermsCall {
            jobId: job_u256(job),
        };
        self.market(challenger, call, bond).await
    }

    async fn bisect(&self, mover: Address, job: JobId, commitment: B256) -> Result<Receipt> {
        self.market(
            mover,
            TrainingMarket::bisectCall {
                jobId: job_u256(job),
                commitment,
            },
            U256::ZERO,
        )
        .await
    }

    async fn reveal(
        &self,
        node: Address,
        job: JobId,
        record: &[u8],
        agreed_proof: &[B256],
        hi_proof: &[B256],
    ) -> Result<Receipt> {
        let call = TrainingMarket::revealCall {
            jobId: job_u256(job),
            record: record.to_vec().into(),
            agreedProof: agreed_proof.to_vec(),
            hiProof: hi_proof.to_vec(),
        };
        self.market(node, call, U256::ZERO).await
    }

    async fn request_data(
        &self,
        requester: Address,
        job: JobId,
        index: u64,
        bond: U256,
    ) -> Result<Receipt> {
        let call = TrainingMarket::requestDataCall {
            jobId: job_u256(job),
            index,
        };
        self.market(requester, call, bond).await
    }

    async fn answer_data(
        &self,
        node: Address,
        job: JobId,
        record: &[u8],
        proof: &[B256],
    ) -> Result<Receipt> {
        let call = TrainingMarket::answerDataCall {
            jobId: job_u256(job),
            record: record.to_vec().into(),
            proof: proof.to_vec(),
        };
        self.market(node, call, U256::ZERO).await
    }

    async fn timeout_data(&self, caller: Address, job: JobId) -> Result<Receipt> {
        let call = TrainingMarket::timeoutDataCall {
            jobId: job_u256(job),
        };
        self.market(caller, call, U256::ZERO).await
    }

    async fn data_request(&self, job: JobId) -> Result<Option<DataRequest>> {
        let call = TrainingMarket::getRequestCall {
            jobId: job_u256(job),
        };
        let q = self
            .view(self.deployment.market, Origin::Market, call)
            .await?;
        Ok((q.by != Address::ZERO).then_some(DataRequest {
            by: q.by,
            deadline: q.deadline,
            index: q.index,
            bond: U256::from(q.bond),
        }))
    }

    async fn posted_block(&self, job: JobId, digest: B256) -> Result<Option<Vec<u8>>> {
        let id = job_u256(job);
        for (_, e) in self.events(0).await? {
            let bytes = match e {
                Event::Market(TrainingMarket::TrainingMarketEvents::Submitted(s))
                    if s.jobId == id && s.genesis == digest =>
                {
                    s.header
                }
                Event::Market(TrainingMarket::TrainingMarketEvents::Revealed(r))
                    if r.jobId == id && r.commitment == digest =>
                {
                    r.record
                }
                Event::Market(TrainingMarket::TrainingMarketEvents::DataAnswered(a))
                    if a.jobId == id && a.commitment == digest =>
                {
                    a.record
                }
                _ => continue,
            };
            // the contract checked the digest; a node's answer is checked again all the same
            if oai_core::Digest::of(&bytes).0 == digest.0 {
                return Ok(Some(bytes.to_vec()));
            }
        }
        Ok(None)
    }

    async fn resolve(&self, caller: Address, job: JobId) -> Result<Receipt> {
        self.market(
            caller,
            TrainingMarket::resolveCall {
                jobId: job_u256(job),
            },
            U256::ZERO,
        )
        .await
    }

    async fn timeout(&self, caller: Address, job: JobId) -> Result<Receipt> {
        self.market(
            caller,
            TrainingMarket::timeoutCall {
                jobId: job_u256(job),
            },
            U256::ZERO,
        )
        .await
    }

    async fn finalize(&self, caller: Address, job: JobId) -> Result<Receipt> {
        self.market(
            caller,
            TrainingMarket::finalizeCall {
                jobId: job_u256(job),
            },
            U256::ZERO,
        )
        .await
    }

    async fn refund(&self, funder: Address, job: JobId) -> Result<Receipt> {
        self.market(
            funder,
            TrainingMarket::refundCall {
                jobId: job_u256(job),
            },
            U256::ZERO,
        )
        .await
    }

    async fn withdraw(&self, account: Address) -> Result<Receipt> {
        self.market(account, TrainingMarket::withdrawCall {}, U256::ZERO)
            .await
    }

    async fn withdraw_to(&self, account: Address, to: Address) -> Result<Receipt> {
        self.market(account, TrainingMarket::withdrawToCall { to }, U256::ZERO)
            .await
    }

    async fn job(&self, job: JobId) -> Result<Job> {
        let j = self
            .view(
                self.deployment.market,
                Origin::Market,
                TrainingMarket::getJobCall {
                    jobId: job_u256(job),
                },
            )
            .await?;
        let status = status(j.status)?;
        let result = (j.head != B256::ZERO).then_some(JobResult {
            genesis: j.genesis,
            head: j.head,
            root: j.root,
        });
        Ok(Job {
            requester: j.requester,
            node: nonzero(j.node),
            status,
            deadline: j.deadline,
            reward: j.reward,
            terms: JobTerms {
                dataset_root: j.datasetRoot,
                spec: j.specCid,
                steps: j.steps,
                claim_window: j.claimWindow,
                max_duration: j.maxDuration,
                challenge_window: j.challengeWindow,
                required_stake: j.requiredStake,
            },
            result,
        })
    }

    async fn dispute(&self, job: JobId) -> Result<Option<Dispute>> {
        let d = self
            .view(
                self.deployment.market,
                Origin::Market,
                TrainingMarket::getDisputeCall {
                    jobId: job_u256(job),
                },
            )
            .await?;
        if d.challenger == Address::ZERO {
            return Ok(None);
        }
        // the order of `TrainingMarket.Turn`
        let turn = match d.turn {
            0 => Turn::Node,
            1 => Turn::Challenger,
            2 => Turn::Adjudication,
            3 => Turn::Reveal,
            other => {
                return Err(Error::Decode {
                    call: "getDispute".into(),
                    reason: format!("turn {other}"),
                })
            }
        };
        Ok(Some(Dispute {
            challenger: d.challenger,
            deadline: d.deadline,
            turn,
            lo: d.lo,
            hi: d.hi,
            bond: U256::from(d.bond),
            agreed: d.agreed,
            node_hi: d.nodeHi,
            node_mid: d.nodeMid,
        }))
    }

    async fn owed(&self, account: Address) -> Result<U256> {
        self.view(
            self.deployment.market,
            Origin::Market,
            TrainingMarket::owedCall(account),
        )
        .await
    }

    async fn burned(&self) -> Result<U256> {
        self.view(
            self.deployment.market,
            Origin::Market,
            TrainingMarket::burnedCall {},
        )
        .await
    }

    async fn case_id(&self, job: JobId, dispute: &Dispute) -> Result<B256> {
        let call = TrainingMarket::caseOfCall {
            jobId: job_u256(job),
            step: dispute.lo,
            before: dispute.agreed,
            nodeAfter: dispute.node_hi,
        };
        self.view(self.deployment.market, Origin::Market, call)
            .await
    }

    async fn referee_vote(
        &self,
        referee: Address,
        case: B256,
        node_correct: bool,
    ) -> Result<Receipt> {
        let call = RefereeAdjudicator::voteCall {
            caseId: case,
            nodeCorrect: node_correct,
        };
        self.send(
            referee,
            self.deployment.adjudicator,
            Origin::Referee,
            call,
            U256::ZERO,
        )
        .await
    }

    async fn create_dao(
        &self,
        deployer: Address,
        config: &DaoConfig,
    ) -> Result<(Address, Receipt)> {
        let args = DatasetDAO::constructorCall {
            members: config.members.iter().map(|(a, _)| *a).collect(),
            weights: config.members.iter().map(|(_, w)| *w).collect(),
            root_: config.root,
            quorumBps_: config.quorum_bps,
            delay_: config.delay,
            parent_: Address::ZERO,
        };
        self.create_dao_with(deployer, args).await
    }

    async fn fork_dao(&self, member: Address, parent: Address) -> Result<(Address, Receipt)> {
        let args = DatasetDAO::constructorCall {
            members: vec![],
            weights: vec![],
            root_: B256::ZERO,
            quorumBps_: 0,
            delay_: 0,
            parent_: parent,
        };
        self.create_dao_with(member, args).await
    }

    async fn join_dao(&self, member: Address, dao: Address) -> Result<Receipt> {
        self.dao_tx(member, dao, DatasetDAO::joinCall {}).await
    }

    async fn propose(
        &self,
        member: Address,
        dao: Address,
        new_root: B256,
        proposal: B256,
    ) -> Result<(u64, Receipt)> {
        let r = self
            .dao_tx(
                member,
                dao,
                DatasetDAO::proposeCall {
                    newRoot: new_root,
                    proposalCid: proposal,
                },
            )
            .await?;
        let id = id_from_event(&r, "propose", "Proposed", |e| match e {
            Event::Dao {
                event: DatasetDAO::DatasetDAOEvents::Proposed(p),
                ..
            } => Some(p.id),
            _ => None,
        })?;
        Ok((id, r))
    }

    async fn vote(
        &self,
        member: Address,
        dao: Address,
        proposal: u64,
        support: bool,
    ) -> Result<Receipt> {
        self.dao_tx(
            member,
            dao,
            DatasetDAO::voteCall {
                id: U256::from(proposal),
                support,
            },
        )
        .await
    }

    async fn execute(&self, caller: Address, dao: Address, proposal: u64) -> Result<Receipt> {
        self.dao_tx(
            caller,
            dao,
            DatasetDAO::executeCall {
                id: U256::from(proposal),
            },
        )
        .await
    }

    async fn dao(&self, dao: Address) -> Result<DaoState> {
        let root = self.view(dao, Origin::Dao, DatasetDAO::rootCall {}).await?;
        let version = self
            .view(dao, Origin::Dao, DatasetDAO::versionCall {})
            .await?;
        let total_weight = self
            .view(dao, Origin::Dao, DatasetDAO::totalWeightCall {})
            .await?;
        let parent = self
            .view(dao, Origin::Dao, DatasetDAO::parentCall {})
            .await?;
        Ok(DaoState {
            root,
            version,
            total_weight,
            parent: nonzero(parent),
        })
    }

    async fn propose_change(&self, member: Address, change: &Change) -> Result<(u64, Receipt)> {
        let (kind, args) = change.encode();
        let call = TrainingDAO::proposeCall {
            kind,
            args: args.into(),
        };
        let r = self.governance_tx(member, call).await?;
        let id = r
            .events
            .iter()
            .find_map(|e| match e {
                Event::Governance(TrainingDAO::TrainingDAOEvents::ChangeProposed(p)) => {
                    u64::try_from(p.id).ok()
                }
                _ => None,
            })
            .ok_or_else(|| Error::Decode {
                call: "propose".into(),
                reason: "no ChangeProposed event".into(),
            })?;
        Ok((id, r))
    }

    async fn vote_change(&self, member: Address, id: u64, support: bool) -> Result<Receipt> {
        let call = TrainingDAO::voteCall {
            id: U256::from(id),
            support,
        };
        self.governance_tx(member, call).await
    }

    async fn execute_change(&self, caller: Address, id: u64) -> Result<Receipt> {
        let call = TrainingDAO::executeCall { id: U256::from(id) };
        self.governance_tx(caller, call).await
    }

    async fn proposal(&self, id: u64) -> Result<Proposal> {
        let dao = self.training_dao()?;
        let id256 = U256::from(id);
        let c = self
            .view(
                dao,
                Origin::Governance,
                TrainingDAO::changeCall { id: id256 },
            )
            .await?;
        let t = self
            .view(dao, Origin::Governance, TrainingDAO::talliesCall(id256))
            .await?;
        let delay = self
            .view(dao, Origin::Governance, TrainingDAO::delayCall {})
            .await?;
        let change = Change::decode(&c).ok_or_else(|| Error::Decode {
            call: "change".into(),
            reason: format!("proposal {id} holds kind {} that does not decode", c.kind),
        })?;
        Ok(Proposal {
            change,
            proposer: t.proposer,
            yes: t.yesWeight,
            no: t.noWeight,
            ready_at: (t.quorumAt != 0).then(|| t.quorumAt + delay),
            executed: t.executed,
        })
    }

    async fn governance(&self) -> Result<Governance> {
        let d = self.deployment;
        let referees = self
            .view(
                d.adjudicator,
                Origin::Referee,
                RefereeAdjudicator::refereesCall {},
            )
            .await?;
        let threshold = self
            .view(
                d.adjudicator,
                Origin::Referee,
                RefereeAdjudicator::thresholdCall {},
            )
            .await?;
        let epoch = self
            .view(
                d.adjudicator,
                Origin::Referee,
                RefereeAdjudicator::epochCall {},
            )
            .await?;
        let p = self
            .view(d.market, Origin::Market, TrainingMarket::parametersCall {})
            .await?;
        let min_stake = self
            .view(d.registry, Origin::Registry, NodeRegistry::minStakeCall {})
            .await?;
        let open = self
            .view(d.registry, Origin::Registry, NodeRegistry::openCall {})
            .await?;
        Ok(Governance {
            dao: d.dao,
            referees,
            threshold: u64::from(threshold),
            epoch,
            // the public getter returns the struct's fields, not the struct
            parameters: MarketParameters {
                burn_bps: p.burnBps,
                move_timeout: p.moveTimeout,
                adjudication_timeout: p.adjudicationTimeout,
                min_challenge_window: p.minChallengeWindow,
                max_challenge_window: p.maxChallengeWindow,
            },
            min_stake,
            open,
        })
    }

    async fn may_work(&self, node: Address) -> Result<bool> {
        let call = NodeRegistry::mayWorkCall { node };
        self.view(self.deployment.registry, Origin::Registry, call)
            .await
    }

    async fn events(&self, from_block: u64) -> Result<Vec<(u64, Event)>> {
        let d = &self.deployment;
        let filter = LogFilter {
            from_block,
            to_block: self.evm.block_number().await?,
            addresses: [d.registry, d.market, d.adjudicator]
                .into_iter()
                .chain(d.dao)
                .collect(),
            topics: DatasetDAO::DatasetDAOEvents::SELECTORS
                .iter()
                .map(|t| B256::from(*t))
                .collect(),
        };
        let logs = self.evm.logs(&filter).await?;
        Ok(logs
            .iter()
            .filter_map(|(b, l)| self.decode_event(l).map(|e| (*b, e)))
            .collect())
    }

    async fn balance(&self, who: Address) -> Result<U256> {
        self.evm.balance(who).await
    }

    async fn now(&self) -> Result<u64> {
        self.evm.now().await
    }

    async fn block_number(&self) -> Result<u64> {
        self.evm.block_number().await
    }

    async fn randomness(&self, block: u64) -> Result<B256> {
        self.evm.randomness(block).await
    }

    async fn advance_time(&self, secs: u64) -> Result<()> {
        self.evm.advance_time(secs).await
    }
}
