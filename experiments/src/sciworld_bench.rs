//! Time per step through this project's ScienceWorld client, and through the Python package's
//! `env.step` on the same action lists (when `python3 -c "import scienceworld"` works), like for
//! like: the same simulator calls per step in the same JVM setting.

use std::path::Path;
use std::time::Instant;

use eef_environments::sciworld::{gold_paths, Calls, Install, SciWorldConfig, SciWorldEnv, DETERMINISTIC_JVM_OPTIONS};
use eef_runtime::{Environment, Error};

/// What was measured.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Measurement {
    /// Steps taken.
    pub steps: usize,
    /// Seconds spent inside `step` calls.
    pub seconds: f64,
}

impl Measurement {
    /// Steps per second.
    pub fn rate(&self) -> f64 {
        self.steps as f64 / self.seconds.max(1e-9)
    }
}

/// The client settings measured, as (label, calls, deterministic JVM).
const SETTINGS: [(&str, Calls, bool); 3] = [
    ("eef, the package's calls, deterministic JVM (default)", Calls::Package, true),
    ("eef, the package's calls, JVM as the package starts it", Calls::Package, false),
    ("eef, step + score + completed only (`calls = \"minimal\"`)", Calls::Minimal, true),
];

/// Plays the gold sequences of the first `tasks` training tasks `rounds` times through
/// [`SciWorldEnv`] in each of [`SETTINGS`], and, if available, through the Python package's
/// `env.step` in a JVM started as it starts it and in one with the deterministic options. Returns
/// the report text. Like for like is a row that makes the package's calls against the Python
/// package in the same JVM setting: the client saves the Python side's per-call overhead, not
/// the simulator's work (a valid-action fetch, ~100 ms, dominates every step).
pub fn run(tasks: usize, rounds: usize) -> Result<String, Error> {
    let base = SciWorldConfig { max_train_tasks: Some(tasks), max_test_tasks: Some(0), ..SciWorldConfig::default() };
    let install = Install::locate().map_err(|e| Error::Setup(e.to_string()))?;
    let probe = SciWorldEnv::new(&base)?;
    let list: Vec<_> = probe.task_list().tasks.iter().map(|(t, _)| t.clone()).collect();
    let runtime_tasks = probe.tasks();
    drop(probe);
    // One action list for every row: the deterministic JVM's gold paths.
    let gold = gold_paths(&install, &base, &list).map_err(Error::Setup)?;

    let mut rows = Vec::new();
    for (label, calls, deterministic_jvm) in SETTINGS {
        let mut env = SciWorldEnv::new(&SciWorldConfig { calls, deterministic_jvm, ..base.clone() })?;
        rows.push((label.to_owned(), measure(&mut env, &runtime_tasks, &gold, rounds)?));
    }
    let items: Vec<serde_json::Value> = list
        .iter()
        .map(|t| serde_json::json!({"simulator_name": t.simulator_name, "variation": t.variation, "actions": gold[&t.id()]}))
        .collect();
    let mut python = Vec::new();
    for (label, options) in [("scienceworld (Python env.step), JVM as it starts it", ""), ("scienceworld (Python env.step), deterministic JVM", "deterministic")] {
        let opts = if options.is_empty() { String::new() } else { DETERMINISTIC_JVM_OPTIONS.join(" ") };
        python.push((label, python_measure(&items, rounds, &opts)));
    }

    let mut out = format!(
        "ScienceWorld step time ({} tasks x {rounds} rounds, gold action sequences)\n\n| client | steps | seconds in step | ms/step | steps/s |\n|---|---:|---:|---:|---:|\n",
        list.len()
    );
    let row = |label: &str, m: &Measurement| {
        format!("| {label} | {} | {:.2} | {:.1} | {:.1} |\n", m.steps, m.seconds, 1000.0 / m.rate().max(1e-9), m.rate())
    };
    for (label, m) in &rows {
        out.push_str(&row(label, m));
    }
    let mut skipped = None;
    for (label, p) in &python {
        match p {
            Ok(m) => out.push_str(&row(label, m)),
            Err(why) => skipped = Some(why.clone()),
        }
    }
    if let (Ok(py_default), Ok(py_det)) = (&python[0].1, &python[1].1) {
        out.push_str(&format!(
            "\nLike for like (the package's calls, same JVM options): {:.2}x the Python package's steps per second \
             with the deterministic JVM, {:.2}x with the JVM as the package starts it. \
             The minimal calls run {:.1}x the package's calls.\n",
            rows[0].1.rate() / py_det.rate(),
            rows[1].1.rate() / py_default.rate(),
            rows[2].1.rate() / rows[0].1.rate()
        ));
    }
    if let Some(why) = skipped {
        out.push_str(&format!("\nPython comparison skipped: {why}\n"));
    }
    Ok(out)
}

fn measure(
    env: &mut SciWorldEnv,
    tasks: &[eef_runtime::Task],
    gold: &std::collections::BTreeMap<String, Vec<String>>,
    rounds: usize,
) -> Result<Measurement, Error> {
    let mut m = Measurement { steps: 0, seconds: 0.0 };
    for _ in 0..rounds {
        for task in tasks {
            env.reset(task, 0)?;
            for a in &gold[task.id.as_str()] {
                let t = Instant::now();
                let s = env.step(a)?;
                m.seconds += t.elapsed().as_secs_f64();
                m.steps += 1;
                if s.done {
                    break;
                }
            }
        }
    }
    Ok(m)
}

fn python_measure(items: &[serde_json::Value], rounds: usize, java_options: &str) -> Result<Measurement, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/bench_sciworld_python.py");
    let probe = std::process::Command::new("python3").args(["-c", "import scienceworld"]).output();
    if !probe.map(|o| o.status.success()).unwrap_or(false) {
        return Err("the Python package is not installed (pip install scienceworld==1.2.3)".into());
    }
    let input = std::env::temp_dir().join(format!("eef-sciworld-bench-{}.json", std::process::id()));
    std::fs::write(&input, serde_json::to_vec(items).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    let mut cmd = std::process::Command::new("python3");
    if !java_options.is_empty() {
        // The package starts its JVM itself; every JVM reads this variable.
        cmd.env("JAVA_TOOL_OPTIONS", java_options);
    }
    let out = cmd
        .arg(&script)
        .arg(&input)
        .arg(rounds.to_string())
        .output()
        .map_err(|e| e.to_string())?;
    let _ = std::fs::remove_file(&input);
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("failed").to_owned());
    }
    #[derive(serde::Deserialize)]
    struct P {
        steps: usize,
        seconds: f64,
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let p: P = serde_json::from_str(text.lines().last().unwrap_or("")).map_err(|e| format!("{e}: {text}"))?;
    Ok(Measurement { steps: p.steps, seconds: p.seconds })
}
