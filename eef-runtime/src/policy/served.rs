//! A policy that acts through an inference server serving the policy being tuned (vLLM, SGLang,
//! llama.cpp's server: anything OpenAI-compatible), and trains here.
//!
//! Training stays with the inner policy (the burn Llama, with LoRA); every time the experiment
//! saves or loads a checkpoint, the checkpoint is published to the server and later requests name
//! it: with `reload = "lora"`, vLLM's runtime adapter loading (`POST {base_url}/load_lora_adapter`
//! with `lora_name` and `lora_path`; start vLLM with `--enable-lora` and
//! `VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`), then `"model": lora_name` in each request; with
//! `reload = "command"`, a command of yours (e.g. a script that merges the adapter and restarts
//! the server), then the configured `model`. Requests carry the run's per-decision seed,
//! temperature, stop strings and token limit, so a rerun against a deterministic server
//! reproduces. Transport errors, 429 and 5xx are retried with exponential backoff.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::chat::Failure;
use super::{Act, ActRequest, ChatConfig, ChatPolicy, Policy, PolicyError, TrainConfig, TrainReport};
use crate::selection::PreferencePair;
use crate::trajectory::Trajectory;

/// How a checkpoint reaches the server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reload {
    /// vLLM's runtime LoRA loading: `POST {base_url}/load_lora_adapter`.
    #[default]
    Lora,
    /// `reload_command` with `{path}` and `{name}` replaced; requests then name `chat.model`.
    Command,
}

/// `[policy.server]`: the inference server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServedConfig {
    /// The endpoint (`base_url`, `model` = the base model before any checkpoint, key, retries,
    /// timeout, `max_tokens`, `stop`).
    pub chat: ChatConfig,
    /// How checkpoints reach the server.
    pub reload: Reload,
    /// Adapter names are `{adapter_prefix}-{run}-{method}-{iteration}`.
    pub adapter_prefix: String,
    /// For `reload = "command"`: the program and its arguments (`{path}`, `{name}` replaced).
    pub reload_command: Vec<String>,
    /// Replace this prefix of checkpoint paths by `server_path` in what the server is told (when
    /// the server mounts the run directory elsewhere).
    pub local_path: Option<PathBuf>,
    /// See `local_path`.
    pub server_path: Option<PathBuf>,
}

impl Default for ServedConfig {
    fn default() -> Self {
        ServedConfig { chat: ChatConfig::default(), reload: Reload::Lora, adapter_prefix: "eef".into(), reload_command: Vec::new(), local_path: None, server_path: None }
    }
}

/// The adapter name of a checkpoint folder: the prefix and the path's last three folders other
/// than `checkpoint` (`runs/webshop/eef/iter-1/checkpoint` → `eef-webshop-eef-iter-1`), characters
/// outside `[A-Za-z0-9._-]` replaced.
pub fn adapter_name(prefix: &str, dir: &Path) -> String {
    let parts: Vec<String> = dir
        .components()
        .filter_map(|c| c.as_os_str().to_str())
        .filter(|c| *c != "checkpoint" && *c != "/" && !c.is_empty())
        .map(|c| c.chars().map(|ch| if ch.is_ascii_alphanumeric() || "._-".contains(ch) { ch } else { '_' }).collect())
        .collect();
    let tail = &parts[parts.len().saturating_sub(3)..];
    std::iter::once(prefix.to_owned()).chain(tail.iter().cloned()).collect::<Vec<_>>().join("-")
}

/// Acts through the server, trains with the inner policy (see the module docs).
pub struct ServedPolicy {
    inner: Box<dyn Policy>,
    chat: ChatPolicy,
    config: ServedConfig,
    /// The model name requests carry now.
    current: Mutex<String>,
}

impl ServedPolicy {
    /// Wraps `inner`; `system` is the system prompt of the requests.
    pub fn new(inner: Box<dyn Policy>, config: ServedConfig, system: impl Into<String>) -> Self {
        let chat = ChatPolicy::new(config.chat.clone(), system);
        ServedPolicy { current: Mutex::new(config.chat.model.clone()), inner, chat, config }
    }

    /// The model name requests carry now (the last published checkpoint's).
    pub fn current_model(&self) -> String {
        self.current.lock().map(|m| m.clone()).unwrap_or_default()
    }

    fn server_path(&self, dir: &Path) -> PathBuf {
        let abs = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned());
        match (&self.config.local_path, &self.config.server_path) {
            (Some(local), Some(server)) => abs.strip_prefix(local).map(|rest| server.join(rest)).unwrap_or(abs),
            _ => abs,
        }
    }

    /// Makes the server serve the checkpoint in `dir`; later requests name it.
    fn publish(&self, dir: &Path) -> Result<(), PolicyError> {
        let name = adapter_name(&self.config.adapter_prefix, dir);
        let path = self.server_path(dir);
        match self.config.reload {
            Reload::Lora => self.load_lora(&name, &path)?,
            Reload::Command => {
                let args: Vec<String> = self.config.reload_command.iter().map(|a| a.replace("{path}", &path.display().to_string()).replace("{name}", &name)).collect();
                let (program, rest) = args.split_first().ok_or_else(|| PolicyError::Other("[policy.server] reload = \"command\" needs `reload_command`".into()))?;
                let status = std::process::Command::new(program).args(rest).status().map_err(|e| PolicyError::Other(format!("reload command {program}: {e}")))?;
                if !status.success() {
                    return Err(PolicyError::Other(format!("reload command {args:?} failed: {status}")));
                }
            }
        }
        let model = match self.config.reload {
            Reload::Lora => name,
            Reload::Command => self.config.chat.model.clone(),
        };
        tracing::info!(%model, path = %path.display(), "the inference server serves the new checkpoint");
        *self.current.lock().map_err(|_| PolicyError::Other("poisoned".into()))? = model;
        Ok(())
    }

    fn load_lora(&self, name: &str, path: &Path) -> Result<(), PolicyError> {
        let url = format!("{}/load_lora_adapter", self.config.chat.base_url.trim_end_matches('/'));
        let body = serde_json::json!({ "lora_name": name, "lora_path": path.display().to_string() });
        // vLLM answers 400 "... has already been loaded" when a run resumes.
        let already = |status: u16, text: &str| status == 400 && text.contains("already");
        match self.chat.post_retrying_accepting(&url, &body, "loading the adapter", &already) {
            Ok(_) => Ok(()),
            Err(Failure::Refused(m)) => Err(PolicyError::Other(format!("{m} (is vLLM started with --enable-lora and VLLM_ALLOW_RUNTIME_LORA_UPDATING=True?)"))),
            Err(Failure::Unreachable(last)) => Err(PolicyError::Other(format!("{url}: cannot load adapter {name} ({last})"))),
        }
    }
}

impl Policy for ServedPolicy {
    fn name(&self) -> String {
        format!("served:{}", self.current_model())
    }

    fn act_batch(&self, requests: &[ActRequest]) -> Vec<Result<Act, PolicyError>> {
        self.chat.with_model(&self.current_model()).act_batch(requests)
    }

    fn train(&mut self, data: &[Trajectory], config: &TrainConfig) -> Result<TrainReport, PolicyError> {
        self.inner.train(data, config)
    }

    fn supports_preferences(&self) -> bool {
        self.inner.supports_preferences()
    }

    fn train_preferences(&mut self, pairs: &[PreferencePair], config: &TrainConfig) -> Result<TrainReport, PolicyError> {
        self.inner.train_preferences(pairs, config)
    }

    /// Saves the inner policy's checkpoint, then makes the server serve it.
    fn save(&self, dir: &Path) -> Result<(), PolicyError> {
        self.inner.save(dir)?;
        self.publish(dir)
    }

    /// Loads the inner policy's checkpoint (to train on from it), and makes the server serve it.
    fn load(&mut self, dir: &Path) -> Result<(), PolicyError> {
        self.inner.load(dir)?;
        self.publish(dir)
    }
}
