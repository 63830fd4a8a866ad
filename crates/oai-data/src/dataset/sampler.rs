use oai_core::{seed::uniform_below, Cid, Digest, Seed};
use serde::{Deserialize, Serialize};

use super::{Record, RecordProof, Version};
use crate::{BlockStore, Error, Result};

/// Deterministic batches: `(version root, seed, epoch, step)` gives the same record indices on
/// every machine. Each epoch is a Fisher-Yates permutation of all indices drawn from ChaCha20
/// seeded with `seed.derive("oai-sampler" || root || epoch)`; step `s` takes positions
/// `s * batch_size ..` of it; the incomplete last batch is dropped.
#[derive(Debug, Clone)]
pub struct Sampler {
    root: Digest,
    len: u64,
    seed: Seed,
    batch_size: u64,
    cached: Option<(u64, Vec<u64>)>,
}

impl Sampler {
    /// A sampler over a version with `len` records.
    pub fn new(root: Digest, len: u64, seed: Seed, batch_size: u64) -> Result<Self> {
        if batch_size == 0 || batch_size > len {
            return Err(Error::InvalidArgument(format!(
                "batch size {batch_size} must be in 1..={len}"
            )));
        }
        Ok(Self {
            root,
            len,
            seed,
            batch_size,
            cached: None,
        })
    }

    /// A sampler over `version`.
    pub fn for_version(version: &Version, seed: Seed, batch_size: u64) -> Result<Self> {
        Self::new(version.root(), version.len(), seed, batch_size)
    }

    /// Full batches per epoch.
    pub fn steps_per_epoch(&self) -> u64 {
        self.len / self.batch_size
    }

    /// The permutation of epoch `epoch`.
    pub fn permutation(&self, epoch: u64) -> Vec<u64> {
        let mut label = b"oai-sampler".to_vec();
        label.extend_from_slice(self.root.as_bytes());
        label.extend_from_slice(&epoch.to_be_bytes());
        let mut rng = self.seed.derive(&label).rng();
        let mut p: Vec<u64> = (0..self.len).collect();
        for i in (1..self.len).rev() {
            let j = uniform_below(&mut rng, i + 1);
            p.swap(i as usize, j as usize);
        }
        p
    }

    /// Record indices of batch `step` of `epoch`.
    pub fn indices(&mut self, epoch: u64, step: u64) -> Result<Vec<u64>> {
        if step >= self.steps_per_epoch() {
            return Err(Error::InvalidArgument(format!(
                "step {step} past the {} steps of an epoch",
                self.steps_per_epoch()
            )));
        }
        if self.cached.as_ref().map(|(e, _)| *e) != Some(epoch) {
            self.cached = Some((epoch, self.permutation(epoch)));
        }
        let perm = &self.cached.as_ref().expect("just cached").1;
        let s = (step * self.batch_size) as usize;
        Ok(perm[s..s + self.batch_size as usize].to_vec())
    }

    /// Indices for a global step counter (epochs follow one another).
    pub fn indices_at(&mut self, global_step: u64) -> Result<Vec<u64>> {
        let spe = self.steps_per_epoch();
        self.indices(global_step / spe, global_step % spe)
    }

    /// Batch `step` of `epoch` from `version`: its records, each with its CID and inclusion
    /// proof (each chunk read once, [`Version::prove_many`]).
    pub async fn batch<S: BlockStore + ?Sized>(
        &mut self,
        store: &S,
        version: &Version,
        epoch: u64,
        step: u64,
    ) -> Result<Batch> {
        if version.root() != self.root {
            return Err(Error::InvalidArgument(
                "sampler was made for another version".into(),
            ));
        }
        let indices = self.indices(epoch, step)?;
        let mut data = Vec::with_capacity(indices.len());
        let mut records = Vec::with_capacity(indices.len());
        let mut proofs = Vec::with_capacity(indices.len());
        for (record, cid, proof) in version.prove_many(store, &indices).await? {
            data.push(record);
            records.push(cid);
            proofs.push(proof);
        }
        Ok(Batch {
            root: self.root,
            epoch,
            step,
            indices,
            records,
            proofs,
            data,
        })
    }
}

/// A batch as a training log cites it: where it came from, which records, and their proofs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    /// Version root the records are proven against.
    pub root: Digest,
    /// Epoch.
    pub epoch: u64,
    /// Step within the epoch.
    pub step: u64,
    /// Record indices, in batch order.
    pub indices: Vec<u64>,
    /// Record CIDs, in batch order.
    pub records: Vec<Cid>,
    /// Inclusion proofs, in batch order.
    pub proofs: Vec<RecordProof>,
    /// The records themselves, in batch order, as the store gave them (checked against their
    /// chunk). Not serialised: the CIDs name them.
    #[serde(skip)]
    pub data: Vec<Record>,
}

impl Batch {
    /// Check every record's proof against `root` and its index, and that the indices are the
    /// ones `sampler` draws for this epoch and step.
    pub fn verify(&self, root: &Digest, sampler: &mut Sampler) -> Result<()> {
        if &self.root != root {
            return Err(Error::Verification(
                "batch cites another version root".into(),
            ));
        }
        if sampler.indices(self.epoch, self.step)? != self.indices {
            return Err(Error::Verification(
                "batch indices are not the sampler's".into(),
            ));
        }
        if self.records.len() != self.indices.len() || self.proofs.len() != self.indices.len() {
            return Err(Error::Verification(
                "batch lists are of different lengths".into(),
            ));
        }
        for ((i, cid), p) in self.indices.iter().zip(&self.records).zip(&self.proofs) {
            if p.index != *i || !p.verify_cid(cid, root) {
                return Err(Error::Verification(format!(
                    "record {cid} at index {i} does not prove against the root"
                )));
            }
        }
        Ok(())
    }
}
