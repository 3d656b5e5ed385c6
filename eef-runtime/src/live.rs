//! Live metrics: `RUN_DIR/metrics.jsonl`, one JSON object per line, appended as things happen —
//! one line per optimizer step (loss, learning rate, tokens/s) and one per finished phase
//! (expert, exploration, selection, training, evaluation) — so a long run can be watched
//! (`tail -f`) and plotted while it goes. Every line carries `time` (Unix seconds), `method`
//! and `iteration` (0 = SFT) and an `event` tag.
//!
//! The file is a log, not a result: a resumed run appends to it (a step trained again after a
//! kill appears twice), and its times and throughputs differ between identical runs, so it is
//! not among the files that identical runs write byte for byte.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::Serialize;

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

/// A handle that appends to the run's live-metrics file, scoped to a method and iteration
/// ([`LiveMetrics::scoped`]). The default handle writes nothing. Cloning shares the file; two
/// handles always compare equal (a log is not a setting).
#[derive(Clone, Default)]
pub struct LiveMetrics {
    file: Option<Arc<Mutex<File>>>,
    method: Arc<str>,
    iteration: usize,
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
        Ok(LiveMetrics { file: Some(Arc::new(Mutex::new(file))), method: Arc::from(""), iteration: 0 })
    }

    /// The same file, with lines tagged `method` and `iteration`.
    pub fn scoped(&self, method: &str, iteration: usize) -> Self {
        LiveMetrics { file: self.file.clone(), method: Arc::from(method), iteration }
    }

    /// Whether lines are written anywhere.
    pub fn is_enabled(&self) -> bool {
        self.file.is_some()
    }

    /// Appends an optimizer step.
    pub fn train_step(&self, step: &TrainStep) {
        self.write(Event::TrainStep(step));
    }

    /// Appends the end of a phase with its numbers (a JSON object).
    pub fn phase(&self, phase: &str, values: serde_json::Value) {
        self.write(Event::Phase { phase, values: &values });
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
