//! Text generation with a Llama-family model: the prompt is read once into a KV cache, then
//! one token at a time, each from the last one and the cache, greedy or drawn from a seeded
//! stream. With the verifiable kernels the tokens are the same on every machine of a class.

use std::ops::ControlFlow;

use candle_core::Tensor;
use oai_core::seed::RngCore;
use oai_core::Seed;

use super::llama::{forward, KvCache};
use super::{Pass, Weights};
use crate::params::unit_f32;
use crate::spec::LlamaSpec;
use crate::Kernels;
use crate::{Error, Result};
use oai_kernels::rope::RopeTables;

/// How the next token is chosen from the model's logits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sampling {
    /// The most likely token (the lowest id among equals).
    Greedy,
    /// A draw from `softmax(logits / temperature)`: the `i`-th token's uniform number is the
    /// first word of the ChaCha20 stream of `seed.derive("sample/i")`.
    Temperature {
        /// Greater than 0; 1 samples the model's own distribution.
        temperature: f64,
        /// The seed every draw derives from.
        seed: Seed,
    },
}

impl Sampling {
    /// Greedy without a temperature, else drawn at it from `seed`.
    pub fn new(temperature: Option<f64>, seed: u64) -> Self {
        match temperature {
            Some(temperature) => Sampling::Temperature {
                temperature,
                seed: Seed::from_u64(seed),
            },
            None => Sampling::Greedy,
        }
    }
}

/// A Llama-family model ready to generate: its sizes, weights, kernels and rotary tables.
#[derive(Debug)]
pub struct LlamaGenerator<W> {
    spec: LlamaSpec,
    weights: W,
    kernels: Kernels,
    rope: RopeTables,
}

impl<W: Weights> LlamaGenerator<W> {
    /// A generator of the model `spec` with `weights` (e.g. [`crate::Params`] from
    /// [`crate::gguf::read_llama`]) on `kernels`.
    pub fn new(spec: LlamaSpec, weights: W, kernels: Kernels) -> Result<Self> {
        // (the final norm is f32 in every kind of weights; an embedding may be blocks)
        let device = weights.get("output_norm.weight")?.device().clone();
        let rope = RopeTables::new(spec.rope_theta, spec.head_dim(), spec.context, &device)?;
        Ok(Self {
            spec,
            weights,
            kernels,
            rope,
        })
    }

    /// The model's sizes.
    pub fn spec(&self) -> &LlamaSpec {
        &self.spec
    }

    /// The weights it reads.
    pub fn weights(&self) -> &W {
        &self.weights
    }

    /// Up to `max_tokens` tokens after `prompt`, each handed to `on_token` as it comes (a
    /// `Break` stops after it); generation also stops after a token of `stop` (which is
    /// returned). Bad requests are refused as [`LlamaGenerator::start`] refuses them.
    pub fn generate(
        &self,
        prompt: &[u32],
        max_tokens: usize,
        sampling: Sampling,
        stop: &[u32],
        mut on_token: impl FnMut(u32) -> ControlFlow<()>,
    ) -> Result<Vec<u32>> {
        let mut generation = self.start(prompt, max_tokens, sampling, stop)?;
        let mut out = Vec::with_capacity(max_tokens);
        while let Some(token) = generation.next_token(self)? {
            out.push(token);
            if on_token(token).is_break() {
                break;
            }
        }
        Ok(out)
    }

    /// A generation of up to `max_tokens` tokens after `prompt`, stopping after a token of
    /// `stop`, to step with [`Generation::next_token`]. An empty prompt, a token outside the
    /// vocabulary, a temperature that is not above 0, or a prompt and `max_tokens` that
    /// together exceed the context are [`Error::Malformed`].
    pub fn start(
        &self,
        prompt: &[u32],
        max_tokens: usize,
        sampling: Sampling,
        stop: &[u32],
    ) -> Result<Generation> {
        let bad = |reason: String| Error::malformed("generation", reason);
        if prompt.is_empty() {
            return Err(bad("the prompt has no tokens".into()));
        }
        if let Some(t) = prompt.iter().find(|t| **t as usize >= self.spec.vocab) {
            return Err(bad(format!("token {t} >= vocab {}", self.spec.vocab)));
        }
        if prompt.len().saturating_add(max_tokens) > self.spec.context {
            return Err(bad(format!(
                "a prompt of {} tokens and {max_tokens} new ones exceed the context of {}",
                prompt.len(),
                self.spec.context
            )));
        }
        if let Sampling::Temperature { temperature, .. } = sampling {
            if !(temperature.is_finite() && temperature > 0.0) {
                return Err(bad(format!("temperature {temperature} must be above 0")));
            }
        }
        Ok(Generation {
            cache: KvCache::default(),
            input: prompt.to_vec(),
            produced: 0,
            max_tokens,
            sampling,
            stop: stop.to_vec(),
            done: max_tokens == 0,
        })
    }
}

/// One generation under way: the KV cache and what comes next. Stepped with the generator
/// that started it.
#[derive(Debug, Clone)]
pub struct Generation {
    cache: KvCache,
    input: Vec<u32>,
    produced: usize,
    max_tokens: usize,
    sampling: Sampling,
    stop: Vec<u32>,
    done: bool,
}

impl Generation {
    /// The next token, or `None` once `max_tokens` came or a stop token did. `generator` must
    /// be the one that started this generation.
    pub fn next_token<W: Weights>(&mut self, generator: &LlamaGenerator<W>) -> Result<Option<u32>> {
        if self.done {
            return Ok(None);
        }
        let device = generator.rope.device().clone();
        let input = Tensor::new(self.input.as_slice(), &device)?.unsqueeze(0)?;
        let logits = forward(
            &generator.weights,
            &input,
            &generator.spec,
            None,
            &Pass::eval(generator.kernels),
            &generator.rope,
            Some(&mut self.cache),
        )?;
        let logits: Vec<f32> = logits.flatten_all()?.to_vec1()?;
        let token = choose(&logits, self.sampling, self.produced as u64);
        self.produced += 1;
        self.input = vec![token];
        self.done = self.produced == self.max_tokens || self.stop.contains(&token);
        Ok(Some(token))
    }
}

/// The `i`-th generated token from `logits`.
fn choose(logits: &[f32], sampling: Sampling, i: u64) -> u32 {
    let argmax = || {
        let best = logits
            .iter()
            .enumerate()
            .fold((0, f32::NEG_INFINITY), |(bi, bv), (j, &v)| match v > bv {
                true => (j, v),
                false => (bi, bv),
            });
        best.0 as u32
    };
    match sampling {
        Sampling::Greedy => argmax(),
        Sampling::Temperature { temperature, seed } => {
            // f64 weights from the pinned libm: the same draw on every machine
            let max = logits[argmax() as usize] as f64;
            let weights: Vec<f64> = logits
                .iter()
                .map(|&l| libm::exp((l as f64 - max) / temperature))
                .collect();
            let total: f64 = weights.iter().sum();
            let u = unit_f32(
                seed.derive(format!("sample/{i}").as_bytes())
                    .rng()
                    .next_u32(),
            );
            let mut target = u as f64 * total;
            for (j, w) in weights.iter().enumerate() {
                if target < *w {
                    return j as u32;
                }
                target -= w;
            }
            argmax()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::llama::forward_rows;
    use super::*;
    use crate::model::Model;
    use crate::params::Params;
    use crate::spec::ModelSpec;
    use candle_core::Device;
    use oai_kernels::testing::bits;

    fn tiny() -> (LlamaSpec, Params) {
        let spec = LlamaSpec {
            vocab: 256,
            context: 40,
            d_model: 64,
            layers: 2,
            heads: 4,
            kv_heads: 2,
            d_ff: 96,
            rope_theta: 10_000.0,
            rms_eps: 1e-5,
            tie_embeddings: true,
        };
        let defs = Model::new(&ModelSpec::Llama(spec.clone())).param_defs();
        let p = Params::init(&defs, Seed::from_u64(4), &Device::Cpu).unwrap();
        (spec, p)
    }

    /// Reading a prompt into the cache and then one token at a time gives, at every position,
    /// the bits of the full forward pass's logits there (verifiable kernels: the cached rows
    /// sum the same terms in the same order, the missing masked ones being exact zeros).
    #[test]
    fn cached_steps_give_the_bits_of_the_full_forward_pass() {
        let (spec, p) = tiny();
        let ids: Vec<u32> = (0..12u32).map(|i| i * 37 % 256).collect();
        let all = Tensor::new(ids.as_slice(), &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let pass = Pass::eval(Kernels::Verifiable);
        let full = forward_rows(&p, &all, &spec, None, &pass).unwrap();
        let rope =
            RopeTables::new(spec.rope_theta, spec.head_dim(), spec.context, &Device::Cpu).unwrap();
        let mut cache = KvCache::default();
        let prompt = all.narrow(1, 0, 5).unwrap();
        let mut got =
            vec![forward(&p, &prompt, &spec, None, &pass, &rope, Some(&mut cache)).unwrap()];
        for i in 5..12 {
            let one = all.narrow(1, i, 1).unwrap();
            got.push(forward(&p, &one, &spec, None, &pass, &rope, Some(&mut cache)).unwrap());
        }
        for (i, logits) in (4..12).zip(&got) {
            assert_eq!(
                bits(logits),
                bits(&full.narrow(0, i, 1).unwrap()),
                "position {i}"
            );
        }
    }

    #[test]
    fn sampling_is_seeded_and_greedy_is_the_argmax() {
        let (spec, p) = tiny();
        let g = LlamaGenerator::new(spec, p, Kernels::Verifiable).unwrap();
        let run = |sampling| {
            g.generate(&[1, 2, 3], 16, sampling, &[], |_| ControlFlow::Continue(()))
                .unwrap()
        };
        let hot = |seed| Sampling::Temperature {
            temperature: 1.0,
            seed: Seed::from_u64(seed),
        };
        assert_eq!(run(hot(1)), run(hot(1)));
        assert_ne!(run(hot(1)), run(hot(2)));
        assert_eq!(run(Sampling::Greedy), run(Sampling::Greedy));
        assert_eq!(choose(&[0.5, 2.0, 2.0, -1.0], Sampling::Greedy, 0), 1);
        // a stop token ends it, and so does the callback
        let greedy = run(Sampling::Greedy);
        let stopped = g
            .generate(&[1, 2, 3], 16, Sampling::Greedy, &greedy[3..4], |_| {
                ControlFlow::Continue(())
            })
            .unwrap();
        assert_eq!(
            stopped,
            greedy[..=greedy.iter().position(|t| *t == greedy[3]).unwrap()]
        );
        let mut seen = 0;
        let two = g
            .generate(&[1, 2, 3], 16, Sampling::Greedy, &[], |_| {
                seen += 1;
                match seen < 2 {
                    true => ControlFlow::Continue(()),
                    false => ControlFlow::Break(()),
                }
            })
            .unwrap();
        assert_eq!(two, greedy[..2]);
    }

    #[test]
    fn bad_requests_are_malformed_before_anything_runs() {
        let (spec, p) = tiny();
        let g = LlamaGenerator::new(spec, p, Kernels::Verifiable).unwrap();
        let go = |prompt: &[u32], max, sampling| {
            g.generate(prompt, max, sampling, &[], |_| ControlFlow::Continue(()))
        };
        let cold = Sampling::Temperature {
            temperature: 0.0,
            seed: Seed::from_u64(1),
        };
        for err in [
            go(&[], 4, Sampling::Greedy),
            go(&[1, 256], 4, Sampling::Greedy),
            go(&[1; 30], 11, Sampling::Greedy),
            go(&[1], 4, cold),
        ] {
            assert!(matches!(err, Err(Error::Malformed { .. })), "{err:?}");
        }
        assert_eq!(go(&[1; 30], 10, Sampling::Greedy).unwrap().len(), 10);
    }
}
