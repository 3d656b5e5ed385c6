//! The JSON bodies of AgentGym's environment-server protocol (see [`super`]).

use serde::{Deserialize, Serialize};

use crate::task::Task;

/// `POST /step`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepQuery {
    /// The environment.
    pub env_idx: u64,
    /// The action, as the agent wrote it.
    pub action: String,
}

/// The answer to `POST /step`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepResponse {
    /// The observation after the action.
    pub state: String,
    /// The step's reward.
    pub reward: f64,
    /// Whether the episode is over.
    pub done: bool,
    /// Always `null` (AgentGym's WebShop server sends none).
    #[serde(default)]
    pub info: Option<serde_json::Value>,
}

/// `POST /reset`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResetQuery {
    /// The environment.
    pub env_idx: u64,
    /// The task: its index (WebShop's goal index).
    #[serde(default)]
    pub session_id: Option<usize>,
    /// The reset seed (this project's extension; 0 when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

/// The answer to `GET /available_actions`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AvailableActions {
    /// Whether `search[...]` is possible.
    pub has_search_bar: bool,
    /// What can be clicked (`click[value]`); `"search"` when there is a search bar.
    pub clickables: Vec<String>,
    /// The environment's own list of valid actions (this project's extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_actions: Option<Vec<String>>,
}

impl AvailableActions {
    /// WebShop's view of a list of valid actions: `search[..]` gives the search bar,
    /// `click[x]` the clickable `x`; the list itself is kept.
    pub fn from_valid(valid: Option<Vec<String>>) -> Self {
        let list = valid.clone().unwrap_or_default();
        let has_search_bar = list.iter().any(|a| a.starts_with("search["));
        let mut clickables: Vec<String> = Vec::new();
        if has_search_bar {
            clickables.push("search".into());
        }
        clickables.extend(list.iter().filter_map(|a| a.strip_prefix("click[").and_then(|r| r.strip_suffix(']')).map(str::to_owned)));
        AvailableActions { has_search_bar, clickables, valid_actions: valid }
    }
}

/// One entry of `GET /tasks` (this project's extension).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskInfo {
    /// The task.
    pub task: Task,
    /// Its step limit.
    pub max_steps: usize,
}
