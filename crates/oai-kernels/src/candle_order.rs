//! Reductions over a row as candle (0.11, no MKL / Accelerate) computes them. The max
//! (`max_keepdim` over the last dim) keeps the first of equal values. Sums follow the very
//! order candle sums the contiguous rows of an f32 tensor on AVX2 CPUs (`sum_all`,
//! `sum_keepdim` over the last dims): four 8-lane
//! accumulators over blocks of 32 (`cpu::avx::vec_sum`), reduced pairwise (`(a0 + a1) +
//! (a2 + a3)`, then the two 128-bit halves, then two horizontal adds), and the tail added one
//! by one. Code that replaces a candle op and its reduction calls [`sum`] where candle summed,
//! and only where [`candle_sums_with_avx2`] (elsewhere candle takes another path, and so must
//! the caller).

/// Lanes per accumulator and accumulators, as in candle's AVX `vec_sum`.
const EPR: usize = 8;
const STEP: usize = 32;

/// Whether candle sums f32 with its AVX2 kernel on this CPU.
pub fn candle_sums_with_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The sum of `term(x)` over `xs`, in candle's order (see the module docs).
#[inline(always)]
pub fn sum(xs: &[f32], term: impl Fn(f32) -> f32) -> f32 {
    let full = xs.len() / STEP * STEP;
    let mut acc = [0f32; STEP];
    for block in xs[..full].chunks_exact(STEP) {
        for (a, x) in acc.iter_mut().zip(block) {
            *a += term(*x);
        }
    }
    // accumulator j holds lanes acc[8j..8j + 8]: (0 + 1) + (2 + 3), lane by lane
    let r: [f32; EPR] =
        std::array::from_fn(|q| (acc[q] + acc[EPR + q]) + (acc[2 * EPR + q] + acc[3 * EPR + q]));
    // the two 128-bit halves, then two horizontal adds
    let t: [f32; 4] = std::array::from_fn(|l| r[l] + r[l + 4]);
    let mut sum = (t[0] + t[1]) + (t[2] + t[3]);
    for x in &xs[full..] {
        sum += term(*x);
    }
    sum
}

/// The row's max as candle's `max_keepdim` finds it: the first element, replaced by each later
/// one that is greater (so the first of equal values, and NaN only where it comes first).
#[inline(always)]
pub(crate) fn max(row: &[f32]) -> f32 {
    row.iter().fold(row[0], |m, &v| if m < v { v } else { m })
}
