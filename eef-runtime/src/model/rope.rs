//! Rotary position embeddings in Hugging Face's layout (`rotate_half`: the first and second
//! halves of each head are the rotated pairs), so Hugging Face checkpoints load without
//! permuting their query/key weights.

use burn::prelude::*;

/// `(cos, sin)` of shape `[len, head_dim]` for positions `start..start + len`.
pub fn rope_tables<B: Backend>(start: usize, len: usize, head_dim: usize, theta: f64, device: &B::Device) -> (Tensor<B, 2>, Tensor<B, 2>) {
    let half = head_dim / 2;
    let mut cos = Vec::with_capacity(len * head_dim);
    let mut sin = Vec::with_capacity(len * head_dim);
    for p in start..start + len {
        let row: Vec<f64> = (0..half).map(|i| p as f64 * theta.powf(-(2.0 * i as f64) / head_dim as f64)).collect();
        for k in 0..head_dim {
            let f = row[k % half];
            cos.push(f.cos() as f32);
            sin.push(f.sin() as f32);
        }
    }
    (
        Tensor::from_data(TensorData::new(cos, [len, head_dim]), device),
        Tensor::from_data(TensorData::new(sin, [len, head_dim]), device),
    )
}

/// Applies the rotation to `x` of shape `[batch, heads, len, head_dim]`.
pub fn apply_rope<B: Backend>(x: Tensor<B, 4>, cos: Tensor<B, 2>, sin: Tensor<B, 2>) -> Tensor<B, 4> {
    let [b, h, t, d] = x.dims();
    let half = d / 2;
    let x1 = x.clone().narrow(3, 0, half);
    let x2 = x.clone().narrow(3, half, half);
    let rotated = Tensor::cat(vec![x2.neg(), x1], 3);
    let cos = cos.reshape([1, 1, t, d]).expand([b, h, t, d]);
    let sin = sin.reshape([1, 1, t, d]).expand([b, h, t, d]);
    x * cos + rotated * sin
}
