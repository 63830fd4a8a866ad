//! GELU (tanh approximation) as one graph node, each direction one pass over the data, with
//! the bits of the seven ops it was composed of before: `x · (tanh(c·x·(1 + 0.044715·x²)) ·
//! 0.5 + 0.5)` as sqr, affine, mul, affine, libm tanh, affine, mul, and the backward candle's
//! autograd ran through them.
//!
//! Those bits are reproduced operation by operation: each affine is `v * mul + add` with
//! the constants rounded to f32 as candle rounds them, and each gradient candle accumulated
//! starts from `0 +` its first contribution (which turns a -0 into +0) and adds the next in
//! candle's order. The result handed back is such an accumulation, never -0, so candle's own
//! `0 + g` on top of it changes nothing. Composed, the seven nodes cost one memset, one add and
//! a fresh allocation each in the backward pass alone. The forward keeps its `tanh` for the
//! backward (the same values it would compute again), which then needs none.

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, Tensor};

use super::output::{self, write_each, write_rows_n, Slots};
use super::rows::slice;
use super::unary::Unary;

/// `0.044715`, rounded to f32 as candle's affine rounds it.
const CUBIC: f32 = 0.044715f64 as f32;
/// `sqrt(2 / pi)`, rounded to f32 as candle's affine rounds it.
const SQRT_2_OVER_PI: f32 = 0.797_884_560_802_865_4f64 as f32;
/// Elements per block: a block's passes (arithmetic, tanh, arithmetic) stay in L1.
const BLOCK: usize = 2048;

/// The fused GELU: `x.apply_op1(Gelu::default())` (contiguous f32 `x`). One op per call:
/// it keeps its forward's `tanh` for its backward.
#[derive(Debug, Default)]
pub(crate) struct Gelu {
    /// `tanh` of the inner term for every element of the forward's input, until the
    /// backward takes it.
    tanh: Mutex<Option<Vec<f32>>>,
}

/// `x * x * 0.044715 + 1`, the factor the cubic term comes from.
#[inline(always)]
fn cubic_factor(x: f32) -> f32 {
    x * x * CUBIC + 1.0
}

/// `tanh`'s argument for every `x`, written to `out`, then `tanh` of it in place.
fn tanh_of_inner<'a>(xs: &[f32], out: &'a mut Slots) -> &'a mut [f32] {
    let out = write_each(
        out,
        xs.iter()
            .map(|x| x * cubic_factor(*x) * SQRT_2_OVER_PI + 0.0),
    );
    Unary::Tanh.f32_in_place(out);
    out
}

/// GELU of `xs` into `out`, its `tanh` into `ts`.
fn forward_block<'a>(xs: &[f32], [out, ts]: [&'a mut Slots; 2]) -> [&'a mut [f32]; 2] {
    let ts = tanh_of_inner(xs, ts);
    let out = write_each(out, xs.iter().zip(&*ts).map(|(x, t)| x * (t * 0.5 + 0.5)));
    [out, ts]
}

/// The gradient of `x` for the upstream gradient `gs`, as candle's autograd summed it through
/// the composed ops (last to first: `x * u`, `u = t*0.5+0.5`, tanh, `*c`, `x * a`,
/// `a = s*0.044715+1`, `s = x*x`).
/// (`ts`: the forward's `tanh` of these `xs`, when kept.)
fn backward_block<'a>(
    xs: &[f32],
    gs: &[f32],
    ts: Option<&[f32]>,
    out: &'a mut Slots,
) -> &'a mut [f32] {
    let out = match ts {
        Some(ts) => write_each(out, ts.iter().copied()),
        None => tanh_of_inner(xs, out),
    };
    for ((o, &x), &g) in out.iter_mut().zip(xs).zip(gs) {
        let t = *o;
        let u = t * 0.5 + 0.5;
        let gx = 0.0 + g * u;
        let gu = 0.0 + g * x;
        let gt = 0.0 + (gu * 0.5 + 0.0);
        // tanh's backward is candle's `affine(-1, 1)`: a multiply, not a negation (NaN signs)
        #[allow(clippy::neg_multiply)]
        let g_inner = 0.0 + gt * (t * t * -1.0 + 1.0);
        let gm = 0.0 + (g_inner * SQRT_2_OVER_PI + 0.0);
        let gx = gx + gm * cubic_factor(x);
        let ga = 0.0 + gm * x;
        let g_sq = 0.0 + (ga * CUBIC + 0.0);
        *o = gx + (x * g_sq * 2.0 + 0.0);
    }
    out
}

/// `block(start, outs)` over `N` outputs of `len` elements, in blocks, split between the
/// pool's threads by whole blocks.
fn blocks<const N: usize>(
    len: usize,
    block: impl for<'a> Fn(usize, [&'a mut Slots; N]) -> [&'a mut [f32]; N] + Sync,
) -> [Vec<f32>; N] {
    output::by_rows(len, BLOCK, |first, parts| {
        write_rows_n(parts, BLOCK, |i, b| block((first + i) * BLOCK, b))
    })
}

impl CustomOp1 for Gelu {
    fn name(&self) -> &'static str {
        "oai-gelu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let xs = slice(s, l, self.name())?;
        let [out, ts] = blocks(xs.len(), |at, block| {
            forward_block(&xs[at..at + block[0].len()], block)
        });
        *self.tanh.lock().unwrap_or_else(|e| e.into_inner()) = Some(ts);
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let tanh = self.tanh.lock().unwrap_or_else(|e| e.into_inner()).take();
        Ok(Some(x.apply_op2_no_bwd(
            &grad.contiguous()?,
            &GeluGrad { tanh },
        )?))
    }
}

/// `x`'s gradient from `x` and the upstream gradient (and the forward's `tanh`, when kept:
/// otherwise it is computed again).
struct GeluGrad {
    tanh: Option<Vec<f32>>,
}

impl CustomOp2 for GeluGrad {
    fn name(&self) -> &'static str {
        "oai-gelu-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        if l1.shape() != l2.shape() {
            return Err(candle_core::Error::ShapeMismatchBinaryOp {
                lhs: l1.shape().clone(),
                rhs: l2.shape().clone(),
                op: "oai-gelu-grad",
            });
        }
        let (xs, gs) = (slice(s1, l1, self.name())?, slice(s2, l2, self.name())?);
        let ts = self.tanh.as_deref().filter(|ts| ts.len() == xs.len());
        let [out] = blocks(xs.len(), |at, [o]| {
            let end = at + o.len();
            [backward_block(
                &xs[at..end],
                &gs[at..end],
                ts.map(|ts| &ts[at..end]),
                o,
            )]
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::PARALLEL_ROWS_MIN;
    use crate::testing::{assert_same_bits, seeded};
    use crate::Kernels;
    use candle_core::{Device, Var};

    /// GELU as the seven ops logs of kernel version 1 computed it.
    fn composed(x: &Tensor) -> Tensor {
        let k = Kernels::Verifiable;
        let c = 0.797_884_560_802_865_4;
        let inner = (x * x.sqr().unwrap().affine(0.044715, 1.0).unwrap())
            .unwrap()
            .affine(c, 0.0)
            .unwrap();
        (x * k.tanh(&inner).unwrap().affine(0.5, 0.5).unwrap()).unwrap()
    }

    /// Values and gradients are the composed ops' to the bit: over a wide spread of inputs
    /// (tanh's every branch, exact zeros of both signs, values where x³ overflows) and
    /// upstream gradients of both signs, on lengths that split into pool chunks and blocks.
    #[test]
    fn fused_gelu_gives_the_bits_of_the_composed_ops() {
        for (len, width) in [
            (7, 8.0),
            (3 * BLOCK + 5, 12.0),
            (PARALLEL_ROWS_MIN * 3 + 1, 30.0),
        ] {
            let mut xs: Vec<f32> = seeded(&[len], len as u64, width).to_vec1::<f32>().unwrap();
            let edges = [
                0.0,
                -0.0,
                1e-30,
                -1e-30,
                1e20,
                -1e20,
                3e38,
                f32::MIN_POSITIVE,
            ];
            for (x, e) in xs.iter_mut().zip(edges) {
                *x = e;
            }
            let x = Var::from_vec(xs, len, &Device::Cpu).unwrap();
            assert_same_bits(
                &format!("gelu of {len}"),
                &[&x],
                || x.as_tensor().apply_op1(Gelu::default()),
                || Ok::<_, candle_core::Error>(composed(x.as_tensor())),
            );
        }
    }
}
