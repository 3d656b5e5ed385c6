//! SVG plots of a run, written beside its report (`plots/`): each method's test win rate and
//! average reward per iteration with their 95% bootstrap intervals, the dev win rate when the
//! run has a dev split, and the training loss per optimizer step (from the live-metrics log).

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use super::metrics::Metrics;
use crate::live::Record;
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

/// Width of the plotting area; the legend sits to its right, outside the data.
const PLOT_WIDTH: u32 = 720;
/// Width of the legend column.
const LEGEND_WIDTH: u32 = 190;

/// One legend entry: a sample of the series' mark and its text.
enum Mark {
    Line(RGBColor, u32),
    Dashed(RGBColor),
    Triangle(RGBColor),
}

/// Draws `entries` in the legend column `area`, top down.
fn legend<DB: DrawingBackend>(area: &DrawingArea<DB, plotters::coord::Shift>, entries: &[(Mark, String)]) -> Result<(), String> {
    let font = ("sans-serif", 14).into_font();
    for (i, (mark, text)) in entries.iter().enumerate() {
        let y = 48 + 22 * i as i32;
        match mark {
            Mark::Line(c, w) => area.draw(&PathElement::new(vec![(8, y), (32, y)], c.stroke_width(*w))),
            Mark::Dashed(c) => {
                area.draw(&PathElement::new(vec![(8, y), (14, y)], c.stroke_width(1))).and_then(|()| area.draw(&PathElement::new(vec![(18, y), (24, y)], c.stroke_width(1)))).and_then(|()| area.draw(&PathElement::new(vec![(28, y), (32, y)], c.stroke_width(1))))
            }
            Mark::Triangle(c) => area.draw(&TriangleMarker::new((20, y), 5, c.filled())),
        }
        .map_err(|e| e.to_string())?;
        area.draw(&Text::new(text.clone(), (40, y - 8), font.clone())).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// One plot: `value` (with its interval) per iteration, one series per method.
fn plot(report: &Report, path: &Path, title: &str, y_label: &str, value: &dyn Fn(&Metrics) -> (f64, [f64; 2]), dev: bool) -> Result<(), String> {
    let iterations = report.methods.iter().map(|m| m.iterations.len()).max().unwrap_or(1).max(2);
    let mut y_max = 0.05f64;
    for m in &report.methods {
        for it in &m.iterations {
            y_max = y_max.max(value(&it.eval).1[1]);
        }
    }
    let root = SVGBackend::new(path, (PLOT_WIDTH + LEGEND_WIDTH, 440)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (area, side) = root.split_horizontally(PLOT_WIDTH);
    let mut chart = ChartBuilder::on(&area)
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
        chart.draw_series(LineSeries::new(points.clone(), colour.stroke_width(2))).map_err(|e| e.to_string())?;
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
    let mut entries: Vec<(Mark, String)> = report.methods.iter().enumerate().map(|(k, m)| (Mark::Line(COLOURS[k % COLOURS.len()], 2), m.label.clone())).collect();
    if dev {
        entries.push((Mark::Triangle(BLACK), "dev win rate".into()));
    }
    legend(&side, &entries)?;
    root.present().map_err(|e| e.to_string())
}

/// One training-loss curve: the method's label, the objective (`"sft"` or `"dpo"`) and its
/// `(optimizer step, loss)` points.
pub type LossCurve = (String, &'static str, Vec<(f64, f64)>);

/// Each method's training-loss curve: the shared SFT steps, then its iterations' steps, in the
/// order trained (x = optimizer steps so far). A step trained twice (a resumed run) counts
/// once, with its last value. DPO steps are drawn as a dashed line of their own.
pub fn loss_curves(report: &Report, records: &[Record]) -> Vec<LossCurve> {
    use std::collections::BTreeMap;
    // (method, iteration, objective) -> step -> loss
    let mut steps: BTreeMap<(&str, usize, &str), BTreeMap<usize, f64>> = BTreeMap::new();
    for r in records {
        if let (Some(step), Some(loss), Some(objective)) = (r.step, r.loss, r.objective.as_deref()) {
            steps.entry((r.method.as_str(), r.iteration, objective)).or_default().insert(step, loss);
        }
    }
    let mut curves = Vec::new();
    for m in &report.methods {
        for objective in ["sft", "dpo"] {
            let mut points = Vec::new();
            let mut x = 0usize;
            for it in &m.iterations {
                let method = if it.iteration == 0 { "SFT" } else { m.label.as_str() };
                // SFT-objective steps of every iteration advance x; DPO steps follow them.
                for obj in ["sft", "dpo"] {
                    if let Some(s) = steps.get(&(method, it.iteration, obj)) {
                        for &loss in s.values() {
                            x += 1;
                            if obj == objective {
                                points.push((x as f64, loss));
                            }
                        }
                    }
                }
            }
            if !points.is_empty() {
                curves.push((m.label.clone(), objective, points));
            }
        }
    }
    curves
}

/// Draws the loss curves. Every method's curve starts with the shared SFT steps (the first
/// `sft_steps` of its SFT-objective points); they are drawn once, as SFT's own curve in grey on
/// top of the others, and each method's curve from the last SFT step on, so no method hides
/// SFT's line or another method's.
fn plot_loss(curves: &[LossCurve], labels: &[String], sft_steps: usize, path: &Path) -> Result<(), String> {
    let x_max = curves.iter().flat_map(|c| c.2.iter().map(|p| p.0)).fold(1.0f64, f64::max);
    let y_max = curves.iter().flat_map(|c| c.2.iter().map(|p| p.1)).filter(|v| v.is_finite()).fold(0.1f64, f64::max);
    let y_min = curves.iter().flat_map(|c| c.2.iter().map(|p| p.1)).filter(|v| v.is_finite()).fold(0.0f64, f64::min);
    let root = SVGBackend::new(path, (PLOT_WIDTH + LEGEND_WIDTH, 440)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (area, side) = root.split_horizontally(PLOT_WIDTH);
    let mut chart = ChartBuilder::on(&area)
        .caption("Training loss per optimizer step (solid: SFT objective, dashed: DPO)", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(52)
        .build_cartesian_2d(0f64..x_max, y_min..(y_max * 1.05))
        .map_err(|e| e.to_string())?;
    chart.configure_mesh().x_desc("optimizer step (SFT, then each iteration's)").y_desc("loss").draw().map_err(|e| e.to_string())?;
    let sft_colour = RGBColor(60, 60, 60);
    let shared: Vec<(f64, f64)> = curves.iter().find(|c| c.1 == "sft").map(|c| c.2.iter().copied().take(sft_steps).filter(|p| p.1.is_finite()).collect()).unwrap_or_default();
    let mut entries: Vec<(Mark, String)> = Vec::new();
    for (label, objective, points) in curves {
        let k = labels.iter().position(|l| l == label).unwrap_or(0);
        let colour = COLOURS[k % COLOURS.len()];
        let mut points: Vec<(f64, f64)> = points.iter().copied().filter(|p| p.1.is_finite()).collect();
        if *objective == "dpo" {
            chart.draw_series(DashedLineSeries::new(points, 4, 3, colour.stroke_width(1))).map_err(|e| e.to_string())?;
            entries.push((Mark::Dashed(colour), format!("{label} (DPO)")));
        } else {
            // From the last shared SFT step on (SFT's own curve is drawn below, on top).
            points.drain(..sft_steps.saturating_sub(1).min(points.len()));
            if label == "SFT" || points.len() < 2 {
                continue;
            }
            chart.draw_series(LineSeries::new(points, colour.stroke_width(2))).map_err(|e| e.to_string())?;
            entries.push((Mark::Line(colour, 2), label.clone()));
        }
    }
    if !shared.is_empty() {
        chart.draw_series(LineSeries::new(shared, sft_colour.stroke_width(3))).map_err(|e| e.to_string())?;
        entries.insert(0, (Mark::Line(sft_colour, 3), "SFT (shared start)".into()));
    }
    legend(&side, &entries)?;
    root.present().map_err(|e| e.to_string())
}

/// Writes `win-rate.svg` and `reward.svg` into `dir` (created), and `loss.svg` when `records`
/// (the run's live-metrics log) hold training steps; returns the paths written.
pub fn write(report: &Report, records: &[Record], dir: &Path) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let win = dir.join("win-rate.svg");
    let dev = report.dev_tasks > 0;
    let title = if dev { "Win rate on test (lines, 95% intervals) and dev (triangles)" } else { "Win rate on test (95% intervals)" };
    plot(report, &win, title, "win rate", &|m: &Metrics| (m.win_rate, m.win_rate_ci), dev)?;
    let reward = dir.join("reward.svg");
    plot(report, &reward, "Average reward on test (95% intervals)", "average reward", &|m: &Metrics| (m.avg_reward, m.avg_reward_ci), false)?;
    let mut written = vec![win, reward];
    let curves = loss_curves(report, records);
    if !curves.is_empty() {
        let loss = dir.join("loss.svg");
        let labels: Vec<String> = report.methods.iter().map(|m| m.label.clone()).collect();
        let sft_steps = records.iter().filter(|r| r.method == "SFT" && r.iteration == 0 && r.objective.as_deref() == Some("sft")).filter_map(|r| r.step).collect::<std::collections::BTreeSet<_>>().len();
        plot_loss(&curves, &labels, sft_steps, &loss)?;
        written.push(loss);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::report::{IterationReport, MethodReport};

    fn step(method: &str, iteration: usize, objective: &str, step: usize, loss: f64) -> Record {
        Record { time: 0.0, method: method.into(), iteration, event: "train_step".into(), objective: Some(objective.into()), step: Some(step), loss: Some(loss), phase: None, values: None }
    }

    /// Each method's curve is the shared SFT steps then its own iterations' steps; a step logged
    /// twice (a resumed run) counts once with its last value; DPO steps form their own curve
    /// after the iteration's SFT-objective steps; the SVG is written and names the methods.
    #[test]
    fn loss_curves_follow_each_method_through_its_iterations() {
        let it = |i: usize| IterationReport { iteration: i, ..Default::default() };
        let report = Report {
            methods: vec![
                MethodReport { label: "SFT".into(), selector: "sft".into(), iterations: vec![it(0)] },
                MethodReport { label: "EEF".into(), selector: "eef".into(), iterations: vec![it(0), it(1)] },
                MethodReport { label: "ETO".into(), selector: "eto".into(), iterations: vec![it(0), it(1)] },
            ],
            ..Default::default()
        };
        let records = vec![
            step("SFT", 0, "sft", 1, 4.0),
            step("SFT", 0, "sft", 2, 3.0),
            step("SFT", 0, "sft", 2, 2.5), // trained again after a resume
            step("EEF", 1, "sft", 1, 2.0),
            step("ETO", 1, "sft", 1, 2.2),
            step("ETO", 1, "dpo", 1, 0.69),
            step("ETO", 1, "dpo", 2, 0.6),
        ];
        let curves = loss_curves(&report, &records);
        let get = |label: &str, obj: &str| curves.iter().find(|c| c.0 == label && c.1 == obj).map(|c| c.2.clone());
        assert_eq!(get("SFT", "sft"), Some(vec![(1.0, 4.0), (2.0, 2.5)]));
        assert_eq!(get("EEF", "sft"), Some(vec![(1.0, 4.0), (2.0, 2.5), (3.0, 2.0)]));
        assert_eq!(get("EEF", "dpo"), None);
        assert_eq!(get("ETO", "dpo"), Some(vec![(4.0, 0.69), (5.0, 0.6)]));
        let dir = tempfile::tempdir().unwrap();
        let written = write(&report, &records, dir.path()).unwrap();
        assert!(written.iter().any(|p| p.ends_with("loss.svg")));
        let svg = std::fs::read_to_string(dir.path().join("loss.svg")).unwrap();
        assert!(svg.starts_with("<svg") && ["EEF", "ETO", "optimizer step", "SFT (shared start)"].iter().all(|l| svg.contains(l)));
        // The shared SFT steps are drawn once, last (on top), in their own colour; the other
        // methods' lines start at the last SFT step; the legend is right of the plotting area.
        let first_x = |p: &str| -> f64 { p.split("points=\"").nth(1).unwrap().split(',').next().unwrap().parse().unwrap() };
        let polylines: Vec<&str> = svg.match_indices("<polyline").map(|(i, _)| &svg[i..i + svg[i..].find("/>").unwrap()]).filter(|p| first_x(p) < f64::from(PLOT_WIDTH)).collect();
        let last = polylines.last().unwrap();
        assert!(last.contains("#3C3C3C") && last.contains("stroke-width=\"3\""), "{last}");
        assert_eq!(polylines.iter().filter(|p| p.contains("#3C3C3C")).count(), 1);
        for label in ["EEF", "ETO"] {
            let at = svg.find(&format!(">\n{label}\n</text>")).unwrap();
            let tag = &svg[svg[..at].rfind("<text").unwrap()..at];
            let x: f64 = tag.split("x=\"").nth(1).unwrap().split('"').next().unwrap().parse().unwrap();
            assert!(x > f64::from(PLOT_WIDTH), "legend entry {label} at x = {x}, inside the plot");
        }
        let without = tempfile::tempdir().unwrap();
        assert!(!write(&report, &[], without.path()).unwrap().iter().any(|p| p.ends_with("loss.svg")), "no steps, no loss plot");
    }
}
