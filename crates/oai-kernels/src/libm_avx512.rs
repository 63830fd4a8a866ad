//! `libm::expf` and `libm::tanhf`, sixteen lanes at a time on AVX-512F, bit for bit.
//!
//! libm's `expf` and `expm1f` (FreeBSD's `e_expf.c` and `s_expm1f.c`) reduce `x = k ln2 + r` in
//! f32, evaluate a rational approximation and scale by `2^k`; `tanhf` is a quotient of
//! `expm1f(±2|x|)`. Each step is an IEEE operation (mul, add, sub, div, truncation, an exact
//! power-of-two scale), and this file performs the very same operations in the same order on
//! every lane, with no FMA, so every lane rounds exactly as the scalar code does. Branches
//! become per-lane selects: every branch is computed and each lane keeps its own (where two
//! branches share a formula with per-lane constants, it is computed once). Inputs outside a
//! function's vector domain (NaN, huge, tiny or subnormal results) go to libm itself. Unit
//! tests compare every 13th f32 bit pattern and each branch's edges with libm; ignored ones
//! compare all 2^32.

use std::arch::x86_64::{
    __m512, __m512i, __mmask16, _mm512_add_epi32, _mm512_add_ps, _mm512_castps_si512,
    _mm512_castsi512_ps, _mm512_cmpeq_epi32_mask, _mm512_cmpge_epi32_mask, _mm512_cmpgt_epi32_mask,
    _mm512_cmple_epi32_mask, _mm512_cmplt_epi32_mask, _mm512_cmplt_ps_mask, _mm512_cvtepi32_ps,
    _mm512_cvttps_epi32, _mm512_div_ps, _mm512_loadu_ps, _mm512_mask_blend_epi32,
    _mm512_mask_blend_ps, _mm512_mul_ps, _mm512_set1_epi32, _mm512_set1_ps, _mm512_setzero_ps,
    _mm512_setzero_si512, _mm512_slli_epi32, _mm512_srli_epi32, _mm512_storeu_ps, _mm512_sub_epi32,
    _mm512_sub_ps, _mm512_xor_si512,
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
    apply(xs, exp16, libm::expf)
}

/// Every element of `xs` replaced by its `libm::tanhf`. Panics if [`available`] is false.
pub(super) fn tanh_in_place(xs: &mut [f32]) {
    apply(xs, tanh16, libm::tanhf)
}

/// `vector` on every 16 elements of `xs`, `scalar` on the lanes it leaves and on the tail.
fn apply(xs: &mut [f32], vector: unsafe fn(__m512) -> (__m512, __mmask16), scalar: fn(f32) -> f32) {
    assert!(available(), "the vector libm needs AVX-512F");
    // SAFETY: the CPU has AVX-512F (asserted above), which `vector` is compiled for.
    #[allow(unsafe_code)]
    unsafe {
        apply_avx512(xs, vector, scalar)
    }
}

/// `vector` on every 16 elements of `xs`, `scalar` on the lanes it leaves and on the tail.
///
/// # Safety
/// The CPU must have AVX-512F, which this function is compiled for.
#[allow(unsafe_code)]
#[target_feature(enable = "avx512f")]
unsafe fn apply_avx512(
    xs: &mut [f32],
    vector: unsafe fn(__m512) -> (__m512, __mmask16),
    scalar: fn(f32) -> f32,
) {
    let mut chunks = xs.chunks_exact_mut(16);
    for c in &mut chunks {
        // SAFETY: `c` holds 16 f32s; the CPU has AVX-512F (this function's contract).
        let (y, left) = unsafe { vector(_mm512_loadu_ps(c.as_ptr())) };
        let input: [f32; 16] = c.try_into().expect("16 lanes");
        // SAFETY: as above.
        unsafe { _mm512_storeu_ps(c.as_mut_ptr(), y) };
        if left != 0 {
            for (lane, out) in c.iter_mut().enumerate() {
                if left >> lane & 1 == 1 {
                    *out = scalar(input[lane]);
                }
            }
        }
    }
    for x in chunks.into_remainder() {
        *x = scalar(*x);
    }
}

/// The bits of `|x|` from the bits of `x`.
#[target_feature(enable = "avx512f")]
fn magnitude(bits: __m512i) -> __m512i {
    _mm512_srli_epi32::<1>(_mm512_slli_epi32::<1>(bits))
}

/// `(INV_LN2 * x + (±0.5 by x's sign)) as i32`: both functions' `k` for `|x|` above 1.5 ln2.
#[target_feature(enable = "avx512f")]
fn k_of(x: __m512, negative: __mmask16) -> __m512i {
    let half = _mm512_mask_blend_ps(negative, _mm512_set1_ps(0.5), _mm512_set1_ps(-0.5));
    _mm512_cvttps_epi32(_mm512_add_ps(
        _mm512_mul_ps(_mm512_set1_ps(INV_LN2), x),
        half,
    ))
}

/// `expf` of the lanes in the vector's domain (zero where it underflows to zero), and the
/// mask of the lanes left for the scalar function.
///
/// # Safety
/// The CPU must have AVX-512F, which this function is compiled for.
#[allow(unsafe_code)]
#[target_feature(enable = "avx512f")]
unsafe fn exp16(x: __m512) -> (__m512, __mmask16) {
    let int = |v: i32| _mm512_set1_epi32(v);
    let float = _mm512_set1_ps;
    let bits = _mm512_castps_si512(x);
    let hx = magnitude(bits);
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
    let k_far = k_of(x, negative);
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

// expm1f's constants, by their bits
const M1_LN2_HI: f32 = f32::from_bits(0x3f31_7180);
const M1_LN2_LO: f32 = f32::from_bits(0x3717_f7d1);
const Q1: f32 = f32::from_bits(0xbd08_8868);
const Q2: f32 = f32::from_bits(0x3acf_3010);

/// `expm1f` of the lanes in its vector domain (`x` in (-27 ln2, 80), not NaN), and the mask
/// of the other lanes.
///
/// # Safety
/// The CPU must have AVX-512F, which this function is compiled for.
#[allow(unsafe_code)]
#[target_feature(enable = "avx512f")]
unsafe fn expm1_16(x: __m512) -> (__m512, __mmask16) {
    let int = |v: i32| _mm512_set1_epi32(v);
    let float = _mm512_set1_ps;
    let bits = _mm512_castps_si512(x);
    let hx = magnitude(bits);
    let negative = _mm512_cmplt_epi32_mask(bits, _mm512_setzero_si512());
    let domain = (negative & _mm512_cmplt_epi32_mask(hx, int(0x4195_b844)))
        | (!negative & _mm512_cmplt_epi32_mask(hx, int(0x42a0_0000)));
    // |x| < 2^-25: x itself
    let tiny = _mm512_cmplt_epi32_mask(hx, int(0x3300_0000));
    let reduced = _mm512_cmpgt_epi32_mask(hx, int(0x3eb1_7218));
    let near = _mm512_cmplt_epi32_mask(hx, int(0x3f85_1592));
    let k_far = k_of(x, negative);
    let k_near = _mm512_mask_blend_epi32(negative, int(1), int(-1));
    let k = _mm512_mask_blend_epi32(near, k_far, k_near);
    let k = _mm512_mask_blend_epi32(reduced, _mm512_setzero_si512(), k);
    let kf = _mm512_cvtepi32_ps(k);
    let hi = _mm512_sub_ps(x, _mm512_mul_ps(kf, float(M1_LN2_HI)));
    let lo = _mm512_mul_ps(kf, float(M1_LN2_LO));
    let xr = _mm512_sub_ps(hi, lo);
    let c = _mm512_sub_ps(_mm512_sub_ps(hi, xr), lo);
    // unreduced lanes keep x, and c is 0
    let xr = _mm512_mask_blend_ps(reduced, x, xr);
    let c = _mm512_mask_blend_ps(reduced, _mm512_setzero_ps(), c);
    let hfx = _mm512_mul_ps(float(0.5), xr);
    let hxs = _mm512_mul_ps(xr, hfx);
    let r1 = _mm512_add_ps(
        float(1.0),
        _mm512_mul_ps(hxs, _mm512_add_ps(float(Q1), _mm512_mul_ps(hxs, float(Q2)))),
    );
    let t = _mm512_sub_ps(float(3.0), _mm512_mul_ps(r1, hfx));
    let e = _mm512_mul_ps(
        hxs,
        _mm512_div_ps(
            _mm512_sub_ps(r1, t),
            _mm512_sub_ps(float(6.0), _mm512_mul_ps(xr, t)),
        ),
    );
    // k = 0
    let y0 = _mm512_sub_ps(xr, _mm512_sub_ps(_mm512_mul_ps(xr, e), hxs));
    let e = _mm512_sub_ps(_mm512_mul_ps(xr, _mm512_sub_ps(e, c)), c);
    let e = _mm512_sub_ps(e, hxs);
    // k = -1
    let y_minus1 = _mm512_sub_ps(_mm512_mul_ps(float(0.5), _mm512_sub_ps(xr, e)), float(0.5));
    // k = 1
    let below_quarter = _mm512_cmplt_ps_mask(xr, float(-0.25));
    let y_plus1 = _mm512_mask_blend_ps(
        below_quarter,
        _mm512_add_ps(float(1.0), _mm512_mul_ps(float(2.0), _mm512_sub_ps(xr, e))),
        _mm512_mul_ps(float(-2.0), _mm512_sub_ps(e, _mm512_add_ps(xr, float(0.5)))),
    );
    let twopk = _mm512_castsi512_ps(_mm512_slli_epi32::<23>(_mm512_add_epi32(k, int(0x7f))));
    let uf = _mm512_castsi512_ps(_mm512_slli_epi32::<23>(_mm512_sub_epi32(int(0x7f), k)));
    let x_minus_e = _mm512_sub_ps(xr, e);
    // k < 0 or k > 56
    let y_far = _mm512_sub_ps(
        _mm512_mul_ps(_mm512_add_ps(x_minus_e, float(1.0)), twopk),
        float(1.0),
    );
    // 2 <= k < 23
    let y_low = _mm512_mul_ps(
        _mm512_add_ps(x_minus_e, _mm512_sub_ps(float(1.0), uf)),
        twopk,
    );
    // 23 <= k <= 56
    let y_high = _mm512_mul_ps(
        _mm512_add_ps(_mm512_sub_ps(xr, _mm512_add_ps(e, uf)), float(1.0)),
        twopk,
    );
    let is = |v: i32| _mm512_cmpeq_epi32_mask(k, int(v));
    let far =
        _mm512_cmplt_epi32_mask(k, _mm512_setzero_si512()) | _mm512_cmpgt_epi32_mask(k, int(56));
    let low = _mm512_cmplt_epi32_mask(k, int(23));
    let y = _mm512_mask_blend_ps(low, y_high, y_low);
    let y = _mm512_mask_blend_ps(far, y, y_far);
    let y = _mm512_mask_blend_ps(is(1), y, y_plus1);
    let y = _mm512_mask_blend_ps(is(-1), y, y_minus1);
    let y = _mm512_mask_blend_ps(is(0), y, y0);
    let y = _mm512_mask_blend_ps(tiny, y, x);
    (y, !domain)
}

/// `-v`: the sign bit flipped, as Rust's negation does.
#[target_feature(enable = "avx512f")]
fn negate(v: __m512) -> __m512 {
    let sign = _mm512_set1_epi32(i32::MIN);
    _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(v), sign))
}

/// `tanhf` of every lane but NaNs (and lanes whose `expm1f` the vector leaves), and the mask
/// of those.
///
/// # Safety
/// The CPU must have AVX-512F, which this function is compiled for.
#[allow(unsafe_code)]
#[target_feature(enable = "avx512f")]
unsafe fn tanh16(x: __m512) -> (__m512, __mmask16) {
    let int = |v: i32| _mm512_set1_epi32(v);
    let float = _mm512_set1_ps;
    let bits = _mm512_castps_si512(x);
    let w = magnitude(bits);
    let negative = _mm512_cmplt_epi32_mask(bits, _mm512_setzero_si512());
    let abs = _mm512_castsi512_ps(w);
    let nan = _mm512_cmpgt_epi32_mask(w, int(0x7f80_0000));
    let above_10 = _mm512_cmpgt_epi32_mask(w, int(0x4120_0000));
    let above_log3_2 = _mm512_cmpgt_epi32_mask(w, int(0x3f0c_9f54));
    let above_log5_3_2 = _mm512_cmpgt_epi32_mask(w, int(0x3e82_c578));
    let normal = _mm512_cmpge_epi32_mask(w, int(0x0080_0000));
    let two_abs = _mm512_mul_ps(float(2.0), abs);
    let arg = _mm512_mask_blend_ps(above_log5_3_2, _mm512_mul_ps(float(-2.0), abs), two_abs);
    // SAFETY: the CPU has AVX-512F (this function's contract).
    let (t, left) = unsafe { expm1_16(arg) };
    let t_plus_2 = _mm512_add_ps(t, float(2.0));
    let far = _mm512_sub_ps(float(1.0), _mm512_div_ps(float(2.0), t_plus_2));
    let mid = _mm512_div_ps(t, t_plus_2);
    let near = _mm512_div_ps(negate(t), t_plus_2);
    let tt = _mm512_mask_blend_ps(normal, abs, near);
    let tt = _mm512_mask_blend_ps(above_log5_3_2, tt, mid);
    let tt = _mm512_mask_blend_ps(above_log3_2, tt, far);
    let tt = _mm512_mask_blend_ps(above_10, tt, float(1.0));
    let y = _mm512_mask_blend_ps(negative, tt, negate(tt));
    let expm1_used = normal & !above_10;
    (y, nan | (left & expm1_used))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A vector function and the libm function it must equal.
    type Pair = (fn(&mut [f32]), fn(f32) -> f32);

    /// `vector` of the bit patterns `start, start + step, ...` below `end`, compared with
    /// `scalar` bit for bit.
    fn compare((vector, scalar): Pair, (start, end, step): (u64, u64, u64)) {
        let mut xs = Vec::with_capacity(1 << 16);
        let mut at = start;
        while at < end {
            xs.clear();
            while at < end && xs.len() < 1 << 16 {
                xs.push(f32::from_bits(at as u32));
                at += step;
            }
            let mut ys = xs.clone();
            vector(&mut ys);
            for (x, y) in xs.iter().zip(&ys) {
                let want = scalar(*x);
                assert!(
                    y.to_bits() == want.to_bits(),
                    "f({x:e} = {:#x}): {y:e}, libm {want:e}",
                    x.to_bits()
                );
            }
        }
    }

    const EXP: Pair = (exp_in_place, libm::expf);
    const TANH: Pair = (tanh_in_place, libm::tanhf);

    /// Every pattern within 300 of each edge, both signs.
    fn edges(f: Pair, edges: &[u32]) {
        for edge in edges.iter().chain(&[0, 0x7f80_0000]) {
            for sign in [0, 0x8000_0000u32] {
                let at = u64::from(edge | sign);
                compare(f, (at.saturating_sub(300), (at + 300).min(1 << 32), 1));
            }
        }
        // the tail shorter than a vector
        let xs = [-1.5f32, 0.25, 3.0];
        let mut ys = xs;
        f.0(&mut ys);
        assert_eq!(ys.map(f32::to_bits), xs.map(|x| f.1(x).to_bits()));
    }

    /// Every 13th f32 bit pattern and every pattern within 300 of each of `at`.
    fn sweep(f: Pair, at: &[u32]) {
        if !available() {
            eprintln!("skipped: no AVX-512F");
            return;
        }
        compare(f, (0, 1 << 32, 13));
        edges(f, at);
    }

    #[test]
    fn exp_equals_libm_on_every_13th_bit_pattern_and_the_edges() {
        // each threshold of the reduction and of the special cases
        let at = [
            0x3900_0000,
            0x3eb1_7218,
            0x3f85_1592,
            0x42ae_ac50,
            0x42b1_7218,
            0x42cf_f1b5,
        ];
        sweep(EXP, &at);
    }

    #[test]
    fn tanh_equals_libm_on_every_13th_bit_pattern_and_the_edges() {
        // tanhf's thresholds, and (at twice their size) expm1f's
        let at = [
            0x0080_0000,
            0x3e82_c578,
            0x3f0c_9f54,
            0x4120_0000,
            0x3280_0000, // 2^-26: expm1f(2^-25)
            0x3e31_7218,
            0x3f05_1592,
            0x4115_b844,
            0x3e80_0000, // 0.25: expm1f's k = 1 branch at -0.25 reduced
            0x41a0_0000, // k = 23 and beyond
        ];
        sweep(TANH, &at);
    }

    /// All 2^32 inputs (a minute or so each):
    /// `cargo test -p oai-train --lib -- --ignored every_f32`.
    #[test]
    #[ignore = "exhaustive: run by hand"]
    fn exp_and_tanh_equal_libm_on_every_f32() {
        if available() {
            compare(EXP, (0, 1 << 32, 1));
            compare(TANH, (0, 1 << 32, 1));
        }
    }
}
