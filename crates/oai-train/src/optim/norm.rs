//! Sums of squares of gradients, in the very order candle's `g.sqr()?.sum_all()` adds them,
//! without the intermediate tensor and one tensor per thread of the pool.
//!
//! The gradient norm goes into the log and into the clipping factor, so its bits are part of
//! a run. `sqr` is `v * v` and the sum is candle's (`kernels::candle_order`). Where candle would
//! take another path (no AVX2, other targets, a tensor that is not a contiguous f32 CPU
//! tensor) candle's own ops run instead. A unit test compares both bit for bit.

use candle_core::{Storage, Tensor};

use crate::Result;
use oai_kernels::candle_order::{candle_sums_with_avx2, sum};

/// `sum(x * x)` in candle's order.
fn sum_of_squares(xs: &[f32]) -> f32 {
    sum(xs, |x| x * x)
}

/// `g.sqr()?.sum_all()` of every tensor, the same bits; contiguous f32 CPU tensors are
/// summed on the pool, one tensor per unit.
pub(crate) fn sums_of_squares(grads: &[&Tensor]) -> Result<Vec<f32>> {
    let direct = oai_kernels::pool::map(grads.len(), |i| direct_sum(grads[i]));
    grads
        .iter()
        .zip(direct)
        .map(|(g, sum)| match sum {
            Some(s) => Ok(s),
            None => Ok(g.sqr()?.sum_all()?.to_scalar::<f32>()?),
        })
        .collect()
}

/// [`sum_of_squares`] of a contiguous f32 CPU tensor where candle sums with AVX2; `None` where
/// candle would take another path.
fn direct_sum(t: &Tensor) -> Option<f32> {
    if !candle_sums_with_avx2() {
        return None;
    }
    let (storage, layout) = t.storage_and_layout();
    match (&*storage, layout.contiguous_offsets()) {
        (Storage::Cpu(cpu), Some((start, end))) => {
            let values = cpu.as_slice::<f32>().ok()?;
            Some(sum_of_squares(&values[start..end]))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use oai_core::seed::RngCore;

    #[test]
    fn sums_equal_candles_bit_for_bit() {
        if !candle_sums_with_avx2() {
            eprintln!("no AVX2 here: candle's own ops sum (nothing to compare)");
        }
        let mut rng = oai_core::Seed::from_u64(11).rng();
        for len in [0, 1, 7, 31, 32, 33, 95, 1000, 4096, 65_536 + 13, 802_816] {
            let v: Vec<f32> = (0..len)
                .map(|i| {
                    let u = rng.next_u32() as f32 / u32::MAX as f32 - 0.5;
                    // magnitudes from 1e-20 to 1e10, so the order of the sums shows
                    u * 10f32.powi((i % 31) as i32 - 20)
                })
                .collect();
            let t = Tensor::from_vec(v, len, &Device::Cpu).unwrap();
            let want = t
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            let strided = Tensor::from_vec(
                (0..2 * len).map(|i| i as f32 * 1e-3).collect::<Vec<_>>(),
                (len, 2),
                &Device::Cpu,
            )
            .unwrap()
            .narrow(1, 0, 1)
            .unwrap();
            let want_strided = strided.sqr().unwrap().sum_all().unwrap();
            let got = sums_of_squares(&[&t, &strided]).unwrap();
            assert_eq!(got[0].to_bits(), want.to_bits(), "{len}");
            assert_eq!(
                got[1],
                want_strided.to_scalar::<f32>().unwrap(),
                "{len} strided"
            );
        }
    }
}
