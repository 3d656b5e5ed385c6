//! `eef export`: hands a run's trajectories to another trainer. Reads a JSONL file of the run
//! directory (`expert.jsonl`, `explore.jsonl`, or a selection / data set: `selection.jsonl`,
//! `dataset.jsonl`, whose records carry loss masks) and writes ShareGPT conversations
//! ([`eef_runtime::sharegpt`]) in the layout LLaMA-Factory's ShareGPT loader accepts: `human`
//! and `gpt` messages alternating, each ending with an action, with a `dataset_info.json` beside
//! them that registers the file.
//!
//! Masked actions (EEF's harmful expert actions, replayed prefixes): LLaMA-Factory cannot mask a
//! single answer, so when any conversation has one, every conversation is written as one example
//! per trained action, and the data set must be trained with `mask_history: true` (loss on each
//! example's last answer only; the summary and `dataset_info.json`'s entry say so). `gpt`
//! messages also carry axolotl's `weight` (0 = masked).

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

/// The conversations of `trajectories` as a trainer without per-message masks needs them, and
/// whether they must be trained on their last answer only (`mask_history: true`).
pub fn conversations(trajectories: &[Trajectory]) -> (Vec<sharegpt::Conversation>, bool) {
    let masked = trajectories.iter().any(|t| t.turns.iter().any(|x| !x.trainable));
    let out = if masked {
        trajectories.iter().flat_map(sharegpt::export_per_action).collect()
    } else {
        trajectories.iter().filter(|t| !t.turns.is_empty()).map(sharegpt::export).collect()
    };
    (out, masked)
}

/// Writes `input`'s trajectories as a ShareGPT JSON list to `output`, and registers it in
/// `dataset_info.json` beside it (an existing file gains or replaces the entry); returns a
/// summary.
pub fn to_sharegpt(input: &Path, output: &Path) -> Result<String, Error> {
    let trajectories = read_trajectories(input)?;
    let (conversations, per_action) = conversations(&trajectories);
    let masked = trajectories.iter().filter(|t| t.turns.iter().any(|x| !x.trainable)).count();
    let text = serde_json::to_string_pretty(&conversations).map_err(|e| Error::Setup(e.to_string()))?;
    std::fs::write(output, text).map_err(|e| Error::io(output, e))?;
    let name = output.file_stem().map_or_else(|| "eef".to_owned(), |s| s.to_string_lossy().into_owned());
    let file = output.file_name().map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    let info_path = output.with_file_name("dataset_info.json");
    let mut info: serde_json::Map<String, serde_json::Value> = match std::fs::read_to_string(&info_path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| Error::Record { path: info_path.clone(), line: e.line(), message: e.to_string() })?,
        Err(_) => serde_json::Map::new(),
    };
    let mut entry = serde_json::json!({
        "file_name": file,
        "formatting": "sharegpt",
        "columns": { "messages": "conversations" },
        "tags": { "role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt" },
    });
    if per_action {
        entry["eef_note"] = serde_json::Value::String("one example per trained action: train with mask_history: true".into());
    }
    info.insert(name.clone(), entry);
    let info_text = serde_json::to_string_pretty(&info).map_err(|e| Error::Setup(e.to_string()))?;
    std::fs::write(&info_path, info_text).map_err(|e| Error::io(&info_path, e))?;
    let how = if per_action {
        format!(
            "{masked} of {} trajectories have masked actions, so each trained action is its own example (train with LLaMA-Factory's `mask_history: true`)",
            trajectories.len()
        )
    } else {
        "every action is trained".to_owned()
    };
    Ok(format!("{} conversations from {} trajectories -> {} ({how}); registered as dataset {name:?} in {}", conversations.len(), trajectories.len(), output.display(), info_path.display()))
}
