//! Evaluation and exploration statistics.

use serde::{Deserialize, Serialize};

use crate::trajectory::{StartState, Trajectory};

/// Evaluation metrics over a set of episodes (the paper's columns).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Episodes evaluated.
    pub episodes: usize,
    /// Share of episodes that succeeded (WebShop: reward = 1).
    pub win_rate: f64,
    /// Mean reward (WebShop: 0-1; SciWorld: score / 100).
    pub avg_reward: f64,
    /// Mean number of turns.
    pub avg_turns: f64,
    /// Failures cut off by the step limit rather than ended by the environment.
    #[serde(default)]
    pub truncated: usize,
    /// Episodes that ended in an environment or policy failure or a diverged replay (counted as
    /// failures in the rates).
    #[serde(default)]
    pub broken: usize,
}

impl Metrics {
    /// Metrics of `episodes`.
    pub fn of(episodes: &[Trajectory]) -> Self {
        let n = episodes.len();
        if n == 0 {
            return Metrics::default();
        }
        let nf = n as f64;
        Metrics {
            episodes: n,
            win_rate: episodes.iter().filter(|t| t.success).count() as f64 / nf,
            avg_reward: episodes.iter().map(|t| t.reward).sum::<f64>() / nf,
            avg_turns: episodes.iter().map(|t| t.turns.len() as f64).sum::<f64>() / nf,
            truncated: episodes.iter().filter(|t| t.truncated()).count(),
            broken: episodes.iter().filter(|t| !t.termination.is_evidence()).count(),
        }
    }
}

/// What an iteration's exploration found.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ExploreStats {
    /// Episodes run.
    pub episodes: usize,
    /// Episodes from task starts.
    pub from_start: usize,
    /// Successful episodes from task starts.
    pub from_start_successes: usize,
    /// Episodes from expert states.
    pub from_expert_states: usize,
    /// Successful episodes from expert states.
    pub from_expert_state_successes: usize,
    /// Episodes that are no evidence (environment or policy failure, diverged replay).
    #[serde(default)]
    pub broken: usize,
}

impl ExploreStats {
    /// Statistics of `explored`.
    pub fn of(explored: &[Trajectory]) -> Self {
        let mut s = ExploreStats { episodes: explored.len(), ..Default::default() };
        for t in explored {
            s.broken += usize::from(!t.termination.is_evidence());
            if t.start == StartState::TaskStart {
                s.from_start += 1;
                s.from_start_successes += usize::from(t.success);
            } else {
                s.from_expert_states += 1;
                s.from_expert_state_successes += usize::from(t.success);
            }
        }
        s
    }

    /// Success rate from task starts (0 if none).
    pub fn start_success_rate(&self) -> f64 {
        if self.from_start == 0 {
            0.0
        } else {
            self.from_start_successes as f64 / self.from_start as f64
        }
    }
}
