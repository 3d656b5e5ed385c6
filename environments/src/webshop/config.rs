//! WebShop settings (`[environment]` of a WebShop experiment).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Settings of the WebShop environment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebShopConfig {
    /// A folder with WebShop's original data (`items_shuffle_1000.json` or `items_shuffle.json`,
    /// and `items_ins_v2_1000.json` or `items_ins_v2.json`): runs the real benchmark. Without it,
    /// the `webshop-synth` catalog is built from `attributes_file`.
    pub data_dir: Option<PathBuf>,
    /// The attribute file `webshop-synth` is built from (default:
    /// `shared/data/webshop/items_ins_v2_1000.json` beside the repository).
    pub attributes_file: Option<PathBuf>,
    /// Seed of the `webshop-synth` catalog.
    pub synth_seed: u64,
    /// Seed of product prices within ranges and of goal price limits.
    pub price_seed: u64,
    /// Which goals to serve (default: `human` when `data_dir` holds `items_human_ins.json`,
    /// as the benchmark is evaluated; otherwise `synthetic`).
    pub goals: Option<GoalSet>,
    /// The first this many goals (in the original's shuffled order) are the test split (default:
    /// 500 for human goals, WebShop's split; 200 for synthetic goals, AgentGym's).
    pub test_goals: Option<usize>,
    /// The next this many goals are the dev split, used to choose among checkpoints (default:
    /// 1000 for human goals, WebShop's 500..1500; none for synthetic goals).
    pub dev_goals: Option<usize>,
    /// Use at most this many training goals (all if absent).
    pub max_train_goals: Option<usize>,
    /// Step limit per episode (ETO and AgentGym: 10).
    pub max_steps: usize,
    /// Whether to offer the page's clickables (and `search[...]`) as valid actions.
    pub offer_valid_actions: bool,
}

/// Which of WebShop's goal sets a run serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GoalSet {
    /// `get_synthetic_goals`: each product instruction × every combination of its options.
    Synthetic,
    /// `get_human_goals`: the crowd-written instructions of `items_human_ins.json`.
    Human,
}

impl GoalSet {
    /// `(test, dev)` goal counts of the benchmark's split for this goal set.
    pub fn default_split(self) -> (usize, usize) {
        match self {
            GoalSet::Synthetic => (200, 0),
            GoalSet::Human => (500, 1000),
        }
    }
}

/// The file of human instructions in a WebShop data folder.
pub const HUMAN_INSTRUCTIONS_FILE: &str = "items_human_ins.json";

impl WebShopConfig {
    /// The goal set this configuration serves (see [`WebShopConfig::goals`]).
    pub fn goal_set(&self) -> GoalSet {
        self.goals.unwrap_or(match &self.data_dir {
            Some(dir) if dir.join(HUMAN_INSTRUCTIONS_FILE).is_file() => GoalSet::Human,
            _ => GoalSet::Synthetic,
        })
    }

    /// `(test, dev)` goal counts: the configured ones, else the goal set's benchmark split.
    pub fn split(&self) -> (usize, usize) {
        let (test, dev) = self.goal_set().default_split();
        (self.test_goals.unwrap_or(test), self.dev_goals.unwrap_or(dev))
    }
}

impl Default for WebShopConfig {
    fn default() -> Self {
        WebShopConfig {
            data_dir: None,
            attributes_file: None,
            synth_seed: 0,
            price_seed: 0,
            goals: None,
            test_goals: None,
            dev_goals: None,
            max_train_goals: None,
            max_steps: 10,
            offer_valid_actions: false,
        }
    }
}
