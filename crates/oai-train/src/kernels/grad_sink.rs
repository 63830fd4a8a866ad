//! Parameter gradients handed from the fixed-slice matmul's backward straight to the trainer.
//!
//! candle's backward pass starts every gradient from a tensor of zeros and adds each
//! contribution to it: for the MLP's weights a 7.4 MB memset and an add pass over all of them
//! every step, memory-bound work as long as a matmul. While [`collecting`] runs a backward
//! pass, the matmul's backward gives the gradients of the tensors it was asked for to this
//! sink instead; several contributions to one tensor are added in the order candle would have
//! added them.
//!
//! The bits are candle's: a fixed-slice product is never -0 (each FMA chain starts from +0,
//! and a sum rounded to nearest is -0 only when both terms are), so `0 + g` is `g` exactly,
//! and `(0 + g1) + g2` is `g1 + g2`. A tensor must reach the loss through the matmul only: one
//! that also takes gradient through other ops would have its contributions summed in another
//! order, and the trainer refuses it ([`crate::Error::Malformed`]); the unit tests check every
//! model's gradients against candle's own backward pass bit for bit.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use candle_core::{Tensor, TensorId};

thread_local! {
    static SINK: RefCell<Option<Sink>> = const { RefCell::new(None) };
}

#[derive(Debug, Default)]
struct Sink {
    wanted: HashSet<TensorId>,
    grads: HashMap<TensorId, Tensor>,
}

/// Run `backward` (a backward pass on this thread) with the matmul's gradients of the `wanted`
/// tensors collected; returns its result and those gradients by tensor id.
pub(crate) fn collecting<R>(
    wanted: impl IntoIterator<Item = TensorId>,
    backward: impl FnOnce() -> R,
) -> (R, HashMap<TensorId, Tensor>) {
    /// Takes the sink down even when `backward` panics.
    struct Active;
    impl Drop for Active {
        fn drop(&mut self) {
            SINK.with(|s| s.borrow_mut().take());
        }
    }
    SINK.with(|s| {
        *s.borrow_mut() = Some(Sink {
            wanted: wanted.into_iter().collect(),
            grads: HashMap::new(),
        })
    });
    let active = Active;
    let out = backward();
    let grads = SINK.with(|s| s.borrow_mut().take().map(|s| s.grads).unwrap_or_default());
    drop(active);
    (out, grads)
}

/// The gradient of operand `t` of a matmul's backward pass: none when no gradient flows to `t`
/// (the input batch: nothing would read it, so `compute` does not run), else `compute()`
/// [`offer`]ed to the sink.
pub(crate) fn operand_gradient(
    t: &Tensor,
    compute: impl FnOnce() -> candle_core::Result<Tensor>,
) -> candle_core::Result<Option<Tensor>> {
    match t.track_op() {
        true => offer(t, compute()?),
        false => Ok(None),
    }
}

/// The gradient `grad` of `t`: kept by the sink when one is collecting `t` (`None` returned),
/// else handed back for candle's backward pass to add up.
pub(crate) fn offer(t: &Tensor, grad: Tensor) -> candle_core::Result<Option<Tensor>> {
    SINK.with(|s| {
        let mut s = s.borrow_mut();
        let Some(sink) = s.as_mut().filter(|sink| sink.wanted.contains(&t.id())) else {
            return Ok(Some(grad));
        };
        let sum = match sink.grads.remove(&t.id()) {
            Some(before) => before.add(&grad)?,
            None => grad,
        };
        sink.grads.insert(t.id(), sum);
        Ok(None)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::test_util::bits;
    use crate::model::{Dropout, Model, Pass};
    use crate::params::Params;
    use crate::spec::{ModelSpec, TransformerSpec};
    use crate::Kernels;
    use candle_core::Device;
    use oai_core::Seed;

    /// The gradient of every parameter, from candle's backward pass alone and through the
    /// sink: the same bits, for the MLP, the transformer and LoRA adapters.
    #[test]
    fn every_model_gets_candles_gradients_bit_for_bit() {
        let dev = Device::Cpu;
        let t = TransformerSpec {
            vocab: 256,
            context: 16,
            d_model: 32,
            heads: 4,
            layers: 2,
            d_ff: 64,
            dropout: 0.1,
        };
        let mlp = ModelSpec::Mlp {
            input: 300,
            hidden: vec![64, 48],
            classes: 10,
            dropout: 0.1,
        };
        let x_mlp = crate::kernels::test_util::seeded(&[24, 300], 1, 4.0);
        let y_mlp = Tensor::new(&[3u32; 24], &dev).unwrap();
        let ids: Vec<u32> = (0..4 * 16).map(|i| (i * 37 % 256) as u32).collect();
        let x_lm = Tensor::from_vec(ids.clone(), (4, 16), &dev).unwrap();
        let y_lm =
            Tensor::from_vec(ids.iter().map(|i| (i + 1) % 256).collect(), (4, 16), &dev).unwrap();
        let base = Params::init(
            &Model::new(&ModelSpec::Transformer(t.clone())).param_defs(),
            Seed::from_u64(5),
            &dev,
        )
        .unwrap();
        let lora = Model::Transformer {
            spec: t.clone(),
            lora: Some((4, 8.0)),
        };
        let cases = [
            (Model::new(&mlp), None, &x_mlp, &y_mlp),
            (
                Model::new(&ModelSpec::Transformer(t.clone())),
                None,
                &x_lm,
                &y_lm,
            ),
            (lora, Some(base.tensors().unwrap()), &x_lm, &y_lm),
        ];
        for (model, frozen, x, y) in cases {
            let mut p = Params::init(&model.param_defs(), Seed::from_u64(7), &dev).unwrap();
            if let Some(frozen) = frozen {
                p = p.with_frozen(frozen);
            }
            let pass = Pass::train(Kernels::Verifiable, Dropout::new(Seed::from_u64(9)));
            let plain = model.loss(&p, x, y, &pass).unwrap().backward().unwrap();
            let loss = model.loss(&p, x, y, &pass).unwrap();
            let ids = p.vars().values().map(|v| v.as_tensor().id());
            let (grads, sunk) = collecting(ids, || loss.backward());
            let grads = grads.unwrap();
            assert!(
                !sunk.is_empty(),
                "{model:?}: the matmul's gradients reach the sink"
            );
            for (name, var) in p.vars() {
                let id = var.as_tensor().id();
                let want = plain
                    .get(var.as_tensor())
                    .expect("every parameter has a gradient");
                let got = match (sunk.get(&id), grads.get(var.as_tensor())) {
                    (Some(g), None) | (None, Some(g)) => g,
                    _ => panic!("{name}: a gradient in exactly one place"),
                };
                assert_eq!(bits(got), bits(want), "{name}");
            }
        }
        // outside `collecting`, gradients go to candle as before
        let w = candle_core::Var::from_tensor(&x_mlp).unwrap();
        assert!(offer(w.as_tensor(), x_mlp.clone()).unwrap().is_some());
    }
}
