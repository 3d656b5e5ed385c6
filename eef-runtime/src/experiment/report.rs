//! The run report: per-iteration rows per method and the paper-style best-iteration table.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::metrics::{ExploreStats, Metrics};

/// One iteration of one method.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IterationReport {
    /// 0 = after SFT.
    pub iteration: usize,
    /// What exploration found (none for iteration 0).
    pub explore: Option<ExploreStats>,
    /// Recovery states found (EEF's `D_r`).
    pub recovery_states: usize,
    /// Probed states left out because none of their runs was evidence.
    #[serde(default)]
    pub probes_dropped: usize,
    /// Examples in the training set used for this iteration.
    pub training_examples: usize,
    /// Turns that carried loss in that training set.
    pub trainable_turns: usize,
    /// Preference pairs selected.
    pub pairs: usize,
    /// Evaluation after this iteration's training.
    pub eval: Metrics,
}

/// One method's rows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MethodReport {
    /// The label (e.g. `EEF`, `RFT x6`).
    pub label: String,
    /// The selector's name.
    pub selector: String,
    /// Iteration 0 (SFT) first.
    pub iterations: Vec<IterationReport>,
}

impl MethodReport {
    /// The iteration with the best win rate (ties: the higher reward, then the earlier); the paper
    /// reports the best iteration.
    pub fn best(&self) -> Option<&IterationReport> {
        self.iterations.iter().min_by(|a, b| {
            b.eval
                .win_rate
                .total_cmp(&a.eval.win_rate)
                .then(b.eval.avg_reward.total_cmp(&a.eval.avg_reward))
                .then(a.iteration.cmp(&b.iteration))
        })
    }
}

/// The report of a whole run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The environment's name.
    pub environment: String,
    /// A note on the data (e.g. that a built-in or synthetic environment was used).
    pub note: Option<String>,
    /// The run directory.
    pub run_dir: String,
    /// Training tasks.
    pub train_tasks: usize,
    /// Evaluation tasks.
    pub eval_tasks: usize,
    /// The expert on the training tasks (its data).
    pub expert_train: Metrics,
    /// The expert on the evaluation tasks.
    pub expert_eval: Metrics,
    /// Per method.
    pub methods: Vec<MethodReport>,
}

fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

impl Report {
    /// The report as Markdown: per-iteration details, then the paper-style table.
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# Run report: {}\n", self.environment);
        if let Some(n) = &self.note {
            let _ = writeln!(s, "> {n}\n");
        }
        let _ = writeln!(
            s,
            "Run directory: `{}`; {} training tasks, {} evaluation tasks.\n",
            self.run_dir, self.train_tasks, self.eval_tasks
        );
        let _ = writeln!(
            s,
            "Expert: {} wins / {:.3} reward on training tasks ({} episodes; {} of its failures cut off by the step \
             limit, not ended by the environment); {} / {:.3} on evaluation tasks.\n",
            pct(self.expert_train.win_rate),
            self.expert_train.avg_reward,
            self.expert_train.episodes,
            self.expert_train.truncated,
            pct(self.expert_eval.win_rate),
            self.expert_eval.avg_reward
        );
        let _ = writeln!(s, "## Per iteration\n");
        let _ = writeln!(
            s,
            "| Method | Iter | Explore: s0 wins | Explore: expert-state wins | Broken runs | Recovery states | Probes dropped | Train examples | Trained turns | Win rate | Avg reward |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for m in &self.methods {
            for it in &m.iterations {
                let broken = it.explore.as_ref().map_or("-".to_owned(), |e| e.broken.to_string());
                let (s0, es) = match &it.explore {
                    Some(e) => (
                        format!("{}/{}", e.from_start_successes, e.from_start),
                        if e.from_expert_states == 0 {
                            "-".to_owned()
                        } else {
                            format!("{}/{}", e.from_expert_state_successes, e.from_expert_states)
                        },
                    ),
                    None => ("-".to_owned(), "-".to_owned()),
                };
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.3} |",
                    m.label,
                    it.iteration,
                    s0,
                    es,
                    broken,
                    it.recovery_states,
                    it.probes_dropped,
                    it.training_examples,
                    it.trainable_turns,
                    pct(it.eval.win_rate),
                    it.eval.avg_reward
                );
            }
        }
        let _ = writeln!(s, "\n## Best iteration per method (as the paper's table)\n");
        let _ = writeln!(s, "| Method | Best iter | Win rate | Avg reward |");
        let _ = writeln!(s, "|---|---:|---:|---:|");
        let _ = writeln!(
            s,
            "| Expert | - | {} | {:.3} |",
            pct(self.expert_eval.win_rate),
            self.expert_eval.avg_reward
        );
        for m in &self.methods {
            if let Some(b) = m.best() {
                let _ = writeln!(s, "| {} | {} | {} | {:.3} |", m.label, b.iteration, pct(b.eval.win_rate), b.eval.avg_reward);
            }
        }
        s
    }
}
