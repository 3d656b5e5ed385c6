//! Rotary position embeddings in Hugging Face's layout (`rotate_half`: the first and second
//! halves of each head are the rotated pairs), so Hugging Face checkpoints load without
//! permuting their query/key weights.

use burn::prelude::*;

use super::kernels::{self, LmBackend};

/// `(cos, sin)` of shape `[rows, len, head_dim]`: row `r` holds positions
/// `starts[r]..starts[r] + len` (negative positions, which only left padding has, get 0).
pub fn rope_tables<B: Backend>(starts: &[i64], len: usize, head_dim: usize, theta: f64, device: &B::Device) -> (Tensor<B, 3>, Tensor<B, 3>) {
    let half = head_dim / 2;
    let freq: Vec<f64> = (0..half).map(|i| theta.powf(-(2.0 * i as f64) / head_dim as f64)).collect();
    let mut cos = Vec::with_capacity(starts.len() * len * head_dim);
    let mut sin = Vec::with_capacity(starts.len() * len * head_dim);
    for &start in starts {
        for p in start..start + len as i64 {
            let p = p.max(0) as f64;
            for k in 0..head_dim {
                let f = p * freq[k % half];
                cos.push(f.cos() as f32);
                sin.push(f.sin() as f32);
            }
        }
    }
    let shape = [starts.len(), len, head_dim];
    (Tensor::from_data(TensorData::new(cos, shape), device), Tensor::from_data(TensorData::new(sin, shape), device))
}

/// Applies the rotation to `x` of shape `[batch, len, heads * head_dim]` (the projection's
/// output, before it is split into heads); `cos` and `sin` are [`rope_tables`]' tables with one
/// row (shared by the batch) or one per sequence. One fused operation
/// ([`LmBackend::rope`](super::kernels::LmBackend::rope)); the tables carry no gradient.
pub fn apply_rope<B: LmBackend>(x: Tensor<B, 3>, heads: usize, cos: Tensor<B, 3>, sin: Tensor<B, 3>) -> Tensor<B, 3> {
    kernels::rope(x, heads, cos, sin)
}
