//! The fixed-slice product on oai's own AVX-512 microkernel, for f32 on x86-64 CPUs with
//! AVX-512F (the gemm crate only runs its AVX2 kernels on a stable compiler).
//!
//! Every lane of a 512-bit accumulator is one output element, and the kernel walks a k-slice
//! one FMA at a time from zero, so each element is exactly the definition in
//! [`super::matmul`]: one FMA chain per slice, the slices added to the output left to right.
//! Nothing is ever summed across lanes, so the bits equal those of the gemm path and of the
//! scalar loop on every machine (unit tests compare all three bit for bit, and the
//! cross-machine test compares this path on the host with the gemm path on an emulated AVX2
//! CPU).
//!
//! Layout: the left operand is packed once per call, slice by slice, into panels of [`MR`]
//! rows (`[ks][MR]`); each unit of work packs its slice of the right operand into one panel of
//! [`NR`] columns (`[ks][NR]`), which stays in L1 while the kernel runs down the row panels.
//! Edges are zero-padded and their results never stored. Units (a column panel times a group
//! of row panels) write disjoint tiles of the output, one thread each; how they are spread
//! over threads never changes a bit. Each thread packs into buffers of its own that live from
//! product to product ([`with_buffer`]): packing writes every element the kernel reads, the
//! padding included, so they are never zeroed or allocated again.

use std::arch::x86_64::{
    __m512, _mm512_add_ps, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_mask_storeu_ps,
    _mm512_maskz_loadu_ps, _mm512_set1_ps, _mm512_setzero_ps,
};

use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::thread::LocalKey;

use super::matmul::{View, SLICE};

thread_local! {
    /// This thread's packed left operand.
    static PACKED_A: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    /// This thread's packed panel of the right operand.
    static PACKED_B: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// `f` on the first `len` floats of this thread's buffer `key`, grown (with zeros) when
/// shorter. What a product before left there is overwritten by packing before it is read.
fn with_buffer<R>(
    key: &'static LocalKey<RefCell<Vec<f32>>>,
    len: usize,
    f: impl FnOnce(&mut [f32]) -> R,
) -> R {
    key.with(|buffer| {
        // (a product never runs inside another on one thread; if one did, this would panic)
        let mut buffer = buffer.borrow_mut();
        if buffer.len() < len {
            buffer.resize(len, 0.0);
        }
        f(&mut buffer[..len])
    })
}

/// Rows of the output a kernel call computes.
const MR: usize = 14;
/// Registers of 16 lanes per row of a tile.
const NV: usize = 2;
/// Columns of the output a kernel call computes.
const NR: usize = 16 * NV;

/// Whether this CPU runs the kernel.
pub(super) fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
}

/// `dst [m, n]` (row-major) = `a [m, k] @ b [k, n]` by the fixed-slice definition, spread over
/// the pool when `parallel`; every element of `dst` is written (none is read first). Panics if
/// [`available`] is false or a view does not fit its storage (the caller checks both).
pub(super) fn product(
    dst: &mut [MaybeUninit<f32>],
    a: View<'_, f32>,
    b: View<'_, f32>,
    (m, k, n): (usize, usize, usize),
    parallel: bool,
) {
    assert!(available(), "the AVX-512 kernel needs AVX-512F");
    assert_eq!(dst.len(), m * n, "output size");
    if m == 0 || n == 0 || k == 0 {
        dst.iter_mut().for_each(|d| {
            d.write(0.0);
        });
        return;
    }
    with_buffer(&PACKED_A, m.div_ceil(MR) * MR * k, |packed_a| {
        // SAFETY: the CPU has AVX-512F (asserted above).
        #[allow(unsafe_code)]
        unsafe {
            pack_a(a, m, k, parallel, packed_a)
        };
        tiles(dst, packed_a, b, (m, k, n), parallel);
    });
}

/// The output's tiles from the packed left operand, as [`product`] describes.
fn tiles(
    dst: &mut [MaybeUninit<f32>],
    packed_a: &[f32],
    b: View<'_, f32>,
    (m, k, n): (usize, usize, usize),
    parallel: bool,
) {
    let row_panels = m.div_ceil(MR);
    let col_panels = n.div_ceil(NR);
    let threads = if parallel { crate::pool::threads() } else { 1 };
    // Enough units to keep every thread busy: split the rows too when the columns are few.
    let groups = if col_panels >= 4 * threads {
        1
    } else {
        (4 * threads).div_ceil(col_panels).min(row_panels)
    };
    let group_len = row_panels.div_ceil(groups);
    let out = Out {
        ptr: dst.as_mut_ptr().cast::<f32>(),
    };
    let unit = |u: usize| {
        let (g, jp) = (u / col_panels, u % col_panels);
        let (j0, p0) = (jp * NR, g * group_len);
        let cols = NR.min(n - j0);
        with_buffer(&PACKED_B, SLICE.min(k) * NR, |packed_b| {
            for (s, k0) in (0..k).step_by(SLICE).enumerate() {
                let ks = SLICE.min(k - k0);
                // SAFETY: the CPU has AVX-512F (asserted above).
                #[allow(unsafe_code)]
                unsafe {
                    pack_b(b, (k0, ks), (j0, cols), packed_b);
                }
                for p in p0..row_panels.min(p0 + group_len) {
                    let panel = &packed_a[row_panels * MR * k0 + p * MR * ks..][..MR * ks];
                    let rows = MR.min(m - p * MR);
                    // SAFETY: the CPU has AVX-512F (asserted above); the panels hold ks * MR and
                    // ks * NR floats; the tile's rows x cols elements from (p * MR, j0) lie inside
                    // the m x n output, and no other unit writes them (units own disjoint tiles).
                    #[allow(unsafe_code)]
                    unsafe {
                        kernel(
                            ks,
                            panel.as_ptr(),
                            packed_b.as_ptr(),
                            out.at(p * MR * n + j0),
                            n,
                            (rows, cols),
                            s > 0,
                        );
                    }
                }
            }
        })
    };
    let units = row_panels.div_ceil(group_len) * col_panels;
    if parallel {
        crate::pool::for_each_index(units, unit);
    } else {
        (0..units).for_each(unit);
    }
}

/// The output, written by units on several threads, each to its own tile.
#[derive(Clone, Copy)]
struct Out {
    ptr: *mut f32,
}

impl Out {
    /// The element `offset` floats in.
    ///
    /// # Safety
    /// `offset` lies inside the output.
    #[allow(unsafe_code)]
    unsafe fn at(self, offset: usize) -> *mut f32 {
        // SAFETY: the caller's contract.
        unsafe { self.ptr.add(offset) }
    }
}

// SAFETY: units write disjoint tiles of one buffer that outlives the parallel loop.
#[allow(unsafe_code)]
unsafe impl Send for Out {}
// SAFETY: as above; `Out` is only read (copied) across threads.
#[allow(unsafe_code)]
unsafe impl Sync for Out {}

/// `a` packed into `packed` (`row_panels * MR * k` floats, all written) slice by slice, each
/// slice panel by panel of `MR` rows as `[ks][MR]` (rows past `m` are zeros): slice `s` starts
/// at `row_panels * MR * k0`, its panel `p` at `p * MR * ks`.
///
/// # Safety
/// The CPU has AVX-512F (row copies compile to its vector moves).
#[allow(unsafe_code)]
#[target_feature(enable = "avx512f")]
unsafe fn pack_a(a: View<'_, f32>, m: usize, k: usize, parallel: bool, packed: &mut [f32]) {
    let row_panels = m.div_ceil(MR);
    let mut panels = Vec::with_capacity(row_panels * k.div_ceil(SLICE));
    let mut rest = packed;
    for k0 in (0..k).step_by(SLICE) {
        let ks = SLICE.min(k - k0);
        for p in 0..row_panels {
            let (panel, tail) = rest.split_at_mut(MR * ks);
            panels.push(((k0, ks), p, panel));
            rest = tail;
        }
    }
    let pack = |((k0, ks), p, panel): ((usize, usize), usize, &mut [f32])| {
        // SAFETY: the CPU has AVX-512F (this function's contract).
        unsafe { pack_a_panel(a, (k0, ks), (p * MR, MR.min(m - p * MR)), panel) }
    };
    if parallel && m * k >= PARALLEL_PACK {
        crate::pool::for_each_part(panels, pack);
    } else {
        panels.into_iter().for_each(pack);
    }
}

/// Left operands of at least this many elements are packed by the pool's threads.
const PARALLEL_PACK: usize = 1 << 15;

/// Rows `i0..i0 + rows` and columns `k0..k0 + ks` of `a` as `[ks][MR]` into `panel`, the
/// rows past `rows` zeros.
///
/// # Safety
/// The CPU has AVX-512F (row copies compile to its vector moves).
#[allow(unsafe_code)]
#[target_feature(enable = "avx512f")]
unsafe fn pack_a_panel(
    a: View<'_, f32>,
    (k0, ks): (usize, usize),
    (i0, rows): (usize, usize),
    panel: &mut [f32],
) {
    if rows < MR {
        for row in panel.chunks_exact_mut(MR) {
            row[rows..].fill(0.0);
        }
    }
    if a.rs == 1 {
        // stored transposed (a gradient read as grad^T): a panel row is contiguous
        for (kk, row) in panel.chunks_exact_mut(MR).enumerate() {
            let start = (k0 + kk) * a.cs + i0;
            // SAFETY: the CPU has AVX-512F (this function's contract).
            unsafe { copy_row(&mut row[..rows], &a.data[start..start + rows]) };
        }
    } else {
        // rows stored contiguously: 8 x 8 blocks through registers, the last row block
        // overlapping the one before where `rows` is not a multiple of 8 (the overlap is
        // written twice with the same values)
        let starts: Vec<usize> = match a.cs == 1 && rows >= 8 {
            true => (0..rows - 7)
                .step_by(8)
                .chain((rows % 8 != 0).then_some(rows - 8))
                .collect(),
            false => Vec::new(),
        };
        let full_k = if starts.is_empty() { 0 } else { ks / 8 * 8 };
        for &r0 in &starts {
            for kk in (0..full_k).step_by(8) {
                let src = (i0 + r0) * a.rs + k0 + kk;
                // the block's last row ends at src + 7 * rs + 8
                let block = &a.data[src..src + 7 * a.rs + 8];
                // SAFETY: the CPU has AVX-512F, so AVX; `block` holds the 8 rows of 8 floats
                // `rs` apart; the 8 rows written start at `kk * MR + r0` and hold 8 floats
                // each inside `panel` (kk + 8 <= ks, r0 + 8 <= rows <= MR).
                unsafe {
                    transpose8(
                        block.as_ptr(),
                        a.rs,
                        panel[kk * MR + r0..][..7 * MR + 8].as_mut_ptr(),
                        MR,
                    );
                }
            }
        }
        for r in 0..rows {
            for kk in full_k..ks {
                panel[kk * MR + r] = a.at(i0 + r, k0 + kk);
            }
        }
    }
}

/// Rows `k0..k0 + ks` and columns `j0..j0 + cols` of `b` as `[ks][NR]` (columns past `cols`
/// are zeros).
///
/// # Safety
/// The CPU has AVX-512F (row copies compile to its vector moves).
#[allow(unsafe_code)]
#[target_feature(enable = "avx512f")]
unsafe fn pack_b(
    b: View<'_, f32>,
    (k0, ks): (usize, usize),
    (j0, cols): (usize, usize),
    out: &mut [f32],
) {
    let out = &mut out[..ks * NR];
    if cols < NR {
        out.fill(0.0);
    }
    if b.cs == 1 {
        for (kk, row) in out.chunks_exact_mut(NR).enumerate() {
            let start = (k0 + kk) * b.rs + j0;
            // SAFETY: the CPU has AVX-512F (this function's contract).
            unsafe { copy_row(&mut row[..cols], &b.data[start..start + cols]) };
        }
        return;
    }
    // Stored transposed (a weight read as W^T): whole 8 x 8 blocks through registers.
    let (full_k, full_j) = if b.rs == 1 {
        (ks / 8 * 8, cols / 8 * 8)
    } else {
        (0, 0)
    };
    for jj in (0..full_j).step_by(8) {
        for kk in (0..full_k).step_by(8) {
            let src = (j0 + jj) * b.cs + k0 + kk;
            // the block's last row ends at src + 7 * cs + 8
            let block = &b.data[src..src + 7 * b.cs + 8];
            // SAFETY: the CPU has AVX-512F, so AVX; `block` holds the 8 rows of 8 floats
            // `cs` apart; the 8 rows written start at `kk * NR + jj` and hold 8 floats each
            // inside `out` (kk + 8 <= ks, jj + 8 <= NR).
            #[allow(unsafe_code)]
            unsafe {
                transpose8(
                    block.as_ptr(),
                    b.cs,
                    out[kk * NR + jj..][..7 * NR + 8].as_mut_ptr(),
                    NR,
                );
            }
        }
    }
    for jj in 0..cols {
        let from_k = if jj < full_j { full_k } else { 0 };
        for kk in from_k..ks {
            out[kk * NR + jj] = b.at(k0 + kk, j0 + jj);
        }
    }
}

/// `dst[i * ld_dst + t] = src[t * ld_src + i]` for `i, t < 8`: an 8 x 8 block transposed.
///
/// # Safety
/// The CPU has AVX; both blocks lie inside their buffers.
#[allow(unsafe_code)]
#[target_feature(enable = "avx")]
unsafe fn transpose8(src: *const f32, ld_src: usize, dst: *mut f32, ld_dst: usize) {
    use std::arch::x86_64::{
        _mm256_loadu_ps, _mm256_permute2f128_ps as lanes2, _mm256_shuffle_ps as shuf,
        _mm256_storeu_ps, _mm256_unpackhi_ps as hi, _mm256_unpacklo_ps as lo,
    };
    // SAFETY: the caller's contract.
    unsafe {
        let r: [_; 8] = std::array::from_fn(|t| _mm256_loadu_ps(src.add(t * ld_src)));
        let (t0, t1, t2, t3) = (
            lo(r[0], r[1]),
            hi(r[0], r[1]),
            lo(r[2], r[3]),
            hi(r[2], r[3]),
        );
        let (t4, t5, t6, t7) = (
            lo(r[4], r[5]),
            hi(r[4], r[5]),
            lo(r[6], r[7]),
            hi(r[6], r[7]),
        );
        let u = [
            shuf::<0x44>(t0, t2),
            shuf::<0xEE>(t0, t2),
            shuf::<0x44>(t1, t3),
            shuf::<0xEE>(t1, t3),
            shuf::<0x44>(t4, t6),
            shuf::<0xEE>(t4, t6),
            shuf::<0x44>(t5, t7),
            shuf::<0xEE>(t5, t7),
        ];
        for i in 0..4 {
            _mm256_storeu_ps(dst.add(i * ld_dst), lanes2::<0x20>(u[i], u[i + 4]));
            _mm256_storeu_ps(dst.add((i + 4) * ld_dst), lanes2::<0x31>(u[i], u[i + 4]));
        }
    }
}

/// `dst = src` for the short rows (at most [`NR`] floats) packing copies, as masked vector
/// moves instead of a call to `memcpy`.
///
/// # Safety
/// The CPU has AVX-512F.
#[allow(unsafe_code)]
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn copy_row(dst: &mut [f32], src: &[f32]) {
    assert!(
        dst.len() == src.len() && src.len() <= NR,
        "a row of a panel"
    );
    for v in 0..NV {
        let mask = lanes(src.len().saturating_sub(16 * v));
        // SAFETY: the masks cover only the `len` floats both slices hold; masked-off lanes
        // are never touched.
        unsafe {
            let x = _mm512_maskz_loadu_ps(mask, src.as_ptr().wrapping_add(16 * v));
            _mm512_mask_storeu_ps(dst.as_mut_ptr().wrapping_add(16 * v), mask, x);
        }
    }
}

/// Lanes `0..n` of a 16-lane mask.
fn lanes(n: usize) -> u16 {
    ((1u32 << n.min(16)) - 1) as u16
}

/// One tile: `c[r][j] (+)= sum over kk of a[kk][r] * b[kk][j]` as one FMA chain from zero per
/// element, for `r < rows`, `j < cols`; added to `c` when `accumulate`, else stored.
///
/// # Safety
/// The CPU has AVX-512F; `a` holds `ks * MR` floats and `b` `ks * NR`; `c` points at a tile of
/// `rows` rows `ldc` apart with `cols` writable floats each.
#[allow(unsafe_code)]
#[target_feature(enable = "avx512f")]
unsafe fn kernel(
    ks: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    (rows, cols): (usize, usize),
    accumulate: bool,
) {
    let mut acc: [__m512; NV * MR] = [_mm512_setzero_ps(); NV * MR];
    for kk in 0..ks {
        // SAFETY: kk < ks, within both panels (the caller's contract).
        unsafe {
            let bv: [__m512; NV] =
                std::array::from_fn(|v| _mm512_loadu_ps(b.add(kk * NR + 16 * v)));
            let ap = a.add(kk * MR);
            for r in 0..MR {
                let av = _mm512_set1_ps(*ap.add(r));
                for v in 0..NV {
                    acc[NV * r + v] = _mm512_fmadd_ps(av, bv[v], acc[NV * r + v]);
                }
            }
        }
    }
    let masks: [u16; NV] = std::array::from_fn(|v| lanes(cols.saturating_sub(16 * v)));
    for r in 0..rows {
        for (v, mask) in masks.into_iter().enumerate() {
            let p = c.wrapping_add(r * ldc + 16 * v);
            let mut x = acc[NV * r + v];
            // SAFETY: the masks cover only the tile's `cols` columns of row r, which the
            // caller guarantees writable; masked-off lanes are never touched.
            unsafe {
                if accumulate {
                    x = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, p), x);
                }
                _mm512_mask_storeu_ps(p, mask, x);
            }
        }
    }
}
