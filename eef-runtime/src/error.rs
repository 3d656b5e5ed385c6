//! The runtime's top-level error type.

use std::path::PathBuf;

use crate::{config::ConfigError, environment::EnvError, policy::PolicyError};

/// Anything that can stop an experiment run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The experiment configuration could not be read.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// An environment failed in a way retries could not repair.
    #[error("environment error: {0}")]
    Env(#[from] EnvError),
    /// The policy failed to act, train, save or load.
    #[error("policy error: {0}")]
    Policy(#[from] PolicyError),
    /// Reading or writing a file of the run directory failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A JSON(L) record could not be parsed.
    #[error("{path}:{line}: invalid record: {message}")]
    Record {
        /// The file that holds the record.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// The run was cancelled (Ctrl-C or a cancellation token); completed work is on disk.
    #[error("run cancelled; completed episodes are saved, run again to resume")]
    Cancelled,
    /// The experiment was set up inconsistently (e.g. an unknown selector name).
    #[error("invalid experiment: {0}")]
    Setup(String),
    /// The run's tasks, expert or environment would make its result meaningless (no test tasks,
    /// an expert with no successes, mostly broken episodes, ...): it stops instead of reporting.
    #[error("{cause}\n  fix: {fix}")]
    Meaningless {
        /// What is wrong, with the numbers.
        cause: String,
        /// What to change.
        fix: String,
    },
    /// The experiment's reward panicked while scoring an episode.
    #[error("the reward `{reward}` panicked scoring an episode of task {task}: {message}")]
    Reward {
        /// The reward's name ([`crate::Reward::name`]).
        reward: String,
        /// The episode's task.
        task: String,
        /// The panic's message.
        message: String,
    },
}

impl Error {
    /// A [`Error::Meaningless`] error.
    pub fn meaningless(cause: impl Into<String>, fix: impl Into<String>) -> Self {
        Error::Meaningless { cause: cause.into(), fix: fix.into() }
    }

    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}
