//! `oai.Trainer`, `oai.Log` and replay outcomes.

use std::ops::ControlFlow;
use std::sync::{Arc, Mutex, MutexGuard};

use numpy::{PyArray1, PyArrayMethods};
use oai::core::Cid;
use oai::train::candle::Device;
use oai::train::{Checkpoint, JobSpec, StepOutcome, VerifiedLog};
use pyo3::exceptions::PyIndexError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde::Serialize;

use crate::errors::{self, parse_cid, Kind};
use crate::records;
use crate::runtime::block_on;
use crate::store::{resolve, Blocks, Store};

type Inner = oai::train::Trainer<Blocks>;

/// A value as Python through its JSON form (dicts, lists, str, numbers).
pub fn json_value<'py, T: Serialize>(py: Python<'py>, v: &T) -> PyResult<Bound<'py, PyAny>> {
    let s = serde_json::to_string(v).map_err(|e| errors::error(Kind::Oai, e.to_string()))?;
    py.import("json")?.call_method1("loads", (s,))
}

/// A job spec from a dict or a JSON string (`oai.spec_json`).
pub fn job_spec(py: Python<'_>, spec: &Bound<'_, PyAny>) -> PyResult<JobSpec> {
    let json: String = py
        .import("oai")?
        .call_method1("spec_json", (spec,))?
        .extract()?;
    JobSpec::from_json(&json).map_err(errors::train)
}

/// A training log by run name (`runs/NAME`) or CID.
pub async fn log_cid(inner: &crate::store::Inner, name_or_cid: &str) -> PyResult<Cid> {
    oai::train::run_names::resolve(inner.repo.refs(), name_or_cid)
        .await
        .map_err(errors::train)
}

fn step_dict<'py>(py: Python<'py>, r: &oai::train::StepReport) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("step", r.step)?;
    d.set_item("loss", r.loss)?;
    d.set_item("grad_norm", r.grad_norm)?;
    d.set_item("lr", r.lr)?;
    let times = PyDict::new(py);
    for (phase, time) in r.times.phases() {
        times.set_item(phase, time.as_secs_f64())?;
    }
    d.set_item("times", times)?;
    Ok(d)
}

/// f32 tensors as numpy arrays, moved (not copied) out of their vectors.
fn arrays<'py>(
    py: Python<'py>,
    tensors: &std::collections::BTreeMap<String, oai::train::candle::Tensor>,
) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    for (name, t) in tensors {
        let shape: Vec<usize> = t.dims().to_vec();
        let values = t
            .flatten_all()
            .and_then(|t| t.to_dtype(oai::train::candle::DType::F32))
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(|e| errors::train(e.into()))?;
        out.set_item(name, PyArray1::from_vec(py, values).reshape(shape)?)?;
    }
    Ok(out)
}

/// Trains a job spec with every step logged: `store.trainer(spec)`, then `step()`, iterate,
/// or `run()`; `publish()` stores the log.
#[pyclass(frozen, module = "oai")]
pub struct Trainer {
    store: Py<Store>,
    inner: Mutex<Inner>,
}

impl Trainer {
    /// The trainer, if the store is open and no other thread is using it.
    fn lock(&self) -> PyResult<MutexGuard<'_, Inner>> {
        self.store.get().inner()?;
        self.inner
            .try_lock()
            .map_err(|_| errors::error(Kind::Oai, "this trainer is in use by another thread"))
    }

    fn step_report(&self, py: Python<'_>) -> PyResult<Option<oai::train::StepReport>> {
        let mut t = self.lock()?;
        if t.step_index() >= t.spec().steps {
            return Ok(None);
        }
        let t = &mut *t;
        block_on(py, t.step())?.map(Some).map_err(errors::train)
    }
}

#[pymethods]
impl Trainer {
    /// Steps done so far.
    #[getter]
    fn step_index(&self) -> PyResult<u64> {
        Ok(self.lock()?.step_index())
    }

    /// Steps the spec asks for.
    #[getter]
    fn steps(&self) -> PyResult<u64> {
        Ok(self.lock()?.spec().steps)
    }

    /// The job spec as a dict.
    #[getter]
    fn spec<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let spec = self.lock()?.spec().clone();
        json_value(py, &spec)
    }

    /// The compute class this trainer's log names.
    #[getter]
    fn compute_class(&self) -> PyResult<String> {
        Ok(self.lock()?.env().class.to_string())
    }

    /// Run one step; returns `{"step", "loss", "grad_norm", "lr", "times"}` (`times`: seconds
    /// by phase of the step: batch, forward, backward, clip, optimizer, hash, log).
    fn step<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let Some(r) = self.step_report(py)? else {
            let steps = self.lock()?.spec().steps;
            return Err(errors::error(
                Kind::InvalidInput,
                format!("all {steps} steps of the spec are done"),
            ));
        };
        step_dict(py, &r)
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let r = self.step_report(py)?;
        r.map(|r| step_dict(py, &r)).transpose()
    }

    /// Run `steps` more steps (default: to the end of the spec). Without `progress` the loop
    /// stays in Rust; with it, `progress(step_dict)` is called after every step (an exception
    /// it raises stops training and propagates). Returns the number of steps run.
    #[pyo3(signature = (steps = None, progress = None))]
    fn run(
        &self,
        py: Python<'_>,
        steps: Option<u64>,
        progress: Option<Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let Some(cb) = progress else {
            let mut t = self.lock()?;
            let t = &mut *t;
            let trained = block_on(py, t.train(steps, |_| ControlFlow::Continue(())))?
                .map_err(errors::train)?;
            return Ok(trained.steps);
        };
        let (start, until) = {
            let t = self.lock()?;
            (t.step_index(), t.stop_at(steps))
        };
        for _ in start..until {
            let Some(r) = self.step_report(py)? else {
                break;
            };
            cb.call1((step_dict(py, &r)?,))?;
        }
        Ok(self.lock()?.step_index() - start)
    }

    /// Publish the log (and a checkpoint to resume from); with `name`, keep it under the head
    /// `runs/NAME` (as `oai train run` does). Returns the log.
    #[pyo3(signature = (name = None))]
    fn publish(&self, py: Python<'_>, name: Option<String>) -> PyResult<Log> {
        let inner = self.store.get().inner()?;
        let mut t = self.lock()?;
        let t = &mut *t;
        let (cid, _) = block_on(py, async move {
            match &name {
                Some(name) => t.publish_as(inner.repo.refs(), name).await,
                None => t.publish().await,
            }
        })?
        .map_err(errors::train)?;
        let store = self.store.clone_ref(py);
        Log::load(py, store, cid)
    }

    /// The current parameters as float32 numpy arrays by name.
    fn tensors<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let t = self.lock()?.tensors();
        arrays(py, &t)
    }

    /// Mean loss and accuracy on `records` (as `import_dataset` takes them): `{"loss",
    /// "accuracy"}`.
    fn evaluate<'py>(
        &self,
        py: Python<'py>,
        records: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let recs = records
            .try_iter()?
            .map(|r| records::record(&r?))
            .collect::<PyResult<Vec<_>>>()?;
        let e = {
            let t = self.lock()?;
            py.detach(|| t.evaluate(&recs).map_err(Box::new))
                .map_err(|e| errors::train(*e))?
        };
        let d = PyDict::new(py);
        d.set_item("loss", e.loss)?;
        d.set_item("accuracy", e.accuracy)?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        match self.lock().map(|t| (t.step_index(), t.spec().steps)) {
            Ok((done, total)) => format!("<oai.Trainer step {done} of {total}>"),
            Err(_) => "<oai.Trainer (unavailable)>".into(),
        }
    }
}

/// A verified training log: its chain, commitments, batch roots and Merkle root checked when
/// it was loaded.
#[pyclass(frozen, module = "oai")]
pub struct Log {
    store: Py<Store>,
    log: Arc<VerifiedLog>,
}

impl Log {
    /// The log, verified when it was loaded.
    pub fn verified(&self) -> &VerifiedLog {
        &self.log
    }

    /// The store the log was loaded from (its records are read back from it).
    pub fn store(&self) -> PyResult<Arc<crate::store::Inner>> {
        self.store.get().inner()
    }

    /// Records `range` of the log, read back from its store.
    fn read_records(
        &self,
        py: Python<'_>,
        range: std::ops::Range<u64>,
    ) -> PyResult<Vec<oai::train::log::StepRecord>> {
        let (inner, log) = (self.store()?, self.log.clone());
        block_on(py, async move { log.records(inner.blocks(), range).await })?
            .map_err(errors::train)
    }

    fn load(py: Python<'_>, store: Py<Store>, cid: Cid) -> PyResult<Self> {
        let inner = store.get().inner()?;
        let log = block_on(
            py,
            async move { VerifiedLog::load(inner.blocks(), &cid).await },
        )?
        .map_err(errors::train)?;
        Ok(Log {
            store,
            log: Arc::new(log),
        })
    }
}

#[pymethods]
impl Log {
    /// The log's CID.
    #[getter]
    fn cid(&self) -> String {
        self.log.cid.to_string()
    }

    /// The Merkle root over the step records.
    #[getter]
    fn root(&self) -> String {
        self.log.log.root.to_string()
    }

    /// The last record's CID.
    #[getter]
    fn head(&self) -> String {
        self.log.log.head.to_string()
    }

    /// The header's CID.
    #[getter]
    fn header(&self) -> String {
        self.log.log.header.to_string()
    }

    /// The job spec's CID.
    #[getter]
    fn spec_cid(&self) -> String {
        self.log.header.spec.to_string()
    }

    /// The job spec as a dict.
    #[getter]
    fn spec<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_value(py, &self.log.spec)
    }

    /// The compute class the log was trained on.
    #[getter]
    fn compute_class(&self) -> String {
        self.log.header.env.class.to_string()
    }

    /// `[(step, checkpoint CID)]` by increasing step.
    #[getter]
    fn checkpoints(&self) -> Vec<(u64, String)> {
        self.log
            .log
            .checkpoints
            .iter()
            .map(|c| (c.step, c.cid.to_string()))
            .collect()
    }

    fn __len__(&self) -> usize {
        usize::try_from(self.log.log.steps).unwrap_or(usize::MAX)
    }

    /// Step record `step` as a dict (negative counts from the end).
    fn __getitem__<'py>(&self, py: Python<'py>, step: i64) -> PyResult<Bound<'py, PyAny>> {
        let n = i64::try_from(self.log.log.steps).unwrap_or(i64::MAX);
        let i = if step < 0 { step + n } else { step };
        if i < 0 || i >= n {
            return Err(PyIndexError::new_err(format!(
                "step {step} out of range (log has {n} steps)"
            )));
        }
        let i = i as u64;
        json_value(py, &self.read_records(py, i..i + 1)?[0])
    }

    /// Every step record as a dict, read back from the store (a long log is a lot of them:
    /// index a step instead).
    fn records<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_value(py, &self.read_records(py, 0..self.log.log.steps)?)
    }

    /// Step `step`'s record with its inclusion proof, as a dict; `"verified"` says whether it
    /// checks against the log root.
    fn prove<'py>(&self, py: Python<'py>, step: u64) -> PyResult<Bound<'py, PyAny>> {
        let (inner, log) = (self.store()?, self.log.clone());
        let p = block_on(py, async move { log.prove(inner.blocks(), step).await })?
            .map_err(errors::train)?;
        let d = json_value(py, &p)?;
        d.set_item("verified", p.verify(&self.log.log.root))?;
        Ok(d)
    }

    /// Re-execute step `step` from the nearest checkpoint and compare it with the log, bit for
    /// bit.
    fn replay(&self, py: Python<'_>, step: u64) -> PyResult<Outcome> {
        let inner = self.store.get().inner()?;
        let cid = self.log.cid;
        let outcome = block_on(py, async move {
            oai::train::replay_step_on(&cid, step, inner.blocks(), Device::Cpu).await
        })?
        .map_err(errors::train)?;
        Ok(Outcome { outcome })
    }

    fn __repr__(&self) -> String {
        format!(
            "<oai.Log {} steps={} root={}>",
            self.log.cid, self.log.log.steps, self.log.log.root
        )
    }
}

/// What replaying a step gave: truthy when the bits match the log.
#[pyclass(frozen, module = "oai")]
pub struct Outcome {
    outcome: StepOutcome,
}

#[pymethods]
impl Outcome {
    /// Whether replay gave the logged bits.
    #[getter]
    fn matched(&self) -> bool {
        self.outcome.is_match()
    }

    fn __bool__(&self) -> bool {
        self.outcome.is_match()
    }

    /// The step replayed (or the first one that differs).
    #[getter]
    fn step(&self) -> u64 {
        match &self.outcome {
            StepOutcome::Match { step, .. } => *step,
            StepOutcome::Mismatch(m) => m.step,
        }
    }

    /// The first differing field (`None` on a match).
    #[getter]
    fn field(&self) -> Option<String> {
        match &self.outcome {
            StepOutcome::Match { .. } => None,
            StepOutcome::Mismatch(m) => Some(m.field.to_string()),
        }
    }

    /// The first differing tensor, where the field has tensors.
    #[getter]
    fn tensor(&self) -> Option<String> {
        match &self.outcome {
            StepOutcome::Match { .. } => None,
            StepOutcome::Mismatch(m) => m.tensor.clone(),
        }
    }

    /// `(logged, replayed)` values of the differing field (`None` on a match).
    #[getter]
    fn values(&self) -> Option<(String, String)> {
        match &self.outcome {
            StepOutcome::Match { .. } => None,
            StepOutcome::Mismatch(m) => Some((m.logged.clone(), m.replayed.clone())),
        }
    }

    fn __repr__(&self) -> String {
        match &self.outcome {
            StepOutcome::Match {
                step,
                weights_after,
            } => format!("<oai.Outcome step {step}: match (weights {weights_after})>"),
            StepOutcome::Mismatch(m) => format!(
                "<oai.Outcome step {}: MISMATCH in {}{}>",
                m.step,
                m.field,
                m.tensor
                    .as_ref()
                    .map(|t| format!(" of {t}"))
                    .unwrap_or_default()
            ),
        }
    }
}

/// The training methods of `Store`.
#[pymethods]
impl Store {
    /// A trainer for `spec` (a dict or a JSON string), on the
    /// spec's dataset or on `dataset` (a name or CID) instead.
    #[pyo3(signature = (spec, *, dataset = None))]
    fn trainer(
        slf: Py<Self>,
        py: Python<'_>,
        spec: &Bound<'_, PyAny>,
        dataset: Option<String>,
    ) -> PyResult<Trainer> {
        let mut job = job_spec(py, spec)?;
        let inner = slf.get().inner()?;
        let t = block_on(py, async move {
            if let Some(d) = dataset {
                job.dataset = resolve(&inner.repo, &d).await?.cid();
            }
            oai::train::Trainer::new(inner.blocks().clone(), job, Device::Cpu)
                .await
                .map_err(errors::train)
        })??;
        Ok(Trainer {
            store: slf,
            inner: Mutex::new(t),
        })
    }

    /// A trainer continuing the log `log` (run name or CID) from its last checkpoint.
    fn resume(slf: Py<Self>, py: Python<'_>, log: String) -> PyResult<Trainer> {
        let inner = slf.get().inner()?;
        let t = block_on(py, async move {
            let cid = log_cid(&inner, &log).await?;
            oai::train::Trainer::resume(inner.blocks().clone(), &cid, Device::Cpu)
                .await
                .map_err(errors::train)
        })??;
        Ok(Trainer {
            store: slf,
            inner: Mutex::new(t),
        })
    }

    /// The training log `log` (run name or CID), verified.
    fn log(slf: Py<Self>, py: Python<'_>, log: String) -> PyResult<Log> {
        let inner = slf.get().inner()?;
        let cid = block_on(py, async move { log_cid(&inner, &log).await })??;
        Log::load(py, slf, cid)
    }

    /// The checkpoint `cid` (a `safetensors` file, every block verified) as `{name: array}`;
    /// with `optimizer=True` the optimiser state too (as `optim/<slot>/<parameter>`).
    #[pyo3(signature = (cid, *, optimizer = false))]
    fn checkpoint<'py>(
        &self,
        py: Python<'py>,
        cid: &str,
        optimizer: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        let cid = parse_cid(cid)?;
        let inner = self.inner()?;
        let c = block_on(py, async move {
            Checkpoint::get(inner.blocks(), &cid, &Device::Cpu).await
        })?
        .map_err(errors::train)?;
        let out = arrays(py, &c.params)?;
        if optimizer {
            let optim: std::collections::BTreeMap<String, _> = c
                .optimizer
                .iter()
                .map(|(k, v)| (format!("optim/{k}"), v.clone()))
                .collect();
            out.update(arrays(py, &optim)?.as_mapping())?;
        }
        Ok(out)
    }
}
