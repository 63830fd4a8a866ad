//! `x + w` and `x * w` where `w`'s shape is the trailing dims of `x` (a bias, a layer norm's
//! weight, the position embeddings): the values of candle's `broadcast_add` / `broadcast_mul`,
//! with a backward that sums `w`'s gradient over `x`'s rows in one pass of contiguous rows.
//! candle sums a broadcast's gradient over leading dims with an index computation per element,
//! which cost the transformer a fifth of its step. The order is candle's: for each element of
//! `w`, from zero, row after row; so the bits are too.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, Storage, Tensor};

use super::output::{self, write_each, write_rows};
use crate::Result;

/// Add or multiply row by row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RowOp {
    Add,
    Mul,
}

impl RowOp {
    /// `x op w`, `w` broadcast over `x`'s leading dims.
    pub(crate) fn apply(self, x: &Tensor, w: &Tensor) -> Result<Tensor> {
        Ok(x.contiguous()?.apply_op2(&w.contiguous()?, self)?)
    }
}

/// The contiguous elements of a tensor `l` describes.
pub(super) fn slice<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> candle_core::Result<&'a [f32]> {
    let (CpuStorage::F32(v), Some((a, b))) = (s, l.contiguous_offsets()) else {
        return Err(candle_core::Error::Msg(format!(
            "{op} takes contiguous f32 tensors, got {:?}",
            s.dtype()
        )));
    };
    Ok(&v[a..b])
}

/// The values of a contiguous f32 CPU tensor's storage, as [`slice`].
pub(super) fn values<'a>(s: &'a Storage, l: &Layout, op: &str) -> candle_core::Result<&'a [f32]> {
    match s {
        Storage::Cpu(c) => slice(c, l, op),
        other => Err(candle_core::Error::Msg(format!(
            "{op} runs on the CPU, got {:?}",
            other.device().location()
        ))),
    }
}

/// An error unless the gradient `g` an op's backward got has the `x.len()` elements of its
/// input.
pub(super) fn check_gradient(op: &str, g: &[f32], x: &[f32]) -> candle_core::Result<()> {
    if g.len() != x.len() {
        return Err(candle_core::Error::Msg(format!(
            "{op}: gradient of {} elements for {}",
            g.len(),
            x.len()
        )));
    }
    Ok(())
}

/// Outputs at least this long are split between the threads of the pool, by rows.
pub(super) const PARALLEL_ROWS_MIN: usize = 1 << 14;

/// `f(first_row, out_rows...)` over the rows of `outs` (each `d` wide), split between the
/// pool's threads by whole rows.
pub(super) fn by_rows<T: Send, const N: usize>(
    outs: [&mut [T]; N],
    d: usize,
    f: impl Fn(usize, [&mut [T]; N]) + Sync,
) {
    let rows = outs[0].len() / d;
    let per_part = match rows * d < PARALLEL_ROWS_MIN {
        true => rows.max(1),
        false => rows.div_ceil(crate::pool::threads()),
    };
    let mut parts: Vec<Vec<&mut [T]>> = Vec::new();
    for out in outs {
        for (i, chunk) in out.chunks_mut(per_part * d).enumerate() {
            match parts.get_mut(i) {
                Some(p) => p.push(chunk),
                None => parts.push(vec![chunk]),
            }
        }
    }
    let parts = parts.into_iter().enumerate().collect();
    crate::pool::for_each_part(parts, |(i, chunks): (usize, Vec<&mut [T]>)| {
        let Ok(chunks) = <[&mut [T]; N]>::try_from(chunks) else {
            unreachable!("one chunk per output")
        };
        f(i * per_part, chunks)
    });
}

/// `w`'s dims must be `x`'s trailing dims; returns the row length.
fn row_len(x: &[usize], w: &[usize], op: &str) -> candle_core::Result<usize> {
    if w.len() > x.len() || x[x.len() - w.len()..] != *w {
        return Err(candle_core::Error::Msg(format!(
            "{op}: {w:?} is not the trailing dims of {x:?}"
        )));
    }
    Ok(w.iter().product::<usize>().max(1))
}

impl CustomOp2 for RowOp {
    fn name(&self) -> &'static str {
        match self {
            RowOp::Add => "oai-add-rows",
            RowOp::Mul => "oai-mul-rows",
        }
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let r = row_len(l1.dims(), l2.dims(), self.name())?;
        let (x, w) = (slice(s1, l1, self.name())?, slice(s2, l2, self.name())?);
        let [out] = output::by_rows(x.len(), r, |first, [out]| {
            let x = &x[first * r..];
            [write_rows(out, r, |i, o| {
                let pairs = x[i * r..][..r].iter().zip(w);
                match self {
                    RowOp::Add => write_each(o, pairs.map(|(x, w)| x + w)),
                    RowOp::Mul => write_each(o, pairs.map(|(x, w)| x * w)),
                }
            })]
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let sum = SumRows(w.shape().clone());
        Ok(match self {
            RowOp::Add => (Some(grad.clone()), Some(grad.apply_op1_no_bwd(&sum)?)),
            RowOp::Mul => (
                Some(grad.apply_op2_no_bwd(w, &RowOp::Mul)?),
                Some(grad.mul(x)?.apply_op1_no_bwd(&sum)?),
            ),
        })
    }
}

/// The sum of `x`'s rows of length `r`: for each column, from zero, row after row (the
/// columns split between the pool's threads when `x` is large).
pub(super) fn sum_rows(x: &[f32], r: usize) -> Vec<f32> {
    let split = match x.len() < PARALLEL_ROWS_MIN {
        true => usize::MAX,
        false => 0,
    };
    output::by_chunks(r, split, |start, acc| {
        let acc = write_each(acc, std::iter::repeat(0.0));
        for row in x.chunks(r) {
            for (a, x) in acc.iter_mut().zip(&row[start..]) {
                *a += x;
            }
        }
        acc
    })
}

/// The sum over the leading rows of a tensor, giving the shape of its trailing dims.
struct SumRows(Shape);

impl CustomOp1 for SumRows {
    fn name(&self) -> &'static str {
        "oai-sum-rows"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let r = row_len(l.dims(), self.0.dims(), self.name())?;
        let x = slice(s, l, self.name())?;
        Ok((CpuStorage::F32(sum_rows(x, r)), self.0.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{bits, seeded};
    use candle_core::Var;

    /// Values and both gradients are candle's broadcast ops' to the bit.
    #[test]
    fn rows_give_the_bits_of_candles_broadcasts() {
        for (xs, ws) in [
            (vec![64, 1024], vec![1024]),
            (vec![4, 16, 8], vec![8]),
            (vec![4, 16, 8], vec![16, 8]),
        ] {
            let x = Var::from_tensor(&seeded(&xs, 1, 2.0)).unwrap();
            let w = Var::from_tensor(&seeded(&ws, 2, 2.0)).unwrap();
            let up = seeded(&xs, 3, 2.0);
            for op in [RowOp::Add, RowOp::Mul] {
                let ours = op.apply(&x, &w).unwrap();
                let candle = match op {
                    RowOp::Add => x.broadcast_add(&w).unwrap(),
                    RowOp::Mul => x.broadcast_mul(&w).unwrap(),
                };
                assert_eq!(bits(&ours), bits(&candle), "{op:?} {xs:?} {ws:?}");
                let g1 = (&ours * &up)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap();
                let g2 = (&candle * &up)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap();
                for v in [&x, &w] {
                    let (a, b) = (g1.get(v).unwrap(), g2.get(v).unwrap());
                    assert_eq!(bits(a), bits(b), "{op:?} gradient of {:?}", v.dims());
                }
            }
        }
    }

    #[test]
    fn shapes_that_are_not_trailing_dims_are_errors() {
        let x = seeded(&[4, 8], 1, 1.0);
        assert!(RowOp::Add.apply(&x, &seeded(&[4], 2, 1.0)).is_err());
        assert!(RowOp::Mul.apply(&x, &seeded(&[2, 4, 8], 2, 1.0)).is_err());
    }
}
