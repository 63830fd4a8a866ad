//! The verifiable kernels of oai: the ops a training step computes with, giving the same bits
//! on every machine of one instruction-set class.
//!
//! [`Kernels::Verifiable`] (the default) gives the same bits on every machine of one
//! instruction-set class: matmuls (forward and backward) sum in fixed k-slices whatever the
//! cache geometry, and exp / log / tanh come from the pure-Rust `libm` instead of the system C
//! library. [`Kernels::Native`] is plain candle: faster on some shapes, runs on GPUs, but its
//! bits also depend on the CPU's cache geometry (or the GPU).
//!
//! Everything else a model does is elementwise IEEE arithmetic (add, mul, div, sqrt: correctly
//! rounded everywhere), a sum over rows in a fixed order (the gradients of biases and layer-norm
//! weights) or a candle reduction, whose order depends only on the instruction set (recorded in
//! the compute class).
//!
//! The bits rest on the exact versions of the crates below this one, which it pins: candle
//! (`=0.11.1`, whose summation orders the fused ops repeat), gemm (`=0.19.0`) and libm
//! (`=0.2.16`); [`VERIFIABLE_KERNELS`] names them, and a test checks it against `Cargo.lock`.
//!
//! Besides [`Kernels`], the building blocks a trainer uses: the thread [`pool`] every parallel
//! kernel runs on, the gradient sink of the matmul ([`grad_sink`]), attention heads laid out
//! without copies ([`heads`]), rotary position embeddings ([`rope`]), a masked multiply ([`mask`]), output buffers written once
//! ([`output`]), candle's own summation order ([`candle_order`]) and the seeded tensors and bit
//! comparisons of their tests ([`testing`]).
//!
//! `unsafe` is denied here except where an item allows it with its reason: the call into gemm,
//! the AVX-512 intrinsics and the writes into output buffers not yet initialised; each unsafe
//! block has a `SAFETY:` comment and each unsafe function a `# Safety` section.

#[cfg(target_arch = "x86_64")]
mod avx512;
pub mod candle_order;
mod cross_entropy;
mod error;
mod gelu;
pub mod grad_sink;
pub mod heads;
mod layer_norm;
#[cfg(target_arch = "x86_64")]
mod libm_avx512;
pub mod mask;
mod matmul;
pub mod output;
pub mod pool;
pub mod quantized;
pub mod rope;
mod rows;
mod softmax;
pub mod testing;
mod unary;

use candle_core::{DType, Tensor, D};
use serde::{Deserialize, Serialize};

pub use error::{Error, Result};
pub use matmul::SLICE;

use cross_entropy::CrossEntropy;
use gelu::Gelu;
use layer_norm::NormalizeCentred;
use matmul::{FixedSliceMatmul, FixedSliceMatmulT};
use rows::RowOp;
use softmax::AttentionWeights;
use unary::Unary;

/// Version of the verifiable kernels: their summation orders and the crates they rest on. Logs
/// record it; replay refuses a log written with another version.
pub const VERIFIABLE_KERNELS: &str =
    "oai-verifiable-1/fixed-k256/gemm-0.19.0/libm-0.2/candle-0.11.1";

/// The tensor library and kernels native runs depend on.
pub const NATIVE_KERNELS: &str = "candle-0.11.1/gemm-0.19";

/// Which kernels a run uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kernels {
    /// Machine-independent summation orders (CPU only). The default for logged training.
    #[default]
    Verifiable,
    /// Plain candle kernels: bits depend on the cache geometry or the GPU.
    Native,
}

impl Kernels {
    /// The version string written into log headers.
    pub fn version(self) -> &'static str {
        match self {
            Kernels::Verifiable => VERIFIABLE_KERNELS,
            Kernels::Native => NATIVE_KERNELS,
        }
    }

    /// `a @ b`, batched over equal leading dims.
    pub fn matmul(self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Kernels::Verifiable => a.apply_op2(b, FixedSliceMatmul)?,
            Kernels::Native => a.matmul(b)?,
        })
    }

    /// `a @ b^T` (`b [.., n, k]`), as a linear layer multiplies by its weight `[out, in]`: the
    /// bits of `matmul(a, b.t())`, computed without a transpose in the graph.
    pub fn matmul_t(self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Kernels::Verifiable => a.apply_op2(b, FixedSliceMatmulT)?,
            Kernels::Native => a.matmul(&b.t()?)?,
        })
    }

    /// `x + w` with `w` of `x`'s trailing dims (a bias), as `broadcast_add`.
    pub fn add_rows(self, x: &Tensor, w: &Tensor) -> Result<Tensor> {
        match self {
            Kernels::Verifiable => RowOp::Add.apply(x, w),
            Kernels::Native => Ok(x.broadcast_add(w)?),
        }
    }

    /// `x * w` with `w` of `x`'s trailing dims (a layer norm's weight), as `broadcast_mul`.
    pub fn mul_rows(self, x: &Tensor, w: &Tensor) -> Result<Tensor> {
        match self {
            Kernels::Verifiable => RowOp::Mul.apply(x, w),
            Kernels::Native => Ok(x.broadcast_mul(w)?),
        }
    }

    /// Whether `x` goes through the fused ops that reduce over rows (layer norm, attention
    /// weights, cross-entropy): verifiable kernels, f32 on the CPU, and candle summing with
    /// AVX2 (the order those ops repeat, `candle_order`); elsewhere the composed ops run.
    fn fuses_rows(self, x: &Tensor) -> bool {
        self == Kernels::Verifiable
            && x.dtype() == DType::F32
            && x.device().is_cpu()
            && candle_order::candle_sums_with_avx2()
    }

    /// Layer normalisation over the last dim with weight `w` and bias `b` (epsilon 1e-5), as
    /// differentiable primitives. With the verifiable kernels, where candle sums with AVX2,
    /// everything after the centring is one fused op with the same bits (see `layer_norm`).
    pub fn layer_norm(self, x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
        let mean = x.mean_keepdim(D::Minus1)?;
        let xc = x.broadcast_sub(&mean)?;
        if self.fuses_rows(x) {
            return Ok(xc.apply_op3(&w.contiguous()?, &b.contiguous()?, NormalizeCentred)?);
        }
        let var = xc.sqr()?.mean_keepdim(D::Minus1)?;
        let xn = xc.broadcast_div(&(var + 1e-5)?.sqrt()?)?;
        self.add_rows(&self.mul_rows(&xn, w)?, b)
    }

    /// Elementwise `e^x`.
    pub fn exp(self, x: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Kernels::Verifiable => x.contiguous()?.apply_op1(Unary::Exp)?,
            Kernels::Native => x.exp()?,
        })
    }

    /// Elementwise natural logarithm.
    pub fn log(self, x: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Kernels::Verifiable => x.contiguous()?.apply_op1(Unary::Log)?,
            Kernels::Native => x.log()?,
        })
    }

    /// Elementwise `tanh`.
    pub fn tanh(self, x: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Kernels::Verifiable => x.contiguous()?.apply_op1(Unary::Tanh)?,
            Kernels::Native => x.tanh()?,
        })
    }

    /// Softmax over the last dim.
    pub fn softmax_last_dim(self, x: &Tensor) -> Result<Tensor> {
        match self {
            Kernels::Native => Ok(candle_nn::ops::softmax(x, D::Minus1)?),
            Kernels::Verifiable => {
                let e = self.exp(&shift_by_max(x)?)?;
                Ok(e.broadcast_div(&e.sum_keepdim(D::Minus1)?)?)
            }
        }
    }

    /// Attention weights: softmax over the last dim of `scores * scale + mask`, `mask` of the
    /// scores' last two dims. With the verifiable kernels, where candle sums with AVX2, one
    /// fused op with the bits of the composed ops (see `softmax`).
    pub fn attention_weights(self, scores: &Tensor, scale: f64, mask: &Tensor) -> Result<Tensor> {
        if self.fuses_rows(scores) {
            let op = AttentionWeights { scale };
            return Ok(scores.contiguous()?.apply_op2(&mask.contiguous()?, op)?);
        }
        self.softmax_last_dim(&scores.affine(scale, 0.0)?.broadcast_add(mask)?)
    }

    /// Log-softmax over the last dim.
    pub fn log_softmax_last_dim(self, x: &Tensor) -> Result<Tensor> {
        match self {
            Kernels::Native => Ok(candle_nn::ops::log_softmax(x, D::Minus1)?),
            Kernels::Verifiable => {
                let d = shift_by_max(x)?;
                let lse = self.log(&self.exp(&d)?.sum_keepdim(D::Minus1)?)?;
                Ok(d.broadcast_sub(&lse)?)
            }
        }
    }

    /// GELU, tanh approximation (as candle's `gelu`). Verifiable f32 GELU is one fused op
    /// with the bits of the composed ops below (see `gelu`).
    pub fn gelu(self, x: &Tensor) -> Result<Tensor> {
        match self {
            Kernels::Native => Ok(x.gelu()?),
            Kernels::Verifiable if x.dtype() == DType::F32 && x.device().is_cpu() => {
                Ok(x.contiguous()?.apply_op1(Gelu::default())?)
            }
            Kernels::Verifiable => {
                const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
                let inner = (x * x.sqr()?.affine(0.044715, 1.0)?)?.affine(SQRT_2_OVER_PI, 0.0)?;
                Ok((x * self.tanh(&inner)?.affine(0.5, 0.5)?)?)
            }
        }
    }

    /// Root-mean-square normalisation over the last dim with weight `w`, as Llama-family models
    /// compute it: `x / sqrt(mean(x²) + eps) * w` (`eps` rounded to f32 as candle's affine
    /// rounds it). Elementwise IEEE arithmetic and one candle sum per row.
    pub fn rms_norm(self, x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
        let ms = x.sqr()?.mean_keepdim(D::Minus1)?;
        let xn = x.broadcast_div(&(ms + eps)?.sqrt()?)?;
        self.mul_rows(&xn, w)
    }

    /// SiLU (swish), `x / (1 + e^-x)`, with this kernel set's `exp`.
    pub fn silu(self, x: &Tensor) -> Result<Tensor> {
        match self {
            Kernels::Native => Ok(candle_nn::ops::silu(x)?),
            Kernels::Verifiable => Ok((x / self.exp(&x.neg()?)?.affine(1.0, 1.0)?)?),
        }
    }

    /// Mean cross-entropy of `logits [n, classes]` against `targets [n]` (u32 class ids).
    pub fn cross_entropy(self, logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
        match self {
            Kernels::Native => Ok(candle_nn::loss::cross_entropy(logits, targets)?),
            Kernels::Verifiable if self.fuses_rows(logits) && targets.dtype() == DType::U32 => {
                Ok(logits
                    .contiguous()?
                    .apply_op2(&targets.contiguous()?, CrossEntropy)?)
            }
            Kernels::Verifiable => self.composed_cross_entropy(logits, targets),
        }
    }

    /// The verifiable cross-entropy as composed ops (what the fused op reproduces).
    fn composed_cross_entropy(self, logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
        let n = targets.dim(0)?;
        let lp = self.log_softmax_last_dim(logits)?;
        Ok(lp
            .gather(&targets.unsqueeze(1)?, 1)?
            .sum_all()?
            .affine(-1.0 / n as f64, 0.0)?)
    }
}

/// `x - max(x)` over the last dim, the max held constant (softmax does not depend on it).
fn shift_by_max(x: &Tensor) -> Result<Tensor> {
    Ok(x.broadcast_sub(&x.max_keepdim(D::Minus1)?.detach())?)
}

#[cfg(test)]
mod tests {
    use super::testing::{assert_close as close, seeded};
    use super::*;
    use candle_core::{Device, Var};

    /// Both kernel sets compute the same functions (to rounding), and the same gradients.
    #[test]
    fn verifiable_ops_agree_with_candle() {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&seeded(&[6, 300], 1, 4.0)).unwrap();
        let w = seeded(&[300, 10], 2, 0.2);
        let y = Tensor::new(&[0u32, 3, 9, 1, 1, 7], &dev).unwrap();
        let mut grads = Vec::new();
        for k in [Kernels::Native, Kernels::Verifiable] {
            let h = k.gelu(x.as_tensor()).unwrap();
            let logits = k.matmul(&h, &w).unwrap();
            let sm = k.softmax_last_dim(&logits).unwrap();
            close(
                &sm.sum_keepdim(1).unwrap(),
                &Tensor::ones((6, 1), DType::F32, &dev).unwrap(),
                1e-6,
            );
            let loss = k.cross_entropy(&logits, &y).unwrap();
            let g = loss.backward().unwrap();
            grads.push((loss, sm, g.get(x.as_tensor()).unwrap().clone()));
        }
        close(&grads[0].0, &grads[1].0, 1e-5);
        close(&grads[0].1, &grads[1].1, 1e-5);
        close(&grads[0].2, &grads[1].2, 1e-5);
    }

    /// RMSNorm and SiLU are candle's (`candle_nn::ops::rms_norm_slow`, `silu`) to rounding, values
    /// and gradients, on both kernel sets.
    #[test]
    fn rms_norm_and_silu_agree_with_candle() {
        let x = Var::from_tensor(&seeded(&[5, 64], 1, 6.0)).unwrap();
        let w = Var::from_tensor(&seeded(&[64], 2, 2.0)).unwrap();
        let reference = candle_nn::ops::rms_norm_slow(&x, &w, 1e-5).unwrap();
        let reference = candle_nn::ops::silu(&reference).unwrap();
        let up = seeded(&[5, 64], 3, 2.0);
        let grads = |y: &Tensor| (y * &up).unwrap().sum_all().unwrap().backward().unwrap();
        let theirs = grads(&reference);
        for k in [Kernels::Native, Kernels::Verifiable] {
            let y = k.silu(&k.rms_norm(&x, &w, 1e-5).unwrap()).unwrap();
            close(&y, &reference, 1e-5);
            let ours = grads(&y);
            for v in [&x, &w] {
                close(ours.get(v).unwrap(), theirs.get(v).unwrap(), 1e-4);
            }
        }
    }

    #[test]
    fn versions_differ_and_verifiable_is_the_default() {
        assert_eq!(Kernels::default(), Kernels::Verifiable);
        assert_ne!(Kernels::Verifiable.version(), Kernels::Native.version());
        assert!(Kernels::Verifiable.version().contains(&format!("k{SLICE}")));
    }
}
