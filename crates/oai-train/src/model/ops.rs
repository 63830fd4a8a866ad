//! The few layers models are made of, in one place so that the compute they do is easy to
//! audit: matmuls run on the pass's [`Kernels`].

use candle_core::{DType, Tensor};
use oai_core::seed::RngCore;
use oai_core::Seed;

use super::Weights;
use crate::params::unit_f32;
use crate::Kernels;
use crate::Result;
use oai_kernels::mask::MaskMul;
use oai_kernels::output::{self, write_each};

/// `x @ W^T + b` for `x` of any rank (flattened to 2-D around the matmul: rows, as 2-D `x`
/// already is, take no reshape), plus the LoRA branch `scale * (x @ A^T) @ B^T` when the
/// adapters `{name}.lora_a` / `{name}.lora_b` exist.
pub fn linear<W: Weights + ?Sized>(
    k: Kernels,
    p: &W,
    name: &str,
    x: &Tensor,
    lora_scale: Option<f64>,
) -> Result<Tensor> {
    let dims = x.dims().to_vec();
    let (inner, outer) = dims.split_last().expect("linear input has a last dim");
    if outer.len() == 1 {
        return linear_rows(k, p, name, x, lora_scale);
    }
    let y = linear_rows(k, p, name, &x.reshape(((), *inner))?, lora_scale)?;
    let mut out_dims = outer.to_vec();
    out_dims.push(y.dim(1)?);
    Ok(y.reshape(out_dims)?)
}

/// [`linear`] of rows `x2 [n, in]`.
fn linear_rows<W: Weights + ?Sized>(
    k: Kernels,
    p: &W,
    name: &str,
    x2: &Tensor,
    lora_scale: Option<f64>,
) -> Result<Tensor> {
    let mut y = p.linear_weight(name, x2, k)?;
    if let Some(b) = p.get_opt(&format!("{name}.bias")) {
        y = k.add_rows(&y, b)?;
    }
    if let (Some(scale), Some(a), Some(bb)) = (
        lora_scale,
        p.get_opt(&format!("{name}.lora_a")),
        p.get_opt(&format!("{name}.lora_b")),
    ) {
        let delta = k.matmul_t(&k.matmul_t(x2, a)?, bb)?;
        y = (y + delta.affine(scale, 0.0)?)?;
    }
    Ok(y)
}

/// Layer normalisation over the last dim with `{name}.weight` and `{name}.bias`
/// ([`Kernels::layer_norm`]).
pub fn layer_norm<W: Weights + ?Sized>(
    k: Kernels,
    p: &W,
    name: &str,
    x: &Tensor,
) -> Result<Tensor> {
    Ok(k.layer_norm(
        x,
        p.get(&format!("{name}.weight"))?,
        p.get(&format!("{name}.bias"))?,
    )?)
}

/// Inverted dropout whose masks come from the step's seed: site `s` uses the ChaCha20 stream of
/// `seed.derive(s)`, so masks are the same on every machine and independent between sites.
#[derive(Debug, Clone)]
pub struct Dropout {
    seed: Seed,
}

impl Dropout {
    /// Dropout drawing from `seed`.
    pub fn new(seed: Seed) -> Self {
        Self { seed }
    }

    /// The step's seed.
    pub fn seed(&self) -> Seed {
        self.seed
    }

    /// Zero each element of `x` with probability `prob`, scale the rest by `1 / (1 - prob)`.
    pub fn apply(&self, x: &Tensor, prob: f64, site: &str) -> Result<Tensor> {
        if prob <= 0.0 {
            return Ok(x.clone());
        }
        let keep = 1.0 - prob as f32;
        let mask = mask(self.seed.derive(site.as_bytes()), keep, x.elem_count());
        if x.dtype() == DType::F32 && x.device().is_cpu() {
            return Ok(x.contiguous()?.apply_op1(MaskMul(mask.into()))?);
        }
        let mask = Tensor::from_vec(mask, x.shape(), x.device())?.to_dtype(x.dtype())?;
        Ok(x.mul(&mask)?)
    }
}

/// Masks at least this long are drawn by the pool's threads, each from its own position in
/// the stream.
const PARALLEL_MASK: usize = 1 << 14;

/// Element `i` is `1 / keep` when the stream's `i`-th word, as a unit float, is below `keep`,
/// else 0. Drawn in parts, each seeking to its first word: the same mask as one pass.
fn mask(seed: Seed, keep: f32, len: usize) -> Vec<f32> {
    let scale = 1.0 / keep;
    output::by_chunks(len, PARALLEL_MASK, |start, part| {
        let mut rng = seed.rng();
        rng.set_word_pos(start as u128);
        let draws = std::iter::repeat_with(|| rng.next_u32());
        write_each(
            part,
            draws.map(|u| if unit_f32(u) < keep { scale } else { 0.0 }),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Drawn in parts or in one pass, a mask is the same stream of words.
    #[test]
    fn masks_drawn_in_parts_equal_one_pass() {
        let seed = Seed::from_u64(3);
        for len in [
            0,
            1,
            100,
            PARALLEL_MASK - 1,
            PARALLEL_MASK + 7,
            3 * PARALLEL_MASK + 1,
        ] {
            let mut rng = seed.rng();
            let one_pass: Vec<f32> = (0..len)
                .map(|_| match unit_f32(rng.next_u32()) < 0.9 {
                    true => 1.0 / 0.9,
                    false => 0.0,
                })
                .collect();
            assert_eq!(mask(seed, 0.9, len), one_pass, "{len}");
        }
    }

    #[test]
    fn dropout_masks_are_seeded_and_site_specific() {
        let x = Tensor::ones((64, 64), DType::F32, &Device::Cpu).unwrap();
        let d = Dropout::new(Seed::from_u64(9));
        let mask = |site: &str| -> Vec<f32> {
            let m = d.apply(&x, 0.25, site).unwrap();
            m.flatten_all().unwrap().to_vec1().unwrap()
        };
        let (a, b, c) = (mask("l0"), mask("l0"), mask("l1"));
        assert_eq!(a, b);
        assert_ne!(a, c);
        let dropped = a.iter().filter(|v| **v == 0.0).count() as f64 / a.len() as f64;
        assert!((dropped - 0.25).abs() < 0.03, "{dropped}");
        assert!(a
            .iter()
            .all(|v| *v == 0.0 || (*v - 1.0 / 0.75).abs() < 1e-6));
    }
}
