//! Seeded tensors and bit comparisons for tests of kernels: the fused op and the composed ops it
//! replaces, compared bit for bit.

use candle_core::{Device, Tensor, Var};
use oai_core::seed::RngCore;

/// `shape` values uniform in `[-width/2, width/2)` from `seed`, on the CPU.
pub fn seeded(shape: &[usize], seed: u64, width: f32) -> Tensor {
    let mut rng = oai_core::Seed::from_u64(seed).rng();
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|_| (rng.next_u32() as f32 / u32::MAX as f32 - 0.5) * width)
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu).expect("as many values as the shape holds")
}

/// The bits of every f32 of `t`, in order.
pub fn bits(t: &Tensor) -> Vec<u32> {
    let v: Vec<f32> = t
        .flatten_all()
        .and_then(|t| t.to_vec1())
        .expect("an f32 tensor");
    v.iter().map(|x| x.to_bits()).collect()
}

/// Panics unless the largest absolute difference between `a` and `b` is at most `tol`.
pub fn assert_close(a: &Tensor, b: &Tensor, tol: f32) {
    let d = (a - b)
        .and_then(|d| d.abs())
        .and_then(|d| d.flatten_all())
        .and_then(|d| d.max(0))
        .and_then(|d| d.to_scalar::<f32>())
        .expect("two f32 tensors of one shape");
    assert!(d <= tol, "max difference {d}");
}

/// Panics unless `fused` and `composed` (the ops it replaces) give the same bits: the values,
/// and the gradient of every tensor in `vars` for one upstream gradient of both signs (seeded,
/// of the output's shape). The fused graph's backward runs twice, so an op whose backward
/// reuses what its forward kept must give the same gradient again. Each call of a closure
/// builds a fresh graph from the `vars` it captures; `what` names the case in a failure.
pub fn assert_same_bits<E: std::fmt::Display, F: std::fmt::Display>(
    what: &str,
    vars: &[&Var],
    fused: impl Fn() -> Result<Tensor, E>,
    composed: impl Fn() -> Result<Tensor, F>,
) {
    let fused = || fused().map_err(|e| e.to_string());
    let composed = || composed().map_err(|e| e.to_string());
    let run = |graph: &dyn Fn() -> Result<Tensor, String>| {
        let y = graph().unwrap_or_else(|e| panic!("{what}: {e}"));
        let upstream = seeded(y.dims(), 0x5eed, 4.0);
        let grads = (&y * &upstream)
            .and_then(|p| p.sum_all())
            .and_then(|s| s.backward())
            .unwrap_or_else(|e| panic!("{what}: backward: {e}"));
        let of_vars: Vec<Option<Vec<u32>>> = vars
            .iter()
            .map(|v| grads.get(v.as_tensor()).map(bits))
            .collect();
        (bits(&y), of_vars)
    };
    let (ours, theirs) = (run(&fused), run(&composed));
    assert_eq!(ours.0, theirs.0, "{what}: values");
    for (i, (a, b)) in ours.1.iter().zip(&theirs.1).enumerate() {
        assert_eq!(a, b, "{what}: the gradient of input {i}");
    }
    assert_eq!(
        run(&fused).1,
        ours.1,
        "{what}: the gradients of a second backward pass"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "values")]
    fn a_value_one_bit_off_is_caught() {
        let x = Var::from_tensor(&seeded(&[5, 7], 1, 3.0)).unwrap();
        assert_same_bits(
            "scaled",
            &[&x],
            || x.affine(2.0, 0.0),
            || x.affine(2.000_000_2, 0.0),
        );
    }

    #[test]
    #[should_panic(expected = "the gradient of input 0")]
    fn a_gradient_that_differs_is_caught() {
        let x = Var::from_tensor(&seeded(&[5, 7], 1, 3.0)).unwrap();
        assert_same_bits(
            "detached",
            &[&x],
            || x.affine(2.0, 0.0),
            || x.as_tensor().detach().affine(2.0, 0.0),
        );
    }

    #[test]
    fn the_same_graph_passes() {
        let x = Var::from_tensor(&seeded(&[5, 7], 1, 3.0)).unwrap();
        assert_same_bits("same", &[&x], || x.exp(), || x.exp());
    }
}
