//! The model's fused operations: SwiGLU, causal softmax, RMSNorm, rotary embeddings, the split
//! into attention heads (and back) and the cross-entropy of the next token, each with its
//! backward pass.
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
mod flex;
mod impls;
pub mod reference;

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

    /// Softmax over the last dimension of attention scores `[..., len, len]`, where query `i`
    /// sees keys `0..=i` only (the others get probability 0).
    fn causal_softmax(scores: FloatTensor<Self>) -> FloatTensor<Self> {
        reference::causal_softmax::<Self>(scores)
    }

    /// The gradient of [`LmBackend::causal_softmax`] with respect to the scores, from its output
    /// `probs` and the gradient of that output.
    fn causal_softmax_backward(probs: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        reference::causal_softmax_backward::<Self>(probs, grad)
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

    /// The gradient of [`LmBackend::cross_entropy`] with respect to the logits, given the
    /// gradient of each row's loss: `(softmax(row) - onehot(target)) * grad[row]`.
    fn cross_entropy_backward(logits: FloatTensor<Self>, targets: IntTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        reference::cross_entropy_backward::<Self>(logits, targets, grad)
    }

    /// Softmax of inference attention scores `[batch, heads, len, start + len]` for queries at
    /// positions `start..start + len` over a key-value cache, where batch row `r` is left-padded
    /// by `pads[r]` tokens (`pads` empty: no padding). A query sees the keys up to its own
    /// position, minus its row's padding; a padding query sees the padding before it (its output
    /// is never used, but a fully masked row would be NaN). Not differentiated by the fused
    /// backends (training uses [`LmBackend::causal_softmax`]).
    fn padded_causal_softmax(scores: FloatTensor<Self>, start: usize, pads: &[usize]) -> FloatTensor<Self> {
        reference::padded_causal_softmax::<Self>(scores, start, pads)
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

/// [`LmBackend::causal_softmax`] on tensors.
pub fn causal_softmax<B: LmBackend, const D: usize>(scores: Tensor<B, D>) -> Tensor<B, D> {
    tensor(B::causal_softmax(primitive(scores)))
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

/// [`LmBackend::padded_causal_softmax`] on tensors.
pub fn padded_causal_softmax<B: LmBackend>(scores: Tensor<B, 4>, start: usize, pads: &[usize]) -> Tensor<B, 4> {
    tensor(B::padded_causal_softmax(primitive(scores), start, pads))
}

/// The keys query `i` of a batch row sees in [`LmBackend::padded_causal_softmax`]: `lo..=hi`.
pub fn visible_keys(start: usize, i: usize, pad: usize) -> (usize, usize) {
    let at = start + i;
    (if at >= pad { pad } else { 0 }, at)
}

/// [`LmBackend::rms_norm`] on tensors.
pub fn rms_norm<B: LmBackend, const D: usize>(x: Tensor<B, D>, gamma: Tensor<B, 1>, eps: f64) -> Tensor<B, D> {
    tensor(B::rms_norm(primitive(x), primitive(gamma), eps))
}
