//! SVG plots of a run, written beside its report (`plots/`): each method's test win rate and
//! average reward per iteration with their 95% bootstrap intervals, and the dev win rate when
//! the run has a dev split.

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use super::metrics::Metrics;
use super::report::Report;

/// Distinct colours for methods, in order.
const COLOURS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// One plot: `value` (with its interval) per iteration, one series per method.
fn plot(report: &Report, path: &Path, title: &str, y_label: &str, value: &dyn Fn(&Metrics) -> (f64, [f64; 2]), dev: bool) -> Result<(), String> {
    let iterations = report.methods.iter().map(|m| m.iterations.len()).max().unwrap_or(1).max(2);
    let mut y_max = 0.05f64;
    for m in &report.methods {
        for it in &m.iterations {
            y_max = y_max.max(value(&it.eval).1[1]);
        }
    }
    let root = SVGBackend::new(path, (720, 440)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(52)
        .build_cartesian_2d(-0.3f64..(iterations as f64 - 0.7), 0f64..(y_max * 1.1))
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("iteration (0 = SFT)")
        .y_desc(y_label)
        .x_labels(iterations)
        .x_label_formatter(&|x| format!("{}", x.round() as i64))
        .draw()
        .map_err(|e| e.to_string())?;
    let n = report.methods.len().max(1) as f64;
    for (k, m) in report.methods.iter().enumerate() {
        let colour = COLOURS[k % COLOURS.len()];
        // Methods side by side within an iteration so their intervals do not overlap.
        let x = |i: usize| i as f64 + (k as f64 - (n - 1.0) / 2.0) * 0.06;
        let points: Vec<(f64, f64)> = m.iterations.iter().map(|it| (x(it.iteration), value(&it.eval).0)).collect();
        chart
            .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(m.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2)));
        chart
            .draw_series(m.iterations.iter().map(|it| {
                let (v, [lo, hi]) = value(&it.eval);
                ErrorBar::new_vertical(x(it.iteration), lo, v, hi, colour.filled(), 6)
            }))
            .map_err(|e| e.to_string())?;
        if dev {
            let dev_points: Vec<(f64, f64)> = m.iterations.iter().filter_map(|it| it.dev.as_ref().map(|d| (x(it.iteration), value(d).0))).collect();
            chart.draw_series(dev_points.into_iter().map(|p| TriangleMarker::new(p, 5, colour.filled()))).map_err(|e| e.to_string())?;
        }
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.85)).border_style(BLACK).draw().map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

/// Writes `win-rate.svg` and `reward.svg` into `dir` (created); returns their paths.
pub fn write(report: &Report, dir: &Path) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let win = dir.join("win-rate.svg");
    let dev = report.dev_tasks > 0;
    let title = if dev { "Win rate on test (lines, 95% intervals) and dev (triangles)" } else { "Win rate on test (95% intervals)" };
    plot(report, &win, title, "win rate", &|m: &Metrics| (m.win_rate, m.win_rate_ci), dev)?;
    let reward = dir.join("reward.svg");
    plot(report, &reward, "Average reward on test (95% intervals)", "average reward", &|m: &Metrics| (m.avg_reward, m.avg_reward_ci), false)?;
    Ok(vec![win, reward])
}
