//! The run report: per-iteration rows per method and the paper-style best-iteration table.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::metrics::{ExploreStats, Metrics};

/// One iteration of one method.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IterationReport {
    /// 0 = after SFT.
    pub iteration: usize,
    /// What exploration found (none for iteration 0).
    pub explore: Option<ExploreStats>,
    /// Recovery states found (EEF's `D_r`) in this iteration.
    pub recovery_states: usize,
    /// Recovery states in the (accumulated) training set.
    #[serde(default)]
    pub recovery_states_total: usize,
    /// Distinct training tasks with a successful trajectory in the training set.
    #[serde(default)]
    pub tasks_solved: usize,
    /// Expert segments judged harmful (solvable → unsolvable) this iteration, masked from the loss.
    #[serde(default)]
    pub harmful_segments: usize,
    /// Probed states left out because none of their runs was evidence.
    #[serde(default)]
    pub probes_dropped: usize,
    /// Examples in the training set used for this iteration.
    pub training_examples: usize,
    /// Turns that carried loss in that training set.
    pub trainable_turns: usize,
    /// Preference pairs selected.
    pub pairs: usize,
    /// Evaluation after this iteration's training (the test split).
    pub eval: Metrics,
    /// The same on the dev split, when the run has one (what the best iteration is chosen on).
    #[serde(default)]
    pub dev: Option<Metrics>,
}

/// One method's rows.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MethodReport {
    /// The label (e.g. `EEF`, `RFT x6`).
    pub label: String,
    /// The selector's name.
    pub selector: String,
    /// Iteration 0 (SFT) first.
    pub iterations: Vec<IterationReport>,
}

impl MethodReport {
    /// The iteration to report, chosen without looking at the test split: the best on the dev
    /// split (win rate, then average reward, then the earlier iteration) when the run has one,
    /// else the final iteration. (The paper reports its best iteration.)
    pub fn best(&self) -> Option<&IterationReport> {
        if self.iterations.iter().all(|it| it.dev.is_some()) {
            let dev = |it: &IterationReport| it.dev.clone().unwrap_or_default();
            return self.iterations.iter().min_by(|a, b| {
                let (da, db) = (dev(a), dev(b));
                db.win_rate.total_cmp(&da.win_rate).then(db.avg_reward.total_cmp(&da.avg_reward)).then(a.iteration.cmp(&b.iteration))
            });
        }
        self.iterations.last()
    }
}

/// The report of a whole run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
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
    /// Dev tasks (the best iteration is chosen on them; 0: the final iteration is reported).
    #[serde(default)]
    pub dev_tasks: usize,
    /// The expert on the training tasks (its data).
    pub expert_train: Metrics,
    /// Per expert source (`[[expert.sources]]`), its data on the training tasks.
    #[serde(default)]
    pub expert_sources: Vec<(String, Metrics)>,
    /// The expert on the evaluation tasks.
    pub expert_eval: Metrics,
    /// Per method.
    pub methods: Vec<MethodReport>,
    /// Whether `plots/loss.svg` (the training loss per step) was written.
    #[serde(default)]
    pub loss_plot: bool,
}

fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

/// A rate with its 95% interval: `35.0% [28.1, 41.9]`.
fn pct_ci(x: f64, ci: [f64; 2]) -> String {
    format!("{:.1}% [{:.1}, {:.1}]", 100.0 * x, 100.0 * ci[0], 100.0 * ci[1])
}

/// A mean reward with its 95% interval: `0.612 [0.571, 0.650]`.
fn reward_ci(x: f64, ci: [f64; 2]) -> String {
    format!("{x:.3} [{:.3}, {:.3}]", ci[0], ci[1])
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
            "Run directory: `{}`; {} training tasks, {} dev tasks, {} evaluation (test) tasks. Iteration 0 is the \
             SFT policy, the starting point of every method. Rates come with 95% bootstrap intervals.\n",
            self.run_dir, self.train_tasks, self.dev_tasks, self.eval_tasks
        );
        let on_eval = if self.expert_eval.episodes > 0 {
            format!("{} / {:.3} on evaluation tasks", pct(self.expert_eval.win_rate), self.expert_eval.avg_reward)
        } else {
            "not run on the evaluation tasks (its data came from a file)".to_owned()
        };
        let _ = writeln!(
            s,
            "Expert: {} wins / {:.3} reward on training tasks ({} episodes; {} of its failures cut off by the step \
             limit, not ended by the environment); {on_eval}.\n",
            pct(self.expert_train.win_rate),
            self.expert_train.avg_reward,
            self.expert_train.episodes,
            self.expert_train.truncated,
        );
        if !self.expert_sources.is_empty() {
            let list: Vec<String> = self
                .expert_sources
                .iter()
                .map(|(name, m)| format!("`{name}` {} wins / {:.3} reward ({} trajectories)", pct(m.win_rate), m.avg_reward, m.episodes))
                .collect();
            let _ = writeln!(s, "Expert sources: {}.\n", list.join("; "));
        }
        let loss = if self.loss_plot { " ![training loss per optimizer step](plots/loss.svg)" } else { "" };
        let _ = writeln!(s, "![win rate per iteration](plots/win-rate.svg) ![average reward per iteration](plots/reward.svg){loss}\n");
        let _ = writeln!(s, "Live metrics (a line per optimizer step and per phase, written as the run goes): `metrics.jsonl`.\n");
        let _ = writeln!(s, "## Per iteration\n");
        let _ = writeln!(
            s,
            "| Method | Iter | Episodes simulated | Explore: s0 wins | Explore: expert-state wins | Broken runs | Recovery states (new / total) | Harmful segments | Probes dropped | Tasks solved in train set | Train examples | Trained turns | Pairs | Dev win rate | Win rate | Avg reward |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
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
                let dev = it.dev.as_ref().map_or("-".to_owned(), |d| pct(d.win_rate));
                let episodes = it.explore.as_ref().map_or("-".to_owned(), |e| e.episodes.to_string());
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} | {} | {} / {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    m.label,
                    it.iteration,
                    episodes,
                    s0,
                    es,
                    broken,
                    it.recovery_states,
                    it.recovery_states_total,
                    it.harmful_segments,
                    it.probes_dropped,
                    it.tasks_solved,
                    it.training_examples,
                    it.trainable_turns,
                    it.pairs,
                    dev,
                    pct_ci(it.eval.win_rate, it.eval.win_rate_ci),
                    reward_ci(it.eval.avg_reward, it.eval.avg_reward_ci)
                );
            }
        }
        let chosen = if self.dev_tasks > 0 {
            format!("chosen on the dev split ({} tasks), reported on the test split", self.dev_tasks)
        } else {
            "no dev split: the final iteration, never chosen on the test split".to_owned()
        };
        let _ = writeln!(s, "\n## Best iteration per method (as the paper's table; {chosen})\n");
        let _ = writeln!(s, "| Method | Best iter | Win rate | Avg reward | Broken episodes |");
        let _ = writeln!(s, "|---|---:|---:|---:|---:|");
        let broken = |m: &Metrics| format!("{} of {}", m.broken, m.episodes);
        if self.expert_eval.episodes > 0 {
            let _ = writeln!(
                s,
                "| Expert | - | {} | {} | {} |",
                pct_ci(self.expert_eval.win_rate, self.expert_eval.win_rate_ci),
                reward_ci(self.expert_eval.avg_reward, self.expert_eval.avg_reward_ci),
                broken(&self.expert_eval)
            );
        } else {
            // Expert data read from a file: the expert was not run on the test split; its
            // measured numbers are those of its data.
            let _ = writeln!(
                s,
                "| Expert (its data, training tasks; not run on test) | - | {} | {} | {} |",
                pct_ci(self.expert_train.win_rate, self.expert_train.win_rate_ci),
                reward_ci(self.expert_train.avg_reward, self.expert_train.avg_reward_ci),
                broken(&self.expert_train)
            );
        }
        for m in &self.methods {
            if let Some(b) = m.best() {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} |",
                    m.label,
                    b.iteration,
                    pct_ci(b.eval.win_rate, b.eval.win_rate_ci),
                    reward_ci(b.eval.avg_reward, b.eval.avg_reward_ci),
                    broken(&b.eval)
                );
            }
        }
        let _ = writeln!(s, "\n(Intervals: 95% bootstrap over the test tasks, every episode of a task kept together. A broken episode — an environment or policy failure — counts as a failure.)");
        self.paired_markdown(&mut s);
        s
    }

    /// The methods the others are compared with: SFT and the first plain RFT, when the run has
    /// them.
    pub(crate) fn baselines(&self) -> Vec<&MethodReport> {
        ["sft", "rft"].iter().filter_map(|sel| self.methods.iter().find(|m| m.selector == *sel)).collect()
    }

    /// Each method's reported iteration minus each baseline's, on the same test tasks, with
    /// paired-bootstrap intervals.
    fn paired_markdown(&self, s: &mut String) {
        let mut rows = Vec::new();
        for base in self.baselines() {
            let Some(b) = base.best() else { continue };
            for m in self.methods.iter().filter(|m| m.label != base.label && m.selector != "sft") {
                if let Some(d) = m.best().and_then(|x| super::metrics::paired(&x.eval, &b.eval)) {
                    rows.push(format!("| {} − {} | {} | {} |", m.label, base.label, d.tasks, d.cells()));
                }
            }
        }
        if rows.is_empty() {
            return;
        }
        let _ = writeln!(s, "\n## Paired differences (reported iterations, same test tasks)\n");
        let _ = writeln!(s, "| Difference | Tasks | Win rate | Avg reward |");
        let _ = writeln!(s, "|---|---:|---:|---:|");
        for r in rows {
            let _ = writeln!(s, "{r}");
        }
        let _ = writeln!(
            s,
            "\n(Each task's difference is one observation, resampled together: an interval that excludes 0 separates two methods even when their own intervals overlap.)"
        );
    }
}
