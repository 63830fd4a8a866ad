//! `libm::expf`, sixteen lanes at a time on AVX-512F, bit for bit.
//!
//! libm's `expf` (FreeBSD's `e_expf.c`) reduces `x = k ln2 + r` in f32, evaluates a rational
//! approximation of `exp(r)` and scales by `2^k`. Each of those steps is an IEEE operation
//! (mul, add, sub, div, truncation, an exact power-of-two scale), and this file performs the
//! very same operations in the same order on every lane, with no FMA, so every lane rounds
//! exactly as the scalar code does. The three branches of the reduction (`|x|` above 1.5 ln2,
//! between 0.5 ln2 and 1.5 ln2, below) share one formula with a per-lane `k`, `hi` and `lo`.
//! Inputs outside the vector's domain (`|x| <= 2^-14`, `x >= 87.34`, NaN, the subnormal
//! results between -103.97 and -87.34) go to `libm::expf` itself; results that underflow to
//! zero are zero. A unit test compares every 13th f32 bit pattern and the domain's edges with
//! `libm::expf`; an ignored one compares all 2^32.

use std::arch::x86_64::{
    __m512, __m512i, __mmask16, _mm512_add_epi32, _mm512_add_ps, _mm512_castps_si512,
    _mm512_castsi512_ps, _mm512_cmpge_epi32_mask, _mm512_cmpgt_epi32_mask, _mm512_cmple_epi32_mask,
    _mm512_cmplt_epi32_mask, _mm512_cvtepi32_ps, _mm512_cvttps_epi32, _mm512_div_ps,
    _mm512_loadu_ps, _mm512_mask_blend_epi32, _mm512_mask_blend_ps, _mm512_mul_ps,
    _mm512_set1_epi32, _mm512_set1_ps, _mm512_setzero_ps, _mm512_setzero_si512, _mm512_slli_epi32,
    _mm512_srli_epi32, _mm512_storeu_ps, _mm512_sub_epi32, _mm512_sub_ps,
};

// libm's constants, by their bits
const LN2_HI: f32 = f32::from_bits(0x3f31_7200);
const LN2_LO: f32 = f32::from_bits(0x35bf_be8e);
const INV_LN2: f32 = f32::from_bits(0x3fb8_aa3b);
const P1: f32 = f32::from_bits(0x3e2a_aa8f);
const P2: f32 = f32::from_bits(0xbb35_5215);

/// Whether this CPU runs it.
pub(super) fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
}

/// Every element of `xs` replaced by its `libm::expf`. Panics if [`available`] is false.
pub(super) fn exp_in_place(xs: &mut [f32]) {
    assert!(available(), "the vector expf needs AVX-512F");
    // SAFETY: the CPU has AVX-512F (asserted above).
    #[allow(unsafe_code)]
    unsafe {
        exp_avx512(xs)
    }
}

#[allow(unsafe_code)]
#[target_feature(enable = "avx512f")]
unsafe fn exp_avx512(xs: &mut [f32]) {
    let mut chunks = xs.chunks_exact_mut(16);
    for c in &mut chunks {
        // SAFETY: `c` holds 16 f32s.
        let x = unsafe { _mm512_loadu_ps(c.as_ptr()) };
        let (y, scalar) = exp16(x);
        let input: [f32; 16] = c.try_into().expect("16 lanes");
        // SAFETY: as above.
        unsafe { _mm512_storeu_ps(c.as_mut_ptr(), y) };
        if scalar != 0 {
            for (lane, out) in c.iter_mut().enumerate() {
                if scalar >> lane & 1 == 1 {
                    *out = libm::expf(input[lane]);
                }
            }
        }
    }
    for x in chunks.into_remainder() {
        *x = libm::expf(*x);
    }
}

/// `expf` of the lanes in the vector's domain (zero where it underflows to zero), and the
/// mask of the lanes left for the scalar function.
#[target_feature(enable = "avx512f")]
fn exp16(x: __m512) -> (__m512, __mmask16) {
    let int = |v: i32| _mm512_set1_epi32(v);
    let float = _mm512_set1_ps;
    let bits = _mm512_castps_si512(x);
    let hx = _mm512_srli_epi32::<1>(_mm512_slli_epi32::<1>(bits)); // |x|'s bits
    let negative = _mm512_cmplt_epi32_mask(bits, _mm512_setzero_si512());
    let sign: __m512i = _mm512_srli_epi32::<31>(bits);
    // 2^-14 < |x| < 87.34: no special case, k in [-126, 126]
    let domain = _mm512_cmpgt_epi32_mask(hx, int(0x3900_0000))
        & _mm512_cmplt_epi32_mask(hx, int(0x42ae_ac50));
    // x <= -103.97 (to -inf): exactly +0
    let zero = negative
        & _mm512_cmpge_epi32_mask(hx, int(0x42cf_f1b5))
        & _mm512_cmple_epi32_mask(hx, int(0x7f80_0000));
    let above_1_5_ln2 = _mm512_cmpgt_epi32_mask(hx, int(0x3f85_1592));
    let above_0_5_ln2 = _mm512_cmpgt_epi32_mask(hx, int(0x3eb1_7218));
    let half = _mm512_mask_blend_ps(negative, float(0.5), float(-0.5));
    let k_far = _mm512_cvttps_epi32(_mm512_add_ps(_mm512_mul_ps(float(INV_LN2), x), half));
    let k_near = _mm512_sub_epi32(int(1), _mm512_add_epi32(sign, sign));
    let k = _mm512_mask_blend_epi32(above_0_5_ln2, _mm512_setzero_si512(), k_near);
    let k = _mm512_mask_blend_epi32(above_1_5_ln2, k, k_far);
    let kf = _mm512_cvtepi32_ps(k);
    let hi = _mm512_sub_ps(x, _mm512_mul_ps(kf, float(LN2_HI)));
    let lo = _mm512_mul_ps(kf, float(LN2_LO));
    let r = _mm512_sub_ps(hi, lo);
    let rr = _mm512_mul_ps(r, r);
    let poly = _mm512_add_ps(float(P1), _mm512_mul_ps(rr, float(P2)));
    let c = _mm512_sub_ps(r, _mm512_mul_ps(rr, poly));
    let q = _mm512_div_ps(_mm512_mul_ps(r, c), _mm512_sub_ps(float(2.0), c));
    let y = _mm512_add_ps(float(1.0), _mm512_add_ps(_mm512_sub_ps(q, lo), hi));
    // 2^k, a normal number for k in [-126, 127]; times 1 (exact) where k = 0
    let scale = _mm512_castsi512_ps(_mm512_slli_epi32::<23>(_mm512_add_epi32(k, int(127))));
    let y = _mm512_mul_ps(y, scale);
    let y = _mm512_mask_blend_ps(zero, y, _mm512_setzero_ps());
    (y, !(domain | zero))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `exp_in_place` of the bit patterns `start, start + step, ...` below `end`, compared
    /// with `libm::expf` bit for bit.
    fn compare(start: u64, end: u64, step: u64) {
        let mut xs = Vec::with_capacity(1 << 16);
        let mut at = start;
        while at < end {
            xs.clear();
            while at < end && xs.len() < 1 << 16 {
                xs.push(f32::from_bits(at as u32));
                at += step;
            }
            let mut ys = xs.clone();
            exp_in_place(&mut ys);
            for (x, y) in xs.iter().zip(&ys) {
                let want = libm::expf(*x);
                assert!(
                    y.to_bits() == want.to_bits(),
                    "expf({x:e} = {:#x}): {y:e}, libm {want:e}",
                    x.to_bits()
                );
            }
        }
    }

    #[test]
    fn equals_libm_on_every_13th_bit_pattern_and_the_edges() {
        if !available() {
            eprintln!("skipped: no AVX-512F");
            return;
        }
        compare(0, 1 << 32, 13);
        // each threshold of the reduction and of the special cases, both signs, with neighbours
        for edge in [
            0x3900_0000u32,
            0x3eb1_7218,
            0x3f85_1592,
            0x42ae_ac50,
            0x42b1_7218,
            0x42cf_f1b5,
            0x7f80_0000,
            0,
        ] {
            for sign in [0, 0x8000_0000u32] {
                let at = u64::from(edge | sign);
                compare(at.saturating_sub(300), (at + 300).min(1 << 32), 1);
            }
        }
        // the tail shorter than a vector
        let mut odd = vec![-1.5f32, 0.25, 3.0];
        exp_in_place(&mut odd);
        assert_eq!(odd, [-1.5f32, 0.25, 3.0].map(libm::expf));
    }

    /// All 2^32 inputs (a minute or so): `cargo test -p oai-train --release -- --ignored expf`.
    #[test]
    #[ignore = "exhaustive: run by hand"]
    fn equals_libm_on_every_f32() {
        if available() {
            compare(0, 1 << 32, 1);
        }
    }
}
