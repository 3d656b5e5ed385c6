//! `rft`: rejection-sampling fine-tuning, the paper's main baseline.

use serde::{Deserialize, Serialize};

use super::{mask_before, Reason, Selection, Selector, SolutionChoice, Sft, TaskGroup};
use crate::trajectory::StartState;

/// Explores from every task start and keeps one successful solution per task
/// (plus, by default, the expert's successes, as EEF's training set does).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rft {
    /// How the one solution per task is chosen.
    pub choice: SolutionChoice,
    /// Whether the expert's successful trajectories are part of the training set.
    pub include_expert_successes: bool,
}

impl Default for Rft {
    fn default() -> Self {
        Rft { choice: SolutionChoice::Shortest, include_expert_successes: true }
    }
}

impl Selector for Rft {
    fn name(&self) -> &str {
        "rft"
    }

    /// `params` keys replace the `[rft]` section's for this method (e.g. `params = { states = 3 }`).
    fn configure(&self, params: &super::Params<'_>) -> Result<Option<std::sync::Arc<dyn Selector>>, crate::config::ConfigError> {
        if params.is_absent() {
            return Ok(None);
        }
        Ok(Some(std::sync::Arc::new(params.overlay(self)?)))
    }

    fn select(&self, group: &TaskGroup<'_>) -> Selection {
        let mut s = if self.include_expert_successes { Sft.select(group) } else { Selection::default() };
        let start = StartState::TaskStart;
        if let Some(best) = self.choice.pick(group.explored_from(&start).filter(|t| t.success)) {
            s.push(mask_before(best, 0), Reason::TaskStart);
        }
        s
    }
}
