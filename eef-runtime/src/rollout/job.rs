//! One episode to run.

use crate::task::Task;
use crate::trajectory::{Actor, Source, StartState, Trajectory, Turn};

/// One episode: a task, the state to start from and the seed.
#[derive(Clone, Debug, PartialEq)]
pub struct EpisodeJob {
    /// The resulting trajectory's id; unique within a run.
    pub id: String,
    /// The task.
    pub task: Task,
    /// Where the episode starts.
    pub start: StartState,
    /// The expert turns replayed to reach `start` (empty for a task start). Their actions are
    /// replayed; observations and rewards are taken from the replay itself.
    pub prefix: Vec<Turn>,
    /// The recorded observation of the state the prefix leads to (the expert's next turn's),
    /// when the recording went on from it: the replay must reach it, and must not end the
    /// episode there. `None` for a task start or a state with no recorded continuation.
    pub state_observation: Option<String>,
    /// Which sample from this start this is.
    pub sample: usize,
    /// Seed for every policy decision (and the environment reset when `reset_seed` is absent).
    pub seed: u64,
    /// Seed for the environment reset and the prefix replay: the expert trajectory's own seed
    /// when starting from one of its states, so that the replay reaches the recorded state in an
    /// environment whose reset depends on its seed. `None`: `seed`.
    pub reset_seed: Option<u64>,
    /// The expert source the prefix comes from (copied to the trajectory's `provenance`).
    pub provenance: Option<String>,
    /// Sampling temperature.
    pub temperature: f32,
    /// What the trajectory is recorded as.
    pub source: Source,
}

impl EpisodeJob {
    /// A job from the task start.
    pub fn from_start(task: Task, sample: usize, seed: u64, temperature: f32, source: Source) -> Self {
        let id = format!("{}/s0/{}", task.id, sample);
        EpisodeJob { id, task, start: StartState::TaskStart, prefix: Vec::new(), state_observation: None, sample, seed, reset_seed: None, provenance: None, temperature, source }
    }

    /// A job from a planned start state: from the task start, or from step `step` of one of
    /// `experts` (the task's expert trajectories), whose prefix is replayed with the expert's own
    /// seed and whose provenance the episode inherits. `None` when the start names an expert
    /// trajectory not among `experts`.
    #[allow(clippy::too_many_arguments)]
    pub fn from_plan(id: String, task: &Task, start: &StartState, experts: &[Trajectory], sample: usize, seed: u64, temperature: f32, source: Source) -> Option<Self> {
        let (prefix, state_observation, reset_seed, provenance) = match start {
            StartState::TaskStart => (Vec::new(), None, None, None),
            StartState::Expert { trajectory, step } => {
                let e = experts.iter().find(|e| &e.id == trajectory)?;
                let k = (*step).min(e.turns.len());
                (e.turns[..k].to_vec(), e.turns.get(k).map(|t| t.observation.clone()), Some(e.seed), e.provenance.clone())
            }
        };
        Some(EpisodeJob { id, task: task.clone(), start: start.clone(), prefix, state_observation, sample, seed, reset_seed, provenance, temperature, source })
    }

    /// The seed the environment is reset (and the prefix replayed) with.
    pub fn env_seed(&self) -> u64 {
        self.reset_seed.unwrap_or(self.seed)
    }

    /// Who acts in this episode after the prefix: the expert for [`Source::Expert`] jobs,
    /// otherwise the policy.
    pub fn actor(&self) -> Actor {
        if self.source == Source::Expert {
            Actor::Expert
        } else {
            Actor::Policy
        }
    }
}
