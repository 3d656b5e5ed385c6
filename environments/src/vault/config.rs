//! The Vault's settings (`[environment]` in an experiment's TOML).

use serde::{Deserialize, Serialize};

/// Settings of the Vault environment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VaultConfig {
    /// Seed of the rulebook (glyph -> lever).
    pub world_seed: u64,
    /// Seed of the task generator.
    pub task_seed: u64,
    /// Training tasks.
    pub train_tasks: usize,
    /// Test tasks.
    pub test_tasks: usize,
    /// Share of hard tasks.
    pub hard_fraction: f64,
    /// Trapped rare-glyph doors in the first half of a hard task.
    pub rare_doors: usize,
    /// Number of levers (2-6).
    pub levers: usize,
    /// Share of common-glyph doors that are trapped.
    pub trapped_fraction: f64,
    /// Step limit per episode (default: 2 x doors + 2).
    pub max_steps: Option<usize>,
    /// Probability that the scripted expert pulls a random lever at a common door.
    pub expert_slip: f64,
}

impl Default for VaultConfig {
    fn default() -> Self {
        VaultConfig {
            world_seed: 0,
            task_seed: 1,
            train_tasks: 200,
            test_tasks: 100,
            hard_fraction: 0.4,
            rare_doors: 2,
            levers: 6,
            trapped_fraction: 0.3,
            max_steps: None,
            expert_slip: 0.0,
        }
    }
}
