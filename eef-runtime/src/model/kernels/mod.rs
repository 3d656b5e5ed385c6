//! The model's fused operations: SwiGLU, causal attention (over a cache, padding or packed
//! sequences), RMSNorm, rotary embeddings, the split into attention heads (and back) and the
//! cross-entropy of the next token, each with its backward pass.
//!
//! burn's autodiff differentiates these as chains of small element-wise operations, each a full
//! pass over memory with its own output buffer and its own node in the graph; on the CPU that
//! cost, not the matrix products, dominated a training step. [`LmBackend`] gives each operation
//! one forward and one backward kernel. Every backend gets the [`reference`](mod@reference) composition of burn
//! operations by default; the flex CPU backend overrides it with single-pass kernels, and
//! [`Autodiff`](burn::backend::Autodiff) records each operation as one node whose backward pass
//! calls the inner backend's backward kernel.
//!
//! The model is generic over [`LmBackend`]; it is implemented for every backend
//! [`super::backend`] can select. Another burn backend joins with an empty `impl` (the reference
//! compositions) or its own kernels.

mod autodiff;
#[cfg(feature = "flex")]
pub mod cpu_attention;
#[cfg(feature = "flex")]
mod flex;
mod impls;
mod keys;
#[cfg(feature = "flex")]
mod math;
pub mod reference;

pub use keys::KeyRanges;

use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::ops::{FloatTensor, IntTensor};
use burn::tensor::TensorPrimitive;

/// A burn backend with the model's fused operations. Tensors are the backend's primitives; the
/// last dimension is the feature (or key) dimension, and everything before it counts as rows.
pub trait LmBackend: Backend {
    /// `silu(gate) * up`, element-wise.
    fn swiglu(gate: FloatTensor<Self>, up: FloatTensor<Self>) -> FloatTensor<Self> {
        reference::swiglu::<Self>(gate, up)
    }

    /// The gradients of [`LmBackend::swiglu`] with respect to `gate` and `up`, given the
    /// gradient of its output.
    fn swiglu_backward(gate: FloatTensor<Self>, up: FloatTensor<Self>, grad: FloatTensor<Self>) -> [FloatTensor<Self>; 2] {
        reference::swiglu_backward::<Self>(gate, up, grad)
    }

    /// Rotary embeddings (Hugging Face's `rotate_half` layout) of `x` (`[batch, len, heads *
    /// head_dim]`) with `cos`/`sin` tables (`[rows, len, head_dim]`, `rows` 1 or `batch`).
    fn rope(x: FloatTensor<Self>, heads: usize, cos: FloatTensor<Self>, sin: FloatTensor<Self>) -> FloatTensor<Self> {
        reference::rope::<Self>(x, heads, cos, sin)
    }

    /// The gradient of [`LmBackend::rope`] with respect to `x` (the tables are constants).
    fn rope_backward(grad: FloatTensor<Self>, heads: usize, cos: FloatTensor<Self>, sin: FloatTensor<Self>) -> FloatTensor<Self> {
        reference::rope_backward::<Self>(grad, heads, cos, sin)
    }

    /// `[batch, len, heads * head_dim]` to `[batch, heads, len, head_dim]`: a projection's output
    /// split into attention heads.
    fn split_heads(x: FloatTensor<Self>, heads: usize) -> FloatTensor<Self> {
        reference::split_heads::<Self>(x, heads)
    }

    /// `[batch, heads, len, head_dim]` to `[batch, len, heads * head_dim]`: the inverse of
    /// [`LmBackend::split_heads`].
    fn merge_heads(x: FloatTensor<Self>) -> FloatTensor<Self> {
        reference::merge_heads::<Self>(x)
    }

    /// Per-row negative log-likelihood of `targets` (`[rows]`, token ids) under `logits`
    /// (`[rows, vocab]`): `logsumexp(row) - row[target]`, shape `[rows]`.
    fn cross_entropy(logits: FloatTensor<Self>, targets: IntTensor<Self>) -> FloatTensor<Self> {
        reference::cross_entropy::<Self>(logits, targets)
    }

    /// [`LmBackend::cross_entropy`] and, computed in the same pass, its gradient with respect to
    /// the logits for an upstream gradient of 1 per row: `softmax(row) - onehot(target)`
    /// (`[rows, vocab]`; what training keeps instead of the logits).
    fn cross_entropy_with_grad(logits: FloatTensor<Self>, targets: IntTensor<Self>) -> [FloatTensor<Self>; 2] {
        reference::cross_entropy_with_grad::<Self>(logits, targets)
    }

    /// Row `r` of `x` (`[rows, cols]`) times `scale[r]`: the cross-entropy's gradient for the
    /// upstream gradient `scale`.
    fn scale_rows(x: FloatTensor<Self>, scale: FloatTensor<Self>) -> FloatTensor<Self> {
        reference::scale_rows::<Self>(x, scale)
    }

    /// Attention of pre-scaled queries `q` (`[batch, heads, len, head_dim]`, already multiplied by
    /// `1 / sqrt(head_dim)`) over keys and values `k`, `v` (`[batch, kv_heads, keys, head_dim]`,
    /// `keys = keys.start + len`; grouped-query: query head `g` reads key-value head
    /// `g / (heads / kv_heads)`), each query seeing the keys [`KeyRanges::window`] gives it.
    /// Returns the output `[batch, heads, len, head_dim]` and each query's log-sum-exp over its
    /// visible scores `[batch, heads, len]` (what the backward pass recomputes the probabilities
    /// from).
    fn causal_attention(q: FloatTensor<Self>, k: FloatTensor<Self>, v: FloatTensor<Self>, keys: &KeyRanges) -> [FloatTensor<Self>; 2] {
        reference::causal_attention::<Self>(q, k, v, keys)
    }

    /// The gradients of [`LmBackend::causal_attention`] with respect to `q`, `k` and `v`, given its
    /// inputs, output, log-sum-exp and the gradient of its output.
    #[allow(clippy::too_many_arguments)]
    fn causal_attention_backward(q: FloatTensor<Self>, k: FloatTensor<Self>, v: FloatTensor<Self>, out: FloatTensor<Self>, lse: FloatTensor<Self>, grad: FloatTensor<Self>, keys: &KeyRanges) -> [FloatTensor<Self>; 3] {
        reference::causal_attention_backward::<Self>(q, k, v, out, lse, grad, keys)
    }

    /// RMSNorm over the last dimension: `x / sqrt(mean(x²) + eps) * gamma` (statistics in f32).
    fn rms_norm(x: FloatTensor<Self>, gamma: FloatTensor<Self>, eps: f64) -> FloatTensor<Self> {
        reference::rms_norm::<Self>(x, gamma, eps)
    }

    /// The gradients of [`LmBackend::rms_norm`] with respect to `x` and `gamma`.
    fn rms_norm_backward(x: FloatTensor<Self>, gamma: FloatTensor<Self>, eps: f64, grad: FloatTensor<Self>) -> [FloatTensor<Self>; 2] {
        reference::rms_norm_backward::<Self>(x, gamma, eps, grad)
    }
}

/// A training backend whose inner (inference) backend has the fused operations too, so a model
/// trained on it can decode after `valid()`.
pub trait LmAutodiffBackend: AutodiffBackend<InnerBackend: LmBackend> + LmBackend {}

impl<B> LmAutodiffBackend for B
where
    B: AutodiffBackend + LmBackend,
    B::InnerBackend: LmBackend,
{
}

fn primitive<B: Backend, const D: usize>(t: Tensor<B, D>) -> FloatTensor<B> {
    t.into_primitive().tensor()
}

fn tensor<B: Backend, const D: usize>(p: FloatTensor<B>) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(p))
}

/// [`LmBackend::swiglu`] on tensors.
pub fn swiglu<B: LmBackend, const D: usize>(gate: Tensor<B, D>, up: Tensor<B, D>) -> Tensor<B, D> {
    tensor(B::swiglu(primitive(gate), primitive(up)))
}

/// [`LmBackend::causal_attention`] on tensors: the output alone.
pub fn causal_attention<B: LmBackend>(q: Tensor<B, 4>, k: Tensor<B, 4>, v: Tensor<B, 4>, keys: &KeyRanges) -> Tensor<B, 4> {
    let [out, _] = B::causal_attention(primitive(q), primitive(k), primitive(v), keys);
    tensor(out)
}

/// [`LmBackend::rope`] on tensors.
pub fn rope<B: LmBackend>(x: Tensor<B, 3>, heads: usize, cos: Tensor<B, 3>, sin: Tensor<B, 3>) -> Tensor<B, 3> {
    tensor(B::rope(primitive(x), heads, primitive(cos), primitive(sin)))
}

/// [`LmBackend::split_heads`] on tensors.
pub fn split_heads<B: LmBackend>(x: Tensor<B, 3>, heads: usize) -> Tensor<B, 4> {
    tensor(B::split_heads(primitive(x), heads))
}

/// [`LmBackend::merge_heads`] on tensors.
pub fn merge_heads<B: LmBackend>(x: Tensor<B, 4>) -> Tensor<B, 3> {
    tensor(B::merge_heads(primitive(x)))
}

/// [`LmBackend::cross_entropy`] on tensors.
pub fn cross_entropy<B: LmBackend>(logits: Tensor<B, 2>, targets: Tensor<B, 1, Int>) -> Tensor<B, 1> {
    tensor(B::cross_entropy(primitive(logits), targets.into_primitive()))
}

/// [`LmBackend::rms_norm`] on tensors.
pub fn rms_norm<B: LmBackend, const D: usize>(x: Tensor<B, D>, gamma: Tensor<B, 1>, eps: f64) -> Tensor<B, D> {
    tensor(B::rms_norm(primitive(x), primitive(gamma), eps))
}
