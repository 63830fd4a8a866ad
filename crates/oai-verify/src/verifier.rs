//! The verifier: load a submitted log once, check it against the job, replay what the strategy
//! asks for (spans in parallel where cores allow), and turn the outcome into a verdict.

use std::sync::Arc;

use futures::stream::{self, StreamExt};
use oai_core::Seed;
use oai_data::dataset::Version;
use oai_data::BlockStore;
use oai_train::candle::Device;
use oai_train::log::{self, LogHeader, LOG_FORMAT};
use oai_train::{
    check_init_on, replay_span_on, Field, JobSpec, Mismatch, StepOutcome, VerifiedLog,
};

use crate::sampling::{audit_steps, plan_spans};
use crate::submission::Submission;
use crate::verdict::{Fault, Report, Strategy, Verdict};
use crate::{Error, Result};

/// Checks submitted results against a block store that holds (or fetches) the log, its
/// checkpoints, the spec and the dataset.
///
/// ```no_run
/// # async fn demo(store: oai_data::MemStore, sub: oai_verify::Submission, randomness: oai_chain::B256) -> oai_verify::Result<()> {
/// use oai_verify::{audit_seed, Strategy, Verifier};
/// let verifier = Verifier::new(store);
/// let seed = audit_seed(&sub, &randomness);
/// let verdict = verifier.verify(&sub, Strategy::Sampling { samples: 16 }, &seed).await?;
/// println!("{verdict:?}");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Verifier<S> {
    store: S,
    device: Device,
    parallelism: usize,
}

impl<S: BlockStore + Clone + Send + Sync + 'static> Verifier<S> {
    /// A verifier replaying on the CPU, one span at a time.
    pub fn new(store: S) -> Self {
        Self {
            store,
            device: Device::Cpu,
            parallelism: 1,
        }
    }

    /// Replay on `device` (native-kernel logs of a GPU class are judged on that GPU).
    pub fn on(mut self, device: Device) -> Self {
        self.device = device;
        self
    }

    /// Replay up to `n` spans at once (at least 1). Spans run as tasks of the Tokio runtime,
    /// so they run in parallel on a multi-threaded one. Each step already uses every core for
    /// its matmuls, so more than one span at a time pays only where steps are small.
    pub fn with_parallelism(mut self, n: usize) -> Self {
        self.parallelism = n.max(1);
        self
    }

    /// Verify `submission` with `strategy`; `seed` draws the sampled steps (derive it with
    /// [`crate::audit_seed`] from randomness made after the submission; [`Strategy::Full`]
    /// ignores it).
    ///
    /// A verdict says what the node did: `Accepted`, or `Rejected` with the first bad step,
    /// field and reason. An `Err` is the verifier's own trouble and never a verdict: a block
    /// nobody serves, a dataset store that lies, a log of a compute class this machine cannot
    /// judge.
    pub async fn verify(
        &self,
        submission: &Submission,
        strategy: Strategy,
        seed: &Seed,
    ) -> Result<Verdict> {
        let vlog =
            match VerifiedLog::from_head(&self.store, &submission.header, &submission.head).await {
                Ok(v) => Arc::new(v),
                Err(e) => return node_fault(e).map(Verdict::Rejected),
            };
        if let Some(fault) = terms_fault(&self.store, submission, &vlog).await? {
            return Ok(Verdict::Rejected(fault));
        }
        let steps = vlog.log.steps;
        let sampled = match strategy {
            Strategy::Full => (0..steps).collect::<Vec<_>>(),
            Strategy::Sampling { samples: 0 } => {
                return Err(Error::InvalidInput(
                    "a sampling audit needs samples > 0".into(),
                ))
            }
            Strategy::Sampling { samples } => audit_steps(seed, steps, samples),
        };
        let checkpoint_of = |s: u64| vlog.checkpoint_at_or_before(s).map_or(0, |c| c.step);
        let spans = match strategy {
            // every interval once, from its checkpoint to the step before the next
            Strategy::Full => {
                let mut ends: Vec<u64> = vlog.log.checkpoints.iter().map(|c| c.step).collect();
                ends.retain(|&e| e > 0 && e <= steps);
                ends.dedup();
                let mut start = 0;
                let mut spans = Vec::new();
                for e in ends.into_iter().chain((steps > 0).then_some(steps)) {
                    if e > start {
                        spans.push((start, e - 1));
                        start = e;
                    }
                }
                spans
            }
            _ => plan_spans(&sampled, checkpoint_of),
        };
        let replayed_steps = spans.iter().map(|(f, l)| l - checkpoint_of(*f) + 1).sum();
        if !spans.iter().any(|(f, _)| checkpoint_of(*f) == 0) {
            // no span starts from the initial state: check it on its own
            match check_init_on(&vlog, &self.store, self.device.clone()).await {
                Ok(Some(m)) => return Ok(Verdict::Rejected(Fault::Step(m))),
                Ok(None) => {}
                Err(e) => return node_fault(e).map(Verdict::Rejected),
            }
        }
        let outcomes: Vec<Result<Option<Fault>>> = stream::iter(spans.iter().copied())
            .map(|(first, last)| {
                let (vlog, store, device) = (vlog.clone(), self.store.clone(), self.device.clone());
                let task = tokio::spawn(async move {
                    replay_span_on(&vlog, first, last, &store, device).await
                });
                async move {
                    match task.await.map_err(|e| Error::Task(e.to_string()))? {
                        Ok(StepOutcome::Match { .. }) => Ok(None),
                        Ok(StepOutcome::Mismatch(m)) => Ok(Some(Fault::Step(m))),
                        Err(e) => node_fault(e).map(Some),
                    }
                }
            })
            .buffered(self.parallelism)
            .collect()
            .await;
        // The first bad step wins, whatever order the spans finished in.
        let mut faults = Vec::new();
        for o in outcomes {
            faults.extend(o?);
        }
        Ok(
            match faults.into_iter().min_by_key(|f| f.step().unwrap_or(0)) {
                Some(f) => Verdict::Rejected(f),
                None => Verdict::Accepted(Report {
                    sampled,
                    spans,
                    replayed_steps,
                }),
            },
        )
    }
}

/// Whether the log answers the job `sub`: what its header shows ([`fault_on_its_face`]) and
/// its step count; the fault when it does not.
pub(crate) async fn terms_fault<S: BlockStore + ?Sized>(
    store: &S,
    sub: &Submission,
    vlog: &VerifiedLog,
) -> Result<Option<Fault>> {
    if let Some(f) = header_fault(store, sub, &vlog.header, &vlog.spec).await? {
        return Ok(Some(f));
    }
    if vlog.log.steps != sub.steps {
        return Ok(Some(Fault::Terms {
            reason: format!(
                "the log has {} steps, the job asks for {}",
                vlog.log.steps, sub.steps
            ),
        }));
    }
    Ok(None)
}

/// A result wrong on its face: the fault its header alone shows against the job (not a log
/// header, another spec, a compute class the spec does not name, a spec of other steps or
/// dataset than the job's); `None` when the header answers the job. The header is read from
/// `store`, where the one the node posted on chain can be put first ([`crate::game::take_posted`]),
/// so the node cannot withhold it. Such a result is disputed with a terms challenge; every
/// other fault (a wrong step, a log of another length) through the step game.
pub async fn fault_on_its_face<S: BlockStore + ?Sized>(
    store: &S,
    sub: &Submission,
) -> Result<Option<Fault>> {
    let bytes = store.get(&sub.header).await?;
    let header = match log::decode::<LogHeader>("log header", &bytes) {
        Ok(h) if h.format == LOG_FORMAT => h,
        Ok(h) => return terms(format!("the header is of log format {}", h.format)),
        Err(e) => return terms(format!("the genesis is not a log header: {e}")),
    };
    if header.spec != sub.spec {
        return terms(format!(
            "the log trains spec {}, the job asks for {}",
            header.spec, sub.spec
        ));
    }
    let spec = JobSpec::get(store, &header.spec).await?;
    header_fault(store, sub, &header, &spec).await
}

fn terms(reason: String) -> Result<Option<Fault>> {
    Ok(Some(Fault::Terms { reason }))
}

/// The terms a log's header and its spec fix: the spec, the compute class, the step count
/// and the dataset the job names.
async fn header_fault<S: BlockStore + ?Sized>(
    store: &S,
    sub: &Submission,
    header: &LogHeader,
    spec: &JobSpec,
) -> Result<Option<Fault>> {
    if header.spec != sub.spec {
        return terms(format!(
            "the log trains spec {}, the job asks for {}",
            header.spec, sub.spec
        ));
    }
    if let Some(f) = class_fault(spec, header) {
        return Ok(Some(f));
    }
    if spec.steps != sub.steps {
        return terms(format!(
            "the spec asks for {} steps, the job for {}",
            spec.steps, sub.steps
        ));
    }
    let version = Version::open(store, &spec.dataset).await?;
    if version.root() != sub.dataset_root {
        return terms(format!(
            "the spec's dataset has root {}, the job names {}",
            version.root(),
            sub.dataset_root
        ));
    }
    Ok(None)
}

/// A log computed in another compute class than the one its spec names: wrong on its face,
/// whether or not this machine could replay that class.
pub(crate) fn class_fault(spec: &JobSpec, header: &LogHeader) -> Option<Fault> {
    let named = spec.compute_class.as_ref()?;
    (&header.env.class != named).then(|| Fault::Terms {
        reason: format!(
            "the log was computed in class {}, the spec names {named}",
            header.env.class
        ),
    })
}

/// The fault an error of the node's making is, or the error back when it is the verifier's own.
pub(crate) fn node_fault(e: oai_train::Error) -> Result<Fault> {
    use oai_train::Error as E;
    match e {
        E::BrokenLog { step, reason } => Ok(Fault::Log {
            step: Some(step),
            reason,
        }),
        // The bytes are what the node committed (every read is checked against its CID).
        E::Malformed { what, reason } => Ok(Fault::Log {
            step: None,
            reason: format!("{what}: {reason}"),
        }),
        // A checkpoint a record commits whose weights are not the record's: the step that
        // produced it is the bad one.
        E::CheckpointMismatch(m) => Ok(Fault::Step(Mismatch {
            step: m.step.saturating_sub(1),
            field: Field::Checkpoint,
            tensor: None,
            logged: m.cid.to_string(),
            replayed: format!("weights {} (the record says {})", m.actual, m.expected),
        })),
        other => Err(other.into()),
    }
}
