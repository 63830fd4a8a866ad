//! `oai._native`: the compiled half of the `oai` Python package (PyO3, abi3).
//!
//! The pure-Python layer in `python/oai` re-exports these classes, defines the exception
//! hierarchy (the `errors` module raises its classes) and checks the CPU before this module loads. Every
//! call that computes or does I/O runs on one Tokio runtime per process (the `runtime` module) with the
//! GIL released.

use pyo3::prelude::*;

mod agents;
mod chain;
mod chain_dao;
mod chain_values;
mod dataset;
mod errors;
mod generate;
mod rag;
mod records;
mod runtime;
mod store;
mod train;
mod verify;

/// The module `oai._native`.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<store::Store>()?;
    m.add_class::<dataset::Dataset>()?;
    m.add_class::<dataset::Proof>()?;
    m.add_class::<dataset::Batch>()?;
    m.add_class::<dataset::Diff>()?;
    m.add_class::<train::Trainer>()?;
    m.add_class::<train::Log>()?;
    m.add_class::<train::Outcome>()?;
    m.add_class::<verify::Verdict>()?;
    m.add_class::<rag::Embedder>()?;
    m.add_class::<rag::Index>()?;
    m.add_class::<rag::SearchHit>()?;
    m.add_class::<rag::IngestReport>()?;
    m.add_class::<rag::Passage>()?;
    m.add_class::<rag::Answer>()?;
    m.add_class::<rag::Knowledge>()?;
    m.add_class::<generate::Generator>()?;
    m.add_class::<generate::TextStream>()?;
    m.add_class::<chain::Chain>()?;
    m.add_class::<chain::Receipt>()?;
    m.add_class::<chain::Job>()?;
    m.add_class::<chain::NodeStake>()?;
    m.add_class::<chain::Dispute>()?;
    m.add_class::<chain_values::ChainEvent>()?;
    m.add_class::<agents::Agent>()?;
    m.add_function(wrap_pyfunction!(compute_class, m)?)?;
    m.add_function(wrap_pyfunction!(keep_freed_memory, m)?)?;
    m.add_function(wrap_pyfunction!(runtime::_after_fork_in_child, m)?)?;
    Ok(())
}

/// Keep freed heap memory in this process (glibc on Linux; a no-op elsewhere): training steps
/// run up to twice as fast, and the process keeps its peak heap. It changes the allocator of
/// the whole Python process, so oai never does it unasked: call it once in a process that
/// trains.
#[pyfunction]
fn keep_freed_memory() {
    oai::train::keep_freed_memory();
}

/// The compute class of this machine's CPU (what a log trained here names).
#[pyfunction]
fn compute_class() -> String {
    oai::train::ComputeEnv::detect(&oai::train::candle::Device::Cpu, Default::default())
        .class
        .to_string()
}
