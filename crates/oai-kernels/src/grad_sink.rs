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
//! order, and the caller must refuse it (oai-train's trainer does); oai-train's tests check every
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
pub fn collecting<R>(
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
    use crate::testing::seeded;

    /// Outside [`collecting`], gradients go to candle as before; inside, those of the wanted
    /// tensors are kept, and only those.
    #[test]
    fn only_wanted_gradients_are_kept_and_only_while_collecting() {
        let x = seeded(&[4, 3], 1, 2.0);
        let w = candle_core::Var::from_tensor(&x).unwrap();
        let other = candle_core::Var::from_tensor(&x).unwrap();
        assert!(offer(w.as_tensor(), x.clone()).unwrap().is_some());
        let ((), kept) = collecting([w.as_tensor().id()], || {
            assert!(offer(w.as_tensor(), x.clone()).unwrap().is_none());
            assert!(offer(other.as_tensor(), x.clone()).unwrap().is_some());
        });
        assert_eq!(kept.len(), 1);
        assert!(kept.contains_key(&w.as_tensor().id()));
        assert!(offer(w.as_tensor(), x.clone()).unwrap().is_some());
    }
}
