//! The training objective: causal LM loss on the tokens a mask marks trainable.

use burn::prelude::*;
use burn::tensor::activation::log_softmax;

/// Mean negative log-likelihood of `targets` under `logits` (`[batch, len, vocab]`), counted only
/// where `mask` (`[batch, len]`, 1 = trained) is set. Returns 0 when nothing is masked in.
pub fn masked_lm_loss<B: Backend>(logits: Tensor<B, 3>, targets: Tensor<B, 2, Int>, mask: Tensor<B, 2>) -> Tensor<B, 1> {
    let [b, t, _] = logits.dims();
    let lp = log_softmax(logits, 2).gather(2, targets.reshape([b, t, 1])).reshape([b, t]);
    let n = mask.clone().sum().clamp_min(1.0);
    (lp * mask).sum().neg() / n
}
