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
use super::output::{self, write_each, write_rows};
use super::rows::{check_gradient, slice, sum_rows, values};

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
        let [out] = output::by_rows(xc.len(), d, |first, [out]| {
            let rows = &xc[first * d..];
            [write_rows(out, d, |i, o| {
                let x = &rows[i * d..][..d];
                let r = denominator(x, scale);
                let normed = x.iter().zip(w).zip(b).map(|((x, w), b)| x / r * w + b);
                write_each(o, normed)
            })]
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
    let [gx, products] = output::by_rows(xc.len(), d, |first, [gx, products]| {
        let (xc, g) = (&xc[first * d..], &g[first * d..]);
        let rs: Vec<f32> = (0..gx.len() / d)
            .map(|i| denominator(&xc[i * d..][..d], scale))
            .collect();
        let row = |i: usize| (&xc[i * d..][..d], &g[i * d..][..d], rs[i]);
        let products = write_rows(products, d, |i, p| {
            let (x, g, r) = row(i);
            write_each(p, x.iter().zip(g).map(|(&x, &g)| (0.0 + g) * (x / r)))
        });
        let mut g_den = vec![0f32; d];
        let gx = write_rows(gx, d, |i, gx| {
            let (x, g, r) = row(i);
            let g_norm = |(&g, &w): (&f32, &f32)| 0.0 + (0.0 + g) * w;
            let gx = write_each(gx, g.iter().zip(w).map(|gw| 0.0 + g_norm(gw) / r));
            let parts = g_den.iter_mut().zip(x).zip(g.iter().zip(w));
            for ((g_den, &x), gw) in parts {
                *g_den = 0.0 - g_norm(gw) * x / (r * r);
            }
            let g_r = 0.0 + sum(&g_den, |v| v);
            let g_shifted = 0.0 + (g_r / r * 0.5 + 0.0);
            let g_var = 0.0 + (g_shifted * 1.0 + 0.0);
            let g_sum = 0.0 + (g_var * scale + 0.0);
            let g_sq = 0.0 + g_sum;
            for (gx, &x) in gx.iter_mut().zip(x) {
                *gx += x * g_sq * 2.0 + 0.0;
            }
            gx
        });
        [gx, products]
    });
    (gx, products)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_same_bits, seeded};
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
            // the centred x feeds the residual stream too, as in the transformer
            let graph = |fused: bool| {
                let mean = x.mean_keepdim(D::Minus1)?;
                let xc = x.broadcast_sub(&mean)?;
                let y = match fused {
                    true => xc.apply_op3(&w, &b, NormalizeCentred)?,
                    false => composed(&xc, &w, &b),
                };
                &y + x.as_tensor()
            };
            assert_same_bits(
                &format!("layer norm of {shape:?}"),
                &[&x, &w, &b],
                || graph(true),
                || graph(false),
            );
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
