//! `eto`: ETO-style preference pairs (Song et al., 2024).

use super::{PreferencePair, Selection, Selector, SolutionChoice, TaskGroup};
use crate::trajectory::StartState;

/// Explores from every task start and pairs each failed exploration with the task's expert
/// success (chosen = expert, rejected = policy failure), for DPO training (`[train.dpo]`). Every
/// action of both sides is trainable (DPO compares the likelihoods of whole trajectories). The
/// expert's successes are also kept as supervised examples, so that training from the base
/// policy keeps the behaviour-cloning data.
#[derive(Clone, Copy, Debug, Default)]
pub struct Eto;

impl Selector for Eto {
    fn name(&self) -> &str {
        "eto"
    }

    fn select(&self, group: &TaskGroup<'_>) -> Selection {
        let mut s = super::Sft.select(group);
        let Some(chosen) = SolutionChoice::Shortest.pick(group.expert_successes()) else {
            return s;
        };
        let start = StartState::TaskStart;
        let chosen = super::mask_before(chosen, 0);
        for rejected in group.explored_from(&start).filter(|t| !t.success) {
            s.pairs.push(PreferencePair {
                task_id: group.task.id.clone(),
                chosen: chosen.clone(),
                rejected: super::mask_before(rejected, 0),
            });
        }
        s
    }

    fn uses_preferences(&self) -> bool {
        true
    }
}
