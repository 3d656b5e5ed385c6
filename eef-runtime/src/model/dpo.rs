//! DPO for the language-model policy (ETO's preference training): each trajectory's
//! log-likelihood is the sum over its trainable action tokens, computed on the same training
//! sequences SFT trains (the whole conversation, or its pieces; see
//! [`super::chat::sequences`]); the reference log-likelihoods come from the policy as preference training starts (ETO's
//! reference = the iteration's starting model) and are computed once, so no second copy of the
//! weights is held.

use std::collections::HashMap;

use burn::module::AutodiffModule;
use rand::seq::SliceRandom;

use super::kernels::{LmAutodiffBackend, LmBackend};
use super::llama::Llama;
use super::loss::masked_log_likelihood;
use super::row::Row;
use super::train::{Batch, TrainSettings, Trainer};
use crate::policy::DpoConfig;

/// The training sequences of a set of trajectories (one row each): `owner[w]` is the trajectory
/// sequence `w` belongs to.
#[derive(Clone, Debug, Default)]
pub struct Windows {
    /// The sequences.
    pub seqs: Vec<Row>,
    /// The trajectory each sequence belongs to.
    pub owner: Vec<usize>,
    /// Trainable tokens per trajectory.
    pub tokens: Vec<usize>,
}

impl Windows {
    /// Adds the sequences of trajectory number `owner`.
    pub fn push(&mut self, owner: usize, windows: impl IntoIterator<Item = Row>) {
        if self.tokens.len() <= owner {
            self.tokens.resize(owner + 1, 0);
        }
        for row in windows {
            self.tokens[owner] += row.trained_targets();
            self.seqs.push(row);
            self.owner.push(owner);
        }
    }
}

/// The log-likelihood (sum over trainable tokens) of each window `windows` names (indices into
/// `w.seqs`), in order, under `model`, computed in batches of `batch` windows without gradients.
fn window_log_likelihoods<B: LmBackend>(model: &Llama<B>, w: &Windows, windows: &[usize], pad: u32, batch: usize, device: &B::Device) -> Vec<f64> {
    let mut out = Vec::with_capacity(windows.len());
    for chunk in windows.chunks(batch.max(1)) {
        let seqs: Vec<Row> = chunk.iter().map(|&i| w.seqs[i].clone()).collect();
        let b = Batch::<B>::rows(&seqs, pad, device);
        let ll: Vec<f32> = masked_log_likelihood(b.logits(model), b.targets, b.mask).into_data().convert::<f32>().to_vec().unwrap_or_default();
        out.extend(ll.into_iter().map(f64::from));
    }
    out
}

/// Each trajectory's log-likelihood (sum over its trainable tokens) under `model`, computed in
/// batches of `batch` windows without gradients.
pub fn log_likelihoods<B: LmBackend>(model: &Llama<B>, w: &Windows, pad: u32, batch: usize, device: &B::Device) -> Vec<f64> {
    let all: Vec<usize> = (0..w.seqs.len()).collect();
    let mut out = vec![0f64; w.tokens.len()];
    for (&i, v) in all.iter().zip(window_log_likelihoods(model, w, &all, pad, batch, device)) {
        out[w.owner[i]] += v;
    }
    out
}

/// One pair's DPO loss `-log σ(m)`, `m = β((ll_c - ref_c) - (ll_r - ref_r))`, and its derivatives
/// with respect to the chosen and the rejected log-likelihood: `-β σ(-m)` and `+β σ(-m)`.
pub fn pair_terms(beta: f64, ll_c: f64, ref_c: f64, ll_r: f64, ref_r: f64) -> (f64, f64, f64) {
    let margin = beta * ((ll_c - ref_c) - (ll_r - ref_r));
    let sig_neg = 1.0 / (1.0 + margin.exp());
    let loss = if margin > -30.0 { (1.0 + (-margin).exp()).ln() } else { -margin };
    (loss, -beta * sig_neg, beta * sig_neg)
}

/// What a DPO run reports.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DpoOutcome {
    /// The DPO loss of the last group of pairs (before its update).
    pub loss: f32,
    /// Optimizer steps taken.
    pub steps: usize,
}

/// Trains `model` with DPO on pairs `(2i, 2i + 1)` = (chosen, rejected) of `w`, against the
/// reference log-likelihoods `reference` (same indexing): `pairs_per_step` pairs per optimizer
/// step, at `beta`. Returns the model and the outcome.
///
/// Memory is bounded by `windows_per_batch` windows per forward pass, however long the
/// trajectories: for each group of pairs a pass without gradients gives every pair's margin
/// `m`, then the windows are backpropagated in batches with the exact DPO gradient weights
/// (`-β σ(-m) / P` on the chosen side's log-likelihood, `+β σ(-m) / P` on the rejected side's,
/// plus the SFT term's `sft_weight / (P · tokens)` on the chosen side), and one optimizer step
/// follows.
///
/// With several `devices` (the first is the model's) the pass-2 batches are split over a
/// data-parallel group ([`super::data_parallel`]) and the step sums their gradients; the margins
/// are computed on the first device. The outcome is an error when the group fails.
#[allow(clippy::too_many_arguments)]
pub fn fit<B: LmAutodiffBackend>(
    model: Llama<B>,
    w: &Windows,
    reference: &[f64],
    pad: u32,
    settings: &TrainSettings,
    dpo: &DpoConfig,
    beta: f64,
    pairs_per_step: usize,
    windows_per_batch: usize,
    seed: u64,
    live: &crate::live::LiveMetrics,
    devices: &[B::Device],
    shape: super::data_parallel::ModelShape<'_>,
) -> (Llama<B>, Result<DpoOutcome, String>) {
    let device = &devices[0];
    let pairs = w.tokens.len() / 2;
    let group = pairs_per_step.max(1);
    let epochs = dpo.epochs.max(1);
    let steps = (epochs * pairs.div_ceil(group)).max(1);
    let settings = TrainSettings {
        learning_rate: settings.learning_rate * dpo.learning_rate_ratio,
        warmup_steps: ((steps as f64 * dpo.warmup_ratio).ceil() as usize).max(1),
        total_steps: steps,
        min_lr_ratio: 1.0, // constant after the warmup (ETO: constant_with_warmup)
        ..settings.clone()
    };
    let mut trainer = Trainer::new(model, settings.clone());
    let mut meter = super::meter::StepMeter::default();
    // The windows of each trajectory, found once.
    let mut by_owner: Vec<Vec<usize>> = vec![Vec::new(); w.tokens.len()];
    for (i, &o) in w.owner.iter().enumerate() {
        by_owner[o].push(i);
    }
    let mut loss = 0.0;
    let trained = super::data_parallel::run(&mut trainer, devices, pad, shape, |trainer, peers| -> Result<(), String> {
        for epoch in 0..epochs {
            let mut order: Vec<usize> = (0..pairs).collect();
            order.shuffle(&mut crate::seed::rng(crate::seed::derive_n(seed, epoch as u64)));
            for chunk in order.chunks(group) {
                // The group's windows: chosen of pair p is trajectory 2p, rejected 2p + 1.
                let windows: Vec<usize> = chunk.iter().flat_map(|&p| by_owner[2 * p].iter().chain(&by_owner[2 * p + 1]).copied()).collect();
                // Pass 1, no gradients: each pair's margin and gradient weight.
                let per_window = window_log_likelihoods(&trainer.model().valid(), w, &windows, pad, windows_per_batch, device);
                let mut ll: HashMap<usize, f64> = HashMap::new();
                for (&i, v) in windows.iter().zip(per_window) {
                    *ll.entry(w.owner[i]).or_default() += v;
                }
                let at = |t: usize| ll.get(&t).copied().unwrap_or(0.0);
                let n = chunk.len() as f64;
                let mut coef: HashMap<usize, f64> = HashMap::new();
                let mut group_loss = 0.0;
                for &p in chunk {
                    let (c, r) = (2 * p, 2 * p + 1);
                    let (l, dc, dr) = pair_terms(beta, at(c), reference[c], at(r), reference[r]);
                    group_loss += l / n;
                    coef.insert(c, dc / n - dpo.sft_weight / (n * w.tokens[c].max(1) as f64));
                    coef.insert(r, dr / n);
                }
                loss = group_loss as f32;
                meter.micro(loss, 0);
                // Pass 2: backpropagate Σ coef · ll over the windows, a batch at a time (in a
                // data-parallel group, each peer its share of every batch).
                for batch in windows.chunks(windows_per_batch.max(1)) {
                    let seqs: Vec<Row> = batch.iter().map(|&i| w.seqs[i].clone()).collect();
                    // Σ coef · ll = Σ (-coef) · NLL.
                    let weights: Vec<f32> = batch.iter().map(|&i| -(coef[&w.owner[i]] as f32)).collect();
                    meter.micro_tokens(2 * seqs.len() * seqs.iter().map(Row::len).max().unwrap_or(0));
                    match peers {
                        None => {
                            trainer.accumulate_weighted(Batch::rows(&seqs, pad, device), &weights);
                        }
                        Some(p) => {
                            p.accumulate(trainer, &seqs, &weights)?;
                        }
                    }
                }
                match peers {
                    None => trainer.apply_step()?,
                    Some(p) => p.step(trainer)?,
                }
                meter.step(live, "dpo", trainer.step, &settings, (epoch, epochs));
            }
        }
        Ok(())
    });
    let steps = trainer.step;
    let outcome = trained.and_then(|r| r).map(|()| DpoOutcome { loss, steps });
    (trainer.into_model(), outcome)
}

/// [`log_likelihoods`] of an autodiff model, on its inner backend (no gradients tracked).
pub fn reference_log_likelihoods<B: LmAutodiffBackend>(model: &Llama<B>, w: &Windows, pad: u32, batch: usize, device: &B::Device) -> Vec<f64> {
    log_likelihoods::<B::InnerBackend>(&model.valid(), w, pad, batch, device)
}

#[cfg(test)]
mod tests {
    use burn::prelude::*;

    use super::pair_terms;
    use crate::model::loss::dpo_loss;

    /// The weights the two-pass training backpropagates are the gradients of the DPO loss.
    #[test]
    fn pair_terms_are_the_dpo_loss_and_its_gradient() {
        type B = crate::model::CpuTrain;
        let d = Default::default();
        for (beta, lc, rc, lr, rr) in [(0.1, -3.0, -3.0, -5.0, -5.0), (0.5, -2.0, -3.5, -7.0, -5.0), (0.1, -40.0, -3.0, -1.0, -5.0)] {
            let var = |x: f64| Tensor::<B, 1>::from_floats([x as f32], &d).require_grad();
            let (c, r) = (var(lc), var(lr));
            let konst = |x: f64| Tensor::<B, 1>::from_floats([x as f32], &d);
            let loss = dpo_loss(c.clone(), r.clone(), konst(rc), konst(rr), beta);
            let value: f32 = loss.clone().into_scalar();
            let grads = loss.backward();
            let gc: f32 = c.grad(&grads).unwrap().into_scalar();
            let gr: f32 = r.grad(&grads).unwrap().into_scalar();
            let (l, dc, dr) = pair_terms(beta, lc, rc, lr, rr);
            assert!((l as f32 - value).abs() < 1e-5 && (dc as f32 - gc).abs() < 1e-5 && (dr as f32 - gr).abs() < 1e-5, "{l} {dc} {dr} vs {value} {gc} {gr}");
        }
    }
}
