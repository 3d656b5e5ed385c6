//! Live metrics: `RUN_DIR/metrics.jsonl`, one JSON object per line, appended as things happen —
//! one line per optimizer step (loss, learning rate, tokens/s) and one per finished phase
//! (expert, exploration, selection, training, evaluation) — so a long run can be watched
//! (`tail -f`) and plotted while it goes. Every line carries `time` (Unix seconds), `method`
//! and `iteration` (0 = SFT) and an `event` tag.
//!
//! The file is a log, not a result: a resumed run appends to it (a step trained again after a
//! kill appears twice), and its times and throughputs differ between identical runs, so it is
//! not among the files that identical runs write byte for byte.
//!
//! A handle may also carry the run's [`Console`]: every step and phase it records is then shown
//! on stderr as it happens (a training bar, a line per finished phase).

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::console::{summary, Bar, Console, PhaseKind, TrainTally};

/// One optimizer step of training.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrainStep {
    /// `"sft"` (masked causal-LM loss) or `"dpo"`.
    pub objective: &'static str,
    /// Optimizer steps taken, this one included (1-based).
    pub step: usize,
    /// Optimizer steps the training call will take.
    pub total_steps: usize,
    /// The epoch the step belongs to (0-based).
    pub epoch: usize,
    /// The epochs the training call makes.
    pub epochs: usize,
    /// The step's loss: the mean over its micro-batches.
    pub loss: f64,
    /// The learning rate the step applied.
    pub learning_rate: f64,
    /// Tokens the step's forward passes processed (padding included).
    pub tokens: usize,
    /// `tokens` divided by the step's wall time.
    pub tokens_per_s: f64,
}

/// A line of the log.
#[derive(Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum Event<'a> {
    TrainStep(&'a TrainStep),
    Phase { phase: &'a str, values: &'a serde_json::Value },
}

#[derive(Serialize)]
struct Line<'a> {
    time: f64,
    method: &'a str,
    iteration: usize,
    #[serde(flatten)]
    event: Event<'a>,
}

/// A training call as the console shows it: its bar and what its steps added up to.
struct Training {
    bar: Bar,
    tally: TrainTally,
}

/// A handle that appends to the run's live-metrics file, scoped to a method and iteration
/// ([`LiveMetrics::scoped`]). The default handle writes nothing. Cloning shares the file; two
/// handles always compare equal (a log is not a setting).
#[derive(Clone, Default)]
pub struct LiveMetrics {
    file: Option<Arc<Mutex<File>>>,
    method: Arc<str>,
    iteration: usize,
    console: Console,
    /// The scope's training call in progress (one at a time per scope).
    training: Arc<Mutex<Option<Training>>>,
}

impl std::fmt::Debug for LiveMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveMetrics").field("enabled", &self.file.is_some()).field("method", &self.method).field("iteration", &self.iteration).finish()
    }
}

impl PartialEq for LiveMetrics {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl LiveMetrics {
    /// Opens `path` for appending (created when missing).
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        Ok(LiveMetrics { file: Some(Arc::new(Mutex::new(file))), ..LiveMetrics::default() })
    }

    /// The same handle, also showing what it records on `console`.
    pub fn with_console(self, console: Console) -> Self {
        LiveMetrics { console, ..self }
    }

    /// The same file and console, with lines tagged `method` and `iteration`.
    pub fn scoped(&self, method: &str, iteration: usize) -> Self {
        LiveMetrics { file: self.file.clone(), method: Arc::from(method), iteration, console: self.console.clone(), training: Arc::default() }
    }

    /// How the console names this scope: `SFT`, `EEF it2`, `expert`.
    fn scope(&self) -> String {
        if self.iteration == 0 || self.method.is_empty() {
            self.method.to_string()
        } else {
            format!("{} it{}", self.method, self.iteration)
        }
    }

    /// The console's label of a training call: `SFT train`, `ETO it1 dpo`.
    fn training_label(&self, objective: &str) -> String {
        format!("{} {}", self.scope(), if objective == "dpo" { "dpo" } else { "train" })
    }

    fn training(&self) -> std::sync::MutexGuard<'_, Option<Training>> {
        self.training.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A training call starts (`objective`: `"sft"` or `"dpo"`) on `what` (e.g. `"320
    /// trajectories"`): the console shows a spinner until its first optimizer step. Nothing is
    /// written to the file.
    pub fn train_begins(&self, objective: &str, what: &str) {
        if self.console.is_quiet() {
            return;
        }
        let bar = self.console.bar(&self.training_label(objective), None);
        bar.update(0, format!("preparing {what}"));
        *self.training() = Some(Training { bar, tally: TrainTally::default() });
    }

    /// Whether lines are written anywhere.
    pub fn is_enabled(&self) -> bool {
        self.file.is_some()
    }

    /// Appends an optimizer step (and moves the console's training bar).
    pub fn train_step(&self, step: &TrainStep) {
        self.write(Event::TrainStep(step));
        if self.console.is_quiet() {
            return;
        }
        let mut training = self.training();
        let t = training.get_or_insert_with(|| Training { bar: self.console.bar(&self.training_label(step.objective), None), tally: TrainTally::default() });
        t.tally.steps = step.step;
        t.tally.epochs = step.epochs;
        t.tally.tokens += step.tokens;
        t.tally.seconds += if step.tokens_per_s > 0.0 { step.tokens as f64 / step.tokens_per_s } else { 0.0 };
        t.bar.set_total(Some(step.total_steps as u64));
        let message = format!("epoch {}/{}, loss {:.4}, {:.0} tok/s", step.epoch + 1, step.epochs.max(1), step.loss, step.tokens_per_s);
        t.bar.update(step.step as u64, message);
    }

    /// Appends the end of a phase with its numbers (a JSON object), and prints its line on the
    /// console: `train` (a training call), `selection`, `iteration` (an iteration's evaluation),
    /// or a rollout phase's label (`"EEF explore it1"`).
    pub fn phase(&self, phase: &str, values: serde_json::Value) {
        self.write(Event::Phase { phase, values: &values });
        if self.console.is_quiet() {
            return;
        }
        let seconds = values.get("seconds").and_then(serde_json::Value::as_f64).unwrap_or(0.0);
        let (line, kind) = match phase {
            "train" => {
                let tally = self.training().take().map(|t| t.tally).unwrap_or_default();
                (summary::train(&self.scope(), &values, &tally), Some(PhaseKind::Train))
            }
            "selection" => (summary::selection(&self.scope(), &values), None),
            "iteration" => (summary::iteration(&self.scope(), &values), None),
            label => (summary::rollout(label, &values), PhaseKind::of_rollout(label)),
        };
        let left = kind.and_then(|k| {
            let mut eta = self.console.eta();
            eta.done(&self.method, k, seconds);
            eta.seconds_left()
        });
        match left {
            Some(s) => self.console.line(&format!("{line}  [run: ~{} left]", crate::console::duration(s))),
            _ => self.console.line(&line),
        }
    }

    fn write(&self, event: Event<'_>) {
        let Some(file) = &self.file else { return };
        let time = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        let line = Line { time, method: &self.method, iteration: self.iteration, event };
        let Ok(mut text) = serde_json::to_string(&line) else { return };
        text.push('\n');
        // One write per line, so a reader never sees half a line from two writers.
        let result = file.lock().map_err(|_| std::io::Error::other("poisoned")).and_then(|mut f| f.write_all(text.as_bytes()).and_then(|()| f.flush()));
        if let Err(e) = result {
            tracing::warn!(error = %e, "a live-metrics line could not be written");
        }
    }
}

/// A line read back from a live-metrics file (what plots and tools use).
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
pub struct Record {
    /// Unix seconds.
    pub time: f64,
    /// The method's label (`"SFT"` for the shared iteration 0).
    pub method: String,
    /// 0 = SFT.
    pub iteration: usize,
    /// `"train_step"` or `"phase"`.
    pub event: String,
    /// `"sft"` or `"dpo"` for a training step.
    #[serde(default)]
    pub objective: Option<String>,
    /// The optimizer step (training steps).
    #[serde(default)]
    pub step: Option<usize>,
    /// The step's loss (training steps).
    #[serde(default)]
    pub loss: Option<f64>,
    /// The phase's name (phase lines).
    #[serde(default)]
    pub phase: Option<String>,
    /// The phase's numbers (phase lines).
    #[serde(default)]
    pub values: Option<serde_json::Value>,
}

/// Reads a live-metrics file; lines that do not parse (a line cut by a kill) are skipped.
pub fn read(path: &Path) -> std::io::Result<Vec<Record>> {
    let text = std::fs::read_to_string(path)?;
    Ok(text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect())
}
