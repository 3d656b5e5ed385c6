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
    /// The first this many (shuffled) goals are the test split (AgentGym: 200).
    pub test_goals: usize,
    /// Use at most this many training goals (all if absent).
    pub max_train_goals: Option<usize>,
    /// Step limit per episode (ETO and AgentGym: 10).
    pub max_steps: usize,
    /// Whether to offer the page's clickables (and `search[...]`) as valid actions.
    pub offer_valid_actions: bool,
}

impl Default for WebShopConfig {
    fn default() -> Self {
        WebShopConfig {
            data_dir: None,
            attributes_file: None,
            synth_seed: 0,
            price_seed: 0,
            test_goals: 200,
            max_train_goals: None,
            max_steps: 10,
            offer_valid_actions: false,
        }
    }
}
