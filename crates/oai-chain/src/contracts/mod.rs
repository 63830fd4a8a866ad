//! [`Contracts`]: the [`Chain`] over any [`Evm`], speaking the committed contracts' ABI.
//! `deploy` deploys and wires them, `calls` encodes calls and decodes outcomes and events; the
//! [`Chain`] implementation here maps each method to its contract call.

mod calls;
mod deploy;

use alloy::primitives::{Address, B256, U256};
use async_trait::async_trait;

use crate::bindings::{DatasetDAO, NodeRegistry, RefereeAdjudicator, TrainingDAO, TrainingMarket};
use crate::chain::{
    Chain, DaoConfig, DaoState, DataRequest, Deployment, Dispute, Event, Job, JobId, JobResult,
    JobTerms, NodeStake, Receipt, Turn,
};
use crate::error::Origin;
use crate::evm::{Evm, LogFilter};
use crate::governance::{Change, Governance, MarketParameters, Proposal};
use crate::{Error, Result};
use calls::{id_from_event, job_u256, nonzero, status};

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

    /// The contracts' addresses.
    pub fn deployment(&self) -> Deployment {
        self.deployment
    }

    /// The backend.
    pub fn evm(&self) -> &E {
        &self.evm
    }
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
