//! A Llama-family decoder-only language model (pre-norm blocks with RMSNorm, rotary positions,
//! grouped-query causal attention, a SwiGLU feed-forward layer, no biases) and its LoRA
//! adapters. Parameter names are those of GGUF files, so a GGUF's weights load as they are.
//!
//! Grouped-query attention shares each key/value head between `heads / kv_heads` consecutive
//! query heads without copying keys and values: the query heads of one group are taken as one
//! tall matrix (a free reshape of `[b, heads, t, dh]` to `[b, kv_heads, group·t, dh]`), which
//! multiplies its key head once, and the keys' and values' gradients are summed by the
//! (verifiable) matmul itself.
//!
//! Initialisation is uniform, as the GPT-style transformer's: projections and embeddings from
//! `U(-0.02·√3, 0.02·√3)`, norms at one.

use candle_core::{Device, Tensor};

use super::ops::linear;
use super::{Pass, Weights};
use crate::params::{Init, ParamDef};
use crate::spec::LlamaSpec;
use crate::Result;
use oai_kernels::heads::{self, HeadLayout};
use oai_kernels::rope::RopeTables;

const STD_BOUND: f32 = 0.02 * 1.732_050_8;

/// The linear layers of block `l` (the ones LoRA adapts), with their `(out, in)` sizes.
fn block_linears(s: &LlamaSpec, l: usize) -> [(String, usize, usize); 7] {
    let (d, f) = (s.d_model, s.d_ff);
    let kv = s.kv_heads * s.head_dim();
    [
        (format!("blk.{l}.attn_q"), d, d),
        (format!("blk.{l}.attn_k"), kv, d),
        (format!("blk.{l}.attn_v"), kv, d),
        (format!("blk.{l}.attn_output"), d, d),
        (format!("blk.{l}.ffn_gate"), f, d),
        (format!("blk.{l}.ffn_up"), f, d),
        (format!("blk.{l}.ffn_down"), d, f),
    ]
}

pub(super) fn defs(s: &LlamaSpec) -> Vec<ParamDef> {
    let d = s.d_model;
    let mut out = vec![ParamDef::new(
        "token_embd.weight",
        &[s.vocab, d],
        Init::Uniform(STD_BOUND),
    )];
    for l in 0..s.layers {
        for norm in ["attn_norm", "ffn_norm"] {
            out.push(ParamDef::new(
                format!("blk.{l}.{norm}.weight"),
                &[d],
                Init::Ones,
            ));
        }
        for (name, o, i) in block_linears(s, l) {
            out.push(ParamDef::new(
                format!("{name}.weight"),
                &[o, i],
                Init::Uniform(STD_BOUND),
            ));
        }
    }
    out.push(ParamDef::new("output_norm.weight", &[d], Init::Ones));
    if !s.tie_embeddings {
        out.push(ParamDef::new(
            "output.weight",
            &[s.vocab, d],
            Init::Uniform(STD_BOUND),
        ));
    }
    out
}

pub(super) fn lora_defs(s: &LlamaSpec, rank: usize) -> Vec<ParamDef> {
    (0..s.layers)
        .flat_map(|l| block_linears(s, l))
        .flat_map(|(name, o, i)| {
            [
                ParamDef::new(
                    format!("{name}.lora_a"),
                    &[rank, i],
                    Init::Uniform(1.0 / (i as f32).sqrt()),
                ),
                ParamDef::new(format!("{name}.lora_b"), &[o, rank], Init::Zeros),
            ]
        })
        .collect()
}

/// The parameters [`defs`] declares, counted from one block's shapes; saturates.
pub(super) fn param_count(s: &LlamaSpec) -> u64 {
    let (d, v) = (s.d_model as u64, s.vocab as u64);
    let block = block_linears(s, 0)
        .iter()
        .fold(d.saturating_mul(2), |n, (_, o, i)| {
            n.saturating_add((*o as u64).saturating_mul(*i as u64))
        });
    let heads = match s.tie_embeddings {
        true => 1,
        false => 2,
    };
    v.saturating_mul(d)
        .saturating_mul(heads)
        .saturating_add(block.saturating_mul(s.layers as u64))
        .saturating_add(d)
}

/// The adapters [`lora_defs`] declares, counted; saturates.
pub(super) fn lora_param_count(s: &LlamaSpec, rank: usize) -> u64 {
    let r = rank as u64;
    let block = block_linears(s, 0).iter().fold(0u64, |n, (_, o, i)| {
        n.saturating_add(r.saturating_mul((*o as u64).saturating_add(*i as u64)))
    });
    block.saturating_mul(s.layers as u64)
}

/// Logits as rows `[batch · t, vocab]` for token ids `[batch, t]` (`t` at most the context).
pub(super) fn forward_rows<W: Weights + ?Sized>(
    p: &W,
    ids: &Tensor,
    s: &LlamaSpec,
    lora: Option<f64>,
    pass: &Pass,
) -> Result<Tensor> {
    let (_, t) = ids.dims2()?;
    let rope = RopeTables::new(s.rope_theta, s.head_dim(), t, ids.device())?;
    forward(p, ids, s, lora, pass, &rope, None)
}

/// The keys and values of the positions a generation has read, per layer (`[batch, kv_heads,
/// positions, head_dim]` each), so that each new token attends to them without recomputing.
#[derive(Debug, Clone, Default)]
pub(super) struct KvCache {
    layers: Vec<(Tensor, Tensor)>,
    len: usize,
}

/// The model on `ids [batch, t]`: all positions' logits as rows without a cache; with one, the
/// positions follow the cached ones (which `cache` gains theirs) and only the last position's
/// logits `[batch, vocab]` come out. `rope` covers every position up to the last.
pub(super) fn forward<W: Weights + ?Sized>(
    p: &W,
    ids: &Tensor,
    s: &LlamaSpec,
    lora: Option<f64>,
    pass: &Pass,
    rope: &RopeTables,
    mut cache: Option<&mut KvCache>,
) -> Result<Tensor> {
    let k = pass.kernels;
    let (b, t) = ids.dims2()?;
    let (h, kvh, dh) = (s.heads, s.kv_heads, s.head_dim());
    let group = h / kvh;
    let start = cache.as_ref().map_or(0, |c| c.len);
    let rope = rope.narrow(start, t)?;
    let mask = grouped_causal_mask(t, start, group, ids.device())?;
    let scale = 1.0 / (dh as f64).sqrt();
    let heads_of = |rows: &Tensor, heads: usize| {
        let layout = HeadLayout {
            context: t,
            parts: 1,
            part: 0,
            heads,
        };
        heads::split(rows, layout)
    };
    let mut x = p.embedding("token_embd", &ids.flatten_all()?)?;
    for l in 0..s.layers {
        let pre = format!("blk.{l}");
        let norm = |x: &Tensor, name: &str| -> Result<Tensor> {
            Ok(k.rms_norm(x, p.get(&format!("{pre}.{name}.weight"))?, s.rms_eps)?)
        };
        let lin = |name: &str, x: &Tensor| linear(k, p, &format!("{pre}.{name}"), x, lora);
        let hn = norm(&x, "attn_norm")?;
        let q = rope.apply(&heads_of(&lin("attn_q", &hn)?, h)?)?;
        let mut kk = rope.apply(&heads_of(&lin("attn_k", &hn)?, kvh)?)?;
        let mut v = heads_of(&lin("attn_v", &hn)?, kvh)?;
        if let Some(cache) = cache.as_deref_mut() {
            if let Some((ck, cv)) = cache.layers.get(l) {
                kk = Tensor::cat(&[ck, &kk], 2)?;
                v = Tensor::cat(&[cv, &v], 2)?;
            }
            match cache.layers.get_mut(l) {
                Some(held) => *held = (kk.clone(), v.clone()),
                None => cache.layers.push((kk.clone(), v.clone())),
            }
        }
        // the query heads of one group as one tall matrix against their key/value head
        let q = q.reshape((b, kvh, group * t, dh))?;
        let att = k.attention_weights(&k.matmul_t(&q, &kk)?, scale, &mask)?;
        let y = k.matmul(&att, &v)?.reshape((b, h, t, dh))?;
        x = (x + lin("attn_output", &heads::merge(&y)?)?)?;
        let hn = norm(&x, "ffn_norm")?;
        let f = (k.silu(&lin("ffn_gate", &hn)?)? * lin("ffn_up", &hn)?)?;
        x = (x + lin("ffn_down", &f)?)?;
    }
    if let Some(cache) = cache {
        cache.len += t;
        // only the last position's next token is asked for
        x = x
            .reshape((b, t, s.d_model))?
            .narrow(1, t - 1, 1)?
            .squeeze(1)?;
    }
    let x = k.rms_norm(&x, p.get("output_norm.weight")?, s.rms_eps)?;
    match s.tie_embeddings {
        true => p.tied_head("token_embd", &x, k),
        false => linear(k, p, "output", &x, None),
    }
}

/// The causal mask of `group` query heads stacked as one matrix, for `t` positions after
/// `start` cached ones: row `r` is position `start + r mod t`, which sees the keys up to its
/// own; `0` where it sees, a large negative number (a finite stand-in for -inf that softmax
/// turns into exact zeros) where it does not.
fn grouped_causal_mask(t: usize, start: usize, group: usize, device: &Device) -> Result<Tensor> {
    let keys = start + t;
    let m: Vec<f32> = (0..group * t)
        .flat_map(|r| (0..keys).map(move |j| if j > start + r % t { -1e9 } else { 0.0 }))
        .collect();
    Ok(Tensor::from_vec(m, (group * t, keys), device)?)
}
