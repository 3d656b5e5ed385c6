//! ScienceWorld settings (`[environment]` of a SciWorld experiment).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::calls::Calls;

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
    /// Whether to offer the valid actions to the policy (about a thousand per state). With
    /// [`Calls::Package`] they are fetched on every step either way; this only decides whether the
    /// policy sees them, so it never changes the simulator's trajectory.
    pub offer_valid_actions: bool,
    /// The simulator calls every step makes (default: the Python package's).
    pub calls: Calls,
    /// Start JVMs with constant identity hashes ([`DETERMINISTIC_JVM_OPTIONS`](super::DETERMINISTIC_JVM_OPTIONS)),
    /// so that an episode depends only on the calls made since `reset` and replays after a crash
    /// are exact (default). `false` starts the JVM as the Python package does, whose episodes
    /// depend on what the JVM ran before.
    pub deterministic_jvm: bool,
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
            calls: Calls::Package,
            deterministic_jvm: true,
            max_steps: None,
            expert: CorruptionConfig::default(),
        }
    }
}

impl SciWorldConfig {
    /// The JVM options this configuration starts simulators with.
    pub fn jvm_options(&self) -> &'static [&'static str] {
        if self.deterministic_jvm {
            &super::DETERMINISTIC_JVM_OPTIONS
        } else {
            &[]
        }
    }

    /// Refuses settings that cannot work together.
    pub fn validate(&self) -> Result<(), String> {
        if self.offer_valid_actions && self.calls == Calls::Minimal {
            return Err("[environment] offer_valid_actions = true needs calls = \"package\" (calls = \"minimal\" \
                        never fetches the valid actions)"
                .into());
        }
        Ok(())
    }
}
