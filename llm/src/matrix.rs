//! The weight matrices of a loaded model: quantized blocks ([`QMatrix`],
//! dotted against 8-bit activations) or dense f32 ([`DenseMatrix`], f32
//! activations, multiplied by candle's CPU matmul, which is the `gemm`
//! crate).
//!
//! Dense matrices are what [`crate::model::Precision::AsStored`] loads for
//! tensors stored as F32 (kept bit for bit), F16 or BF16 (widened to f32,
//! which is exact) or any other type that is not Q4_1/Q8_0 (dequantized to
//! f32, which is exact up to the dequantizer's own f32 arithmetic): the
//! products then use the weights the file holds, not a re-quantization.

use candle_core::{Device, Tensor};

use crate::quant::{quantize_acts, ActBlock, QMatrix, WeightFormat};

/// A row-major `rows` × `cols` matrix of f32 weights; y = W x.
#[derive(Clone, Debug)]
pub struct DenseMatrix {
    rows: usize,
    cols: usize,
    /// Shape (rows, cols), contiguous.
    weights: Tensor,
}

impl DenseMatrix {
    /// Wraps f32 weights in row-major order. Errors when `values` does not
    /// hold `rows` × `cols` values (a product that overflows holds none).
    pub fn new(rows: usize, cols: usize, values: Vec<f32>) -> Result<DenseMatrix, String> {
        if rows.checked_mul(cols) != Some(values.len()) {
            return Err(format!(
                "{} values do not make a {rows}×{cols} matrix",
                values.len()
            ));
        }
        let weights =
            Tensor::from_vec(values, (rows, cols), &Device::Cpu).map_err(|e| e.to_string())?;
        Ok(DenseMatrix {
            rows,
            cols,
            weights,
        })
    }

    /// Output dimension.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Input dimension.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Row `r` (`cols` values; used for embedding lookups).
    pub fn row(&self, r: usize) -> Result<Vec<f32>, String> {
        self.weights
            .get(r)
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(|e| e.to_string())
    }

    /// All weights in row-major order.
    pub fn values(&self) -> Result<Vec<f32>, String> {
        self.weights
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(|e| e.to_string())
    }

    /// y = W x for each of the `n` rows of `x` (`n` × `cols` values, row
    /// major); `out` receives `n` × `rows` values. f32 arithmetic
    /// throughout (candle → `gemm`, threads on the current rayon pool).
    pub fn matmul(&self, x: &[f32], out: &mut [f32]) -> Result<(), String> {
        let n = x.len() / self.cols;
        if x.len() != n * self.cols || out.len() != n * self.rows {
            return Err(format!(
                "a {}×{} product got {} inputs and {} outputs",
                self.rows,
                self.cols,
                x.len(),
                out.len()
            ));
        }
        let y = Tensor::from_slice(x, (n, self.cols), &Device::Cpu)
            .and_then(|x| x.matmul(&self.weights.t()?))
            .and_then(|y| y.flatten_all())
            .and_then(|y| y.to_vec1::<f32>())
            .map_err(|e| e.to_string())?;
        out.copy_from_slice(&y);
        Ok(())
    }
}

/// A weight matrix in the storage a model was loaded with.
#[derive(Clone, Debug)]
pub enum Matrix {
    /// Q4_1 or Q8_0 blocks, multiplied against activations quantized to
    /// 8 bits per 32-value block.
    Quantized(QMatrix),
    /// f32 weights and f32 activations.
    Dense(DenseMatrix),
}

impl Matrix {
    /// Output dimension.
    pub fn rows(&self) -> usize {
        match self {
            Matrix::Quantized(m) => m.rows(),
            Matrix::Dense(m) => m.rows(),
        }
    }

    /// Input dimension.
    pub fn cols(&self) -> usize {
        match self {
            Matrix::Quantized(m) => m.cols(),
            Matrix::Dense(m) => m.cols(),
        }
    }

    /// The storage format.
    pub fn format(&self) -> WeightFormat {
        match self {
            Matrix::Quantized(m) => m.format(),
            Matrix::Dense(_) => WeightFormat::F32,
        }
    }

    /// Row `r` as f32 (dequantized when quantized).
    pub fn row(&self, r: usize) -> Result<Vec<f32>, String> {
        match self {
            Matrix::Quantized(m) => Ok(m.row(r)),
            Matrix::Dense(m) => m.row(r),
        }
    }

    /// y = W x for each of the `n` rows of `x` (`n` × `cols` values);
    /// `out` receives `n` × `rows` values. A quantized matrix first
    /// quantizes `x` into `scratch` ([`quantize_acts`]), exactly as before
    /// dense matrices existed; a dense one multiplies in f32.
    pub fn matmul(
        &self,
        x: &[f32],
        scratch: &mut Vec<ActBlock>,
        out: &mut [f32],
    ) -> Result<(), String> {
        match self {
            Matrix::Quantized(m) => {
                quantize_acts(x, scratch);
                m.matmul(scratch, out);
                Ok(())
            }
            Matrix::Dense(m) => m.matmul(x, out),
        }
    }

    /// Stacks matrices with the same column count (the q, k, v projections;
    /// gate and up) so one pass computes all of them. All quantized: as
    /// [`QMatrix::stack`] (mixed Q4_1/Q8_0 become Q8_0) when `dense_if_mixed`
    /// is false or every part has the same format; otherwise every part's
    /// values (dequantized exactly) become one dense matrix.
    pub fn stack(parts: Vec<Matrix>, dense_if_mixed: bool) -> Result<Matrix, String> {
        let cols = parts.first().map_or(0, Matrix::cols);
        if parts.iter().any(|p| p.cols() != cols) {
            return Err("stacked matrices differ in column count".into());
        }
        let first = parts.first().map(Matrix::format);
        let same = parts.iter().all(|p| Some(p.format()) == first);
        let all_quantized = parts.iter().all(|p| matches!(p, Matrix::Quantized(_)));
        if all_quantized && (same || !dense_if_mixed) {
            let q = parts
                .into_iter()
                .filter_map(|p| match p {
                    Matrix::Quantized(q) => Some(q),
                    Matrix::Dense(_) => None,
                })
                .collect();
            return QMatrix::stack(q).map(Matrix::Quantized);
        }
        let rows: usize = parts.iter().map(Matrix::rows).sum();
        let mut values = Vec::with_capacity(rows.saturating_mul(cols));
        for p in &parts {
            match p {
                Matrix::Dense(d) => values.extend(d.values()?),
                Matrix::Quantized(q) => (0..q.rows()).for_each(|r| values.extend(q.row(r))),
            }
        }
        DenseMatrix::new(rows, cols, values).map(Matrix::Dense)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_product_matches_naive_sums() {
        let (rows, cols, n) = (7, 45, 3);
        let w: Vec<f32> = (0..rows * cols)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 64.0)
            .collect();
        let x: Vec<f32> = (0..n * cols)
            .map(|i| ((i * 53 % 89) as f32 - 44.0) / 32.0)
            .collect();
        let m = DenseMatrix::new(rows, cols, w.clone()).unwrap();
        let mut y = vec![0f32; n * rows];
        m.matmul(&x, &mut y).unwrap();
        for b in 0..n {
            for r in 0..rows {
                let want: f64 = (0..cols)
                    .map(|c| w[r * cols + c] as f64 * x[b * cols + c] as f64)
                    .sum();
                let got = y[b * rows + r] as f64;
                assert!(
                    (got - want).abs() <= 1e-5 * want.abs().max(1.0),
                    "{got} vs {want}"
                );
            }
        }
        assert_eq!(m.row(2).unwrap(), w[2 * cols..3 * cols].to_vec());
        assert!(m.matmul(&x[1..], &mut y).is_err());
        assert!(DenseMatrix::new(2, 3, vec![0.0; 5]).is_err());
    }

    #[test]
    fn stacking_keeps_quantized_blocks_or_goes_dense_when_mixed() {
        let vals = |k: usize, s: f32| -> Vec<f32> {
            (0..k).map(|i| ((i % 17) as f32 - 8.0) * s).collect()
        };
        let q = QMatrix::quantize_q8_0(2, 32, &vals(64, 0.1)).unwrap();
        let d = DenseMatrix::new(3, 32, vals(96, 0.01)).unwrap();
        let s = Matrix::stack(
            vec![Matrix::Quantized(q.clone()), Matrix::Quantized(q.clone())],
            true,
        )
        .unwrap();
        assert_eq!(s.format(), WeightFormat::Q8_0);
        assert_eq!(s.rows(), 4);
        let s = Matrix::stack(vec![Matrix::Quantized(q.clone()), Matrix::Dense(d)], true).unwrap();
        assert_eq!(s.format(), WeightFormat::F32);
        assert_eq!(s.row(1).unwrap(), q.row(1));
        assert_eq!(s.row(4).unwrap(), vals(96, 0.01)[64..96].to_vec());
    }
}
