//! The policy interface: the model being tuned (and, with the same interface, a scripted or
//! remote expert).
//!
//! Rollout workers send [`ActRequest`]s to a batching task that calls [`Policy::act_batch`] with
//! every request that is ready, so a neural policy can decode many episodes in one batch.
//! Sampling must depend only on the request (its `seed`), never on the batch it arrived in: that
//! is what makes rollouts reproducible under any concurrency.

pub mod chat;
pub mod served;
mod tabular;

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use chat::{ChatConfig, ChatPolicy};
pub use served::{ServedConfig, ServedPolicy};
pub use tabular::{LastLineKey, StateKey, TabularPolicy};

use crate::trajectory::Trajectory;

/// What a policy sees when asked for the next action.
#[derive(Clone, Debug, PartialEq)]
pub struct ActRequest {
    /// Seed for this decision; derive all randomness from it.
    pub seed: u64,
    /// The task being played (experts that follow a per-task plan need it).
    pub task: crate::task::TaskId,
    /// The task's instruction.
    pub instruction: String,
    /// Earlier steps of the episode (observation, thought, action), expert prefix included.
    pub history: Vec<Step>,
    /// The current observation.
    pub observation: String,
    /// The valid actions, when the environment offers them.
    pub valid_actions: Option<Vec<String>>,
    /// Sampling temperature; 0 means greedy.
    pub temperature: f32,
}

/// One earlier step of an episode, as a policy sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// The observation shown before the action.
    pub observation: String,
    /// The reasoning that preceded the action (ReAct's `Thought:`), when there was one.
    pub thought: Option<String>,
    /// The action taken.
    pub action: String,
}

impl Step {
    /// A step without a thought.
    pub fn new(observation: impl Into<String>, action: impl Into<String>) -> Self {
        Step { observation: observation.into(), thought: None, action: action.into() }
    }

    /// The step a trajectory's turn records.
    pub fn of(turn: &crate::trajectory::Turn) -> Self {
        Step { observation: turn.observation.clone(), thought: turn.thought.clone(), action: turn.action.clone() }
    }
}

/// A policy's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Act {
    /// The action to send to the environment.
    pub action: String,
    /// Optional reasoning text (ReAct's `Thought:`).
    pub thought: Option<String>,
}

impl Act {
    /// An action without a thought.
    pub fn new(action: impl Into<String>) -> Self {
        Act { action: action.into(), thought: None }
    }
}

/// A policy failure.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PolicyError {
    /// The policy cannot do this (e.g. a scripted expert asked to train).
    #[error("{0} is not supported by this policy")]
    Unsupported(&'static str),
    /// Saving or loading a checkpoint failed.
    #[error("checkpoint {path}: {message}")]
    Checkpoint {
        /// The checkpoint path.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// Training was stopped by cancellation (Ctrl-C) at an optimizer step; its mid-training
    /// checkpoint is saved when it has a folder, and the next run resumes from it.
    #[error("training stopped by cancellation")]
    Cancelled,
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

/// Asks a long training call to stop at its next optimizer step (set by the experiment from its
/// cancellation token). Not part of the settings: two signals always compare equal.
#[derive(Clone, Debug, Default)]
pub struct StopSignal(Option<crate::rollout::CancellationToken>);

impl StopSignal {
    /// A signal raised when `token` is cancelled.
    pub fn new(token: crate::rollout::CancellationToken) -> Self {
        StopSignal(Some(token))
    }

    /// Whether training should stop.
    pub fn is_raised(&self) -> bool {
        self.0.as_ref().is_some_and(|t| t.is_cancelled())
    }
}

impl PartialEq for StopSignal {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// Training settings passed to [`Policy::train`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Passes over the data.
    pub epochs: usize,
    /// Passes over the data in the methods' iterations (RFT, EEF), when not `epochs`: an
    /// iteration that continues from the previous model (`[experiment] train_from =
    /// "previous"`) has learnt the expert data once already. SFT always trains `epochs`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iteration_epochs: Option<usize>,
    /// Peak learning rate (ignored by count-based policies).
    pub learning_rate: f64,
    /// Seed for data order and dropout.
    pub seed: u64,
    /// Where a policy that trains in steps keeps its mid-training checkpoint (model, optimizer,
    /// schedule, step, data position), and resumes from when it finds one left by the same run.
    /// Set by the experiment to the iteration's `train-state/` folder; not a config key.
    #[serde(skip)]
    pub checkpoint_dir: Option<std::path::PathBuf>,
    /// The iteration being trained (0 = SFT); set by the experiment, not a config key.
    #[serde(skip)]
    pub iteration: usize,
    /// Raised to stop training at the next optimizer step (Ctrl-C); set by the experiment.
    #[serde(skip)]
    pub stop: StopSignal,
    /// Where training appends a line per optimizer step (`RUN_DIR/metrics.jsonl`); set by the
    /// experiment, not a config key.
    #[serde(skip)]
    pub live: crate::live::LiveMetrics,
    /// `[train.dpo]`: preference training (ETO's method).
    pub dpo: DpoConfig,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig { epochs: 1, iteration_epochs: None, learning_rate: 1e-5, seed: 0, checkpoint_dir: None, iteration: 0, stop: StopSignal::default(), live: Default::default(), dpo: DpoConfig::default() }
    }
}

/// DPO settings (`[train.dpo]`); the defaults are ETO's (`run_eto.sh`: β 0.1 at the first
/// iteration and 0.5 after, 3 epochs, learning rate 1e-6 at the first iteration and 5e-7 after
/// against SFT's 2e-5, constant after a 10% warmup, 32 pairs per optimizer step, the reference =
/// the policy as the iteration's preference training starts, no SFT term).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DpoConfig {
    /// β at the first iteration.
    pub beta: f64,
    /// β from the second iteration on.
    pub beta_later: f64,
    /// Weight of an SFT term on the chosen side (mean negative log-likelihood of its trainable
    /// tokens) added to the DPO loss; 0 = plain DPO.
    pub sft_weight: f64,
    /// The learning rate at the first iteration, as a share of the policy's own (SFT) peak rate.
    pub learning_rate_ratio: f64,
    /// The learning rate from the second iteration on, as a share of the SFT peak rate.
    pub learning_rate_ratio_later: f64,
    /// Preference pairs per optimizer step (ETO: a batch of 32).
    pub pairs_per_step: usize,
    /// Passes over the pairs.
    pub epochs: usize,
    /// Share of the steps spent warming up; the rate is constant after.
    pub warmup_ratio: f64,
}

impl Default for DpoConfig {
    fn default() -> Self {
        DpoConfig {
            beta: 0.1,
            beta_later: 0.5,
            sft_weight: 0.0,
            learning_rate_ratio: 0.05,
            learning_rate_ratio_later: 0.025,
            pairs_per_step: 32,
            epochs: 3,
            warmup_ratio: 0.1,
        }
    }
}

impl DpoConfig {
    /// β for training iteration `iteration` (1-based; ETO raises it after the first).
    pub fn beta_at(&self, iteration: usize) -> f64 {
        if iteration <= 1 {
            self.beta
        } else {
            self.beta_later
        }
    }

    /// The learning-rate share for training iteration `iteration` (1-based; ETO halves it after
    /// the first).
    pub fn learning_rate_ratio_at(&self, iteration: usize) -> f64 {
        if iteration <= 1 {
            self.learning_rate_ratio
        } else {
            self.learning_rate_ratio_later
        }
    }
}

/// What a training call reports.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    /// Trajectories trained on.
    pub trajectories: usize,
    /// Turns that carried loss.
    pub trainable_turns: usize,
    /// Final training loss, when the policy has one.
    pub loss: Option<f64>,
    /// How a language-model policy turned the trajectories into training sequences and rows,
    /// and the tokens one epoch processes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequences: Option<crate::model::chat::SequenceStats>,
}

/// A policy: acts in batches, trains on masked trajectories, saves and loads checkpoints.
pub trait Policy: Send + Sync + 'static {
    /// A short name for reports.
    fn name(&self) -> String;

    /// Answers a batch of requests, one result per request, in order.
    fn act_batch(&self, requests: &[ActRequest]) -> Vec<Result<Act, PolicyError>>;

    /// Fine-tunes on `data`: loss only on turns with `trainable == true`.
    fn train(&mut self, _data: &[Trajectory], _config: &TrainConfig) -> Result<TrainReport, PolicyError> {
        Err(PolicyError::Unsupported("training"))
    }

    /// Whether [`Policy::train_preferences`] is implemented (a run whose methods select
    /// preference pairs is refused at setup otherwise).
    fn supports_preferences(&self) -> bool {
        false
    }

    /// Preference training (DPO) on `(chosen, rejected)` pairs, as ETO does.
    fn train_preferences(
        &mut self,
        _pairs: &[crate::selection::PreferencePair],
        _config: &TrainConfig,
    ) -> Result<TrainReport, PolicyError> {
        Err(PolicyError::Unsupported("preference training"))
    }

    /// Saves a checkpoint into the directory `dir` (created by the caller).
    fn save(&self, _dir: &Path) -> Result<(), PolicyError> {
        Err(PolicyError::Unsupported("saving"))
    }

    /// Restores the checkpoint saved in `dir`.
    fn load(&mut self, _dir: &Path) -> Result<(), PolicyError> {
        Err(PolicyError::Unsupported("loading"))
    }
}

impl Policy for Box<dyn Policy> {
    fn name(&self) -> String {
        (**self).name()
    }
    fn act_batch(&self, requests: &[ActRequest]) -> Vec<Result<Act, PolicyError>> {
        (**self).act_batch(requests)
    }
    fn train(&mut self, data: &[Trajectory], config: &TrainConfig) -> Result<TrainReport, PolicyError> {
        (**self).train(data, config)
    }
    fn supports_preferences(&self) -> bool {
        (**self).supports_preferences()
    }
    fn train_preferences(
        &mut self,
        pairs: &[crate::selection::PreferencePair],
        config: &TrainConfig,
    ) -> Result<TrainReport, PolicyError> {
        (**self).train_preferences(pairs, config)
    }
    fn save(&self, dir: &Path) -> Result<(), PolicyError> {
        (**self).save(dir)
    }
    fn load(&mut self, dir: &Path) -> Result<(), PolicyError> {
        (**self).load(dir)
    }
}
