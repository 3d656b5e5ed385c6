//! Rotary position embeddings in Hugging Face's layout (`rotate_half`: the first and second
//! halves of each head are the rotated pairs), so Hugging Face checkpoints load without
//! permuting their query/key weights.
//!
//! The frequencies are computed as `transformers` computes them — in `f32`, including
//! Llama-3.1's `llama3` frequency scaling — so that logits agree with it at long positions too.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::kernels::{self, LmBackend};

/// Rotary frequency scaling, Hugging Face's `rope_scaling` (`rope_parameters` in transformers
/// 5). Only the types below are implemented; any other is refused when the config is read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rope_type", rename_all = "lowercase", deny_unknown_fields)]
pub enum RopeScaling {
    /// Llama-3.1/3.2: low frequencies divided by `factor`, high ones kept, a smooth ramp between.
    Llama3 {
        /// Divisor of the low frequencies (8 for Llama-3.1, 32 for Llama-3.2).
        factor: f64,
        /// Wavelengths above `original_max_position_embeddings / low_freq_factor` are scaled.
        low_freq_factor: f64,
        /// Wavelengths below `original_max_position_embeddings / high_freq_factor` are kept.
        high_freq_factor: f64,
        /// The context length the model was pretrained with (8192 for Llama-3.1).
        original_max_position_embeddings: usize,
    },
    /// Position interpolation: every frequency divided by `factor`.
    Linear {
        /// The divisor.
        factor: f64,
    },
}

impl RopeScaling {
    /// Checks the parameters are usable.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            RopeScaling::Llama3 { factor, low_freq_factor, high_freq_factor, original_max_position_embeddings } => {
                if *factor <= 0.0 || *low_freq_factor <= 0.0 || high_freq_factor <= low_freq_factor || *original_max_position_embeddings == 0 {
                    return Err(format!("rope_scaling llama3: need factor > 0, 0 < low_freq_factor < high_freq_factor and original_max_position_embeddings > 0 (got {self:?})"));
                }
                Ok(())
            }
            RopeScaling::Linear { factor } if *factor <= 0.0 => Err(format!("rope_scaling linear: factor must be positive (got {factor})")),
            RopeScaling::Linear { .. } => Ok(()),
        }
    }
}

/// The rotation frequencies of one head: `head_dim / 2` values, `inv_freq` in `transformers`.
#[derive(Clone, Debug, PartialEq)]
pub struct Rope {
    /// Frequency of each rotated pair.
    pub inv_freq: Vec<f32>,
}

impl Rope {
    /// Frequencies for `head_dim` with base `theta` and optional scaling, in `f32` as
    /// `transformers` computes them (`_compute_default_rope_parameters`,
    /// `_compute_llama3_parameters`, `_compute_linear_scaling_rope_parameters`).
    pub fn new(head_dim: usize, theta: f64, scaling: Option<&RopeScaling>) -> Self {
        let base = theta as f32;
        let dim = head_dim as f32;
        let mut inv_freq: Vec<f32> = (0..head_dim / 2).map(|i| 1.0 / base.powf((2 * i) as f32 / dim)).collect();
        match scaling {
            None => {}
            Some(RopeScaling::Linear { factor }) => {
                let f = *factor as f32;
                inv_freq.iter_mut().for_each(|x| *x /= f);
            }
            Some(RopeScaling::Llama3 { factor, low_freq_factor, high_freq_factor, original_max_position_embeddings }) => {
                let (factor, low, high) = (*factor as f32, *low_freq_factor as f32, *high_freq_factor as f32);
                let old = *original_max_position_embeddings as f32;
                let (low_wavelen, high_wavelen) = (old / low, old / high);
                for x in inv_freq.iter_mut() {
                    let wavelen = 2.0 * std::f32::consts::PI / *x;
                    let scaled = if wavelen > low_wavelen { *x / factor } else { *x };
                    let medium = wavelen >= high_wavelen && wavelen <= low_wavelen;
                    *x = if medium {
                        let smooth = (old / wavelen - low) / (high - low);
                        (1.0 - smooth) * scaled / factor + smooth * scaled
                    } else {
                        scaled
                    };
                }
            }
        }
        Rope { inv_freq }
    }

    /// Width of one head.
    pub fn head_dim(&self) -> usize {
        self.inv_freq.len() * 2
    }

    /// `(cos, sin)` of shape `[rows, len, head_dim]`: row `r` holds positions
    /// `starts[r]..starts[r] + len` (negative positions, which only left padding has, get 0).
    pub fn tables<B: Backend>(&self, starts: &[i64], len: usize, device: &B::Device) -> (Tensor<B, 3>, Tensor<B, 3>) {
        let positions: Vec<i64> = starts.iter().flat_map(|&s| s..s + len as i64).collect();
        self.tables_at(&positions, starts.len(), len, device)
    }

    /// `(cos, sin)` of shape `[rows, len, head_dim]` for the given positions (`rows * len`, row
    /// by row; negative ones get 0).
    pub fn tables_at<B: Backend>(&self, positions: &[i64], rows: usize, len: usize, device: &B::Device) -> (Tensor<B, 3>, Tensor<B, 3>) {
        let head_dim = self.head_dim();
        let half = self.inv_freq.len();
        let mut cos = Vec::with_capacity(positions.len() * head_dim);
        let mut sin = Vec::with_capacity(positions.len() * head_dim);
        for &p in positions {
            let p = p.max(0) as f32;
            for k in 0..head_dim {
                let f = p * self.inv_freq[k % half];
                cos.push(f.cos());
                sin.push(f.sin());
            }
        }
        let shape = [rows, len, head_dim];
        (Tensor::from_data(TensorData::new(cos, shape), device), Tensor::from_data(TensorData::new(sin, shape), device))
    }
}

/// `(cos, sin)` tables for unscaled rotary embeddings with base `theta` (see [`Rope::tables`]).
pub fn rope_tables<B: Backend>(starts: &[i64], len: usize, head_dim: usize, theta: f64, device: &B::Device) -> (Tensor<B, 3>, Tensor<B, 3>) {
    Rope::new(head_dim, theta, None).tables(starts, len, device)
}

/// Applies the rotation to `x` of shape `[batch, len, heads * head_dim]` (the projection's
/// output, before it is split into heads); `cos` and `sin` are [`Rope::tables`]' tables with one
/// row (shared by the batch) or one per sequence. One fused operation
/// ([`LmBackend::rope`]); the tables carry no gradient.
pub fn apply_rope<B: LmBackend>(x: Tensor<B, 3>, heads: usize, cos: Tensor<B, 3>, sin: Tensor<B, 3>) -> Tensor<B, 3> {
    kernels::rope(x, heads, cos, sin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama3_scaling_keeps_high_frequencies_and_divides_low_ones() {
        let s = RopeScaling::Llama3 { factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 8192 };
        let plain = Rope::new(128, 500_000.0, None);
        let scaled = Rope::new(128, 500_000.0, Some(&s));
        // The highest frequency (wavelength 2π) is untouched, the lowest divided by 8.
        assert_eq!(scaled.inv_freq[0], plain.inv_freq[0]);
        assert!((scaled.inv_freq[63] - plain.inv_freq[63] / 8.0).abs() <= plain.inv_freq[63] * 1e-6);
        // In between, the ramp is monotone and within the two bounds.
        for (a, b) in scaled.inv_freq.iter().zip(&plain.inv_freq) {
            assert!(*a <= *b && *a >= b / 8.0 * (1.0 - 1e-6));
        }
    }
}
