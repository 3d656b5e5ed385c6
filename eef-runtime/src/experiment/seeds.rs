//! Several runs of one experiment with different seeds, summarised: each method's reported
//! iteration (chosen as in a single run) averaged over the seeds, with a 95% interval.

use std::fmt::Write as _;

use super::metrics::bootstrap_ci;
use super::report::Report;

/// Mean and 95% bootstrap interval (over the seeds) of `values`.
fn summary(values: &[f64]) -> (f64, [f64; 2]) {
    let mean = values.iter().sum::<f64>() / values.len().max(1) as f64;
    (mean, bootstrap_ci(values))
}

/// The Markdown summary of `reports` (one per seed, `seeds[i]` for `reports[i]`): per method, the
/// mean over seeds of the reported iteration's test win rate and average reward, with the 95%
/// bootstrap interval over seeds, and every seed's own win rate and reward.
pub fn seeds_markdown(seeds: &[u64], reports: &[Report]) -> String {
    let mut s = String::new();
    let Some(first) = reports.first() else {
        return s;
    };
    let _ = writeln!(s, "# {} over {} seeds ({})\n", first.environment, reports.len(), seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(", "));
    let _ = writeln!(
        s,
        "Each cell: the mean over seeds of each run's reported iteration (chosen as in a single run: on the dev split \
         when there is one), with a 95% bootstrap interval over the seeds; then each seed's value.\n"
    );
    let _ = writeln!(s, "| Method | Win rate | Avg reward | Per seed (win rate / reward) |");
    let _ = writeln!(s, "|---|---:|---:|---|");
    let expert: Vec<(f64, f64)> = reports.iter().map(|r| (r.expert_eval.win_rate, r.expert_eval.avg_reward)).collect();
    let row = |s: &mut String, label: &str, values: &[(f64, f64)]| {
        let (w, wci) = summary(&values.iter().map(|v| v.0).collect::<Vec<_>>());
        let (r, rci) = summary(&values.iter().map(|v| v.1).collect::<Vec<_>>());
        let each = values.iter().map(|v| format!("{:.1}% / {:.3}", 100.0 * v.0, v.1)).collect::<Vec<_>>().join(", ");
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
        row(&mut s, "Expert", &expert);
    }
    for m in &first.methods {
        let values: Vec<(f64, f64)> = reports
            .iter()
            .filter_map(|r| r.methods.iter().find(|x| x.label == m.label).and_then(|x| x.best()).map(|b| (b.eval.win_rate, b.eval.avg_reward)))
            .collect();
        if values.len() == reports.len() {
            row(&mut s, &m.label, &values);
        }
    }
    s
}
