//! The second half of layer normalisation as one graph node: centred rows `xc` to
//! `xc / sqrt(mean(xc²) + 1e-5) * w + b`, forward and backward each one pass over the rows,
//! with the bits of the ops it replaces (sqr, sum, two affines, sqrt, a broadcast div, the row
//! mul and the row add) and of the backward candle's autograd ran through them.
//!
//! Those bits are reproduced operation by operation: sums over a row in candle's order
//! ([`super::candle_order`]), each affine as `v * mul + add` with candle's f32 constants, and
//! each gradient candle accumulated as `0 +` its first contribution plus the next in candle's
//! order; the gradients of `w` and `b` are summed over rows as the row ops sum them. The
//! results are such accumulations, never -0, so candle's own `0 + g` on top changes nothing.
//!
//! The centring stays two candle ops (mean, broadcast sub): `x` also feeds the residual
//! stream, and candle adds the gradients from both uses into `x`'s one by one, in graph order,
//! which no op returning a single gradient for `x` could reproduce. `xc` has no other use.

use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor};

use super::candle_order::sum;
use super::rows::{by_rows, check_gradient, slice, sum_rows, values};

/// The variance's epsilon, rounded to f32 as candle's affine rounds it.
const EPS: f32 = 1e-5f64 as f32;

/// `xc.apply_op3(w, b, NormalizeCentred)`: contiguous f32 `xc [.., d]`, `w [d]`, `b [d]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NormalizeCentred;

/// The row length, checked against `w`'s and `b`'s shapes.
fn row_len(x: &Layout, w: &Layout, b: &Layout) -> candle_core::Result<usize> {
    let d = x.dims().last().copied().unwrap_or(0);
    if d == 0 || w.dims() != [d] || b.dims() != [d] {
        return Err(candle_core::Error::Msg(format!(
            "oai-layer-norm: weight {:?} and bias {:?} must both be [{d}], the last dim of {:?}",
            w.dims(),
            b.dims(),
            x.dims()
        )));
    }
    Ok(d)
}

/// `sqrt(mean(xc²) + eps)` of one centred row, as candle computed it.
#[inline(always)]
fn denominator(row: &[f32], scale: f32) -> f32 {
    let var = sum(row, |x| x * x) * scale + 0.0;
    (var * 1.0 + EPS).sqrt()
}

/// `1 / d`, rounded to f32 as the mean's affine rounds it.
fn mean_scale(d: usize) -> f32 {
    (1f64 / d as f64) as f32
}

impl CustomOp3 for NormalizeCentred {
    fn name(&self) -> &'static str {
        "oai-layer-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let d = row_len(l1, l2, l3)?;
        let (xc, w, b) = (
            slice(s1, l1, self.name())?,
            slice(s2, l2, self.name())?,
            slice(s3, l3, self.name())?,
        );
        let scale = mean_scale(d);
        let mut out = vec![0f32; xc.len()];
        by_rows([&mut out], d, |first, [out]| {
            let rows = xc[first * d..].chunks_exact(d);
            for (o, x) in out.chunks_exact_mut(d).zip(rows) {
                let r = denominator(x, scale);
                for (((o, x), w), b) in o.iter_mut().zip(x).zip(w).zip(b) {
                    *o = x / r * w + b;
                }
            }
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        xc: &Tensor,
        w: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let n = self.name();
        let ((xs, xl), (ws, wl), (gs, gl)) = (
            xc.storage_and_layout(),
            w.storage_and_layout(),
            grad.storage_and_layout(),
        );
        let (x, w_, g) = (
            values(&xs, xl, n)?,
            values(&ws, wl, n)?,
            values(&gs, gl, n)?,
        );
        let d = row_len(xl, wl, b.layout())?;
        check_gradient(n, g, x)?;
        let (gx, products) = backward(x, w_, g, d);
        let dev = xc.device();
        Ok((
            Some(Tensor::from_vec(gx, xc.shape(), dev)?),
            Some(Tensor::from_vec(sum_rows(&products, d), w.shape(), dev)?),
            Some(Tensor::from_vec(sum_rows(g, d), b.shape(), dev)?),
        ))
    }
}

/// The gradient of `xc` and, per element, the products `w`'s gradient sums over rows, for the
/// upstream gradient `g`: candle's backward through the composed ops, last to first (row add,
/// row mul, div by the broadcast denominator, its sum back, sqrt, `+ eps`, `* 1/d`, sum, sqr).
fn backward(xc: &[f32], w: &[f32], g: &[f32], d: usize) -> (Vec<f32>, Vec<f32>) {
    let scale = mean_scale(d);
    let mut gx = vec![0f32; xc.len()];
    let mut products = vec![0f32; xc.len()];
    by_rows([&mut gx, &mut products], d, |first, [gx, products]| {
        let mut g_den = vec![0f32; d];
        let rows = gx.chunks_exact_mut(d).zip(products.chunks_exact_mut(d));
        for (i, (gx, products)) in rows.enumerate() {
            let at = (first + i) * d;
            let (x, g) = (&xc[at..at + d], &g[at..at + d]);
            let r = denominator(x, scale);
            let parts = gx.iter_mut().zip(products.iter_mut()).zip(g_den.iter_mut());
            for ((((gx, p), g_den), (&x, &g)), &w) in parts.zip(x.iter().zip(g)).zip(w) {
                let g_scaled = 0.0 + g;
                let g_norm = 0.0 + g_scaled * w;
                *p = g_scaled * (x / r);
                *gx = 0.0 + g_norm / r;
                *g_den = 0.0 - g_norm * x / (r * r);
            }
            let g_r = 0.0 + sum(&g_den, |v| v);
            let g_shifted = 0.0 + (g_r / r * 0.5 + 0.0);
            let g_var = 0.0 + (g_shifted * 1.0 + 0.0);
            let g_sum = 0.0 + (g_var * scale + 0.0);
            let g_sq = 0.0 + g_sum;
            for (gx, &x) in gx.iter_mut().zip(x) {
                *gx += x * g_sq * 2.0 + 0.0;
            }
        }
    });
    (gx, products)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::test_util::{bits, seeded};
    use crate::Kernels;
    use candle_core::{Var, D};

    /// The ops the fused node replaces, as logs of kernel version 1 computed them.
    fn composed(xc: &Tensor, w: &Tensor, b: &Tensor) -> Tensor {
        let k = Kernels::Verifiable;
        let var = xc.sqr().unwrap().mean_keepdim(D::Minus1).unwrap();
        let xn = xc
            .broadcast_div(&(var + 1e-5).unwrap().sqrt().unwrap())
            .unwrap();
        k.add_rows(&k.mul_rows(&xn, w).unwrap(), b).unwrap()
    }

    /// Values and all three gradients are the composed ops' to the bit, on row lengths that
    /// do and do not fill candle's 32-wide sum blocks and on enough rows to split between
    /// threads; a centred `x` feeding the residual stream too gets the same gradient.
    #[test]
    fn fused_layer_norm_gives_the_bits_of_the_composed_ops() {
        if !super::super::candle_order::candle_sums_with_avx2() {
            eprintln!("no AVX2 here: the fused layer norm is not used");
            return;
        }
        for (shape, spread) in [
            (vec![3, 5], 1e-3),
            (vec![4, 16, 128], 6.0),
            (vec![300, 77], 50.0),
        ] {
            let d = *shape.last().unwrap();
            let x = Var::from_tensor(&seeded(&shape, d as u64, spread)).unwrap();
            let w = Var::from_tensor(&seeded(&[d], 2, 3.0)).unwrap();
            let b = Var::from_tensor(&seeded(&[d], 3, 1.0)).unwrap();
            let up = seeded(&shape, 4, 2.0);
            let grads = |fused: bool| {
                let mean = x.mean_keepdim(D::Minus1).unwrap();
                let xc = x.broadcast_sub(&mean).unwrap();
                let y = match fused {
                    true => xc.apply_op3(&w, &b, NormalizeCentred).unwrap(),
                    false => composed(&xc, &w, &b),
                };
                let out = (&y + x.as_tensor()).unwrap();
                let g = (&out * &up).unwrap().sum_all().unwrap().backward().unwrap();
                let mut all = vec![bits(&y)];
                all.extend([&x, &w, &b].map(|v| bits(g.get(v).unwrap())));
                all
            };
            let (ours, theirs) = (grads(true), grads(false));
            for (what, (a, b)) in ["values", "x", "w", "b"]
                .iter()
                .zip(ours.iter().zip(&theirs))
            {
                assert_eq!(a, b, "{what} of {shape:?}");
            }
        }
    }

    #[test]
    fn weights_of_another_length_are_errors() {
        let xc = seeded(&[4, 8], 1, 1.0);
        let w = seeded(&[8], 2, 1.0);
        assert!(xc
            .apply_op3(&w, &seeded(&[4], 3, 1.0), NormalizeCentred)
            .is_err());
        assert!(xc
            .apply_op3(&seeded(&[2, 8], 3, 1.0), &w, NormalizeCentred)
            .is_err());
    }
}
