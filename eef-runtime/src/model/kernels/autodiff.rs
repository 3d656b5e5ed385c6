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
struct CausalSoftmax;

impl<B: LmBackend> Backward<B, 1> for CausalSoftmax {
    type State = FloatTensor<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        register!(B, ops.parents, [B::causal_softmax_backward(ops.state, grad)], grads);
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
    type State = (FloatTensor<B>, IntTensor<B>);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let (logits, targets) = ops.state;
        register!(B, ops.parents, [B::cross_entropy_backward(logits, targets, grad)], grads);
    }
}

impl<B: LmBackend, C: CheckpointStrategy> LmBackend for Autodiff<B, C> {
    fn cross_entropy(logits: FloatTensor<Self>, targets: IntTensor<Self>) -> FloatTensor<Self> {
        let out = B::cross_entropy(logits.primitive.clone(), targets.clone());
        match CrossEntropy.prepare::<C>([logits.node.clone()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish((logits.primitive, targets), out),
            OpsKind::UnTracked(prep) => prep.finish(out),
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

    fn causal_softmax(scores: FloatTensor<Self>) -> FloatTensor<Self> {
        let out = B::causal_softmax(scores.primitive);
        match CausalSoftmax.prepare::<C>([scores.node.clone()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish(out.clone(), out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }

    fn rms_norm(x: FloatTensor<Self>, gamma: FloatTensor<Self>, eps: f64) -> FloatTensor<Self> {
        let out = B::rms_norm(x.primitive.clone(), gamma.primitive.clone(), eps);
        match RmsNorm.prepare::<C>([x.node.clone(), gamma.node.clone()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish((x.primitive, gamma.primitive, eps), out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }
}
