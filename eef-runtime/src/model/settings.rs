//! `[policy]` of an experiment that tunes the language model: [`LmSettings`].

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::backend::{BackendChoice, BackendKind, Precision};
use super::chat::{AnswerFormat, ChatSettings, SequenceForm, SequenceSettings};
use super::config::LlamaConfig;
use super::hf::SaveDtype;
use super::lora::LoraSettings;
use super::train::TrainSettings;

/// Settings of an [`super::LmPolicy`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LmSettings {
    /// The burn backend (`"cpu"`, `"ndarray"`, `"flex"`, `"cuda"`, `"wgpu"`); see [`super::backend`].
    pub backend: BackendKind,
    /// `"f32"` or `"bf16"` (CUDA): the type weights are kept and computed in.
    pub precision: Precision,
    /// GPU index (with `[policy.train] devices`, the first of those).
    pub device: usize,
    /// The architecture of a model trained from scratch (its vocabulary follows the tokenizer).
    pub model: LlamaConfig,
    /// A Hugging Face model folder to start from (as `huggingface-cli download` leaves it:
    /// `config.json`, `model.safetensors` or shards with their index, `tokenizer.json`,
    /// `tokenizer_config.json`, `generation_config.json`).
    pub init: Option<PathBuf>,
    /// Keys of the folder's `config.json` that eef does not know but you have checked do not
    /// change the model (an unknown key is otherwise an error).
    pub accept_config_keys: Vec<String>,
    /// `[policy.chat]`: the chat template, the answer format and what carries loss.
    pub chat: ChatSettings,
    /// Vocabulary of a BPE trained from scratch.
    pub vocab_size: usize,
    /// Longest dialogue kept (older turns are cut).
    pub max_context: usize,
    /// Longest generated answer.
    pub max_new_tokens: usize,
    /// Nucleus sampling mass.
    pub top_p: f32,
    /// How offered valid actions constrain the answer (`"prefix"`, `"score"` or `"off"`).
    pub constrained: Constrained,
    /// Keep each episode's keys and values between turns and feed only the new tokens when the
    /// next prompt extends the last one ([`super::prefix_cache`]).
    pub kv_reuse: bool,
    /// Most cached positions kept for reuse across turns (least recently used dropped first).
    pub kv_cache_tokens: usize,
    /// Prompts are left-padded to a multiple of this many tokens when batched (see
    /// [`super::decode`]); larger values batch more episodes together, smaller waste less.
    pub pad_to: usize,
    /// How trajectories become training sequences: `"conversation"` (the whole dialogue as one
    /// sequence, cut into pieces when longer than `max_context`) or `"windows"` (one sequence
    /// per trainable answer, its acting prompt first); see [`super::chat::sequences`].
    pub sequences: SequenceForm,
    /// Most tokens of earlier, untrained history a piece of a trajectory longer than
    /// `max_context` opens with (after the system prompt and the instruction). Default: a quarter
    /// of `max_context`.
    pub overlap: Option<usize>,
    /// Pack several training sequences end to end into rows of up to `max_context` tokens (each
    /// attends only to itself), so that short sequences do not pad a batch out to its longest.
    pub pack: bool,
    /// Rows per micro-batch (a row is one sequence, or several packed ones; with
    /// `[policy.train] devices`, across all of them: each device trains on its share).
    pub batch_size: usize,
    /// Optimisation.
    pub train: TrainSettings,
    /// `[policy.lora]`: train low-rank adapters instead of every weight (see the `lora` module).
    pub lora: Option<LoraSettings>,
    /// The dtype checkpoints are written in (`"f32"`, `"bf16"`).
    pub save_dtype: SaveDtype,
    /// Checkpoints larger than this many bytes are written as shards with an index.
    pub max_shard_bytes: usize,
    /// `[policy.server]`: act through an inference server serving each saved checkpoint
    /// ([`crate::policy::ServedPolicy`]); training stays here.
    pub server: Option<crate::policy::ServedConfig>,
}

impl Default for LmSettings {
    fn default() -> Self {
        LmSettings {
            backend: BackendKind::default(),
            precision: Precision::default(),
            device: 0,
            model: LlamaConfig::tiny(512),
            init: None,
            accept_config_keys: Vec::new(),
            chat: ChatSettings::default(),
            vocab_size: 512,
            max_context: 384,
            max_new_tokens: 32,
            top_p: 0.95,
            constrained: Constrained::Prefix,
            kv_reuse: true,
            kv_cache_tokens: 65_536,
            pad_to: 32,
            sequences: SequenceForm::Conversation,
            overlap: None,
            pack: true,
            batch_size: 8,
            train: TrainSettings::default(),
            lora: None,
            save_dtype: SaveDtype::F32,
            max_shard_bytes: 5_000_000_000,
            server: None,
        }
    }
}

/// How an [`super::LmPolicy`] uses the valid actions an environment offers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Constrained {
    /// Decode through the token trie of the valid actions (batched; one decoding pass).
    #[default]
    Prefix,
    /// Score every valid action by its total log-likelihood and take the best (or sample from
    /// their softmax at the request's temperature). One request at a time.
    Score,
    /// Ignore them and generate freely.
    Off,
}

impl LmSettings {
    /// Checks what can be checked before training: the architecture, the chat settings and the
    /// LoRA settings (the backend is checked by [`super::lm_policy`], a model folder when it is
    /// loaded).
    pub fn validate(&self) -> Result<(), String> {
        self.model.validate().map_err(|e| format!("[policy.model] {e}"))?;
        self.chat.date()?;
        if self.chat.answer == AnswerFormat::React && self.constrained != Constrained::Off {
            return Err(format!(
                "[policy] constrained = \"{}\" cannot be used with [policy.chat] answer = \"react\": a ReAct answer starts with a free-form \
                 thought; set constrained = \"off\" (an answer without a valid action is answered by the environment as an invalid action)",
                format!("{:?}", self.constrained).to_lowercase()
            ));
        }
        if let Some(o) = self.overlap.filter(|&o| o >= self.max_context) {
            return Err(format!("[policy] overlap ({o}) must be smaller than max_context ({}): a piece opens with at most that much earlier history", self.max_context));
        }
        if self.max_new_tokens >= self.max_context {
            return Err(format!("[policy] max_new_tokens ({}) must be smaller than max_context ({})", self.max_new_tokens, self.max_context));
        }
        self.validate_devices()?;
        match &self.lora {
            Some(l) => l.validate(),
            None => Ok(()),
        }
    }

    /// `[policy.train] devices`: each index once, the first being `[policy] device` when that is
    /// set, and at least one sequence per device in a micro-batch.
    fn validate_devices(&self) -> Result<(), String> {
        let d = &self.train.devices;
        if let Some(dup) = d.iter().enumerate().find_map(|(i, x)| d[..i].contains(x).then_some(*x)) {
            return Err(format!("[policy.train] devices lists device {dup} twice: each device holds one copy of the model; list each index once"));
        }
        if let Some(&first) = d.first() {
            if self.device != 0 && self.device != first {
                return Err(format!(
                    "[policy] device = {} but [policy.train] devices starts with {first}: with devices, the policy acts on the first of them; drop `device` or list it first",
                    self.device
                ));
            }
        }
        if let Some(cluster) = &self.train.cluster {
            cluster.validate()?;
            if self.precision == Precision::Bf16 && self.lora.is_some() {
                return Err("[policy.train.cluster] with precision = \"bf16\" and [policy.lora]: the nodes would receive the f32 adapters and their optimizer state in bf16 and drift from the driver; train LoRA across machines with precision = \"f32\", or on one machine's devices".into());
            }
        }
        if d.len() > 1 && self.batch_size < d.len() {
            return Err(format!(
                "[policy] batch_size = {} is split across the {} [policy.train] devices: it must be at least {} (one sequence per device)",
                self.batch_size,
                d.len(),
                d.len()
            ));
        }
        Ok(())
    }

    /// The backend these settings name.
    pub fn backend_choice(&self) -> BackendChoice {
        BackendChoice { backend: self.backend, precision: self.precision, device: self.device }
    }

    /// How [`super::chat::Chat::sequences`] makes this policy's training sequences.
    pub fn sequence_settings(&self) -> SequenceSettings {
        SequenceSettings { form: self.sequences, max_len: self.max_context, prompt_budget: self.prompt_budget(), overlap: self.overlap.unwrap_or(self.max_context / 4) }
    }

    /// Prompt tokens kept before an answer: the context less room for the answer.
    pub fn prompt_budget(&self) -> usize {
        self.max_context.saturating_sub(self.max_new_tokens).max(8)
    }
}
