//! Matrices of ggml's quantised blocks (`Q4_0`, `Q4_1`, `Q8_0`, as GGUF files store them)
//! multiplied without leaving their 4 or 8 bits, with the bits of the fixed-slice matmul on
//! their dequantised values.
//!
//! A weight is dequantised by candle's formula (`q·d + m` for `Q4_1`, `(q - 8)·d` for `Q4_0`,
//! `q·d` for `Q8_0`, each an f32 multiply then add, the scales converted exactly from f16), and
//! `x @ W^T` is the definition of [`crate::SLICE`]d products: per output element, one FMA chain
//! over each k-slice from zero, the slices added left to right. So
//! `QMatrix::matmul_t(x)` equals `Kernels::Verifiable.matmul_t(x, dequantize(W))` bit for bit
//! (a test checks it over many shapes), while reading 4.5 to 8.5 bits a weight instead of 32:
//! decoding a language model is bound by the bytes its weights take to read.
//!
//! Unlike llama.cpp's and candle's quantised matmuls, the activations are never quantised, so
//! a model gives the same logits from its GGUF file as from the f32 checkpoint imported from it.
//!
//! Layout: the rows of `W` are cut into tiles of [`TILE`] rows (the last one padded with zero
//! rows); per tile and block of 32 columns, the tile's 16 scales (and 16 minimums), then its
//! quants column by column, 16 bytes a column (for 4 bits, two columns share a byte: the low
//! nibble is the first). An AVX-512 kernel holds one tile's 16 outputs in the 16 lanes of a
//! register, so every lane is one output element's FMA chain in order; elsewhere the same
//! definition runs in portable code (a block dequantised at a time, then loops over the lanes
//! that compilers vectorise), with the same bits.

use candle_core::{Device, Tensor};
use half::f16;

use crate::{Error, Result, SLICE};

/// Rows of `W` per tile: the lanes of one AVX-512 register of f32.
pub const TILE: usize = 16;

/// Columns per block, in every format.
pub const BLOCK: usize = 32;

/// A ggml block format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlockFormat {
    /// 4-bit quants with one f16 scale: `(q - 8)·d`.
    Q4_0,
    /// 4-bit quants with an f16 scale and an f16 minimum: `q·d + m`.
    Q4_1,
    /// 8-bit signed quants with one f16 scale: `q·d`.
    Q8_0,
}

impl BlockFormat {
    /// Bytes of one block of 32 weights as ggml stores it.
    pub fn block_bytes(self) -> usize {
        match self {
            BlockFormat::Q4_0 => 2 + 16,
            BlockFormat::Q4_1 => 2 + 2 + 16,
            BlockFormat::Q8_0 => 2 + 32,
        }
    }

    /// f16 values per row and block: the scale, and the minimum where there is one.
    fn scales(self) -> usize {
        match self {
            BlockFormat::Q4_1 => 2,
            BlockFormat::Q4_0 | BlockFormat::Q8_0 => 1,
        }
    }

    /// Bytes of quants per row and block.
    fn quant_bytes(self) -> usize {
        match self {
            BlockFormat::Q4_0 | BlockFormat::Q4_1 => BLOCK / 2,
            BlockFormat::Q8_0 => BLOCK,
        }
    }

    /// The quant of column `c` (of 32) in a block's quant bytes, as ggml stores it (4 bits:
    /// columns 0-15 are the low nibbles of bytes 0-15, columns 16-31 their high nibbles).
    fn quant(self, qs: &[u8], c: usize) -> u8 {
        match self {
            BlockFormat::Q4_0 | BlockFormat::Q4_1 if c < BLOCK / 2 => qs[c] & 0x0F,
            BlockFormat::Q4_0 | BlockFormat::Q4_1 => qs[c - BLOCK / 2] >> 4,
            BlockFormat::Q8_0 => qs[c],
        }
    }

    /// A weight from its quant, scale and minimum: candle's dequantisation, operation for
    /// operation.
    fn weight(self, q: u8, d: f32, m: f32) -> f32 {
        match self {
            BlockFormat::Q4_0 => (q as i16 - 8) as f32 * d,
            BlockFormat::Q4_1 => q as f32 * d + m,
            BlockFormat::Q8_0 => q as i8 as f32 * d,
        }
    }
}

/// A `[rows, cols]` matrix of quantised blocks, repacked in tiles for [`QMatrix::matmul_t`].
#[derive(Debug, Clone)]
pub struct QMatrix {
    format: BlockFormat,
    rows: usize,
    cols: usize,
    /// Per tile and block: the tile's scales (then its minimums) as f16 bits.
    scales: Vec<u16>,
    /// Per tile and block: the quants, 16 bytes a column (a pair of columns for 4 bits).
    quants: Vec<u8>,
}

impl QMatrix {
    /// The matrix whose rows are `data`'s blocks as ggml stores them, row after row (a GGUF
    /// tensor of shape `[cols, rows]`). `cols` must be a multiple of 32, `data` exactly
    /// `rows · cols / 32` blocks long and every scale finite: otherwise
    /// [`Error::InvalidInput`].
    pub fn from_blocks(format: BlockFormat, rows: usize, cols: usize, data: &[u8]) -> Result<Self> {
        let bad = |why: String| Err(Error::InvalidInput(format!("{format:?} matrix: {why}")));
        if !cols.is_multiple_of(BLOCK) {
            return bad(format!("{cols} columns are not whole blocks of {BLOCK}"));
        }
        let blocks = cols / BLOCK;
        let expected = rows
            .checked_mul(blocks)
            .and_then(|b| b.checked_mul(format.block_bytes()));
        if expected != Some(data.len()) {
            return bad(format!(
                "{} bytes for {rows} x {cols} weights (expected {expected:?})",
                data.len()
            ));
        }
        let tiles = rows.div_ceil(TILE);
        let per_block = TILE * format.scales();
        let quant_block = TILE * format.quant_bytes();
        let mut scales = vec![0u16; tiles * blocks * per_block];
        let mut quants = vec![0u8; tiles * blocks * quant_block];
        for (r, row) in data.chunks_exact(blocks * format.block_bytes()).enumerate() {
            let (t, lane) = (r / TILE, r % TILE);
            for (b, block) in row.chunks_exact(format.block_bytes()).enumerate() {
                let at = t * blocks + b;
                let (sc, qs) = block.split_at(2 * format.scales());
                for (s, bits) in sc.chunks_exact(2).enumerate() {
                    let bits = u16::from_le_bytes([bits[0], bits[1]]);
                    if !f16::from_bits(bits).is_finite() {
                        return bad(format!("row {r}, block {b}: a scale is not finite"));
                    }
                    scales[at * per_block + s * TILE + lane] = bits;
                }
                let tile_quants = &mut quants[at * quant_block..(at + 1) * quant_block];
                match format {
                    BlockFormat::Q4_0 | BlockFormat::Q4_1 => {
                        for pair in 0..BLOCK / 2 {
                            let lo = format.quant(qs, 2 * pair);
                            let hi = format.quant(qs, 2 * pair + 1);
                            tile_quants[pair * TILE + lane] = lo | hi << 4;
                        }
                    }
                    BlockFormat::Q8_0 => {
                        for c in 0..BLOCK {
                            tile_quants[c * TILE + lane] = qs[c];
                        }
                    }
                }
            }
        }
        Ok(Self {
            format,
            rows,
            cols,
            scales,
            quants,
        })
    }

    /// The block format.
    pub fn format(&self) -> BlockFormat {
        self.format
    }

    /// Rows (outputs of `x @ W^T`).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns (inputs of `x @ W^T`).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Bytes the matrix holds (what a product reads).
    pub fn bytes(&self) -> usize {
        self.scales.len() * 2 + self.quants.len()
    }

    fn blocks(&self) -> usize {
        self.cols / BLOCK
    }

    /// Bytes of quants per tile and block.
    fn quant_block(&self) -> usize {
        TILE * self.format.quant_bytes()
    }

    /// Row `r` dequantised, a block's scale and minimum read once.
    fn row(&self, r: usize) -> impl Iterator<Item = f32> + '_ {
        let (t, lane) = (r / TILE, r % TILE);
        (0..self.blocks()).flat_map(move |b| {
            let at = t * self.blocks() + b;
            let (d, m) = self.scale(at, lane);
            (0..BLOCK).map(move |c| self.format.weight(self.quant_at(at, c, lane), d, m))
        })
    }

    /// All weights dequantised, `[rows, cols]` row-major: candle's dequantisation of the same
    /// blocks, bit for bit.
    pub fn dequantize(&self) -> Vec<f32> {
        (0..self.rows).flat_map(|r| self.row(r)).collect()
    }

    /// The rows `ids` dequantised, `[ids.len(), cols]`: an embedding lookup. An id past the
    /// last row is [`Error::InvalidInput`].
    pub fn dequantize_rows(&self, ids: &[u32]) -> Result<Vec<f32>> {
        let mut out = Vec::with_capacity(ids.len() * self.cols);
        for &id in ids {
            let r = id as usize;
            if r >= self.rows {
                return Err(Error::InvalidInput(format!(
                    "row {id} of a matrix of {} rows",
                    self.rows
                )));
            }
            out.extend(self.row(r));
        }
        Ok(out)
    }

    /// `x @ W^T` for an f32 `x [.., cols]`: `[.., rows]`, with the bits of the fixed-slice
    /// matmul on the dequantised `W` (the module's documentation says how). Spread over the
    /// pool's threads by tiles; how never changes a bit.
    pub fn matmul_t(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims();
        let Some((&k, outer)) = dims.split_last() else {
            return Err(Error::InvalidInput("a quantised matmul of a scalar".into()));
        };
        if k != self.cols {
            return Err(Error::InvalidInput(format!(
                "x {dims:?} @ W^T with W [{}, {}]",
                self.rows, self.cols
            )));
        }
        let m = outer.iter().product();
        let x = x.flatten_all()?.to_vec1::<f32>()?;
        let out = self.product(&x, m);
        let mut shape = outer.to_vec();
        shape.push(self.rows);
        Ok(Tensor::from_vec(out, shape, &Device::Cpu)?)
    }

    /// `[m, rows]` row-major for `x [m, cols]`.
    fn product(&self, x: &[f32], m: usize) -> Vec<f32> {
        let tiles = self.rows.div_ceil(TILE);
        // two units a thread, each of whole groups of 4 tiles (a decoding pass's width)
        let per_unit = tiles
            .div_ceil(crate::pool::threads() * 2)
            .next_multiple_of(4)
            .max(4);
        let units = tiles.div_ceil(per_unit);
        // each unit: its tiles' outputs as [m][its tiles · TILE]
        let parts = crate::pool::map(units, |u| {
            let tiles = u * per_unit..((u + 1) * per_unit).min(tiles);
            let width = tiles.len() * TILE;
            let mut part = vec![0f32; m * width];
            self.tiles(tiles, x, m, &mut part);
            part
        });
        let mut out = Vec::with_capacity(m * self.rows);
        for i in 0..m {
            for (u, part) in parts.iter().enumerate() {
                let width = part.len() / m.max(1);
                let first = u * per_unit * TILE;
                let take = width.min(self.rows - first);
                out.extend_from_slice(&part[i * width..i * width + take]);
            }
        }
        out
    }

    /// The outputs of `tiles` for every row of `x [m, cols]`: row `i`'s 16 of the `j`-th tile
    /// at `out[i · width + j · 16..][..16]`, `width` being 16 per tile.
    fn tiles(&self, tiles: std::ops::Range<usize>, x: &[f32], m: usize, out: &mut [f32]) {
        let width = tiles.len() * TILE;
        #[cfg(target_arch = "x86_64")]
        if crate::avx512::available() {
            // SAFETY: AVX-512F is available (checked above), `x` holds `m` rows of `cols`
            // floats (`matmul_t` made it so) and `out` `m` rows of `width`, the tiles' outputs.
            #[allow(unsafe_code)]
            unsafe {
                avx512::tiles(self, tiles, x, m, out, width)
            };
            return;
        }
        for (j, t) in tiles.enumerate() {
            self.tile_portable(t, x, m, &mut out[j * TILE..], width);
        }
    }

    /// Tile `t`'s outputs for every row of `x [m, cols]` (row `i`'s 16 at
    /// `out[i · stride..][..16]`) by the definition in portable code: each block of the tile
    /// is dequantised once into 32 columns of 16 lanes, then every row's 16 chains step column
    /// by column (loops over the lanes, which compilers vectorise).
    fn tile_portable(&self, t: usize, x: &[f32], m: usize, out: &mut [f32], stride: usize) {
        let k = self.cols;
        let mut total = vec![[0f32; TILE]; m];
        let mut acc = vec![[0f32; TILE]; m];
        let mut w = [[0f32; TILE]; BLOCK];
        for (s, k0) in (0..k).step_by(SLICE).enumerate() {
            acc.iter_mut().for_each(|a| *a = [0.0; TILE]);
            for b in k0 / BLOCK..(k0 + SLICE).min(k) / BLOCK {
                self.block_weights(t, b, &mut w);
                for (i, acc) in acc.iter_mut().enumerate() {
                    let xs = &x[i * k + b * BLOCK..][..BLOCK];
                    for (xc, wc) in xs.iter().zip(&w) {
                        for (a, wl) in acc.iter_mut().zip(wc) {
                            *a = xc.mul_add(*wl, *a);
                        }
                    }
                }
            }
            for (total, acc) in total.iter_mut().zip(&acc) {
                for (t, a) in total.iter_mut().zip(acc) {
                    *t = if s == 0 { *a } else { *t + *a };
                }
            }
        }
        for (i, total) in total.iter().enumerate() {
            out[i * stride..i * stride + TILE].copy_from_slice(total);
        }
    }

    /// Block `b` of tile `t` dequantised: `w[c][lane]` is weight `(16·t + lane, 32·b + c)`.
    fn block_weights(&self, t: usize, b: usize, w: &mut [[f32; TILE]; BLOCK]) {
        let at = t * self.blocks() + b;
        let (d, m) = self.scales_at(at);
        for (c, wc) in w.iter_mut().enumerate() {
            for (lane, wl) in wc.iter_mut().enumerate() {
                *wl = self
                    .format
                    .weight(self.quant_at(at, c, lane), d[lane], m[lane]);
            }
        }
    }

    /// The scales and minimums (zeros where the format has none) of tile-block `at`.
    fn scales_at(&self, at: usize) -> ([f32; TILE], [f32; TILE]) {
        let lanes: [(f32, f32); TILE] = std::array::from_fn(|l| self.scale(at, l));
        (lanes.map(|(d, _)| d), lanes.map(|(_, m)| m))
    }

    /// The scale and minimum (zero where the format has none) of lane `lane` in tile-block
    /// `at`.
    fn scale(&self, at: usize, lane: usize) -> (f32, f32) {
        let sc = &self.scales[at * TILE * self.format.scales()..];
        let m = match self.format {
            BlockFormat::Q4_1 => f16::from_bits(sc[TILE + lane]).to_f32(),
            BlockFormat::Q4_0 | BlockFormat::Q8_0 => 0.0,
        };
        (f16::from_bits(sc[lane]).to_f32(), m)
    }

    /// The quant of column `c` (of 32) of lane `lane` in tile-block `at`.
    fn quant_at(&self, at: usize, c: usize, lane: usize) -> u8 {
        let qs = &self.quants[at * self.quant_block()..];
        match self.format {
            BlockFormat::Q4_0 | BlockFormat::Q4_1 => {
                qs[c / 2 * TILE + lane] >> (4 * (c % 2)) & 0x0F
            }
            BlockFormat::Q8_0 => qs[c * TILE + lane],
        }
    }
}

// The intrinsics' unaligned loads and stores take raw pointers: each is a SAFETY-commented
// block over a slice of exactly the width it reads or writes.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx512 {
    //! Tiles' outputs on AVX-512F: lane `l` of a register is row `l` of a tile. Each output
    //! is one FMA chain, whose latency would bound a single chain: a pass runs `R` rows of `x`
    //! against `T` tiles at once, `R · T` independent chains.

    use std::arch::x86_64::{
        __m128i, __m512, __m512i, _mm256_loadu_si256, _mm512_add_ps, _mm512_and_si512,
        _mm512_cvtepi32_ps, _mm512_cvtepi8_epi32, _mm512_cvtepu8_epi32, _mm512_cvtph_ps,
        _mm512_fmadd_ps, _mm512_mul_ps, _mm512_set1_epi32, _mm512_set1_ps, _mm512_setzero_ps,
        _mm512_srli_epi32, _mm512_storeu_ps, _mm512_sub_epi32, _mm_loadu_si128,
    };
    use std::ops::Range;

    use super::{BlockFormat, QMatrix, BLOCK, TILE};
    use crate::SLICE;

    /// Rows of `x` a pass serves when there are enough (prompts): each weight is dequantised
    /// once per pass.
    const ROWS: usize = 4;
    /// Tiles a pass covers for one row (decoding).
    const TILES: usize = 4;

    /// The outputs of `tiles` for every row of `x [m, cols]`: row `i`'s of the `j`-th tile at
    /// `out[i · width + j · 16..][..16]`.
    ///
    /// # Safety
    /// The CPU must have AVX-512F. (Slices are indexed with bounds checks: a short `x` or
    /// `out` panics.)
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn tiles(
        q: &QMatrix,
        tiles: Range<usize>,
        x: &[f32],
        m: usize,
        out: &mut [f32],
        width: usize,
    ) {
        let k = q.cols;
        let mut i = 0;
        while i + ROWS <= m {
            for (j, t) in tiles.clone().enumerate() {
                pass::<ROWS, 1>(q, t, &x[i * k..], &mut out[i * width + j * TILE..], width);
            }
            i += ROWS;
        }
        for i in i..m {
            let (x, out) = (&x[i * k..], &mut out[i * width..]);
            let mut j = 0;
            while j + TILES <= tiles.len() {
                pass::<1, TILES>(q, tiles.start + j, x, &mut out[j * TILE..], width);
                j += TILES;
            }
            for j in j..tiles.len() {
                pass::<1, 1>(q, tiles.start + j, x, &mut out[j * TILE..], width);
            }
        }
    }

    /// `R` rows of `x` (from `x[0]`, rows `cols` apart) against tiles `t0..t0 + T`: row `r`'s
    /// outputs of tile `t0 + j` into `out[r · stride + j · 16..][..16]`.
    #[target_feature(enable = "avx512f")]
    fn pass<const R: usize, const T: usize>(
        q: &QMatrix,
        t0: usize,
        x: &[f32],
        out: &mut [f32],
        stride: usize,
    ) {
        let k = q.cols;
        let mut total = [[_mm512_setzero_ps(); T]; R];
        for (s, k0) in (0..k).step_by(SLICE).enumerate() {
            let mut acc = [[_mm512_setzero_ps(); T]; R];
            for b in k0 / BLOCK..(k0 + SLICE).min(k) / BLOCK {
                block::<R, T>(q, t0, b, x, &mut acc);
            }
            for (total, acc) in total.iter_mut().zip(&acc) {
                for (t, a) in total.iter_mut().zip(acc) {
                    *t = if s == 0 { *a } else { _mm512_add_ps(*t, *a) };
                }
            }
        }
        for (r, total) in total.iter().enumerate() {
            for (j, t) in total.iter().enumerate() {
                let dst = &mut out[r * stride + j * TILE..r * stride + (j + 1) * TILE];
                // SAFETY: `dst` is 16 floats long, the width of the store.
                unsafe { _mm512_storeu_ps(dst.as_mut_ptr(), *t) };
            }
        }
    }

    /// Block `b` (columns `32·b..`) of `R` rows of `x` against tiles `t0..t0 + T`, into `acc`
    /// column by column.
    #[target_feature(enable = "avx512f")]
    fn block<const R: usize, const T: usize>(
        q: &QMatrix,
        t0: usize,
        b: usize,
        x: &[f32],
        acc: &mut [[__m512; T]; R],
    ) {
        let (k, format) = (q.cols, q.format);
        let (per_scales, per_quants) = (TILE * format.scales(), q.quant_block());
        let at = |j: usize| (t0 + j) * q.blocks() + b;
        let half = |j: usize, i: usize| {
            let from = at(j) * per_scales + i * TILE;
            let bits = &q.scales[from..from + TILE];
            // SAFETY: `bits` is 16 f16 values, the 32 bytes the load reads.
            _mm512_cvtph_ps(unsafe { _mm256_loadu_si256(bits.as_ptr().cast()) })
        };
        let quants = |j: usize, c: usize| -> __m128i {
            let from = at(j) * per_quants + c * TILE;
            let bytes = &q.quants[from..from + TILE];
            // SAFETY: `bytes` is the 16 bytes the load reads.
            unsafe { _mm_loadu_si128(bytes.as_ptr().cast()) }
        };
        let d: [__m512; T] = std::array::from_fn(|j| half(j, 0));
        let x0 = b * BLOCK;
        let mut step = |c: usize, w: &[__m512; T]| {
            for (r, acc) in acc.iter_mut().enumerate() {
                let xv = _mm512_set1_ps(x[r * k + x0 + c]);
                for (a, w) in acc.iter_mut().zip(w) {
                    *a = _mm512_fmadd_ps(xv, *w, *a);
                }
            }
        };
        match format {
            BlockFormat::Q8_0 => {
                for c in 0..BLOCK {
                    let w: [__m512; T] = std::array::from_fn(|j| {
                        let q = _mm512_cvtepi8_epi32(quants(j, c));
                        _mm512_mul_ps(_mm512_cvtepi32_ps(q), d[j])
                    });
                    step(c, &w);
                }
            }
            BlockFormat::Q4_0 | BlockFormat::Q4_1 => {
                let low = _mm512_set1_epi32(0x0F);
                let eight = _mm512_set1_epi32(8);
                let m: [__m512; T] = std::array::from_fn(|j| match format {
                    BlockFormat::Q4_1 => half(j, 1),
                    _ => _mm512_setzero_ps(),
                });
                let weight = |q: __m512i, j: usize| match format {
                    BlockFormat::Q4_1 => {
                        _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(q), d[j]), m[j])
                    }
                    _ => _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(q, eight)), d[j]),
                };
                for pair in 0..BLOCK / 2 {
                    let q: [__m512i; T] =
                        std::array::from_fn(|j| _mm512_cvtepu8_epi32(quants(j, pair)));
                    let lo = std::array::from_fn(|j| weight(_mm512_and_si512(q[j], low), j));
                    step(2 * pair, &lo);
                    let hi = std::array::from_fn(|j| weight(_mm512_srli_epi32::<4>(q[j]), j));
                    step(2 * pair + 1, &hi);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{bits, seeded};
    use crate::Kernels;
    use candle_core::quantized::{ggml_file::qtensor_from_ggml, GgmlDType};
    use candle_core::DType;
    use oai_core::seed::RngCore;

    const FORMATS: [BlockFormat; 3] = [BlockFormat::Q4_0, BlockFormat::Q4_1, BlockFormat::Q8_0];

    fn ggml(format: BlockFormat) -> GgmlDType {
        match format {
            BlockFormat::Q4_0 => GgmlDType::Q4_0,
            BlockFormat::Q4_1 => GgmlDType::Q4_1,
            BlockFormat::Q8_0 => GgmlDType::Q8_0,
        }
    }

    /// `rows · cols / 32` seeded blocks: random quants, scales of both signs over many
    /// magnitudes (a zero and an f16 subnormal among them).
    fn blocks(format: BlockFormat, rows: usize, cols: usize, seed: u64) -> Vec<u8> {
        let mut rng = oai_core::Seed::from_u64(seed).rng();
        let mut out = Vec::new();
        for i in 0..rows * cols / BLOCK {
            for s in 0..format.scales() {
                let v = match (i + s) % 23 {
                    0 => 0.0,
                    1 => 3e-7, // an f16 subnormal
                    _ => (rng.next_u32() as f32 / u32::MAX as f32 - 0.5) / (1 + i % 7) as f32,
                };
                out.extend_from_slice(&f16::from_f32(v).to_bits().to_le_bytes());
            }
            out.extend((0..format.quant_bytes()).map(|_| rng.next_u32() as u8));
        }
        out
    }

    fn matrix(format: BlockFormat, rows: usize, cols: usize, seed: u64) -> (QMatrix, Vec<u8>) {
        let data = blocks(format, rows, cols, seed);
        let q = QMatrix::from_blocks(format, rows, cols, &data).unwrap();
        (q, data)
    }

    #[test]
    fn dequantisation_is_candles_bit_for_bit() {
        for format in FORMATS {
            for (rows, cols) in [(1, 32), (17, 64), (40, 288)] {
                let (q, data) = matrix(format, rows, cols, 7);
                let candle = qtensor_from_ggml(ggml(format), &data, vec![rows, cols], &Device::Cpu)
                    .unwrap()
                    .dequantize(&Device::Cpu)
                    .unwrap();
                let ours = Tensor::from_vec(q.dequantize(), (rows, cols), &Device::Cpu).unwrap();
                assert_eq!(bits(&ours), bits(&candle), "{format:?} {rows}x{cols}");
                let ids = [rows as u32 - 1, 0, rows as u32 / 2];
                let picked =
                    Tensor::from_vec(q.dequantize_rows(&ids).unwrap(), (3, cols), &Device::Cpu)
                        .unwrap();
                let ids = Tensor::new(&ids, &Device::Cpu).unwrap();
                assert_eq!(bits(&picked), bits(&candle.index_select(&ids, 0).unwrap()));
            }
        }
    }

    #[test]
    fn products_are_the_fixed_slice_matmul_of_the_dequantised_weights_bit_for_bit() {
        // k below, at and past a slice, not a multiple of it; rows below, at and past a tile;
        // m of 1 (decoding), a few (prompts) and more than the kernel's row group
        let shapes = [
            (1, 16, 32),
            (1, 17, 64),
            (2, 40, 288),
            (5, 33, 576),
            (4, 64, 512),
            (9, 3, 256),
            (1, 49, 1536),
            (3, 130, 96),
        ];
        for format in FORMATS {
            for (i, &(m, rows, cols)) in shapes.iter().enumerate() {
                let (q, _) = matrix(format, rows, cols, i as u64);
                let w = Tensor::from_vec(q.dequantize(), (rows, cols), &Device::Cpu).unwrap();
                let x = seeded(&[m, cols], 100 + i as u64, 4.0);
                let want = Kernels::Verifiable.matmul_t(&x, &w).unwrap();
                let got = q.matmul_t(&x).unwrap();
                assert_eq!(got.dims(), &[m, rows]);
                assert_eq!(
                    bits(&got),
                    bits(&want),
                    "{format:?} {m}x{cols} @ {rows}x{cols}^T"
                );
                // the portable code, which other CPUs run, gives the same bits
                let xs = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                let mut portable = vec![0f32; m * TILE];
                for t in 0..rows.div_ceil(TILE) {
                    q.tile_portable(t, &xs, m, &mut portable, TILE);
                    for r in 0..m {
                        let n = TILE.min(rows - t * TILE);
                        let want = &bits(&want.get(r).unwrap())[t * TILE..t * TILE + n];
                        let got: Vec<u32> = portable[r * TILE..r * TILE + n]
                            .iter()
                            .map(|v| v.to_bits())
                            .collect();
                        assert_eq!(got, want, "portable {format:?} tile {t} row {r}");
                    }
                }
            }
        }
    }

    #[test]
    fn leading_dims_are_kept_and_empty_products_are_empty() {
        let (q, _) = matrix(BlockFormat::Q4_1, 20, 64, 3);
        let x = seeded(&[2, 3, 64], 5, 2.0);
        let y = q.matmul_t(&x).unwrap();
        assert_eq!(y.dims(), &[2, 3, 20]);
        let flat = q.matmul_t(&x.reshape((6, 64)).unwrap()).unwrap();
        assert_eq!(bits(&y), bits(&flat));
        let none = q.matmul_t(&Tensor::zeros((0, 64), DType::F32, &Device::Cpu).unwrap());
        assert_eq!(none.unwrap().dims(), &[0, 20]);
        let no_rows = QMatrix::from_blocks(BlockFormat::Q8_0, 0, 64, &[]).unwrap();
        assert_eq!(no_rows.matmul_t(&x).unwrap().dims(), &[2, 3, 0]);
    }

    #[test]
    fn bad_blocks_and_operands_are_invalid_input() {
        let data = blocks(BlockFormat::Q4_1, 2, 64, 1);
        let invalid = |r: Result<QMatrix>| matches!(r, Err(Error::InvalidInput(_)));
        // columns that are not whole blocks; a byte short; a byte over
        assert!(invalid(QMatrix::from_blocks(
            BlockFormat::Q4_1,
            2,
            48,
            &data
        )));
        assert!(invalid(QMatrix::from_blocks(
            BlockFormat::Q4_1,
            2,
            64,
            &data[1..]
        )));
        let mut long = data.clone();
        long.push(0);
        assert!(invalid(QMatrix::from_blocks(
            BlockFormat::Q4_1,
            2,
            64,
            &long
        )));
        // another format's length
        assert!(invalid(QMatrix::from_blocks(
            BlockFormat::Q8_0,
            2,
            64,
            &data
        )));
        // a rows count whose size overflows
        assert!(invalid(QMatrix::from_blocks(
            BlockFormat::Q4_1,
            usize::MAX,
            64,
            &data
        )));
        // scales (and minimums) that are not finite
        for (at, v) in [(0, f16::NAN), (22, f16::INFINITY), (2, f16::NEG_INFINITY)] {
            let mut bad = data.clone();
            bad[at..at + 2].copy_from_slice(&v.to_bits().to_le_bytes());
            let r = QMatrix::from_blocks(BlockFormat::Q4_1, 2, 64, &bad);
            assert!(invalid(r), "a {v} at byte {at}");
        }
        // an operand of the wrong width; a row past the last
        let q = QMatrix::from_blocks(BlockFormat::Q4_1, 2, 64, &data).unwrap();
        assert!(matches!(
            q.matmul_t(&seeded(&[1, 32], 1, 1.0)),
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            q.dequantize_rows(&[2]),
            Err(Error::InvalidInput(_))
        ));
    }
}
