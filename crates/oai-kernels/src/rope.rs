//! Rotary position embeddings (RoPE) as Llama-family models in GGUF files use them: each pair
//! of adjacent features `(x[2i], x[2i+1])` of a head at position `p` is rotated by the angle
//! `p · theta^(-2i/dh)` (llama.cpp's "normal" mode, candle's `rope_i`).
//!
//! The angles' cosines and sines are constants of the model, computed once in f64 with the
//! pure-Rust `libm` (pinned, so the same bits on every machine) and rounded to f32; the rotation
//! itself is elementwise IEEE arithmetic (two products and a sum per output), so its values and
//! candle's gradients through it are the same bits everywhere.

use candle_core::{Device, Tensor, D};

use crate::{Error, Result};

/// The most angles a table holds (256 MiB of cosines and sines): a context of 128k tokens
/// with heads 256 wide.
const MAX_ENTRIES: usize = 1 << 25;

/// The cosines and sines of every position's angles: `[positions, dh / 2]` each.
#[derive(Debug, Clone)]
pub struct RopeTables {
    cos: Tensor,
    sin: Tensor,
}

impl RopeTables {
    /// The tables of heads `dh` wide (even, > 0) for positions `0..positions`, base `theta`
    /// (finite, > 1).
    pub fn new(theta: f64, dh: usize, positions: usize, device: &Device) -> Result<Self> {
        if dh == 0 || !dh.is_multiple_of(2) || !(theta.is_finite() && theta > 1.0) {
            return Err(Error::InvalidInput(format!(
                "rope needs an even head width > 0 and a finite base > 1, got {dh} and {theta}"
            )));
        }
        let half = dh / 2;
        if positions.checked_mul(half).is_none_or(|n| n > MAX_ENTRIES) {
            return Err(Error::InvalidInput(format!(
                "rope tables of {positions} positions {dh} wide are more than {MAX_ENTRIES} angles"
            )));
        }
        let inv_freq: Vec<f64> = (0..half)
            .map(|i| 1.0 / libm::pow(theta, (2 * i) as f64 / dh as f64))
            .collect();
        let (mut cos, mut sin) = (
            Vec::with_capacity(positions * half),
            Vec::with_capacity(positions * half),
        );
        for p in 0..positions {
            for f in &inv_freq {
                let angle = p as f64 * f;
                cos.push(libm::cos(angle) as f32);
                sin.push(libm::sin(angle) as f32);
            }
        }
        Ok(Self {
            cos: Tensor::from_vec(cos, (positions, half), device)?,
            sin: Tensor::from_vec(sin, (positions, half), device)?,
        })
    }

    /// The device the tables are on.
    pub fn device(&self) -> &Device {
        self.cos.device()
    }

    /// Positions the tables cover.
    pub fn positions(&self) -> usize {
        self.cos.dim(0).unwrap_or(0)
    }

    /// The tables' rows `start..start + len` (positions of a KV-cached step).
    pub fn narrow(&self, start: usize, len: usize) -> Result<Self> {
        if start + len > self.positions() {
            return Err(Error::InvalidInput(format!(
                "positions {start}..{} past the {} the rope tables cover",
                start + len,
                self.positions()
            )));
        }
        Ok(Self {
            cos: self.cos.narrow(0, start, len)?,
            sin: self.sin.narrow(0, start, len)?,
        })
    }

    /// `x [.., t, dh]` rotated: pair `i` of position `p` becomes `(x0·cos − x1·sin, x0·sin +
    /// x1·cos)` with the angle of `(p, i)`; `t` must equal the tables' positions.
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let (t, dh) = match dims.as_slice() {
            [.., t, dh] => (*t, *dh),
            _ => return Err(Error::InvalidInput(format!("rope of a tensor {dims:?}"))),
        };
        let half = self.cos.dim(1)?;
        if t != self.positions() || dh != 2 * half {
            return Err(Error::InvalidInput(format!(
                "rope tables of {} positions, {} wide, for a tensor {dims:?}",
                self.positions(),
                2 * half
            )));
        }
        let mut pairs = dims.clone();
        pairs.pop();
        pairs.extend([half, 2]);
        let x = x.reshape(pairs)?;
        let x0 = x.narrow(D::Minus1, 0, 1)?.squeeze(D::Minus1)?;
        let x1 = x.narrow(D::Minus1, 1, 1)?.squeeze(D::Minus1)?;
        let (cos, sin) = (&self.cos, &self.sin);
        let y0 = (x0.broadcast_mul(cos)? - x1.broadcast_mul(sin)?)?;
        let y1 = (x0.broadcast_mul(sin)? + x1.broadcast_mul(cos)?)?;
        Ok(Tensor::stack(&[y0, y1], D::Minus1)?.reshape(dims)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, seeded};

    /// The rotation is candle's interleaved rope (`rope_i`) to rounding, keeps each pair's
    /// length, and position 0 is the identity.
    #[test]
    fn rotation_matches_candles_rope_i_and_keeps_norms() {
        let dev = Device::Cpu;
        let (b, h, t, dh) = (2, 3, 5, 8);
        let x = seeded(&[b, h, t, dh], 7, 4.0);
        let tables = RopeTables::new(10_000.0, dh, t, &dev).unwrap();
        let ours = tables.apply(&x).unwrap();
        let candle = candle_nn::rotary_emb::rope_i(&x, &tables.cos, &tables.sin).unwrap();
        assert_close(&ours, &candle, 1e-6);
        let norms = |t: &Tensor| {
            t.reshape((b * h * t.dim(2).unwrap() * dh / 2, 2))
                .unwrap()
                .sqr()
                .unwrap()
                .sum(1)
                .unwrap()
        };
        assert_close(&norms(&ours), &norms(&x), 1e-4);
        let first = |t: &Tensor| t.narrow(2, 0, 1).unwrap();
        assert_close(&first(&ours), &first(&x), 0.0);
    }

    #[test]
    fn tables_are_the_same_bits_every_time_and_bad_sizes_are_errors() {
        let dev = Device::Cpu;
        let a = RopeTables::new(100_000.0, 64, 16, &dev).unwrap();
        let b = RopeTables::new(100_000.0, 64, 16, &dev).unwrap();
        assert_eq!(crate::testing::bits(&a.sin), crate::testing::bits(&b.sin));
        assert!(RopeTables::new(10_000.0, 7, 4, &dev).is_err());
        assert!(RopeTables::new(1.0, 8, 4, &dev).is_err());
        assert!(RopeTables::new(f64::NAN, 8, 4, &dev).is_err());
        assert!(RopeTables::new(10_000.0, 128, 1 << 40, &dev).is_err());
        assert!(a.narrow(10, 7).is_err());
        assert!(a.apply(&seeded(&[1, 15, 64], 1, 1.0)).is_err());
        assert!(a.apply(&seeded(&[1, 16, 62], 1, 1.0)).is_err());
    }
}
