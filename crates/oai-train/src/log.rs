//! The training log: a header, then one hash-chained record per step, and a published summary
//! whose Merkle root over all step records is what a node puts on chain.
//!
//! ```text
//! TrainingLog { header, head, steps, root, checkpoints }
//!                 |       |
//!                 |       StepRecord n-1 --prev--> ... --prev--> StepRecord 0 --prev--> LogHeader
//! ```
//! Every object is canonical DAG-CBOR stored by CID. A record names its predecessor by CID, so
//! changing any byte of any record breaks the chain; the root is the Merkle root over the
//! records' digests in step order (leaf `i` = SHA-256 of record `i`'s bytes), so one step is
//! proven against the published root with log2(n) hashes.
//!
//! Everything a replay starts from is committed by the chain: the weights before step 0 are
//! re-derived from the spec's seed (and must equal [`LogHeader::init`]), and every later
//! checkpoint (weights and optimiser state) is named by CID in the record of the step that
//! produced it ([`StepRecord::checkpoint`]), so the head commits to it. The summary adds nothing
//! a verifier must trust: its checkpoint list and root are checked against the records.

use oai_core::{ids, Cid, Digest, MerkleProof, MerkleTree, Seed};
use oai_data::BlockStore;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::env::ComputeEnv;
use crate::spec::JobSpec;
use crate::{Error, Result};

/// Version of the log format written by this crate (2: records commit their checkpoints).
pub const LOG_FORMAT: u32 = 2;

/// What every step of a run shares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogHeader {
    /// [`LOG_FORMAT`].
    pub format: u32,
    /// The job spec's CID.
    pub spec: Cid,
    /// Where the run computed; replay refuses other compute classes.
    pub env: ComputeEnv,
    /// Names of the committed (trainable) parameters, in commitment order.
    pub params: Vec<String>,
    /// Weights commitment before step 0: the weights the spec's seed gives ([`crate::replay`]
    /// re-derives them and refuses a header that names others).
    pub init: Digest,
}

/// One batch step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Step index (0-based).
    pub step: u64,
    /// CID of the previous record (of the header for step 0).
    pub prev: Cid,
    /// Epoch of the batch.
    pub epoch: u64,
    /// Position of the batch within its epoch (the sampler's step).
    pub batch_step: u64,
    /// Digests of the batch's records, in batch order (a record's CID is the dag-cbor CIDv1 of
    /// its digest; digests, not links, because records live inside dataset chunks).
    pub batch: Vec<Digest>,
    /// Merkle root over the batch's record digests.
    pub batch_root: Digest,
    /// Seed of the step's dropout masks.
    pub dropout_seed: Seed,
    /// Learning rate applied.
    pub lr: f64,
    /// Mean loss of the batch before the update; NaN when it was not finite (stored as null:
    /// DAG-CBOR has no NaN or infinity), and the step was skipped ([`StepRecord::skipped`]).
    #[serde(with = "finite_or_null")]
    pub loss: f32,
    /// Global gradient L2 norm before clipping; NaN when it was not finite or not computed (the
    /// loss was not finite): the step was skipped.
    #[serde(with = "finite_or_null")]
    pub grad_norm: f32,
    /// Weights commitment before the step.
    pub weights_before: Digest,
    /// Weights commitment after the step.
    pub weights_after: Digest,
    /// Per-tensor digests after the step (leaves of `weights_after`), in name order.
    pub tensors: Vec<Digest>,
    /// The checkpoint of the state after this step (weights and optimiser state), where the spec
    /// makes one due ([`JobSpec::checkpoint_due`]): replays of later steps start from it, and a
    /// replay of this step checks it.
    pub checkpoint: Option<Cid>,
}

/// A loss or gradient norm in a record: the number when it is finite, null when not; null reads
/// back as NaN ([`NOT_FINITE`]). A finite value encodes as it always did, so the records of runs
/// without a skipped step keep their bytes.
mod finite_or_null {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f32, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_f32(*v)
        } else {
            s.serialize_none()
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f32, D::Error> {
        Ok(Option::<f32>::deserialize(d)?.unwrap_or(super::NOT_FINITE))
    }
}

/// What a record holds for a loss or gradient norm that was not finite (one NaN, whatever the
/// computation gave, so that logged and replayed values compare bit for bit).
pub const NOT_FINITE: f32 = f32::NAN;

/// Whether a step with this loss and gradient norm was skipped: one of them was not finite.
pub(crate) fn skipped(loss: f32, grad_norm: f32) -> bool {
    !loss.is_finite() || !grad_norm.is_finite()
}

/// A checkpoint the log points to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointRef {
    /// Steps applied to the checkpoint's weights.
    pub step: u64,
    /// The `safetensors` file's CID.
    pub cid: Cid,
}

/// The published summary of a log (its CID names a run's log). Everything in it follows from the
/// records under `head`, and [`VerifiedLog::load`] checks that it does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainingLog {
    /// [`LOG_FORMAT`].
    pub format: u32,
    /// The header's CID.
    pub header: Cid,
    /// The last record's CID (the header's when no step ran).
    pub head: Cid,
    /// Number of steps.
    pub steps: u64,
    /// Merkle root over the step records.
    pub root: Digest,
    /// Checkpoints by increasing step: those the records commit and, when the run stopped
    /// between them, a resume point at `steps` that only [`crate::Trainer::resume`] reads.
    /// The state before step 0 is never listed: it follows from the spec.
    pub checkpoints: Vec<CheckpointRef>,
}

impl TrainingLog {
    /// Store the summary; returns its CID (what [`VerifiedLog::load`] and
    /// [`crate::Trainer::resume`] read). A summary rebuilt by [`VerifiedLog::from_head`] over a
    /// prefix of a log, stored, lets a run resume from that prefix.
    pub async fn put<S: BlockStore + ?Sized>(&self, store: &S) -> Result<Cid> {
        put(store, self).await
    }
}

/// Canonical DAG-CBOR of a log object.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_ipld_dagcbor::to_vec(value).map_err(|e| Error::malformed("log object", e))
}

/// Decode a log object, refusing non-canonical encodings (so one object has one CID).
pub fn decode<T: Serialize + DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T> {
    let v: T = serde_ipld_dagcbor::from_slice(bytes).map_err(|e| Error::malformed(what, e))?;
    if encode(&v)? != bytes {
        return Err(Error::malformed(what, "not canonical DAG-CBOR"));
    }
    Ok(v)
}

pub(crate) async fn put<S: BlockStore + ?Sized, T: Serialize>(store: &S, v: &T) -> Result<Cid> {
    Ok(store.put(ids::DAG_CBOR, encode(v)?.into()).await?)
}

async fn get<S: BlockStore + ?Sized, T: Serialize + DeserializeOwned>(
    store: &S,
    what: &'static str,
    cid: &Cid,
) -> Result<T> {
    decode(what, &store.get(cid).await?)
}

/// The Merkle root over record digests (used for [`StepRecord::batch_root`]).
pub fn batch_root(records: &[Digest]) -> Digest {
    MerkleTree::new(records).root()
}

/// Store `records` as the chain of the log whose header is `header` (with initial weights
/// `init`): each record is linked to its predecessor (`prev`, `weights_before`), its
/// `weights_after` and `batch_root` recomputed from its tensors and batch; then the summary is
/// stored, listing the checkpoints the records commit. Returns the summary's CID and the
/// summary. The trainer writes its log as it goes; this rebuilds one from records (a log
/// converter, or a test that forges a consistent log to see it caught).
pub async fn store_chain<S: BlockStore + ?Sized>(
    store: &S,
    header: Cid,
    init: Digest,
    mut records: Vec<StepRecord>,
) -> Result<(Cid, TrainingLog)> {
    let (mut prev, mut before) = (header, init);
    let (mut leaves, mut checkpoints) = (Vec::new(), Vec::new());
    for r in &mut records {
        r.prev = prev;
        r.weights_before = before;
        r.weights_after = MerkleTree::new(&r.tensors).root();
        r.batch_root = batch_root(&r.batch);
        before = r.weights_after;
        prev = put(store, r).await?;
        leaves.push(ids::digest_of(&prev)?);
        checkpoints.extend(r.committed_checkpoint());
    }
    let log = TrainingLog {
        format: LOG_FORMAT,
        header,
        head: prev,
        steps: records.len() as u64,
        root: MerkleTree::new(&leaves).root(),
        checkpoints,
    };
    Ok((put(store, &log).await?, log))
}

/// A log read from a store with its whole chain checked. It keeps one 32-byte digest a step
/// (the Merkle leaves), not the records: the chain is checked as it is walked, and a record is
/// read back by CID when asked for ([`VerifiedLog::record`]), so auditing a 1,000,000-step log
/// holds about 32 MiB of it, not the ~1.3 GiB its records take.
#[derive(Debug, Clone)]
pub struct VerifiedLog {
    /// The summary's CID.
    pub cid: Cid,
    /// The summary.
    pub log: TrainingLog,
    /// The header.
    pub header: LogHeader,
    /// The job spec the header names.
    pub spec: JobSpec,
    /// Each record's digest (its CID's hash), in step order: the Merkle leaves.
    pub leaves: Vec<Digest>,
}

impl VerifiedLog {
    /// Load the log `cid` and check it: canonical encodings, no more steps than the spec asks
    /// for, the hash chain from head to header, consecutive steps, each step's `weights_before`
    /// equal to the previous `weights_after`, per-tensor digests matching each commitment, batch
    /// roots, the Merkle root, checkpoints committed exactly where the spec makes them due
    /// ([`JobSpec::checkpoint_due`]), and the summary's checkpoint list equal to the committed
    /// ones (plus at most a resume point at its last step). A failure is [`Error::BrokenLog`]
    /// naming the step. Each record is checked as it is read and then dropped; nothing is
    /// allocated by a count the log states: a huge `steps` is refused, not trusted.
    pub async fn load<S: BlockStore + ?Sized>(store: &S, cid: &Cid) -> Result<Self> {
        let log: TrainingLog = get(store, "training log", cid).await?;
        if log.format != LOG_FORMAT {
            return Err(Error::malformed(
                "training log",
                format!("format {} (this build reads {LOG_FORMAT})", log.format),
            ));
        }
        let (header, spec) = header_and_spec(store, &log.header).await?;
        if log.steps > spec.steps {
            return Err(broken(
                spec.steps,
                format!(
                    "the log has {} steps, the spec asks for {}",
                    log.steps, spec.steps
                ),
            ));
        }
        let walked = Walk {
            header: (&log.header, &header),
            spec: &spec,
            steps: Some(log.steps),
        }
        .from(store, &log.head)
        .await?;
        if MerkleTree::root_of(&walked.leaves) != log.root {
            return Err(broken(log.steps, "Merkle root does not match the records"));
        }
        check_summary_checkpoints(&log, &spec, walked.checkpoints)?;
        Ok(Self {
            cid: *cid,
            log,
            header,
            spec,
            leaves: walked.leaves,
        })
    }

    /// Load the log whose header and last record are `header` and `head` (what a result on
    /// chain names), without a published summary: the chain is walked from `head`, at most the
    /// spec's step count deep, and checked like [`VerifiedLog::load`] checks a summary's. The
    /// summary is rebuilt from the records (its CID is computed, not stored); it lists the
    /// committed checkpoints only.
    pub async fn from_head<S: BlockStore + ?Sized>(
        store: &S,
        header: &Cid,
        head: &Cid,
    ) -> Result<Self> {
        let (h, spec) = header_and_spec(store, header).await?;
        let walked = Walk {
            header: (header, &h),
            spec: &spec,
            steps: None,
        }
        .from(store, head)
        .await?;
        let log = TrainingLog {
            format: LOG_FORMAT,
            header: *header,
            head: *head,
            steps: walked.leaves.len() as u64,
            root: MerkleTree::root_of(&walked.leaves),
            checkpoints: walked.checkpoints,
        };
        let cid = ids::cid_v1(ids::DAG_CBOR, &encode(&log)?);
        Ok(Self {
            cid,
            log,
            header: h,
            spec,
            leaves: walked.leaves,
        })
    }

    /// Record `step`, read back from `store` by its CID (checked when the log was loaded; the
    /// store checks the bytes against it).
    pub async fn record<S: BlockStore + ?Sized>(&self, store: &S, step: u64) -> Result<StepRecord> {
        get(store, "step record", &self.record_cid(step)?).await
    }

    /// The canonical bytes of record `step` (whose SHA-256 is its leaf), read back from `store`.
    pub async fn record_bytes<S: BlockStore + ?Sized>(
        &self,
        store: &S,
        step: u64,
    ) -> Result<Vec<u8>> {
        Ok(store.get(&self.record_cid(step)?).await?.to_vec())
    }

    /// Records `range`, read back from `store` in step order. Every record of a long log is a
    /// lot of memory (~1.3 KB a step for a small model): walk a span at a time.
    pub async fn records<S: BlockStore + ?Sized>(
        &self,
        store: &S,
        range: impl std::ops::RangeBounds<u64>,
    ) -> Result<Vec<StepRecord>> {
        let first = match range.start_bound() {
            std::ops::Bound::Included(&s) => s,
            std::ops::Bound::Excluded(&s) => s.saturating_add(1),
            std::ops::Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            std::ops::Bound::Included(&s) => s.saturating_add(1),
            std::ops::Bound::Excluded(&s) => s,
            std::ops::Bound::Unbounded => self.log.steps,
        };
        let mut out = Vec::new();
        for step in first..end {
            out.push(self.record(store, step).await?);
        }
        Ok(out)
    }

    /// The CID of record `step`.
    fn record_cid(&self, step: u64) -> Result<Cid> {
        let leaf = usize::try_from(step)
            .ok()
            .and_then(|i| self.leaves.get(i))
            .ok_or(Error::StepOutOfRange {
                step,
                steps: self.log.steps,
            })?;
        Ok(ids::cid_v1_of_digest(ids::DAG_CBOR, leaf))
    }

    /// The weights commitment before `step` (after `step - 1`): the header's for step 0, else
    /// read from record `step - 1`.
    pub async fn weights_before<S: BlockStore + ?Sized>(
        &self,
        store: &S,
        step: u64,
    ) -> Result<Digest> {
        match step {
            0 => Ok(self.header.init),
            s => Ok(self.record(store, s - 1).await?.weights_after),
        }
    }

    /// The inclusion proof of step `step` against [`TrainingLog::root`], its record read back
    /// from `store`.
    pub async fn prove<S: BlockStore + ?Sized>(&self, store: &S, step: u64) -> Result<StepProof> {
        let record = self.record(store, step).await?;
        let proof = MerkleTree::new(&self.leaves)
            .proof(step)
            .expect("step is in range");
        Ok(StepProof { record, proof })
    }

    /// The last checkpoint a record commits at or before `step`; `None` when there is none,
    /// so that a replay starts from the initial state (which follows from the spec). A resume
    /// point that no record commits is never one.
    pub fn checkpoint_at_or_before(&self, step: u64) -> Option<CheckpointRef> {
        let committed = &self.log.checkpoints[..self.committed_checkpoints()];
        let n = committed.partition_point(|c| c.step <= step);
        n.checked_sub(1).map(|i| committed[i])
    }

    /// How many of the summary's checkpoints the records commit (all but a resume point).
    fn committed_checkpoints(&self) -> usize {
        let n = self.log.checkpoints.len();
        match self.log.checkpoints.last() {
            Some(c) if !self.spec.checkpoint_due(c.step) => n - 1,
            _ => n,
        }
    }
}

/// The header `cid` (of this build's format) and the spec it names.
async fn header_and_spec<S: BlockStore + ?Sized>(
    store: &S,
    cid: &Cid,
) -> Result<(LogHeader, JobSpec)> {
    let header: LogHeader = get(store, "log header", cid).await?;
    if header.format != LOG_FORMAT {
        return Err(Error::malformed(
            "log header",
            format!("format {}", header.format),
        ));
    }
    let spec = JobSpec::get(store, &header.spec).await?;
    Ok((header, spec))
}

/// A walk of a chain from its head down to its header.
struct Walk<'a> {
    /// The header's CID and the header.
    header: (&'a Cid, &'a LogHeader),
    /// The spec the header names.
    spec: &'a JobSpec,
    /// The step count a summary states; `None` takes it from the head record (at most the
    /// spec's).
    steps: Option<u64>,
}

/// What a walk keeps: each record's digest and the checkpoints the records commit, in step order.
struct Walked {
    leaves: Vec<Digest>,
    checkpoints: Vec<CheckpointRef>,
}

impl Walk<'_> {
    /// Read the records from `head` down, each once, and check each as it is read: its size
    /// against the spec and header, its step number, its link to the step after it
    /// (`weights_after` equal to that step's `weights_before`), its own consistency and its
    /// checkpoint; the first step's `weights_before` is the header's initial weights. Only the
    /// digests and the committed checkpoints are kept.
    async fn from<S: BlockStore + ?Sized>(&self, store: &S, head: &Cid) -> Result<Walked> {
        let (header, h) = self.header;
        let (mut leaves, mut checkpoints) = (Vec::new(), Vec::new());
        // the step and weights_before of the record read before this one (the next step)
        let mut after: Option<(u64, Digest)> = None;
        let mut cur = *head;
        while cur != *header {
            let expected = match (after, self.steps) {
                (Some((s, _)), _) => s.checked_sub(1),
                (None, Some(n)) => n.checked_sub(1),
                (None, None) => None,
            };
            let r: StepRecord = get(store, "step record", &cur).await?;
            let step = expected.unwrap_or(r.step);
            if after.is_some() || self.steps.is_some() {
                match expected {
                    None => return Err(broken(0, "chain does not end at the header")),
                    Some(e) if e != r.step => {
                        return Err(broken(e, format!("record holds step {}", r.step)))
                    }
                    Some(_) => {}
                }
            } else if r.step >= self.spec.steps {
                return Err(broken(
                    self.spec.steps,
                    format!(
                        "the chain from the head is longer than the spec's {} steps",
                        self.spec.steps
                    ),
                ));
            }
            // what a record may hold follows from the spec and the header, not from the node:
            // checked as it is read, so a log of oversized records is refused at its first
            if r.batch.len() as u64 != self.spec.batch_size || r.tensors.len() != h.params.len() {
                return Err(broken(
                    step,
                    format!(
                        "the record holds {} batch entries and {} tensor digests, the spec and \
                         header make {} and {}",
                        r.batch.len(),
                        r.tensors.len(),
                        self.spec.batch_size,
                        h.params.len()
                    ),
                ));
            }
            if let Some((s, before)) = after {
                if r.weights_after != before {
                    return Err(broken(s, WEIGHTS_UNLINKED));
                }
            }
            r.check()?;
            if self.spec.checkpoint_due(step + 1) != r.checkpoint.is_some() {
                return Err(broken(
                    step,
                    format!(
                        "the record {} a checkpoint (the spec asks for one every {} steps and \
                         after step {})",
                        if r.checkpoint.is_some() {
                            "commits"
                        } else {
                            "does not commit"
                        },
                        self.spec.checkpoint_every,
                        self.spec.steps
                    ),
                ));
            }
            checkpoints.extend(r.committed_checkpoint());
            leaves.push(ids::digest_of(&cur)?);
            after = Some((step, r.weights_before));
            cur = r.prev;
        }
        match after {
            Some((0, before)) if before != h.init => return Err(broken(0, WEIGHTS_UNLINKED)),
            Some((s, _)) if s > 0 => return Err(broken(s - 1, "chain reaches the header early")),
            None if self.steps.is_some_and(|n| n > 0) => {
                return Err(broken(0, "chain reaches the header early"))
            }
            _ => {}
        }
        leaves.reverse();
        checkpoints.reverse();
        Ok(Walked {
            leaves,
            checkpoints,
        })
    }
}

const WEIGHTS_UNLINKED: &str = "weights_before is not the previous step's weights_after";

/// The summary lists the checkpoints the records commit (`committed`, in step order) and at
/// most one resume point at its last step that no record commits.
fn check_summary_checkpoints(
    log: &TrainingLog,
    spec: &JobSpec,
    mut expected: Vec<CheckpointRef>,
) -> Result<()> {
    let resume_point = log
        .checkpoints
        .last()
        .filter(|c| c.step == log.steps && c.step > 0 && !spec.checkpoint_due(c.step));
    expected.extend(resume_point);
    if expected != log.checkpoints {
        let n = expected.len().min(log.checkpoints.len());
        let at = expected
            .iter()
            .zip(&log.checkpoints)
            .find(|(a, b)| a != b)
            .map(|(a, b)| a.step.min(b.step))
            .or_else(|| expected.get(n).or(log.checkpoints.get(n)).map(|c| c.step))
            .unwrap_or(0);
        return Err(broken(
            at,
            "the summary's checkpoint list is not the one the records commit",
        ));
    }
    Ok(())
}

fn broken(step: u64, reason: impl Into<String>) -> Error {
    Error::BrokenLog {
        step,
        reason: reason.into(),
    }
}

impl StepRecord {
    /// Whether the step was skipped: its loss or gradient norm was not finite, so the weights
    /// and the optimiser state were left as they were.
    pub fn skipped(&self) -> bool {
        skipped(self.loss, self.grad_norm)
    }

    /// The checkpoint this record commits (of the state after its step), if any.
    pub fn committed_checkpoint(&self) -> Option<CheckpointRef> {
        self.checkpoint.map(|cid| CheckpointRef {
            step: self.step + 1,
            cid,
        })
    }

    /// Internal consistency: the tensor digests give `weights_after`, the batch gives
    /// `batch_root`, the learning rate is finite, and a skipped step left the weights as they
    /// were.
    fn check(&self) -> Result<()> {
        let s = self.step;
        if MerkleTree::new(&self.tensors).root() != self.weights_after {
            return Err(broken(s, "tensor digests do not match weights_after"));
        }
        if batch_root(&self.batch) != self.batch_root {
            return Err(broken(s, "batch_root does not match the batch"));
        }
        if !self.lr.is_finite() {
            return Err(broken(s, "non-finite learning rate"));
        }
        if self.skipped() && self.weights_after != self.weights_before {
            return Err(broken(
                s,
                "a skipped step (its loss or gradient norm not finite) changed the weights",
            ));
        }
        Ok(())
    }
}

/// A step record with its inclusion proof against a log root.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepProof {
    /// The record.
    pub record: StepRecord,
    /// Its Merkle proof (leaf = SHA-256 of the record's DAG-CBOR bytes).
    pub proof: MerkleProof,
}

impl StepProof {
    /// Whether the record is step `record.step` of the log with root `root`.
    pub fn verify(&self, root: &Digest) -> bool {
        let Ok(bytes) = encode(&self.record) else {
            return false;
        };
        self.proof.index == self.record.step && self.proof.verify(&Digest::of(&bytes), root)
    }
}
