//! The policy interface: the model being tuned (and, with the same interface, a scripted or
//! remote expert).
//!
//! Rollout workers send [`ActRequest`]s to a batching task that calls [`Policy::act_batch`] with
//! every request that is ready, so a neural policy can decode many episodes in one batch.
//! Sampling must depend only on the request (its `seed`), never on the batch it arrived in: that
//! is what makes rollouts reproducible under any concurrency.

pub mod chat;
mod tabular;

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use chat::{ChatConfig, ChatPolicy};
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
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

/// Training settings passed to [`Policy::train`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Passes over the data.
    pub epochs: usize,
    /// Peak learning rate (ignored by count-based policies).
    pub learning_rate: f64,
    /// Seed for data order and dropout.
    pub seed: u64,
    /// Where a policy that trains in steps keeps its mid-training checkpoint (model, optimizer,
    /// schedule, step, data position), and resumes from when it finds one left by the same run.
    /// Set by the experiment to the iteration's `train-state/` folder; not a config key.
    #[serde(skip)]
    pub checkpoint_dir: Option<std::path::PathBuf>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig { epochs: 1, learning_rate: 1e-5, seed: 0, checkpoint_dir: None }
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

    /// Preference training (DPO-style) on `(chosen, rejected)` pairs, as ETO does.
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
