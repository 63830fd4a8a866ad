//! Matmul whose summation order is fixed by definition, not by the machine.
//!
//! `gemm` (candle's CPU matmul) sizes its k-blocks from the L1 cache geometry it reads in sysfs,
//! so two CPUs of one instruction set sum a dot product in different orders. Here the k
//! dimension is cut into fixed slices of [`SLICE`] (never split further: gemm's k-block is at
//! least 512), and element `(i, j)` of the result is, exactly:
//!
//! ```text
//! p_s = fma(a[i,k_last], b[k_last,j], ... fma(a[i,k_first], b[k_first,j], 0))   for each slice s
//! out = ((p_0 + p_1) + p_2) + ...
//! ```
//!
//! Large products run as one gemm call per slice accumulating into the output (`dst += a_s @
//! b_s`, no temporaries). Shapes for which gemm takes a path that vectorises along k (its
//! horizontal and matrix-vector kernels: `m * n <= 256`, `m == 1` or `n == 1`) run the same
//! definition as a scalar loop instead. A unit test checks the gemm path against the scalar
//! definition bit for bit.

use std::mem::MaybeUninit;

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};
use gemm::Parallelism;

use super::grad_sink;

/// Length of the fixed k-slices.
pub const SLICE: usize = 256;

/// Batched products of at most this many multiply-adds each run one per thread.
const ACROSS_BATCH_MAX: usize = 1 << 21;

/// The custom op: `lhs [.., m, k] @ rhs [.., k, n]` with equal batch dims.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FixedSliceMatmul;

/// Floats the kernel runs on.
trait Elem: Copy + Default + Send + Sync + std::ops::Add<Output = Self> + 'static {
    const ONE: Self;
    fn fma(a: Self, b: Self, c: Self) -> Self;
    /// Whether oai's own SIMD kernel runs this float on this CPU.
    fn has_own_kernel() -> bool {
        false
    }
    /// `dst = a @ b` (`[m, k] @ [k, n]`) on oai's own SIMD kernel (only called when
    /// [`Elem::has_own_kernel`]).
    fn own_product(
        _dst: &mut [MaybeUninit<Self>],
        _a: View<'_, Self>,
        _b: View<'_, Self>,
        _mkn: (usize, usize, usize),
        _par: bool,
    ) {
        unreachable!("no SIMD kernel for this float")
    }
}

impl Elem for f32 {
    const ONE: Self = 1.0;
    fn fma(a: Self, b: Self, c: Self) -> Self {
        a.mul_add(b, c)
    }
    #[cfg(target_arch = "x86_64")]
    fn has_own_kernel() -> bool {
        super::avx512::available()
    }
    #[cfg(target_arch = "x86_64")]
    fn own_product(
        dst: &mut [MaybeUninit<Self>],
        a: View<'_, Self>,
        b: View<'_, Self>,
        mkn: (usize, usize, usize),
        par: bool,
    ) {
        super::avx512::product(dst, a, b, mkn, par);
    }
}

impl Elem for f64 {
    const ONE: Self = 1.0;
    fn fma(a: Self, b: Self, c: Self) -> Self {
        a.mul_add(b, c)
    }
}

/// A strided matrix, one operand of one product: element `(i, j)` at `data[i * rs + j * cs]`.
#[derive(Debug, Clone, Copy)]
pub(super) struct View<'a, T> {
    /// The storage, from the matrix's first element on.
    pub data: &'a [T],
    /// Row stride.
    pub rs: usize,
    /// Column stride.
    pub cs: usize,
}

impl<T: Copy> View<'_, T> {
    /// Element `(i, j)`.
    pub fn at(&self, i: usize, j: usize) -> T {
        self.data[i * self.rs + j * self.cs]
    }
}

/// How a product is computed; every path gives the definition's bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    /// oai's own SIMD kernel (f32 on AVX-512).
    Own,
    /// One gemm call per k-slice.
    Gemm,
    /// The definition as a scalar loop (shapes gemm would vectorise along k).
    Scalar,
}

impl Path {
    fn for_shape<T: Elem>(m: usize, n: usize) -> Self {
        if T::has_own_kernel() {
            Path::Own
        } else if scalar_shape(m, n) {
            Path::Scalar
        } else {
            Path::Gemm
        }
    }
}

/// One operand: where each batch matrix starts and its row / column strides.
struct Operand {
    offsets: Vec<usize>,
    rs: usize,
    cs: usize,
}

/// Problem sizes, checked from the two layouts.
struct Dims {
    batch: Vec<usize>,
    m: usize,
    k: usize,
    n: usize,
}

fn dims(l1: &Layout, l2: &Layout) -> candle_core::Result<Dims> {
    let (d1, d2) = (l1.dims(), l2.dims());
    let bad = || {
        candle_core::Error::Msg(format!(
            "fixed-slice matmul: cannot multiply {d1:?} by {d2:?} (want [.., m, k] @ [.., k, n], \
             equal batch dims)"
        ))
    };
    if d1.len() < 2 || d1.len() != d2.len() || d1[..d1.len() - 2] != d2[..d2.len() - 2] {
        return Err(bad());
    }
    let r = d1.len();
    if d1[r - 1] != d2[r - 2] {
        return Err(bad());
    }
    Ok(Dims {
        batch: d1[..r - 2].to_vec(),
        m: d1[r - 2],
        k: d1[r - 1],
        n: d2[r - 1],
    })
}

fn operand(l: &Layout, batch: &[usize]) -> Operand {
    let st = l.stride();
    let r = st.len();
    let count: usize = batch.iter().product();
    let mut offsets = Vec::with_capacity(count);
    for flat in 0..count {
        let (mut rest, mut off) = (flat, l.start_offset());
        for d in (0..batch.len()).rev() {
            off += (rest % batch[d]) * st[d];
            rest /= batch[d];
        }
        offsets.push(off);
    }
    Operand {
        offsets,
        rs: st[r - 2],
        cs: st[r - 1],
    }
}

/// Whether gemm would take a path that sums along k in SIMD lanes for this shape.
fn scalar_shape(m: usize, n: usize) -> bool {
    m * n <= 256 || m <= 1 || n <= 1
}

fn run<T: Elem>(
    lhs: &[T],
    l1: &Layout,
    rhs: &[T],
    l2: &Layout,
) -> candle_core::Result<(Vec<T>, Shape)> {
    let Dims { batch, m, k, n } = dims(l1, l2)?;
    let (a, b) = (operand(l1, &batch), operand(l2, &batch));
    let total = a.offsets.len() * m * n;
    let mut out: Vec<T> = Vec::with_capacity(total);
    let threads = crate::pool::threads();
    let len = (m * n).max(1);
    let path = Path::for_shape::<T>(m, n);
    if threads > 1 && a.offsets.len() >= threads && m * n * k <= ACROSS_BATCH_MAX {
        // Many small products (attention heads): one thread per product beats splitting each
        // one. Either way every output element is computed by one thread in the same order.
        let failed = std::sync::Mutex::new(None);
        let parts = out.spare_capacity_mut()[..total]
            .chunks_exact_mut(len)
            .enumerate()
            .collect();
        crate::pool::for_each_part(parts, |(bi, dst)| {
            if let Err(e) = product(dst, (lhs, &a), (rhs, &b), bi, (m, k, n), path, false) {
                *failed.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
            }
        });
        if let Some(e) = failed.into_inner().unwrap_or_else(|e| e.into_inner()) {
            return Err(e);
        }
    } else {
        let spare = &mut out.spare_capacity_mut()[..total];
        for (bi, dst) in spare.chunks_exact_mut(len).enumerate() {
            product(dst, (lhs, &a), (rhs, &b), bi, (m, k, n), path, threads > 1)?;
        }
    }
    // SAFETY: every product succeeded, and a product writes each of its m x n elements
    // (`product`'s contract); the products tile the first `total` elements.
    #[allow(unsafe_code)]
    unsafe {
        out.set_len(total);
    }
    let mut shape = batch;
    shape.extend([m, n]);
    Ok((out, Shape::from(shape)))
}

/// Product `bi` of the batch into `dst` on `path`, over the pool when `parallel`. On success
/// every element of `dst` is written.
fn product<T: Elem>(
    dst: &mut [MaybeUninit<T>],
    (lhs, a): (&[T], &Operand),
    (rhs, b): (&[T], &Operand),
    bi: usize,
    (m, k, n): (usize, usize, usize),
    path: Path,
    parallel: bool,
) -> candle_core::Result<()> {
    if k == 0 || m == 0 || n == 0 {
        dst.iter_mut().for_each(|d| {
            d.write(T::default());
        });
        return Ok(());
    }
    let (ao, bo) = (a.offsets[bi], b.offsets[bi]);
    let (lhs, rhs) = (
        lhs.get(ao..).unwrap_or_default(),
        rhs.get(bo..).unwrap_or_default(),
    );
    check_extent(lhs.len(), m, k, a.rs, a.cs)?;
    check_extent(rhs.len(), k, n, b.rs, b.cs)?;
    match path {
        Path::Own => {
            let view = |data, o: &Operand| View {
                data,
                rs: o.rs,
                cs: o.cs,
            };
            T::own_product(dst, view(lhs, a), view(rhs, b), (m, k, n), parallel);
        }
        Path::Scalar => scalar(dst, lhs, a, rhs, b, m, k, n),
        Path::Gemm => {
            // gemm is handed initialised memory: it may read what it overwrites
            let dst = init(dst);
            gemm_slices(dst, lhs, a, rhs, b, (m, k, n), parallel)
        }
    }
    Ok(())
}

/// One gemm call per k-slice, accumulating into `dst`; both views checked to fit.
fn gemm_slices<T: Elem>(
    dst: &mut [T],
    lhs: &[T],
    a: &Operand,
    rhs: &[T],
    b: &Operand,
    (m, k, n): (usize, usize, usize),
    parallel: bool,
) {
    let threads = crate::pool::threads();
    let par = if parallel && threads > 1 {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    };
    for (s, k0) in (0..k).step_by(SLICE).enumerate() {
        let ks = SLICE.min(k - k0);
        let (lhs_s, rhs_s) = (&lhs[k0 * a.cs..], &rhs[k0 * b.rs..]);
        // SAFETY: the whole m x k and k x n views were checked to lie inside their storage
        // (so each slice's does); dst is an owned m x n row-major buffer; none alias.
        #[allow(unsafe_code)]
        unsafe {
            gemm::gemm(
                m,
                n,
                ks,
                dst.as_mut_ptr(),
                1,
                n as isize,
                s > 0,
                lhs_s.as_ptr(),
                a.cs as isize,
                a.rs as isize,
                rhs_s.as_ptr(),
                b.cs as isize,
                b.rs as isize,
                T::ONE,
                T::ONE,
                false,
                false,
                false,
                par,
            );
        }
    }
}

/// A rows x cols view with strides (rs, cs) starting at 0 must fit in `len` elements.
fn check_extent(
    len: usize,
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
) -> candle_core::Result<()> {
    let last = (rows - 1) * rs + (cols - 1) * cs;
    if last >= len {
        return Err(candle_core::Error::Msg(format!(
            "fixed-slice matmul: operand view ends at {last}, storage holds {len}"
        )));
    }
    Ok(())
}

/// `dst` with every element set to zero, as initialised memory.
fn init<T: Elem>(dst: &mut [MaybeUninit<T>]) -> &mut [T] {
    dst.iter_mut().for_each(|d| {
        d.write(T::default());
    });
    // SAFETY: every element was just written.
    #[allow(unsafe_code)]
    unsafe {
        &mut *(dst as *mut [MaybeUninit<T>] as *mut [T])
    }
}

/// The definition, as a loop: fma chain per slice from zero, slices added left to right.
#[allow(clippy::too_many_arguments)]
fn scalar<T: Elem>(
    dst: &mut [MaybeUninit<T>],
    a: &[T],
    ao: &Operand,
    b: &[T],
    bo: &Operand,
    m: usize,
    k: usize,
    n: usize,
) {
    for i in 0..m {
        for j in 0..n {
            let mut acc = T::default();
            for (s, k0) in (0..k).step_by(SLICE).enumerate() {
                let mut p = T::default();
                for kk in k0..SLICE.min(k - k0) + k0 {
                    p = T::fma(a[i * ao.rs + kk * ao.cs], b[kk * bo.rs + j * bo.cs], p);
                }
                acc = if s == 0 { p } else { acc + p };
            }
            dst[i * n + j].write(acc);
        }
    }
}

impl CustomOp2 for FixedSliceMatmul {
    fn name(&self) -> &'static str {
        "oai-fixed-slice-matmul"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        match (s1, s2) {
            (CpuStorage::F32(a), CpuStorage::F32(b)) => {
                let (out, shape) = run(a, l1, b, l2)?;
                Ok((CpuStorage::F32(out), shape))
            }
            (CpuStorage::F64(a), CpuStorage::F64(b)) => {
                let (out, shape) = run(a, l1, b, l2)?;
                Ok((CpuStorage::F64(out), shape))
            }
            _ => Err(candle_core::Error::Msg(format!(
                "fixed-slice matmul runs on f32 or f64, got {:?} and {:?}",
                s1.dtype(),
                s2.dtype()
            ))),
        }
    }

    fn bwd(
        &self,
        a: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let ga = grad_sink::operand_gradient(a, || grad.apply_op2_no_bwd(&b.t()?, self))?;
        let gb = grad_sink::operand_gradient(b, || a.t()?.apply_op2_no_bwd(grad, self))?;
        Ok((ga, gb))
    }
}

/// `lhs [.., m, k] @ rhs [.., n, k]^T`: the fixed-slice matmul with the right operand read
/// transposed, for a linear layer's `x @ W^T` with `W [out, in]`. The same gemm calls on the
/// same values as `lhs @ rhs.t()`, so the same bits; but the graph holds no transpose node,
/// and the gradient of `rhs` is computed in `rhs`'s own layout (`grad^T @ lhs`), so candle adds
/// it up contiguously instead of through a transposed view.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FixedSliceMatmulT;

impl CustomOp2 for FixedSliceMatmulT {
    fn name(&self) -> &'static str {
        "oai-fixed-slice-matmul-t"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let r = l2.dims().len();
        if r < 2 {
            return Err(candle_core::Error::Msg(format!(
                "fixed-slice matmul: cannot transpose {:?}",
                l2.dims()
            )));
        }
        FixedSliceMatmul.cpu_fwd(s1, l1, s2, &l2.transpose(r - 2, r - 1)?)
    }

    fn bwd(
        &self,
        a: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        // d lhs = grad @ rhs; d rhs = grad^T @ lhs: the products `lhs @ rhs.t()`'s backward
        // computes, each element's k-sum in the same order.
        let ga = grad_sink::operand_gradient(a, || grad.apply_op2_no_bwd(b, &FixedSliceMatmul))?;
        let gb =
            grad_sink::operand_gradient(b, || grad.t()?.apply_op2_no_bwd(a, &FixedSliceMatmul))?;
        Ok((ga, gb))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, bits, seeded};
    use candle_core::{DType, Device, Tensor};

    fn rand(shape: &[usize], seed: u64) -> Tensor {
        seeded(shape, seed, 2.0)
    }

    /// The scalar definition for any shape, used as the reference.
    fn reference(a: &Tensor, b: &Tensor) -> Tensor {
        let (a, b) = (a.contiguous().unwrap(), b.contiguous().unwrap());
        let (la, lb) = (a.layout().clone(), b.layout().clone());
        let Dims { batch, m, k, n } = dims(&la, &lb).unwrap();
        let (av, bv) = (
            a.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            b.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        );
        let (ao, bo) = (operand(&la, &batch), operand(&lb, &batch));
        let mut out = nans(ao.offsets.len() * m * n);
        for (bi, dst) in out.chunks_exact_mut(m * n).enumerate() {
            scalar(
                dst,
                &av[ao.offsets[bi]..],
                &ao,
                &bv[bo.offsets[bi]..],
                &bo,
                m,
                k,
                n,
            );
        }
        let mut shape = batch;
        shape.extend([m, n]);
        Tensor::from_vec(read(out), shape, &Device::Cpu).unwrap()
    }

    /// An output buffer of NaNs: an element a path forgot to write stays NaN.
    fn nans(len: usize) -> Vec<MaybeUninit<f32>> {
        vec![MaybeUninit::new(f32::NAN); len]
    }

    fn read(out: Vec<MaybeUninit<f32>>) -> Vec<f32> {
        // SAFETY: every element was initialised by `nans` (and maybe overwritten since).
        #[allow(unsafe_code)]
        out.into_iter()
            .map(|x| unsafe { x.assume_init() })
            .collect()
    }

    /// The product of `a` and `b` (any layouts) computed on `path`.
    fn via(path: Path, a: &Tensor, b: &Tensor, parallel: bool) -> Tensor {
        fn raw(t: &Tensor) -> (Vec<f32>, Layout) {
            let (storage, layout) = t.storage_and_layout();
            match &*storage {
                candle_core::Storage::Cpu(CpuStorage::F32(v)) => (v.clone(), layout.clone()),
                _ => panic!("f32 on the CPU"),
            }
        }
        let ((av, la), (bv, lb)) = (raw(a), raw(b));
        let Dims { batch, m, k, n } = dims(&la, &lb).unwrap();
        let (ao, bo) = (operand(&la, &batch), operand(&lb, &batch));
        let mut out = nans(ao.offsets.len() * m * n);
        for (bi, dst) in out.chunks_exact_mut((m * n).max(1)).enumerate() {
            product(dst, (&av, &ao), (&bv, &bo), bi, (m, k, n), path, parallel).unwrap();
        }
        let mut shape = batch;
        shape.extend([m, n]);
        Tensor::from_vec(read(out), shape, &Device::Cpu).unwrap()
    }

    /// `t` with the same values stored transposed (a strided view of its last two dims).
    fn stored_transposed(t: &Tensor) -> Tensor {
        t.t().unwrap().contiguous().unwrap().t().unwrap()
    }

    /// gemm (where it sums along k in order) and oai's own SIMD kernel (where the CPU has it)
    /// give the scalar definition's bits for every shape, operand layout and thread split.
    #[test]
    fn every_path_equals_the_definition_bit_for_bit() {
        let own = f32::has_own_kernel();
        if !own {
            eprintln!("no AVX-512 here: oai's own kernel is not checked (the gemm path is)");
        }
        for (m, k, n) in [
            (64, 784, 1024),
            (1024, 64, 784),
            (33, 1000, 65),
            (128, 256, 40),
            (20, 513, 17),
            (64, 3, 64),
            (13, 257, 47),
            (64, 1024, 10),
            (1, 700, 50),
            (50, 700, 1),
            (8, 300, 8),
            (5, 0, 7),
        ] {
            let (a, b) = (rand(&[m, k], 1), rand(&[k, n], 2));
            let want = bits(&reference(&a, &b));
            for (at, bt) in [(false, false), (true, false), (false, true), (true, true)] {
                let a = if at { stored_transposed(&a) } else { a.clone() };
                let b = if bt { stored_transposed(&b) } else { b.clone() };
                let mut paths = Vec::new();
                if !scalar_shape(m, n) {
                    paths.push(Path::Gemm);
                }
                if own {
                    paths.push(Path::Own);
                }
                for path in paths {
                    for parallel in [false, true] {
                        let got = via(path, &a, &b, parallel);
                        assert_eq!(
                            bits(&got),
                            want,
                            "{m}x{k}x{n} {path:?} parallel {parallel} transposed {at} {bt}"
                        );
                    }
                }
            }
            let got = a.apply_op2_no_bwd(&b, &FixedSliceMatmul).unwrap();
            assert_eq!(bits(&got), want, "{m}x{k}x{n} through the op");
        }
    }

    /// Signed zeros, infinities and NaNs come out of every path as the definition gives them
    /// (each slice's chain starts from +0).
    #[test]
    fn special_values_follow_the_definition() {
        let (m, k, n) = (9, 300, 40);
        let mut av = rand(&[m, k], 3)
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        for (i, v) in av.iter_mut().enumerate() {
            match i % 97 {
                0 => *v = -0.0,
                1 => *v = 0.0,
                2 if i < k => *v = f32::INFINITY,
                3 if i / k == 4 => *v = f32::NAN,
                _ => {}
            }
        }
        // row 7 is all -0: every product is -0 or +0, every chain +0
        av[7 * k..8 * k].fill(-0.0);
        let a = Tensor::from_vec(av, (m, k), &Device::Cpu).unwrap();
        let b = rand(&[k, n], 4);
        let want = bits(&reference(&a, &b));
        assert!(want[7 * n..8 * n].iter().all(|x| *x == 0), "row of +0");
        let mut paths = vec![Path::Gemm];
        if f32::has_own_kernel() {
            paths.push(Path::Own);
        }
        for path in paths {
            assert_eq!(bits(&via(path, &a, &b, true)), want, "{path:?}");
        }
    }

    #[test]
    fn small_and_batched_shapes_follow_the_definition() {
        for (batch, m, k, n) in [
            (3, 1, 700, 50),
            (2, 50, 700, 1),
            (4, 8, 300, 8),
            (6, 64, 32, 64),
            // one thread per product (the batch split across threads), several k-slices each
            (4, 40, 600, 48),
        ] {
            let (a, b) = (rand(&[batch, m, k], 3), rand(&[batch, k, n], 4));
            let got = a.apply_op2_no_bwd(&b, &FixedSliceMatmul).unwrap();
            assert_eq!(bits(&got), bits(&reference(&a, &b)), "{batch}x{m}x{k}x{n}");
            assert_close(&got, &a.matmul(&b).unwrap(), 1e-3);
        }
    }

    #[test]
    fn gradients_use_the_same_kernel() {
        let a = candle_core::Var::from_tensor(&rand(&[40, 600], 5)).unwrap();
        let b = candle_core::Var::from_tensor(&rand(&[600, 30], 6)).unwrap();
        let y = a
            .as_tensor()
            .apply_op2(b.as_tensor(), FixedSliceMatmul)
            .unwrap();
        let grads = y.sum_all().unwrap().backward().unwrap();
        let ones = Tensor::ones((40, 30), DType::F32, &Device::Cpu).unwrap();
        let ga = grads.get(a.as_tensor()).unwrap();
        let gb = grads.get(b.as_tensor()).unwrap();
        assert_eq!(
            bits(ga),
            bits(&reference(&ones, &b.as_tensor().t().unwrap()))
        );
        assert_eq!(
            bits(gb),
            bits(&reference(&a.as_tensor().t().unwrap(), &ones))
        );
    }

    /// `a @ b^T` through the transposed-operand op gives the bits of `a @ b.t()`, and so do
    /// both gradients, 2-D (a linear layer) and batched (attention).
    #[test]
    fn the_transposed_operand_op_gives_the_bits_of_a_transpose() {
        for (a_shape, b_shape) in [
            (vec![64, 784], vec![1024, 784]),
            (vec![20, 300], vec![17, 300]),
            (vec![3, 4, 64, 32], vec![3, 4, 64, 32]),
        ] {
            let a = candle_core::Var::from_tensor(&rand(&a_shape, 5)).unwrap();
            let b = candle_core::Var::from_tensor(&rand(&b_shape, 6)).unwrap();
            let plain = a.apply_op2(&b.t().unwrap(), FixedSliceMatmul).unwrap();
            let fused = a.apply_op2(&b, FixedSliceMatmulT).unwrap();
            assert_eq!(bits(&plain), bits(&fused), "{a_shape:?} @ {b_shape:?}^T");
            let w = rand(plain.dims(), 7);
            let (gp, gf) = (
                (&plain * &w)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap(),
                (&fused * &w)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap(),
            );
            for v in [&a, &b] {
                let (p, f) = (gp.get(v).unwrap(), gf.get(v).unwrap());
                assert_eq!(bits(p), bits(f), "gradient of {:?}", v.dims());
            }
        }
    }

    #[test]
    fn bad_shapes_and_dtypes_are_errors() {
        let (a, b) = (rand(&[4, 5], 1), rand(&[6, 3], 2));
        assert!(a.apply_op2_no_bwd(&b, &FixedSliceMatmul).is_err());
        let (a, b) = (rand(&[2, 4, 5], 1), rand(&[3, 5, 3], 2));
        assert!(a.apply_op2_no_bwd(&b, &FixedSliceMatmul).is_err());
        let a16 = rand(&[4, 5], 1).to_dtype(DType::F16).unwrap();
        let b16 = rand(&[5, 3], 1).to_dtype(DType::F16).unwrap();
        assert!(a16.apply_op2_no_bwd(&b16, &FixedSliceMatmul).is_err());
    }
}
