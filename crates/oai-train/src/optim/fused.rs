//! The optimisers' updates on the CPU as one pass over each parameter: read the gradient once,
//! write the weights and the optimiser's state in place. Each element goes through exactly the
//! f32 operations, in the same order, of the tensor-op chain in [`super`] (candle's `affine(a,
//! b)` is `x * a + b` with `a` and `b` rounded to f32, which is spelled out here, `+ 0.0`
//! included: it turns a `-0.0` into `+0.0` as the chain does), so both give the same bits. Rust
//! never contracts `x * a + b` into an FMA, and splitting the elements between threads cannot
//! change an elementwise result. AdamW takes a shortcut with the same bits for idle parameters,
//! whose first moment sits in the subnormals (see [`idle_bound`]).

use std::cell::RefCell;

use candle_core::{CpuStorage, DType, InplaceOp1, Layout, Storage, Tensor};

use crate::spec::OptimizerSpec;
use crate::{Error, Result};

/// Parameters at least this long are split between threads.
pub(super) const PARALLEL_MIN: usize = 1 << 16;

/// One step's update rule, its constants rounded to f32 as candle's `affine` rounds them.
#[derive(Debug, Clone, Copy)]
pub(super) enum Rule {
    /// SGD.
    Sgd(Sgd),
    /// AdamW.
    AdamW(AdamW),
}

/// SGD: `g += decay * w`, then `buf = momentum * buf + g` when there is momentum, and
/// `w -= lr * buf` (or `lr * g`).
#[derive(Debug, Clone, Copy)]
pub(super) struct Sgd {
    scale: Option<f32>,
    decay: Option<f32>,
    momentum: Option<f32>,
    lr: f32,
}

/// AdamW with bias correction and decoupled weight decay.
#[derive(Debug, Clone, Copy)]
pub(super) struct AdamW {
    scale: Option<f32>,
    beta1: f32,
    one_minus_beta1: f32,
    beta2: f32,
    one_minus_beta2: f32,
    inv_c1: f32,
    inv_c2: f32,
    eps: f32,
    keep: f32,
    lr: f32,
    /// Where the shortcut for idle parameters holds: the smallest `|w * keep|` it is taken
    /// for (see [`idle_bound`]).
    idle: Option<f32>,
}

impl Rule {
    /// The rule of step `step` (0-based) with learning rate `lr`, the gradients multiplied by
    /// `grad_scale` first (clipping).
    pub(super) fn new(spec: &OptimizerSpec, grad_scale: Option<f64>, lr: f64, step: u64) -> Self {
        let scale = grad_scale.map(|s| s as f32);
        match *spec {
            OptimizerSpec::Sgd {
                momentum,
                weight_decay,
            } => Rule::Sgd(Sgd {
                scale,
                decay: (weight_decay != 0.0).then_some(weight_decay as f32),
                momentum: (momentum != 0.0).then_some(momentum as f32),
                lr: lr as f32,
            }),
            OptimizerSpec::AdamW {
                beta1,
                beta2,
                eps,
                weight_decay,
            } => {
                let (c1, c2) = bias_corrections(beta1, beta2, step);
                Rule::AdamW(AdamW {
                    idle: idle_bound(beta1 as f32, (1.0 / c1) as f32, eps as f32, lr as f32),
                    scale,
                    beta1: beta1 as f32,
                    one_minus_beta1: (1.0 - beta1) as f32,
                    beta2: beta2 as f32,
                    one_minus_beta2: (1.0 - beta2) as f32,
                    inv_c1: (1.0 / c1) as f32,
                    inv_c2: (1.0 / c2) as f32,
                    eps: eps as f32,
                    keep: (1.0 - lr * weight_decay) as f32,
                    lr: lr as f32,
                })
            }
        }
    }
}

/// The shortcut for idle parameters (a zero gradient and a first moment that is zero or
/// subnormal: a dead unit's). Their update is computed without touching a subnormal number,
/// which x86 CPUs handle in a microcode assist about a hundred times slower than other
/// arithmetic, and with the very bits of the full update:
/// - `m' = (m * beta1 + 0) + (0 * (1 - beta1) + 0)` is `m * beta1` rounded onto the subnormal
///   grid `2^-149` (and `+0` for a zero): `m = k * 2^-149`, so it is `k * beta1` rounded to an
///   integer, ties to even, which f64 computes exactly (`k < 2^23`, `beta1` has 24 bits).
/// - `v'` does not involve `m`; it is computed as always.
/// - The step `m' / c1 / (sqrt(v' / c2) + eps) * lr` is then below `|m'| / c1 / eps * lr <
///   2^-126 / c1 / eps * lr` (plus rounding), and where `|w * keep|` exceeds `2^26` times that
///   bound the step is under a quarter of its last place: `w' = w * keep` exactly. So the
///   full update runs with `m` taken as zero (which gives that `w'` and `v'`, and touches no
///   subnormal), and `m'` comes from the integer rounding.
///
/// Returns that threshold on `|w * keep|` (rounded up generously), or `None` where the
/// argument does not hold (`beta1` not in `[0, 1)`, `eps` not positive, a non-finite bound).
fn idle_bound(beta1: f32, inv_c1: f32, eps: f32, lr: f32) -> Option<f32> {
    if !(0.0..1.0).contains(&beta1) || eps.is_nan() || eps <= 0.0 {
        return None;
    }
    let tiny = 2f64.powi(-126);
    let grid = 2f64.powi(-149);
    // |t| <= |m'| inv_c1 + grid, |step| <= |t| / (eps (1 - 2^-24)) (1 + 2^-23) + grid,
    // |step * lr| <= |step| lr (1 + 2^-23) + grid: bounded with a 1% margin throughout
    let step = (tiny * inv_c1 as f64 + grid) / eps as f64 * 1.01 + grid;
    let bound = (step * (lr as f64).abs() * 1.01 + grid) * 2f64.powi(26) * 1.01;
    (bound.is_finite() && bound < f32::MAX as f64).then_some(bound as f32 * 1.01)
}

/// `m * beta1` for a first moment that is zero or subnormal, as f32 arithmetic rounds it, plus
/// zero: the integer significand times `beta1`, rounded to an integer, ties to even.
#[inline(always)]
fn idle_moment(m: f32, beta1: f32) -> f32 {
    // 2^52: adding it to a product in [0, 2^23) rounds the sum to an integer, ties to even,
    // and leaves that integer in the low bits (written this way, not with a saturating float
    // to integer cast, the loop stays vectorised)
    const ROUND: f64 = 4_503_599_627_370_496.0;
    let bits = m.to_bits();
    let k = (bits & 0x007f_ffff) as i32 as f64;
    let rounded = ((k * beta1 as f64 + ROUND).to_bits() as u32) & 0x007f_ffff;
    let sign = if rounded == 0 { 0 } else { bits & 0x8000_0000 };
    f32::from_bits(sign | rounded)
}

/// AdamW's bias corrections `1 - beta^t` of step `step` (0-based), in f64 with `libm::pow`:
/// the same bits on every platform, unlike `powi` / `powf`.
pub(super) fn bias_corrections(beta1: f64, beta2: f64, step: u64) -> (f64, f64) {
    let t = (step + 1) as f64;
    (1.0 - libm::pow(beta1, t), 1.0 - libm::pow(beta2, t))
}

/// Update `w` (a parameter's tensor) and its optimiser `state` (the rule's slots in order)
/// in place from the gradient `g`. `Ok(false)`, with nothing changed, when a tensor is not a
/// contiguous f32 tensor on the CPU of `w`'s shape, or two of them share storage: the caller
/// then takes the tensor-op path.
pub(super) fn update(rule: &Rule, w: &Tensor, g: &Tensor, state: &[&Tensor]) -> Result<bool> {
    let fits = |t: &Tensor| {
        t.device().is_cpu()
            && t.dtype() == DType::F32
            && t.layout().is_contiguous()
            && t.dims() == w.dims()
    };
    let all: Vec<&Tensor> = [w, g].into_iter().chain(state.iter().copied()).collect();
    // (the address of each tensor's storage, compared, never dereferenced)
    let storage = |t: &Tensor| -> *const Storage { &*t.storage_and_layout().0 };
    let shared = all
        .iter()
        .enumerate()
        .any(|(i, a)| all[i + 1..].iter().any(|b| storage(a) == storage(b)));
    if shared || !all.iter().all(|t| fits(t)) {
        return Ok(false);
    }
    let (g_storage, g_layout) = g.storage_and_layout();
    let (Storage::Cpu(CpuStorage::F32(g_all)), Some((start, end))) =
        (&*g_storage, g_layout.contiguous_offsets())
    else {
        return Ok(false);
    };
    let g = &g_all[start..end];
    match (*rule, state) {
        (Rule::Sgd(r @ Sgd { momentum: None, .. }), []) => {
            in_place(w, |w| for_chunks([w], g, |[w], g| sgd(&r, w, g)))?
        }
        (
            Rule::Sgd(
                r @ Sgd {
                    momentum: Some(momentum),
                    ..
                },
            ),
            [buf],
        ) => in_place(w, |w| {
            in_place(buf, |buf| {
                for_chunks([w, buf], g, |[w, buf], g| {
                    sgd_momentum(&r, momentum, w, buf, g)
                })
            })
        })??,
        (Rule::AdamW(r), [m, v]) => in_place(w, |w| {
            in_place(m, |m| {
                in_place(v, |v| {
                    for_chunks([w, m, v], g, |[w, m, v], g| adamw(&r, w, m, v, g))
                })
            })
        })???,
        _ => return Ok(false),
    }
    Ok(true)
}

// The passes. Each is generic over the clipping case, so that every loop is compiled on its
// own, and takes its slices as separate arguments, so that the compiler knows they do not
// overlap: both let it vectorise the loop.

/// How a pass scales the gradient first.
trait Clip: Copy {
    fn apply(self, g: f32) -> f32;
}

/// No clipping: the gradient as it is.
#[derive(Clone, Copy)]
struct Unclipped;

impl Clip for Unclipped {
    #[inline(always)]
    fn apply(self, g: f32) -> f32 {
        g
    }
}

/// Clipping by a factor: `affine(scale, 0)`.
#[derive(Clone, Copy)]
struct Scaled(f32);

impl Clip for Scaled {
    #[inline(always)]
    fn apply(self, g: f32) -> f32 {
        g * self.0 + 0.0
    }
}

/// SGD's coupled weight decay, `g + affine(w, decay, 0)`.
#[inline(always)]
fn decayed(g: f32, w: f32, decay: Option<f32>) -> f32 {
    match decay {
        Some(d) => g + (w * d + 0.0),
        None => g,
    }
}

fn sgd(r: &Sgd, w: &mut [f32], g: &[f32]) {
    match r.scale {
        Some(s) => sgd_pass(Scaled(s), r, w, g),
        None => sgd_pass(Unclipped, r, w, g),
    }
}

#[inline(never)]
fn sgd_pass(clip: impl Clip, r: &Sgd, w: &mut [f32], g: &[f32]) {
    let Sgd { decay, lr, .. } = *r;
    for (w, g) in w.iter_mut().zip(g) {
        let g = decayed(clip.apply(*g), *w, decay);
        *w -= g * lr + 0.0;
    }
}

fn sgd_momentum(r: &Sgd, momentum: f32, w: &mut [f32], buf: &mut [f32], g: &[f32]) {
    match r.scale {
        Some(s) => sgd_momentum_pass(Scaled(s), r, momentum, w, buf, g),
        None => sgd_momentum_pass(Unclipped, r, momentum, w, buf, g),
    }
}

#[inline(never)]
fn sgd_momentum_pass(
    clip: impl Clip,
    r: &Sgd,
    momentum: f32,
    w: &mut [f32],
    buf: &mut [f32],
    g: &[f32],
) {
    let Sgd { decay, lr, .. } = *r;
    for ((w, b), g) in w.iter_mut().zip(buf).zip(g) {
        let g = decayed(clip.apply(*g), *w, decay);
        *b = (*b * momentum + 0.0) + g;
        *w -= *b * lr + 0.0;
    }
}

fn adamw(r: &AdamW, w: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32]) {
    match r.scale {
        Some(s) => adamw_pass(Scaled(s), r, w, m, v, g),
        None => adamw_pass(Unclipped, r, w, m, v, g),
    }
}

#[inline(never)]
fn adamw_pass(clip: impl Clip, r: &AdamW, w: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32]) {
    let Some(idle_above) = r.idle else {
        return adamw_full(clip, r, w, m, v, g);
    };
    let runs = (w.chunks_mut(IDLE_RUN).zip(m.chunks_mut(IDLE_RUN)))
        .zip(v.chunks_mut(IDLE_RUN).zip(g.chunks(IDLE_RUN)));
    for ((w, m), (v, g)) in runs {
        match has_idle(m) {
            true => adamw_idle(clip, r, idle_above, w, m, v, g),
            false => adamw_full(clip, r, w, m, v, g),
        }
    }
}

/// Parameters are checked for idle ones, and take the shortcut or not, in runs of this many.
const IDLE_RUN: usize = 1024;

/// Whether a run holds a subnormal first moment (an idle parameter's, most likely; a zero one
/// costs nothing).
#[inline(always)]
fn has_idle(m: &[f32]) -> bool {
    // branch-free, so that it vectorises: `|m| - 1 < 0x7f_ffff` in bits is "subnormal"
    let found = m.iter().fold(0u32, |any, m| {
        any | (((m.to_bits() & 0x7fff_ffff).wrapping_sub(1)) < 0x007f_ffff) as u32
    });
    found != 0
}

/// The full update of every parameter.
#[inline(always)]
fn adamw_full(clip: impl Clip, r: &AdamW, w: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32]) {
    for (((w, m), v), g) in w.iter_mut().zip(m).zip(v).zip(g) {
        *m = adamw_one(r, clip.apply(*g), *m, w, v);
    }
}

/// The update with the shortcut for idle parameters ([`idle_bound`]): the same bits.
#[inline(always)]
fn adamw_idle(
    clip: impl Clip,
    r: &AdamW,
    idle_above: f32,
    w: &mut [f32],
    m: &mut [f32],
    v: &mut [f32],
    g: &[f32],
) {
    for (((w, m), v), g) in w.iter_mut().zip(m).zip(v).zip(g) {
        // taken as zero, an idle parameter's m gives its exact w' and v'; zeroed by a mask on
        // its bits, as a select the compiler could move past `m * beta1` and so multiply the
        // subnormal after all (it did)
        let idle = is_idle(*g, *m, *w, r.keep, idle_above);
        let m_idle = idle_moment(*m, r.beta1);
        let m_used = f32::from_bits(m.to_bits() & (idle as u32).wrapping_sub(1));
        let m_new = adamw_one(r, clip.apply(*g), m_used, w, v);
        *m = if idle { m_idle } else { m_new };
    }
}

/// Whether a parameter takes the shortcut: a zero gradient, a zero or subnormal first moment
/// and `|w * keep|` above the bound of [`idle_bound`].
#[inline(always)]
fn is_idle(g: f32, m: f32, w: f32, keep: f32, above: f32) -> bool {
    (g.to_bits() & 0x7fff_ffff) == 0
        && (m.to_bits() & 0x7f80_0000) == 0
        && (w * keep + 0.0).abs() > above
}

/// One parameter's update from its (clipped) gradient `g` and first moment `m`: writes `w`
/// and `v`, returns the new first moment.
#[inline(always)]
fn adamw_one(r: &AdamW, g: f32, m: f32, w: &mut f32, v: &mut f32) -> f32 {
    let m = (m * r.beta1 + 0.0) + (g * r.one_minus_beta1 + 0.0);
    *v = (*v * r.beta2 + 0.0) + ((g * g) * r.one_minus_beta2 + 0.0);
    let denom = (*v * r.inv_c2 + 0.0).sqrt() * 1.0 + r.eps;
    let step = (m * r.inv_c1 + 0.0) / denom;
    *w = (*w * r.keep + 0.0) - (step * r.lr + 0.0);
    m
}

/// Run `f` over matching chunks of the `written` slices and of `g`, one chunk per thread of
/// the pool candle's ops run on (a single chunk on this thread below [`PARALLEL_MIN`]
/// elements).
fn for_chunks<const N: usize>(
    written: [&mut [f32]; N],
    g: &[f32],
    f: impl Fn([&mut [f32]; N], &[f32]) + Sync,
) {
    let threads = oai_kernels::pool::threads();
    if g.len() < PARALLEL_MIN || threads < 2 {
        return f(written, g);
    }
    let len = g.len().div_ceil(threads);
    let mut parts = Vec::with_capacity(threads);
    let (mut rest, mut g_rest) = (written, g);
    while !g_rest.is_empty() {
        let take = len.min(g_rest.len());
        let (g_head, g_tail) = g_rest.split_at(take);
        let mut tails = Vec::with_capacity(N);
        let heads = rest.map(|r| {
            let (head, tail) = r.split_at_mut(take);
            tails.push(tail);
            head
        });
        rest = tails.try_into().expect("one tail per slice");
        g_rest = g_tail;
        parts.push((heads, g_head));
    }
    oai_kernels::pool::for_each_part(parts, |(heads, g)| f(heads, g));
}

/// Run `f` on the elements of `t` (a contiguous f32 CPU tensor), written in place.
fn in_place<R>(t: &Tensor, f: impl FnOnce(&mut [f32]) -> R) -> Result<R> {
    let op = InPlace {
        f: RefCell::new(Some(f)),
        out: RefCell::new(None),
    };
    t.inplace_op1(&op)?;
    op.out
        .into_inner()
        .ok_or_else(|| Error::malformed("optimiser update", "the in-place pass did not run"))
}

/// candle's hook for writing a tensor's storage in place, running one closure.
struct InPlace<F, R> {
    f: RefCell<Option<F>>,
    out: RefCell<Option<R>>,
}

impl<F: FnOnce(&mut [f32]) -> R, R> InplaceOp1 for InPlace<F, R> {
    fn name(&self) -> &'static str {
        "oai-optimizer-update"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> candle_core::Result<()> {
        let (CpuStorage::F32(all), Some((start, end))) = (storage, layout.contiguous_offsets())
        else {
            candle_core::bail!("oai-optimizer-update: not a contiguous f32 tensor")
        };
        if let Some(f) = self.f.borrow_mut().take() {
            *self.out.borrow_mut() = Some(f(&mut all[start..end]));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oai_core::seed::RngCore;

    /// Idle parameters (zero gradient, zero or subnormal first moment: most of them small
    /// subnormals, where `0.9 * m` rounds back to `m`) among ordinary ones and random bit
    /// patterns: the pass with the shortcut writes the bits of the pass without it, early and
    /// late in a run, clipped or not, with a large step and with an epsilon so small that
    /// nothing qualifies.
    #[test]
    fn the_idle_shortcut_gives_the_bits_of_the_full_update() {
        let mut rng = oai_core::Seed::from_u64(8).rng();
        let mut unit = || rng.next_u32() as f32 / u32::MAX as f32 - 0.5;
        let n = 1 << 16;
        let mut taken = 0;
        for (scale, lr, eps, step) in [
            (None, 1e-3, 1e-8, 0),
            (Some(0.37), 1e-3, 1e-8, 5000),
            (None, 1.0, 1e-8, 3),
            (Some(0.5), 1e-2, 1e-30, 100),
        ] {
            let spec = OptimizerSpec::AdamW {
                beta1: 0.9,
                beta2: 0.999,
                eps,
                weight_decay: 0.01,
            };
            let Rule::AdamW(with) = Rule::new(&spec, scale, lr, step) else {
                unreachable!("an AdamW rule")
            };
            let without = AdamW { idle: None, ..with };
            let (mut w, mut m, mut v, mut g) = (vec![], vec![], vec![], vec![]);
            let mut bits = oai_core::Seed::from_u64(step).rng();
            for i in 0..n {
                let (wi, vi) = (unit() * 0.1, unit().abs() * 1e-4);
                let (mi, gi) = match i % 5 {
                    0 => (f32::from_bits(bits.next_u32() % 6), 0.0),
                    1 => (-f32::from_bits(bits.next_u32() % 0x7f_ffff), -0.0),
                    2 => (
                        f32::from_bits(bits.next_u32()),
                        f32::from_bits(bits.next_u32()),
                    ),
                    3 => (0.0, 0.0),
                    _ => (unit() * 1e-3, unit() * 1e-2),
                };
                w.push(if i % 7 == 0 { unit() * 1e-30 } else { wi });
                m.push(mi);
                v.push(if i % 11 == 0 {
                    f32::from_bits(bits.next_u32())
                } else {
                    vi
                });
                g.push(gi);
            }
            let run = |r: &AdamW| {
                let (mut w, mut m, mut v) = (w.clone(), m.clone(), v.clone());
                adamw(r, &mut w, &mut m, &mut v, &g);
                (w, m, v)
            };
            let (a, b) = (run(&with), run(&without));
            for (what, a, b) in [("w", &a.0, &b.0), ("m", &a.1, &b.1), ("v", &a.2, &b.2)] {
                for (i, (x, y)) in a.iter().zip(b).enumerate() {
                    let same = x.to_bits() == y.to_bits() || x.is_nan() && y.is_nan();
                    assert!(same, "{what}[{i}]: {x:e} vs {y:e}, step {step}");
                }
            }
            if let Some(bound) = with.idle {
                taken += (0..n)
                    .filter(|&i| is_idle(g[i], m[i], w[i], with.keep, bound))
                    .count();
            }
        }
        assert!(taken > n, "the shortcut was taken for {taken} parameters");
        assert_eq!(idle_bound(0.9, 1.0, 0.0, 1e-3), None);
        assert_eq!(idle_bound(1.0, 1.0, 1e-8, 1e-3), None);
    }

    /// The idle moment is f32's `m * beta1 + 0` for every zero or subnormal `m`, both signs,
    /// at the usual beta and at 0.5 and 0.75 (which put odd significands exactly on a tie); at
    /// every 61st for other betas: 0, just below 1, a full significand.
    #[test]
    fn the_idle_moment_is_the_f32_product_for_every_subnormal() {
        let every = [(0.9f32, 1), (0.5, 1), (0.75, 1), (0.0, 61), (0.999, 61)];
        let more = [(1.0 - f32::EPSILON / 2.0, 61), (0.123_456_79, 61)];
        for (beta1, stride) in every.into_iter().chain(more) {
            let signed = |bits: u32| (bits..bits + 0x0080_0000).step_by(stride);
            for bits in signed(0).chain(signed(0x8000_0000)) {
                let m = f32::from_bits(bits);
                let (got, want) = (idle_moment(m, beta1), m * beta1 + 0.0);
                assert_eq!(got.to_bits(), want.to_bits(), "{m:e} * {beta1}");
            }
        }
    }
}
