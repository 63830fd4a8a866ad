//! A GPT-style decoder-only language model (pre-norm blocks, learned positions, GELU MLP) and
//! its LoRA adapters.
//!
//! Initialisation is uniform everywhere (never Box-Muller), so it needs no transcendental
//! functions whose bits could differ between C libraries: embeddings and projections draw from
//! `U(-0.02·√3, 0.02·√3)`, the standard deviation GPT-2 uses.

use candle_core::{Device, Tensor};
use oai_data::dataset::{DType, Record};

use super::ops::{layer_norm, linear};
use super::Weights;
use super::{bad_record, Pass};
use crate::params::{Init, ParamDef};
use crate::spec::TransformerSpec;
use crate::Kernels;
use crate::Result;
use oai_kernels::heads::{self, HeadLayout};

const STD_BOUND: f32 = 0.02 * 1.732_050_8;

/// The linear layers of block `l` (the ones LoRA adapts), with their `(out, in)` sizes.
fn block_linears(s: &TransformerSpec, l: usize) -> [(String, usize, usize); 4] {
    let d = s.d_model;
    [
        (format!("blocks.{l}.attn.qkv"), 3 * d, d),
        (format!("blocks.{l}.attn.proj"), d, d),
        (format!("blocks.{l}.mlp.fc"), s.d_ff, d),
        (format!("blocks.{l}.mlp.proj"), d, s.d_ff),
    ]
}

pub(super) fn defs(s: &TransformerSpec) -> Vec<ParamDef> {
    let d = s.d_model;
    let mut out = vec![
        ParamDef::new("tok_emb", &[s.vocab, d], Init::Uniform(STD_BOUND)),
        ParamDef::new("pos_emb", &[s.context, d], Init::Uniform(STD_BOUND)),
    ];
    let norm = |out: &mut Vec<ParamDef>, name: String| {
        out.push(ParamDef::new(format!("{name}.weight"), &[d], Init::Ones));
        out.push(ParamDef::new(format!("{name}.bias"), &[d], Init::Zeros));
    };
    for l in 0..s.layers {
        norm(&mut out, format!("blocks.{l}.ln1"));
        norm(&mut out, format!("blocks.{l}.ln2"));
        for (name, o, i) in block_linears(s, l) {
            out.push(ParamDef::new(
                format!("{name}.weight"),
                &[o, i],
                Init::Uniform(STD_BOUND),
            ));
            out.push(ParamDef::new(format!("{name}.bias"), &[o], Init::Zeros));
        }
    }
    norm(&mut out, "ln_f".into());
    out.push(ParamDef::new(
        "head.weight",
        &[s.vocab, d],
        Init::Uniform(STD_BOUND),
    ));
    out
}

pub(super) fn lora_defs(s: &TransformerSpec, rank: usize) -> Vec<ParamDef> {
    let mut out = Vec::new();
    for l in 0..s.layers {
        for (name, o, i) in block_linears(s, l) {
            let bound = 1.0 / (i as f32).sqrt();
            out.push(ParamDef::new(
                format!("{name}.lora_a"),
                &[rank, i],
                Init::Uniform(bound),
            ));
            out.push(ParamDef::new(
                format!("{name}.lora_b"),
                &[o, rank],
                Init::Zeros,
            ));
        }
    }
    out
}

/// The parameters [`defs`] declares, counted from one block's shapes (every block has the
/// same); saturates.
pub(super) fn param_count(s: &TransformerSpec) -> u64 {
    let (d, v) = (s.d_model as u64, s.vocab as u64);
    let block = block_linears(s, 0)
        .iter()
        .fold(d.saturating_mul(4), |n, (_, o, i)| {
            let (o, i) = (*o as u64, *i as u64);
            n.saturating_add(o.saturating_mul(i).saturating_add(o))
        });
    v.saturating_mul(d)
        .saturating_mul(2)
        .saturating_add((s.context as u64).saturating_mul(d))
        .saturating_add(block.saturating_mul(s.layers as u64))
        .saturating_add(d.saturating_mul(2))
}

/// The adapters [`lora_defs`] declares, counted; saturates.
pub(super) fn lora_param_count(s: &TransformerSpec, rank: usize) -> u64 {
    let r = rank as u64;
    let block = block_linears(s, 0).iter().fold(0u64, |n, (_, o, i)| {
        n.saturating_add(r.saturating_mul((*o as u64).saturating_add(*i as u64)))
    });
    block.saturating_mul(s.layers as u64)
}

/// Inputs and targets `[records, context]` of a language model with `vocab` tokens: each
/// record's tokens (its bytes, or the ids of a `U32` tensor of one dimension), the targets
/// shifted by one.
pub(super) fn batch(
    records: &[Record],
    vocab: usize,
    context: usize,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    let t = context;
    let mut xs = Vec::with_capacity(records.len() * t);
    let mut ys = Vec::with_capacity(records.len() * t);
    for r in records {
        let tokens: Vec<u32> = match r {
            Record::Bytes(b) => b.iter().map(|b| *b as u32).collect(),
            Record::Text(s) => s.bytes().map(|b| b as u32).collect(),
            Record::Tensor(ids) if ids.dtype() == DType::U32 && ids.shape().len() == 1 => ids
                .data()
                .chunks_exact(4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            _ => {
                return Err(bad_record(
                    "language models train on Bytes or Text records, or token ids as a \
                     one-dimensional U32 tensor"
                        .into(),
                ))
            }
        };
        if tokens.len() != t + 1 {
            return Err(bad_record(format!(
                "record has {} tokens, the model needs context + 1 = {}",
                tokens.len(),
                t + 1
            )));
        }
        if let Some(b) = tokens.iter().find(|b| **b as usize >= vocab) {
            return Err(bad_record(format!("token {b} >= vocab {vocab}")));
        }
        xs.extend_from_slice(&tokens[..t]);
        ys.extend_from_slice(&tokens[1..]);
    }
    let b = records.len();
    Ok((
        Tensor::from_vec(xs, (b, t), device)?,
        Tensor::from_vec(ys, (b, t), device)?,
    ))
}

/// Logits `[batch, context, vocab]`.
pub(super) fn forward<W: Weights + ?Sized>(
    p: &W,
    ids: &Tensor,
    s: &TransformerSpec,
    lora: Option<f64>,
    pass: &Pass,
) -> Result<Tensor> {
    let (b, t) = ids.dims2()?;
    Ok(forward_rows(p, ids, s, lora, pass)?.reshape((b, t, s.vocab))?)
}

/// Logits as rows `[batch · context, vocab]`, one per position (what the loss reads). The
/// residual stream is rows `[batch · context, d]` too, so linear layers take it as it is.
pub(super) fn forward_rows<W: Weights + ?Sized>(
    p: &W,
    ids: &Tensor,
    s: &TransformerSpec,
    lora: Option<f64>,
    pass: &Pass,
) -> Result<Tensor> {
    let k = pass.kernels;
    let (b, t) = ids.dims2()?;
    let (d, h) = (s.d_model, s.heads);
    let dh = d / h;
    let drop = |x: Tensor, site: String| -> Result<Tensor> {
        match &pass.dropout {
            Some(dr) => dr.apply(&x, s.dropout, &site),
            None => Ok(x),
        }
    };
    let tok = p.get("tok_emb")?.index_select(&ids.flatten_all()?, 0)?;
    let pos = p.get("pos_emb")?.narrow(0, 0, t)?;
    let mut x = k
        .add_rows(&tok.reshape((b, t, d))?, &pos)?
        .reshape((b * t, d))?;
    x = drop(x, "emb".into())?;
    let mask = causal_mask(t, ids.device())?;
    let scale = 1.0 / (dh as f64).sqrt();
    for l in 0..s.layers {
        let pre = format!("blocks.{l}");
        let hn = layer_norm(k, p, &format!("{pre}.ln1"), &x)?;
        let qkv = linear(k, p, &format!("{pre}.attn.qkv"), &hn, lora)?;
        let part = |part: usize| {
            let layout = HeadLayout {
                context: t,
                parts: 3,
                part,
                heads: h,
            };
            heads::split(&qkv, layout)
        };
        let (q, kt, v) = (part(0)?, part(1)?, part(2)?);
        let scores = match k {
            Kernels::Verifiable => k.matmul_t(&q, &kt)?,
            // as native logs have always computed it
            Kernels::Native => k.matmul(&q, &kt.t()?.contiguous()?)?,
        };
        let att = k.attention_weights(&scores, scale, &mask)?;
        let att = drop(att, format!("{pre}.attn.weights"))?;
        let y = heads::merge(&k.matmul(&att, &v)?)?;
        let y = linear(k, p, &format!("{pre}.attn.proj"), &y, lora)?;
        x = (x + drop(y, format!("{pre}.attn.out"))?)?;
        let hn = layer_norm(k, p, &format!("{pre}.ln2"), &x)?;
        let f = k.gelu(&linear(k, p, &format!("{pre}.mlp.fc"), &hn, lora)?)?;
        let f = linear(k, p, &format!("{pre}.mlp.proj"), &f, lora)?;
        x = (x + drop(f, format!("{pre}.mlp.out"))?)?;
    }
    let x = layer_norm(k, p, "ln_f", &x)?;
    linear(k, p, "head", &x, None)
}

/// `0` on and below the diagonal, a large negative number above (a finite stand-in for -inf
/// that softmax turns into exact zeros without inf arithmetic).
fn causal_mask(t: usize, device: &Device) -> Result<Tensor> {
    let m: Vec<f32> = (0..t)
        .flat_map(|i| (0..t).map(move |j| if j > i { -1e9 } else { 0.0 }))
        .collect();
    Ok(Tensor::from_vec(m, (t, t), device)?)
}
