//! Tasks and their train/test split.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A task's stable identifier, e.g. `vault-17` or `webshop-203`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskId(pub String);

impl TaskId {
    /// The identifier as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for TaskId {
    fn from(s: &str) -> Self {
        TaskId(s.to_owned())
    }
}

impl From<String> for TaskId {
    fn from(s: String) -> Self {
        TaskId(s)
    }
}

/// Which part of the benchmark a task belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Tasks used for expert data, exploration and training.
    Train,
    /// Held-out tasks used for evaluation only.
    Test,
    /// Held-out tasks for choosing among checkpoints (never trained on, never the reported
    /// test score), e.g. WebShop's human goals 500..1500.
    Dev,
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Split::Train => "train",
            Split::Test => "test",
            Split::Dev => "dev",
        })
    }
}

/// One task of an environment: what the agent is asked to do.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// Stable identifier.
    pub id: TaskId,
    /// The instruction shown to the agent.
    pub instruction: String,
    /// Train or test.
    pub split: Split,
    /// The environment's own index for this task (e.g. a goal index); opaque to the runtime.
    pub index: usize,
}

impl Task {
    /// Creates a task.
    pub fn new(id: impl Into<TaskId>, instruction: impl Into<String>, split: Split, index: usize) -> Self {
        Task { id: id.into(), instruction: instruction.into(), split, index }
    }
}
