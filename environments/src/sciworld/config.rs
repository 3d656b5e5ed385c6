//! ScienceWorld settings (`[environment]` of a SciWorld experiment).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Which of ETO's held-out splits is the test split.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TestSplit {
    /// ETO's test set: task variations unseen in training (211).
    #[default]
    Unseen,
    /// ETO's dev set: seen variations (194).
    Seen,
}

/// How the offline expert corrupts gold action sequences.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CorruptionConfig {
    /// Share of tasks whose plan is corrupted.
    pub rate: f64,
    /// Seed of the corruption draws.
    pub seed: u64,
}

impl Default for CorruptionConfig {
    fn default() -> Self {
        CorruptionConfig { rate: 0.5, seed: 0 }
    }
}

/// Settings of the ScienceWorld environment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SciWorldConfig {
    /// Folder with `scienceworld.jar` and `tasks.json` (default: `$SCIENCEWORLD_HOME` or
    /// `~/.cache/eef/scienceworld-1.2.3`).
    pub home: Option<PathBuf>,
    /// Folder with ETO's split files (default: `shared/data/sciworld` beside the repository).
    pub split_dir: Option<PathBuf>,
    /// The test split.
    pub test_split: TestSplit,
    /// Simplifications passed to `load` (ETO: `easy`).
    pub simplifications: String,
    /// Use only the first N training tasks of ETO's (shuffled) list.
    pub max_train_tasks: Option<usize>,
    /// Use only the first N test tasks.
    pub max_test_tasks: Option<usize>,
    /// Seconds a single call to the simulator may take before the JVM counts as hung.
    pub call_timeout_secs: f64,
    /// Seconds a JVM may take to start.
    pub startup_timeout_secs: f64,
    /// Whether to offer the valid actions to the policy (about a thousand per state, ~20 ms).
    pub offer_valid_actions: bool,
    /// Step limit for every task, instead of ETO's per-task limits.
    pub max_steps: Option<usize>,
    /// The offline expert's corruption.
    pub expert: CorruptionConfig,
}

impl Default for SciWorldConfig {
    fn default() -> Self {
        SciWorldConfig {
            home: None,
            split_dir: None,
            test_split: TestSplit::Unseen,
            simplifications: "easy".into(),
            max_train_tasks: None,
            max_test_tasks: None,
            call_timeout_secs: 30.0,
            startup_timeout_secs: 60.0,
            offer_valid_actions: false,
            max_steps: None,
            expert: CorruptionConfig::default(),
        }
    }
}
