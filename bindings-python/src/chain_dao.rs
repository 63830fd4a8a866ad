//! The training DAO from Python: the rules in force, changes proposed, voted and executed
//! (a chain deployed with `Chain.embedded(..., dao_members=[...])`).

use oai::chain::{Chain as _, Change, MarketParameters};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::chain::{Chain, Receipt};
use crate::chain_values::{address, int, Addr, Wei};

#[pymethods]
impl Chain {
    /// `member` proposes a change to the training DAO; returns its id. `kind` and its
    /// arguments: `"referees"` (`referees=[...]`, `threshold=None`: a strict majority),
    /// `"parameters"` (any of `burn_bps`, `move_timeout`, `adjudication_timeout`,
    /// `min_challenge_window`, `max_challenge_window`; the others keep their values),
    /// `"min_stake"` (`wei=`), `"admission"` (`open=`), `"admit"` (`node=`, `admitted=True`).
    #[pyo3(signature = (member, kind, *, referees = None, threshold = None, burn_bps = None,
        move_timeout = None, adjudication_timeout = None, min_challenge_window = None,
        max_challenge_window = None, wei = None, open = None, node = None, admitted = true))]
    #[allow(clippy::too_many_arguments)]
    fn propose_change(
        &self,
        py: Python<'_>,
        member: Addr,
        kind: &str,
        referees: Option<Vec<Addr>>,
        threshold: Option<u64>,
        burn_bps: Option<u16>,
        move_timeout: Option<u64>,
        adjudication_timeout: Option<u64>,
        min_challenge_window: Option<u32>,
        max_challenge_window: Option<u32>,
        wei: Option<Wei>,
        open: Option<bool>,
        node: Option<Addr>,
        admitted: bool,
    ) -> PyResult<u64> {
        let missing = |what: &str| PyValueError::new_err(format!("{kind:?} needs {what}="));
        let change = match kind {
            "referees" => {
                let referees: Vec<_> = referees
                    .ok_or_else(|| missing("referees"))?
                    .into_iter()
                    .map(|a| a.0)
                    .collect();
                let threshold = threshold.unwrap_or(oai::chain::majority(referees.len()));
                Change::Referees {
                    referees,
                    threshold,
                }
            }
            "parameters" => {
                let p = self
                    .read(py, |c| async move { c.governance().await })?
                    .parameters;
                Change::Parameters(MarketParameters {
                    burn_bps: burn_bps.unwrap_or(p.burn_bps),
                    move_timeout: move_timeout.unwrap_or(p.move_timeout),
                    adjudication_timeout: adjudication_timeout.unwrap_or(p.adjudication_timeout),
                    min_challenge_window: min_challenge_window.unwrap_or(p.min_challenge_window),
                    max_challenge_window: max_challenge_window.unwrap_or(p.max_challenge_window),
                })
            }
            "min_stake" => Change::MinStake(wei.ok_or_else(|| missing("wei"))?.0),
            "admission" => Change::Admission {
                open: open.ok_or_else(|| missing("open"))?,
            },
            "admit" => Change::Admit {
                node: node.ok_or_else(|| missing("node"))?.0,
                admitted,
            },
            other => {
                return Err(PyValueError::new_err(format!(
                "no change of kind {other:?} (referees, parameters, min_stake, admission, admit)"
            )))
            }
        };
        let (id, _) = self.read(
            py,
            |c| async move { c.propose_change(member.0, &change).await },
        )?;
        Ok(id)
    }

    /// `member` votes on proposed change `id`.
    fn vote_change(
        &self,
        py: Python<'_>,
        member: Addr,
        id: u64,
        support: bool,
    ) -> PyResult<Receipt> {
        self.send(
            py,
            |c| async move { c.vote_change(member.0, id, support).await },
        )
    }

    /// Execute passed change `id` (anyone, once its timelock is over).
    fn execute_change(&self, py: Python<'_>, caller: Addr, id: u64) -> PyResult<Receipt> {
        self.send(py, |c| async move { c.execute_change(caller.0, id).await })
    }

    /// The rules in force: `dao`, `referees`, `threshold`, `epoch`, `burn_bps`,
    /// `move_timeout`, `adjudication_timeout`, `min_challenge_window`, `max_challenge_window`,
    /// `min_stake` (wei), `open`.
    fn governance<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let g = self.read(py, |c| async move { c.governance().await })?;
        let d = PyDict::new(py);
        d.set_item("dao", g.dao.map(|a| address(&a)))?;
        d.set_item(
            "referees",
            g.referees.iter().map(address).collect::<Vec<_>>(),
        )?;
        d.set_item("threshold", g.threshold)?;
        d.set_item("epoch", g.epoch)?;
        let p = g.parameters;
        d.set_item("burn_bps", p.burn_bps)?;
        d.set_item("move_timeout", p.move_timeout)?;
        d.set_item("adjudication_timeout", p.adjudication_timeout)?;
        d.set_item("min_challenge_window", p.min_challenge_window)?;
        d.set_item("max_challenge_window", p.max_challenge_window)?;
        d.set_item("min_stake", int(py, g.min_stake)?)?;
        d.set_item("open", g.open)?;
        Ok(d)
    }
}
