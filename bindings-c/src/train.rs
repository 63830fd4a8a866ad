//! Training and checking it: train a job spec and publish its log, read a log, replay a step,
//! audit a log with a verification strategy. Logs are named by CID or by run name
//! (`runs/NAME`).

use std::ffi::{c_char, c_void};
use std::ops::ControlFlow;

use oai::core::Seed;
use oai::train::candle::Device;
use oai::train::{run_names, JobSpec, StepOutcome, Trainer, VerifiedLog};
use oai::verify::{Strategy, Submission, Verifier};
use serde_json::json;

use crate::buffers::{opt_str_arg, str_arg, Out};
use crate::runtime::block_on;
use crate::status::{call, oai_status, Error};
use crate::store::{oai_store, store_arg};

/// Called after every training step with the step index, the batch's loss and the `user`
/// pointer given to [`oai_train`], on the thread that called `oai_train`.
#[allow(non_camel_case_types)]
pub type oai_progress = Option<unsafe extern "C" fn(step: u64, loss: f32, user: *mut c_void)>;

/// Train the job spec `spec_json` (JSON, as `oai train spec` writes it; its dataset must be in
/// `store`) on the CPU with the verifiable kernels, every step logged, then publish the log
/// and return its CID in `*log_cid_out` (free with `oai_string_free`). With `run_name`, the
/// head `runs/NAME` names the log too. `progress` (may be NULL) is called after every step.
///
/// # Safety
/// `spec_json` and `run_name` are NULL or NUL-terminated strings; `log_cid_out` is NULL or
/// writable; `progress`, when not NULL, may be called with `user` from this thread.
#[no_mangle]
pub unsafe extern "C" fn oai_train(
    store: *const oai_store,
    spec_json: *const c_char,
    run_name: *const c_char,
    progress: oai_progress,
    user: *mut c_void,
    log_cid_out: *mut *mut c_char,
) -> oai_status {
    call(|| {
        let store = store_arg(store, "store")?;
        // SAFETY: the caller's contract.
        let spec = unsafe { str_arg(spec_json, "spec_json") }?;
        // SAFETY: the caller's contract.
        let run_name = unsafe { opt_str_arg(run_name, "run_name") }?;
        let out = Out::new(log_cid_out, "log_cid_out")?;
        let spec = JobSpec::from_json(spec)?;
        let cid = block_on(async {
            let mut trainer = Trainer::new(store.blocks().clone(), spec, Device::Cpu).await?;
            trainer
                .train(None, |r| {
                    if let Some(f) = progress {
                        // SAFETY: the caller's contract: `f` takes these arguments.
                        unsafe { f(r.step, r.loss, user) };
                    }
                    ControlFlow::Continue(())
                })
                .await?;
            let (cid, _) = match run_name {
                Some(name) => trainer.publish_as(store.repo.refs(), name).await?,
                None => trainer.publish().await?,
            };
            Ok::<_, oai::train::Error>(cid)
        })??;
        out.set_string(&cid.to_string());
        Ok(())
    })
}

/// The training log `log` (a run name or the log's CID), loaded and checked (hash chain,
/// commitments, checkpoints), as JSON in `*json_out` (free with `oai_string_free`):
/// `{"cid", "steps", "spec_cid", "spec", "compute", "checkpoints": [[step, CID], ...],
/// "losses": [...]}` (null for a skipped step). A log that does not check out is
/// `OAI_ERROR_INTEGRITY`.
///
/// # Safety
/// `log` is NULL or a NUL-terminated string; `json_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn oai_log_json(
    store: *const oai_store,
    log: *const c_char,
    json_out: *mut *mut c_char,
) -> oai_status {
    call(|| {
        let store = store_arg(store, "store")?;
        // SAFETY: the caller's contract.
        let log = unsafe { str_arg(log, "log") }?;
        let out = Out::new(json_out, "json_out")?;
        let (v, records) = block_on(async {
            let cid = run_names::resolve(store.repo.refs(), log).await?;
            let v = VerifiedLog::load(store.blocks(), &cid).await?;
            let records = v.records(store.blocks(), ..).await?;
            Ok::<_, oai::train::Error>((v, records))
        })??;
        let value = json!({
            "cid": v.cid.to_string(),
            "steps": v.log.steps,
            "spec_cid": v.header.spec.to_string(),
            "spec": v.spec,
            "compute": v.header.env,
            "checkpoints": v.log.checkpoints.iter()
                .map(|c| json!([c.step, c.cid.to_string()])).collect::<Vec<_>>(),
            "losses": records.iter().map(|r| r.loss).collect::<Vec<_>>(),
        });
        out.set_string(&value.to_string());
        Ok(())
    })
}

/// Re-execute step `step` of the log `log` (run name or CID) on the CPU from the checkpoint
/// before it and compare every field with the log: `*matches_out` is true when replay gave the
/// logged bits. With `outcome_json_out` (may be NULL), the outcome as JSON: `{"match": true,
/// "step", "weights_after": hex}` or `{"match": false, "step", "field", "tensor", "logged",
/// "replayed"}` (the first differing field). A log made on another compute class is
/// `OAI_ERROR_COMPUTE`.
///
/// # Safety
/// `log` is NULL or a NUL-terminated string; `matches_out` is NULL or writable;
/// `outcome_json_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn oai_replay_step(
    store: *const oai_store,
    log: *const c_char,
    step: u64,
    matches_out: *mut bool,
    outcome_json_out: *mut *mut c_char,
) -> oai_status {
    call(|| {
        let store = store_arg(store, "store")?;
        // SAFETY: the caller's contract.
        let log = unsafe { str_arg(log, "log") }?;
        let matches_out = Out::new(matches_out, "matches_out")?;
        let json_out = Out::optional(outcome_json_out);
        let outcome = block_on(async {
            let cid = run_names::resolve(store.repo.refs(), log).await?;
            oai::train::replay_step(&cid, step, store.blocks()).await
        })??;
        let value = match &outcome {
            StepOutcome::Match {
                step,
                weights_after,
            } => json!({"match": true, "step": step, "weights_after": weights_after.to_string()}),
            StepOutcome::Mismatch(m) => json!({
                "match": false,
                "step": m.step,
                "field": m.field.to_string(),
                "tensor": m.tensor,
                "logged": m.logged,
                "replayed": m.replayed,
            }),
        };
        let text = value.to_string();
        matches_out.set(outcome.is_match());
        if let Some(out) = json_out {
            out.set_string(&text);
        }
        Ok(())
    })
}

/// Audit the log `log` (run name or CID) against its own spec and dataset with the strategy
/// `strategy_json`: `{"strategy": "full"}` (every step) or `{"strategy": "sampling",
/// "samples": K}` (K steps drawn from `seed`), replaying `parallelism` (at least 1)
/// checkpoint intervals at once. `*accepted_out` is true when every check passed; with
/// `verdict_json_out` (may be NULL) the verdict as JSON (`{"Accepted": {"sampled", "spans",
/// "replayed_steps"}}` or `{"Rejected": fault}`, naming the first bad step). A forged step is a
/// rejected verdict, not an error; a block nobody serves or another compute class is.
///
/// # Safety
/// `log` and `strategy_json` are NULL or NUL-terminated strings; `accepted_out` is NULL or
/// writable; `verdict_json_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn oai_verify_log(
    store: *const oai_store,
    log: *const c_char,
    strategy_json: *const c_char,
    seed: u64,
    parallelism: usize,
    accepted_out: *mut bool,
    verdict_json_out: *mut *mut c_char,
) -> oai_status {
    call(|| {
        let store = store_arg(store, "store")?;
        // SAFETY: the caller's contract.
        let log = unsafe { str_arg(log, "log") }?;
        // SAFETY: the caller's contract.
        let strategy = unsafe { str_arg(strategy_json, "strategy_json") }?;
        let accepted_out = Out::new(accepted_out, "accepted_out")?;
        let json_out = Out::optional(verdict_json_out);
        let strategy: Strategy = serde_json::from_str(strategy).map_err(|e| {
            Error::invalid(format!(
                "strategy_json {strategy:?}: {e} (give {{\"strategy\": \"full\"}} or \
                 {{\"strategy\": \"sampling\", \"samples\": K}})"
            ))
        })?;
        if parallelism == 0 {
            return Err(Error::invalid("parallelism must be at least 1"));
        }
        let verdict = block_on(async {
            let cid = run_names::resolve(store.repo.refs(), log).await?;
            let sub = Submission::of_published(store.blocks(), &cid).await?;
            Verifier::new(store.blocks().clone())
                .with_parallelism(parallelism)
                .verify(&sub, strategy, &Seed::from_u64(seed))
                .await
        })??;
        let text = serde_json::to_string(&verdict)
            .map_err(|e| Error::new(oai_status::OAI_ERROR_OTHER, e.to_string()))?;
        accepted_out.set(verdict.is_accepted());
        if let Some(out) = json_out {
            out.set_string(&text);
        }
        Ok(())
    })
}
