//! SGD with momentum and AdamW, with their state as named tensors so checkpoints carry it.
//! Every update walks the parameters in name order and is elementwise arithmetic, whose bits do
//! not depend on thread count. On the CPU each parameter's update is one pass over its elements
//! that writes the weights and the state in place (`optim/fused.rs`); on other devices it is a
//! chain of candle tensor ops. Both do the same f32 operations in the same order: the same bits.

mod fused;
mod norm;

use std::collections::BTreeMap;

use candle_core::Tensor;

use crate::params::Params;
use crate::spec::OptimizerSpec;
use crate::{Error, Result};

/// An optimiser and its per-parameter state.
#[derive(Debug, Clone)]
pub struct Optimizer {
    spec: OptimizerSpec,
    /// `"<slot>/<param>"` -> tensor; slots are `momentum` (SGD) or `m` and `v` (AdamW).
    state: BTreeMap<String, Tensor>,
}

impl Optimizer {
    /// A fresh optimiser for `params`, its state zero.
    pub fn new(spec: &OptimizerSpec, params: &Params) -> Result<Self> {
        let mut state = BTreeMap::new();
        for slot in slots(spec) {
            for (name, v) in params.vars() {
                state.insert(format!("{slot}/{name}"), v.as_tensor().zeros_like()?);
            }
        }
        Ok(Self {
            spec: spec.clone(),
            state,
        })
    }

    /// An optimiser resumed from checkpointed `state`, which must hold exactly the slots `spec`
    /// needs for every parameter, each of its parameter's shape.
    pub fn from_state(
        spec: &OptimizerSpec,
        params: &Params,
        state: BTreeMap<String, Tensor>,
    ) -> Result<Self> {
        // The expected slots, named and shaped like `new` makes them, without allocating them.
        let expected: Vec<(String, &candle_core::Var)> = slots(spec)
            .iter()
            .flat_map(|slot| {
                params
                    .vars()
                    .iter()
                    .map(move |(n, v)| (format!("{slot}/{n}"), v))
            })
            .collect();
        if expected.len() != state.len() {
            return Err(Error::malformed(
                "checkpoint",
                format!(
                    "optimiser state has {} tensors, {} expected",
                    state.len(),
                    expected.len()
                ),
            ));
        }
        for (k, var) in &expected {
            match state.get(k) {
                Some(t) if t.dims() == var.dims() && t.dtype() == var.dtype() => {}
                _ => {
                    return Err(Error::malformed(
                        "checkpoint",
                        format!("optimiser state {k} missing or of the wrong shape"),
                    ))
                }
            }
        }
        // Tensors of its own, on the parameters' device: the updates write them in place.
        let device = params.vars().values().next().map(|v| v.device().clone());
        let state = state
            .into_iter()
            .map(|(k, t)| {
                let t = match &device {
                    Some(d) if !t.device().same_device(d) => t.to_device(d)?,
                    _ => t.copy()?,
                };
                Ok((k, t))
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            spec: spec.clone(),
            state,
        })
    }

    /// A copy of the state tensors by `"<slot>/<param>"` (the optimiser updates its own in
    /// place).
    pub fn state(&self) -> Result<BTreeMap<String, Tensor>> {
        self.state
            .iter()
            .map(|(k, t)| Ok((k.clone(), t.copy()?)))
            .collect()
    }

    /// The state by `<slot>/<parameter>`, sharing its storage (the next step changes it).
    pub(crate) fn state_shared(&self) -> BTreeMap<String, Tensor> {
        self.state.clone()
    }

    /// Apply one update of step `step` (0-based) with learning rate `lr`, the gradients
    /// multiplied by `grad_scale` first (see [`grad_norm`]).
    pub fn step(
        &mut self,
        params: &Params,
        grads: &BTreeMap<String, Tensor>,
        grad_scale: Option<f64>,
        lr: f64,
        step: u64,
    ) -> Result<()> {
        self.step_with(params, grads, grad_scale, lr, step, true)
    }

    /// [`Optimizer::step`], one pass per parameter where `fuse` and the tensors allow it.
    fn step_with(
        &mut self,
        params: &Params,
        grads: &BTreeMap<String, Tensor>,
        grad_scale: Option<f64>,
        lr: f64,
        step: u64,
        fuse: bool,
    ) -> Result<()> {
        let rule = fused::Rule::new(&self.spec, grad_scale, lr, step);
        for (name, var) in params.vars() {
            let g = grads
                .get(name)
                .ok_or_else(|| Error::malformed("gradients", format!("no gradient for {name}")))?;
            let keys: Vec<String> = slots(&self.spec)
                .iter()
                .map(|slot| format!("{slot}/{name}"))
                .collect();
            let state = keys
                .iter()
                .map(|k| {
                    self.state.get(k).ok_or_else(|| {
                        Error::malformed("optimiser state", format!("no tensor {k}"))
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            if fuse && fused::update(&rule, var.as_tensor(), g, &state)? {
                continue;
            }
            let (w, new_state) =
                tensor_ops(&self.spec, var.as_tensor(), g, &state, grad_scale, lr, step)?;
            var.set(&w)?;
            self.state.extend(keys.into_iter().zip(new_state));
        }
        Ok(())
    }
}

/// One parameter's update as a chain of candle tensor ops (any device): the new weights and
/// the new state slots, in `slots` order.
fn tensor_ops(
    spec: &OptimizerSpec,
    w: &Tensor,
    g: &Tensor,
    state: &[&Tensor],
    grad_scale: Option<f64>,
    lr: f64,
    step: u64,
) -> Result<(Tensor, Vec<Tensor>)> {
    let g = match grad_scale {
        Some(s) => g.affine(s, 0.0)?,
        None => g.clone(),
    };
    let slot = |i: usize| {
        state
            .get(i)
            .copied()
            .ok_or_else(|| Error::malformed("optimiser state", "a slot is missing"))
    };
    Ok(match *spec {
        OptimizerSpec::Sgd {
            momentum,
            weight_decay,
        } => {
            let g = if weight_decay != 0.0 {
                (g + w.affine(weight_decay, 0.0)?)?
            } else {
                g
            };
            if momentum == 0.0 {
                ((w - g.affine(lr, 0.0)?)?, vec![])
            } else {
                let buf = (slot(0)?.affine(momentum, 0.0)? + g)?;
                ((w - buf.affine(lr, 0.0)?)?, vec![buf])
            }
        }
        OptimizerSpec::AdamW {
            beta1,
            beta2,
            eps,
            weight_decay,
        } => {
            let m = (slot(0)?.affine(beta1, 0.0)? + g.affine(1.0 - beta1, 0.0)?)?;
            let v = (slot(1)?.affine(beta2, 0.0)? + g.sqr()?.affine(1.0 - beta2, 0.0)?)?;
            let (c1, c2) = fused::bias_corrections(beta1, beta2, step);
            let denom = v.affine(1.0 / c2, 0.0)?.sqrt()?.affine(1.0, eps)?;
            let update = m.affine(1.0 / c1, 0.0)?.div(&denom)?;
            let w = (w.affine(1.0 - lr * weight_decay, 0.0)? - update.affine(lr, 0.0)?)?;
            (w, vec![m, v])
        }
    })
}

fn slots(spec: &OptimizerSpec) -> &'static [&'static str] {
    match spec {
        OptimizerSpec::Sgd { momentum, .. } if *momentum == 0.0 => &[],
        OptimizerSpec::Sgd { .. } => &["momentum"],
        OptimizerSpec::AdamW { .. } => &["m", "v"],
    }
}

/// The global L2 norm of `grads` (summed in name order) and, when it exceeds `clip`, the
/// factor that scales the gradients down to norm `clip` (the optimiser applies it).
pub fn grad_norm(
    grads: &BTreeMap<String, Tensor>,
    clip: Option<f64>,
) -> Result<(f32, Option<f64>)> {
    let tensors: Vec<&Tensor> = grads.values().collect();
    let mut sq = 0f64;
    for s in norm::sums_of_squares(&tensors)? {
        sq += s as f64;
    }
    let norm = sq.sqrt() as f32;
    let scale = match clip {
        Some(c) if norm.is_finite() && (norm as f64) > c => Some(c / (norm as f64 + 1e-6)),
        _ => None,
    };
    Ok((norm, scale))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Weights;
    use crate::params::{Init, ParamDef};
    use candle_core::Device;
    use oai_core::Seed;
    use oai_kernels::testing::{bits, seeded};

    fn setup() -> (Params, BTreeMap<String, Tensor>) {
        let p = Params::init(
            &[ParamDef::new("w", &[4], Init::Uniform(1.0))],
            Seed::from_u64(0),
            &Device::Cpu,
        )
        .unwrap();
        let g = Tensor::new(&[0.5f32, -1.0, 2.0, 0.0], &Device::Cpu).unwrap();
        (p, BTreeMap::from([("w".to_string(), g)]))
    }

    fn values(p: &Params) -> Vec<f32> {
        p.get("w").unwrap().to_vec1().unwrap()
    }

    #[test]
    fn sgd_momentum_matches_the_formula() {
        let (p, g) = setup();
        let w0 = values(&p);
        let spec = OptimizerSpec::Sgd {
            momentum: 0.9,
            weight_decay: 0.0,
        };
        let mut o = Optimizer::new(&spec, &p).unwrap();
        o.step(&p, &g, None, 0.1, 0).unwrap();
        o.step(&p, &g, None, 0.1, 1).unwrap();
        let gv: Vec<f32> = g["w"].to_vec1().unwrap();
        for ((w, w0), g) in values(&p).iter().zip(&w0).zip(&gv) {
            // buf1 = g, buf2 = 0.9 g + g: w0 - 0.1 g - 0.19 g
            assert!((w - (w0 - 0.29 * g)).abs() < 1e-6);
        }
    }

    #[test]
    fn adamw_first_step_moves_by_lr_times_sign() {
        let (p, g) = setup();
        let w0 = values(&p);
        let spec = OptimizerSpec::adam_w(0.0);
        let mut o = Optimizer::new(&spec, &p).unwrap();
        o.step(&p, &g, None, 0.01, 0).unwrap();
        let gv: Vec<f32> = g["w"].to_vec1().unwrap();
        for ((w, w0), g) in values(&p).iter().zip(&w0).zip(&gv) {
            let expect = if *g == 0.0 {
                *w0
            } else {
                w0 - 0.01 * g.signum()
            };
            assert!((w - expect).abs() < 1e-5, "{w} vs {expect}");
        }
        let resumed = Optimizer::from_state(&spec, &p, o.state().unwrap()).unwrap();
        assert_eq!(resumed.state().unwrap().len(), 2);
        assert!(Optimizer::from_state(&spec, &p, BTreeMap::new()).is_err());
    }

    /// The state the optimiser hands out is a snapshot: later in-place updates leave it be.
    #[test]
    fn state_is_a_copy_that_later_steps_leave_alone() {
        let (p, g) = setup();
        let mut o = Optimizer::new(&OptimizerSpec::adam_w(0.01), &p).unwrap();
        o.step(&p, &g, None, 0.01, 0).unwrap();
        let snapshot = o.state().unwrap();
        let before: Vec<Vec<u32>> = snapshot.values().map(bits).collect();
        o.step(&p, &g, None, 0.01, 1).unwrap();
        let after: Vec<Vec<u32>> = snapshot.values().map(bits).collect();
        assert_eq!(before, after);
        assert_ne!(
            after,
            o.state().unwrap().values().map(bits).collect::<Vec<_>>()
        );
    }

    /// The one-pass CPU update and the tensor-op chain give the same bits, for every rule, with
    /// and without a clipping factor, over several steps; with signed zeros, tiny and huge
    /// gradients, and a parameter long enough to be split between threads.
    #[test]
    fn fused_updates_equal_the_tensor_op_chain_bit_for_bit() {
        let defs = [
            ParamDef::new("big", &[fused::PARALLEL_MIN + 37], Init::Uniform(1.0)),
            ParamDef::new("small", &[5], Init::Uniform(1.0)),
        ];
        let specs = [
            OptimizerSpec::adam_w(0.01),
            OptimizerSpec::adam_w(0.0),
            OptimizerSpec::Sgd {
                momentum: 0.9,
                weight_decay: 1e-4,
            },
            OptimizerSpec::Sgd {
                momentum: 0.0,
                weight_decay: 0.1,
            },
            OptimizerSpec::Sgd {
                momentum: 0.0,
                weight_decay: 0.0,
            },
        ];
        let grads = |step: u64| -> BTreeMap<String, Tensor> {
            defs.iter()
                .enumerate()
                .map(|(i, d)| {
                    let n = d.shape.iter().product::<usize>();
                    let mut v: Vec<f32> =
                        seeded(&[n], 10 * step + i as u64, 4.0).to_vec1().unwrap();
                    for (x, special) in
                        v.iter_mut()
                            .zip([0.0, -0.0, 1e-30, -1e30, f32::MIN_POSITIVE])
                    {
                        *x = special;
                    }
                    (
                        d.name.clone(),
                        Tensor::from_vec(v, n, &Device::Cpu).unwrap(),
                    )
                })
                .collect()
        };
        for spec in specs {
            for scale in [None, Some(0.37)] {
                let init = || Params::init(&defs, Seed::from_u64(5), &Device::Cpu).unwrap();
                let (fused_p, chain_p) = (init(), init());
                let mut fused_o = Optimizer::new(&spec, &fused_p).unwrap();
                let mut chain_o = Optimizer::new(&spec, &chain_p).unwrap();
                for step in 0..3 {
                    let g = grads(step);
                    fused_o
                        .step_with(&fused_p, &g, scale, 1e-3, step, true)
                        .unwrap();
                    chain_o
                        .step_with(&chain_p, &g, scale, 1e-3, step, false)
                        .unwrap();
                }
                let case = format!("{spec:?}, scale {scale:?}");
                for d in &defs {
                    let (a, b) = (fused_p.get(&d.name).unwrap(), chain_p.get(&d.name).unwrap());
                    assert_eq!(bits(a), bits(b), "weights {} of {case}", d.name);
                }
                let (a, b) = (fused_o.state().unwrap(), chain_o.state().unwrap());
                assert_eq!(a.len(), b.len());
                for ((ka, ta), (kb, tb)) in a.iter().zip(&b) {
                    assert_eq!(ka, kb);
                    assert_eq!(bits(ta), bits(tb), "state {ka} of {case}");
                }
            }
        }
    }

    /// A gradient that is the weights' own tensor (a caller's mistake, never the trainer's)
    /// takes the tensor-op path instead of locking the storage it reads.
    #[test]
    fn a_gradient_sharing_the_weights_storage_takes_the_tensor_ops() {
        let (p, _) = setup();
        let w0 = values(&p);
        let g = BTreeMap::from([("w".to_string(), p.get("w").unwrap().clone())]);
        let mut o = Optimizer::new(&OptimizerSpec::adam_w(0.0), &p).unwrap();
        o.step(&p, &g, None, 0.01, 0).unwrap();
        for (w, w0) in values(&p).iter().zip(&w0) {
            assert!(
                (w - (w0 - 0.01 * w0.signum())).abs() < 1e-5,
                "{w} from {w0}"
            );
        }
    }

    #[test]
    fn clipping_scales_to_the_limit() {
        let (_, g) = setup();
        let (norm, scale) = grad_norm(&g, Some(1.0)).unwrap();
        assert!((norm - (0.25f32 + 1.0 + 4.0).sqrt()).abs() < 1e-6);
        let scale = scale.expect("the norm is over the limit");
        let clipped: BTreeMap<String, Tensor> = g
            .iter()
            .map(|(k, t)| (k.clone(), t.affine(scale, 0.0).unwrap()))
            .collect();
        let (n2, none) = grad_norm(&clipped, Some(1.0)).unwrap();
        assert!((n2 - 1.0).abs() < 1e-5);
        assert_eq!(none, None);
        assert_eq!(grad_norm(&g, None).unwrap().1, None);
    }
}
