//! What is verified: a node's result (the two CIDs its log starts and ends with) and the terms
//! of the job it answers, read from a chain or given directly.

use oai_chain::{Address, Chain, JobId, JobResult, JobTerms, Receipt, B256, U256};
use oai_core::{ids, Cid, Digest};
use oai_data::dataset::Version;
use oai_data::BlockStore;
use oai_train::{JobSpec, TrainingLog};
use serde::{Deserialize, Serialize};

use crate::Result;

/// A submitted result and the job it claims to answer.
///
/// On chain a result is two commitments (`genesis` c_0 and `head` c_N; its Merkle root binds
/// the dispute game, not what is verified here) and the job's terms
/// name the spec, the dataset version and the step count. With oai-train, c_0 is the digest of
/// the log header's CID and c_N the digest of the last step record's CID, both dag-cbor
/// CIDv1 with sha2-256, so the whole log is reachable from them by content address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submission {
    /// The log header (c_0).
    pub header: Cid,
    /// The last step record (c_N), or the header when the log has no steps.
    pub head: Cid,
    /// The job spec the job asks for.
    pub spec: Cid,
    /// The version root of the dataset the job names.
    pub dataset_root: Digest,
    /// The number of steps the job asks for.
    pub steps: u64,
}

impl Submission {
    /// The submission a chain holds: a job's terms and its result.
    pub fn from_chain(terms: &JobTerms, result: &JobResult) -> Self {
        Self {
            header: cid_of(&result.genesis),
            head: cid_of(&result.head),
            spec: cid_of(&terms.spec),
            dataset_root: Digest(terms.dataset_root.0),
            steps: terms.steps,
        }
    }

    /// The submission of a published log for a job with these terms.
    pub fn for_log(log: &TrainingLog, spec: Cid, dataset_root: Digest, steps: u64) -> Self {
        Self {
            header: log.header,
            head: log.head,
            spec,
            dataset_root,
            steps,
        }
    }

    /// The submission of the log published at `log` against its own spec and dataset, as an
    /// audit of a result nobody posted on chain checks it: the log and its header are loaded
    /// and verified, the dataset's root read from the version the spec names.
    pub async fn of_published<S: BlockStore + ?Sized>(store: &S, log: &Cid) -> Result<Self> {
        let v = oai_train::VerifiedLog::load(store, log).await?;
        let version = Version::open(store, &v.spec.dataset).await?;
        Ok(Self::for_log(
            &v.log,
            v.header.spec,
            version.root(),
            v.spec.steps,
        ))
    }

    /// The result to submit on chain for a published log: the digests of its header and head
    /// and its Merkle root over the step records.
    pub fn chain_result(log: &TrainingLog) -> Result<JobResult> {
        Ok(JobResult {
            genesis: commitment(&log.header)?,
            head: commitment(&log.head)?,
            root: B256::from(log.root.0),
        })
    }
}

/// `node` submits the published `log` for `job`: its result ([`Submission::chain_result`])
/// and its header's bytes, read from `store`, which the chain keeps for every verifier.
pub async fn submit_log<C: Chain + ?Sized, S: BlockStore + ?Sized>(
    chain: &C,
    store: &S,
    node: Address,
    job: JobId,
    log: &TrainingLog,
) -> Result<(JobResult, Receipt)> {
    let result = Submission::chain_result(log)?;
    let header = store.get(&log.header).await?;
    let receipt = chain.submit_result(node, job, &header, &result).await?;
    Ok((result, receipt))
}

/// The chain commitment of a log object: the sha2-256 digest its CID carries.
pub fn commitment(cid: &Cid) -> Result<B256> {
    Ok(B256::from(
        ids::digest_of(cid).map_err(oai_data::Error::from)?.0,
    ))
}

/// The CID of the log object (dag-cbor, sha2-256) whose digest a chain holds.
pub fn cid_of(commitment: &B256) -> Cid {
    ids::cid_v1_of_digest(ids::DAG_CBOR, &Digest(commitment.0))
}

/// How long each phase of a posted job may take, in seconds (a day each by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windows {
    /// Seconds nodes may claim the job once it is open.
    pub claim_window: u32,
    /// Seconds a node has from claiming to submitting.
    pub max_duration: u32,
    /// Seconds anyone may challenge a submission.
    pub challenge_window: u32,
}

impl Windows {
    /// A day, in seconds: the default of each window.
    pub const DAY: u32 = 86_400;
}

impl Default for Windows {
    fn default() -> Self {
        Self {
            claim_window: Self::DAY,
            max_duration: Self::DAY,
            challenge_window: Self::DAY,
        }
    }
}

/// The terms to post for `spec`: the spec is stored in `store` (its CID is returned) and the
/// dataset it names must be there already (its version root goes in the terms, so a node
/// cannot train on another version).
pub async fn job_terms<S: BlockStore + ?Sized>(
    store: &S,
    spec: &JobSpec,
    required_stake: U256,
    windows: Windows,
) -> Result<(Cid, JobTerms)> {
    let version = Version::open(store, &spec.dataset).await?;
    let spec_cid = spec.put(store).await?;
    let terms = JobTerms {
        dataset_root: B256::from(version.root().0),
        spec: commitment(&spec_cid)?,
        steps: spec.steps,
        claim_window: windows.claim_window,
        max_duration: windows.max_duration,
        challenge_window: windows.challenge_window,
        required_stake,
    };
    Ok((spec_cid, terms))
}
