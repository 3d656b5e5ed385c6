//! The fused operations composed of burn tensor operations: the default of every backend, and
//! what the fused kernels are tested against.

use burn::prelude::*;
use burn::tensor::ops::{FloatTensor, IntTensor};
use burn::tensor::{activation, DType, TensorPrimitive};

/// `p` as a `[rows, last]` matrix, with its original shape.
fn rows<B: Backend>(p: FloatTensor<B>) -> (Tensor<B, 2>, Vec<usize>) {
    let shape = burn::tensor::TensorMetadata::shape(&p).to_vec();
    let last = *shape.last().unwrap_or(&1);
    let n = shape.iter().product::<usize>() / last.max(1);
    let m = Tensor::<B, 2>::from_primitive(TensorPrimitive::Float(B::float_reshape(p, Shape::new([n, last]))));
    (m, shape)
}

/// A `[rows, last]` matrix back in `shape`.
fn unrows<B: Backend>(m: Tensor<B, 2>, shape: &[usize]) -> FloatTensor<B> {
    B::float_reshape(m.into_primitive().tensor(), Shape::from(shape.to_vec()))
}

/// `silu(gate) * up`.
pub fn swiglu<B: Backend>(gate: FloatTensor<B>, up: FloatTensor<B>) -> FloatTensor<B> {
    let (g, shape) = rows::<B>(gate);
    let (u, _) = rows::<B>(up);
    unrows(activation::silu(g) * u, &shape)
}

/// The gradients of [`swiglu`]: `grad * up * silu'(gate)` and `grad * silu(gate)`, where
/// `silu'(g) = σ(g) (1 + g (1 - σ(g)))`.
pub fn swiglu_backward<B: Backend>(gate: FloatTensor<B>, up: FloatTensor<B>, grad: FloatTensor<B>) -> [FloatTensor<B>; 2] {
    let (g, shape) = rows::<B>(gate);
    let (u, _) = rows::<B>(up);
    let (dy, _) = rows::<B>(grad);
    let s = activation::sigmoid(g.clone());
    let du = dy.clone() * g.clone() * s.clone();
    let dsilu = s.clone() * (g * (s.neg() + 1.0) + 1.0);
    let dg = dy * u * dsilu;
    [unrows(dg, &shape), unrows(du, &shape)]
}

/// `[batch, len, heads * head_dim]` to `[batch, heads, len, head_dim]`.
pub fn split_heads<B: Backend>(x: FloatTensor<B>, heads: usize) -> FloatTensor<B> {
    let x = Tensor::<B, 3>::from_primitive(TensorPrimitive::Float(x));
    let [b, t, w] = x.dims();
    x.reshape([b, t, heads, w / heads]).swap_dims(1, 2).into_primitive().tensor()
}

/// `[batch, heads, len, head_dim]` to `[batch, len, heads * head_dim]`.
pub fn merge_heads<B: Backend>(x: FloatTensor<B>) -> FloatTensor<B> {
    let x = Tensor::<B, 4>::from_primitive(TensorPrimitive::Float(x));
    let [b, h, t, d] = x.dims();
    x.swap_dims(1, 2).reshape([b, t, h * d]).into_primitive().tensor()
}

/// `-log_softmax(logits)[target]` per row of `[rows, vocab]` logits, computed in f32 (as
/// Hugging Face upcasts logits for the loss) and returned in the logits' type.
pub fn cross_entropy<B: Backend>(logits: FloatTensor<B>, targets: IntTensor<B>) -> FloatTensor<B> {
    let logits = Tensor::<B, 2>::from_primitive(TensorPrimitive::Float(logits));
    let targets = Tensor::<B, 1, Int>::from_primitive(targets);
    let (n, dtype) = (logits.dims()[0], logits.dtype());
    let nll = activation::log_softmax(logits.cast(DType::F32), 1).gather(1, targets.reshape([n, 1])).reshape([n]).neg();
    nll.cast(dtype).into_primitive().tensor()
}

/// [`cross_entropy`] and its gradient for an upstream gradient of 1 per row:
/// `softmax(row) - onehot(target)`, in the logits' type.
pub fn cross_entropy_with_grad<B: Backend>(logits: FloatTensor<B>, targets: IntTensor<B>) -> [FloatTensor<B>; 2] {
    let nll = cross_entropy::<B>(logits.clone(), targets.clone());
    let logits = Tensor::<B, 2>::from_primitive(TensorPrimitive::Float(logits));
    let targets = Tensor::<B, 1, Int>::from_primitive(targets);
    let ([_, v], dtype) = (logits.dims(), logits.dtype());
    let onehot = targets.one_hot::<2>(v).float().cast(DType::F32);
    let d = activation::softmax(logits.cast(DType::F32), 1) - onehot;
    [nll, d.cast(dtype).into_primitive().tensor()]
}

/// Row `r` of `x` times `scale[r]`.
pub fn scale_rows<B: Backend>(x: FloatTensor<B>, scale: FloatTensor<B>) -> FloatTensor<B> {
    let x = Tensor::<B, 2>::from_primitive(TensorPrimitive::Float(x));
    let scale = Tensor::<B, 1>::from_primitive(TensorPrimitive::Float(scale));
    let n = x.dims()[0];
    (x * scale.cast(DType::F32).reshape([n, 1])).into_primitive().tensor()
}

/// `x / sqrt(mean(x²) + eps) * gamma`, the statistics in f32 (as burn's `RmsNorm`).
pub fn rms_norm<B: Backend>(x: FloatTensor<B>, gamma: FloatTensor<B>, eps: f64) -> FloatTensor<B> {
    let (x, shape) = rows::<B>(x);
    let gamma = Tensor::<B, 1>::from_primitive(TensorPrimitive::Float(gamma));
    let dtype = x.dtype();
    let inv = (x.clone().cast(DType::F32).square().mean_dim(1) + eps).sqrt().recip().cast(dtype);
    unrows(x * inv * gamma.unsqueeze::<2>(), &shape)
}

/// The gradients of [`rms_norm`]: with `r = 1 / sqrt(mean(x²) + eps)` and `h = grad * gamma`,
/// `dx = r h - x r³ mean(h x)` and `dgamma = Σ_rows grad x r`, computed in f32 and returned in
/// the input's type.
pub fn rms_norm_backward<B: Backend>(x: FloatTensor<B>, gamma: FloatTensor<B>, eps: f64, grad: FloatTensor<B>) -> [FloatTensor<B>; 2] {
    let (x, shape) = rows::<B>(x);
    let (dy, _) = rows::<B>(grad);
    let gamma = Tensor::<B, 1>::from_primitive(TensorPrimitive::Float(gamma));
    let (dtype, gamma_dtype) = (x.dtype(), gamma.dtype());
    let (x, dy, gamma) = (x.cast(DType::F32), dy.cast(DType::F32), gamma.cast(DType::F32));
    let [_, d] = x.dims();
    let r = (x.clone().square().mean_dim(1) + eps).sqrt().recip();
    let h = dy.clone() * gamma.unsqueeze::<2>();
    let dot = (h.clone() * x.clone()).sum_dim(1) / d as f64;
    let dx = h * r.clone() - x.clone() * (r.clone() * r.clone() * r.clone() * dot);
    let dgamma = (dy * x * r).sum_dim(0).reshape([d]);
    [unrows(dx.cast(dtype), &shape), dgamma.cast(gamma_dtype).into_primitive().tensor()]
}

/// Rotary embeddings of `x` (`[batch, len, heads * head_dim]`) with `cos`/`sin` tables
/// (`[rows, len, head_dim]`, rows 1 or `batch`): `x cos + rotate_half(x) sin` per head.
///
/// Laid out for the CPU backends: `rotate_half(x)` is `x @ R` with a signed permutation `R`
/// (one matrix product instead of slicing, negating and concatenating), and the tables are tiled
/// over heads and broadcast over rows of a `[batch, len * heads * head_dim]` view, which burn's
/// CPU backends do several times faster than broadcasting over leading dimensions.
pub fn rope<B: Backend>(x: FloatTensor<B>, heads: usize, cos: FloatTensor<B>, sin: FloatTensor<B>) -> FloatTensor<B> {
    rotate::<B>(x, heads, cos, sin, false)
}

/// The gradient of [`rope`] with respect to `x`: `grad cos + rotate_half⁻¹(grad sin)`, the
/// rotation by the opposite angle.
pub fn rope_backward<B: Backend>(grad: FloatTensor<B>, heads: usize, cos: FloatTensor<B>, sin: FloatTensor<B>) -> FloatTensor<B> {
    rotate::<B>(grad, heads, cos, sin, true)
}

fn rotate<B: Backend>(x: FloatTensor<B>, heads: usize, cos: FloatTensor<B>, sin: FloatTensor<B>, inverse: bool) -> FloatTensor<B> {
    let x = Tensor::<B, 3>::from_primitive(TensorPrimitive::Float(x));
    let (cos, sin) = (Tensor::<B, 3>::from_primitive(TensorPrimitive::Float(cos)), Tensor::<B, 3>::from_primitive(TensorPrimitive::Float(sin)));
    let [b, t, w] = x.dims();
    let d = w / heads;
    let tile = |table: Tensor<B, 3>| {
        let rows = table.dims()[0];
        table.reshape([rows, t, 1, d]).repeat_dim(2, heads).reshape([rows, t * w])
    };
    let r = rotate_half_matrix::<B>(d, &x.device());
    let flat = x.clone().reshape([b, t * w]);
    let out = if inverse {
        // d/dx of (x c + (x R) s) applied to g: g c + (g s) Rᵀ.
        let gs = (flat.clone() * tile(sin)).reshape([b * t * heads, d]).matmul(r.transpose()).reshape([b, t * w]);
        flat * tile(cos) + gs
    } else {
        let rotated = x.reshape([b * t * heads, d]).matmul(r).reshape([b, t * w]);
        flat * tile(cos) + rotated * tile(sin)
    };
    out.reshape([b, t, w]).into_primitive().tensor()
}

/// `R` with `x @ R = cat(-x[half..], x[..half])`.
fn rotate_half_matrix<B: Backend>(d: usize, device: &B::Device) -> Tensor<B, 2> {
    let half = d / 2;
    let mut r = vec![0.0f32; d * d];
    for j in 0..half {
        // Output column j takes -x[j + half]; output column j + half takes x[j].
        r[(j + half) * d + j] = -1.0;
        r[j * d + j + half] = 1.0;
    }
    Tensor::from_data(TensorData::new(r, [d, d]), device)
}

/// Keys and values `[batch, kv_heads, keys, head_dim]` repeated for the `heads` query heads
/// (grouped-query attention: query head `g` uses key-value head `g / (heads / kv_heads)`).
fn expand_heads<B: Backend>(x: Tensor<B, 4>, heads: usize) -> Tensor<B, 4> {
    let [b, kv, s, d] = x.dims();
    if kv == heads {
        return x;
    }
    x.reshape([b, kv, 1, s, d]).repeat_dim(2, heads / kv).reshape([b, heads, s, d])
}

/// The gradient of [`expand_heads`]: each key-value head's copies summed.
fn reduce_heads<B: Backend>(x: Tensor<B, 4>, kv: usize) -> Tensor<B, 4> {
    let [b, h, s, d] = x.dims();
    if kv == h {
        return x;
    }
    x.reshape([b, kv, h / kv, s, d]).sum_dim(2).reshape([b, kv, s, d])
}

/// The hidden keys of `[batch, heads, len, keys]` scores under `keys`, broadcast over heads.
fn hidden_keys<B: Backend>(keys: &super::KeyRanges, dims: [usize; 4], device: &B::Device) -> Tensor<B, 4, Bool> {
    let [b, h, t, s] = dims;
    let rows = keys.rows();
    let hidden: Vec<bool> = (0..rows)
        .flat_map(|r| {
            (0..t).flat_map(move |i| {
                let (lo, hi) = keys.window(r, i);
                (0..s).map(move |j| j < lo || j > hi)
            })
        })
        .collect();
    Tensor::<B, 3, Bool>::from_data(TensorData::new(hidden, [rows, t, s]), device).reshape([rows, 1, t, s]).expand([b, h, t, s])
}

/// Scaled scores `q kᵀ` with the hidden keys at -∞.
fn masked_scores<B: Backend>(q: &Tensor<B, 4>, k: &Tensor<B, 4>, keys: &super::KeyRanges) -> Tensor<B, 4> {
    let scores = q.clone().matmul(k.clone().swap_dims(2, 3));
    let mask = hidden_keys::<B>(keys, scores.dims(), &scores.device());
    scores.mask_fill(mask, f32::NEG_INFINITY)
}

/// Attention of pre-scaled queries `q` `[batch, heads, len, head_dim]` over `k`, `v` `[batch,
/// kv_heads, keys, head_dim]` with the windows `keys` describes: the output `[batch, heads, len,
/// head_dim]` and each query's log-sum-exp of its visible scores `[batch, heads, len]`.
pub fn causal_attention<B: Backend>(q: FloatTensor<B>, k: FloatTensor<B>, v: FloatTensor<B>, keys: &super::KeyRanges) -> [FloatTensor<B>; 2] {
    let q = Tensor::<B, 4>::from_primitive(TensorPrimitive::Float(q));
    let heads = q.dims()[1];
    let k = expand_heads(Tensor::<B, 4>::from_primitive(TensorPrimitive::Float(k)), heads);
    let v = expand_heads(Tensor::<B, 4>::from_primitive(TensorPrimitive::Float(v)), heads);
    let scores = masked_scores(&q, &k, keys);
    let [b, h, t, _] = scores.dims();
    let max = scores.clone().max_dim(3);
    let lse = (scores.clone() - max.clone()).exp().sum_dim(3).log() + max;
    let probs = (scores - lse.clone()).exp();
    [probs.matmul(v).into_primitive().tensor(), lse.reshape([b, h, t]).into_primitive().tensor()]
}

/// The gradients of [`causal_attention`] with respect to `q`, `k` and `v`, from its output, its
/// log-sum-exp and the output's gradient (the probabilities are recomputed).
#[allow(clippy::too_many_arguments)]
pub fn causal_attention_backward<B: Backend>(q: FloatTensor<B>, k: FloatTensor<B>, v: FloatTensor<B>, out: FloatTensor<B>, lse: FloatTensor<B>, grad: FloatTensor<B>, keys: &super::KeyRanges) -> [FloatTensor<B>; 3] {
    let q = Tensor::<B, 4>::from_primitive(TensorPrimitive::Float(q));
    let [b, h, t, _] = q.dims();
    let k = Tensor::<B, 4>::from_primitive(TensorPrimitive::Float(k));
    let kv = k.dims()[1];
    let k = expand_heads(k, h);
    let v = expand_heads(Tensor::<B, 4>::from_primitive(TensorPrimitive::Float(v)), h);
    let out = Tensor::<B, 4>::from_primitive(TensorPrimitive::Float(out));
    let lse = Tensor::<B, 3>::from_primitive(TensorPrimitive::Float(lse)).reshape([b, h, t, 1]);
    let dout = Tensor::<B, 4>::from_primitive(TensorPrimitive::Float(grad));
    let probs = (masked_scores(&q, &k, keys) - lse).exp();
    let dv = probs.clone().swap_dims(2, 3).matmul(dout.clone());
    let dp = dout.clone().matmul(v.swap_dims(2, 3));
    let row = (dout * out).sum_dim(3);
    let ds = probs * (dp - row);
    let dq = ds.clone().matmul(k);
    let dk = ds.swap_dims(2, 3).matmul(q);
    [dq.into_primitive().tensor(), reduce_heads(dk, kv).into_primitive().tensor(), reduce_heads(dv, kv).into_primitive().tensor()]
}
