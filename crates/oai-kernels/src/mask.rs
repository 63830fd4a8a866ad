//! `x * mask` for a constant mask (dropout's), whose backward computes only `x`'s gradient,
//! `grad * mask`: the bits of candle's `mul`, which would also compute, allocate and
//! accumulate (from zeros) a gradient for the mask that nothing reads.

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};

use super::rows::slice;

/// Inputs at least this long are split between the threads of the pool.
const PARALLEL_MIN: usize = 1 << 14;

/// Multiply elementwise by a mask of the input's length.
#[derive(Debug, Clone)]
pub struct MaskMul(pub Arc<[f32]>);

impl CustomOp1 for MaskMul {
    fn name(&self) -> &'static str {
        "oai-mask-mul"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let xs = slice(s, l, self.name())?;
        if xs.len() != self.0.len() {
            return Err(candle_core::Error::Msg(format!(
                "{}: {} elements, a mask of {}",
                self.name(),
                xs.len(),
                self.0.len()
            )));
        }
        let mut out = xs.to_vec();
        crate::pool::for_each_chunk(&mut out, PARALLEL_MIN, |start, chunk| {
            for (x, m) in chunk.iter_mut().zip(&self.0[start..]) {
                *x *= m;
            }
        });
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(grad.contiguous()?.apply_op1_no_bwd(self)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{bits, seeded};
    use candle_core::Var;

    /// Values and the input's gradient are candle's `mul`'s to the bit; a mask of another
    /// length is an error.
    #[test]
    fn masking_gives_the_bits_of_candles_mul() {
        for len in [5, PARALLEL_MIN * 2 + 3] {
            let x = Var::from_tensor(&seeded(&[len], 1, 4.0)).unwrap();
            let mask: Vec<f32> = (0..len).map(|i| [0.0, 1.25, -0.0][i % 3]).collect();
            let m = Tensor::from_slice(&mask, len, x.device()).unwrap();
            let up = seeded(&[len], 2, 4.0);
            let ours = x.apply_op1(MaskMul(mask.into())).unwrap();
            let candle = x.mul(&m).unwrap();
            assert_eq!(bits(&ours), bits(&candle));
            let grad = |y: &Tensor| {
                let g = (y * &up).unwrap().sum_all().unwrap().backward().unwrap();
                bits(g.get(&x).unwrap())
            };
            assert_eq!(grad(&ours), grad(&candle));
        }
        let x = seeded(&[4], 1, 1.0);
        assert!(x.apply_op1(MaskMul(vec![1.0; 3].into())).is_err());
    }
}
