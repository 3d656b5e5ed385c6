//! Speed of the burn Llama on this machine's CPU backends, next to PyTorch on the same
//! architecture and batch: training tokens/s (forward, masked loss, backward, AdamW step) and
//! generation tokens/s (greedy decoding with the key-value cache).
//!
//! PyTorch's side is `scripts/bench_torch_llama.py`, run with the interpreter named by
//! `EEF_PYTHON` (default `python3`); when it cannot import `torch`, its column says so.

use std::process::Command;
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::prelude::*;

use eef_runtime::model::backend::visit;
use eef_runtime::model::{LmAutodiffBackend, BackendChoice, BackendKind, BackendVisitor, Batch, Llama, LlamaConfig, TrainSettings, Trainer};
use serde::{Deserialize, Serialize};

/// What is measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BenchConfig {
    /// The model (the default: 0.48M parameters, 2 layers, d_model 128, 4 heads, vocabulary 256).
    pub model: LlamaConfig,
    /// Training sequences per step.
    pub batch: usize,
    /// Training sequence length.
    pub seq_len: usize,
    /// Training steps per timed round (after one untimed warm-up step).
    pub train_steps: usize,
    /// Timed rounds of training and of generation; each figure is the median round, so one
    /// round slowed by another process on the machine does not move it.
    pub rounds: usize,
    /// Prompt length for generation.
    pub prompt_len: usize,
    /// Tokens generated per sequence.
    pub new_tokens: usize,
    /// Sequences decoded together.
    pub gen_batch: usize,
}

impl Default for BenchConfig {
    fn default() -> Self {
        BenchConfig {
            model: LlamaConfig {
                vocab_size: 256,
                hidden_size: 128,
                intermediate_size: 352,
                num_hidden_layers: 2,
                num_attention_heads: 4,
                num_key_value_heads: Some(4),
                ..LlamaConfig::tiny(256)
            },
            batch: 8,
            seq_len: 128,
            train_steps: 10,
            rounds: 5,
            prompt_len: 32,
            new_tokens: 64,
            gen_batch: 8,
        }
    }
}

/// One backend's numbers.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Speed {
    /// Backend name.
    pub backend: String,
    /// Training tokens per second.
    pub train_tokens_per_s: f64,
    /// Generated tokens per second, batch of one.
    pub gen_tokens_per_s_b1: f64,
    /// Generated tokens per second, `gen_batch` sequences at once.
    pub gen_tokens_per_s_batched: f64,
}

fn tokens(n: usize, vocab: usize, salt: usize) -> Vec<u32> {
    (0..n).map(|i| ((i * 7919 + salt * 104_729) % vocab) as u32).collect()
}

/// Measures backend `B`.
pub fn measure<B: LmAutodiffBackend>(name: &str, c: &BenchConfig, device: &B::Device) -> Speed {
    B::seed(device, 0);
    let model = Llama::<B>::new(&c.model, device);
    let seqs: Vec<(Vec<u32>, Vec<bool>)> = (0..c.batch).map(|b| (tokens(c.seq_len + 1, c.model.vocab_size, b), vec![true; c.seq_len + 1])).collect();
    let mut trainer = Trainer::new(model, TrainSettings::default());
    trainer.micro_step(Batch::new(&seqs, 0, device));
    let train = median((0..c.rounds.max(1)).map(|_| {
        let t = Instant::now();
        for _ in 0..c.train_steps {
            trainer.micro_step(Batch::new(&seqs, 0, device));
        }
        (c.train_steps * c.batch * c.seq_len) as f64 / t.elapsed().as_secs_f64()
    }));
    let infer = trainer.into_model().valid();
    let gen = |batch: usize| {
        let prompt: Vec<i64> = (0..batch).flat_map(|b| tokens(c.prompt_len, c.model.vocab_size, b)).map(i64::from).collect();
        let t = Instant::now();
        let mut cache = infer.new_cache();
        let mut input = Tensor::<B::InnerBackend, 2, Int>::from_data(TensorData::new(prompt, [batch, c.prompt_len]), device);
        for _ in 0..c.new_tokens {
            let logits = infer.forward(input, &mut cache);
            let [b, t, v] = logits.dims();
            let next = logits.narrow(1, t - 1, 1).reshape([b, v]).argmax(1);
            // Read the tokens back as a sampler would.
            let ids: Vec<i64> = next.clone().into_data().convert::<i64>().to_vec().unwrap_or_default();
            input = Tensor::from_data(TensorData::new(ids, [b, 1]), device);
        }
        (batch * c.new_tokens) as f64 / t.elapsed().as_secs_f64()
    };
    gen(1);
    let rounds = |batch: usize| median((0..c.rounds.max(1)).map(|_| gen(batch)));
    Speed { backend: name.to_owned(), train_tokens_per_s: train, gen_tokens_per_s_b1: rounds(1), gen_tokens_per_s_batched: rounds(c.gen_batch) }
}

/// The median of `values` (the upper one of the middle two for an even count).
fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Runs PyTorch's side; `Err` says why it could not.
pub fn measure_torch(c: &BenchConfig) -> Result<Speed, String> {
    let python = std::env::var("EEF_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/bench_torch_llama.py");
    let out = Command::new(&python)
        .arg(script)
        .arg(serde_json::to_string(c).map_err(|e| e.to_string())?)
        .output()
        .map_err(|e| format!("{python}: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!("{python} {script} failed: {}", err.lines().last().unwrap_or("")));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("unreadable output of {script}: {e}"))
}

struct Measure<'a>(&'a BenchConfig);

impl BackendVisitor for Measure<'_> {
    type Output = Speed;
    fn visit<B: LmAutodiffBackend>(self, name: &str, device: B::Device) -> Speed {
        measure::<B>(name, self.0, &device)
    }
}

/// Every backend compiled in (the CPU ones by default; `--features cuda` / `wgpu` add those),
/// then PyTorch; returns the report (Markdown).
pub fn run(c: &BenchConfig) -> String {
    let rows: Vec<Speed> = BackendKind::all_compiled()
        .into_iter()
        .filter_map(|b| visit(BackendChoice { backend: b, ..BackendChoice::default() }, Measure(c)).ok())
        .collect();
    let torch = measure_torch(c);
    let params = c.model.parameter_count();
    let mut out = format!(
        "# Llama speed\n\nModel: {params} parameters ({} layers, d_model {}, {} heads, vocabulary {}). Training: batch {} x {} tokens. \
         Generation: prompt {}, {} new tokens, greedy, key-value cache. Threads: {}. \
         Each figure is the median of {} rounds ({} training steps per round).\n\n\
         | backend | train tokens/s | generate tokens/s (batch 1) | generate tokens/s (batch {}) |\n|---|---:|---:|---:|\n",
        c.model.num_hidden_layers, c.model.hidden_size, c.model.num_attention_heads, c.model.vocab_size, c.batch, c.seq_len,
        c.prompt_len, c.new_tokens, std::thread::available_parallelism().map_or(1, |n| n.get()), c.rounds.max(1), c.train_steps, c.gen_batch
    );
    let row = |s: &Speed| format!("| {} | {:.0} | {:.0} | {:.0} |\n", s.backend, s.train_tokens_per_s, s.gen_tokens_per_s_b1, s.gen_tokens_per_s_batched);
    for s in &rows {
        out += &row(s);
    }
    match &torch {
        Ok(t) => {
            out += &row(t);
            out += "\nRatio to PyTorch (above 1 = faster than PyTorch):\n\n| backend | train | generate (batch 1) | generate (batched) |\n|---|---:|---:|---:|\n";
            for s in &rows {
                out += &format!(
                    "| {} | {:.2} | {:.2} | {:.2} |\n",
                    s.backend,
                    s.train_tokens_per_s / t.train_tokens_per_s,
                    s.gen_tokens_per_s_b1 / t.gen_tokens_per_s_b1,
                    s.gen_tokens_per_s_batched / t.gen_tokens_per_s_batched
                );
            }
        }
        Err(e) => out += &format!("| pytorch | not measured: {e} | | |\n"),
    }
    out
}
