//! Mean cross-entropy of logits against class ids as one graph node, forward and backward each
//! one pass over the rows, with the bits of the ops it replaces (the shift by the row's max,
//! libm exp, the row sum, libm log, the broadcast sub, the gather of the targets, the sum over
//! rows and the `* -1/n`) and of the backward candle's autograd ran through them.
//!
//! As in [`super::layer_norm`]: reductions in candle's order ([`super::candle_order`]),
//! affines as `v * mul + add` with candle's f32 constants, every accumulated gradient `0 +`
//! its first contribution plus the next in candle's order.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};

use super::candle_order::{max, sum};
use super::output::{self, write_each, write_rows, Slots};
use super::rows::{slice, values};
use super::unary::Unary;

/// Elements at least this many are split between the threads of the pool, by rows.
const PARALLEL_MIN: usize = 1 << 14;

/// `logits.apply_op2(targets, CrossEntropy)`: contiguous f32 `logits [n, classes]`, u32
/// `targets [n]`; a scalar.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CrossEntropy;

/// The class count and the targets, each checked.
fn targets<'a>(
    logits: &Layout,
    s: &'a CpuStorage,
    l: &Layout,
) -> candle_core::Result<(usize, &'a [u32])> {
    let (n, classes) = logits.shape().dims2()?;
    let (CpuStorage::U32(t), Some((a, b))) = (s, l.contiguous_offsets()) else {
        return Err(candle_core::Error::Msg(format!(
            "oai-cross-entropy takes contiguous u32 targets, got {:?}",
            s.dtype()
        )));
    };
    let t = &t[a..b];
    if l.dims() != [n] || classes == 0 {
        return Err(candle_core::Error::Msg(format!(
            "oai-cross-entropy: targets {:?} for logits {:?}",
            l.dims(),
            logits.dims()
        )));
    }
    if let Some(bad) = t.iter().find(|t| **t as usize >= classes) {
        return Err(candle_core::Error::Msg(format!(
            "oai-cross-entropy: target {bad} of {classes} classes"
        )));
    }
    Ok((classes, t))
}

/// `-1/n`, rounded to f32 as the mean's affine rounds it.
fn mean_factor(n: usize) -> f32 {
    (-1.0 / n as f64) as f32
}

/// `f(first_row, out_rows)` over `out`, one value per row of `classes` logits, split between
/// the pool's threads.
fn per_row(out: &mut [f32], classes: usize, f: impl Fn(usize, &mut [f32]) + Sync) {
    crate::pool::for_each_chunk(out, PARALLEL_MIN.div_ceil(classes), f);
}

/// A row's shifted values `x - max` and `exp` of them, in `e`; returns the shifted target.
fn shifted_exps<'a>(row: &[f32], target: u32, e: &'a mut Slots) -> (&'a mut [f32], f32) {
    let m = max(row);
    let e = write_each(e, row.iter().map(|x| x - m));
    let picked = e[target as usize];
    Unary::Exp.f32_in_place(e);
    (e, picked)
}

impl CustomOp2 for CrossEntropy {
    fn name(&self) -> &'static str {
        "oai-cross-entropy"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (classes, t) = targets(l1, s2, l2)?;
        let x = slice(s1, l1, self.name())?;
        let mut picked = vec![0f32; t.len()];
        per_row(&mut picked, classes, |first, out| {
            let mut scratch = Vec::<f32>::with_capacity(classes);
            for (i, p) in out.iter_mut().enumerate() {
                let r = first + i;
                let e = &mut scratch.spare_capacity_mut()[..classes];
                let (e, d) = shifted_exps(&x[r * classes..][..classes], t[r], e);
                *p = d - libm::logf(sum(e, |e| e));
            }
        });
        let loss = sum(&picked, |p| p) * mean_factor(t.len()) + 0.0;
        Ok((CpuStorage::F32(vec![loss]), Shape::from(())))
    }

    fn bwd(
        &self,
        logits: &Tensor,
        targets_: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let g = grad.to_dtype(candle_core::DType::F32)?.to_scalar::<f32>()?;
        let ((xs, xl), (ts, tl)) = (logits.storage_and_layout(), targets_.storage_and_layout());
        let x = values(&xs, xl, self.name())?;
        let candle_core::Storage::Cpu(ts) = &*ts else {
            return Err(candle_core::Error::Msg(format!(
                "{} runs on the CPU",
                self.name()
            )));
        };
        let (classes, t) = targets(xl, ts, tl)?;
        // the mean's affine, the sum over rows, then the gather: each row's target gets this
        let g_picked = 0.0 + (0.0 + (g * mean_factor(t.len()) + 0.0));
        let [out] = output::by_rows(x.len(), classes, |first, [out]| {
            let mut g_lse_terms = vec![0f32; classes];
            [write_rows(out, classes, |i, out| {
                let r = first + i;
                let target = t[r] as usize;
                // the gather's gradient: the target's, scattered onto zeros
                let g_lp = |j: usize| if j == target { 0.0 + g_picked } else { 0.0 };
                let (out, _) = shifted_exps(&x[r * classes..][..classes], t[r], out);
                let total = sum(out, |e| e);
                for (j, term) in g_lse_terms.iter_mut().enumerate() {
                    *term = 0.0 - g_lp(j);
                }
                let g_lse = 0.0 + sum(&g_lse_terms, |v| v);
                let g_e = 0.0 + (0.0 + g_lse / total);
                for (j, e) in out.iter_mut().enumerate() {
                    *e = 0.0 + ((0.0 + g_lp(j)) + g_e * *e);
                }
                out
            })]
        });
        Ok((
            Some(Tensor::from_vec(out, logits.shape(), logits.device())?),
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

    /// The loss and the logits' gradient are the composed ops' to the bit, on class counts that
    /// do and do not fill candle's 32-wide sum blocks and on enough rows to split between
    /// threads; the gradient flows back through a scaled loss.
    #[test]
    fn fused_cross_entropy_gives_the_bits_of_the_composed_ops() {
        if !crate::candle_order::candle_sums_with_avx2() {
            eprintln!("no AVX2 here: the fused cross-entropy is not used");
            return;
        }
        for (n, classes, spread) in [(6, 10, 4.0), (1024, 256, 20.0), (77, 33, 1e-3)] {
            let logits = Var::from_tensor(&seeded(&[n, classes], n as u64, spread)).unwrap();
            let t: Vec<u32> = (0..n).map(|i| (i * 7 % classes) as u32).collect();
            let t = Tensor::from_vec(t, n, &Device::Cpu).unwrap();
            assert_same_bits(
                &format!("cross-entropy of {n}x{classes}"),
                &[&logits],
                || logits.apply_op2(&t, CrossEntropy),
                || Kernels::Verifiable.composed_cross_entropy(&logits, &t),
            );
        }
    }

    #[test]
    fn bad_targets_are_errors() {
        let logits = seeded(&[3, 4], 1, 1.0);
        let dev = Device::Cpu;
        let bad = [
            Tensor::new(&[0u32, 4, 1], &dev).unwrap(),
            Tensor::new(&[0u32, 1], &dev).unwrap(),
            Tensor::new(&[0f32, 1.0, 2.0], &dev).unwrap(),
        ];
        for t in bad {
            assert!(logits.apply_op2(&t, CrossEntropy).is_err(), "{t}");
        }
    }
}
