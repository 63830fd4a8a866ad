//! Attention weights as one graph node: `softmax(scores * scale + mask)` over the last dim,
//! forward and backward each one pass over the rows, with the bits of the ops it replaces
//! (affine, broadcast add of the mask, the shift by the row's max, libm exp, the row sum and
//! the broadcast div) and of the backward candle's autograd ran through them, including the
//! gradients it computed for the constant mask and the detached max, which nothing read.
//!
//! As in [`super::layer_norm`]: row sums in candle's order, affines as `v * mul + add` with
//! candle's f32 constants, every accumulated gradient `0 +` its first contribution plus the
//! next in candle's order. The shift only keeps exp in range: whichever zero the max is, `exp`
//! of the shifted value is the same.

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};

use super::candle_order::{max, sum};
use super::output::{self, write_each, write_rows, Slots};
use super::rows::{check_gradient, slice, values};
use super::unary::Unary;

/// `scores.apply_op2(mask, AttentionWeights { scale })`: contiguous f32 `scores [.., q, k]`,
/// `mask [q, k]` (added to every `[q, k]` block).
#[derive(Debug, Clone, Copy)]
pub(crate) struct AttentionWeights {
    /// What the scores are multiplied by first.
    pub(crate) scale: f64,
}

/// Rows of `k` and the mask's rows `q`, checked against the scores' shape.
fn dims(scores: &Layout, mask: &Layout) -> candle_core::Result<(usize, usize)> {
    match (scores.dims(), mask.dims()) {
        (&[.., q, k], &[mq, mk]) if (mq, mk) == (q, k) && k > 0 => Ok((q, k)),
        (s, m) => Err(candle_core::Error::Msg(format!(
            "oai-attention-weights: mask {m:?} must be the last two dims of the scores {s:?}"
        ))),
    }
}

/// For every row of `scores` (`k` wide, row `r` masked by the mask's row `r % q`):
/// `exp(x - max x)` with `x = s * scale + 0 + mask` into `out`, and each row's sum.
fn exps<'a>(
    scores: &[f32],
    mask: &[f32],
    q: usize,
    first_row: usize,
    scale: f32,
    out: &'a mut Slots,
) -> &'a mut [f32] {
    let k = mask.len() / q;
    let scores = &scores[first_row * k..];
    let out = write_rows(out, k, |i, o| {
        let (s, m_row) = (&scores[i * k..][..k], &mask[(first_row + i) % q * k..][..k]);
        let o = write_each(o, s.iter().zip(m_row).map(|(s, m)| s * scale + 0.0 + m));
        let max = max(o);
        o.iter_mut().for_each(|x| *x -= max);
        o
    });
    Unary::Exp.f32_in_place(out);
    out
}

impl CustomOp2 for AttentionWeights {
    fn name(&self) -> &'static str {
        "oai-attention-weights"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (q, k) = dims(l1, l2)?;
        let (scores, mask) = (slice(s1, l1, self.name())?, slice(s2, l2, self.name())?);
        let scale = self.scale as f32;
        let [out] = output::by_rows(scores.len(), k, |first, [out]| {
            let out = exps(scores, mask, q, first, scale, out);
            for row in out.chunks_exact_mut(k) {
                let s = sum(row, |e| e);
                row.iter_mut().for_each(|e| *e /= s);
            }
            [out]
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        scores: &Tensor,
        mask: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let ((ss, sl), (ms, ml), (gs, gl)) = (
            scores.storage_and_layout(),
            mask.storage_and_layout(),
            grad.storage_and_layout(),
        );
        let n = self.name();
        let (s, m, g) = (
            values(&ss, sl, n)?,
            values(&ms, ml, n)?,
            values(&gs, gl, n)?,
        );
        let (q, k) = dims(sl, ml)?;
        check_gradient(n, g, s)?;
        let scale = self.scale as f32;
        let [out] = output::by_rows(s.len(), k, |first, [out]| {
            let out = exps(s, m, q, first, scale, out);
            let (mut g_e, mut g_total) = (vec![0f32; k], vec![0f32; k]);
            for (i, e) in out.chunks_exact_mut(k).enumerate() {
                let g = &g[(first + i) * k..][..k];
                let total = sum(e, |e| e);
                let per = g_e.iter_mut().zip(&mut g_total).zip(&*e).zip(g);
                for (((g_e, g_t), &e), &g) in per {
                    *g_e = 0.0 + g / total;
                    *g_t = 0.0 - g * e / (total * total);
                }
                let g_total = 0.0 + sum(&g_total, |v| v);
                for (e, g_e) in e.iter_mut().zip(&g_e) {
                    let g_shifted = 0.0 + (g_e + g_total) * *e;
                    let g_masked = 0.0 + (0.0 + g_shifted);
                    *e = 0.0 + (g_masked * scale + 0.0);
                }
            }
            [out]
        });
        Ok((
            Some(Tensor::from_vec(out, scores.shape(), scores.device())?),
            None,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_same_bits, seeded};
    use crate::Kernels;
    use candle_core::{Device, Var};

    /// A causal mask as the transformer builds it.
    fn causal(t: usize) -> Tensor {
        let m: Vec<f32> = (0..t)
            .flat_map(|i| (0..t).map(move |j| if j > i { -1e9 } else { 0.0 }))
            .collect();
        Tensor::from_vec(m, (t, t), &Device::Cpu).unwrap()
    }

    /// Values and the scores' gradient are the composed ops' to the bit, on rows that do and do
    /// not fill candle's 32-wide sum blocks and on enough rows to split between threads.
    #[test]
    fn fused_attention_weights_give_the_bits_of_the_composed_ops() {
        if !crate::candle_order::candle_sums_with_avx2() {
            eprintln!("no AVX2 here: the fused attention weights are not used");
            return;
        }
        let k = Kernels::Verifiable;
        for (shape, spread) in [
            (vec![2, 5, 5], 3.0),
            (vec![16, 4, 64, 64], 40.0),
            (vec![3, 37, 37], 8.0),
        ] {
            let t = shape[shape.len() - 1];
            let scores = Var::from_tensor(&seeded(&shape, t as u64, spread)).unwrap();
            let mask = causal(t);
            assert_same_bits(
                &format!("attention weights of {shape:?}"),
                &[&scores],
                || scores.apply_op2(&mask, AttentionWeights { scale: 0.17 }),
                || {
                    let x = scores.affine(0.17, 0.0)?.broadcast_add(&mask)?;
                    k.softmax_last_dim(&x)
                },
            );
        }
    }

    #[test]
    fn masks_of_another_shape_are_errors() {
        let s = seeded(&[2, 4, 4], 1, 1.0);
        let op = AttentionWeights { scale: 1.0 };
        assert!(s.apply_op2(&seeded(&[4, 3], 2, 1.0), op).is_err());
        assert!(s.apply_op2(&seeded(&[4], 2, 1.0), op).is_err());
    }
}
