//! Elementwise exp, log and tanh from the pure-Rust `libm` crate, so their bits do not depend on
//! the C library of the machine (glibc, musl and macOS's libm round differently).

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};

/// Which function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unary {
    Exp,
    Log,
    Tanh,
}

impl Unary {
    /// The function of every element of `xs`: exp and tanh on sixteen lanes where the CPU has
    /// AVX-512F (the same bits as libm's, see `libm_avx512`).
    pub(super) fn f32_in_place(self, xs: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if self != Unary::Log && super::libm_avx512::available() {
            return match self {
                Unary::Exp => super::libm_avx512::exp_in_place(xs),
                _ => super::libm_avx512::tanh_in_place(xs),
            };
        }
        let f = match self {
            Unary::Exp => libm::expf,
            Unary::Log => libm::logf,
            Unary::Tanh => libm::tanhf,
        };
        xs.iter_mut().for_each(|x| *x = f(*x));
    }

    fn f64(self, x: f64) -> f64 {
        match self {
            Unary::Exp => libm::exp(x),
            Unary::Log => libm::log(x),
            Unary::Tanh => libm::tanh(x),
        }
    }
}

/// Inputs at least this long are split between the threads of the pool.
const PARALLEL_MIN: usize = 1 << 14;

/// `f` over a copy of the input, cut into chunks. Contiguous inputs only ([`crate::Kernels`]
/// makes them so). Elementwise, so splitting the input between threads cannot change a bit.
fn map<T: Copy + Send + Sync>(
    data: &[T],
    layout: &Layout,
    f: impl Fn(&mut [T]) + Send + Sync,
) -> candle_core::Result<Vec<T>> {
    let (start, end) = layout
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg("libm unary ops take contiguous tensors".into()))?;
    let data = &data[start..end];
    let mut out = data.to_vec();
    crate::pool::for_each_chunk(&mut out, PARALLEL_MIN, |_, chunk| f(chunk));
    Ok(out)
}

impl CustomOp1 for Unary {
    fn name(&self) -> &'static str {
        match self {
            Unary::Exp => "oai-libm-exp",
            Unary::Log => "oai-libm-log",
            Unary::Tanh => "oai-libm-tanh",
        }
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let out = match s {
            CpuStorage::F32(v) => CpuStorage::F32(map(v, l, |c| self.f32_in_place(c))?),
            CpuStorage::F64(v) => {
                CpuStorage::F64(map(v, l, |c| c.iter_mut().for_each(|x| *x = self.f64(*x)))?)
            }
            other => {
                return Err(candle_core::Error::Msg(format!(
                    "{} runs on f32 or f64, got {:?}",
                    self.name(),
                    other.dtype()
                )))
            }
        };
        Ok((out, l.shape().clone()))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let g = match self {
            Unary::Exp => grad.mul(res)?,
            Unary::Log => grad.div(arg)?,
            Unary::Tanh => grad.mul(&res.sqr()?.affine(-1.0, 1.0)?)?,
        };
        Ok(Some(g))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn values_and_gradients() {
        let xs = [-3.0f32, -0.5, 0.0, 0.25, 2.0];
        let x = Var::from_vec(xs.to_vec(), 5, &Device::Cpu).unwrap();
        for op in [Unary::Exp, Unary::Tanh] {
            let y = x.as_tensor().apply_op1(op).unwrap();
            let g = y.sum_all().unwrap().backward().unwrap();
            let (yv, gv) = (
                y.to_vec1::<f32>().unwrap(),
                g.get(x.as_tensor()).unwrap().to_vec1::<f32>().unwrap(),
            );
            for i in 0..5 {
                let (want, dwant) = match op {
                    Unary::Exp => (xs[i].exp(), xs[i].exp()),
                    _ => (xs[i].tanh(), 1.0 - xs[i].tanh().powi(2)),
                };
                assert!((yv[i] - want).abs() <= 1e-6 * want.abs().max(1.0), "{op:?}");
                assert!((gv[i] - dwant).abs() <= 1e-5, "{op:?}'");
            }
        }
        let pos = Var::from_vec(vec![0.5f32, 1.0, 4.0], 3, &Device::Cpu).unwrap();
        let y = pos.as_tensor().apply_op1(Unary::Log).unwrap();
        let g = y.sum_all().unwrap().backward().unwrap();
        assert_eq!(y.to_vec1::<f32>().unwrap()[1], 0.0);
        assert_eq!(
            g.get(pos.as_tensor()).unwrap().to_vec1::<f32>().unwrap(),
            vec![2.0, 1.0, 0.25]
        );
    }

    #[test]
    fn strided_inputs_are_refused_not_misread() {
        let x = Tensor::arange(0f32, 6.0, &Device::Cpu)
            .unwrap()
            .reshape((2, 3))
            .unwrap();
        assert!(x.t().unwrap().apply_op1_no_bwd(&Unary::Exp).is_err());
        let y = crate::Kernels::Verifiable.exp(&x.t().unwrap()).unwrap();
        let want: Vec<Vec<f32>> = (0..3)
            .map(|j| (0..2).map(|i| libm::expf((i * 3 + j) as f32)).collect())
            .collect();
        assert_eq!(y.to_vec2::<f32>().unwrap(), want);
    }
}
