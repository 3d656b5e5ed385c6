//! `eef export`: hands a run's trajectories to another trainer. Reads a JSONL file of the run
//! directory (`expert.jsonl`, `explore.jsonl`, or a selection / data set: `selection.jsonl`,
//! `dataset.jsonl`, whose records carry loss masks) and writes ShareGPT conversations
//! ([`eef_runtime::sharegpt`]): ReAct `gpt` turns, masked actions marked `weight: 0`.

use std::path::Path;

use eef_runtime::selection::TrainingExample;
use eef_runtime::{sharegpt, Error, Trajectory};

/// Reads trajectories from `input`: each line a trajectory, or a training example (its
/// trajectory, masks included).
pub fn read_trajectories(input: &Path) -> Result<Vec<Trajectory>, Error> {
    let text = std::fs::read_to_string(input).map_err(|e| Error::io(input, e))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let t = match serde_json::from_str::<TrainingExample>(line) {
            Ok(e) => e.trajectory,
            Err(_) => serde_json::from_str::<Trajectory>(line)
                .map_err(|e| Error::Record { path: input.to_owned(), line: i + 1, message: format!("neither a trajectory nor a training example: {e}") })?,
        };
        out.push(t);
    }
    Ok(out)
}

/// Writes `input`'s trajectories as a ShareGPT JSON list to `output`; returns a summary.
pub fn to_sharegpt(input: &Path, output: &Path) -> Result<String, Error> {
    let trajectories = read_trajectories(input)?;
    let conversations: Vec<sharegpt::Conversation> = trajectories.iter().map(sharegpt::export).collect();
    let masked = trajectories.iter().filter(|t| t.turns.iter().any(|x| !x.trainable)).count();
    let text = serde_json::to_string_pretty(&conversations).map_err(|e| Error::Setup(e.to_string()))?;
    std::fs::write(output, text).map_err(|e| Error::io(output, e))?;
    Ok(format!("{} conversations ({masked} with masked actions) -> {}", conversations.len(), output.display()))
}
