//! Quantized weight matrices and their matrix-vector products.
//!
//! The default model ships as Q4_1 (token embedding Q8_0). candle has no SIMD
//! path for Q4_1, and a 135M-parameter decode step is bound by memory
//! bandwidth, so re-quantizing to Q8_0 (twice the bytes) halves the speed
//! ceiling. We therefore keep Q4_1 and Q8_0 weights exactly as the GGUF
//! stores them (ggml block layouts) and dot them against activations
//! quantized to 8 bits per 32-value block, like llama.cpp; AVX2 is detected at
//! run time, with a portable path that gives the same result up to
//! float summation order. Every other GGUF type is dequantized by candle and
//! re-quantized to Q8_0 at load ([`crate::model::Precision::Q8_0`], the
//! default), or kept as dense f32 ([`crate::model::Precision::AsStored`],
//! see [`crate::matrix`]).

use half::f16;
use rayon::prelude::*;

/// Values per quantization block (Q4_1, Q8_0 and activations alike).
pub const BLOCK: usize = 32;

/// ggml's Q4_1 block: value j = (nibble j) · d + m; byte i holds value i in
/// its low nibble and value i + 16 in its high nibble.
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct BlockQ4_1 {
    d: f16,
    m: f16,
    qs: [u8; BLOCK / 2],
}

/// ggml's Q8_0 block: value j = qs[j] · d.
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct BlockQ8_0 {
    d: f16,
    qs: [i8; BLOCK],
}

/// An activation block: value j ≈ qs[j] · d, and `s` = d · Σ qs (needed by
/// Q4_1's offset term).
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
pub struct ActBlock {
    d: f32,
    s: f32,
    qs: [i8; BLOCK],
}

/// The storage of a quantized matrix, one variant per kernel.
#[derive(Clone, Debug)]
enum Blocks {
    Q4_1(Vec<BlockQ4_1>),
    Q8_0(Vec<BlockQ8_0>),
}

/// A row-major matrix (`rows` × `cols`, `cols` a multiple of 32) of quantized
/// weights; y = W x.
#[derive(Clone, Debug)]
pub struct QMatrix {
    rows: usize,
    cols: usize,
    blocks: Blocks,
}

/// Which storage a weight matrix uses (reported by `model info` and
/// [`crate::model::Model::weight_formats`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightFormat {
    /// Kept as stored.
    Q4_1,
    /// Kept as stored or re-quantized from another type.
    Q8_0,
    /// Dense f32 ([`crate::matrix::DenseMatrix`]): F32 as stored, F16/BF16
    /// widened, other types dequantized; only under
    /// [`crate::model::Precision::AsStored`].
    F32,
}

impl QMatrix {
    /// Parses ggml Q4_1 bytes.
    pub fn from_q4_1_bytes(rows: usize, cols: usize, bytes: &[u8]) -> Result<QMatrix, String> {
        check_shape(rows, cols, bytes.len(), 20)?;
        let blocks = bytes
            .chunks_exact(20)
            .map(|b| BlockQ4_1 {
                d: f16::from_le_bytes([b[0], b[1]]),
                m: f16::from_le_bytes([b[2], b[3]]),
                qs: b[4..20].try_into().expect("16 bytes"),
            })
            .collect();
        Ok(QMatrix {
            rows,
            cols,
            blocks: Blocks::Q4_1(blocks),
        })
    }

    /// Parses ggml Q8_0 bytes.
    pub fn from_q8_0_bytes(rows: usize, cols: usize, bytes: &[u8]) -> Result<QMatrix, String> {
        check_shape(rows, cols, bytes.len(), 34)?;
        let blocks = bytes
            .chunks_exact(34)
            .map(|b| {
                let mut qs = [0i8; BLOCK];
                for (q, &byte) in qs.iter_mut().zip(&b[2..34]) {
                    *q = byte as i8;
                }
                BlockQ8_0 {
                    d: f16::from_le_bytes([b[0], b[1]]),
                    qs,
                }
            })
            .collect();
        Ok(QMatrix {
            rows,
            cols,
            blocks: Blocks::Q8_0(blocks),
        })
    }

    /// Quantizes f32 weights (row-major) to Q8_0 the way ggml does.
    pub fn quantize_q8_0(rows: usize, cols: usize, values: &[f32]) -> Result<QMatrix, String> {
        if rows.checked_mul(cols) != Some(values.len()) || cols % BLOCK != 0 {
            return Err(format!(
                "cannot quantize {} values as a {rows}×{cols} matrix (columns must be a multiple of {BLOCK})",
                values.len()
            ));
        }
        let blocks = values
            .chunks_exact(BLOCK)
            .map(|x| {
                let (d, qs) = quantize_block(x);
                BlockQ8_0 {
                    d: f16::from_f32(d),
                    qs,
                }
            })
            .collect();
        Ok(QMatrix {
            rows,
            cols,
            blocks: Blocks::Q8_0(blocks),
        })
    }

    /// Stacks matrices with the same column count and storage (e.g. the
    /// q, k, v projections) so one pass computes all of them.
    pub fn stack(parts: Vec<QMatrix>) -> Result<QMatrix, String> {
        let cols = parts.first().map_or(0, |p| p.cols);
        if parts.iter().any(|p| p.cols != cols) {
            return Err("stacked matrices differ in column count".into());
        }
        let rows: usize = parts.iter().map(|p| p.rows).sum();
        let all_q4 = parts.iter().all(|p| matches!(p.blocks, Blocks::Q4_1(_)));
        let all_q8 = parts.iter().all(|p| matches!(p.blocks, Blocks::Q8_0(_)));
        let blocks = if all_q4 {
            let mut v = Vec::new();
            for p in parts {
                if let Blocks::Q4_1(b) = p.blocks {
                    v.extend(b);
                }
            }
            Blocks::Q4_1(v)
        } else if all_q8 {
            let mut v = Vec::new();
            for p in parts {
                if let Blocks::Q8_0(b) = p.blocks {
                    v.extend(b);
                }
            }
            Blocks::Q8_0(v)
        } else {
            // Mixed storage: bring everything to Q8_0.
            let mut values = Vec::with_capacity(rows.saturating_mul(cols));
            for p in &parts {
                for r in 0..p.rows {
                    values.extend(p.row(r));
                }
            }
            return QMatrix::quantize_q8_0(rows, cols, &values);
        };
        Ok(QMatrix { rows, cols, blocks })
    }

    /// Output dimension.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Input dimension.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The storage format (never [`WeightFormat::F32`]).
    pub fn format(&self) -> WeightFormat {
        match self.blocks {
            Blocks::Q4_1(_) => WeightFormat::Q4_1,
            Blocks::Q8_0(_) => WeightFormat::Q8_0,
        }
    }

    /// Row `r` dequantized (used for embedding lookups).
    pub fn row(&self, r: usize) -> Vec<f32> {
        let per_row = self.cols / BLOCK;
        let range = r * per_row..(r + 1) * per_row;
        let mut out = Vec::with_capacity(self.cols);
        match &self.blocks {
            Blocks::Q4_1(b) => {
                for blk in &b[range] {
                    let (d, m) = (blk.d.to_f32(), blk.m.to_f32());
                    let lo = blk.qs.iter().map(|q| (q & 0x0f) as f32 * d + m);
                    let hi = blk.qs.iter().map(|q| (q >> 4) as f32 * d + m);
                    out.extend(lo);
                    out.extend(hi);
                }
            }
            Blocks::Q8_0(b) => {
                for blk in &b[range] {
                    let d = blk.d.to_f32();
                    out.extend(blk.qs.iter().map(|&q| q as f32 * d));
                }
            }
        }
        out
    }

    /// y = W x for every activation row: `acts` holds `n` rows of
    /// cols/32 blocks each; `out` receives `n` rows of `self.rows` values
    /// (`out[b · rows + r]` = weight row r · activation row b).
    ///
    /// A cache-blocked matrix-matrix product on the current rayon pool: the
    /// output is cut into tiles of weight rows × activation rows
    /// ([`Tiling`]), each a task. Within a tile, a group of four activation
    /// rows stays in L1 while every weight row of the tile passes over it,
    /// and the tile's weight rows (about 64 KiB) stay in L2 while the groups
    /// pass, so each weight block is fetched from memory once per tile and
    /// reused for up to [`BATCH_TILE`] positions. Every output is one weight
    /// row dotted with one activation row, blocks in order, so the results
    /// do not depend on `n`, the tiling or the number of threads.
    pub fn matmul(&self, acts: &[ActBlock], out: &mut [f32]) {
        let per_row = self.cols / BLOCK;
        if per_row == 0 {
            // No inputs: every dot product is empty.
            out.fill(0.0);
            return;
        }
        let n = acts.len() / per_row;
        assert_eq!(acts.len(), n * per_row, "activation blocks");
        assert_eq!(out.len(), n * self.rows, "output size");
        if n == 0 || self.rows == 0 {
            return;
        }
        let simd = simd_available();
        let row_bytes = per_row
            * match self.blocks {
                Blocks::Q4_1(_) => std::mem::size_of::<BlockQ4_1>(),
                Blocks::Q8_0(_) => std::mem::size_of::<BlockQ8_0>(),
            };
        let tiling = Tiling::new(self.rows, n, row_bytes, rayon::current_num_threads());
        let panel = if simd {
            panel(acts, per_row)
        } else {
            Vec::new()
        };
        let dst = Output::new(out, self.rows);
        let work = |t: usize| {
            let (rows, batch) = tiling.tile(t);
            self.tile(rows, batch, acts, &panel, &dst, simd);
        };
        if tiling.count() == 1 {
            work(0);
        } else {
            (0..tiling.count()).into_par_iter().for_each(work);
        }
    }

    /// Computes the outputs of weight rows `rows` × activation rows
    /// `batch`: activation rows in groups of four, each group dotted with
    /// every weight row of the tile in turn (two rows at a time from the
    /// group's [`PanelBlock`]s when `panel` holds them, else one row at a
    /// time from `acts`; both give the same bits).
    fn tile(
        &self,
        rows: std::ops::Range<usize>,
        batch: std::ops::Range<usize>,
        acts: &[ActBlock],
        panel: &[PanelBlock],
        dst: &Output,
        simd: bool,
    ) {
        let per_row = self.cols / BLOCK;
        let mut ys = [0f32; GROUP];
        let mut b = batch.start;
        while b < batch.end {
            let g = (batch.end - b).min(GROUP);
            #[cfg(target_arch = "x86_64")]
            if g == GROUP && (b / GROUP + 1) * per_row <= panel.len() {
                let p = &panel[b / GROUP * per_row..(b / GROUP + 1) * per_row];
                let mut r = rows.start;
                while r < rows.end {
                    let pair = rows.end - r >= 2;
                    let mut ys = [[0f32; GROUP]; 2];
                    let w0 = r * per_row..(r + 1) * per_row;
                    let w1 = if pair {
                        w0.end..w0.end + per_row
                    } else {
                        w0.clone()
                    };
                    // SAFETY: the panel is built only when AVX2, FMA and
                    // F16C were detected at run time.
                    unsafe {
                        match &self.blocks {
                            Blocks::Q4_1(w) => avx2::panel_q4_1(&w[w0], &w[w1], p, &mut ys),
                            Blocks::Q8_0(w) => avx2::panel_q8_0(&w[w0], &w[w1], p, &mut ys),
                        }
                    }
                    for (k, ys) in ys.iter().enumerate().take(1 + pair as usize) {
                        for (j, &y) in ys.iter().enumerate() {
                            dst.set(b + j, r + k, y);
                        }
                    }
                    r += 1 + pair as usize;
                }
                b += g;
                continue;
            }
            let _ = panel;
            let xs = &acts[b * per_row..(b + g) * per_row];
            let ys = &mut ys[..g];
            for r in rows.clone() {
                let w = r * per_row..(r + 1) * per_row;
                match &self.blocks {
                    Blocks::Q4_1(blocks) => dot_q4_1(&blocks[w], xs, ys, simd),
                    Blocks::Q8_0(blocks) => dot_q8_0(&blocks[w], xs, ys, simd),
                }
                for (j, &y) in ys.iter().enumerate() {
                    dst.set(b + j, r, y);
                }
            }
            b += g;
        }
    }
}

/// Activation rows dotted together with one weight row (one kernel call).
const GROUP: usize = 4;

/// One block of a group of four activation rows, interleaved so that the
/// AVX2 kernels load the four scales, the four sums and the four rows'
/// values from one place: `d[j]`, `s[j]`, `qs[j]` of row j.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(32))]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
struct PanelBlock {
    d: [f32; GROUP],
    s: [f32; GROUP],
    qs: [[i8; BLOCK]; GROUP],
}

/// The full groups of four rows of `acts` (`per_row` blocks a row) as
/// panels: group g's block i at `g · per_row + i`. Rows after the last full
/// group are left out (they are dotted from `acts`).
fn panel(acts: &[ActBlock], per_row: usize) -> Vec<PanelBlock> {
    let groups = acts.len() / per_row / GROUP;
    let mut out = Vec::with_capacity(groups * per_row);
    for g in 0..groups {
        let rows = &acts[g * GROUP * per_row..(g + 1) * GROUP * per_row];
        out.extend((0..per_row).map(|i| PanelBlock {
            d: std::array::from_fn(|j| rows[j * per_row + i].d),
            s: std::array::from_fn(|j| rows[j * per_row + i].s),
            qs: std::array::from_fn(|j| rows[j * per_row + i].qs),
        }));
    }
    out
}

/// Most activation rows (positions) in one tile.
pub const BATCH_TILE: usize = 64;

/// Bytes of weights one tile aims to hold: a quarter of a 256–512 KiB L2.
const TILE_WEIGHT_BYTES: usize = 64 * 1024;

/// How [`QMatrix::matmul`] cuts its output into tiles: `row_tile` weight
/// rows × `batch_tile` activation rows, numbered batch-tile-major.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tiling {
    rows: usize,
    n: usize,
    row_tile: usize,
    batch_tile: usize,
}

impl Tiling {
    /// Tiles for `rows` weight rows of `row_bytes` bytes each and `n`
    /// activation rows on `threads` threads: at most [`BATCH_TILE`]
    /// activation rows (a multiple of four) and about 64 KiB of weights per
    /// tile, cut finer when that gives fewer than four tiles per thread.
    pub fn new(rows: usize, n: usize, row_bytes: usize, threads: usize) -> Tiling {
        let (rows, n) = (rows.max(1), n.max(1));
        let batch_tile = n.min(BATCH_TILE);
        let batch_tiles = n.div_ceil(batch_tile);
        let by_cache = (TILE_WEIGHT_BYTES / row_bytes.max(1)).max(1);
        let wanted = (4 * threads.max(1)).div_ceil(batch_tiles);
        let by_threads = rows.div_ceil(wanted).max(1);
        // Even, so that the kernels' weight-row pairs fill every tile.
        let row_tile = by_cache.min(by_threads).min(rows);
        let row_tile = row_tile + (row_tile % 2 == 1 && row_tile < rows) as usize;
        Tiling {
            rows,
            n,
            row_tile,
            batch_tile,
        }
    }

    /// Number of tiles.
    pub fn count(&self) -> usize {
        self.rows.div_ceil(self.row_tile) * self.n.div_ceil(self.batch_tile)
    }

    /// Weight rows and activation rows of tile `t` (< [`Tiling::count`]).
    pub fn tile(&self, t: usize) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
        let row_tiles = self.rows.div_ceil(self.row_tile);
        let (bt, rt) = (t / row_tiles, t % row_tiles);
        let r0 = rt * self.row_tile;
        let b0 = bt * self.batch_tile;
        (
            r0..(r0 + self.row_tile).min(self.rows),
            b0..(b0 + self.batch_tile).min(self.n),
        )
    }
}

/// The output of one product, written by many tiles at once: each tile
/// owns a disjoint set of (activation row, weight row) entries.
struct Output {
    ptr: *mut f32,
    len: usize,
    rows: usize,
}

// SAFETY: `Output` is only a pointer into a `&mut [f32]` that outlives it
// (borrowed for the whole of `QMatrix::matmul`); tiles write disjoint
// entries and nothing reads them until every tile is done.
unsafe impl Sync for Output {}

impl Output {
    fn new(out: &mut [f32], rows: usize) -> Output {
        Output {
            ptr: out.as_mut_ptr(),
            len: out.len(),
            rows,
        }
    }

    /// Writes entry (activation row `b`, weight row `r`).
    fn set(&self, b: usize, r: usize, y: f32) {
        let i = b * self.rows + r;
        assert!(i < self.len, "output entry out of range");
        // SAFETY: in bounds (checked above); the tilings of `matmul` give
        // each entry to exactly one tile, so no two threads write the same
        // entry, and the slice is borrowed mutably for the whole product.
        unsafe { *self.ptr.add(i) = y }
    }
}

fn check_shape(rows: usize, cols: usize, len: usize, block_bytes: usize) -> Result<(), String> {
    let need = rows
        .checked_mul(cols / BLOCK)
        .and_then(|blocks| blocks.checked_mul(block_bytes));
    if cols % BLOCK != 0 || need != Some(len) {
        return Err(format!(
            "{len} bytes do not hold a {rows}×{cols} matrix of {block_bytes}-byte blocks"
        ));
    }
    Ok(())
}

/// ggml's symmetric 8-bit rounding of one block: scale max|x|/127.
fn quantize_block(x: &[f32]) -> (f32, [i8; BLOCK]) {
    let amax = x.iter().fold(0f32, |a, v| a.max(v.abs()));
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut qs = [0i8; BLOCK];
    for (q, v) in qs.iter_mut().zip(x) {
        *q = (v * id).round() as i8;
    }
    (d, qs)
}

/// Quantizes activation rows (each a multiple of 32 long) into `out`, in
/// parallel on the current rayon pool when there are many blocks (each
/// block is quantized on its own, so the result is the same).
pub fn quantize_acts(x: &[f32], out: &mut Vec<ActBlock>) {
    let blocks = x.len() / BLOCK;
    out.clear();
    out.resize(blocks, ActBlock::default());
    let x = &x[..blocks * BLOCK];
    if blocks < PARALLEL_BLOCKS {
        out.iter_mut()
            .zip(x.chunks_exact(BLOCK))
            .for_each(|(o, x)| *o = act_block(x));
    } else {
        out.par_chunks_mut(PARALLEL_BLOCKS / 4)
            .zip(x.par_chunks(PARALLEL_BLOCKS / 4 * BLOCK))
            .for_each(|(o, x)| {
                o.iter_mut()
                    .zip(x.chunks_exact(BLOCK))
                    .for_each(|(o, x)| *o = act_block(x))
            });
    }
}

/// Blocks below which activations are quantized on one thread.
const PARALLEL_BLOCKS: usize = 1024;

fn act_block(x: &[f32]) -> ActBlock {
    let (d, qs) = quantize_block(x);
    let sum: i32 = qs.iter().map(|&q| q as i32).sum();
    // Scales rounded through f16 as ggml stores them, so results track
    // llama.cpp's.
    ActBlock {
        d: f16::from_f32(d).to_f32(),
        s: f16::from_f32(d * sum as f32).to_f32(),
        qs,
    }
}

fn simd_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("fma")
            && std::is_x86_feature_detected!("f16c")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Dots one weight row (`w`) with `ys.len()` ≤ 4 activation rows laid end to
/// end in `xs`.
fn dot_q4_1(w: &[BlockQ4_1], xs: &[ActBlock], ys: &mut [f32], simd: bool) {
    #[cfg(target_arch = "x86_64")]
    if simd {
        // SAFETY: AVX2, FMA and F16C were detected at run time.
        return unsafe { avx2::dot_q4_1(w, xs, ys) };
    }
    let _ = simd;
    for (y, x) in ys.iter_mut().zip(xs.chunks_exact(w.len())) {
        *y = dot_q4_1_portable(w, x);
    }
}

fn dot_q8_0(w: &[BlockQ8_0], xs: &[ActBlock], ys: &mut [f32], simd: bool) {
    #[cfg(target_arch = "x86_64")]
    if simd {
        // SAFETY: AVX2, FMA and F16C were detected at run time.
        return unsafe { avx2::dot_q8_0(w, xs, ys) };
    }
    let _ = simd;
    for (y, x) in ys.iter_mut().zip(xs.chunks_exact(w.len())) {
        *y = dot_q8_0_portable(w, x);
    }
}

fn dot_q4_1_portable(w: &[BlockQ4_1], x: &[ActBlock]) -> f32 {
    let mut sum = 0f32;
    for (w, x) in w.iter().zip(x) {
        let mut acc = 0i32;
        for i in 0..BLOCK / 2 {
            acc += (w.qs[i] & 0x0f) as i32 * x.qs[i] as i32;
            acc += (w.qs[i] >> 4) as i32 * x.qs[i + BLOCK / 2] as i32;
        }
        sum += w.d.to_f32() * x.d * acc as f32 + w.m.to_f32() * x.s;
    }
    sum
}

fn dot_q8_0_portable(w: &[BlockQ8_0], x: &[ActBlock]) -> f32 {
    let mut sum = 0f32;
    for (w, x) in w.iter().zip(x) {
        let acc: i32 =
            w.qs.iter()
                .zip(&x.qs)
                .map(|(&a, &b)| a as i32 * b as i32)
                .sum();
        sum += w.d.to_f32() * x.d * acc as f32;
    }
    sum
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{ActBlock, BlockQ4_1, BlockQ8_0, PanelBlock, GROUP};
    use half::f16;
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2,fma,f16c")]
    fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_movehdup_ps(s));
        _mm_cvtss_f32(s)
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    fn to_f32(h: f16) -> f32 {
        _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h.to_bits() as i32)))
    }

    /// Σ over 32 lanes of unsigned `a` × signed `b`, as 8 f32 partial sums.
    #[target_feature(enable = "avx2,fma,f16c")]
    fn dot_u8_i8(a: __m256i, b: __m256i) -> __m256 {
        let pairs = _mm256_maddubs_epi16(a, b);
        _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_set1_epi16(1), pairs))
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn dot_q4_1(w: &[BlockQ4_1], xs: &[ActBlock], ys: &mut [f32]) {
        let nb = w.len();
        let n = ys.len();
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut offsets = [0f32; 4];
        let low = _mm256_set1_epi8(0x0f);
        for (i, wb) in w.iter().enumerate() {
            // SAFETY: qs is 16 bytes; unaligned load.
            let packed = unsafe { _mm_loadu_si128(wb.qs.as_ptr() as *const __m128i) };
            let both = _mm256_insertf128_si256::<1>(
                _mm256_castsi128_si256(packed),
                _mm_srli_epi16(packed, 4),
            );
            let nibbles = _mm256_and_si256(both, low);
            let (d, m) = (to_f32(wb.d), to_f32(wb.m));
            for j in 0..n {
                let x = &xs[j * nb + i];
                // SAFETY: qs is 32 bytes; unaligned load.
                let y = unsafe { _mm256_loadu_si256(x.qs.as_ptr() as *const __m256i) };
                acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(d * x.d), dot_u8_i8(nibbles, y), acc[j]);
                offsets[j] += m * x.s;
            }
        }
        for j in 0..n {
            ys[j] = hsum(acc[j]) + offsets[j];
        }
    }

    /// The 32 values of a Q4_1 block as unsigned bytes, in order.
    #[target_feature(enable = "avx2,fma,f16c")]
    fn nibbles(wb: &BlockQ4_1) -> __m256i {
        // SAFETY: qs is 16 bytes; unaligned load.
        let packed = unsafe { _mm_loadu_si128(wb.qs.as_ptr() as *const __m128i) };
        let both =
            _mm256_insertf128_si256::<1>(_mm256_castsi128_si256(packed), _mm_srli_epi16(packed, 4));
        _mm256_and_si256(both, _mm256_set1_epi8(0x0f))
    }

    /// Weight rows `w0` and `w1` (Q4_1) dotted with the four activation
    /// rows of a panel: `ys[k][j]` = row k · activation row j. Every output
    /// is computed with exactly the operations, in the order, of
    /// [`dot_q4_1`] (the scale d·x.d and the offset m·x.s are the same
    /// IEEE products, four lanes at once), so it has the same bits.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn panel_q4_1(
        w0: &[BlockQ4_1],
        w1: &[BlockQ4_1],
        panel: &[PanelBlock],
        ys: &mut [[f32; GROUP]; 2],
    ) {
        let mut acc = [[_mm256_setzero_ps(); GROUP]; 2];
        let mut offsets = [_mm_setzero_ps(); 2];
        for ((a, b), p) in w0.iter().zip(w1).zip(panel) {
            // SAFETY: d and s are four f32 each; unaligned loads.
            let (xd, xs) = unsafe { (_mm_loadu_ps(p.d.as_ptr()), _mm_loadu_ps(p.s.as_ptr())) };
            let nib = [nibbles(a), nibbles(b)];
            let d = [to_f32(a.d), to_f32(b.d)];
            offsets[0] = _mm_add_ps(offsets[0], _mm_mul_ps(_mm_set1_ps(to_f32(a.m)), xs));
            offsets[1] = _mm_add_ps(offsets[1], _mm_mul_ps(_mm_set1_ps(to_f32(b.m)), xs));
            let scales = [
                _mm_mul_ps(_mm_set1_ps(d[0]), xd),
                _mm_mul_ps(_mm_set1_ps(d[1]), xd),
            ];
            let mut lanes = [[0f32; GROUP]; 2];
            // SAFETY: plain stores into local arrays.
            unsafe {
                _mm_storeu_ps(lanes[0].as_mut_ptr(), scales[0]);
                _mm_storeu_ps(lanes[1].as_mut_ptr(), scales[1]);
            }
            for j in 0..GROUP {
                // SAFETY: qs[j] is 32 bytes; aligned within the panel block.
                let y = unsafe { _mm256_loadu_si256(p.qs[j].as_ptr() as *const __m256i) };
                for k in 0..2 {
                    acc[k][j] = _mm256_fmadd_ps(
                        _mm256_set1_ps(lanes[k][j]),
                        dot_u8_i8(nib[k], y),
                        acc[k][j],
                    );
                }
            }
        }
        for k in 0..2 {
            let mut off = [0f32; GROUP];
            // SAFETY: a plain store into a local array.
            unsafe { _mm_storeu_ps(off.as_mut_ptr(), offsets[k]) };
            for j in 0..GROUP {
                ys[k][j] = hsum(acc[k][j]) + off[j];
            }
        }
    }

    /// Weight rows `w0` and `w1` (Q8_0) dotted with the four activation
    /// rows of a panel, with exactly the operations of [`dot_q8_0`].
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn panel_q8_0(
        w0: &[BlockQ8_0],
        w1: &[BlockQ8_0],
        panel: &[PanelBlock],
        ys: &mut [[f32; GROUP]; 2],
    ) {
        let mut acc = [[_mm256_setzero_ps(); GROUP]; 2];
        for ((a, b), p) in w0.iter().zip(w1).zip(panel) {
            // SAFETY: qs is 32 bytes and d four f32; unaligned loads.
            let (wa, wb, xd) = unsafe {
                (
                    _mm256_loadu_si256(a.qs.as_ptr() as *const __m256i),
                    _mm256_loadu_si256(b.qs.as_ptr() as *const __m256i),
                    _mm_loadu_ps(p.d.as_ptr()),
                )
            };
            let w = [wa, wb];
            let abs = [_mm256_sign_epi8(wa, wa), _mm256_sign_epi8(wb, wb)];
            let scales = [
                _mm_mul_ps(_mm_set1_ps(to_f32(a.d)), xd),
                _mm_mul_ps(_mm_set1_ps(to_f32(b.d)), xd),
            ];
            let mut lanes = [[0f32; GROUP]; 2];
            // SAFETY: plain stores into local arrays.
            unsafe {
                _mm_storeu_ps(lanes[0].as_mut_ptr(), scales[0]);
                _mm_storeu_ps(lanes[1].as_mut_ptr(), scales[1]);
            }
            for j in 0..GROUP {
                // SAFETY: qs[j] is 32 bytes; unaligned load.
                let y = unsafe { _mm256_loadu_si256(p.qs[j].as_ptr() as *const __m256i) };
                for k in 0..2 {
                    let products = dot_u8_i8(abs[k], _mm256_sign_epi8(y, w[k]));
                    acc[k][j] = _mm256_fmadd_ps(_mm256_set1_ps(lanes[k][j]), products, acc[k][j]);
                }
            }
        }
        for k in 0..2 {
            for j in 0..GROUP {
                ys[k][j] = hsum(acc[k][j]);
            }
        }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn dot_q8_0(w: &[BlockQ8_0], xs: &[ActBlock], ys: &mut [f32]) {
        let nb = w.len();
        let n = ys.len();
        let mut acc = [_mm256_setzero_ps(); 4];
        for (i, wb) in w.iter().enumerate() {
            // SAFETY: qs is 32 bytes; unaligned load.
            let a = unsafe { _mm256_loadu_si256(wb.qs.as_ptr() as *const __m256i) };
            let abs = _mm256_sign_epi8(a, a);
            let d = to_f32(wb.d);
            for j in 0..n {
                let x = &xs[j * nb + i];
                // SAFETY: qs is 32 bytes; unaligned load.
                let b = unsafe { _mm256_loadu_si256(x.qs.as_ptr() as *const __m256i) };
                // |a| · (b · sign a) = a · b, with the left operand unsigned.
                let products = dot_u8_i8(abs, _mm256_sign_epi8(b, a));
                acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(d * x.d), products, acc[j]);
            }
        }
        for j in 0..n {
            ys[j] = hsum(acc[j]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::{RngCore, SeedableRng};

    fn random_values(n: usize, seed: u64) -> Vec<f32> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|_| (rng.next_u32() as f32 / u32::MAX as f32 - 0.5) * 2.0)
            .collect()
    }

    fn q4_1_bytes(values: &[f32]) -> Vec<u8> {
        // ggml's Q4_1 quantizer: 16 levels between the block's min and max.
        let mut out = Vec::new();
        for x in values.chunks_exact(BLOCK) {
            let min = x.iter().cloned().fold(f32::INFINITY, f32::min);
            let max = x.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            let d = (max - min) / 15.0;
            let id = if d != 0.0 { 1.0 / d } else { 0.0 };
            out.extend(f16::from_f32(d).to_le_bytes());
            out.extend(f16::from_f32(min).to_le_bytes());
            for i in 0..16 {
                let lo = (((x[i] - min) * id + 0.5) as u8).min(15);
                let hi = (((x[i + 16] - min) * id + 0.5) as u8).min(15);
                out.push(lo | (hi << 4));
            }
        }
        out
    }

    fn reference(w: &QMatrix, x: &[f32]) -> Vec<f32> {
        (0..w.rows)
            .map(|r| w.row(r).iter().zip(x).map(|(a, b)| a * b).sum())
            .collect()
    }

    #[test]
    fn kernels_match_dequantized_arithmetic() {
        let (rows, cols) = (37, 256);
        let w = random_values(rows * cols, 1);
        let q4 = QMatrix::from_q4_1_bytes(rows, cols, &q4_1_bytes(&w)).unwrap();
        let q8 = QMatrix::quantize_q8_0(rows, cols, &w).unwrap();
        for n in [1usize, 3, 6] {
            let x = random_values(n * cols, 2 + n as u64);
            let mut acts = Vec::new();
            quantize_acts(&x, &mut acts);
            for m in [&q4, &q8] {
                let mut y = vec![0f32; n * rows];
                m.matmul(&acts, &mut y);
                for b in 0..n {
                    let xb = &x[b * cols..(b + 1) * cols];
                    let want = reference(m, xb);
                    for (r, (got, want)) in
                        y[b * rows..(b + 1) * rows].iter().zip(&want).enumerate()
                    {
                        // Worst case of the activation quantization: per value
                        // |x - q·d| ≤ d/2 + 127·d·2⁻¹¹ (d rounded to f16), and
                        // for Q4_1 the f16 rounding of s in the offset term.
                        let w = m.row(r);
                        let mut bound = 0f32;
                        for (wc, xc) in w.chunks(BLOCK).zip(xb.chunks(BLOCK)) {
                            let d = xc.iter().fold(0f32, |a, v| a.max(v.abs())) / 127.0;
                            let per_value = d / 2.0 + 127.0 * d / 2048.0;
                            bound += wc.iter().map(|v| v.abs()).sum::<f32>() * per_value;
                            bound += wc.iter().fold(0f32, |a, v| a.max(v.abs()))
                                * xc.iter().map(|v| v.abs()).sum::<f32>()
                                / 1024.0;
                        }
                        assert!(
                            (got - want).abs() <= bound + 1e-4,
                            "{got} vs {want} (bound {bound})"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn simd_and_portable_kernels_agree() {
        let cols = 576;
        let w = random_values(cols, 9);
        let x = random_values(cols, 10);
        let mut acts = Vec::new();
        quantize_acts(&x, &mut acts);
        let q4 = QMatrix::from_q4_1_bytes(1, cols, &q4_1_bytes(&w)).unwrap();
        let q8 = QMatrix::quantize_q8_0(1, cols, &w).unwrap();
        let (Blocks::Q4_1(b4), Blocks::Q8_0(b8)) = (&q4.blocks, &q8.blocks) else {
            unreachable!()
        };
        let simd = simd_available();
        let mut a = [0f32];
        dot_q4_1(b4, &acts, &mut a, simd);
        let b = dot_q4_1_portable(b4, &acts);
        assert!((a[0] - b).abs() <= 1e-4 * b.abs().max(1.0), "{a:?} vs {b}");
        dot_q8_0(b8, &acts, &mut a, simd);
        let b = dot_q8_0_portable(b8, &acts);
        assert!((a[0] - b).abs() <= 1e-4 * b.abs().max(1.0), "{a:?} vs {b}");
    }

    #[test]
    fn tilings_cover_every_entry_once() {
        for (rows, n, row_bytes, threads) in [
            (1, 1, 20, 1),
            (960, 1, 360, 2),
            (49_152, 255, 612, 2),
            (576, 256, 960, 8),
            (7, 70, 20, 3),
            (3072, 5, 360, 1),
        ] {
            let t = Tiling::new(rows, n, row_bytes, threads);
            let mut seen = vec![0u8; rows * n];
            for i in 0..t.count() {
                let (rs, bs) = t.tile(i);
                assert!(bs.len() <= BATCH_TILE && !rs.is_empty() && !bs.is_empty());
                assert!(bs.start % GROUP == 0, "batch tiles start on a group");
                for b in bs {
                    for r in rs.clone() {
                        seen[b * rows + r] += 1;
                    }
                }
            }
            assert!(seen.iter().all(|&k| k == 1), "{rows}×{n}");
        }
    }

    /// Each output is one weight row dotted with one activation row, so a
    /// product over many positions on many threads gives exactly (bit for
    /// bit) the outputs of each position alone on one thread.
    #[test]
    fn products_do_not_depend_on_batch_or_threads() {
        let (rows, cols) = (301, 96);
        let w = random_values(rows * cols, 11);
        let q4 = QMatrix::from_q4_1_bytes(rows, cols, &q4_1_bytes(&w)).unwrap();
        let q8 = QMatrix::quantize_q8_0(rows, cols, &w).unwrap();
        let n = 2 * BATCH_TILE + 7;
        let x = random_values(n * cols, 12);
        let mut acts = Vec::new();
        quantize_acts(&x, &mut acts);
        let per_row = cols / BLOCK;
        for m in [&q4, &q8] {
            let one = rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .build()
                .unwrap();
            let alone: Vec<f32> = one.install(|| {
                (0..n)
                    .flat_map(|b| {
                        let mut y = vec![0f32; rows];
                        m.matmul(&acts[b * per_row..(b + 1) * per_row], &mut y);
                        y
                    })
                    .collect()
            });
            for threads in [1, 3] {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                let mut y = vec![f32::NAN; n * rows];
                pool.install(|| m.matmul(&acts, &mut y));
                assert!(
                    y.iter()
                        .zip(&alone)
                        .all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{:?} on {threads} threads",
                    m.format()
                );
            }
        }
        // Activations quantized in parallel are the blocks quantized alone.
        let mut one_by_one = Vec::new();
        for row in x.chunks(cols) {
            let mut a = Vec::new();
            quantize_acts(row, &mut a);
            one_by_one.extend(a);
        }
        let big = random_values(4 * PARALLEL_BLOCKS * BLOCK, 13);
        let mut par = Vec::new();
        quantize_acts(&big, &mut par);
        for (i, blk) in big.chunks_exact(BLOCK).enumerate().step_by(97) {
            let want = act_block(blk);
            assert_eq!((par[i].d, par[i].s, par[i].qs), (want.d, want.s, want.qs));
        }
        assert!(one_by_one
            .iter()
            .zip(&acts)
            .all(|(a, b)| (a.d, a.s, a.qs) == (b.d, b.s, b.qs)));
    }

    #[test]
    fn stacking_concatenates_rows() {
        let a = QMatrix::quantize_q8_0(2, 32, &random_values(64, 3)).unwrap();
        let b = QMatrix::quantize_q8_0(3, 32, &random_values(96, 4)).unwrap();
        let s = QMatrix::stack(vec![a.clone(), b.clone()]).unwrap();
        assert_eq!(s.rows(), 5);
        assert_eq!(s.row(1), a.row(1));
        assert_eq!(s.row(4), b.row(2));
        assert!(QMatrix::from_q8_0_bytes(2, 32, &[0; 10]).is_err());
    }
}
