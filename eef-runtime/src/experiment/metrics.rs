//! Evaluation and exploration statistics.

use std::collections::BTreeMap;

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
    /// resamples of the **tasks**, every episode of a task kept together, fixed seed).
    #[serde(default)]
    pub win_rate_ci: [f64; 2],
    /// 95% bootstrap interval of the average reward (tasks resampled).
    #[serde(default)]
    pub avg_reward_ci: [f64; 2],
    /// Per task (by id): the share of its episodes that succeeded and their mean reward, for
    /// paired comparisons between methods on the same tasks ([`paired`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tasks: BTreeMap<String, [f64; 2]>,
}

/// One method's result minus another's on the tasks both were evaluated on, with 95%
/// paired-bootstrap intervals (the same resampled tasks for both sides).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PairedDifference {
    /// Tasks both evaluated.
    pub tasks: usize,
    /// Difference in win rate.
    pub win_rate: f64,
    /// Its 95% interval.
    pub win_rate_ci: [f64; 2],
    /// Difference in average reward.
    pub avg_reward: f64,
    /// Its 95% interval.
    pub avg_reward_ci: [f64; 2],
}

impl PairedDifference {
    /// The two Markdown cells of a difference: `+6.0 pts [+1.0, +11.0] | +0.031 [-0.010, +0.072]`.
    pub fn cells(&self) -> String {
        format!(
            "{:+.1} pts [{:+.1}, {:+.1}] | {:+.3} [{:+.3}, {:+.3}]",
            100.0 * self.win_rate,
            100.0 * self.win_rate_ci[0],
            100.0 * self.win_rate_ci[1],
            self.avg_reward,
            self.avg_reward_ci[0],
            self.avg_reward_ci[1]
        )
    }
}

/// `a − b` on their common tasks (`None` when they share none). Each task's difference is one
/// observation, so what the tasks have in common (some are hard for every method) cancels,
/// and the interval separates methods that overlapping per-method intervals cannot.
pub fn paired(a: &Metrics, b: &Metrics) -> Option<PairedDifference> {
    paired_within(&[(a, b)])
}

/// [`paired`] over several runs (seeds): each run's common tasks give its mean difference, the
/// runs' means are averaged, and the interval resamples tasks within each run
/// ([`bootstrap_ci_within`]). `None` when some run's two sides share no task.
pub fn paired_within(runs: &[(&Metrics, &Metrics)]) -> Option<PairedDifference> {
    let mut diffs: [Vec<Vec<f64>>; 2] = [Vec::new(), Vec::new()];
    for (a, b) in runs {
        for (i, d) in diffs.iter_mut().enumerate() {
            d.push(a.tasks.iter().filter_map(|(k, x)| b.tasks.get(k).map(|y| x[i] - y[i])).collect());
        }
    }
    if runs.is_empty() || diffs[0].iter().any(Vec::is_empty) {
        return None;
    }
    let mean = |g: &[Vec<f64>]| g.iter().map(|v| v.iter().sum::<f64>() / v.len() as f64).sum::<f64>() / g.len() as f64;
    Some(PairedDifference {
        tasks: diffs[0].iter().map(Vec::len).sum(),
        win_rate: mean(&diffs[0]),
        win_rate_ci: bootstrap_ci_within(&diffs[0]),
        avg_reward: mean(&diffs[1]),
        avg_reward_ci: bootstrap_ci_within(&diffs[1]),
    })
}

/// Resamples behind the bootstrap intervals.
pub const BOOTSTRAP_RESAMPLES: usize = 2000;

/// The 95% percentile-bootstrap interval of the mean of `values` (deterministic: a fixed seed).
pub fn bootstrap_ci(values: &[f64]) -> [f64; 2] {
    bootstrap_ci_within(std::slice::from_ref(&values.to_vec()))
}

/// The 95% percentile-bootstrap interval of the mean over `groups` of each group's mean, each
/// group resampled within itself (several seeds' runs: tasks resampled within each seed, the
/// seeds kept). Deterministic: a fixed seed. Empty groups are left out.
pub fn bootstrap_ci_within(groups: &[Vec<f64>]) -> [f64; 2] {
    use rand::Rng;
    let groups: Vec<&Vec<f64>> = groups.iter().filter(|g| !g.is_empty()).collect();
    if groups.is_empty() {
        return [0.0, 0.0];
    }
    let mut rng = crate::seed::rng(0xB007);
    let mut means: Vec<f64> = (0..BOOTSTRAP_RESAMPLES)
        .map(|_| {
            let sum: f64 = groups
                .iter()
                .map(|g| {
                    let n = g.len();
                    (0..n).map(|_| g[rng.gen_range(0..n)]).sum::<f64>() / n as f64
                })
                .sum();
            sum / groups.len() as f64
        })
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
        // Episodes of one task (`[eval] samples` > 1) are not independent: the unit resampled
        // is the task.
        let mut by_task: BTreeMap<String, (usize, f64, f64)> = BTreeMap::new();
        for t in episodes {
            let e = by_task.entry(t.task_id.to_string()).or_default();
            *e = (e.0 + 1, e.1 + f64::from(u8::from(t.success)), e.2 + t.reward);
        }
        let tasks: BTreeMap<String, [f64; 2]> = by_task.into_iter().map(|(k, (n, w, r))| (k, [w / n as f64, r / n as f64])).collect();
        let column = |i: usize| tasks.values().map(|v| v[i]).collect::<Vec<f64>>();
        Metrics {
            episodes: n,
            win_rate: episodes.iter().filter(|t| t.success).count() as f64 / nf,
            avg_reward: episodes.iter().map(|t| t.reward).sum::<f64>() / nf,
            avg_turns: episodes.iter().map(|t| t.turns.len() as f64).sum::<f64>() / nf,
            truncated: episodes.iter().filter(|t| t.truncated()).count(),
            broken: episodes.iter().filter(|t| !t.termination.is_evidence()).count(),
            win_rate_ci: bootstrap_ci(&column(0)),
            avg_reward_ci: bootstrap_ci(&column(1)),
            tasks,
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
    use super::*;
    use crate::trajectory::{Source, Termination};

    fn episode(task: usize, sample: usize, success: bool) -> Trajectory {
        Trajectory {
            id: format!("t{task}/{sample}"),
            task_id: format!("task-{task}").into(),
            instruction: String::new(),
            source: Source::Imported,
            start: StartState::TaskStart,
            sample,
            seed: 0,
            turns: Vec::new(),
            final_observation: String::new(),
            termination: Termination::Done,
            reward: f64::from(u8::from(success)),
            success,
            provenance: None,
        }
    }

    #[test]
    fn repeated_episodes_of_a_task_do_not_narrow_the_interval() {
        // 40 tasks, a quarter solved, each evaluated once or four times with the same outcome:
        // four samples of a task are one observation, not four.
        let once: Vec<Trajectory> = (0..40).map(|t| episode(t, 0, t % 4 == 0)).collect();
        let four: Vec<Trajectory> = (0..40).flat_map(|t| (0..4).map(move |s| episode(t, s, t % 4 == 0))).collect();
        let (a, b) = (Metrics::of(&once), Metrics::of(&four));
        assert_eq!(a.win_rate, b.win_rate);
        assert_eq!(b.tasks.len(), 40);
        let width = |m: &Metrics| m.win_rate_ci[1] - m.win_rate_ci[0];
        assert!((width(&a) - width(&b)).abs() < 1e-12, "{:?} vs {:?}", a.win_rate_ci, b.win_rate_ci);
        assert!(width(&b) > 0.2, "an interval over 40 tasks is wide: {:?}", b.win_rate_ci);
    }

    #[test]
    fn paired_differences_separate_what_separate_intervals_cannot() {
        // Both methods solve the same 20 easy tasks of 50; the second also solves 6 more.
        let a: Vec<Trajectory> = (0..50).map(|t| episode(t, 0, t < 26)).collect();
        let b: Vec<Trajectory> = (0..50).map(|t| episode(t, 0, t < 20)).collect();
        let (ma, mb) = (Metrics::of(&a), Metrics::of(&b));
        assert!(ma.win_rate_ci[0] < mb.win_rate_ci[1], "the separate intervals overlap: {:?} {:?}", ma.win_rate_ci, mb.win_rate_ci);
        let d = paired(&ma, &mb).unwrap();
        assert_eq!(d.tasks, 50);
        assert!((d.win_rate - 0.12).abs() < 1e-12);
        assert!(d.win_rate_ci[0] > 0.0, "the paired interval excludes 0: {:?}", d.win_rate_ci);
        let back = paired(&mb, &ma).unwrap();
        assert!(back.win_rate_ci[1] < 0.0);
        // Only common tasks count.
        let c: Vec<Trajectory> = (40..60).map(|t| episode(t, 0, true)).collect();
        assert_eq!(paired(&ma, &Metrics::of(&c)).unwrap().tasks, 10);
        assert!(paired(&ma, &Metrics::of(&(60..70).map(|t| episode(t, 0, true)).collect::<Vec<_>>())).is_none());
    }

    #[test]
    fn several_seeds_resample_tasks_within_each_seed() {
        // Three seeds' per-task outcomes: the interval reflects 3 x 40 tasks, far narrower than
        // an interval over three seed means could be, and it covers the mean.
        let seeds: Vec<Vec<f64>> = (0..3).map(|s| (0..40).map(|t| f64::from(u8::from((t + s) % 4 == 0))).collect()).collect();
        let [lo, hi] = bootstrap_ci_within(&seeds);
        assert!(lo < 0.25 && 0.25 < hi && hi - lo < 0.25, "[{lo}, {hi}]");
        assert_eq!(bootstrap_ci_within(&seeds[..1]), bootstrap_ci(&seeds[0]));
    }

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
