//! Named parameters, their seeded initialisation and the weights commitment.
//!
//! Parameters live in a `BTreeMap`, so every walk over them (init, hashing, gradient norm,
//! optimiser, checkpoint) goes in name order on every machine.

use std::collections::BTreeMap;

use candle_core::{DType, Device, Storage, Tensor, Var};
use oai_core::seed::RngCore;
use oai_core::{Digest, MerkleProof, MerkleTree, Seed};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// How a parameter starts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    /// All zeros.
    Zeros,
    /// All ones.
    Ones,
    /// Uniform in `[-bound, bound)`, drawn from the parameter's own ChaCha20 stream.
    Uniform(f32),
}

/// A parameter the model declares: name, shape and initialiser.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamDef {
    /// Dotted name, e.g. `blocks.0.attn.qkv.weight`.
    pub name: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Initialiser.
    pub init: Init,
}

impl ParamDef {
    /// A parameter definition.
    pub fn new(name: impl Into<String>, shape: &[usize], init: Init) -> Self {
        Self {
            name: name.into(),
            shape: shape.to_vec(),
            init,
        }
    }
}

/// The tensors a model computes with: trainable variables and frozen tensors (a LoRA base).
#[derive(Debug, Clone)]
pub struct Params {
    vars: BTreeMap<String, Var>,
    frozen: BTreeMap<String, Tensor>,
}

impl Params {
    /// Initialise `defs` on `device`: parameter `name` draws from `seed.derive("param/" + name)`,
    /// so its values depend on nothing but the run seed and its own name.
    pub fn init(defs: &[ParamDef], seed: Seed, device: &Device) -> Result<Self> {
        let mut vars = BTreeMap::new();
        for d in defs {
            let n: usize = d.shape.iter().product();
            let values: Vec<f32> = match d.init {
                Init::Zeros => vec![0.0; n],
                Init::Ones => vec![1.0; n],
                Init::Uniform(bound) => {
                    let mut rng = seed.derive(format!("param/{}", d.name).as_bytes()).rng();
                    (0..n)
                        .map(|_| bound * (2.0 * unit_f32(rng.next_u32()) - 1.0))
                        .collect()
                }
            };
            let t = Tensor::from_vec(values, d.shape.as_slice(), device)?;
            if vars.insert(d.name.clone(), Var::from_tensor(&t)?).is_some() {
                return Err(Error::InvalidSpec(format!(
                    "parameter {} declared twice",
                    d.name
                )));
            }
        }
        Ok(Self {
            vars,
            frozen: BTreeMap::new(),
        })
    }

    /// Trainable variables from tensors (a checkpoint), checked against `defs` by name and shape.
    pub fn from_tensors(
        defs: &[ParamDef],
        tensors: BTreeMap<String, Tensor>,
        device: &Device,
    ) -> Result<Self> {
        check_tensors(defs, &tensors)?;
        let mut vars = BTreeMap::new();
        for (name, t) in tensors {
            vars.insert(name, Var::from_tensor(&t.to_device(device)?)?);
        }
        Ok(Self {
            vars,
            frozen: BTreeMap::new(),
        })
    }

    /// Add frozen tensors (they are read by name like variables but never trained or committed).
    pub fn with_frozen(mut self, frozen: BTreeMap<String, Tensor>) -> Self {
        self.frozen = frozen;
        self
    }

    /// The tensor called `name`, if there is one.
    pub fn get_opt(&self, name: &str) -> Option<&Tensor> {
        self.vars
            .get(name)
            .map(Var::as_tensor)
            .or_else(|| self.frozen.get(name))
    }

    /// Trainable variables in name order.
    pub fn vars(&self) -> &BTreeMap<String, Var> {
        &self.vars
    }

    /// Copies of the trainable tensors in name order (for checkpoints). They own their
    /// storage: later updates of the variables do not change them.
    pub fn tensors(&self) -> Result<BTreeMap<String, Tensor>> {
        self.vars
            .iter()
            .map(|(k, v)| Ok((k.clone(), v.as_tensor().copy()?)))
            .collect()
    }

    /// Number of trainable scalars.
    pub fn count(&self) -> usize {
        self.vars.values().map(|v| v.elem_count()).sum()
    }

    /// The weights commitment over the trainable tensors.
    pub fn commitment(&self) -> Result<Commitment> {
        Ok(self.commitment_beside(|| ())?.1)
    }

    /// `first()` on the calling thread while the pool's other threads start hashing, and the
    /// commitment (see [`oai_kernels::pool::map_beside`]).
    pub(crate) fn commitment_beside<A: Send>(
        &self,
        first: impl FnOnce() -> A + Send,
    ) -> Result<(A, Commitment)> {
        Commitment::of_beside(
            self.vars.iter().map(|(k, v)| (k.as_str(), v.as_tensor())),
            first,
        )
    }
}

/// Check that `tensors` (e.g. a checkpoint's) hold exactly the parameters `defs` declare, each
/// F32 of its declared shape ([`Error::Malformed`] naming the first that does not).
pub fn check_tensors(defs: &[ParamDef], tensors: &BTreeMap<String, Tensor>) -> Result<()> {
    for d in defs {
        let t = tensors
            .get(&d.name)
            .ok_or_else(|| Error::malformed("checkpoint", format!("no tensor {}", d.name)))?;
        if t.dims() != d.shape.as_slice() || t.dtype() != DType::F32 {
            return Err(Error::malformed(
                "checkpoint",
                format!(
                    "{} is {:?} {:?}, want F32 {:?}",
                    d.name,
                    t.dtype(),
                    t.dims(),
                    d.shape
                ),
            ));
        }
    }
    if let Some(extra) = tensors.keys().find(|k| !defs.iter().any(|d| &d.name == *k)) {
        return Err(Error::malformed(
            "checkpoint",
            format!("unexpected tensor {extra}"),
        ));
    }
    Ok(())
}

/// A float in `[0, 1)` from the top 24 bits of `x`: exact and portable.
pub(crate) fn unit_f32(x: u32) -> f32 {
    (x >> 8) as f32 * (1.0 / (1u32 << 24) as f32)
}

/// A Merkle commitment to named tensors in name order: leaf `i` is [`tensor_digest`] of the
/// `i`-th tensor, so one tensor can be proven without the others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commitment {
    /// Merkle root over [`Commitment::leaves`].
    pub root: Digest,
    /// Per-tensor digests, in name order.
    pub leaves: Vec<Digest>,
}

impl Commitment {
    /// Commit to `tensors`, which must come in name order.
    pub fn of<'a>(tensors: impl IntoIterator<Item = (&'a str, &'a Tensor)>) -> Result<Self> {
        Ok(Self::of_beside(tensors, || ())?.1)
    }

    /// [`Commitment::of`], with `first()` run on the calling thread beside the hashing.
    fn of_beside<'a, A: Send>(
        tensors: impl IntoIterator<Item = (&'a str, &'a Tensor)>,
        first: impl FnOnce() -> A + Send,
    ) -> Result<(A, Self)> {
        let tensors: Vec<(&str, &Tensor)> = tensors.into_iter().collect();
        if tensors.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(Error::malformed("commitment", "tensors not in name order"));
        }
        let ts: Vec<&Tensor> = tensors.iter().map(|(_, t)| *t).collect();
        let (first, hashes) = data_hashes(&ts, first)?;
        let leaves = tensors
            .iter()
            .zip(hashes)
            .map(|((name, t), data)| leaf(name, t, &data))
            .collect();
        Ok((first, Self::from_leaves(leaves)))
    }

    /// The commitment with these leaves.
    pub fn from_leaves(leaves: Vec<Digest>) -> Self {
        Self {
            root: MerkleTree::new(&leaves).root(),
            leaves,
        }
    }

    /// The proof that leaf `index` is in [`Commitment::root`].
    pub fn prove(&self, index: usize) -> Option<MerkleProof> {
        MerkleTree::new(&self.leaves).proof(index as u64)
    }
}

/// The leaf of one tensor: SHA-256 over `oai-tensor/1`, the name, `f32`, the shape and the
/// BLAKE3 hash of the little-endian data. BLAKE3 hashes the bulk (several GB/s per core, and
/// parallel over large tensors) so that committing to the weights every step stays cheap.
pub fn tensor_digest(name: &str, t: &Tensor) -> Result<Digest> {
    Ok(leaf(name, t, &data_hashes(&[t], || ())?.1[0]))
}

fn leaf(name: &str, t: &Tensor, data: &blake3::Hash) -> Digest {
    let shape: Vec<u8> = t
        .dims()
        .iter()
        .flat_map(|d| (*d as u64).to_le_bytes())
        .collect();
    Digest::of_parts(&[
        b"oai-tensor/1",
        &(name.len() as u64).to_le_bytes(),
        name.as_bytes(),
        b"f32",
        &(t.rank() as u64).to_le_bytes(),
        &shape,
        data.as_bytes(),
    ])
}

/// BLAKE3 of each tensor's f32 values (little-endian), all hashed together on the pool beside
/// `first()`.
fn data_hashes<A: Send>(
    ts: &[&Tensor],
    first: impl FnOnce() -> A + Send,
) -> Result<(A, Vec<blake3::Hash>)> {
    with_le_bytes(ts, |bytes| crate::tree_hash::hash_all_beside(first, bytes))
}

/// `f` of each tensor's f32 values as little-endian bytes: a contiguous f32 CPU tensor is read
/// in place (on a little-endian machine), any other is converted first.
pub(crate) fn with_le_bytes<R>(ts: &[&Tensor], f: impl FnOnce(&[&[u8]]) -> R) -> Result<R> {
    let in_place = |t: &Tensor| {
        let (storage, layout) = t.storage_and_layout();
        matches!(&*storage, Storage::Cpu(_))
            && layout.contiguous_offsets().is_some()
            && t.dtype() == DType::F32
    };
    let converted: Vec<Option<Vec<f32>>> = ts
        .iter()
        .map(|t| match in_place(t) {
            true => Ok(None),
            false => Ok(Some(
                t.flatten_all()?
                    .to_dtype(DType::F32)?
                    .to_device(&Device::Cpu)?
                    .to_vec1::<f32>()?,
            )),
        })
        .collect::<Result<_>>()?;
    let guards: Vec<_> = ts.iter().map(|t| t.storage_and_layout()).collect();
    let mut bytes = Vec::with_capacity(ts.len());
    for ((storage, layout), converted) in guards.iter().zip(&converted) {
        bytes.push(match (converted, &**storage, layout.contiguous_offsets()) {
            (Some(values), ..) => le_bytes(values),
            (None, Storage::Cpu(cpu), Some((start, end))) => {
                le_bytes(&cpu.as_slice::<f32>()?[start..end])
            }
            _ => unreachable!("checked above: a contiguous CPU tensor"),
        });
    }
    let slices: Vec<&[u8]> = bytes.iter().map(|b| b.as_ref()).collect();
    Ok(f(&slices))
}

#[cfg(target_endian = "little")]
fn le_bytes(values: &[f32]) -> std::borrow::Cow<'_, [u8]> {
    std::borrow::Cow::Borrowed(bytemuck::cast_slice(values))
}

#[cfg(target_endian = "big")]
fn le_bytes(values: &[f32]) -> std::borrow::Cow<'_, [u8]> {
    std::borrow::Cow::Owned(values.iter().flat_map(|v| v.to_le_bytes()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Weights;

    fn defs() -> Vec<ParamDef> {
        vec![
            ParamDef::new("b", &[3], Init::Zeros),
            ParamDef::new("a", &[2, 3], Init::Uniform(0.5)),
        ]
    }

    #[test]
    fn init_depends_on_seed_and_name_only() {
        let p = Params::init(&defs(), Seed::from_u64(1), &Device::Cpu).unwrap();
        let q = Params::init(&defs()[1..], Seed::from_u64(1), &Device::Cpu).unwrap();
        let values = |p: &Params| -> Vec<f32> {
            p.get("a")
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap()
        };
        let (a, a2) = (values(&p), values(&q));
        assert_eq!(a, a2);
        assert!(a.iter().all(|v| (-0.5..0.5).contains(v)));
        let r = Params::init(&defs(), Seed::from_u64(2), &Device::Cpu).unwrap();
        assert_ne!(p.commitment().unwrap(), r.commitment().unwrap());
        assert_eq!(p.commitment().unwrap(), p.commitment().unwrap());
    }

    #[test]
    fn commitment_proves_one_tensor() {
        let p = Params::init(&defs(), Seed::from_u64(3), &Device::Cpu).unwrap();
        let c = p.commitment().unwrap();
        let d = tensor_digest("b", p.get("b").unwrap()).unwrap();
        assert!(c.prove(1).unwrap().verify(&d, &c.root));
        assert!(!c.prove(0).unwrap().verify(&d, &c.root));
    }
}
