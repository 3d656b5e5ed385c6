//! The training objectives: causal LM loss on the tokens a mask marks trainable, and DPO on
//! sequence log-likelihoods.

use burn::prelude::*;

use super::kernels::{self, LmBackend};

/// Per-token negative log-likelihood of `targets` under `logits` (`[batch, len, vocab]`):
/// `[batch, len]`.
fn token_nll<B: LmBackend>(logits: Tensor<B, 3>, targets: Tensor<B, 2, Int>) -> Tensor<B, 2> {
    let [b, t, v] = logits.dims();
    kernels::cross_entropy(logits.reshape([b * t, v]), targets.reshape([b * t])).reshape([b, t])
}

/// Mean negative log-likelihood of `targets` under `logits` (`[batch, len, vocab]`), counted only
/// where `mask` (`[batch, len]`, 1 = trained) is set. Returns 0 when nothing is masked in.
pub fn masked_lm_loss<B: LmBackend>(logits: Tensor<B, 3>, targets: Tensor<B, 2, Int>, mask: Tensor<B, 2>) -> Tensor<B, 1> {
    let n = mask.clone().sum().clamp_min(1.0);
    (token_nll(logits, targets) * mask).sum() / n
}

/// Each row's log-likelihood of its trainable tokens: the sum of `log p(target)` where `mask`
/// is set, `[batch]`.
pub fn masked_log_likelihood<B: LmBackend>(logits: Tensor<B, 3>, targets: Tensor<B, 2, Int>, mask: Tensor<B, 2>) -> Tensor<B, 1> {
    let b = mask.dims()[0];
    (token_nll(logits, targets) * mask).sum_dim(1).reshape([b]).neg()
}

/// The DPO loss (Rafailov et al., 2023) of preference pairs, `[pairs]` each:
/// `-log σ(β · ((log π(chosen) - log π_ref(chosen)) - (log π(rejected) - log π_ref(rejected))))`,
/// averaged over the pairs. (Training backpropagates its gradient in two passes to bound memory,
/// see [`super::dpo::fit`]; this form states the objective and checks it.)
#[cfg(test)]
pub fn dpo_loss<B: Backend>(chosen: Tensor<B, 1>, rejected: Tensor<B, 1>, ref_chosen: Tensor<B, 1>, ref_rejected: Tensor<B, 1>, beta: f64) -> Tensor<B, 1> {
    let margin = ((chosen - ref_chosen) - (rejected - ref_rejected)) * beta;
    burn::tensor::activation::log_sigmoid(margin).mean().neg()
}

#[cfg(test)]
mod tests {
    use super::*;

    type B = crate::model::Cpu;

    #[test]
    fn dpo_is_log_two_at_the_reference_and_falls_as_the_margin_grows() {
        let d = Default::default();
        let t = |v: &[f32]| Tensor::<B, 1>::from_floats(v, &d);
        let at_ref: f32 = dpo_loss(t(&[-3.0]), t(&[-5.0]), t(&[-3.0]), t(&[-5.0]), 0.1).into_scalar();
        assert!((at_ref - std::f32::consts::LN_2).abs() < 1e-6, "{at_ref}");
        let better: f32 = dpo_loss(t(&[-2.0]), t(&[-6.0]), t(&[-3.0]), t(&[-5.0]), 0.1).into_scalar();
        // margin = 0.1 * (1 + 1) = 0.2: -log σ(0.2)
        assert!((better - (1.0 + (-0.2f32).exp()).ln()).abs() < 1e-6, "{better}");
    }
}
