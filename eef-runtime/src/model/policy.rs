//! [`LmPolicy`]: the language-model policy, plugged into the runtime's [`Policy`] trait.
//!
//! - **Starting point.** A Hugging Face model folder (`[policy] init`: its config, weights,
//!   tokenizer, chat template and eos ids, see [`super::hf`] and [`super::chat`]), or, without
//!   one, a model trained from scratch with a byte-level BPE trained on the expert data and the
//!   compact template.
//! - **Acting.** Each request's dialogue is rendered with the chat template ([`Chat::prompt`]);
//!   all requests of a batch are decoded together with a key-value cache ([`super::decode`]):
//!   temperature and top-p sampling from each request's own seed (greedy at 0), stopping at any
//!   stop token, or, when the environment offers valid actions, constrained to them
//!   ([`Constrained`]). The action is read from the answer by [`Chat::parse`].
//! - **Training.** Each trajectory becomes one sequence, the whole conversation with loss on its
//!   trainable answers only (pieces when it is longer than `max_context`; one window per answer
//!   with `sequences = "windows"`; [`Chat::sequences`]); sequences are packed into rows of up to
//!   `max_context` tokens ([`super::row::pack`]) unless `pack = false`.
//! - **Checkpoints.** A model folder in Hugging Face's layout: `config.json`, the weights (sharded
//!   above `max_shard_bytes`) and the tokenizer files. With LoRA, a PEFT adapter folder
//!   (`adapter_config.json`, `adapter_model.safetensors`) over the `init` model instead, plus the
//!   merged weights when `[policy.lora] export_merged`. During training, every
//!   `checkpoint_every` optimizer steps, the full training state in
//!   `TrainConfig::checkpoint_dir` ([`super::checkpoint`]), from which a killed run resumes.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use burn::module::AutodiffModule;
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use rand::seq::SliceRandom;

use super::backend::BackendVisitor;
use super::chat::{self, folder::TOKENIZER_FILES, Chat, SequenceStats, TemplateChoice};
use super::row::{self, Row};
use super::checkpoint::{self, TrainProgress};
use super::config::LlamaConfig;
use super::decode::{decode, last_log_probs, sample, DecodeRow, DecodeSettings, Decoded};
use super::hf::{self, peft, LoadOptions, SaveOptions, TokenIds};
use super::kernels::LmAutodiffBackend;
use super::llama::Llama;
use super::settings::{Constrained, LmSettings};
use super::tokenizer::Tok;
use super::meter::StepMeter;
use super::prefix_cache::{CacheStats, PrefixCache};
use super::train::{Batch, TrainSettings, Trainer};
use super::data_parallel::{ModelShape, Peers};
use super::dpo;
use crate::policy::{Act, ActRequest, DpoConfig, Policy, PolicyError, TrainConfig, TrainReport};
use crate::selection::PreferencePair;
use crate::trajectory::Trajectory;

/// Builds an [`LmPolicy`] on the backend the settings name (e.g. `[policy] backend = "cuda"`),
/// boxed; fails with a message naming the cargo feature when that backend is not compiled in.
pub fn lm_policy(settings: LmSettings) -> Result<Box<dyn Policy>, super::BackendError> {
    struct Build(LmSettings);
    impl BackendVisitor for Build {
        type Output = Box<dyn Policy>;
        fn visit<B: LmAutodiffBackend>(self, name: &str, device: B::Device) -> Box<dyn Policy> {
            self.visit_devices::<B>(name, vec![device])
        }
        fn visit_devices<B: LmAutodiffBackend>(self, name: &str, devices: Vec<B::Device>) -> Box<dyn Policy> {
            tracing::debug!(backend = name, devices = devices.len(), "language-model policy");
            Box::new(LmPolicy::<B>::with_devices(self.0, devices))
        }
    }
    let devices = settings.train.devices.clone();
    super::backend::visit_devices(settings.backend_choice(), &devices, Build(settings))
}

struct State<B: LmAutodiffBackend> {
    chat: Chat,
    config: LlamaConfig,
    model: Llama<B>,
    infer: Llama<B::InnerBackend>,
    /// The pretrained folder the tokenizer files come from (copied into every checkpoint).
    source: Option<PathBuf>,
    /// Keys and values of earlier turns, for acting ([`super::prefix_cache`]).
    cache: Mutex<PrefixCache<B::InnerBackend>>,
}

impl<B: LmAutodiffBackend> State<B> {
    fn new(chat: Chat, config: LlamaConfig, model: Llama<B>, source: Option<PathBuf>, settings: &LmSettings) -> Self {
        let limit = if settings.kv_reuse { settings.kv_cache_tokens } else { 0 };
        State { infer: model.valid(), chat, config, model, source, cache: Mutex::new(PrefixCache::new(limit)) }
    }
}

/// A Llama policy on backend `B` (e.g. [`super::CpuTrain`]).
pub struct LmPolicy<B: LmAutodiffBackend> {
    settings: LmSettings,
    /// The devices: acting on the first, training data-parallel over all (never empty; one: no
    /// data parallelism).
    devices: Vec<B::Device>,
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
    ///
    /// `[policy.train] devices` with several entries trains data-parallel with that many peers,
    /// all on `device` (which is what they mean on the CPU); [`LmPolicy::with_devices`] places
    /// them, and [`lm_policy`] maps the indices to the backend's devices.
    pub fn new(settings: LmSettings, device: B::Device) -> Self {
        let devices = vec![device.clone(); settings.train.devices.len().max(1)];
        Self::with_devices(settings, devices)
    }

    /// A policy that acts on `devices[0]` and trains data-parallel over all of `devices` (one:
    /// no data parallelism); see [`super::data_parallel`].
    pub fn with_devices(settings: LmSettings, devices: Vec<B::Device>) -> Self {
        let devices = if devices.is_empty() { vec![B::Device::default()] } else { devices };
        LmPolicy { settings, devices, state: Mutex::new(None) }
    }

    /// What reusing earlier turns' keys and values saved since the weights were last loaded or
    /// trained ([`super::prefix_cache`]).
    pub fn cache_stats(&self) -> CacheStats {
        self.lock().ok().and_then(|g| g.as_ref().and_then(|s| s.cache.lock().ok().map(|c| c.stats()))).unwrap_or_default()
    }

    /// The device the policy acts on (and the first of the training devices).
    fn device(&self) -> &B::Device {
        &self.devices[0]
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Option<State<B>>>, PolicyError> {
        self.state.lock().map_err(|_| other("policy state poisoned"))
    }

    fn init_state(&self, data: &[Trajectory], seed: u64) -> Result<State<B>, PolicyError> {
        if let Some(dir) = &self.settings.init {
            return self.load_pretrained(dir);
        }
        if self.settings.chat.template == TemplateChoice::Model {
            return Err(other("[policy.chat] template = \"model\" needs a model folder: set [policy] init"));
        }
        let chat = self.chat_for(data)?;
        let config = LlamaConfig { vocab_size: chat.tok().vocab_size(), ..self.settings.model.clone() };
        config.validate().map_err(other)?;
        let model = Llama::seeded(&config, seed, self.device());
        Ok(State::new(chat, config, model, None, &self.settings))
    }

    /// The chat (tokenizer and template) training on `data` would use: the `init` folder's, or,
    /// for a model trained from scratch, a byte-level BPE trained on `data` with the compact
    /// template (what the first [`Policy::train`] builds; no weights are made).
    pub fn chat_for(&self, data: &[Trajectory]) -> Result<Chat, PolicyError> {
        if let Some(dir) = &self.settings.init {
            let ck = |e: String| PolicyError::Checkpoint { path: dir.display().to_string(), message: e };
            let tok = Tok::from_file(&dir.join("tokenizer.json")).map_err(ck)?;
            return Chat::from_folder(dir, tok, self.settings.chat.clone()).map_err(ck);
        }
        let corpus: Vec<String> = data.iter().flat_map(chat::corpus).collect();
        let tok = Tok::train_bpe(&corpus, self.settings.vocab_size).map_err(other)?;
        Chat::compact(tok, self.settings.chat.clone()).map_err(other)
    }

    /// Loads a Hugging Face model folder (a pretrained model or a checkpoint of this policy
    /// without adapters).
    fn load_pretrained(&self, dir: &Path) -> Result<State<B>, PolicyError> {
        let ck = |e: String| PolicyError::Checkpoint { path: dir.display().to_string(), message: e };
        let mut config = hf::read_config(dir, &self.settings.accept_config_keys).map_err(|e| ck(e.to_string()))?;
        config.check_context(self.settings.max_context).map_err(ck)?;
        let tok = Tok::from_file(&dir.join("tokenizer.json")).map_err(ck)?;
        let chat = Chat::from_folder(dir, tok, self.settings.chat.clone()).map_err(ck)?;
        let mut model = hf::load::load_weights::<B>(dir, &config, self.device(), LoadOptions::default()).map_err(|e| ck(e.to_string()))?;
        if chat.tok().vocab_size() > config.vocab_size {
            // The compact template's tokens on a pretrained tokenizer that lacks them: they were
            // added, and the embedding grows to hold them.
            tracing::info!(from = config.vocab_size, to = chat.tok().vocab_size(), "vocabulary resized for the compact template's special tokens");
            model = model.resize_vocab(chat.tok().vocab_size());
            config.vocab_size = chat.tok().vocab_size();
        }
        let source = (!chat.is_compact()).then(|| dir.to_owned());
        Ok(State::new(chat, config, model, source, &self.settings))
    }

    /// Loads a checkpoint: a PEFT adapter folder over the `init` model, or a full model folder.
    fn load_dir(&self, dir: &Path) -> Result<State<B>, PolicyError> {
        if !dir.join(peft::CONFIG).exists() {
            return self.load_pretrained(dir);
        }
        let base = self.settings.init.as_deref().ok_or_else(|| PolicyError::Checkpoint {
            path: dir.display().to_string(),
            message: "holds a LoRA adapter: [policy] init must name the model it adapts".into(),
        })?;
        let state = self.load_pretrained(base)?;
        let (model, _) = peft::load_adapter(dir, state.model, self.device()).map_err(|e| PolicyError::Checkpoint { path: dir.display().to_string(), message: e.to_string() })?;
        Ok(State::new(state.chat, state.config, model, state.source, &self.settings))
    }

    /// The training sequences of `trajectories` (one row each, unpacked), numbered in order,
    /// with their counts.
    fn windows_of<'a>(&self, chat: &Chat, trajectories: impl IntoIterator<Item = &'a Trajectory>) -> Result<(dpo::Windows, SequenceStats), PolicyError> {
        let settings = self.settings.sequence_settings();
        let mut w = dpo::Windows::default();
        let mut stats = SequenceStats::default();
        for (i, t) in trajectories.into_iter().enumerate() {
            let (seqs, s) = chat.sequences(t, &settings).map_err(|e| other(format!("trajectory {}: {e}", t.id)))?;
            stats.add(&s);
            w.push(i, seqs.into_iter().map(Row::from));
        }
        stats.rows = w.seqs.len();
        Ok((w, stats))
    }

    /// Each trajectory's log-likelihood under the current weights: the sum of the
    /// log-probabilities of its trainable action tokens, in its training sequences (what DPO
    /// compares).
    pub fn log_likelihoods(&self, trajectories: &[Trajectory]) -> Result<Vec<f64>, PolicyError> {
        let guard = self.lock()?;
        let s = guard.as_ref().ok_or_else(|| other("the language-model policy has no weights yet: train or load it first"))?;
        let (w, _) = self.windows_of(&s.chat, trajectories)?;
        let mut out = dpo::log_likelihoods(&s.infer, &w, s.chat.pad(), self.settings.batch_size.max(1), self.device());
        out.resize(trajectories.len(), 0.0);
        Ok(out)
    }

    fn tensor(&self, ids: &[u32]) -> Tensor<B::InnerBackend, 2, Int> {
        Tensor::from_data(TensorData::new(ids.iter().map(|&i| i as i64).collect::<Vec<_>>(), [1, ids.len()]), self.device())
    }

    /// Trains `model` on the rows `seqs`, resuming from and writing to `config.checkpoint_dir`.
    /// Returns the model (also after an error) and the last loss.
    fn fit(&self, model: Llama<B>, model_config: &LlamaConfig, seqs: &[Row], pad: u32, config: &TrainConfig) -> (Llama<B>, Result<Option<f32>, PolicyError>) {
        let bs = self.settings.batch_size.max(1);
        let epochs = config.epochs.max(1);
        let steps = epochs * seqs.len().div_ceil(bs) / self.settings.train.accumulation.max(1);
        let settings = TrainSettings { total_steps: steps.max(1), ..self.settings.train.clone() };
        // The run's identity: a checkpoint left by other data or settings is not resumed.
        let lora = &self.settings.lora;
        let mix = |h: u64, x: u64| crate::seed::splitmix64(h ^ x);
        let fingerprint = seqs.iter().fold(crate::seed::derive(config.seed, &format!("{epochs}/{bs}/{settings:?}/{lora:?}")), |h, row| {
            let h = row.starts.iter().fold(mix(h, row.len() as u64), |h, &s| mix(h, s as u64));
            row.ids.iter().zip(&row.trainable).fold(h, |h, (&id, &trained)| mix(h, u64::from(id) << 1 | u64::from(trained)))
        });
        let model = match lora {
            Some(l) => model.with_lora(l, crate::seed::derive(config.seed, "lora")),
            None => model,
        };
        tracing::debug!(trainable = model.trainable_parameters(), "training");
        let mut trainer = Trainer::new(model, settings.clone());
        let ckpt_dir = config.checkpoint_dir.as_deref();
        let restored = match ckpt_dir {
            Some(dir) => checkpoint::restore(dir, fingerprint, &mut trainer, self.device()),
            None => Ok(None),
        };
        let mut progress = match restored {
            Ok(p) => p.unwrap_or_else(|| TrainProgress::start(fingerprint)),
            Err(e) => return (trainer.into_model(), Err(other(e))),
        };
        if progress.micro > 0 {
            tracing::warn!(step = progress.step, epoch = progress.epoch, "training resumed from its checkpoint");
        }
        let outcome = self.data_parallel(&mut trainer, pad, self.shape(model_config), |trainer, peers| -> Result<(), PolicyError> {
            let mut meter = StepMeter::default();
            for epoch in 0..epochs {
                // Each epoch's order depends only on the seed and the epoch (nothing to save).
                let mut order: Vec<usize> = (0..seqs.len()).collect();
                order.shuffle(&mut crate::seed::rng(crate::seed::derive_n(config.seed, epoch as u64)));
                for (batch, chunk) in order.chunks(bs).enumerate() {
                    if progress.done(epoch, batch) {
                        continue;
                    }
                    if config.stop.is_raised() && trainer.at_step_boundary() {
                        // Ctrl-C: keep the work done so far and stop within one optimizer step.
                        if let Some(dir) = ckpt_dir {
                            checkpoint::save(dir, trainer, &progress).map_err(|e| PolicyError::Checkpoint { path: dir.display().to_string(), message: e })?;
                            tracing::warn!(step = progress.step, dir = %dir.display(), "training stopped; its checkpoint is saved and the next run resumes from it");
                        }
                        return Err(PolicyError::Cancelled);
                    }
                    let micro: Vec<Row> = chunk.iter().map(|&i| seqs[i].clone()).collect();
                    let batch_tokens = micro.len() * micro.iter().map(Row::len).max().unwrap_or(0);
                    let loss = match peers {
                        None => trainer.micro_step(Batch::rows(&micro, pad, self.device())),
                        Some(p) => p.micro_step(trainer, &micro).map_err(other)?,
                    };
                    progress = TrainProgress { epoch, batch: batch + 1, step: trainer.step, micro: trainer.micro_steps(), loss, ..progress };
                    meter.micro(loss, batch_tokens);
                    if trainer.at_step_boundary() {
                        meter.step(&config.live, "sft", trainer.step, &settings, (epoch, epochs));
                    }
                    let every = settings.checkpoint_every;
                    if let (Some(dir), true) = (ckpt_dir, every > 0 && trainer.at_step_boundary() && trainer.step.is_multiple_of(every)) {
                        checkpoint::save(dir, trainer, &progress).map_err(|e| PolicyError::Checkpoint { path: dir.display().to_string(), message: e })?;
                    }
                }
            }
            Ok(())
        });
        if let Err(e) = outcome {
            return (trainer.into_model(), Err(e));
        }
        if let Some(dir) = ckpt_dir {
            // Finished: the caller saves the trained policy; the mid-training state is spent.
            let _ = std::fs::remove_dir_all(dir);
        }
        // Without LoRA the model is plain; with it the adapters stay attached (saved as a PEFT
        // adapter, trained further by the next call that starts from this policy).
        (trainer.into_model(), Ok(Some(progress.loss)))
    }

    /// The shape of a model with `config` as this policy trains it (a node on another machine
    /// rebuilds it from this).
    fn shape<'a>(&'a self, config: &'a LlamaConfig) -> ModelShape<'a> {
        ModelShape { config, lora: self.settings.lora.as_ref() }
    }

    /// Runs `body` on `trainer` alone, or, with `[policy.train] devices` naming several, as
    /// peer 0 of a data-parallel group over them ([`super::data_parallel`]).
    fn data_parallel<R>(&self, trainer: &mut Trainer<B>, pad: u32, shape: ModelShape<'_>, body: impl FnOnce(&mut Trainer<B>, Option<&Peers<B>>) -> Result<R, PolicyError>) -> Result<R, PolicyError> {
        super::data_parallel::run(trainer, &self.devices, pad, shape, body).map_err(other)?
    }

    fn prompt(&self, s: &State<B>, r: &ActRequest) -> Result<Vec<u32>, PolicyError> {
        s.chat.prompt(&r.instruction, &r.history, &r.observation, self.settings.prompt_budget()).map_err(other)
    }

    /// Scores each valid action by its total log-likelihood ([`Constrained::Score`]).
    fn act_scored(&self, s: &State<B>, r: &ActRequest, valid: &[String]) -> Result<Act, PolicyError> {
        let mut rng = crate::seed::rng(r.seed);
        let prompt = self.prompt(s, r)?;
        let (reused, cached) = s.cache.lock().map_err(|_| other("policy cache poisoned"))?.lookup(&prompt);
        let mut cache = cached.unwrap_or_else(|| s.infer.new_cache());
        let first = last_log_probs(s.infer.forward_last(self.tensor(&prompt[reused..]), &mut cache, &[])).remove(0);
        if let Ok(mut c) = s.cache.lock() {
            c.insert(prompt, cache.clone());
        }
        let scores: Vec<f32> = valid
            .iter()
            .map(|a| {
                let ids = s.chat.answer(&s.chat.content(None, a));
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
        Ok(Act::new(valid[sample(&scores, r.temperature, 1.0, &mut rng)].clone()))
    }

    /// Every request that is not scored goes through one batched decoding pass.
    fn act_all(&self, s: &State<B>, requests: &[ActRequest]) -> Vec<Result<Act, PolicyError>> {
        let mut out: Vec<Option<Result<Act, PolicyError>>> = (0..requests.len()).map(|_| None).collect();
        let mut batch = Vec::new();
        let mut rows = Vec::new();
        for (i, r) in requests.iter().enumerate() {
            let valid = r.valid_actions.as_deref().filter(|v| !v.is_empty());
            let choices = match (self.settings.constrained, valid) {
                (Constrained::Score, Some(v)) => {
                    out[i] = Some(self.act_scored(s, r, v));
                    continue;
                }
                (Constrained::Prefix, Some(v)) => Some(v.iter().map(|a| s.chat.answer(&s.chat.content(None, a))).collect()),
                _ => None,
            };
            match self.prompt(s, r) {
                Ok(prompt) => {
                    batch.push(i);
                    rows.push(DecodeRow { prompt, choices, temperature: r.temperature, rng: crate::seed::rng(r.seed) });
                }
                Err(e) => out[i] = Some(Err(e)),
            }
        }
        let settings = DecodeSettings {
            stop: s.chat.stop_ids().to_vec(),
            pad: s.chat.pad(),
            max_new_tokens: self.settings.max_new_tokens,
            top_p: self.settings.top_p,
            pad_to: self.settings.pad_to,
        };
        let mut cache = match s.cache.lock() {
            Ok(c) => c,
            Err(_) => return requests.iter().map(|_| Err(other("policy cache poisoned"))).collect(),
        };
        let reuse = self.settings.kv_reuse.then_some(&mut *cache);
        for (i, d) in batch.into_iter().zip(decode(&s.infer, rows, settings, self.device(), reuse)) {
            let r = &requests[i];
            out[i] = Some(Ok(match d {
                Decoded::Choice(c) => Act::new(r.valid_actions.as_ref().map(|v| v[c].clone()).unwrap_or_default()),
                Decoded::Tokens(t) => s.chat.parse(&t),
            }));
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
            Some(s) => self.act_all(s, requests),
            None => requests.iter().map(|_| Err(other("the language-model policy has no weights yet: train or load it first"))).collect(),
        }
    }

    fn train(&mut self, data: &[Trajectory], config: &TrainConfig) -> Result<TrainReport, PolicyError> {
        let mut guard = self.lock()?;
        // The state leaves the lock while training, so no second copy of the weights is held.
        let State { chat, config: model_config, model, source, .. } = match guard.take() {
            Some(s) => s,
            None => self.init_state(data, config.seed)?,
        };
        let settings = self.settings.sequence_settings();
        let mut seqs = Vec::new();
        let mut stats = SequenceStats::default();
        for t in data {
            match chat.sequences(t, &settings) {
                Ok((s, counts)) => {
                    seqs.extend(s);
                    stats.add(&counts);
                }
                Err(e) => {
                    let message = format!("trajectory {}: {e}", t.id);
                    *guard = Some(State::new(chat, model_config, model, source, &self.settings));
                    return Err(other(message));
                }
            }
        }
        let rows = if self.settings.pack { row::pack(&seqs, self.settings.max_context) } else { row::unpacked(seqs) };
        stats.rows = rows.len();
        stats.batch_tokens = row::batch_tokens(&rows, self.settings.batch_size.max(1), config.seed);
        if stats.fallbacks > 0 {
            tracing::warn!(
                fallbacks = stats.fallbacks,
                trajectories = stats.trajectories,
                "the chat template does not render these trajectories prefix-stably (it changes earlier turns once later ones follow): they train as one window per answer"
            );
        }
        tracing::info!(trajectories = stats.trajectories, sequences = stats.sequences, rows = stats.rows, tokens = stats.tokens, batch_tokens = stats.batch_tokens, split = stats.split, fallbacks = stats.fallbacks, cut = stats.cut, "training sequences");
        let report = TrainReport { trajectories: data.len(), trainable_turns: data.iter().map(Trajectory::trainable_turns).sum(), loss: None, sequences: Some(stats) };
        let (model, result) = if rows.is_empty() { (model, Ok(None)) } else { self.fit(model, &model_config, &rows, chat.pad(), config) };
        *guard = Some(State::new(chat, model_config, model, source, &self.settings));
        Ok(TrainReport { loss: result?.map(f64::from), ..report })
    }

    fn supports_preferences(&self) -> bool {
        true
    }

    /// DPO (the `dpo` module) on the pairs, with `config.dpo` (β by `config.iteration`), against
    /// the policy as it is when this call starts.
    fn train_preferences(&mut self, pairs: &[PreferencePair], config: &TrainConfig) -> Result<TrainReport, PolicyError> {
        let mut guard = self.lock()?;
        let State { chat, config: model_config, model, source, .. } =
            guard.take().ok_or_else(|| other("preference training (DPO) starts from a trained policy: train or load it first"))?;
        let (windows, stats) = match self.windows_of(&chat, pairs.iter().flat_map(|p| [&p.chosen, &p.rejected])) {
            Ok(w) => w,
            Err(e) => {
                *guard = Some(State::new(chat, model_config, model, source, &self.settings));
                return Err(e);
            }
        };
        let bs = self.settings.batch_size.max(1);
        let reference = dpo::reference_log_likelihoods(&model, &windows, chat.pad(), bs, self.device());
        let beta = config.dpo.beta_at(config.iteration);
        // The iteration's own rate (ETO lowers it after the first); each forward pass holds at
        // most `batch_size` sequences, `pairs_per_step` pairs make one optimizer step.
        let dpo_config = DpoConfig { learning_rate_ratio: config.dpo.learning_rate_ratio_at(config.iteration), ..config.dpo.clone() };
        let pairs_per_step = config.dpo.pairs_per_step.max(1);
        let (model, outcome) = dpo::fit(model, &windows, &reference, chat.pad(), &self.settings.train, &dpo_config, beta, pairs_per_step, bs, config.seed, &config.live, &self.devices, self.shape(&model_config));
        let outcome = match outcome {
            Ok(o) => o,
            Err(e) => {
                *guard = Some(State::new(chat, model_config, model, source, &self.settings));
                return Err(other(format!("DPO: {e}")));
            }
        };
        tracing::info!(pairs = pairs.len(), beta, steps = outcome.steps, loss = outcome.loss, "DPO done");
        *guard = Some(State::new(chat, model_config, model, source, &self.settings));
        Ok(TrainReport {
            trajectories: pairs.len() * 2,
            trainable_turns: pairs.iter().map(|p| p.chosen.trainable_turns() + p.rejected.trainable_turns()).sum(),
            loss: Some(f64::from(outcome.loss)),
            sequences: Some(stats),
        })
    }

    fn save(&self, dir: &Path) -> Result<(), PolicyError> {
        let guard = self.lock()?;
        let s = guard.as_ref().ok_or_else(|| other("nothing to save: the policy has no weights yet"))?;
        let ck = |e: String| PolicyError::Checkpoint { path: dir.display().to_string(), message: e };
        std::fs::create_dir_all(dir).map_err(|e| ck(e.to_string()))?;
        // The tokenizer files: the compact template's own tokenizer, or the pretrained folder's.
        let tokenizer = |dir: &Path| -> Result<(), PolicyError> {
            std::fs::create_dir_all(dir).map_err(|e| ck(e.to_string()))?;
            match &s.source {
                Some(src) => {
                    for f in TOKENIZER_FILES {
                        if src.join(f).exists() {
                            std::fs::copy(src.join(f), dir.join(f)).map_err(|e| ck(format!("{f}: {e}")))?;
                        }
                    }
                    Ok(())
                }
                None => s.chat.tok().save(&dir.join("tokenizer.json")).map_err(ck),
            }
        };
        tokenizer(dir)?;
        let ids = TokenIds {
            bos: s.chat.bos(),
            eos: s.chat.stop_ids().to_vec(),
            pad: Some(s.chat.pad()),
        };
        let options = SaveOptions { dtype: self.settings.save_dtype, max_shard_bytes: self.settings.max_shard_bytes, token_ids: ids };
        match (&self.settings.lora, s.model.has_lora()) {
            (Some(l), true) => {
                let base = self.settings.init.as_ref().map(|p| p.display().to_string());
                peft::save_adapter(dir, &s.model, l, base.as_deref()).map_err(|e| ck(e.to_string()))?;
                if l.export_merged {
                    tokenizer(&dir.join("merged"))?;
                    hf::save::save_llama(&dir.join("merged"), &s.config, &s.model, &options).map_err(|e| ck(e.to_string()))?;
                }
                Ok(())
            }
            _ => hf::save::save_llama(dir, &s.config, &s.model, &options).map_err(|e| ck(e.to_string())),
        }
    }

    fn load(&mut self, dir: &Path) -> Result<(), PolicyError> {
        let state = self.load_dir(dir)?;
        *self.lock()? = Some(state);
        Ok(())
    }
}
