//! Several runs of one experiment with different seeds, summarised: each method's reported
//! iteration (chosen as in a single run) averaged over the seeds, with a 95% interval that
//! resamples the test tasks within each seed.

use std::fmt::Write as _;

use super::metrics::{bootstrap_ci, bootstrap_ci_within, paired_within, Metrics};
use super::report::Report;

/// Column `i` (0: success share, 1: reward) of each seed's per-task results, or `None` when a
/// seed's metrics carry no per-task results (a run written by an older version).
fn per_task(metrics: &[&Metrics], i: usize) -> Option<Vec<Vec<f64>>> {
    metrics.iter().map(|m| (!m.tasks.is_empty()).then(|| m.tasks.values().map(|v| v[i]).collect())).collect()
}

/// Mean over seeds of `values`, and its 95% interval: tasks resampled within each seed when
/// per-task results exist, else the seeds' values themselves.
fn summary(values: &[f64], tasks: Option<Vec<Vec<f64>>>) -> (f64, [f64; 2]) {
    let mean = values.iter().sum::<f64>() / values.len().max(1) as f64;
    let ci = match tasks {
        Some(groups) => bootstrap_ci_within(&groups),
        None => bootstrap_ci(values),
    };
    (mean, ci)
}

/// The reported iteration's test metrics of `label` in each report (`None` if one lacks it).
fn reported<'a>(reports: &'a [Report], label: &str) -> Option<Vec<&'a Metrics>> {
    reports.iter().map(|r| r.methods.iter().find(|x| x.label == label).and_then(|x| x.best()).map(|b| &b.eval)).collect()
}

/// The Markdown summary of `reports` (one per seed, `seeds[i]` for `reports[i]`): per method, the
/// mean over seeds of the reported iteration's test win rate and average reward, with a 95%
/// bootstrap interval (test tasks resampled within each seed), and every seed's own win rate and
/// reward; then each method's paired difference from SFT and RFT on the same tasks of the same
/// seeds.
pub fn seeds_markdown(seeds: &[u64], reports: &[Report]) -> String {
    let mut s = String::new();
    let Some(first) = reports.first() else {
        return s;
    };
    let _ = writeln!(s, "# {} over {} seeds ({})\n", first.environment, reports.len(), seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(", "));
    let _ = writeln!(
        s,
        "Each cell: the mean over seeds of each run's reported iteration (chosen as in a single run: on the dev split \
         when there is one), with a 95% bootstrap interval that resamples the test tasks within each seed; then each \
         seed's value.\n"
    );
    let _ = writeln!(s, "| Method | Win rate | Avg reward | Per seed (win rate / reward) |");
    let _ = writeln!(s, "|---|---:|---:|---|");
    let row = |s: &mut String, label: &str, metrics: &[&Metrics]| {
        let (w, wci) = summary(&metrics.iter().map(|m| m.win_rate).collect::<Vec<_>>(), per_task(metrics, 0));
        let (r, rci) = summary(&metrics.iter().map(|m| m.avg_reward).collect::<Vec<_>>(), per_task(metrics, 1));
        let each = metrics.iter().map(|m| format!("{:.1}% / {:.3}", 100.0 * m.win_rate, m.avg_reward)).collect::<Vec<_>>().join(", ");
        let _ = writeln!(
            s,
            "| {label} | {:.1}% [{:.1}, {:.1}] | {r:.3} [{:.3}, {:.3}] | {each} |",
            100.0 * w,
            100.0 * wci[0],
            100.0 * wci[1],
            rci[0],
            rci[1]
        );
    };
    if reports.iter().all(|r| r.expert_eval.episodes > 0) {
        row(&mut s, "Expert", &reports.iter().map(|r| &r.expert_eval).collect::<Vec<_>>());
    }
    for m in &first.methods {
        if let Some(metrics) = reported(reports, &m.label) {
            row(&mut s, &m.label, &metrics);
        }
    }
    paired_rows(&mut s, first, reports);
    s
}

/// Each method minus SFT and minus the first plain RFT, per task within each seed, averaged over
/// the seeds, with the interval resampling tasks within seeds.
fn paired_rows(s: &mut String, first: &Report, reports: &[Report]) {
    let mut rows = Vec::new();
    for base in first.baselines() {
        let Some(b) = reported(reports, &base.label) else { continue };
        for m in first.methods.iter().filter(|m| m.label != base.label && m.selector != "sft") {
            let Some(a) = reported(reports, &m.label) else { continue };
            let runs: Vec<(&Metrics, &Metrics)> = a.into_iter().zip(b.iter().copied()).collect();
            if let Some(d) = paired_within(&runs) {
                rows.push(format!("| {} − {} | {} |", m.label, base.label, d.cells()));
            }
        }
    }
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(s, "\nPaired differences (same test tasks of the same seeds; tasks resampled within each seed):\n");
    let _ = writeln!(s, "| Difference | Win rate | Avg reward |");
    let _ = writeln!(s, "|---|---:|---:|");
    for r in rows {
        let _ = writeln!(s, "{r}");
    }
}
