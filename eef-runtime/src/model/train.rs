//! Training: masked causal-LM loss, AdamW with gradient-norm clipping, linear warmup then cosine
//! decay, gradient accumulation.

use burn::grad_clipping::GradientClippingConfig;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamW, AdamWConfig, GradientsAccumulator, GradientsParams, Optimizer};
use burn::module::Module;
use burn::prelude::*;
use super::kernels::LmAutodiffBackend;
use serde::{Deserialize, Serialize};

use super::llama::Llama;
use super::loss::masked_lm_loss;
use super::row::Row;

/// Optimisation settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainSettings {
    /// Peak learning rate.
    pub learning_rate: f64,
    /// Linear warmup steps (optimizer steps).
    pub warmup_steps: usize,
    /// Total optimizer steps (the cosine reaches its floor there).
    pub total_steps: usize,
    /// The cosine floor, as a share of the peak.
    pub min_lr_ratio: f64,
    /// AdamW weight decay.
    pub weight_decay: f32,
    /// Gradient-norm clip.
    pub grad_clip: f32,
    /// Micro-batches per optimizer step.
    pub accumulation: usize,
    /// Save a mid-training checkpoint every this many optimizer steps (0: never), when the
    /// caller gives a checkpoint folder.
    pub checkpoint_every: usize,
    /// Data-parallel training: the devices (GPU indices of `[policy] backend`) that each hold a
    /// copy of the model and train on their share of every micro-batch; their gradients are
    /// summed with burn-collective's all-reduce before each optimizer step (see
    /// [`super::data_parallel`]). Empty: the one `[policy] device`. On a CPU backend the entries
    /// only count peers (threads), which all use the CPU.
    pub devices: Vec<usize>,
    /// `[policy.train.cluster]`: train across machines too, each other machine running
    /// `eef train-node` (see [`super::data_parallel::cluster`]). Absent: this machine alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<super::data_parallel::ClusterSettings>,
}

impl Default for TrainSettings {
    fn default() -> Self {
        TrainSettings { learning_rate: 3e-3, warmup_steps: 10, total_steps: 200, min_lr_ratio: 0.1, weight_decay: 0.01, grad_clip: 1.0, accumulation: 1, checkpoint_every: 100, devices: Vec::new(), cluster: None }
    }
}

/// The learning rate at optimizer step `step`: linear warmup to the peak, then cosine decay to
/// `min_lr_ratio` of it at `total_steps` (and flat after).
pub fn learning_rate(s: &TrainSettings, step: usize) -> f64 {
    if step < s.warmup_steps {
        return s.learning_rate * (step + 1) as f64 / s.warmup_steps as f64;
    }
    let span = s.total_steps.saturating_sub(s.warmup_steps).max(1);
    let progress = ((step - s.warmup_steps) as f64 / span as f64).min(1.0);
    let floor = s.learning_rate * s.min_lr_ratio;
    floor + (s.learning_rate - floor) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
}

/// A padded batch: inputs, next-token targets and the loss mask, all `[batch, len]`, and where
/// packed sequences begin in each row.
#[derive(Clone, Debug)]
pub struct Batch<B: Backend> {
    /// Input tokens.
    pub inputs: Tensor<B, 2, Int>,
    /// Target tokens (inputs shifted by one).
    pub targets: Tensor<B, 2, Int>,
    /// 1 where the target carries loss.
    pub mask: Tensor<B, 2>,
    /// Per row, the offsets at which its second, third, … packed sequence begins (see
    /// [`Row`]); all empty when no row is packed.
    pub starts: Vec<Vec<usize>>,
}

impl<B: Backend> Batch<B> {
    /// Builds a right-padded batch from token sequences and, per token, whether predicting it
    /// carries loss (the first token never does).
    pub fn new(sequences: &[(Vec<u32>, Vec<bool>)], pad: u32, device: &B::Device) -> Self {
        let rows: Vec<Row> = sequences.iter().map(|(ids, t)| Row::single(ids.clone(), t.clone())).collect();
        Self::rows(&rows, pad, device)
    }

    /// Builds a right-padded batch from rows (packed or not).
    pub fn rows(rows: &[Row], pad: u32, device: &B::Device) -> Self {
        let len = rows.iter().map(|r| r.len().saturating_sub(1)).max().unwrap_or(0).max(1);
        let (mut inputs, mut targets, mut mask) = (Vec::new(), Vec::new(), Vec::new());
        for row in rows {
            let tokens = &row.ids;
            for i in 0..len {
                let real = i + 1 < tokens.len();
                inputs.push(if i < tokens.len() { tokens[i] as i64 } else { pad as i64 });
                targets.push(if real { tokens[i + 1] as i64 } else { pad as i64 });
                mask.push(if real && row.target_trained(i + 1) { 1.0f32 } else { 0.0 });
            }
        }
        let b = rows.len();
        // An input position `i` predicts token `i + 1`: the sequences begin at the same offsets.
        let starts = if rows.iter().all(|r| r.starts.is_empty()) { Vec::new() } else { rows.iter().map(|r| r.starts.clone()).collect() };
        Batch {
            inputs: Tensor::from_data(TensorData::new(inputs, [b, len]), device),
            targets: Tensor::from_data(TensorData::new(targets, [b, len]), device),
            mask: Tensor::from_data(TensorData::new(mask, [b, len]), device),
            starts,
        }
    }

    /// The logits of the batch's inputs under `model`.
    pub fn logits(&self, model: &Llama<B>) -> Tensor<B, 3>
    where
        B: super::kernels::LmBackend,
    {
        if self.starts.is_empty() {
            model.logits(self.inputs.clone())
        } else {
            model.logits_packed(self.inputs.clone(), &self.starts)
        }
    }
}

/// AdamW with the settings' weight decay and gradient-norm clipping.
fn adamw(s: &TrainSettings) -> AdamWConfig {
    AdamWConfig::new().with_weight_decay(s.weight_decay).with_grad_clipping(Some(GradientClippingConfig::Norm(s.grad_clip)))
}

/// The optimizer state of a [`Trainer`], as saved in checkpoints.
pub type OptimRecord<B> = <OptimizerAdaptor<AdamW, Llama<B>, B> as Optimizer<Llama<B>, B>>::Record;

/// A model with its optimizer state and schedule position.
pub struct Trainer<B: LmAutodiffBackend> {
    model: Option<Llama<B>>,
    optim: OptimizerAdaptor<AdamW, Llama<B>, B>,
    accum: GradientsAccumulator<Llama<B>>,
    micro: usize,
    /// This trainer's place in a data-parallel group: its gradients are all-reduced (summed)
    /// with the other peers' before each optimizer step.
    peer: Option<burn::collective::PeerId>,
    /// Optimizer steps taken.
    pub step: usize,
    /// The settings.
    pub settings: TrainSettings,
}

impl<B: LmAutodiffBackend> std::fmt::Debug for Trainer<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer").field("step", &self.step).field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl<B: LmAutodiffBackend> Trainer<B> {
    /// Starts training `model`.
    pub fn new(model: Llama<B>, settings: TrainSettings) -> Self {
        let optim = adamw(&settings).init::<B, Llama<B>>();
        Trainer {
            model: Some(model),
            optim,
            accum: GradientsAccumulator::new(),
            micro: 0,
            peer: None,
            step: 0,
            settings,
        }
    }

    /// Makes this trainer peer `peer` of a data-parallel group that has registered with
    /// burn-collective ([`super::data_parallel`]): from now on each optimizer step sums the
    /// gradients of all peers first.
    pub fn join(&mut self, peer: burn::collective::PeerId) {
        self.peer = Some(peer);
    }

    /// Leaves the data-parallel group: steps use this trainer's gradients alone again.
    pub fn leave(&mut self) {
        self.peer = None;
    }

    /// The gradients to step with: this trainer's, or, in a data-parallel group, all peers'
    /// summed (every peer gets the same sum, so every copy of the model takes the same step).
    fn reduced(&mut self) -> Result<GradientsParams, String> {
        let grads = self.accum.grads();
        if let Some(peer) = self.peer {
            return grads.all_reduce::<B::InnerBackend>(peer, burn::collective::ReduceOperation::Sum).map_err(|e| format!("all-reduce of the gradients failed: {e:?}"));
        }
        Ok(grads)
    }

    /// The model being trained.
    pub fn model(&self) -> &Llama<B> {
        self.model.as_ref().expect("model present between steps")
    }

    /// Micro-batches trained so far.
    pub fn micro_steps(&self) -> usize {
        self.micro
    }

    /// Whether the next micro-batch starts a new optimizer step (no gradients are pending).
    pub fn at_step_boundary(&self) -> bool {
        self.micro.is_multiple_of(self.settings.accumulation.max(1))
    }

    /// The optimizer's state (AdamW moments per parameter id).
    pub fn optimizer_record(&self) -> OptimRecord<B> {
        self.optim.to_record()
    }

    /// Puts back a saved model, optimizer state and counters.
    pub fn restore(&mut self, model: <Llama<B> as Module<B>>::Record, optim: OptimRecord<B>, step: usize, micro: usize) {
        let current = self.model.take().expect("model present between steps");
        self.restore_model(current.load_record(model), optim, step, micro);
    }

    /// Puts back a model (whose parameter ids the optimizer state refers to), the optimizer state
    /// and the counters.
    pub fn restore_model(&mut self, model: Llama<B>, optim: OptimRecord<B>, step: usize, micro: usize) {
        self.model = Some(model);
        let fresh = adamw(&self.settings).init::<B, Llama<B>>();
        self.optim = fresh.load_record(optim);
        self.accum = GradientsAccumulator::new();
        self.step = step;
        self.micro = micro;
    }

    /// Ends training and returns the model.
    pub fn into_model(mut self) -> Llama<B> {
        self.model.take().expect("model present between steps")
    }

    /// One micro-batch: forward, masked loss, backward; every `accumulation` micro-batches an
    /// optimizer step at the scheduled learning rate. Returns the micro-batch's loss.
    pub fn micro_step(&mut self, batch: Batch<B>) -> f32 {
        self.micro_step_with(|model| masked_lm_loss(batch.logits(model), batch.targets, batch.mask))
    }

    /// Backpropagates the caller's loss (`loss` runs the forward pass) into the pending
    /// gradients, without an optimizer step ([`Trainer::apply_step`] takes it). Returns the loss.
    pub fn accumulate_with(&mut self, loss: impl FnOnce(&Llama<B>) -> Tensor<B, 1>) -> f32 {
        let model = self.model.take().expect("model present between steps");
        let loss = loss(&model);
        let value: f32 = loss.clone().into_scalar().elem();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        self.accum.accumulate(&model, grads);
        self.model = Some(model);
        value
    }

    /// An optimizer step with the gradients [`Trainer::accumulate_with`] gathered, at the
    /// scheduled learning rate. In a data-parallel group it fails when the all-reduce does
    /// (another peer failed); the model is then unchanged.
    pub fn apply_step(&mut self) -> Result<(), String> {
        let grads = self.reduced()?;
        let model = self.model.take().expect("model present between steps");
        let lr = learning_rate(&self.settings, self.step);
        self.step += 1;
        self.micro += 1;
        self.model = Some(self.optim.step(lr, model, grads));
        Ok(())
    }

    /// Backpropagates `Σ_s weights[s] · NLL_s` into the pending gradients, where `NLL_s` is the
    /// summed negative log-likelihood of row `s`'s trainable tokens; no optimizer step. With
    /// weights `1 / (tokens · accumulation)` over a shard of a micro-batch this is that shard's
    /// part of [`masked_lm_loss`]; with a pair's DPO coefficients, its part of the DPO gradient.
    /// Returns the value.
    pub fn accumulate_weighted(&mut self, batch: Batch<B>, weights: &[f32]) -> f32 {
        let device = batch.mask.device();
        let w = Tensor::<B, 1>::from_data(TensorData::new(weights.to_vec(), [weights.len()]), &device);
        self.accumulate_with(|m| (super::loss::masked_log_likelihood(batch.logits(m), batch.targets.clone(), batch.mask.clone()) * w).sum().neg())
    }

    /// Ends a micro-batch whose gradients [`Trainer::accumulate_weighted`] gathered: every
    /// `accumulation` micro-batches, an optimizer step (all-reduced in a data-parallel group).
    pub fn end_micro(&mut self) -> Result<(), String> {
        let n = self.settings.accumulation.max(1);
        if (self.micro + 1).is_multiple_of(n) {
            self.apply_step()
        } else {
            self.micro += 1;
            Ok(())
        }
    }

    /// One micro-batch with the caller's objective (`loss` runs the forward pass on the model):
    /// backward, and every `accumulation` micro-batches an optimizer step at the scheduled
    /// learning rate. Returns the micro-batch's loss.
    pub fn micro_step_with(&mut self, loss: impl FnOnce(&Llama<B>) -> Tensor<B, 1>) -> f32 {
        let model = self.model.take().expect("model present between steps");
        let loss = loss(&model);
        let value: f32 = loss.clone().into_scalar().elem();
        let n = self.settings.accumulation.max(1);
        let grads = GradientsParams::from_grads((loss / n as f64).backward(), &model);
        self.accum.accumulate(&model, grads);
        self.micro += 1;
        let model = if self.micro.is_multiple_of(n) {
            let lr = learning_rate(&self.settings, self.step);
            self.step += 1;
            // Outside a group the gradients need no reduction, which cannot fail.
            debug_assert!(self.peer.is_none(), "a data-parallel peer trains with accumulate_weighted and end_micro");
            self.optim.step(lr, model, self.accum.grads())
        } else {
            model
        };
        self.model = Some(model);
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_cosine() {
        let s = TrainSettings { learning_rate: 1.0, warmup_steps: 4, total_steps: 14, min_lr_ratio: 0.1, ..TrainSettings::default() };
        assert!((learning_rate(&s, 0) - 0.25).abs() < 1e-12);
        assert!((learning_rate(&s, 3) - 1.0).abs() < 1e-12);
        assert!((learning_rate(&s, 4) - 1.0).abs() < 1e-12);
        assert!((learning_rate(&s, 9) - 0.55).abs() < 1e-12);
        assert!((learning_rate(&s, 14) - 0.1).abs() < 1e-12);
        assert!((learning_rate(&s, 100) - 0.1).abs() < 1e-12);
    }
}
