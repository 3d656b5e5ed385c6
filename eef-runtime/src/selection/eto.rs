//! `eto`: Exploration-based Trajectory Optimization (Song et al., 2024), as its code does it.
//!
//! Sources (ETO's repository): `run_eto.sh` (the loop) and `construct_preference.py`
//! (`build_preference`, the pair rule).

use std::cmp::Ordering;

use super::{PlanContext, PreferencePair, Selection, Selector, SolutionChoice, TaskGroup, Training};
use crate::trajectory::{StartState, Trajectory};

/// Rounds a rejected exploration may run past the expert's length (`construct_preference.py`:
/// `pred_trajs[key][:len(golden_trajs[key]) + 5*2]`, five human/gpt rounds).
pub const REJECTED_EXTRA_TURNS: usize = 5;

/// ETO's method. Each iteration explores once from the start of every task that has an expert
/// success (ETO's golden trajectory; other tasks cannot give a pair), greedily by default
/// ([`Selector::explore_temperature`]), and pairs each exploration that ran to an end with the
/// golden trajectory by reward:
/// - below the expert's: chosen = expert, rejected = the exploration cut to the expert's length
///   + [`REJECTED_EXTRA_TURNS`] turns;
/// - above the expert's: reversed (chosen = the exploration, rejected = the expert);
/// - equal: dropped.
///
/// Environment or policy failures and diverged replays give no pair (ETO skips explorations with
/// no reward). Every action of both sides is trainable: DPO compares whole trajectories.
///
/// It trains by preference alone ([`Training::Preferences`]): DPO on this iteration's pairs,
/// starting from the previous iteration's model (the SFT model at the first), which is also
/// the frozen reference and this iteration's explorer; no supervised examples.
#[derive(Clone, Copy, Debug, Default)]
pub struct Eto;

impl Eto {
    /// The golden trajectory of a task: its shortest expert success (ETO has one per task, the
    /// SFT data's).
    pub fn golden(experts: &[Trajectory]) -> Option<&Trajectory> {
        SolutionChoice::Shortest.pick(experts.iter().filter(|t| t.success))
    }

    /// The pair ETO builds from one exploration of a task with golden trajectory `golden`, or
    /// `None` for a tie or an exploration that is not evidence.
    pub fn pair(golden: &Trajectory, explored: &Trajectory) -> Option<PreferencePair> {
        if !explored.termination.is_evidence() {
            return None;
        }
        let (chosen, mut rejected) = match explored.reward.total_cmp(&golden.reward) {
            Ordering::Less => (golden, explored.clone()),
            Ordering::Greater => (explored, golden.clone()),
            Ordering::Equal => return None,
        };
        if std::ptr::eq(chosen, golden) {
            rejected.turns.truncate(golden.turns.len() + REJECTED_EXTRA_TURNS);
        }
        Some(PreferencePair {
            task_id: golden.task_id.clone(),
            chosen: super::mask_before(chosen, 0),
            rejected: super::mask_before(&rejected, 0),
        })
    }
}

impl Selector for Eto {
    fn name(&self) -> &str {
        "eto"
    }

    fn plan(&self, ctx: &PlanContext<'_>) -> Vec<StartState> {
        match Eto::golden(ctx.experts) {
            Some(_) => vec![StartState::TaskStart],
            None => Vec::new(),
        }
    }

    fn select(&self, group: &TaskGroup<'_>) -> Selection {
        let mut s = Selection::default();
        let Some(golden) = Eto::golden(group.experts) else {
            return s;
        };
        let start = StartState::TaskStart;
        s.pairs.extend(group.explored_from(&start).filter_map(|t| Eto::pair(golden, t)));
        s
    }

    fn uses_preferences(&self) -> bool {
        true
    }

    fn training(&self) -> Training {
        Training::Preferences
    }

    fn explore_temperature(&self) -> Option<f32> {
        Some(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::Task;
    use crate::trajectory::{Actor, Source, Termination, Turn};

    fn trajectory(id: &str, actor: Actor, actions: usize, reward: f64, termination: Termination) -> Trajectory {
        Trajectory {
            id: id.into(),
            task_id: "task-0".to_string().into(),
            instruction: "find the thing".into(),
            source: if actor == Actor::Expert { Source::Expert } else { Source::Exploration { method: "ETO".into(), iteration: 1 } },
            start: StartState::TaskStart,
            sample: 0,
            seed: 0,
            turns: (0..actions)
                .map(|i| Turn { observation: format!("o{i}"), thought: None, action: format!("a{i}"), reward: 0.0, actor, trainable: false })
                .collect(),
            final_observation: String::new(),
            success: reward >= 1.0,
            termination,
            reward,
            provenance: None,
        }
    }

    fn golden(reward: f64) -> Trajectory {
        Trajectory { success: true, ..trajectory("expert", Actor::Expert, 3, reward, Termination::Done) }
    }

    #[test]
    fn a_worse_exploration_is_rejected_and_cut_to_the_experts_length_plus_five() {
        let g = golden(1.0);
        let pred = trajectory("pred", Actor::Policy, 10, 0.4, Termination::StepLimit);
        let p = Eto::pair(&g, &pred).expect("below the expert's reward gives a pair");
        assert_eq!(p.chosen.id, "expert");
        assert_eq!(p.rejected.id, "pred");
        assert_eq!(p.chosen.turns.len(), 3);
        assert_eq!(p.rejected.turns.len(), 3 + REJECTED_EXTRA_TURNS);
        assert_eq!(p.rejected.turns.last().unwrap().action, "a7");
        assert!(p.chosen.turns.iter().chain(&p.rejected.turns).all(|t| t.trainable), "DPO compares whole trajectories");
        // A short failure is kept whole.
        let short = trajectory("short", Actor::Policy, 2, 0.0, Termination::Done);
        assert_eq!(Eto::pair(&g, &short).unwrap().rejected.turns.len(), 2);
    }

    #[test]
    fn a_better_exploration_reverses_the_pair_and_a_tie_is_dropped() {
        let g = golden(0.75);
        let better = trajectory("pred", Actor::Policy, 9, 0.9, Termination::Done);
        let p = Eto::pair(&g, &better).expect("above the expert's reward gives a reversed pair");
        assert_eq!((p.chosen.id.as_str(), p.rejected.id.as_str()), ("pred", "expert"));
        assert_eq!(p.chosen.turns.len(), 9, "the chosen side is never cut");
        let tie = trajectory("pred", Actor::Policy, 2, 0.75, Termination::Done);
        assert!(Eto::pair(&g, &tie).is_none());
    }

    #[test]
    fn etos_loop_and_hyper_parameters_are_the_defaults() {
        // run_eto.sh: explore with fastchat.json (temperature 0), DPO alone from the explorer,
        // batch 32, β 0.1 then 0.5, learning rate 1e-6 then 5e-7 against SFT's 2e-5, 3 epochs.
        assert_eq!(Eto.explore_temperature(), Some(0.0));
        assert_eq!(Eto.training(), Training::Preferences);
        let d = crate::policy::DpoConfig::default();
        assert_eq!((d.pairs_per_step, d.epochs), (32, 3));
        assert_eq!((d.beta_at(1), d.beta_at(2)), (0.1, 0.5));
        assert!((d.learning_rate_ratio_at(1) * 2e-5 - 1e-6).abs() < 1e-15);
        assert!((d.learning_rate_ratio_at(2) * 2e-5 - 5e-7).abs() < 1e-15);
        assert!((d.learning_rate_ratio_at(3) - d.learning_rate_ratio_at(2)).abs() < 1e-15);
    }

    #[test]
    fn broken_explorations_give_no_pair() {
        let g = golden(1.0);
        for termination in [Termination::EnvFailed("crash".into()), Termination::PolicyFailed("no answer".into()), Termination::ReplayDiverged { step: 0 }] {
            let pred = trajectory("pred", Actor::Policy, 2, 0.0, termination.clone());
            assert!(Eto::pair(&g, &pred).is_none(), "{termination:?}");
        }
    }

    #[test]
    fn only_tasks_with_a_golden_trajectory_are_explored_and_paired() {
        let task = Task::new("task-0", "find the thing", crate::task::Split::Train, 0);
        let failed = trajectory("expert-failed", Actor::Expert, 4, 0.2, Termination::Done);
        assert!(Eto.plan(&PlanContext { task: &task, experts: std::slice::from_ref(&failed) }).is_empty());
        let pred = trajectory("pred", Actor::Policy, 2, 0.0, Termination::Done);
        let group = TaskGroup { task: &task, experts: std::slice::from_ref(&failed), explored: std::slice::from_ref(&pred), iteration: 1 };
        assert!(Eto.select(&group).is_empty());

        let experts = [failed, golden(1.0), Trajectory { id: "longer".into(), ..trajectory("x", Actor::Expert, 5, 1.0, Termination::Done) }];
        assert_eq!(Eto.plan(&PlanContext { task: &task, experts: &experts }), vec![StartState::TaskStart]);
        let group = TaskGroup { task: &task, experts: &experts, explored: std::slice::from_ref(&pred), iteration: 1 };
        let s = Eto.select(&group);
        assert!(s.examples.is_empty(), "ETO trains by preference alone");
        assert_eq!(s.pairs.len(), 1);
        assert_eq!(s.pairs[0].chosen.id, "expert", "the golden trajectory is the shortest expert success");
    }
}
