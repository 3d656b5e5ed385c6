//! The fused operations on burn's autodiff backend: one graph node each, whose backward pass is
//! the inner backend's backward kernel.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::Autodiff;
use burn::tensor::ops::{FloatTensor, IntTensor};
use burn::tensor::TensorMetadata;

use super::LmBackend;

/// Registers each gradient with its parent, where the parent wants one.
macro_rules! register {
    ($b:ty, $parents:expr, $outs:expr, $grads:expr) => {
        for (parent, grad) in $parents.into_iter().zip($outs) {
            if let Some(node) = parent {
                $grads.register::<$b>(node.id, grad);
            }
        }
    };
}

#[derive(Debug)]
struct SwiGlu;

impl<B: LmBackend> Backward<B, 2> for SwiGlu {
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let (gate, up) = ops.state;
        register!(B, ops.parents, B::swiglu_backward(gate, up, grad), grads);
    }
}

#[derive(Debug)]
struct Attention;

impl<B: LmBackend> Backward<B, 3> for Attention {
    type State = ([FloatTensor<B>; 5], super::KeyRanges);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let ([q, k, v, out, lse], keys) = ops.state;
        register!(B, ops.parents, B::causal_attention_backward(q, k, v, out, lse, grad, &keys), grads);
    }
}

#[derive(Debug)]
struct RmsNorm;

impl<B: LmBackend> Backward<B, 2> for RmsNorm {
    type State = (FloatTensor<B>, FloatTensor<B>, f64);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let (x, gamma, eps) = ops.state;
        register!(B, ops.parents, B::rms_norm_backward(x, gamma, eps, grad), grads);
    }
}

#[derive(Debug)]
struct SplitHeads;

impl<B: LmBackend> Backward<B, 1> for SplitHeads {
    type State = ();

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        register!(B, ops.parents, [B::merge_heads(grad)], grads);
    }
}

#[derive(Debug)]
struct MergeHeads;

impl<B: LmBackend> Backward<B, 1> for MergeHeads {
    type State = usize;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        register!(B, ops.parents, [B::split_heads(grad, ops.state)], grads);
    }
}

#[derive(Debug)]
struct Rope;

impl<B: LmBackend> Backward<B, 1> for Rope {
    type State = (usize, FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let (heads, cos, sin) = ops.state;
        register!(B, ops.parents, [B::rope_backward(grad, heads, cos, sin)], grads);
    }
}

#[derive(Debug)]
struct CrossEntropy;

impl<B: LmBackend> Backward<B, 1> for CrossEntropy {
    /// The gradient for an upstream gradient of 1 per row (computed with the loss).
    type State = FloatTensor<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        register!(B, ops.parents, [B::scale_rows(ops.state, grad)], grads);
    }
}

impl<B: LmBackend, C: CheckpointStrategy> LmBackend for Autodiff<B, C> {
    fn cross_entropy(logits: FloatTensor<Self>, targets: IntTensor<Self>) -> FloatTensor<Self> {
        // Tracked, the gradient is computed in the same pass as the loss and kept instead of the
        // logits.
        match CrossEntropy.prepare::<C>([logits.node.clone()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let [out, unit] = B::cross_entropy_with_grad(logits.primitive, targets);
                prep.finish(unit, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::cross_entropy(logits.primitive, targets)),
        }
    }

    fn rope(x: FloatTensor<Self>, heads: usize, cos: FloatTensor<Self>, sin: FloatTensor<Self>) -> FloatTensor<Self> {
        // The tables are constants: only `x` is a parent.
        let out = B::rope(x.primitive, heads, cos.primitive.clone(), sin.primitive.clone());
        match Rope.prepare::<C>([x.node.clone()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish((heads, cos.primitive, sin.primitive), out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }

    fn split_heads(x: FloatTensor<Self>, heads: usize) -> FloatTensor<Self> {
        let out = B::split_heads(x.primitive, heads);
        SplitHeads.prepare::<C>([x.node.clone()]).compute_bound().stateless(out)
    }

    fn merge_heads(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let heads = x.primitive.shape().as_slice()[1];
        let out = B::merge_heads(x.primitive);
        match MergeHeads.prepare::<C>([x.node.clone()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish(heads, out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }

    fn swiglu(gate: FloatTensor<Self>, up: FloatTensor<Self>) -> FloatTensor<Self> {
        let out = B::swiglu(gate.primitive.clone(), up.primitive.clone());
        match SwiGlu.prepare::<C>([gate.node.clone(), up.node.clone()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish((gate.primitive, up.primitive), out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }

    fn causal_attention(q: FloatTensor<Self>, k: FloatTensor<Self>, v: FloatTensor<Self>, keys: &super::KeyRanges) -> [FloatTensor<Self>; 2] {
        let [out, lse] = B::causal_attention(q.primitive.clone(), k.primitive.clone(), v.primitive.clone(), keys);
        // The log-sum-exp is a constant of the graph (the backward pass's input, not an output
        // anything differentiates).
        let constant = <Autodiff<B, C> as burn::tensor::backend::AutodiffBackend>::from_inner(lse.clone());
        let out = match Attention.prepare::<C>([q.node.clone(), k.node.clone(), v.node.clone()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish(([q.primitive, k.primitive, v.primitive, out.clone(), lse], keys.clone()), out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        };
        [out, constant]
    }

    fn rms_norm(x: FloatTensor<Self>, gamma: FloatTensor<Self>, eps: f64) -> FloatTensor<Self> {
        let out = B::rms_norm(x.primitive.clone(), gamma.primitive.clone(), eps);
        match RmsNorm.prepare::<C>([x.node.clone(), gamma.node.clone()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish((x.primitive, gamma.primitive, eps), out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }
}
