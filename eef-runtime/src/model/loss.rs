//! The training objective: causal LM loss on the tokens a mask marks trainable.

use burn::prelude::*;

use super::kernels::{self, LmBackend};

/// Mean negative log-likelihood of `targets` under `logits` (`[batch, len, vocab]`), counted only
/// where `mask` (`[batch, len]`, 1 = trained) is set. Returns 0 when nothing is masked in.
pub fn masked_lm_loss<B: LmBackend>(logits: Tensor<B, 3>, targets: Tensor<B, 2, Int>, mask: Tensor<B, 2>) -> Tensor<B, 1> {
    let [b, t, v] = logits.dims();
    let nll = kernels::cross_entropy(logits.reshape([b * t, v]), targets.reshape([b * t])).reshape([b, t]);
    let n = mask.clone().sum().clamp_min(1.0);
    (nll * mask).sum() / n
}
