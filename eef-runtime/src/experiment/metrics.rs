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
    /// 95% bootstrap interval of the win rate (percentile method, [`BOOTSTRAP_RESAMPLES`]
    /// resamples of the episodes, fixed seed).
    #[serde(default)]
    pub win_rate_ci: [f64; 2],
    /// 95% bootstrap interval of the average reward.
    #[serde(default)]
    pub avg_reward_ci: [f64; 2],
}

/// Resamples behind the bootstrap intervals.
pub const BOOTSTRAP_RESAMPLES: usize = 2000;

/// The 95% percentile-bootstrap interval of the mean of `values` (deterministic: a fixed seed).
pub fn bootstrap_ci(values: &[f64]) -> [f64; 2] {
    use rand::Rng;
    let n = values.len();
    if n == 0 {
        return [0.0, 0.0];
    }
    let mut rng = crate::seed::rng(0xB007);
    let mut means: Vec<f64> = (0..BOOTSTRAP_RESAMPLES)
        .map(|_| (0..n).map(|_| values[rng.gen_range(0..n)]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    let at = |q: f64| means[((q * (BOOTSTRAP_RESAMPLES - 1) as f64).round() as usize).min(BOOTSTRAP_RESAMPLES - 1)];
    [at(0.025), at(0.975)]
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
            win_rate_ci: bootstrap_ci(&episodes.iter().map(|t| f64::from(u8::from(t.success))).collect::<Vec<_>>()),
            avg_reward_ci: bootstrap_ci(&episodes.iter().map(|t| t.reward).collect::<Vec<_>>()),
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

#[cfg(test)]
mod tests {
    use super::bootstrap_ci;

    #[test]
    fn bootstrap_intervals_cover_the_mean_and_shrink_with_more_episodes() {
        let small: Vec<f64> = (0..20).map(|i| f64::from(u8::from(i % 4 == 0))).collect();
        let large: Vec<f64> = (0..400).map(|i| f64::from(u8::from(i % 4 == 0))).collect();
        let [lo, hi] = bootstrap_ci(&small);
        assert!(lo < 0.25 && 0.25 < hi, "[{lo}, {hi}]");
        let [lo2, hi2] = bootstrap_ci(&large);
        assert!(lo2 < 0.25 && 0.25 < hi2 && hi2 - lo2 < (hi - lo) / 2.0, "[{lo2}, {hi2}] vs [{lo}, {hi}]");
        // Binomial standard error at n = 400: 0.0217; the 95% interval is about ±0.042.
        assert!(((hi2 - lo2) / 2.0 - 0.042).abs() < 0.008, "[{lo2}, {hi2}]");
        assert_eq!(bootstrap_ci(&small), bootstrap_ci(&small), "deterministic");
        assert_eq!(bootstrap_ci(&[]), [0.0, 0.0]);
    }
}
