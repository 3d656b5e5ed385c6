//! `eef plan --config FILE`: what a configuration's language-model run needs, before it runs
//! ([`eef_runtime::model::plan::Plan`]): parameters, trainable parameters, and device memory for
//! training and for rollouts, with a verdict against the device's memory.

use std::path::{Path, PathBuf};

use eef_runtime::model::hf;
use eef_runtime::model::plan::Plan;
use eef_runtime::model::chat::SequenceForm;
use eef_runtime::model::{LlamaConfig, LmSettings};
use eef_runtime::{Error, ExperimentConfig};

/// The model a configuration runs: `model_config` (a `config.json`) when given, else
/// `[policy] init`'s `config.json`, else `[policy.model]` (a model trained from scratch, its
/// vocabulary the BPE's size).
pub fn model_config(settings: &LmSettings, model_config: Option<&Path>) -> Result<(LlamaConfig, String), Error> {
    let read = |path: &Path| -> Result<LlamaConfig, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        hf::config::from_json(&path.display().to_string(), &text, &settings.accept_config_keys).map_err(|e| Error::Setup(e.to_string()))
    };
    if let Some(p) = model_config {
        return Ok((read(p)?, p.display().to_string()));
    }
    if let Some(dir) = &settings.init {
        let path = dir.join("config.json");
        if !path.exists() {
            return Err(Error::Setup(format!(
                "[policy] init = {}: no config.json there yet; download the model, or pass --model-config with its config.json (experiments/models/ holds some)",
                dir.display()
            )));
        }
        return Ok((read(&path)?, path.display().to_string()));
    }
    Ok((LlamaConfig { vocab_size: settings.vocab_size, ..settings.model.clone() }, "[policy.model] (trained from scratch)".to_owned()))
}

/// Upper bounds of one iteration's work per method: exploration episodes and the tokens they
/// process, and training tokens per epoch (every row full), for the configuration's number of
/// training tasks when it caps them (else per training task).
fn per_iteration(config: &ExperimentConfig, tokens_per_episode: u64, steps: usize, settings: &LmSettings) -> String {
    let max_context = settings.max_context;
    let capped = config
        .experiment
        .max_train_tasks
        .or_else(|| ["max_train_goals", "max_train_tasks"].iter().find_map(|k| config.environment.get(*k).and_then(|v| v.as_integer())).map(|n| n as usize));
    let (n, unit) = match capped {
        Some(n) => (n as u64, format!("{n} training tasks")),
        None => (1, "one training task (multiply by the number of training tasks)".to_owned()),
    };
    let experts = config.expert.samples.max(1) as u64;
    let mut out = format!("Per iteration, at most, for {unit}:\n\n| method | exploration episodes | tokens they process | training tokens per epoch |\n|---|---:|---:|---:|\n");
    for m in &config.methods {
        let samples = m.samples.max(1) as u64;
        // EEF also explores M states of every failed expert trajectory (all of them, at most).
        let starts = match m.selector.as_str() {
            "sft" => 0,
            "eef" => n * (1 + experts * config.eef.states as u64),
            _ => n,
        };
        let episodes = starts * samples;
        // Training rows: one per trainable action of the accumulated data set with per-turn
        // windows; one per trajectory (or one per piece of a long one) as whole conversations.
        let per_trajectory = match settings.sequences {
            SequenceForm::Windows => steps as u64,
            SequenceForm::Conversation => tokens_per_episode.div_ceil(max_context as u64).max(1),
        };
        let rows = (n * experts + if m.selector == "sft" { 0 } else { starts }) * per_trajectory;
        out.push_str(&format!("| {} | {episodes} | {} | {} |\n", m.label(), episodes * tokens_per_episode, rows * max_context as u64));
    }
    out
}

/// The plan of `config_path` as Markdown, judged against `device_gib` GiB of device memory.
pub fn run(config_path: &Path, model: Option<PathBuf>, device_gib: f64) -> Result<String, Error> {
    let config = ExperimentConfig::from_file(config_path)?;
    let settings: LmSettings = config.policy()?;
    settings.validate().map_err(|e| Error::Setup(format!("[policy]: {e}")))?;
    let (c, source) = model_config(&settings, model.as_deref())?;
    c.check_context(settings.max_context).map_err(Error::Setup)?;
    let steps = config.rollout.max_steps.or_else(|| config.environment.get("max_steps").and_then(|v| v.as_integer()).map(|n| n as usize)).unwrap_or(30);
    let plan = Plan::new(&c, &settings, config.rollout.max_batch.min(config.rollout.concurrency)).with_steps(steps, &settings);
    let lora = match &settings.lora {
        Some(l) => format!("LoRA rank {} on {}", l.rank, l.targets.join(", ")),
        None => "full fine-tuning".to_owned(),
    };
    let budget = per_iteration(&config, plan.tokens_per_episode, steps, &settings);
    Ok(format!(
        "# Plan for {}\n\nModel: {} ({}, {} layers, hidden {}, {} heads / {} key-value heads, vocabulary {})\n\
         Backend: {:?} {:?}; {lora}; micro-batch {} x {} tokens (accumulation {}); decoding batches of {} rows; {} steps per episode\n\n{}\n{budget}",
        config_path.display(),
        source,
        c.model_type.class_name(),
        c.num_hidden_layers,
        c.hidden_size,
        c.num_attention_heads,
        c.kv_heads(),
        c.vocab_size,
        settings.backend,
        settings.precision,
        settings.batch_size,
        settings.max_context,
        settings.train.accumulation,
        config.rollout.max_batch.min(config.rollout.concurrency),
        steps,
        plan.render(device_gib)
    ))
}
