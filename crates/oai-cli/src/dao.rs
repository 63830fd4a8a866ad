//! `oai dao`: the training DAO of a deployment (`oai chain deploy --member ...`): the rules in
//! force, changes proposed and voted by its members, executed after the timelock.

use anyhow::{bail, Result};
use clap::{Subcommand, ValueEnum};
use oai::chain::{
    majority, strict_majority, Address, Chain, Change, Governance, MarketParameters, Proposal,
};
use serde_json::json;

use crate::chain::{parse_eth, ChainOpt};

/// `oai dao ...`.
#[derive(Subcommand, Debug)]
pub enum DaoCommand {
    /// The rules in force: referees and threshold, market parameters, stake floor, admission.
    /// Example: `oai dao show --json`.
    Show {
        #[command(flatten)]
        chain: ChainOpt,
    },
    /// Propose a change (the account must be a member); prints its id.
    /// Example: `oai dao propose referees --referee 0xa.. --referee 0xb.. --referee 0xc..`.
    Propose {
        #[command(subcommand)]
        change: ChangeArg,
    },
    /// Vote on a proposed change with the account's whole weight.
    /// Example: `oai dao vote 3 yes --key-file member.key`.
    Vote {
        /// The proposal.
        id: u64,
        /// For or against.
        vote: Ballot,
        #[command(flatten)]
        chain: ChainOpt,
    },
    /// Execute a passed change once its timelock is over (any account).
    /// Example: `oai dao execute 3`.
    Execute {
        /// The proposal.
        id: u64,
        #[command(flatten)]
        chain: ChainOpt,
    },
    /// A proposed change and where its vote stands.
    /// Example: `oai dao proposal 3 --json`.
    Proposal {
        /// The proposal.
        id: u64,
        #[command(flatten)]
        chain: ChainOpt,
    },
}

/// A vote.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ballot {
    /// For.
    Yes,
    /// Against.
    No,
}

/// The change to propose.
#[derive(Subcommand, Debug)]
pub enum ChangeArg {
    /// A new referee set and threshold (a strict majority; default half of them plus one).
    Referees {
        /// A referee (repeat for each).
        #[arg(long = "referee", required = true)]
        referees: Vec<Address>,
        /// Votes a verdict needs.
        #[arg(long)]
        threshold: Option<u64>,
        #[command(flatten)]
        chain: ChainOpt,
    },
    /// New market parameters; those not given keep their current values.
    Parameters {
        /// Share of a lost dispute's forfeited deposit that is burned, in basis points.
        #[arg(long)]
        burn_bps: Option<u16>,
        /// Seconds each side has for a move.
        #[arg(long)]
        move_timeout: Option<u64>,
        /// Seconds the referees have to decide.
        #[arg(long)]
        adjudication_timeout: Option<u64>,
        /// Shortest challenge window a job may ask for, in seconds.
        #[arg(long)]
        min_challenge_window: Option<u32>,
        /// Longest challenge window a job may ask for, in seconds.
        #[arg(long)]
        max_challenge_window: Option<u32>,
        #[command(flatten)]
        chain: ChainOpt,
    },
    /// A new stake floor, in ETH (also the least a job may require).
    MinStake {
        /// The floor.
        eth: String,
        #[command(flatten)]
        chain: ChainOpt,
    },
    /// Open registration to every node, or close it to admitted ones.
    Admission {
        /// Open or closed.
        state: AdmissionArg,
        #[command(flatten)]
        chain: ChainOpt,
    },
    /// Admit a node (or, with `--remove`, withdraw its admission).
    Admit {
        /// The node.
        node: Address,
        /// Withdraw the admission instead.
        #[arg(long)]
        remove: bool,
        #[command(flatten)]
        chain: ChainOpt,
    },
}

/// Registration open or closed.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdmissionArg {
    /// Every node may register.
    Open,
    /// Only admitted nodes.
    Closed,
}

pub async fn run_dao(cmd: DaoCommand) -> Result<()> {
    match cmd {
        DaoCommand::Show { chain } => {
            let c = chain.connect_reader().await?;
            let g = c.chain.governance().await?;
            chain.print(governance_json(&g), || governance_text(&g));
        }
        DaoCommand::Propose { change } => {
            let (chain, change) = change.resolve().await?;
            let c = chain.connect().await?;
            let (id, r) = c.chain.propose_change(c.me, &change).await?;
            chain.print(json!({"id": id, "gas": r.gas_used}), || {
                format!("proposal {id}: {change:?} ({} gas)", r.gas_used)
            });
        }
        DaoCommand::Vote { id, vote, chain } => {
            let c = chain.connect().await?;
            let yes = vote == Ballot::Yes;
            let r = c.chain.vote_change(c.me, id, yes).await?;
            chain.print(json!({"id": id, "yes": yes, "gas": r.gas_used}), || {
                format!("proposal {id}: voted {vote:?} ({} gas)", r.gas_used)
            });
        }
        DaoCommand::Execute { id, chain } => {
            let c = chain.connect().await?;
            let r = c.chain.execute_change(c.me, id).await?;
            chain.print(
                json!({"id": id, "executed": true, "gas": r.gas_used}),
                || format!("proposal {id}: executed ({} gas)", r.gas_used),
            );
        }
        DaoCommand::Proposal { id, chain } => {
            let c = chain.connect_reader().await?;
            let p = c.chain.proposal(id).await?;
            chain.print(proposal_json(id, &p), || {
                format!(
                    "proposal {id} by {}: {:?}\nyes {} no {}, {}",
                    p.proposer,
                    p.change,
                    p.yes,
                    p.no,
                    match (p.executed, p.ready_at) {
                        (true, _) => "executed".to_string(),
                        (false, Some(t)) => format!("may execute from {t}"),
                        (false, None) => "quorum not reached".to_string(),
                    }
                )
            });
        }
    }
    Ok(())
}

impl ChangeArg {
    /// The chain options and the change, parameters completed from the rules in force.
    async fn resolve(self) -> Result<(ChainOpt, Change)> {
        Ok(match self {
            ChangeArg::Referees {
                referees,
                threshold,
                chain,
            } => {
                let threshold = threshold.unwrap_or(majority(referees.len()));
                if !strict_majority(threshold, referees.len()) {
                    bail!(
                        "threshold {threshold} of {} referees: it must be a strict majority",
                        referees.len()
                    );
                }
                (
                    chain,
                    Change::Referees {
                        referees,
                        threshold,
                    },
                )
            }
            ChangeArg::Parameters {
                burn_bps,
                move_timeout,
                adjudication_timeout,
                min_challenge_window,
                max_challenge_window,
                chain,
            } => {
                let now = chain.connect_reader().await?.chain.governance().await?;
                let p = now.parameters;
                let change = Change::Parameters(MarketParameters {
                    burn_bps: burn_bps.unwrap_or(p.burn_bps),
                    move_timeout: move_timeout.unwrap_or(p.move_timeout),
                    adjudication_timeout: adjudication_timeout.unwrap_or(p.adjudication_timeout),
                    min_challenge_window: min_challenge_window.unwrap_or(p.min_challenge_window),
                    max_challenge_window: max_challenge_window.unwrap_or(p.max_challenge_window),
                });
                (chain, change)
            }
            ChangeArg::MinStake { eth, chain } => (chain, Change::MinStake(parse_eth(&eth)?)),
            ChangeArg::Admission { state, chain } => (
                chain,
                Change::Admission {
                    open: state == AdmissionArg::Open,
                },
            ),
            ChangeArg::Admit {
                node,
                remove,
                chain,
            } => (
                chain,
                Change::Admit {
                    node,
                    admitted: !remove,
                },
            ),
        })
    }
}

fn governance_json(g: &Governance) -> serde_json::Value {
    let p = &g.parameters;
    json!({
        "dao": g.dao,
        "referees": g.referees,
        "threshold": g.threshold,
        "epoch": g.epoch,
        "burn_bps": p.burn_bps,
        "move_timeout": p.move_timeout,
        "adjudication_timeout": p.adjudication_timeout,
        "min_challenge_window": p.min_challenge_window,
        "max_challenge_window": p.max_challenge_window,
        "min_stake_wei": g.min_stake.to_string(),
        "open": g.open,
    })
}

fn governance_text(g: &Governance) -> String {
    let p = &g.parameters;
    let referees: Vec<String> = g.referees.iter().map(|a| a.to_string()).collect();
    format!(
        "training DAO   {}\nreferees       {} (threshold {}, set {})\nburn           {} bps\n\
         move timeout   {} s\nadjudication   {} s\nchallenge      {}..{} s\nmin stake      {} wei\n\
         admission      {}",
        g.dao
            .map_or("none: the rules never change".to_string(), |a| a
                .to_string()),
        referees.join(", "),
        g.threshold,
        g.epoch,
        p.burn_bps,
        p.move_timeout,
        p.adjudication_timeout,
        p.min_challenge_window,
        p.max_challenge_window,
        g.min_stake,
        if g.open {
            "open"
        } else {
            "admitted nodes only"
        }
    )
}

fn proposal_json(id: u64, p: &Proposal) -> serde_json::Value {
    json!({
        "id": id,
        "change": format!("{:?}", p.change),
        "proposer": p.proposer,
        "yes": p.yes.to_string(),
        "no": p.no.to_string(),
        "ready_at": p.ready_at,
        "executed": p.executed,
    })
}
