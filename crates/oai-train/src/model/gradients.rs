//! The gradient sink of the verifiable matmul (`oai_kernels::grad_sink`) gives every model's
//! parameters the bits of candle's own backward pass.

use candle_core::{Device, Tensor};
use oai_core::Seed;
use oai_kernels::grad_sink::collecting;
use oai_kernels::testing::{bits, seeded};

use crate::model::{Dropout, Model, Pass};
use crate::params::Params;
use crate::spec::{LlamaSpec, ModelSpec, TransformerSpec};
use crate::Kernels;

/// The gradient of every parameter, from candle's backward pass alone and through the
/// sink: the same bits, for the MLP, both language models and LoRA adapters on each.
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
    let x_mlp = seeded(&[24, 300], 1, 4.0);
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
    let l = LlamaSpec {
        vocab: 256,
        context: 16,
        d_model: 32,
        layers: 2,
        heads: 4,
        kv_heads: 2,
        d_ff: 48,
        rope_theta: 10_000.0,
        rms_eps: 1e-5,
        tie_embeddings: false,
    };
    let llama_base = Params::init(
        &Model::new(&ModelSpec::Llama(l.clone())).param_defs(),
        Seed::from_u64(6),
        &dev,
    )
    .unwrap();
    let llama_lora = Model::Llama {
        spec: l.clone(),
        lora: Some((4, 8.0)),
    };
    let cases = [
        (Model::new(&mlp), None, &x_mlp, &y_mlp),
        (Model::new(&ModelSpec::Llama(l.clone())), None, &x_lm, &y_lm),
        (
            Model::new(&ModelSpec::Llama(LlamaSpec {
                tie_embeddings: true,
                ..l.clone()
            })),
            None,
            &x_lm,
            &y_lm,
        ),
        (
            llama_lora,
            Some(llama_base.tensors().unwrap()),
            &x_lm,
            &y_lm,
        ),
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
}
