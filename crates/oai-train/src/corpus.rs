//! Turning common raw data into dataset records the models train on.

use oai_core::seed::uniform_below;
use oai_core::Seed;
use oai_data::dataset::{DType, Record, Tensor};

use crate::{Error, Result};

/// `n` labelled records of `dim` features in `classes` (> 0) classes, drawn from `seed`: record
/// `i` has label `i % classes`, and its feature `j` is uniform in `[0, 1)` (in thousandths) plus
/// 0.5 where `j % classes` is its label. A small, learnable, reproducible dataset for examples,
/// tests and benches.
pub fn seeded_classes(seed: Seed, n: u64, dim: usize, classes: u64) -> Vec<Record> {
    let mut rng = seed.rng();
    (0..n)
        .map(|i| {
            let values: Vec<f32> = (0..dim as u64)
                .map(|j| {
                    let lean = if j % classes == i % classes { 0.5 } else { 0.0 };
                    lean + uniform_below(&mut rng, 1000) as f32 / 1000.0
                })
                .collect();
            Record::Labeled {
                input: Tensor::from_f32(vec![dim as u64], &values)
                    .expect("the shape holds dim values"),
                label: i % classes,
            }
        })
        .collect()
}

/// [`labeled_from_csv`] of the UTF-8 file at `path` (a missing file is not found, invalid
/// UTF-8 names its line).
pub fn labeled_from_csv_file(path: &std::path::Path, scale: f32) -> Result<Vec<Record>> {
    use oai_data::dataset::sources;
    let text = sources::utf8(&path.display().to_string(), sources::read_file(path)?)?;
    labeled_from_csv(&text, scale)
}

/// Records from CSV lines of numeric features with an integer class in the last column (the
/// layout of scikit-learn's `digits.csv`): each line becomes a `Labeled` f32 tensor record,
/// features multiplied by `scale`. Blank lines are skipped.
pub fn labeled_from_csv(csv: &str, scale: f32) -> Result<Vec<Record>> {
    let mut out = Vec::new();
    let mut width = None;
    for (n, line) in csv
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let bad = |why: String| Error::malformed("CSV", format!("line {}: {why}", n + 1));
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let (label, features) = fields.split_last().expect("split gives one field at least");
        if features.is_empty() || *width.get_or_insert(features.len()) != features.len() {
            return Err(bad(format!("{} features", features.len())));
        }
        let label: u64 = label
            .parse::<f64>()
            .ok()
            .filter(|v| v.fract() == 0.0 && *v >= 0.0)
            .map(|v| v as u64)
            .ok_or_else(|| bad(format!("label {label:?} is not a class index")))?;
        let values = features
            .iter()
            .map(|f| f.parse::<f32>().map(|v| v * scale))
            .collect::<std::result::Result<Vec<f32>, _>>()
            .map_err(|e| bad(e.to_string()))?;
        let input = Tensor::from_f32(vec![values.len() as u64], &values)?;
        out.push(Record::Labeled { input, label });
    }
    Ok(out)
}

/// Byte records of `context + 1` bytes cut from `text` every `stride` bytes, for the
/// byte-level language models (inputs are the first `context` bytes, targets the last).
pub fn byte_windows(text: &[u8], context: usize, stride: usize) -> Result<Vec<Record>> {
    windows(text, context, stride, |w| Ok(Record::Bytes(w.to_vec())))
}

/// Records of `context + 1` token ids (`U32` tensors) cut from `tokens` every `stride`
/// tokens, for a language model with a real tokenizer (e.g. [`crate::gguf::Tokenizer`]): the
/// dataset then holds the very tokens a run trains on, and its CID pins the tokenisation.
pub fn token_windows(tokens: &[u32], context: usize, stride: usize) -> Result<Vec<Record>> {
    windows(tokens, context, stride, |w| {
        let data = w.iter().flat_map(|t| t.to_le_bytes()).collect();
        Ok(Record::Tensor(Tensor::new(
            DType::U32,
            vec![w.len() as u64],
            data,
        )?))
    })
}

/// `record` of every window of `context + 1` items of `items`, one every `stride` items.
fn windows<T>(
    items: &[T],
    context: usize,
    stride: usize,
    record: impl Fn(&[T]) -> Result<Record>,
) -> Result<Vec<Record>> {
    if context == 0 || stride == 0 {
        return Err(Error::InvalidSpec("context and stride must be > 0".into()));
    }
    (0..items.len().saturating_sub(context))
        .step_by(stride)
        .map(|i| record(&items[i..i + context + 1]))
        .collect()
}

/// Unigram (byte-frequency) entropy of `text` in nats: the loss of the best model that ignores
/// context, the baseline a language model must beat.
pub fn unigram_entropy(text: &[u8]) -> f64 {
    let mut counts = [0u64; 256];
    for b in text {
        counts[*b as usize] += 1;
    }
    let n = text.len() as f64;
    counts
        .iter()
        .filter(|c| **c > 0)
        .map(|c| {
            let p = *c as f64 / n;
            -p * p.ln()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_and_windows() {
        let r = labeled_from_csv("0,16,3\n\n1,2,0\n", 1.0 / 16.0).unwrap();
        assert_eq!(r.len(), 2);
        let Record::Labeled { input, label } = &r[0] else {
            panic!("labeled")
        };
        assert_eq!(*label, 3);
        assert_eq!(input.shape(), &[2]);
        assert!(labeled_from_csv("1,2,x\n", 1.0).is_err());
        assert!(labeled_from_csv("1,2,3\n1,2\n", 1.0).is_err());
        let w = byte_windows(b"abcdefg", 3, 2).unwrap();
        assert_eq!(
            w,
            vec![
                Record::Bytes(b"abcd".to_vec()),
                Record::Bytes(b"cdef".to_vec())
            ]
        );
        assert!((unigram_entropy(b"abab") - std::f64::consts::LN_2).abs() < 1e-12);
    }
}
