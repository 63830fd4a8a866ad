//! The suite's model of a training log: the block behind each commitment, and the Merkle tree
//! a node proves its moves against. c_i is the SHA-256 of block i (block 0 is the header), as
//! with oai-train's logs, so a node can reveal what it committed.

use std::sync::Arc;

use alloy::primitives::{Address, B256};
use oai_core::{Digest, MerkleTree};

use crate::{Chain, JobId, JobResult, Receipt, Result};

/// The SHA-256 of `bytes` as a commitment.
pub fn sha(bytes: &[u8]) -> B256 {
    B256::from(Digest::of(bytes).0)
}

/// Block `step` of an honest run (block 0: its header).
pub fn honest_block(step: u64) -> Vec<u8> {
    format!("honest state after step {step}").into_bytes()
}

/// Block `step` of a run that went wrong at some step.
pub fn forged_block(step: u64) -> Vec<u8> {
    format!("forged state after step {step}").into_bytes()
}

/// What a log's block `i` is, for `i` in `0..=steps`.
pub type Blocks = Arc<dyn Fn(u64) -> Vec<u8> + Send + Sync>;

/// A node's claimed log of `steps` steps: its blocks and the tree over c_1..c_steps.
#[derive(Clone)]
pub struct Claims {
    steps: u64,
    blocks: Blocks,
    tree: Arc<MerkleTree>,
}

impl Claims {
    /// The log whose block `i` is `blocks(i)`.
    pub fn new(steps: u64, blocks: impl Fn(u64) -> Vec<u8> + Send + Sync + 'static) -> Self {
        let leaves: Vec<Digest> = (1..=steps).map(|i| Digest::of(&blocks(i))).collect();
        Claims {
            steps,
            blocks: Arc::new(blocks),
            tree: Arc::new(MerkleTree::new(&leaves)),
        }
    }

    /// The honest run's log.
    pub fn honest(steps: u64) -> Self {
        Self::new(steps, honest_block)
    }

    /// A log honest before step `at` and forged from there on.
    pub fn wrong_from(steps: u64, at: u64) -> Self {
        Self::new(steps, move |i| {
            if i >= at {
                forged_block(i)
            } else {
                honest_block(i)
            }
        })
    }

    /// Steps of the log.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Block `i` (0: the header).
    pub fn block(&self, i: u64) -> Vec<u8> {
        (self.blocks)(i)
    }

    /// c_i.
    pub fn at(&self, i: u64) -> B256 {
        sha(&self.block(i))
    }

    /// The result a node submits for this log.
    pub fn result(&self) -> JobResult {
        JobResult {
            genesis: self.at(0),
            head: self.at(self.steps),
            root: B256::from(self.tree.root().0),
        }
    }

    /// The siblings proving c_i against the root (empty for c_0, the genesis, and c_steps, the
    /// head, which the result names itself).
    pub fn proof(&self, i: u64) -> Vec<B256> {
        if i == 0 || i >= self.steps {
            return Vec::new();
        }
        self.leaf_proof(i - 1)
    }

    /// The siblings proving leaf `leaf` (c_(leaf+1), record `leaf`) against the root.
    pub fn leaf_proof(&self, leaf: u64) -> Vec<B256> {
        self.tree
            .proof(leaf)
            .map(|p| p.siblings.iter().map(|d| B256::from(d.0)).collect())
            .unwrap_or_default()
    }

    /// `node` submits this log for `job`.
    pub async fn submit<C: Chain + ?Sized>(
        &self,
        chain: &C,
        node: Address,
        job: JobId,
    ) -> Result<Receipt> {
        chain
            .submit_result(node, job, &self.block(0), &self.result())
            .await
    }

    /// `node` posts c_i.
    pub async fn bisect<C: Chain + ?Sized>(
        &self,
        chain: &C,
        node: Address,
        job: JobId,
        i: u64,
    ) -> Result<Receipt> {
        chain.bisect(node, job, self.at(i)).await
    }

    /// `node` reveals block `hi` of a dispute found at step `hi - 1`, proving c_(hi-1) and
    /// c_hi.
    pub async fn reveal<C: Chain + ?Sized>(
        &self,
        chain: &C,
        node: Address,
        job: JobId,
        hi: u64,
    ) -> Result<Receipt> {
        let (agreed, at_hi) = (self.proof(hi - 1), self.proof(hi));
        chain
            .reveal(node, job, &self.block(hi), &agreed, &at_hi)
            .await
    }
}
