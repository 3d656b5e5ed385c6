//! Selection: which trajectories enter the training set, and with which per-turn loss mask.
//!
//! A [`Selector`] does two things each iteration:
//! 1. [`Selector::plan`] names the states to explore from for a task (task start, states of expert
//!    trajectories, or nothing);
//! 2. [`Selector::select`] sees the task's expert and explored trajectories ([`TaskGroup`]) and
//!    returns a [`Selection`]: training examples with their loss masks, and preference pairs.
//!
//! Built in: [`Sft`] (expert successes), [`Rft`] (successes from task starts), [`Eef`] (the
//! paper's method) and [`Eto`] (ETO: DPO on preference pairs, as ETO's code builds them). Write your own with
//! [`#[selector]`](macro@crate::selector) or by implementing the trait.

mod choice;
mod eef;
mod eto;
mod params;
mod rft;
mod sft;

use serde::{Deserialize, Serialize};

pub use choice::SolutionChoice;
pub use eef::{classify_segments, probe_steps, Eef, ExpertFailures, Probe, Segment, SegmentKind, ShortTrajectories};
pub use eto::{Eto, REJECTED_EXTRA_TURNS};
pub use params::{configured, Configured, Params, SelectorParams};
pub use rft::Rft;
pub use sft::Sft;

use crate::task::Task;
use crate::trajectory::{StartState, Trajectory};

/// What a selector sees of one task.
#[derive(Clone, Copy, Debug)]
pub struct TaskGroup<'a> {
    /// The task.
    pub task: &'a Task,
    /// The expert's trajectories of this task (successful and failed).
    pub experts: &'a [Trajectory],
    /// This iteration's explorations of this task, from every planned start state.
    pub explored: &'a [Trajectory],
    /// 1-based iteration (0 for the SFT phase).
    pub iteration: usize,
}

impl<'a> TaskGroup<'a> {
    /// The expert trajectories that succeeded.
    pub fn expert_successes(&self) -> impl Iterator<Item = &'a Trajectory> {
        self.experts.iter().filter(|t| t.success)
    }

    /// The expert trajectories that failed.
    pub fn expert_failures(&self) -> impl Iterator<Item = &'a Trajectory> {
        self.experts.iter().filter(|t| !t.success)
    }

    /// Explorations that started from `start`.
    pub fn explored_from(&self, start: &'a StartState) -> impl Iterator<Item = &'a Trajectory> + 'a {
        self.explored.iter().filter(move |t| &t.start == start)
    }
}

/// What a selector sees when planning exploration for a task.
#[derive(Clone, Copy, Debug)]
pub struct PlanContext<'a> {
    /// The task.
    pub task: &'a Task,
    /// The expert's trajectories of this task.
    pub experts: &'a [Trajectory],
}

/// Why an example entered the training set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "detail")]
pub enum Reason {
    /// A successful expert trajectory (behaviour cloning data).
    ExpertSuccess,
    /// The policy's solution from the task start (`D_s0`).
    TaskStart,
    /// The policy's solution from a recovery state of a failed expert trajectory (`D_r`); the
    /// expert actions `beneficial_from..beneficial_to` led from an unsolvable to this solvable
    /// state and carry loss.
    Recovery {
        /// First beneficial expert action (the last state the policy could not solve).
        beneficial_from: usize,
        /// The recovery state (end of the beneficial segment, exclusive).
        beneficial_to: usize,
    },
    /// Chosen by a user-defined selector.
    Custom(String),
}

/// One training example: a trajectory whose turns carry the loss mask.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainingExample {
    /// The trajectory with `trainable` set per turn.
    pub trajectory: Trajectory,
    /// Why it was selected.
    pub reason: Reason,
}

/// A preference pair for DPO-style training (ETO).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PreferencePair {
    /// The task.
    pub task_id: crate::task::TaskId,
    /// The preferred trajectory.
    pub chosen: Trajectory,
    /// The rejected trajectory.
    pub rejected: Trajectory,
}

/// What a selector returns for one task.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Selection {
    /// Supervised examples with loss masks.
    pub examples: Vec<TrainingExample>,
    /// Preference pairs.
    pub pairs: Vec<PreferencePair>,
    /// How each probed expert segment was judged (EEF's beneficial/harmful labels).
    pub segments: Vec<Segment>,
    /// Probed states left out because no run from them is evidence (every run ended in an
    /// environment or policy failure, or its replay diverged).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dropped_probes: Vec<DroppedProbe>,
}

/// A probed state whose runs were all unusable, so it was not judged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DroppedProbe {
    /// The expert trajectory's id.
    pub expert: String,
    /// Expert actions replayed to reach the state (0 = task start).
    pub step: usize,
    /// Runs explored from it, none of them evidence.
    pub runs: usize,
}

impl Selection {
    /// Adds an example.
    pub fn push(&mut self, trajectory: Trajectory, reason: Reason) {
        self.examples.push(TrainingExample { trajectory, reason });
    }

    /// Appends another selection.
    pub fn extend(&mut self, other: Selection) {
        self.examples.extend(other.examples);
        self.pairs.extend(other.pairs);
        self.segments.extend(other.segments);
        self.dropped_probes.extend(other.dropped_probes);
    }

    /// Whether nothing was selected.
    pub fn is_empty(&self) -> bool {
        self.examples.is_empty() && self.pairs.is_empty()
    }

    /// A readable multi-line rendering (used by reports and snapshot tests).
    pub fn summary(&self) -> String {
        let mut out = String::new();
        for e in &self.examples {
            let why = match &e.reason {
                Reason::ExpertSuccess => "expert-success".to_owned(),
                Reason::TaskStart => "task-start".to_owned(),
                Reason::Recovery { beneficial_from, beneficial_to } => {
                    format!("recovery[{beneficial_from}..{beneficial_to}]")
                }
                Reason::Custom(s) => format!("custom:{s}"),
            };
            out.push_str(&format!("example {why}: {}\n", e.trajectory.summary()));
        }
        for p in &self.pairs {
            out.push_str(&format!("pair {}:\n  + {}\n  - {}\n", p.task_id, p.chosen.summary(), p.rejected.summary()));
        }
        for s in &self.segments {
            out.push_str(&format!("segment {} {}..{}: {:?}\n", s.expert, s.from, s.to, s.kind));
        }
        for d in &self.dropped_probes {
            out.push_str(&format!("dropped probe {} at {}: none of {} runs is evidence\n", d.expert, d.step, d.runs));
        }
        out
    }
}

/// How a method's iterations train on what its selector picked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Training {
    /// Supervised fine-tuning on the examples (accumulated over iterations unless
    /// `[experiment] accumulate = false`), from the model `[experiment] train_from` names,
    /// then DPO on the pairs when there are any (SFT, RFT, EEF).
    #[default]
    Supervised,
    /// DPO alone on this iteration's pairs, starting from the previous iteration's model (the
    /// SFT model at the first), which is also the DPO reference and this iteration's explorer;
    /// no supervised pass (ETO's `run_eto.sh`).
    Preferences,
}

/// A selection policy.
pub trait Selector: Send + Sync {
    /// The name used in configs and reports.
    fn name(&self) -> &str;

    /// The states to explore from for a task (each is sampled `samples` times, from the method's
    /// config). The default is the task start only.
    fn plan(&self, _ctx: &PlanContext<'_>) -> Vec<StartState> {
        vec![StartState::TaskStart]
    }

    /// What enters the training set from this task.
    fn select(&self, group: &TaskGroup<'_>) -> Selection;

    /// Whether this selector returns preference pairs, so that the policy must train on them
    /// (checked when a run is set up, before any exploration is spent).
    fn uses_preferences(&self) -> bool {
        false
    }

    /// How the method's iterations train ([`Training::Supervised`] unless the selector says
    /// otherwise).
    fn training(&self) -> Training {
        Training::Supervised
    }

    /// The sampling temperature this selector explores at when the method does not set one
    /// (`[[methods]] temperature`); `None` = `[rollout] temperature`. ETO explores greedily.
    fn explore_temperature(&self) -> Option<f32> {
        None
    }

    /// This selector as one method configures it with its `params` table (absent when the
    /// method has none): `Ok(None)` to run as registered, `Ok(Some(..))` for a configured copy.
    /// The default takes no parameters and refuses a table; `#[selector]` functions with a
    /// second argument read theirs ([`Params::parse`]); the built-in `eef` and `rft` lay the
    /// table over their `[eef]` / `[rft]` sections ([`Params::overlay`]).
    fn configure(&self, params: &Params<'_>) -> Result<Option<std::sync::Arc<dyn Selector>>, crate::config::ConfigError> {
        params.none(self.name()).map(|()| None)
    }
}

impl<S: Selector + ?Sized> Selector for std::sync::Arc<S> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn configure(&self, params: &Params<'_>) -> Result<Option<std::sync::Arc<dyn Selector>>, crate::config::ConfigError> {
        (**self).configure(params)
    }
    fn uses_preferences(&self) -> bool {
        (**self).uses_preferences()
    }
    fn training(&self) -> Training {
        (**self).training()
    }
    fn explore_temperature(&self) -> Option<f32> {
        (**self).explore_temperature()
    }
    fn plan(&self, ctx: &PlanContext<'_>) -> Vec<StartState> {
        (**self).plan(ctx)
    }
    fn select(&self, group: &TaskGroup<'_>) -> Selection {
        (**self).select(group)
    }
}

/// A copy of `t` with every turn before `from` masked and every turn from `from` on trainable.
pub fn mask_before(t: &Trajectory, from: usize) -> Trajectory {
    let mut t = t.clone();
    for (i, turn) in t.turns.iter_mut().enumerate() {
        turn.trainable = i >= from;
    }
    t
}
