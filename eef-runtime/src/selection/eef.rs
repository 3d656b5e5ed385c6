//! `eef`: Exploring Expert Failures (Lan et al., 2025).
//!
//! For every failed expert trajectory `τ` the policy is explored from `M` evenly spaced states
//! `s_l, s_2l, …, s_Ml` with `l = ⌊|τ| / (M+1)⌋` (plus the task start `s_0`). A probed state is
//! *solvable* if some exploration from it succeeded. Walking the probes in order:
//! - unsolvable → solvable: the expert actions in between are **beneficial**; the later state is
//!   a **recovery state**, and one solution from it enters the training set with the beneficial
//!   expert actions and the policy's continuation trainable and everything earlier masked;
//! - solvable → unsolvable: the expert actions in between are **harmful**; they are never trained
//!   on (they stay masked in any example that contains them as context);
//! - solvable → solvable / unsolvable → unsolvable: neutral / unresolved, masked.
//!
//! The task start, when solvable, contributes one solution as RFT does (`D_s0`), and by default the
//! expert's successes are part of the training set.

use serde::{Deserialize, Serialize};

use super::{mask_before, DroppedProbe, PlanContext, Reason, Selection, Selector, SolutionChoice, Sft, TaskGroup};
use crate::trajectory::{StartState, Trajectory};

/// What to do with failed expert trajectories too short for `M` distinct states
/// (`|τ| < M + 1`, so `l = 0`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShortTrajectories {
    /// Probe every intermediate state `s_1 … s_{|τ|-1}` (default).
    #[default]
    EveryState,
    /// Probe nothing beyond the task start.
    Skip,
}

/// Which failed expert trajectories EEF explores.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpertFailures {
    /// Every failed expert trajectory, as the paper (default).
    #[default]
    All,
    /// Only those the environment ended; failures cut off by the step limit (truncations, not
    /// mistakes: see [`Trajectory::truncated`]) are not probed.
    NotTruncated,
}

/// The EEF selector and its settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Eef {
    /// `M`: states probed per failed expert trajectory (paper: 5).
    pub states: usize,
    /// Handling of expert trajectories shorter than `M + 1` actions.
    pub short_trajectories: ShortTrajectories,
    /// How the one solution per important state is chosen.
    pub choice: SolutionChoice,
    /// Whether the expert's successful trajectories are part of the training set.
    pub include_expert_successes: bool,
    /// Whether solutions from task starts (`D_s0`) are part of the training set.
    pub include_task_starts: bool,
    /// Which failed expert trajectories are probed.
    pub expert_failures: ExpertFailures,
    /// Whether the expert actions of a segment that spans a dropped probe (a state with no
    /// usable run, so the segment joins its two neighbours) may be trained. `false` (default,
    /// conservative): they stay masked, since the dropped state might have split the segment
    /// into parts the paper would mask; the recovery example, if any, trains only the policy's
    /// continuation. `true`: the bridged segment is trained like any beneficial one.
    pub train_across_dropped_probes: bool,
}

impl Default for Eef {
    fn default() -> Self {
        Eef {
            states: 5,
            short_trajectories: ShortTrajectories::EveryState,
            choice: SolutionChoice::Shortest,
            include_expert_successes: true,
            include_task_starts: true,
            expert_failures: ExpertFailures::All,
            train_across_dropped_probes: false,
        }
    }
}

/// The probed states of an expert trajectory of `len` actions: `k·l` for `k = 1..=m`,
/// `l = ⌊len / (m+1)⌋`. Never 0 (the task start is probed separately) and never `len` (the
/// trajectory's end state). Sorted and without duplicates.
pub fn probe_steps(len: usize, m: usize, short: ShortTrajectories) -> Vec<usize> {
    if len < 2 || m == 0 {
        return Vec::new();
    }
    let l = len / (m + 1);
    if l == 0 {
        return match short {
            ShortTrajectories::EveryState => (1..len).collect(),
            ShortTrajectories::Skip => Vec::new(),
        };
    }
    (1..=m).map(|k| k * l).filter(|&s| s > 0 && s < len).collect()
}

/// One probed state and whether the policy solved it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    /// Expert actions replayed to reach the state (0 = task start).
    pub step: usize,
    /// Whether some exploration from the state succeeded.
    pub solvable: bool,
}

/// How a segment of expert actions between two consecutive probes is judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SegmentKind {
    /// Unsolvable → solvable: kept (trainable).
    Beneficial,
    /// Solvable → unsolvable: rejected (masked).
    Harmful,
    /// Solvable → solvable.
    Neutral,
    /// Unsolvable → unsolvable.
    Unresolved,
}

/// A judged segment `from..to` of an expert trajectory's actions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    /// The expert trajectory's id.
    pub expert: String,
    /// First action of the segment.
    pub from: usize,
    /// End of the segment (exclusive).
    pub to: usize,
    /// The judgement.
    pub kind: SegmentKind,
    /// Probed states strictly inside `from..to` that were dropped (no run from them was
    /// evidence), so this segment joins what would have been several.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spans_dropped: Vec<usize>,
}

/// Judges the segments between consecutive probes (which must be sorted by step).
pub fn classify_segments(expert: &str, probes: &[Probe]) -> Vec<Segment> {
    probes
        .windows(2)
        .map(|w| Segment {
            expert: expert.to_owned(),
            from: w[0].step,
            to: w[1].step,
            kind: match (w[0].solvable, w[1].solvable) {
                (false, true) => SegmentKind::Beneficial,
                (true, false) => SegmentKind::Harmful,
                (true, true) => SegmentKind::Neutral,
                (false, false) => SegmentKind::Unresolved,
            },
            spans_dropped: Vec::new(),
        })
        .collect()
}

impl Eef {
    /// EEF with `m` probed states per failed expert trajectory.
    pub fn with_states(m: usize) -> Self {
        Eef { states: m, ..Eef::default() }
    }

    /// Whether `expert` is a failure this selector probes: a run that ended (a crashed expert
    /// run or one whose policy failed is no expert failure).
    fn probes(&self, expert: &Trajectory) -> bool {
        !expert.success
            && expert.termination.is_evidence()
            && match self.expert_failures {
                ExpertFailures::All => true,
                ExpertFailures::NotTruncated => !expert.truncated(),
            }
    }

    fn start_of(expert: &Trajectory, step: usize) -> StartState {
        StartState::Expert { trajectory: expert.id.clone(), step }
    }

    /// Selects from one failed expert trajectory: its probes, segments and recovery examples.
    fn select_failure(&self, group: &TaskGroup<'_>, expert: &Trajectory, out: &mut Selection) {
        let task_start = StartState::TaskStart;
        let mut probes = Vec::new();
        let mut starts = vec![task_start.clone()];
        starts.extend(
            probe_steps(expert.turns.len(), self.states, self.short_trajectories)
                .into_iter()
                .map(|s| Self::start_of(expert, s)),
        );
        for start in &starts {
            let explored = group.explored_from(start).count();
            if explored == 0 {
                continue; // not explored (e.g. the prefix ended the episode): not a probe
            }
            // Only runs that played from the intended state are evidence: a crash, a policy
            // failure or a diverged replay says nothing about whether the state is solvable.
            let mut runs = group.explored_from(start).filter(|t| t.termination.is_evidence()).peekable();
            if runs.peek().is_none() {
                out.dropped_probes.push(DroppedProbe { expert: expert.id.clone(), step: start.prefix_len(), runs: explored });
                continue;
            }
            let solvable = runs.any(|t| t.success);
            probes.push(Probe { step: start.prefix_len(), solvable });
        }
        let dropped: Vec<usize> =
            out.dropped_probes.iter().filter(|d| d.expert == expert.id).map(|d| d.step).collect();
        for mut seg in classify_segments(&expert.id, &probes) {
            seg.spans_dropped = dropped.iter().copied().filter(|&d| seg.from < d && d < seg.to).collect();
            if seg.kind == SegmentKind::Beneficial {
                let start = Self::start_of(expert, seg.to);
                if let Some(best) = self.choice.pick(group.explored_from(&start).filter(|t| t.success)) {
                    // Expert actions before the beneficial segment stay as context, masked;
                    // the beneficial actions and the policy's continuation are trained (a
                    // segment across a dropped probe: only the continuation, by default).
                    let from = if seg.spans_dropped.is_empty() || self.train_across_dropped_probes { seg.from } else { seg.to };
                    out.push(mask_before(best, from), Reason::Recovery { beneficial_from: seg.from, beneficial_to: seg.to });
                }
            }
            out.segments.push(seg);
        }
    }
}

impl Selector for Eef {
    fn name(&self) -> &str {
        "eef"
    }

    /// `params` keys replace the `[eef]` section's for this method (e.g. `params = { states = 3 }`).
    fn configure(&self, params: &super::Params<'_>) -> Result<Option<std::sync::Arc<dyn Selector>>, crate::config::ConfigError> {
        if params.is_absent() {
            return Ok(None);
        }
        Ok(Some(std::sync::Arc::new(params.overlay(self)?)))
    }

    fn plan(&self, ctx: &PlanContext<'_>) -> Vec<StartState> {
        let mut starts = vec![StartState::TaskStart];
        for expert in ctx.experts.iter().filter(|t| self.probes(t)) {
            for step in probe_steps(expert.turns.len(), self.states, self.short_trajectories) {
                starts.push(Self::start_of(expert, step));
            }
        }
        starts
    }

    fn select(&self, group: &TaskGroup<'_>) -> Selection {
        let mut out = if self.include_expert_successes { Sft.select(group) } else { Selection::default() };
        if self.include_task_starts {
            let start = StartState::TaskStart;
            if let Some(best) = self.choice.pick(group.explored_from(&start).filter(|t| t.success)) {
                out.push(mask_before(best, 0), Reason::TaskStart);
            }
        }
        for expert in group.expert_failures().filter(|t| self.probes(t)) {
            self.select_failure(group, expert, &mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::Task;
    use crate::trajectory::{Actor, Source, Termination, Turn};

    #[test]
    fn evenly_spaced_states() {
        // |τ| = 12, M = 5: l = 2 -> s2, s4, s6, s8, s10.
        assert_eq!(probe_steps(12, 5, ShortTrajectories::EveryState), vec![2, 4, 6, 8, 10]);
        // |τ| = 13: l = 2 still.
        assert_eq!(probe_steps(13, 5, ShortTrajectories::EveryState), vec![2, 4, 6, 8, 10]);
        // |τ| = 6 = M + 1: l = 1 -> s1..s5.
        assert_eq!(probe_steps(6, 5, ShortTrajectories::EveryState), vec![1, 2, 3, 4, 5]);
        // M = 2, |τ| = 10: l = 3 -> s3, s6.
        assert_eq!(probe_steps(10, 2, ShortTrajectories::EveryState), vec![3, 6]);
    }

    #[test]
    fn short_trajectories() {
        // |τ| = 4 < M + 1: l = 0.
        assert_eq!(probe_steps(4, 5, ShortTrajectories::EveryState), vec![1, 2, 3]);
        assert_eq!(probe_steps(4, 5, ShortTrajectories::Skip), Vec::<usize>::new());
        assert_eq!(probe_steps(1, 5, ShortTrajectories::EveryState), Vec::<usize>::new());
        assert_eq!(probe_steps(0, 5, ShortTrajectories::EveryState), Vec::<usize>::new());
        assert_eq!(probe_steps(9, 0, ShortTrajectories::EveryState), Vec::<usize>::new());
    }

    fn probes(bits: &[(usize, bool)]) -> Vec<Probe> {
        bits.iter().map(|&(step, solvable)| Probe { step, solvable }).collect()
    }

    #[test]
    fn paper_figure_one() {
        // Fails from s0 and s2l, succeeds from sl and s3l (l = 2).
        let segs = classify_segments("e", &probes(&[(0, false), (2, true), (4, false), (6, true)]));
        let kinds: Vec<_> = segs.iter().map(|s| (s.from, s.to, s.kind)).collect();
        assert_eq!(
            kinds,
            vec![
                (0, 2, SegmentKind::Beneficial),
                (2, 4, SegmentKind::Harmful),
                (4, 6, SegmentKind::Beneficial)
            ]
        );
    }

    #[test]
    fn all_and_none_solvable() {
        let all = classify_segments("e", &probes(&[(0, true), (1, true), (2, true)]));
        assert!(all.iter().all(|s| s.kind == SegmentKind::Neutral));
        let none = classify_segments("e", &probes(&[(0, false), (1, false), (2, false)]));
        assert!(none.iter().all(|s| s.kind == SegmentKind::Unresolved));
        assert!(classify_segments("e", &probes(&[(0, true)])).is_empty());
    }

    fn trajectory(id: &str, start: StartState, turns: usize, success: bool, termination: Termination) -> Trajectory {
        let prefix = start.prefix_len();
        let turn = |i: usize| Turn {
            observation: format!("o{i}"),
            thought: None,
            action: format!("a{i}"),
            actor: if i < prefix { Actor::Expert } else { Actor::Policy },
            reward: 0.0,
            trainable: false,
        };
        Trajectory {
            id: id.into(),
            task_id: "t".into(),
            instruction: String::new(),
            source: Source::Expert,
            start,
            sample: 0,
            seed: 0,
            turns: (0..turns).map(turn).collect(),
            final_observation: String::new(),
            termination,
            reward: f64::from(u8::from(success)),
            success,
            provenance: None,
        }
    }

    /// An expert failure of 12 actions (probes s2, s4, …, s10) and explorations: fails from the
    /// task start; from s2 every run crashed; succeeds from s4.
    fn crashed_probe_group() -> (Task, Vec<Trajectory>, Vec<Trajectory>) {
        let task = Task::new("t", "", crate::task::Split::Train, 0);
        let expert = trajectory("e", StartState::TaskStart, 12, false, Termination::Done);
        let at = |step| StartState::Expert { trajectory: "e".into(), step };
        let explored = vec![
            trajectory("s0", StartState::TaskStart, 5, false, Termination::Done),
            trajectory("s2a", at(2), 3, false, Termination::EnvFailed("the JVM died".into())),
            trajectory("s2b", at(2), 2, false, Termination::ReplayDiverged { step: 1 }),
            trajectory("s4", at(4), 8, true, Termination::Done),
        ];
        (task, vec![expert], explored)
    }

    #[test]
    fn runs_that_are_no_evidence_drop_the_probe() {
        let (task, experts, explored) = crashed_probe_group();
        let group = TaskGroup { task: &task, experts: &experts, explored: &explored, iteration: 1 };
        let out = Eef::default().select(&group);
        // s2 is dropped, not judged unsolvable: the beneficial segment is s0..s4, not s2..s4.
        assert_eq!(out.dropped_probes, vec![DroppedProbe { expert: "e".into(), step: 2, runs: 2 }]);
        let segs: Vec<_> = out.segments.iter().map(|s| (s.from, s.to, s.kind)).collect();
        assert_eq!(segs, vec![(0, 4, SegmentKind::Beneficial)]);
        let recovery: Vec<_> = out.examples.iter().filter(|e| matches!(e.reason, Reason::Recovery { .. })).collect();
        assert_eq!(recovery.len(), 1);
        assert_eq!(recovery[0].reason, Reason::Recovery { beneficial_from: 0, beneficial_to: 4 });
        assert_eq!(out.segments[0].spans_dropped, vec![2]);
        // Conservative by default: the bridged expert actions s0..s4 stay masked, only the
        // policy's continuation from s4 is trained.
        let trainable: Vec<bool> = recovery[0].trajectory.turns.iter().map(|t| t.trainable).collect();
        assert_eq!(trainable, [vec![false; 4], vec![true; 4]].concat());
        // Asked for, the bridged segment is trained like any beneficial one.
        let bridging = Eef { train_across_dropped_probes: true, ..Eef::default() }.select(&group);
        let r = bridging.examples.iter().find(|e| matches!(e.reason, Reason::Recovery { .. })).unwrap();
        assert!(r.trajectory.turns.iter().all(|t| t.trainable));
    }

    #[test]
    fn a_crashed_expert_run_is_not_an_expert_failure() {
        let task = Task::new("t", "", crate::task::Split::Train, 0);
        let crashed = trajectory("crashed", StartState::TaskStart, 12, false, Termination::EnvFailed("the JVM died".into()));
        let no_answer = trajectory("silent", StartState::TaskStart, 12, false, Termination::PolicyFailed("no answer".into()));
        let experts = [crashed, no_answer];
        let eef = Eef::default();
        assert_eq!(eef.plan(&PlanContext { task: &task, experts: &experts }), vec![StartState::TaskStart], "nothing of theirs is probed");
        let explored = [trajectory("s0", StartState::TaskStart, 3, false, Termination::Done)];
        let out = eef.select(&TaskGroup { task: &task, experts: &experts, explored: &explored, iteration: 1 });
        assert!(out.segments.is_empty() && out.dropped_probes.is_empty(), "{}", out.summary());
    }

    #[test]
    fn truncated_expert_failures_are_told_apart() {
        let task = Task::new("t", "", crate::task::Split::Train, 0);
        let truncated = trajectory("cut", StartState::TaskStart, 12, false, Termination::StepLimit);
        let mistaken = trajectory("wrong", StartState::TaskStart, 12, false, Termination::Done);
        assert!(truncated.truncated() && !mistaken.truncated());
        let experts = [truncated, mistaken];
        let ctx = PlanContext { task: &task, experts: &experts };
        let probed = |eef: &Eef| {
            eef.plan(&ctx)
                .iter()
                .filter_map(|s| match s {
                    StartState::Expert { trajectory, .. } => Some(trajectory.clone()),
                    StartState::TaskStart => None,
                })
                .collect::<std::collections::BTreeSet<_>>()
        };
        assert_eq!(probed(&Eef::default()).len(), 2, "the paper probes every failure");
        let skip = Eef { expert_failures: ExpertFailures::NotTruncated, ..Eef::default() };
        assert_eq!(probed(&skip).into_iter().collect::<Vec<_>>(), vec!["wrong".to_owned()]);
    }
}
