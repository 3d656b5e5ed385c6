//! [`LmPolicy`]: the language-model policy, plugged into the runtime's [`Policy`] trait.
//!
//! - **Acting.** The dialogue is rendered with the chat template and the action is decoded with
//!   the key-value cache (temperature and top-p sampling from the request's seed; greedy at 0),
//!   stopping at `<|end|>`. When the environment offers valid actions and `constrained` is on,
//!   each one is scored by its log-likelihood instead and the best (or a softmax sample) taken.
//! - **Training.** Trajectories become tokens; only action tokens of trainable turns carry loss.
//!   A model trained from scratch first trains a byte-level BPE on the training text.
//! - **Checkpoints.** `tokenizer.json`, `config.json` and `model.safetensors` (Hugging Face
//!   layout) in the checkpoint directory.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use burn::module::AutodiffModule;
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::AutodiffBackend;
use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::config::LlamaConfig;
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
    /// Score offered valid actions by log-likelihood instead of generating.
    pub constrained: bool,
    /// Sequences per micro-batch.
    pub batch_size: usize,
    /// Optimisation.
    pub train: TrainSettings,
}

impl Default for LmSettings {
    fn default() -> Self {
        LmSettings {
            model: LlamaConfig::tiny(512),
            init: None,
            vocab_size: 512,
            max_context: 384,
            max_new_tokens: 32,
            top_p: 0.95,
            constrained: true,
            batch_size: 8,
            train: TrainSettings::default(),
        }
    }
}

struct State<B: AutodiffBackend> {
    tok: Tok,
    config: LlamaConfig,
    model: Llama<B>,
    infer: Llama<B::InnerBackend>,
}

/// A Llama policy on backend `B` (e.g. [`super::CpuTrain`]).
pub struct LmPolicy<B: AutodiffBackend> {
    settings: LmSettings,
    device: B::Device,
    state: Mutex<Option<State<B>>>,
}

impl<B: AutodiffBackend> std::fmt::Debug for LmPolicy<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LmPolicy").field("settings", &self.settings).finish_non_exhaustive()
    }
}

fn other(e: impl std::fmt::Display) -> PolicyError {
    PolicyError::Other(e.to_string())
}

impl<B: AutodiffBackend> LmPolicy<B> {
    /// A policy with no weights yet: the first `train` builds the tokenizer and the model (or
    /// `settings.init` is loaded then).
    pub fn new(settings: LmSettings, device: B::Device) -> Self {
        LmPolicy { settings, device, state: Mutex::new(None) }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Option<State<B>>>, PolicyError> {
        self.state.lock().map_err(|_| other("policy state poisoned"))
    }

    fn init_state(&self, data: &[Trajectory]) -> Result<State<B>, PolicyError> {
        if let Some(dir) = &self.settings.init {
            return self.load_dir(dir);
        }
        let corpus: Vec<String> = data.iter().flat_map(template::corpus).collect();
        let tok = Tok::train_bpe(&corpus, self.settings.vocab_size).map_err(other)?;
        let config = LlamaConfig { vocab_size: tok.vocab_size(), ..self.settings.model.clone() };
        config.validate().map_err(other)?;
        let model = Llama::new(&config, &self.device);
        Ok(State { infer: model.valid(), tok, config, model })
    }

    fn load_dir(&self, dir: &Path) -> Result<State<B>, PolicyError> {
        let tok = Tok::from_file(&dir.join("tokenizer.json")).map_err(other)?;
        let (config, model) = load_safetensors::<B>(dir, &self.device).map_err(other)?;
        if tok.vocab_size() > config.vocab_size {
            return Err(other(format!("{}: the tokenizer has {} tokens, the model {}", dir.display(), tok.vocab_size(), config.vocab_size)));
        }
        Ok(State { infer: model.valid(), tok, config, model })
    }

    fn tensor(&self, ids: &[u32]) -> Tensor<B::InnerBackend, 2, Int> {
        Tensor::from_data(TensorData::new(ids.iter().map(|&i| i as i64).collect::<Vec<_>>(), [1, ids.len()]), &self.device)
    }

    fn last_log_probs(logits: Tensor<B::InnerBackend, 3>) -> Vec<f32> {
        let [_, t, v] = logits.dims();
        log_softmax(logits.narrow(1, t - 1, 1).reshape([1, v]), 1).into_data().convert::<f32>().to_vec().unwrap_or_default()
    }

    fn act_one(&self, s: &State<B>, r: &ActRequest) -> Act {
        let budget = self.settings.max_context.saturating_sub(self.settings.max_new_tokens).max(8);
        let prompt = template::prompt(&s.tok, &r.instruction, &r.history, &r.observation).keep_last(budget);
        let mut rng = crate::seed::rng(r.seed);
        let mut cache = s.infer.new_cache();
        let first = Self::last_log_probs(s.infer.forward(self.tensor(&prompt.ids), &mut cache));
        if let (true, Some(valid)) = (self.settings.constrained, &r.valid_actions) {
            if !valid.is_empty() {
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
                let pick = sample(&scores, r.temperature, 1.0, &mut rng);
                return Act::new(valid[pick].clone());
            }
        }
        let mut out = Vec::new();
        let mut lp = first;
        for _ in 0..self.settings.max_new_tokens {
            let next = sample(&lp, r.temperature, self.settings.top_p, &mut rng) as u32;
            if next == s.tok.end {
                break;
            }
            out.push(next);
            lp = Self::last_log_probs(s.infer.forward(self.tensor(&[next]), &mut cache));
        }
        Act::new(s.tok.decode(&out).trim().to_owned())
    }
}

/// Index drawn from log-scores: argmax at temperature 0, else top-p sampling of
/// `softmax(scores / temperature)`.
fn sample(scores: &[f32], temperature: f32, top_p: f32, rng: &mut impl Rng) -> usize {
    if temperature <= 0.0 || scores.len() == 1 {
        return scores.iter().enumerate().fold(0, |best, (i, s)| if *s > scores[best] { i } else { best });
    }
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut p: Vec<(usize, f32)> = scores.iter().enumerate().map(|(i, s)| (i, ((s - max) / temperature).exp())).collect();
    p.sort_by(|a, b| b.1.total_cmp(&a.1));
    let total: f32 = p.iter().map(|x| x.1).sum();
    let (mut kept, mut mass) = (0, 0.0);
    for (_, w) in &p {
        kept += 1;
        mass += w / total;
        if mass >= top_p {
            break;
        }
    }
    let p = &p[..kept];
    let total: f32 = p.iter().map(|x| x.1).sum();
    let mut x = rng.gen::<f32>() * total;
    for (i, w) in p {
        if x < *w {
            return *i;
        }
        x -= w;
    }
    p[p.len() - 1].0
}

impl<B: AutodiffBackend> Policy for LmPolicy<B> {
    fn name(&self) -> String {
        "llama".into()
    }

    fn act_batch(&self, requests: &[ActRequest]) -> Vec<Result<Act, PolicyError>> {
        let guard = match self.lock() {
            Ok(g) => g,
            Err(e) => return requests.iter().map(|_| Err(e.clone())).collect(),
        };
        match guard.as_ref() {
            Some(s) => requests.iter().map(|r| Ok(self.act_one(s, r))).collect(),
            None => requests.iter().map(|_| Err(other("the language-model policy has no weights yet: train or load it first"))).collect(),
        }
    }

    fn train(&mut self, data: &[Trajectory], config: &TrainConfig) -> Result<TrainReport, PolicyError> {
        let mut guard = self.lock()?;
        if guard.is_none() {
            *guard = Some(self.init_state(data)?);
        }
        let s = guard.as_mut().expect("state initialised");
        let seqs: Vec<(Vec<u32>, Vec<bool>)> = data
            .iter()
            .map(|t| template::trajectory(&s.tok, t).keep_last(self.settings.max_context))
            .filter(|t| t.trainable.iter().any(|x| *x))
            .map(|t| (t.ids, t.trainable))
            .collect();
        let mut report = TrainReport { trajectories: data.len(), trainable_turns: data.iter().map(Trajectory::trainable_turns).sum(), loss: None };
        if seqs.is_empty() {
            return Ok(report);
        }
        let bs = self.settings.batch_size.max(1);
        let epochs = config.epochs.max(1);
        let steps = epochs * seqs.len().div_ceil(bs) / self.settings.train.accumulation.max(1);
        let settings = TrainSettings { total_steps: steps.max(1), ..self.settings.train.clone() };
        let model = std::mem::replace(&mut s.model, Llama::new(&s.config, &self.device));
        let mut trainer = Trainer::new(model, settings);
        let mut order: Vec<usize> = (0..seqs.len()).collect();
        let mut rng = crate::seed::rng(config.seed);
        let mut last = 0.0;
        for _ in 0..epochs {
            order.shuffle(&mut rng);
            for chunk in order.chunks(bs) {
                let batch: Vec<(Vec<u32>, Vec<bool>)> = chunk.iter().map(|&i| seqs[i].clone()).collect();
                last = trainer.micro_step(Batch::new(&batch, s.tok.pad, &self.device));
            }
        }
        s.model = trainer.into_model();
        s.infer = s.model.valid();
        report.loss = Some(f64::from(last));
        Ok(report)
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
