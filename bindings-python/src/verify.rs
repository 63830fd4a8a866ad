//! `store.verify(log)`: audit a published log by replaying it (oai-verify's strategies).

use oai::core::Seed;
use oai::verify::{Strategy, Submission, Verifier};
use pyo3::prelude::*;

use crate::errors::{self, Kind};
use crate::runtime::block_on;
use crate::store::Store;

/// A verifier's conclusion: truthy when accepted; a rejection names the first bad step.
#[pyclass(frozen, module = "oai")]
pub struct Verdict {
    verdict: oai::verify::Verdict,
}

#[pymethods]
impl Verdict {
    /// Whether every check passed.
    #[getter]
    fn accepted(&self) -> bool {
        self.verdict.is_accepted()
    }

    fn __bool__(&self) -> bool {
        self.verdict.is_accepted()
    }

    /// Why it was rejected (`None` when accepted).
    #[getter]
    fn fault(&self) -> Option<String> {
        self.verdict.fault().map(ToString::to_string)
    }

    /// The first bad step, where the fault names one.
    #[getter]
    fn step(&self) -> Option<u64> {
        self.verdict.fault().and_then(|f| f.step())
    }

    /// The steps drawn for the audit, sorted (empty when rejected).
    #[getter]
    fn sampled(&self) -> Vec<u64> {
        match &self.verdict {
            oai::verify::Verdict::Accepted(r) => r.sampled.clone(),
            _ => Vec::new(),
        }
    }

    /// Steps re-executed in all (0 when rejected).
    #[getter]
    fn replayed_steps(&self) -> u64 {
        match &self.verdict {
            oai::verify::Verdict::Accepted(r) => r.replayed_steps,
            _ => 0,
        }
    }

    fn __repr__(&self) -> String {
        match self.verdict.fault() {
            None => format!(
                "<oai.Verdict accepted: {} sampled, {} replayed>",
                self.sampled().len(),
                self.replayed_steps()
            ),
            Some(f) => format!("<oai.Verdict rejected: {f}>"),
        }
    }
}

impl From<oai::verify::Verdict> for Verdict {
    fn from(verdict: oai::verify::Verdict) -> Self {
        Verdict { verdict }
    }
}

/// The strategy of an audit of every step (`samples=None`) or of `samples` sampled steps;
/// zero samples or zero parallelism is `InvalidInputError`.
pub fn strategy(samples: Option<u32>, parallelism: usize) -> PyResult<Strategy> {
    if parallelism == 0 {
        return Err(errors::error(
            Kind::InvalidInput,
            "parallelism must be at least 1",
        ));
    }
    match samples {
        None => Ok(Strategy::Full),
        Some(0) => Err(errors::error(
            Kind::InvalidInput,
            "samples must be at least 1",
        )),
        Some(samples) => Ok(Strategy::Sampling { samples }),
    }
}

/// The verification methods of `Store`.
#[pymethods]
impl Store {
    /// Audit the log `log` (run name or CID) against its own spec and dataset: every step
    /// (`samples=None`) or `samples` steps drawn from `seed`, each replayed from its checkpoint,
    /// `parallelism` checkpoint intervals at once. A forged step is a rejected `Verdict`; an
    /// error (a block nobody serves, another compute class) raises.
    #[pyo3(signature = (log, *, samples = None, seed = 0, parallelism = 1))]
    fn verify(
        slf: Py<Self>,
        py: Python<'_>,
        log: String,
        samples: Option<u32>,
        seed: u64,
        parallelism: usize,
    ) -> PyResult<Verdict> {
        let strategy = strategy(samples, parallelism)?;
        let inner = slf.get().inner()?;
        let verdict = block_on(py, async move {
            let cid = crate::train::log_cid(&inner, &log).await?;
            let store = inner.blocks();
            let sub = Submission::of_published(store, &cid)
                .await
                .map_err(errors::verify)?;
            Verifier::new(store.clone())
                .with_parallelism(parallelism)
                .verify(&sub, strategy, &Seed::from_u64(seed))
                .await
                .map_err(errors::verify)
        })??;
        Ok(Verdict { verdict })
    }
}
