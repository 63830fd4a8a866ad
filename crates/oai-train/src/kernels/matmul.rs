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

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};
use gemm::Parallelism;
use rayon::prelude::*;

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
}

impl Elem for f32 {
    const ONE: Self = 1.0;
    fn fma(a: Self, b: Self, c: Self) -> Self {
        a.mul_add(b, c)
    }
}

impl Elem for f64 {
    const ONE: Self = 1.0;
    fn fma(a: Self, b: Self, c: Self) -> Self {
        a.mul_add(b, c)
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
    let mut out = vec![T::default(); a.offsets.len() * m * n];
    let threads = candle_core::utils::get_num_threads();
    let len = (m * n).max(1);
    if threads > 1 && a.offsets.len() >= threads && m * n * k <= ACROSS_BATCH_MAX {
        // Many small products (attention heads): one thread per product beats splitting each
        // one. Either way every output element is computed by one thread in the same order.
        out.par_chunks_exact_mut(len)
            .enumerate()
            .try_for_each(|(bi, dst)| {
                product(dst, (lhs, &a), (rhs, &b), bi, (m, k, n), Parallelism::None)
            })?;
    } else {
        let par = if threads > 1 {
            Parallelism::Rayon(threads)
        } else {
            Parallelism::None
        };
        for (bi, dst) in out.chunks_exact_mut(len).enumerate() {
            product(dst, (lhs, &a), (rhs, &b), bi, (m, k, n), par)?;
        }
    }
    let mut shape = batch;
    shape.extend([m, n]);
    Ok((out, Shape::from(shape)))
}

/// Product `bi` of the batch into `dst`: gemm per k-slice, or the scalar definition.
fn product<T: Elem>(
    dst: &mut [T],
    (lhs, a): (&[T], &Operand),
    (rhs, b): (&[T], &Operand),
    bi: usize,
    (m, k, n): (usize, usize, usize),
    par: Parallelism,
) -> candle_core::Result<()> {
    let (ao, bo) = (a.offsets[bi], b.offsets[bi]);
    if k == 0 {
        return Ok(());
    }
    if scalar_shape(m, n) {
        scalar(dst, &lhs[ao..], a, &rhs[bo..], b, m, k, n);
        return Ok(());
    }
    for (s, k0) in (0..k).step_by(SLICE).enumerate() {
        let ks = SLICE.min(k - k0);
        let (lhs_s, rhs_s) = (&lhs[ao + k0 * a.cs..], &rhs[bo + k0 * b.rs..]);
        check_extent(lhs_s.len(), m, ks, a.rs, a.cs)?;
        check_extent(rhs_s.len(), ks, n, b.rs, b.cs)?;
        // SAFETY: both operand views were checked to lie inside their storage just above;
        // dst is an owned m x n row-major buffer; the three do not alias.
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
    Ok(())
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

/// The definition, as a loop: fma chain per slice from zero, slices added left to right.
#[allow(clippy::too_many_arguments)]
fn scalar<T: Elem>(
    dst: &mut [T],
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
            dst[i * n + j] = acc;
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
        let ga = grad.apply_op2_no_bwd(&b.t()?, self)?;
        let gb = a.t()?.apply_op2_no_bwd(grad, self)?;
        Ok((Some(ga), Some(gb)))
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
        let ga = grad.apply_op2_no_bwd(b, &FixedSliceMatmul)?;
        let gb = grad.t()?.apply_op2_no_bwd(a, &FixedSliceMatmul)?;
        Ok((Some(ga), Some(gb)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::test_util::{assert_close, seeded};
    use candle_core::{DType, Device, Tensor};

    fn rand(shape: &[usize], seed: u64) -> Tensor {
        seeded(shape, seed, 2.0)
    }

    fn bits(t: &Tensor) -> Vec<u32> {
        t.flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .map(|x| x.to_bits())
            .collect()
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
        let mut out = vec![0f32; ao.offsets.len() * m * n];
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
        Tensor::from_vec(out, shape, &Device::Cpu).unwrap()
    }

    #[test]
    fn gemm_path_equals_the_definition_bit_for_bit() {
        for (m, k, n) in [
            (64, 784, 1024),
            (33, 1000, 65),
            (128, 256, 40),
            (20, 513, 17),
            (64, 3, 64),
        ] {
            let (a, b) = (rand(&[m, k], 1), rand(&[k, n], 2));
            let got = a.apply_op2_no_bwd(&b, &FixedSliceMatmul).unwrap();
            assert_eq!(bits(&got), bits(&reference(&a, &b)), "{m}x{k}x{n}");
            // transposed operands (the x @ W^T of every linear layer) give the same bits
            let bt = b.t().unwrap().contiguous().unwrap().t().unwrap();
            let at = a.t().unwrap().contiguous().unwrap().t().unwrap();
            let got_t = at.apply_op2_no_bwd(&bt, &FixedSliceMatmul).unwrap();
            assert_eq!(bits(&got), bits(&got_t), "{m}x{k}x{n} transposed");
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
