//! SGD with momentum and AdamW, with their state as named tensors so checkpoints carry it.
//! Every update walks the parameters in name order and uses only elementwise tensor ops, whose
//! bits do not depend on thread count.

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
        let device = params.vars().values().next().map(|v| v.device().clone());
        let state = match device {
            Some(d) => state
                .into_iter()
                .map(|(k, t)| Ok((k, t.to_device(&d)?)))
                .collect::<Result<_>>()?,
            None => state,
        };
        Ok(Self {
            spec: spec.clone(),
            state,
        })
    }

    /// The state tensors by `"<slot>/<param>"`.
    pub fn state(&self) -> &BTreeMap<String, Tensor> {
        &self.state
    }

    /// Apply one update of step `step` (0-based) with learning rate `lr`.
    pub fn step(
        &mut self,
        params: &Params,
        grads: &BTreeMap<String, Tensor>,
        lr: f64,
        step: u64,
    ) -> Result<()> {
        for (name, var) in params.vars() {
            let g = grads
                .get(name)
                .ok_or_else(|| Error::malformed("gradients", format!("no gradient for {name}")))?;
            let w = var.as_tensor();
            let new_w = match self.spec {
                OptimizerSpec::Sgd {
                    momentum,
                    weight_decay,
                } => {
                    let g = if weight_decay != 0.0 {
                        (g + w.affine(weight_decay, 0.0)?)?
                    } else {
                        g.clone()
                    };
                    if momentum == 0.0 {
                        (w - g.affine(lr, 0.0)?)?
                    } else {
                        let key = format!("momentum/{name}");
                        let buf = (self.state[&key].affine(momentum, 0.0)? + g)?;
                        let w = (w - buf.affine(lr, 0.0)?)?;
                        self.state.insert(key, buf);
                        w
                    }
                }
                OptimizerSpec::AdamW {
                    beta1,
                    beta2,
                    eps,
                    weight_decay,
                } => {
                    let t = (step + 1) as f64;
                    let (km, kv) = (format!("m/{name}"), format!("v/{name}"));
                    let m = (self.state[&km].affine(beta1, 0.0)? + g.affine(1.0 - beta1, 0.0)?)?;
                    let v = (self.state[&kv].affine(beta2, 0.0)?
                        + g.sqr()?.affine(1.0 - beta2, 0.0)?)?;
                    // libm::pow: the same bits on every platform, unlike powi/powf.
                    let c1 = 1.0 - libm::pow(beta1, t);
                    let c2 = 1.0 - libm::pow(beta2, t);
                    let denom = v.affine(1.0 / c2, 0.0)?.sqrt()?.affine(1.0, eps)?;
                    let update = m.affine(1.0 / c1, 0.0)?.div(&denom)?;
                    let w = (w.affine(1.0 - lr * weight_decay, 0.0)? - update.affine(lr, 0.0)?)?;
                    self.state.insert(km, m);
                    self.state.insert(kv, v);
                    w
                }
            };
            var.set(&new_w)?;
        }
        Ok(())
    }
}

fn slots(spec: &OptimizerSpec) -> &'static [&'static str] {
    match spec {
        OptimizerSpec::Sgd { momentum, .. } if *momentum == 0.0 => &[],
        OptimizerSpec::Sgd { .. } => &["momentum"],
        OptimizerSpec::AdamW { .. } => &["m", "v"],
    }
}

/// The global L2 norm of `grads` (summed in name order) and, when it exceeds `clip`, the
/// gradients scaled down to norm `clip`.
pub fn clip_grads(
    grads: BTreeMap<String, Tensor>,
    clip: Option<f64>,
) -> Result<(f32, BTreeMap<String, Tensor>)> {
    let mut sq = 0f64;
    for g in grads.values() {
        sq += g.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
    }
    let norm = sq.sqrt() as f32;
    match clip {
        Some(c) if norm.is_finite() && (norm as f64) > c => {
            let scale = c / (norm as f64 + 1e-6);
            let grads = grads
                .into_iter()
                .map(|(k, g)| Ok((k, g.affine(scale, 0.0)?)))
                .collect::<Result<_>>()?;
            Ok((norm, grads))
        }
        _ => Ok((norm, grads)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Weights;
    use crate::params::{Init, ParamDef};
    use candle_core::Device;
    use oai_core::Seed;

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
        o.step(&p, &g, 0.1, 0).unwrap();
        o.step(&p, &g, 0.1, 1).unwrap();
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
        let spec = OptimizerSpec::AdamW {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        };
        let mut o = Optimizer::new(&spec, &p).unwrap();
        o.step(&p, &g, 0.01, 0).unwrap();
        let gv: Vec<f32> = g["w"].to_vec1().unwrap();
        for ((w, w0), g) in values(&p).iter().zip(&w0).zip(&gv) {
            let expect = if *g == 0.0 {
                *w0
            } else {
                w0 - 0.01 * g.signum()
            };
            assert!((w - expect).abs() < 1e-5, "{w} vs {expect}");
        }
        let resumed = Optimizer::from_state(&spec, &p, o.state().clone()).unwrap();
        assert_eq!(resumed.state().len(), 2);
        assert!(Optimizer::from_state(&spec, &p, BTreeMap::new()).is_err());
    }

    #[test]
    fn clipping_scales_to_the_limit() {
        let (_, g) = setup();
        let (norm, clipped) = clip_grads(g, Some(1.0)).unwrap();
        assert!((norm - (0.25f32 + 1.0 + 4.0).sqrt()).abs() < 1e-6);
        let (n2, _) = clip_grads(clipped, None).unwrap();
        assert!((n2 - 1.0).abs() < 1e-5);
    }
}
