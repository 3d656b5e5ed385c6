//! Trajectories: what an actor saw and did in one episode, with rewards and a per-turn loss mask.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::task::TaskId;

/// Who produced an action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Actor {
    /// The expert (a stronger model, a script, or recorded data).
    Expert,
    /// The policy being tuned.
    Policy,
}

/// Where an episode started.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum StartState {
    /// The task's initial state `s_0`.
    TaskStart,
    /// The state reached by replaying the first `step` actions of an expert trajectory.
    Expert {
        /// [`Trajectory::id`] of the expert trajectory.
        trajectory: String,
        /// How many expert actions were replayed (`k * l` in the paper's notation).
        step: usize,
    },
}

impl StartState {
    /// Number of replayed expert actions before the episode's own actions (0 for a task start).
    pub fn prefix_len(&self) -> usize {
        match self {
            StartState::TaskStart => 0,
            StartState::Expert { step, .. } => *step,
        }
    }
}

impl fmt::Display for StartState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartState::TaskStart => f.write_str("s0"),
            StartState::Expert { step, .. } => write!(f, "s{step}"),
        }
    }
}

/// Where a trajectory came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Source {
    /// Collected from the expert.
    Expert,
    /// Explored by the policy during an iteration.
    Exploration {
        /// The method (label) whose iteration explored it.
        method: String,
        /// 1-based iteration.
        iteration: usize,
    },
    /// An evaluation episode of the policy.
    Evaluation {
        /// The method (label) evaluated.
        method: String,
        /// Iteration evaluated (0 = after SFT).
        iteration: usize,
    },
    /// Imported from a file (ShareGPT/ETO or JSONL from elsewhere).
    Imported,
}

/// Why an episode ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "detail")]
pub enum Termination {
    /// The environment reported `done`.
    Done,
    /// The step limit was reached first.
    StepLimit,
    /// The environment failed and could not be restarted within the retry budget.
    EnvFailed(String),
    /// The policy failed to produce an action.
    PolicyFailed(String),
    /// Replaying recorded actions (an expert prefix, or the episode so far after an environment
    /// restart) gave another observation than the recorded one at turn `step`: the state the
    /// episode was meant to continue from could not be reached.
    ReplayDiverged {
        /// The first turn whose replayed observation differed.
        step: usize,
    },
    /// Replaying the expert prefix ended the episode after its `step` actions, as the recording
    /// did: the state is terminal and the policy had nothing to act on, so the episode says
    /// nothing about it (a probe there is not a probe).
    ReplayEnded {
        /// Expert actions replayed.
        step: usize,
    },
}

impl Termination {
    /// Whether the episode says something about the policy: it ran to the end or to the step
    /// limit from the intended state. Environment and policy failures, diverged replays and
    /// replays that ended the episode do not, and selection never counts them (a crash at an EEF probe is not an unsolvable state).
    pub fn is_evidence(&self) -> bool {
        matches!(self, Termination::Done | Termination::StepLimit)
    }
}

/// One turn: the observation the actor saw, the action it took, and the step's reward.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    /// The observation shown before the action.
    pub observation: String,
    /// Optional reasoning text that preceded the action (ReAct's `Thought:`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thought: Option<String>,
    /// The action as sent to the environment.
    pub action: String,
    /// Who produced the action.
    pub actor: Actor,
    /// The reward the environment returned for this step.
    pub reward: f64,
    /// Loss mask: whether this turn's action tokens carry loss when trained on.
    pub trainable: bool,
}

/// A full episode.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trajectory {
    /// Stable identifier, unique within a run (derived from task, source, start and sample).
    pub id: String,
    /// The task played.
    pub task_id: TaskId,
    /// The task's instruction.
    pub instruction: String,
    /// Where the trajectory came from.
    pub source: Source,
    /// The state the episode's own actions started from. Turns before
    /// [`StartState::prefix_len`] are the replayed expert prefix.
    pub start: StartState,
    /// Which of several samples from the same start this is (0-based).
    #[serde(default)]
    pub sample: usize,
    /// The seed the environment was reset with (the policy sampled from the episode job's own
    /// seed; they differ for probes from an expert state, which reset with the expert's).
    pub seed: u64,
    /// The turns, expert prefix first.
    pub turns: Vec<Turn>,
    /// The observation after the last action.
    pub final_observation: String,
    /// Why the episode ended.
    pub termination: Termination,
    /// The experiment reward (see [`crate::Reward`]).
    pub reward: f64,
    /// Whether the reward counts as a success.
    pub success: bool,
    /// Which expert source produced it (`[expert] sources`' name), for expert data read from
    /// files; absent for the run's own expert and for the policy's episodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<String>,
}

impl Trajectory {
    /// The turns taken after the start state (the episode's own actions).
    pub fn continuation(&self) -> &[Turn] {
        let k = self.start.prefix_len().min(self.turns.len());
        &self.turns[k..]
    }

    /// The environment reward of the last step (WebShop-style final reward), 0 if no step.
    pub fn last_step_reward(&self) -> f64 {
        self.turns.last().map_or(0.0, |t| t.reward)
    }

    /// The best step reward reached (SciWorld-style score), 0 if no step.
    pub fn best_step_reward(&self) -> f64 {
        self.turns.iter().map(|t| t.reward).fold(0.0, f64::max)
    }

    /// The actions, in order.
    pub fn actions(&self) -> impl Iterator<Item = &str> {
        self.turns.iter().map(|t| t.action.as_str())
    }

    /// Number of turns that carry loss.
    pub fn trainable_turns(&self) -> usize {
        self.turns.iter().filter(|t| t.trainable).count()
    }

    /// Whether the environment ended the episode (as opposed to a step limit or a failure).
    pub fn finished(&self) -> bool {
        self.termination == Termination::Done
    }

    /// Whether this is a failure cut off by the step limit rather than ended by the environment:
    /// for an expert, a truncation (ScienceWorld's gold path for melt needs 141 steps against
    /// ETO's limit of 80), not a mistake.
    pub fn truncated(&self) -> bool {
        !self.success && self.termination == Termination::StepLimit
    }

    /// A compact one-line rendering used in reports and snapshots:
    /// `task start [mask] actions -> reward`, where each action is prefixed with `E`/`P` for
    /// expert/policy and `+`/`-` for trainable/masked.
    pub fn summary(&self) -> String {
        let turns: Vec<String> = self
            .turns
            .iter()
            .map(|t| {
                let who = match t.actor {
                    Actor::Expert => 'E',
                    Actor::Policy => 'P',
                };
                let mask = if t.trainable { '+' } else { '-' };
                format!("{who}{mask}{}", t.action)
            })
            .collect();
        format!(
            "{} from {} #{}: {} -> {:.3}{}",
            self.task_id,
            self.start,
            self.sample,
            turns.join(" "),
            self.reward,
            if self.success { " (success)" } else { "" }
        )
    }
}
