//! `oai.Agent`: the parties of the optimistic game (a training node, a challenger, a referee),
//! each oai-verify's agent over a `Chain` and a `Store`; `chain.play(agents)` ticks them until
//! every job is settled.

use std::sync::Mutex;

use oai::chain::Address;
use oai::verify::agents::{
    halve_loss_at, play_until_settled, Agent as AgentApi, ChallengerAgent, NodeAgent, Played,
    RefereeAgent,
};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::chain::Chain;
use crate::chain_values::{address, Addr};
use crate::errors::{self, Kind};
use crate::runtime::block_on;
use crate::store::Store;
use crate::verify::strategy;
use oai::verify::AUDIT_SEED_DELAY;

type Boxed = Box<dyn AgentApi>;

/// A party of the game acting for one account: `Agent.node(...)` trains the jobs it claims and
/// answers disputes, `Agent.challenger(...)` audits results and challenges bad ones,
/// `Agent.referee(...)` judges one-step disputes by re-executing the step. Each `tick()` does
/// what is due and returns what it did, one line an action; long work (training, trial steps
/// before a claim, audits) runs in the background (`busy`, `idle()`), so a tick returns at once.
/// An agent keeps only caches, so a new one over the same chain and store picks up where
/// another left off.
#[pyclass(frozen, module = "oai")]
pub struct Agent {
    role: &'static str,
    account: Address,
    inner: Mutex<Option<Boxed>>,
}

impl Agent {
    fn new(role: &'static str, account: Address, agent: Boxed) -> Self {
        Agent {
            role,
            account,
            inner: Mutex::new(Some(agent)),
        }
    }

    /// Take the agent out while it plays (another thread using it meanwhile is an error).
    fn take(&self) -> PyResult<Boxed> {
        self.inner
            .lock()
            .map_err(|_| errors::error(Kind::Oai, "agent lock poisoned"))?
            .take()
            .ok_or_else(|| {
                errors::error(
                    Kind::InvalidInput,
                    format!("the {} agent is busy in another call", self.role),
                )
            })
    }

    fn put_back(&self, agent: Boxed) {
        if let Ok(mut slot) = self.inner.lock() {
            *slot = Some(agent);
        }
    }
}

#[pymethods]
impl Agent {
    /// A training node for `account` (registered with stake). `forge_loss_at_step` makes it a
    /// cheat that reports half the loss it computed at that step, for demonstrations.
    #[staticmethod]
    #[pyo3(signature = (chain, store, account, *, from_block = 0, forge_loss_at_step = None))]
    fn node(
        chain: &Bound<'_, Chain>,
        store: &Bound<'_, Store>,
        account: Addr,
        from_block: u64,
        forge_loss_at_step: Option<u64>,
    ) -> PyResult<Self> {
        let blocks = store.get().inner()?.blocks().clone();
        let mut a = NodeAgent::new(chain.get().contracts().clone(), blocks, account.0)
            .from_block(from_block);
        if let Some(step) = forge_loss_at_step {
            a = a.forging(halve_loss_at(step));
        }
        Ok(Agent::new("node", account.0, Box::new(a)))
    }

    /// A challenger for `account`: audits every submitted result (every step, or `samples`
    /// drawn from the randomness of the block `seed_delay` blocks after the submission;
    /// `parallelism` checkpoint intervals at once) and challenges a rejected one, then plays
    /// the bisection from its own replay.
    #[staticmethod]
    #[pyo3(signature = (
        chain, store, account, *, samples = None, parallelism = 1, seed_delay = AUDIT_SEED_DELAY,
        from_block = 0
    ))]
    #[allow(clippy::too_many_arguments)]
    fn challenger(
        chain: &Bound<'_, Chain>,
        store: &Bound<'_, Store>,
        account: Addr,
        samples: Option<u32>,
        parallelism: usize,
        seed_delay: u64,
        from_block: u64,
    ) -> PyResult<Self> {
        let strategy = strategy(samples, parallelism)?;
        let blocks = store.get().inner()?.blocks().clone();
        let a = ChallengerAgent::new(chain.get().contracts().clone(), blocks, account.0)
            .auditing(strategy, parallelism)
            .audit_seed_delay(seed_delay)
            .from_block(from_block);
        Ok(Agent::new("challenger", account.0, Box::new(a)))
    }

    /// A referee for `account` (one of the adjudicator's referees): re-executes the one step of
    /// a bisected dispute and votes.
    #[staticmethod]
    #[pyo3(signature = (chain, store, account, *, from_block = 0))]
    fn referee(
        chain: &Bound<'_, Chain>,
        store: &Bound<'_, Store>,
        account: Addr,
        from_block: u64,
    ) -> PyResult<Self> {
        let blocks = store.get().inner()?.blocks().clone();
        let a = RefereeAgent::new(chain.get().contracts().clone(), blocks, account.0)
            .from_block(from_block);
        Ok(Agent::new("referee", account.0, Box::new(a)))
    }

    /// `node`, `challenger` or `referee`.
    #[getter]
    fn role(&self) -> &'static str {
        self.role
    }

    /// The account it acts for.
    #[getter]
    fn account(&self) -> String {
        address(&self.account)
    }

    /// One round of work; what it did, one line an action.
    fn tick(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        let mut agent = self.take()?;
        let (agent, did) = block_on(py, async move {
            let did = agent.tick().await;
            (agent, did)
        })?;
        self.put_back(agent);
        did.map_err(errors::verify)
    }

    /// Whether work its ticks started (training, trial steps, audits) still runs in the
    /// background; the tick after it ends takes its outcome.
    #[getter]
    fn busy(&self) -> PyResult<bool> {
        let agent = self.take()?;
        let busy = agent.busy();
        self.put_back(agent);
        Ok(busy)
    }

    /// Wait (without the GIL) until the work its ticks started has finished.
    fn idle(&self, py: Python<'_>) -> PyResult<()> {
        let mut agent = self.take()?;
        let agent = block_on(py, async move {
            agent.idle().await;
            agent
        })?;
        self.put_back(agent);
        Ok(())
    }

    fn __repr__(&self) -> String {
        format!("<oai.Agent {} {}>", self.role, address(&self.account))
    }
}

/// The game's loop on `Chain`.
#[pymethods]
impl Chain {
    /// Tick `agents` (a dict of name to `Agent`, or `(name, agent)` pairs) in turns until every
    /// job posted since `from_block` is paid, slashed or cancelled; after a round in which
    /// nobody did anything, `idle_secs` pass on the chain (challenge windows and move timeouts
    /// run out as they would in time). `progress(name, line)` is called for every action and
    /// `progress(None, line)` when time passes; an exception it raises is re-raised when the
    /// play ends. Returns the rounds played; a tick's error, or `max_rounds` without settling,
    /// raises.
    #[pyo3(signature = (agents, *, idle_secs = 86_401, max_rounds = 200, from_block = 0,
        progress = None))]
    fn play(
        &self,
        py: Python<'_>,
        agents: &Bound<'_, PyAny>,
        idle_secs: u64,
        max_rounds: usize,
        from_block: u64,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<usize> {
        let pairs: Vec<(String, Bound<'_, Agent>)> = match agents.cast::<PyDict>() {
            Ok(d) => d
                .iter()
                .map(|(k, v)| Ok((k.extract()?, v.extract()?)))
                .collect::<PyResult<_>>()?,
            Err(_) => agents
                .try_iter()?
                .map(|p| p?.extract())
                .collect::<PyResult<_>>()?,
        };
        let mut taken = Vec::with_capacity(pairs.len());
        for (name, a) in &pairs {
            match a.get().take() {
                Ok(boxed) => taken.push((name.clone(), boxed)),
                Err(e) => {
                    for ((_, a), (_, boxed)) in pairs.iter().zip(taken) {
                        a.get().put_back(boxed);
                    }
                    return Err(e);
                }
            }
        }
        let chain = self.contracts().clone();
        let (taken, played, failed) = block_on(py, async move {
            let mut failed: Option<PyErr> = None;
            let report = |p: Played<'_>| {
                let (Some(cb), None) = (&progress, &failed) else {
                    return;
                };
                let (name, line) = match p {
                    Played::Did { agent, line } => (Some(agent.to_string()), line.to_string()),
                    Played::Idle { secs } => {
                        (None, format!("nobody had anything to do: {secs} s pass"))
                    }
                };
                if let Err(e) = Python::attach(|py| cb.call1(py, (name, line)).map(drop)) {
                    failed = Some(e);
                }
            };
            let played = play_until_settled(
                &chain, &mut taken, from_block, idle_secs, max_rounds, report,
            )
            .await;
            (taken, played, failed)
        })?;
        for ((_, a), (_, boxed)) in pairs.iter().zip(taken) {
            a.get().put_back(boxed);
        }
        if let Some(e) = failed {
            return Err(e);
        }
        played.map_err(errors::verify)
    }
}
