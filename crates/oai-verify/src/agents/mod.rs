//! The parties as agents: each [`tick`](NodeAgent::tick) reads the chain, does what its role
//! asks for now and says what it did; [`run`] repeats ticks until told to stop. An agent keeps
//! only caches: everything it acts on is read again from the chain and the block store, so an
//! agent that crashes mid-dispute and is started again picks up where the chain stands. Long
//! work (training, trial steps, audits, honest logs) runs in the background, one task per job
//! ([`Agent::busy`], [`Agent::idle`]): a tick answers every move that is due whatever else
//! runs, and one job's error is said once without stopping the others.
//!
//! - [`NodeAgent`]: claims open jobs it can do (the spec and every chunk of its dataset
//!   fetched and checked, the job's step count the spec's, enough free stake) and is willing
//!   to ([`NodeLimits`], and a few trial steps that time a step against the job's duration),
//!   trains,
//!   publishes the log (its blocks stay in the store) and submits the result (the header posted
//!   on chain); answers every bisection move from its log and, once the step is found, reveals
//!   the disputed record with its proofs; times out a silent challenger; finalizes after the
//!   window; posts a record an auditor asks for (a data request); withdraws what it is owed.
//! - [`ChallengerAgent`]: audits every submitted result it has not judged yet (by default a
//!   full replay, in parallel where cores allow); for a rejected one it computes the honest
//!   log ([`crate::game::honest_log`]: the node's records up to the first bad step, recomputed
//!   after it), challenges with its head and, in the bisection, agrees with a commitment
//!   exactly when it is the honest one, whatever the node posts; a log nobody serves it
//!   replaces by the honest log trained from the node's header (on chain); a result whose
//!   header does not answer the job's terms it challenges on its face (no bisection); an
//!   accepted result is never challenged. Times out a silent node, resolves and withdraws.
//! - [`RefereeAgent`]: judges every case waiting for adjudication by re-executing its step
//!   ([`crate::game::referee_move`], the header and the disputed record taken from the chain) and
//!   votes once; on data it lacks it abstains and tries again every tick.

mod challenger;
mod node;
mod referee;

use std::collections::BTreeMap;
use std::time::Duration;

use oai_chain::bindings::TrainingMarket::TrainingMarketErrors;
use oai_chain::bindings::TrainingMarket::TrainingMarketEvents;
use oai_chain::{Address, Chain, Event, JobId, JobStatus, Receipt, Revert, Turn};
use oai_core::ErrorKind;
use oai_data::BlockStore;

use crate::{Error, Result};

pub use challenger::ChallengerAgent;
pub use node::{halve_loss_at, Forgery, NodeAgent, NodeLimits};
pub use referee::RefereeAgent;

/// Ids of the market's jobs, from the `JobPosted` events since `from_block`.
pub async fn job_ids<C: Chain + ?Sized>(chain: &C, from_block: u64) -> Result<Vec<JobId>> {
    Ok(chain
        .events(from_block)
        .await?
        .into_iter()
        .filter_map(|(_, e)| match e {
            Event::Market(TrainingMarketEvents::JobPosted(p)) => p.jobId.try_into().ok(),
            _ => None,
        })
        .collect())
}

/// `Ok(None)` for a revert the market answers when a move is not due yet (no verdict, not timed
/// out): the agent tries again next tick.
fn not_yet(r: oai_chain::Result<Receipt>) -> Result<Option<Receipt>> {
    match r {
        Ok(r) => Ok(Some(r)),
        Err(e) => match e.revert() {
            Some(Revert::Market(
                TrainingMarketErrors::NoVerdict(_) | TrainingMarketErrors::NotTimedOut(_),
            )) => Ok(None),
            _ => Err(e.into()),
        },
    }
}

/// Resolve a dispute waiting for adjudication once the adjudicator has decided, or time out
/// the other side when its move (one of `their_turns`) is overdue; `None` when neither is due.
async fn settle<C: Chain + ?Sized>(
    chain: &C,
    me: Address,
    job: JobId,
    their_turns: &[Turn],
) -> Result<Option<(&'static str, Receipt)>> {
    let Some(d) = chain.dispute(job).await? else {
        return Ok(None);
    };
    if d.turn == Turn::Adjudication {
        return Ok(not_yet(chain.resolve(me, job).await)?.map(|r| ("resolved", r)));
    }
    if their_turns.contains(&d.turn) && chain.now().await? > d.deadline {
        return Ok(not_yet(chain.timeout(me, job).await)?.map(|r| ("timed out the other side", r)));
    }
    Ok(None)
}

/// Withdraw what the market owes `me`, if anything.
async fn withdraw<C: Chain + ?Sized>(chain: &C, me: Address, did: &mut Vec<String>) -> Result<()> {
    let owed = chain.owed(me).await?;
    if !owed.is_zero() {
        chain.withdraw(me).await?;
        did.push(format!("withdrew {owed} wei"));
    }
    Ok(())
}

/// Whether `e` may pass (a node or store that cannot be reached, a block not there yet):
/// the work is tried again next tick rather than given up.
pub(crate) fn transient(e: &Error) -> bool {
    matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::NotFound)
}

/// The errors of single jobs: each is said once (again only when it changes), and the agent
/// goes on with its other jobs.
#[derive(Default)]
struct Failures(BTreeMap<JobId, String>);

impl Failures {
    /// Add to `did` what job `id`'s turn of a tick did, or its error unless that was said
    /// since the job last did something.
    fn report(&mut self, id: JobId, outcome: Result<Option<String>>, did: &mut Vec<String>) {
        match outcome {
            Ok(line) => {
                if line.is_some() {
                    self.0.remove(&id);
                }
                did.extend(line);
            }
            Err(e) => {
                let said = e.to_string();
                if self.0.get(&id) != Some(&said) {
                    did.push(format!("job {id}: error: {said}"));
                    self.0.insert(id, said);
                }
            }
        }
    }
}

/// Something [`run`] can tick.
#[async_trait::async_trait]
pub trait Agent: Send {
    /// One round of work; what it did.
    async fn tick(&mut self) -> Result<Vec<String>>;

    /// Whether work a tick started still runs in the background (training, an audit).
    fn busy(&self) -> bool {
        false
    }

    /// Wait until the work running in the background has finished; a later tick takes its
    /// outcome.
    async fn idle(&mut self) {}
}

macro_rules! agent {
    ($t:ident) => {
        #[async_trait::async_trait]
        impl<C: Chain + Send, S: BlockStore + Clone + Send + Sync + 'static> Agent for $t<C, S> {
            async fn tick(&mut self) -> Result<Vec<String>> {
                $t::tick(self).await
            }

            fn busy(&self) -> bool {
                $t::busy(self)
            }

            async fn idle(&mut self) {
                $t::idle(self).await
            }
        }
    };
}
agent!(NodeAgent);
agent!(ChallengerAgent);
agent!(RefereeAgent);

#[async_trait::async_trait]
impl<A: Agent + ?Sized> Agent for Box<A> {
    async fn tick(&mut self) -> Result<Vec<String>> {
        (**self).tick().await
    }

    fn busy(&self) -> bool {
        (**self).busy()
    }

    async fn idle(&mut self) {
        (**self).idle().await
    }
}

/// What [`play_until_settled`] reports as the play goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Played<'a> {
    /// An agent did something (one line of its [`Agent::tick`]).
    Did {
        /// The agent's name.
        agent: &'a str,
        /// What it did.
        line: &'a str,
    },
    /// Nobody had anything to do: the chain's clock was moved on by `secs`.
    Idle {
        /// Seconds that passed.
        secs: u64,
    },
}

/// Play `agents` in turns on a chain whose clock may be moved (the embedded EVM, a development
/// node) until every job posted since `from_block` is settled (paid, slashed or cancelled).
/// Each round every agent ticks once; after a round in which nobody did anything, `idle_secs`
/// pass on the chain, so challenge windows and move timeouts run out as they would in time;
/// while an agent's work runs in the background ([`Agent::busy`]) the clock stands: the play
/// waits for it and ticks again, so its outcome is acted on before any time passes. Returns
/// the rounds played. A tick's error ends the play; so do `max_rounds` rounds without
/// settling ([`Error::Unsettled`], naming the jobs still open).
pub async fn play_until_settled<C: Chain + ?Sized, N: AsRef<str>>(
    chain: &C,
    agents: &mut [(N, Box<dyn Agent>)],
    from_block: u64,
    idle_secs: u64,
    max_rounds: usize,
    mut report: impl FnMut(Played<'_>),
) -> Result<usize> {
    let mut round = 0;
    while round < max_rounds {
        round += 1;
        // work that was running when the round began may have finished during it: its
        // outcome is taken by the next round's ticks, before any time passes
        let was_working = agents.iter().any(|(_, a)| a.busy());
        let mut busy = false;
        for (name, agent) in agents.iter_mut() {
            for line in agent.tick().await? {
                report(Played::Did {
                    agent: name.as_ref(),
                    line: &line,
                });
                busy = true;
            }
        }
        if busy {
            continue;
        }
        if was_working || agents.iter().any(|(_, a)| a.busy()) {
            for (_, agent) in agents.iter_mut() {
                agent.idle().await;
            }
            continue;
        }
        if unsettled(chain, from_block).await?.is_empty() {
            return Ok(round);
        }
        chain.advance_time(idle_secs).await?;
        report(Played::Idle { secs: idle_secs });
    }
    let open = unsettled(chain, from_block).await?;
    if open.is_empty() {
        return Ok(max_rounds); // settled by the last round's moves
    }
    Err(Error::Unsettled(format!(
        "after {max_rounds} rounds: {}",
        open.join(", ")
    )))
}

/// The jobs posted since `from_block` that are not paid, slashed or cancelled, in words.
async fn unsettled<C: Chain + ?Sized>(chain: &C, from_block: u64) -> Result<Vec<String>> {
    let mut open = Vec::new();
    for id in job_ids(chain, from_block).await? {
        let status = chain.job(id).await?.status;
        if !matches!(
            status,
            JobStatus::Paid | JobStatus::Slashed | JobStatus::Cancelled
        ) {
            open.push(format!("job {id} {status:?}"));
        }
    }
    Ok(open)
}

/// Tick `agent` every `poll` until `stop` resolves, passing what it did to `report`. An error of
/// one tick is reported and the agent goes on (a chain that is down comes back); the loop ends
/// only when `stop` does.
pub async fn run<A: Agent>(
    mut agent: A,
    poll: Duration,
    stop: impl std::future::Future<Output = ()>,
    mut report: impl FnMut(std::result::Result<String, Error>) + Send,
) {
    tokio::pin!(stop);
    loop {
        match agent.tick().await {
            Ok(lines) => lines.into_iter().for_each(|l| report(Ok(l))),
            Err(e) => report(Err(e)),
        }
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(poll) => {}
        }
    }
}
