//! `eef tokens --config FILE --data FILE.jsonl`: what one epoch of training on a data set costs
//! in each sequence form (per-turn windows, whole conversations, whole conversations packed),
//! with the configuration's tokenizer, template, context and batch size
//! ([`eef_runtime::model::epoch_cost`]). The data is a run's JSONL: recorded trajectories (e.g.
//! `expert.jsonl`, whose successes, every action trained, are the SFT set; `--all` keeps every
//! trajectory) or a selection or data set with its own loss marks (`dataset.jsonl`).

use std::path::Path;

use eef_runtime::model::epoch_cost::epoch_costs;
use eef_runtime::model::{LmPolicy, LmSettings};
use eef_runtime::{Error, ExperimentConfig, Trajectory};

/// The report (Markdown).
pub fn run(config_path: &Path, data: &Path, all: bool) -> Result<String, Error> {
    let config = ExperimentConfig::from_file(config_path)?;
    let settings: LmSettings = config.policy()?;
    settings.validate().map_err(|e| Error::Setup(format!("[policy]: {e}")))?;
    let mut trajectories: Vec<Trajectory> = eef_runtime::jsonl::read(data)?;
    if !all {
        trajectories.retain(|t| t.success);
    }
    // Trajectories as recorded (an expert's, an exploration's) carry no loss marks yet: train every
    // action, as the SFT selection does. A selection or data set keeps its own marks.
    if trajectories.iter().all(|t| t.trainable_turns() == 0) {
        for t in &mut trajectories {
            t.turns.iter_mut().for_each(|x| x.trainable = true);
        }
    }
    if trajectories.is_empty() {
        return Err(Error::Setup(format!("{}: no {}trajectory to count", data.display(), if all { "" } else { "successful " })));
    }
    let policy = LmPolicy::<eef_runtime::model::CpuTrain>::new(settings.clone(), Default::default());
    let chat = policy.chat_for(&trajectories)?;
    let costs = epoch_costs(&chat, &settings, &trajectories, config.experiment.seed).map_err(Error::Setup)?;
    let turns: usize = trajectories.iter().map(|t| t.turns.len()).sum();
    let mut out = format!(
        "# Training tokens per epoch\n\n{} trajectories ({:.1} turns on average) from {}, `{}`'s tokenizer and template, max_context {}, batch_size {}.\n\n\
         | form | sequences | rows | tokens | trained tokens | tokens processed (padded batches) | vs windows | split | fallbacks | cut |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        trajectories.len(),
        turns as f64 / trajectories.len() as f64,
        data.display(),
        config_path.display(),
        settings.max_context,
        settings.batch_size
    );
    let base = costs[0].stats.batch_tokens.max(1) as f64;
    for c in &costs {
        let s = &c.stats;
        out += &format!(
            "| {} | {} | {} | {} | {} | {} | {:.2}x fewer | {} | {} | {} |\n",
            c.form,
            s.sequences,
            s.rows,
            s.tokens,
            s.trained_tokens,
            s.batch_tokens,
            base / s.batch_tokens.max(1) as f64,
            s.split,
            s.fallbacks,
            s.cut
        );
    }
    Ok(out)
}
