//! Attention heads cut out of rows and put back, as one graph node each way: pure data
//! movement in place of candle's narrow, reshape, transpose and contiguous copy (four nodes,
//! two copies, and in the backward a memset, an add and a concatenation with zeros each).
//!
//! The bits are those of the composed ops. Values are moved, never computed. A gradient
//! candle accumulates is `0 +` contributions, so never -0, and the view ops' backward only
//! added such a gradient to zeros: an identity. Of a split tensor's parts each element gets
//! one gradient and zeros from the others, in whatever order: the same value again.

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};

use super::output::{self, write_each, write_rows};
use super::rows::slice;
use crate::Result;

/// Part `hl.part` of `rows [b·t, parts·d]` as heads `[b, heads, t, dh]` (contiguous).
pub fn split(rows: &Tensor, hl: HeadLayout) -> Result<Tensor> {
    if rows.dtype() == candle_core::DType::F32 && rows.device().is_cpu() {
        return Ok(rows.contiguous()?.apply_op1(Heads::Split(hl))?);
    }
    let (n, w) = rows.dims2()?;
    let (b, t, d) = (n / hl.context, hl.context, w / hl.parts);
    Ok(rows
        .reshape((b, t, w))?
        .narrow(2, hl.part * d, d)?
        .reshape((b, t, hl.heads, d / hl.heads))?
        .transpose(1, 2)?
        .contiguous()?)
}

/// Heads `[b, heads, t, dh]` back to rows `[b·t, heads·dh]`.
pub fn merge(heads: &Tensor) -> Result<Tensor> {
    let (b, h, t, dh) = heads.dims4()?;
    if heads.dtype() == candle_core::DType::F32 && heads.device().is_cpu() {
        let hl = HeadLayout {
            context: t,
            parts: 1,
            part: 0,
            heads: h,
        };
        return Ok(heads.contiguous()?.apply_op1(Heads::Merge(hl))?);
    }
    Ok(heads
        .transpose(1, 2)?
        .contiguous()?
        .reshape((b * t, h * dh))?)
}

/// One layout of a tensor of rows `[b·t, parts·d]` (row `bi·t + ti`, `d = heads·dh`) and the
/// per-head layout `[b, heads, t, dh]` of its part `part`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadLayout {
    /// Positions per sequence (`t`).
    pub context: usize,
    /// How many parts of width `d` a row holds (3 for q, k and v side by side).
    pub parts: usize,
    /// Which part.
    pub part: usize,
    /// Heads per part.
    pub heads: usize,
}

/// Rows to heads (`Split`) or heads to rows (`Merge`, zeros outside the part).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Heads {
    /// `[b·t, parts·d]` to part `part` as `[b, heads, t, dh]`.
    Split(HeadLayout),
    /// `[b, heads, t, dh]` to `[b·t, parts·d]`, the other parts zeros.
    Merge(HeadLayout),
}

impl HeadLayout {
    /// `(b, d, dh)` for rows of `dims`, checked.
    fn of_rows(&self, dims: &[usize]) -> candle_core::Result<(usize, usize, usize)> {
        let fits = |n: usize, w: usize| {
            let d = w / self.parts.max(1);
            let sizes = self.context > 0 && self.heads > 0 && self.part < self.parts;
            let whole = n.is_multiple_of(self.context.max(1))
                && w.is_multiple_of(self.parts.max(1))
                && d.is_multiple_of(self.heads.max(1));
            (sizes && whole).then(|| (n / self.context, d, d / self.heads))
        };
        match dims {
            &[n, w] => fits(n, w),
            _ => None,
        }
        .ok_or_else(|| self.mismatch(dims))
    }

    /// `(b, d, dh)` for heads of `dims`, checked.
    fn of_heads(&self, dims: &[usize]) -> candle_core::Result<(usize, usize, usize)> {
        match dims {
            &[b, h, t, dh] if h == self.heads && t == self.context && self.part < self.parts => {
                Ok((b, h * dh, dh))
            }
            _ => Err(self.mismatch(dims)),
        }
    }

    fn mismatch(&self, dims: &[usize]) -> candle_core::Error {
        candle_core::Error::Msg(format!("oai-heads: {dims:?} does not fit {self:?}"))
    }

    /// Where run `i` of the heads `[b, heads, t, dh]` (runs of `dh`) starts in the rows.
    fn row_of_head_run(&self, i: usize, d: usize, dh: usize) -> usize {
        let (h, t) = (self.heads, self.context);
        let (bi, hi, ti) = (i / (h * t), i / t % h, i % t);
        (bi * t + ti) * self.parts * d + self.part * d + hi * dh
    }

    /// Where run `i` of the rows `[b·t, parts·d]` (runs of `dh`) starts in the heads, `None`
    /// outside the part.
    fn head_of_row_run(&self, i: usize, dh: usize) -> Option<usize> {
        let (h, t) = (self.heads, self.context);
        let (row, within) = (i / (self.parts * h), i % (self.parts * h));
        let (bi, ti, hi) = (row / t, row % t, within % h);
        (within / h == self.part).then_some(((bi * h + hi) * t + ti) * dh)
    }
}

/// `len` values written in runs of `dh` (split between the pool's threads when long): run `i`
/// a copy of `src[at..at + dh]` where `source(i)` is `Some(at)`, zeros where it is `None`.
fn runs(
    len: usize,
    dh: usize,
    src: &[f32],
    source: impl Fn(usize) -> Option<usize> + Sync,
) -> Vec<f32> {
    let [out] = output::by_rows(len, dh, |first, [out]| {
        [write_rows(out, dh, |i, run| match source(first + i) {
            Some(at) => write_each(run, src[at..at + dh].iter().copied()),
            None => write_each(run, std::iter::repeat(0.0)),
        })]
    });
    out
}

impl CustomOp1 for Heads {
    fn name(&self) -> &'static str {
        match self {
            Heads::Split(_) => "oai-split-heads",
            Heads::Merge(_) => "oai-merge-heads",
        }
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let src = slice(s, l, self.name())?;
        let (out, shape) = match self {
            Heads::Split(hl) => {
                let (b, d, dh) = hl.of_rows(l.dims())?;
                let out = runs(b * d * hl.context, dh, src, |i| {
                    Some(hl.row_of_head_run(i, d, dh))
                });
                (out, Shape::from((b, hl.heads, hl.context, dh)))
            }
            Heads::Merge(hl) => {
                let (b, d, dh) = hl.of_heads(l.dims())?;
                let out = runs(b * hl.context * hl.parts * d, dh, src, |i| {
                    hl.head_of_row_run(i, dh)
                });
                (out, Shape::from((b * hl.context, hl.parts * d)))
            }
        };
        Ok((CpuStorage::F32(out), shape))
    }

    fn bwd(
        &self,
        _arg: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let back = match *self {
            Heads::Split(hl) => Heads::Merge(hl),
            Heads::Merge(hl) => Heads::Split(hl),
        };
        Ok(Some(grad.contiguous()?.apply_op1_no_bwd(&back)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{bits, seeded};
    use candle_core::Var;

    /// Split q, k and v out of one `[b·t, 3d]` tensor and merge a product of them back: the
    /// values and the gradient reaching the rows are those of candle's view ops, on a small
    /// shape and on one the pool's threads split.
    #[test]
    fn heads_give_the_bits_of_candles_view_ops() {
        for shape in [(3, 5, 4, 8), (4, 64, 4, 32)] {
            heads_match_view_ops(shape);
        }
    }

    fn heads_match_view_ops((b, t, h, dh): (usize, usize, usize, usize)) {
        let d = h * dh;
        let qkv = Var::from_tensor(&seeded(&[b * t, 3 * d], 1, 4.0)).unwrap();
        let up = seeded(&[b * t, d], 2, 4.0);
        let run = |fused: bool| {
            let part = |i: usize| -> Tensor {
                let hl = HeadLayout {
                    context: t,
                    parts: 3,
                    part: i,
                    heads: h,
                };
                match fused {
                    true => qkv.apply_op1(Heads::Split(hl)).unwrap(),
                    false => qkv
                        .reshape((b, t, 3 * d))
                        .unwrap()
                        .narrow(2, i * d, d)
                        .unwrap()
                        .reshape((b, t, h, dh))
                        .unwrap()
                        .transpose(1, 2)
                        .unwrap()
                        .contiguous()
                        .unwrap(),
                }
            };
            let (q, k, v) = (part(0), part(1), part(2));
            let y = ((&q * &k).unwrap() + &v).unwrap();
            let merged = match fused {
                true => {
                    let hl = HeadLayout {
                        context: t,
                        parts: 1,
                        part: 0,
                        heads: h,
                    };
                    y.apply_op1(Heads::Merge(hl)).unwrap()
                }
                false => y
                    .transpose(1, 2)
                    .unwrap()
                    .contiguous()
                    .unwrap()
                    .reshape((b * t, d))
                    .unwrap(),
            };
            let g = (&merged * &up)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            (bits(&q), bits(&merged), bits(g.get(&qkv).unwrap()))
        };
        assert_eq!(run(true), run(false));
    }

    #[test]
    fn shapes_that_do_not_fit_are_errors() {
        let hl = HeadLayout {
            context: 4,
            parts: 3,
            part: 1,
            heads: 2,
        };
        for dims in [vec![6, 12], vec![8, 10], vec![8, 12, 1]] {
            assert!(
                seeded(&dims, 1, 1.0).apply_op1(Heads::Split(hl)).is_err(),
                "{dims:?}"
            );
        }
        assert!(seeded(&[2, 3, 4, 2], 1, 1.0)
            .apply_op1(Heads::Merge(hl))
            .is_err());
        let bad_part = HeadLayout { part: 3, ..hl };
        assert!(seeded(&[8, 12], 1, 1.0)
            .apply_op1(Heads::Split(bad_part))
            .is_err());
    }
}
