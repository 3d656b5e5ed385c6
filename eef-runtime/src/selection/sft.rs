//! `sft`: behaviour cloning on the expert's successful trajectories.

use super::{mask_before, PlanContext, Reason, Selection, Selector, TaskGroup};
use crate::trajectory::StartState;

/// Selects every successful expert trajectory, all action turns trainable. Explores nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sft;

impl Selector for Sft {
    fn name(&self) -> &str {
        "sft"
    }

    fn plan(&self, _ctx: &PlanContext<'_>) -> Vec<StartState> {
        Vec::new()
    }

    fn select(&self, group: &TaskGroup<'_>) -> Selection {
        let mut s = Selection::default();
        for t in group.expert_successes() {
            s.push(mask_before(t, 0), Reason::ExpertSuccess);
        }
        s
    }
}
