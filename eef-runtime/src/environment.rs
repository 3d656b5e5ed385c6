//! The environment interface the rollout engine drives.
//!
//! Implement it with [`#[environment]`](macro@crate::environment) on an inherent `impl` block, or
//! by hand. Environments are driven from blocking worker threads, one instance per worker, made by
//! an [`EnvFactory`]; a failed instance is replaced by a fresh one from the factory and the
//! episode is replayed to where it was.

use crate::task::Task;

/// What one environment step returns.
#[derive(Clone, Debug, PartialEq)]
pub struct StepResult {
    /// The observation after the action.
    pub observation: String,
    /// The step's reward (the environment's own scale).
    pub reward: f64,
    /// Whether the episode is over.
    pub done: bool,
}

impl StepResult {
    /// A step that did not end the episode.
    pub fn running(observation: impl Into<String>, reward: f64) -> Self {
        StepResult { observation: observation.into(), reward, done: false }
    }

    /// A step that ended the episode.
    pub fn finished(observation: impl Into<String>, reward: f64) -> Self {
        StepResult { observation: observation.into(), reward, done: true }
    }
}

/// An environment failure. A malformed *action* is not an error: the environment answers it as
/// the original benchmark does (usually with an unchanged page and reward 0).
#[derive(Debug, Clone, thiserror::Error)]
pub enum EnvError {
    /// The environment process or connection died; the engine restarts the instance and
    /// replays the episode.
    #[error("environment crashed: {0}")]
    Crashed(String),
    /// A call took longer than allowed; treated like a crash.
    #[error("environment call timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// `step` was called on a finished episode, or before `reset`.
    #[error("invalid environment state: {0}")]
    InvalidState(String),
    /// The task is unknown to this environment.
    #[error("unknown task: {0}")]
    UnknownTask(String),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

impl EnvError {
    /// Whether restarting the environment instance may help.
    pub fn is_restartable(&self) -> bool {
        matches!(self, EnvError::Crashed(_) | EnvError::Timeout(_))
    }
}

/// The state after replaying an action prefix.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplayOutcome {
    /// The observation before each replayed action (`observations[i]` preceded `prefix[i]`).
    pub observations: Vec<String>,
    /// The reward of each replayed step.
    pub rewards: Vec<f64>,
    /// The observation after the last replayed action (the restored state).
    pub observation: String,
    /// Whether the prefix already ended the episode.
    pub done: bool,
}

/// An interactive, replayable text environment.
pub trait Environment: Send {
    /// A short name used in run directories and reports.
    fn name(&self) -> &str;

    /// All tasks, train and test.
    fn tasks(&self) -> Vec<Task>;

    /// Starts an episode of `task`; returns the first observation.
    fn reset(&mut self, task: &Task, seed: u64) -> Result<String, EnvError>;

    /// Applies an action.
    fn step(&mut self, action: &str) -> Result<StepResult, EnvError>;

    /// The valid actions in the current state, when the environment knows them.
    fn valid_actions(&self) -> Option<Vec<String>> {
        None
    }

    /// The step limit for an episode of `task` (expert prefix included).
    fn max_steps(&self, task: &Task) -> usize;

    /// Brings the environment to the state after `prefix` from `task`'s start.
    ///
    /// The default resets and replays the actions one by one, which is exact for deterministic
    /// environments; override it where a faster restore exists.
    fn replay(&mut self, task: &Task, seed: u64, prefix: &[String]) -> Result<ReplayOutcome, EnvError> {
        default_replay(self, task, seed, prefix)
    }
}

/// Resets `env` and applies `prefix` action by action.
pub fn default_replay<E: Environment + ?Sized>(
    env: &mut E,
    task: &Task,
    seed: u64,
    prefix: &[String],
) -> Result<ReplayOutcome, EnvError> {
    let mut observation = env.reset(task, seed)?;
    let mut observations = Vec::with_capacity(prefix.len());
    let mut rewards = Vec::with_capacity(prefix.len());
    let mut done = false;
    for (i, action) in prefix.iter().enumerate() {
        if done {
            return Err(EnvError::InvalidState(format!(
                "replay: the episode ended after {i} of {} prefix actions",
                prefix.len()
            )));
        }
        observations.push(observation);
        let step = env.step(action)?;
        rewards.push(step.reward);
        observation = step.observation;
        done = step.done;
    }
    Ok(ReplayOutcome { observations, rewards, observation, done })
}

/// Makes environment instances, one per rollout worker.
pub trait EnvFactory: Send + Sync + 'static {
    /// Makes the instance for `worker`. Called again for a worker whose instance failed.
    fn make(&self, worker: usize) -> Result<Box<dyn Environment>, EnvError>;
}

impl<F, E> EnvFactory for F
where
    F: Fn(usize) -> Result<E, EnvError> + Send + Sync + 'static,
    E: Environment + 'static,
{
    fn make(&self, worker: usize) -> Result<Box<dyn Environment>, EnvError> {
        Ok(Box::new(self(worker)?))
    }
}

/// An argument the interface passes (`T`) as the user's method takes it (`Self`): the identity,
/// for the types the interface passes. Used by `#[environment]`'s generated code, so that a
/// parameter of another type is reported on it, with the signatures; not needed by hand.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "an #[environment] method takes `{Self}` where the environment interface passes `{T}`",
    label = "this parameter type",
    note = "the signatures: `fn reset(&mut self, task: &Task, seed: u64)`, `fn step(&mut self, action: &str)`, `fn max_steps(&self, task: &Task) -> usize`, `fn replay(&mut self, task: &Task, seed: u64, prefix: &[String])`"
)]
pub trait EnvParam<T> {
    /// The argument, unchanged.
    fn from_env(value: T) -> Self;
}

impl<'a> EnvParam<&'a str> for &'a str {
    fn from_env(value: &'a str) -> Self {
        value
    }
}

impl<'a> EnvParam<&'a Task> for &'a Task {
    fn from_env(value: &'a Task) -> Self {
        value
    }
}

impl EnvParam<u64> for u64 {
    fn from_env(value: u64) -> Self {
        value
    }
}

impl<'a> EnvParam<&'a [String]> for &'a [String] {
    fn from_env(value: &'a [String]) -> Self {
        value
    }
}

/// Conversion used by `#[environment]` so that infallible environments can return plain values:
/// a method may return `T` or `Result<T, E>` with `E: Into<EnvError>`.
#[diagnostic::on_unimplemented(
    message = "an #[environment] method returns `{Self}`, which is not a return type the macro accepts",
    label = "this return type",
    note = "each method returns its value, or `Result<value, E>` with `E: Into<EnvError>`: `reset` returns the first observation (`String`); `step` returns `StepResult` (`StepResult::running(obs, reward)` or `StepResult::finished(obs, reward)`), not a gym-style tuple; `replay` returns `ReplayOutcome`"
)]
pub trait IntoEnvResult<T> {
    /// Converts into the trait's `Result`.
    fn into_env_result(self) -> Result<T, EnvError>;
}

impl IntoEnvResult<String> for String {
    fn into_env_result(self) -> Result<String, EnvError> {
        Ok(self)
    }
}

impl IntoEnvResult<StepResult> for StepResult {
    fn into_env_result(self) -> Result<StepResult, EnvError> {
        Ok(self)
    }
}

impl IntoEnvResult<ReplayOutcome> for ReplayOutcome {
    fn into_env_result(self) -> Result<ReplayOutcome, EnvError> {
        Ok(self)
    }
}

impl<T, E: Into<EnvError>> IntoEnvResult<T> for Result<T, E> {
    fn into_env_result(self) -> Result<T, EnvError> {
        self.map_err(Into::into)
    }
}
