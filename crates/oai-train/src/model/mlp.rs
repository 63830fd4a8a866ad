//! MLP classifier: linear layers with ReLU and dropout between them.

use candle_core::{Device, Tensor};
use oai_data::dataset::{DType as RecordDType, Record};

use super::ops::linear;
use super::Weights;
use super::{bad_record, Pass};
use crate::params::{Init, ParamDef};
use crate::Result;

pub(super) fn defs(widths: &[usize]) -> Vec<ParamDef> {
    let mut out = Vec::new();
    for (i, w) in widths.windows(2).enumerate() {
        let bound = 1.0 / (w[0] as f32).sqrt();
        out.push(ParamDef::new(
            format!("fc{i}.weight"),
            &[w[1], w[0]],
            Init::Uniform(bound),
        ));
        out.push(ParamDef::new(
            format!("fc{i}.bias"),
            &[w[1]],
            Init::Uniform(bound),
        ));
    }
    out
}

/// The parameters [`defs`] declares, counted; saturates.
pub(super) fn param_count(widths: &[usize]) -> u64 {
    widths.windows(2).fold(0, |n, w| {
        let (i, o) = (w[0] as u64, w[1] as u64);
        n.saturating_add(o.saturating_mul(i).saturating_add(o))
    })
}

pub(super) fn batch(
    records: &[Record],
    input: usize,
    classes: usize,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    let mut xs = Vec::with_capacity(records.len() * input);
    let mut ys = Vec::with_capacity(records.len());
    for r in records {
        let Record::Labeled { input: t, label } = r else {
            return Err(bad_record("the MLP trains on Labeled records".into()));
        };
        let n: u64 = t.shape().iter().product();
        if n != input as u64 {
            return Err(bad_record(format!(
                "input has {n} elements, the MLP takes {input}"
            )));
        }
        if *label >= classes as u64 {
            return Err(bad_record(format!("label {label} >= {classes} classes")));
        }
        match t.dtype() {
            RecordDType::F32 => xs.extend(
                t.data()
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            ),
            RecordDType::U8 => xs.extend(t.data().iter().map(|b| *b as f32)),
            other => {
                return Err(bad_record(format!(
                    "input dtype {other:?} (want F32 or U8)"
                )))
            }
        }
        ys.push(*label as u32);
    }
    let b = records.len();
    Ok((
        Tensor::from_vec(xs, (b, input), device)?,
        Tensor::from_vec(ys, b, device)?,
    ))
}

pub(super) fn forward<W: Weights + ?Sized>(
    p: &W,
    x: &Tensor,
    layers: usize,
    dropout: f64,
    pass: &Pass,
) -> Result<Tensor> {
    let mut h = x.clone();
    for i in 0..layers {
        h = linear(pass.kernels, p, &format!("fc{i}"), &h, None)?;
        if i + 1 < layers {
            h = h.relu()?;
            if let Some(d) = &pass.dropout {
                h = d.apply(&h, dropout, &format!("fc{i}"))?;
            }
        }
    }
    Ok(h)
}
