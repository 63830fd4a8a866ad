//! Checkpoints: parameters and optimiser state in one `safetensors` file, stored as a UnixFS file
//! (so `ipfs cat CID > ckpt.safetensors` and Python's `safetensors.safe_open` read it unchanged).
//!
//! Tensors are stored under their parameter names; optimiser state under
//! `optim/<slot>/<parameter>`; the header metadata holds one key, `oai`, with
//! `{"format":"oai-checkpoint/1","step":N}`. The file's bytes are a pure function of its
//! contents, so equal weights give equal checkpoint CIDs.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use candle_core::{Device, Tensor};
use oai_core::Cid;
use oai_data::unixfs::{self, Profile};
use oai_data::BlockStore;
use safetensors::tensor::{Dtype, SafeTensors, View};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

const FORMAT: &str = "oai-checkpoint/1";
const OPTIM_PREFIX: &str = "optim/";

/// Parameters and optimiser state after `step` steps.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// Steps applied to these weights.
    pub step: u64,
    /// Trainable parameters by name.
    pub params: BTreeMap<String, Tensor>,
    /// Optimiser state by `<slot>/<parameter>`.
    pub optimizer: BTreeMap<String, Tensor>,
}

#[derive(Serialize, Deserialize)]
struct Meta {
    format: String,
    step: u64,
}

/// One tensor's little-endian f32 bytes, as safetensors serialises them.
struct F32View<'a> {
    shape: Vec<usize>,
    data: &'a [u8],
}

impl View for &F32View<'_> {
    fn dtype(&self) -> Dtype {
        Dtype::F32
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

impl Checkpoint {
    /// The `safetensors` bytes (the tensors are read in place, copied once into the file).
    pub fn encode(&self) -> Result<Vec<u8>> {
        let named: BTreeMap<String, &Tensor> = self
            .params
            .iter()
            .map(|(k, t)| (k.clone(), t))
            .chain(
                self.optimizer
                    .iter()
                    .map(|(k, t)| (format!("{OPTIM_PREFIX}{k}"), t)),
            )
            .collect();
        let meta = serde_json::to_string(&Meta {
            format: FORMAT.into(),
            step: self.step,
        })
        .expect("meta serialises");
        let info = HashMap::from([("oai".to_string(), meta)]);
        let tensors: Vec<&Tensor> = named.values().copied().collect();
        crate::params::with_le_bytes(&tensors, |bytes| {
            let views: Vec<(&str, F32View<'_>)> = named
                .iter()
                .zip(bytes)
                .map(|((name, t), data)| {
                    let shape = t.dims().to_vec();
                    (name.as_str(), F32View { shape, data })
                })
                .collect();
            safetensors::serialize(views.iter().map(|(k, v)| (*k, v)), Some(info))
        })?
        .map_err(|e| Error::malformed("checkpoint", e))
    }

    /// Parse `safetensors` bytes onto `device`.
    pub fn decode(bytes: &[u8], device: &Device) -> Result<Self> {
        let st = SafeTensors::deserialize(bytes).map_err(|e| Error::malformed("checkpoint", e))?;
        let (_, header) =
            SafeTensors::read_metadata(bytes).map_err(|e| Error::malformed("checkpoint", e))?;
        let meta: Meta = header
            .metadata()
            .as_ref()
            .and_then(|m| m.get("oai"))
            .ok_or_else(|| Error::malformed("checkpoint", "no `oai` metadata"))
            .and_then(|s| serde_json::from_str(s).map_err(|e| Error::malformed("checkpoint", e)))?;
        if meta.format != FORMAT {
            return Err(Error::malformed(
                "checkpoint",
                format!("format {:?}, want {FORMAT:?}", meta.format),
            ));
        }
        let mut params = BTreeMap::new();
        let mut optimizer = BTreeMap::new();
        for (name, view) in st.tensors() {
            if view.dtype() != Dtype::F32 {
                return Err(Error::malformed(
                    "checkpoint",
                    format!("{name} is {:?}, want F32", view.dtype()),
                ));
            }
            let values: Vec<f32> = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            let t = Tensor::from_vec(values, view.shape(), device)?;
            match name.strip_prefix(OPTIM_PREFIX) {
                Some(k) => optimizer.insert(k.to_string(), t),
                None => params.insert(name, t),
            };
        }
        Ok(Self {
            step: meta.step,
            params,
            optimizer,
        })
    }

    /// The first entry in which `other` differs from this checkpoint, bit for bit: `step`, a
    /// parameter name, or `optim/<slot>/<parameter>` (names in that order, each map sorted);
    /// `None` when they hold the same values.
    pub fn first_difference(&self, other: &Checkpoint) -> Result<Option<String>> {
        if self.step != other.step {
            return Ok(Some("step".into()));
        }
        let named = |c: &Checkpoint| -> Vec<(String, Tensor)> {
            let params = c.params.iter().map(|(k, t)| (k.clone(), t.clone()));
            let optim = c
                .optimizer
                .iter()
                .map(|(k, t)| (format!("{OPTIM_PREFIX}{k}"), t.clone()));
            params.chain(optim).collect()
        };
        let (a, b) = (named(self), named(other));
        for i in 0..a.len().max(b.len()) {
            let (Some((na, ta)), Some((nb, tb))) = (a.get(i), b.get(i)) else {
                let (n, _) = a.get(i).or(b.get(i)).expect("one of them has entry i");
                return Ok(Some(n.clone()));
            };
            if na != nb {
                return Ok(Some(na.min(nb).clone()));
            }
            if ta.dims() != tb.dims() || bits(ta)? != bits(tb)? {
                return Ok(Some(na.clone()));
            }
        }
        Ok(None)
    }

    /// Store as a UnixFS file (default import profile); returns its CID.
    pub async fn put<S: BlockStore + ?Sized>(&self, store: &S) -> Result<Cid> {
        Self::put_encoded(store, &self.encode()?).await
    }

    /// Store checkpoint bytes ([`Checkpoint::encode`]) as a UnixFS file; returns its CID.
    pub(crate) async fn put_encoded<S: BlockStore + ?Sized>(
        store: &S,
        bytes: &[u8],
    ) -> Result<Cid> {
        Ok(unixfs::import_bytes(store, bytes, Profile::default())
            .await?
            .root)
    }

    /// Load a stored checkpoint (every block verified) onto `device`, whatever its size: for
    /// checkpoints of your own. One named by someone else is read with
    /// [`Checkpoint::get_within`].
    pub async fn get<S: BlockStore + Clone + 'static>(
        store: &S,
        cid: &Cid,
        device: &Device,
    ) -> Result<Self> {
        Self::get_within(store, cid, device, u64::MAX).await
    }

    /// Load a stored checkpoint of at most `limit` bytes (what the spec implies:
    /// [`crate::Footprint::checkpoint_bytes`]). A larger file is refused from its root block,
    /// before its bytes are read; a file larger than it declares, or not a well-formed UnixFS
    /// file, is [`Error::Malformed`]: the bytes are what its CID names, so whoever named it
    /// named a bad checkpoint. A block nobody serves stays a `NotFound`.
    pub async fn get_within<S: BlockStore + Clone + 'static>(
        store: &S,
        cid: &Cid,
        device: &Device,
        limit: u64,
    ) -> Result<Self> {
        use oai_data::Error as D;
        let bytes = unixfs::read_to_vec_within(store, cid, "checkpoint", limit)
            .await
            .map_err(|e| match e {
                e @ (D::TooLarge { .. } | D::Truncated { .. } | D::Malformed { .. }) => {
                    Error::malformed("checkpoint", format!("{cid}: {e}"))
                }
                e => e.into(),
            })?;
        Self::decode(&bytes, device)
    }
}

/// A tensor's values as their f32 bit patterns (so -0.0 and NaN payloads count).
fn bits(t: &Tensor) -> Result<Vec<u32>> {
    Ok(t.flatten_all()?
        .to_dtype(candle_core::DType::F32)?
        .to_vec1::<f32>()?
        .into_iter()
        .map(f32::to_bits)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_deterministic_bytes() {
        let d = Device::Cpu;
        let c = Checkpoint {
            step: 7,
            params: BTreeMap::from([
                ("b".into(), Tensor::new(&[1f32, 2.0], &d).unwrap()),
                ("a".into(), Tensor::new(&[[3f32], [4.0]], &d).unwrap()),
            ]),
            optimizer: BTreeMap::from([(
                "m/a".into(),
                Tensor::new(&[[0.5f32], [0.25]], &d).unwrap(),
            )]),
        };
        let bytes = c.encode().unwrap();
        assert_eq!(bytes, c.encode().unwrap());
        let back = Checkpoint::decode(&bytes, &d).unwrap();
        assert_eq!(back.step, 7);
        assert_eq!(
            back.params["a"].to_vec2::<f32>().unwrap(),
            vec![vec![3.0], vec![4.0]]
        );
        assert_eq!(back.optimizer["m/a"].dims(), &[2, 1]);
        assert!(matches!(
            Checkpoint::decode(&bytes[..bytes.len() - 1], &d),
            Err(Error::Malformed { .. })
        ));
    }
}
