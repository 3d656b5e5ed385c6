//! Steps per second through this project's ScienceWorld client, and through the Python
//! package's `env.step` on the same action lists (when `python3 -c "import scienceworld"` works).

use std::path::Path;
use std::time::Instant;

use eef_environments::sciworld::{gold_paths, Install, SciWorldConfig, SciWorldEnv};
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

/// Plays the gold sequences of the first `tasks` training tasks `rounds` times through
/// [`SciWorldEnv`] (each step: action, score, completion, as the environment always does), and,
/// if available, through the Python package. Returns the report text.
pub fn run(tasks: usize, rounds: usize) -> Result<String, Error> {
    let config = SciWorldConfig { max_train_tasks: Some(tasks), max_test_tasks: Some(0), ..SciWorldConfig::default() };
    let mut env = SciWorldEnv::new(&config)?;
    let install = Install::locate().map_err(|e| Error::Setup(e.to_string()))?;
    let list: Vec<_> = env.task_list().tasks.iter().map(|(t, _)| t.clone()).collect();
    let gold = gold_paths(&install, "easy", &list).map_err(Error::Setup)?;
    let runtime_tasks = env.tasks();

    let ours = measure(&mut env, &runtime_tasks, &gold, rounds)?;
    let mut with_valid = SciWorldEnv::new(&SciWorldConfig { offer_valid_actions: true, ..config })?;
    let ours_valid = measure(&mut with_valid, &runtime_tasks, &gold, rounds)?;

    let items: Vec<serde_json::Value> = list
        .iter()
        .map(|t| serde_json::json!({"simulator_name": t.simulator_name, "variation": t.variation, "actions": gold[&t.id()]}))
        .collect();
    let python = python_measure(&items, rounds);

    let mut out = format!(
        "ScienceWorld step throughput ({} tasks x {rounds} rounds, gold action sequences)\n\n| client | steps | seconds in step | steps/s |\n|---|---:|---:|---:|\n| eef (Rust, py4j protocol) | {} | {:.2} | {:.1} |\n",
        list.len(),
        ours.steps,
        ours.seconds,
        ours.rate()
    ) + &format!(
        "| eef, valid actions offered each step | {} | {:.2} | {:.1} |\n",
        ours_valid.steps,
        ours_valid.seconds,
        ours_valid.rate()
    );
    match python {
        Ok(p) => {
            out.push_str(&format!("| scienceworld (Python env.step) | {} | {:.2} | {:.1} |\n", p.steps, p.seconds, p.rate()));
            out.push_str(&format!(
                "\nRust client / Python: {:.1}x the steps per second ({:.1}x with valid actions, which Python's step also computes).\n",
                ours.rate() / p.rate(),
                ours_valid.rate() / p.rate()
            ));
        }
        Err(why) => out.push_str(&format!("\nPython comparison skipped: {why}\n")),
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

fn python_measure(items: &[serde_json::Value], rounds: usize) -> Result<Measurement, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/bench_sciworld_python.py");
    let probe = std::process::Command::new("python3").args(["-c", "import scienceworld"]).output();
    if !probe.map(|o| o.status.success()).unwrap_or(false) {
        return Err("the Python package is not installed (pip install scienceworld==1.2.3)".into());
    }
    let input = std::env::temp_dir().join(format!("eef-sciworld-bench-{}.json", std::process::id()));
    std::fs::write(&input, serde_json::to_vec(items).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    let out = std::process::Command::new("python3")
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
