//! [`LmPolicy`]: the language-model policy, plugged into the runtime's [`Policy`] trait.
//!
//! - **Acting.** The dialogue is rendered with the chat template; all requests of a batch are
//!   decoded together with a key-value cache ([`super::decode`]): temperature and top-p sampling
//!   from each request's own seed (greedy at 0), stopping at `<|end|>`, or, when the environment
//!   offers valid actions, constrained to them ([`Constrained`]).
//! - **Training.** Each trainable action becomes one window: the prompt acting would see, then the
//!   action, whose tokens alone carry loss ([`template::action_windows`]).
//!   A model trained from scratch first trains a byte-level BPE on the training text.
//! - **Checkpoints.** `tokenizer.json`, `config.json` and `model.safetensors` (Hugging Face
//!   layout) in the checkpoint directory; during training, every `checkpoint_every` optimizer
//!   steps, the full training state in `TrainConfig::checkpoint_dir` ([`super::checkpoint`]),
//!   from which a killed run resumes.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use burn::module::AutodiffModule;
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use super::kernels::LmAutodiffBackend;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use super::backend::{BackendChoice, BackendKind, BackendVisitor, Precision};
use super::checkpoint::{self, TrainProgress};
use super::config::LlamaConfig;
use super::lora::LoraSettings;
use super::decode::{decode, last_log_probs, sample, DecodeRow, DecodeSettings, Decoded};
use super::llama::Llama;
use super::template;
use super::tokenizer::Tok;
use super::train::{Batch, TrainSettings, Trainer};
use super::weights::{load_safetensors, save_safetensors};
use crate::policy::{Act, ActRequest, Policy, PolicyError, TrainConfig, TrainReport};
use crate::trajectory::Trajectory;

/// Settings of an [`LmPolicy`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LmSettings {
    /// The burn backend (`"cpu"`, `"ndarray"`, `"flex"`, `"cuda"`, `"wgpu"`); see [`super::backend`].
    pub backend: BackendKind,
    /// `"f32"` or `"bf16"` (CUDA, wgpu).
    pub precision: Precision,
    /// GPU index.
    pub device: usize,
    /// The architecture of a model trained from scratch (its vocabulary follows the tokenizer).
    pub model: LlamaConfig,
    /// A Hugging Face checkpoint directory (`config.json`, `model.safetensors`,
    /// `tokenizer.json`) to start from instead.
    pub init: Option<PathBuf>,
    /// Vocabulary of a BPE trained from scratch.
    pub vocab_size: usize,
    /// Longest dialogue kept (older turns are cut).
    pub max_context: usize,
    /// Longest generated action.
    pub max_new_tokens: usize,
    /// Nucleus sampling mass.
    pub top_p: f32,
    /// How offered valid actions constrain the answer (`"prefix"`, `"score"` or `"off"`).
    pub constrained: Constrained,
    /// Prompts are left-padded to a multiple of this many tokens when batched (see
    /// [`super::decode`]); larger values batch more episodes together, smaller waste less.
    pub pad_to: usize,
    /// Sequences per micro-batch.
    pub batch_size: usize,
    /// Optimisation.
    pub train: TrainSettings,
    /// `[policy.lora]`: train low-rank adapters instead of every weight (see [`super::lora`]).
    pub lora: Option<LoraSettings>,
}

impl Default for LmSettings {
    fn default() -> Self {
        LmSettings {
            backend: BackendKind::default(),
            precision: Precision::default(),
            device: 0,
            model: LlamaConfig::tiny(512),
            init: None,
            vocab_size: 512,
            max_context: 384,
            max_new_tokens: 32,
            top_p: 0.95,
            constrained: Constrained::Prefix,
            pad_to: 32,
            batch_size: 8,
            train: TrainSettings::default(),
            lora: None,
        }
    }
}

/// How an [`LmPolicy`] uses the valid actions an environment offers.
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
    /// Checks what can be checked before training: the architecture and the LoRA settings
    /// (the backend is checked by [`lm_policy`]).
    pub fn validate(&self) -> Result<(), String> {
        self.model.validate().map_err(|e| format!("[policy.model] {e}"))?;
        match &self.lora {
            Some(l) => l.validate(),
            None => Ok(()),
        }
    }

    /// The backend these settings name.
    pub fn backend_choice(&self) -> BackendChoice {
        BackendChoice { backend: self.backend, precision: self.precision, device: self.device }
    }
}

/// Builds an [`LmPolicy`] on the backend the settings name (e.g. `[policy] backend = "cuda"`),
/// boxed; fails with a message naming the cargo feature when that backend is not compiled in.
pub fn lm_policy(settings: LmSettings) -> Result<Box<dyn Policy>, super::BackendError> {
    struct Build(LmSettings);
    impl BackendVisitor for Build {
        type Output = Box<dyn Policy>;
        fn visit<B: LmAutodiffBackend>(self, name: &str, device: B::Device) -> Box<dyn Policy> {
            tracing::debug!(backend = name, "language-model policy");
            Box::new(LmPolicy::<B>::new(self.0, device))
        }
    }
    super::backend::visit(settings.backend_choice(), Build(settings))
}

struct State<B: LmAutodiffBackend> {
    tok: Tok,
    config: LlamaConfig,
    model: Llama<B>,
    infer: Llama<B::InnerBackend>,
}

/// A Llama policy on backend `B` (e.g. [`super::CpuTrain`]).
pub struct LmPolicy<B: LmAutodiffBackend> {
    settings: LmSettings,
    device: B::Device,
    state: Mutex<Option<State<B>>>,
}

impl<B: LmAutodiffBackend> std::fmt::Debug for LmPolicy<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LmPolicy").field("settings", &self.settings).finish_non_exhaustive()
    }
}

fn other(e: impl std::fmt::Display) -> PolicyError {
    PolicyError::Other(e.to_string())
}

impl<B: LmAutodiffBackend> LmPolicy<B> {
    /// A policy with no weights yet: the first `train` builds the tokenizer and the model (or
    /// `settings.init` is loaded then).
    pub fn new(settings: LmSettings, device: B::Device) -> Self {
        LmPolicy { settings, device, state: Mutex::new(None) }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Option<State<B>>>, PolicyError> {
        self.state.lock().map_err(|_| other("policy state poisoned"))
    }

    fn init_state(&self, data: &[Trajectory], seed: u64) -> Result<State<B>, PolicyError> {
        if let Some(dir) = &self.settings.init {
            return self.load_dir(dir);
        }
        let corpus: Vec<String> = data.iter().flat_map(template::corpus).collect();
        let tok = Tok::train_bpe(&corpus, self.settings.vocab_size).map_err(other)?;
        let config = LlamaConfig { vocab_size: tok.vocab_size(), ..self.settings.model.clone() };
        config.validate().map_err(other)?;
        let model = Llama::seeded(&config, seed, &self.device);
        Ok(State { infer: model.valid(), tok, config, model })
    }

    fn load_dir(&self, dir: &Path) -> Result<State<B>, PolicyError> {
        let tok = Tok::from_file(&dir.join("tokenizer.json")).map_err(other)?;
        let (mut config, mut model) = load_safetensors::<B>(dir, &self.device).map_err(other)?;
        if tok.vocab_size() > config.vocab_size {
            // A pretrained tokenizer without the template's special tokens: they were added, and
            // the embedding grows to hold them.
            tracing::info!(from = config.vocab_size, to = tok.vocab_size(), "vocabulary resized for the chat template's special tokens");
            model = model.resize_vocab(tok.vocab_size());
            config.vocab_size = tok.vocab_size();
        }
        Ok(State { infer: model.valid(), tok, config, model })
    }

    fn tensor(&self, ids: &[u32]) -> Tensor<B::InnerBackend, 2, Int> {
        Tensor::from_data(TensorData::new(ids.iter().map(|&i| i as i64).collect::<Vec<_>>(), [1, ids.len()]), &self.device)
    }

    /// Trains `model` on the token windows `seqs`, resuming from and writing to
    /// `config.checkpoint_dir`. Returns the model (also after an error) and the last loss.
    fn fit(&self, model: Llama<B>, seqs: &[(Vec<u32>, Vec<bool>)], pad: u32, config: &TrainConfig) -> (Llama<B>, Result<Option<f32>, PolicyError>) {
        let bs = self.settings.batch_size.max(1);
        let epochs = config.epochs.max(1);
        let steps = epochs * seqs.len().div_ceil(bs) / self.settings.train.accumulation.max(1);
        let settings = TrainSettings { total_steps: steps.max(1), ..self.settings.train.clone() };
        // The run's identity: a checkpoint left by other data or settings is not resumed.
        let lora = &self.settings.lora;
        let mix = |h: u64, x: u64| crate::seed::splitmix64(h ^ x);
        let fingerprint = seqs.iter().fold(crate::seed::derive(config.seed, &format!("{epochs}/{bs}/{settings:?}/{lora:?}")), |h, (ids, mask)| {
            ids.iter().zip(mask).fold(mix(h, ids.len() as u64), |h, (&id, &trained)| mix(h, u64::from(id) << 1 | u64::from(trained)))
        });
        let model = match lora {
            Some(l) => model.with_lora(l, crate::seed::derive(config.seed, "lora")),
            None => model,
        };
        tracing::debug!(trainable = model.trainable_parameters(), "training");
        let mut trainer = Trainer::new(model, settings.clone());
        let ckpt_dir = config.checkpoint_dir.as_deref();
        let restored = match ckpt_dir {
            Some(dir) => checkpoint::restore(dir, fingerprint, &mut trainer, &self.device),
            None => Ok(None),
        };
        let mut progress = match restored {
            Ok(p) => p.unwrap_or_else(|| TrainProgress::start(fingerprint)),
            Err(e) => return (trainer.into_model().merge_lora(), Err(other(e))),
        };
        if progress.micro > 0 {
            tracing::info!(step = progress.step, epoch = progress.epoch, "training resumed from its checkpoint");
        }
        for epoch in 0..epochs {
            // Each epoch's order depends only on the seed and the epoch (nothing to save).
            let mut order: Vec<usize> = (0..seqs.len()).collect();
            order.shuffle(&mut crate::seed::rng(crate::seed::derive_n(config.seed, epoch as u64)));
            for (batch, chunk) in order.chunks(bs).enumerate() {
                if progress.done(epoch, batch) {
                    continue;
                }
                let micro: Vec<(Vec<u32>, Vec<bool>)> = chunk.iter().map(|&i| seqs[i].clone()).collect();
                let loss = trainer.micro_step(Batch::new(&micro, pad, &self.device));
                progress = TrainProgress { epoch, batch: batch + 1, step: trainer.step, micro: trainer.micro_steps(), loss, ..progress };
                let every = settings.checkpoint_every;
                if let (Some(dir), true) = (ckpt_dir, every > 0 && trainer.at_step_boundary() && trainer.step.is_multiple_of(every)) {
                    if let Err(e) = checkpoint::save(dir, &trainer, &progress) {
                        return (trainer.into_model().merge_lora(), Err(PolicyError::Checkpoint { path: dir.display().to_string(), message: e }));
                    }
                }
            }
        }
        if let Some(dir) = ckpt_dir {
            // Finished: the caller saves the trained policy; the mid-training state is spent.
            let _ = std::fs::remove_dir_all(dir);
        }
        (trainer.into_model().merge_lora(), Ok(Some(progress.loss)))
    }

    /// Prompt tokens kept before an action: the context less room for the action.
    fn prompt_budget(&self) -> usize {
        self.settings.max_context.saturating_sub(self.settings.max_new_tokens).max(8)
    }

    fn prompt(&self, s: &State<B>, r: &ActRequest) -> Vec<u32> {
        template::prompt(&s.tok, &r.instruction, &r.history, &r.observation).keep_last(self.prompt_budget()).ids
    }

    /// Scores each valid action by its total log-likelihood ([`Constrained::Score`]).
    fn act_scored(&self, s: &State<B>, r: &ActRequest, valid: &[String]) -> Act {
        let mut rng = crate::seed::rng(r.seed);
        let mut cache = s.infer.new_cache();
        let first = last_log_probs(s.infer.forward(self.tensor(&self.prompt(s, r)), &mut cache)).remove(0);
        let scores: Vec<f32> = valid
            .iter()
            .map(|a| {
                let ids = template::action(&s.tok, a);
                let mut c = cache.clone();
                let mut lp = first[ids[0] as usize];
                if ids.len() > 1 {
                    let logits = s.infer.forward(self.tensor(&ids[..ids.len() - 1]), &mut c);
                    let [_, t, v] = logits.dims();
                    let all: Vec<f32> = log_softmax(logits.reshape([t, v]), 1).into_data().convert::<f32>().to_vec().unwrap_or_default();
                    lp += ids[1..].iter().enumerate().map(|(i, &id)| all[i * v + id as usize]).sum::<f32>();
                }
                lp
            })
            .collect();
        Act::new(valid[sample(&scores, r.temperature, 1.0, &mut rng)].clone())
    }

    /// Every request that is not scored goes through one batched decoding pass.
    fn act_all(&self, s: &State<B>, requests: &[ActRequest]) -> Vec<Act> {
        let mut out: Vec<Option<Act>> = vec![None; requests.len()];
        let mut batch = Vec::new();
        let mut rows = Vec::new();
        for (i, r) in requests.iter().enumerate() {
            let valid = r.valid_actions.as_deref().filter(|v| !v.is_empty());
            let choices = match (self.settings.constrained, valid) {
                (Constrained::Score, Some(v)) => {
                    out[i] = Some(self.act_scored(s, r, v));
                    continue;
                }
                (Constrained::Prefix, Some(v)) => Some(v.iter().map(|a| template::action(&s.tok, a)).collect()),
                _ => None,
            };
            batch.push(i);
            rows.push(DecodeRow { prompt: self.prompt(s, r), choices, temperature: r.temperature, rng: crate::seed::rng(r.seed) });
        }
        let settings = DecodeSettings {
            end: s.tok.end,
            pad: s.tok.pad,
            max_new_tokens: self.settings.max_new_tokens,
            top_p: self.settings.top_p,
            pad_to: self.settings.pad_to,
        };
        for (i, d) in batch.into_iter().zip(decode(&s.infer, rows, settings, &self.device)) {
            let r = &requests[i];
            out[i] = Some(match d {
                Decoded::Choice(c) => Act::new(r.valid_actions.as_ref().map(|v| v[c].clone()).unwrap_or_default()),
                Decoded::Tokens(t) => Act::new(s.tok.decode(&t).trim().to_owned()),
            });
        }
        out.into_iter().map(|a| a.expect("every request answered")).collect()
    }
}

impl<B: LmAutodiffBackend> Policy for LmPolicy<B> {
    fn name(&self) -> String {
        "llama".into()
    }

    fn act_batch(&self, requests: &[ActRequest]) -> Vec<Result<Act, PolicyError>> {
        let guard = match self.lock() {
            Ok(g) => g,
            Err(e) => return requests.iter().map(|_| Err(e.clone())).collect(),
        };
        match guard.as_ref() {
            Some(s) => self.act_all(s, requests).into_iter().map(Ok).collect(),
            None => requests.iter().map(|_| Err(other("the language-model policy has no weights yet: train or load it first"))).collect(),
        }
    }

    fn train(&mut self, data: &[Trajectory], config: &TrainConfig) -> Result<TrainReport, PolicyError> {
        let mut guard = self.lock()?;
        // The state leaves the lock while training, so no second copy of the weights is held.
        let State { tok, config: model_config, model, .. } = match guard.take() {
            Some(s) => s,
            None => self.init_state(data, config.seed)?,
        };
        let budget = self.prompt_budget();
        let seqs: Vec<(Vec<u32>, Vec<bool>)> = data.iter().flat_map(|t| template::action_windows(&tok, t, budget)).map(|w| (w.ids, w.trainable)).collect();
        let report = TrainReport { trajectories: data.len(), trainable_turns: data.iter().map(Trajectory::trainable_turns).sum(), loss: None };
        let (model, result) = if seqs.is_empty() { (model, Ok(None)) } else { self.fit(model, &seqs, tok.pad, config) };
        *guard = Some(State { infer: model.valid(), tok, config: model_config, model });
        Ok(TrainReport { loss: result?.map(f64::from), ..report })
    }

    fn save(&self, dir: &Path) -> Result<(), PolicyError> {
        let guard = self.lock()?;
        let s = guard.as_ref().ok_or_else(|| other("nothing to save: the policy has no weights yet"))?;
        let ck = |e: String| PolicyError::Checkpoint { path: dir.display().to_string(), message: e };
        s.tok.save(&dir.join("tokenizer.json")).map_err(ck)?;
        save_safetensors(dir, &s.config, &s.model).map_err(|e| ck(e.to_string()))
    }

    fn load(&mut self, dir: &Path) -> Result<(), PolicyError> {
        let state = self.load_dir(dir)?;
        *self.lock()? = Some(state);
        Ok(())
    }
}
