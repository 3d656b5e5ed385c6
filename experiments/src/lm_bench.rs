//! Speed of the burn Llama against PyTorch at the shape a run trains: training tokens/s
//! (forward, masked loss, backward, AdamW step) and generation tokens/s (greedy decoding with
//! the key-value cache), A/B interleaved in one run, medians, with the FLOP rate achieved against
//! the machine's measured matrix-product peak.
//!
//! - **Shape.** `--config FILE` takes the model, the vocabulary, the batch and the context of an
//!   experiment's `[policy]` (a training row is `max_context` tokens: packed rows fill it);
//!   without it, a fixed small shape ([`BenchConfig::default`]).
//! - **Backends.** The CPU backend (`--backend cpu`, the default); `--backend wgpu` or `cuda`
//!   (when compiled in) measure a GPU backend instead.
//! - **PyTorch** runs as a child process (`scripts/bench_torch_llama.py`, the interpreter named by
//!   `EEF_PYTHON`, default `python3`) with the same model (transformers' `LlamaForCausalLM`,
//!   SDPA attention), batch and steps, on as many threads as burn's pool has. The two take turns
//!   round by round (ABBA), so a change in the machine's load moves both; each figure is the
//!   median round.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::prelude::*;

use eef_runtime::model::backend::visit;
use eef_runtime::model::{BackendChoice, BackendKind, BackendVisitor, Batch, LlamaConfig, LmAutodiffBackend, LmSettings, Llama, TrainSettings, Trainer};
use serde::{Deserialize, Serialize};

/// What is measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BenchConfig {
    /// Where the shape comes from (a config file, or the built-in default).
    pub source: String,
    /// The model.
    pub model: LlamaConfig,
    /// Training rows per step.
    pub batch: usize,
    /// Training row length.
    pub seq_len: usize,
    /// Training steps per timed round (after untimed warm-up steps).
    pub train_steps: usize,
    /// Timed rounds of training and of generation, per side.
    pub rounds: usize,
    /// Prompt length for generation.
    pub prompt_len: usize,
    /// Tokens generated per sequence.
    pub new_tokens: usize,
    /// Sequences decoded together.
    pub gen_batch: usize,
    /// Threads both sides compute on.
    pub threads: usize,
}

impl Default for BenchConfig {
    /// lm_bench's own shape: 0.48M parameters (2 layers, d_model 128, 4 heads, vocabulary 256),
    /// batch 8 x 128 tokens.
    fn default() -> Self {
        BenchConfig {
            source: "lm_bench's own shape".into(),
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
            threads: rayon_threads(),
        }
    }
}

/// The threads of burn's CPU pool (rayon's global pool: `RAYON_NUM_THREADS`, else every core).
fn rayon_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS").ok().and_then(|v| v.parse().ok()).filter(|&n| n > 0).unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

impl BenchConfig {
    /// The shape an experiment config trains: its `[policy]` model with the configured
    /// vocabulary, `batch_size` rows of `max_context` tokens; generation from a prompt of half
    /// the context, `max_new_tokens` new tokens, `batch_size` sequences.
    pub fn from_experiment(path: &Path) -> Result<Self, String> {
        let config = eef_runtime::ExperimentConfig::from_file(path).map_err(|e| e.to_string())?;
        let s: LmSettings = config.policy().map_err(|e| e.to_string())?;
        let model = LlamaConfig { vocab_size: s.vocab_size, ..s.model.clone() };
        model.validate().map_err(|e| format!("{}: [policy.model] {e}", path.display()))?;
        let steps = (2_000_000 / (s.batch_size * s.max_context).max(1)).clamp(2, 10);
        Ok(BenchConfig {
            source: path.display().to_string(),
            model,
            batch: s.batch_size,
            seq_len: s.max_context,
            train_steps: steps,
            prompt_len: s.max_context / 2,
            new_tokens: s.max_new_tokens,
            gen_batch: s.batch_size,
            ..BenchConfig::default()
        })
    }

    /// Matrix-product FLOPs per trained token: three times the forward pass's (its linear
    /// layers, the output head and causal attention over `seq_len` keys on average half seen).
    pub fn train_flops_per_token(&self) -> f64 {
        let c = &self.model;
        let hd = c.hidden_size / c.num_attention_heads;
        let kv = c.num_key_value_heads.unwrap_or(c.num_attention_heads) * hd;
        let per_layer = c.hidden_size * (c.hidden_size + 2 * kv + c.num_attention_heads * hd) + 3 * c.hidden_size * c.intermediate_size;
        let linear = (c.num_hidden_layers * per_layer + c.hidden_size * c.vocab_size) as f64;
        let attention = (c.num_hidden_layers * 2 * c.num_attention_heads * hd) as f64 * (self.seq_len as f64 + 1.0) / 2.0;
        3.0 * 2.0 * (linear + attention)
    }
}

/// One side's rounds.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Rounds {
    /// Who.
    pub name: String,
    /// Training tokens/s per round.
    pub train: Vec<f64>,
    /// Generated tokens/s per round, one sequence.
    pub gen_b1: Vec<f64>,
    /// Generated tokens/s per round, `gen_batch` sequences.
    pub gen_batched: Vec<f64>,
}

fn tokens(n: usize, vocab: usize, salt: usize) -> Vec<u32> {
    (0..n).map(|i| ((i * 7919 + salt * 104_729) % vocab) as u32).collect()
}

/// The median of `values` (the upper one of the middle two for an even count).
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// burn's side, one round at a time.
struct Burn<B: LmAutodiffBackend> {
    c: BenchConfig,
    device: B::Device,
    trainer: Option<Trainer<B>>,
    rows: Vec<(Vec<u32>, Vec<bool>)>,
}

impl<B: LmAutodiffBackend> Burn<B> {
    fn new(c: &BenchConfig, device: B::Device) -> Self {
        B::seed(&device, 0);
        let model = Llama::<B>::new(&c.model, &device);
        let rows = (0..c.batch).map(|b| (tokens(c.seq_len + 1, c.model.vocab_size, b), vec![true; c.seq_len + 1])).collect();
        let mut me = Burn { c: c.clone(), device, trainer: Some(Trainer::new(model, TrainSettings::default())), rows };
        for _ in 0..2 {
            me.step();
        }
        me.generate(1);
        me
    }

    fn step(&mut self) {
        let t = self.trainer.as_mut().expect("trainer");
        t.micro_step(Batch::new(&self.rows, 0, &self.device));
    }

    fn train_round(&mut self) -> f64 {
        let t = Instant::now();
        for _ in 0..self.c.train_steps {
            self.step();
        }
        (self.c.train_steps * self.c.batch * self.c.seq_len) as f64 / t.elapsed().as_secs_f64()
    }

    fn generate(&mut self, batch: usize) -> f64 {
        let c = &self.c;
        let infer = self.trainer.as_ref().expect("trainer").model().valid();
        let prompt: Vec<i64> = (0..batch).flat_map(|b| tokens(c.prompt_len, c.model.vocab_size, b)).map(i64::from).collect();
        let t = Instant::now();
        let mut cache = infer.new_cache();
        let mut input = Tensor::<B::InnerBackend, 2, Int>::from_data(TensorData::new(prompt, [batch, c.prompt_len]), &self.device);
        for _ in 0..c.new_tokens {
            let logits = infer.forward_last(input, &mut cache, &[]);
            let [b, _, v] = logits.dims();
            let next = logits.reshape([b, v]).argmax(1);
            // Read the tokens back as a sampler would.
            let ids: Vec<i64> = next.into_data().convert::<i64>().to_vec().unwrap_or_default();
            input = Tensor::from_data(TensorData::new(ids, [b, 1]), &self.device);
        }
        (batch * c.new_tokens) as f64 / t.elapsed().as_secs_f64()
    }
}

/// PyTorch's side: `scripts/bench_torch_llama.py` as a child answering one command per line.
struct Torch {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
    name: String,
}

impl Torch {
    fn start(c: &BenchConfig) -> Result<Self, String> {
        let python = std::env::var("EEF_PYTHON").unwrap_or_else(|_| "python3".into());
        let script = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/bench_torch_llama.py"));
        let mut child = Command::new(&python)
            .arg(&script)
            .arg(serde_json::to_string(c).map_err(|e| e.to_string())?)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{python}: {e}"))?;
        let input = child.stdin.take().expect("piped");
        let output = BufReader::new(child.stdout.take().expect("piped"));
        let mut me = Torch { child, input, output, name: String::new() };
        me.name = me.ask("ready").map_err(|e| format!("{python} {}: {e}", script.display()))?;
        Ok(me)
    }

    /// Sends a command, returns its one-line answer.
    fn ask(&mut self, command: &str) -> Result<String, String> {
        writeln!(self.input, "{command}").and_then(|()| self.input.flush()).map_err(|e| e.to_string())?;
        let mut line = String::new();
        self.output.read_line(&mut line).map_err(|e| e.to_string())?;
        if line.is_empty() {
            let mut err = String::new();
            if let Some(mut e) = self.child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            return Err(format!("exited: {}", err.lines().last().unwrap_or("no message")));
        }
        Ok(line.trim().to_owned())
    }

    fn number(&mut self, command: &str) -> Result<f64, String> {
        let a = self.ask(command)?;
        a.parse().map_err(|_| format!("unreadable answer to {command:?}: {a}"))
    }
}

impl Drop for Torch {
    fn drop(&mut self) {
        let _ = writeln!(self.input, "quit");
        let _ = self.child.wait();
    }
}

/// One PyTorch round of `command`, unless PyTorch is not there or failed before (a failure is
/// kept in `failed`).
fn torch_round(torch: &mut Result<Torch, String>, command: &str, failed: &mut Option<String>) -> Option<f64> {
    let t = torch.as_mut().ok().filter(|_| failed.is_none())?;
    t.number(command).map_err(|e| *failed = Some(e)).ok()
}

/// GFLOP/s of burn's matrix product (1024 x 1024 x 1024, f32) on the CPU: the median of five.
fn burn_matmul_peak() -> f64 {
    type Cpu = eef_runtime::model::Cpu;
    let d = Default::default();
    let n = 1024;
    let a = Tensor::<Cpu, 2>::ones([n, n], &d);
    let b = Tensor::<Cpu, 2>::ones([n, n], &d);
    let _ = a.clone().matmul(b.clone()).into_data();
    let rates: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            let _ = a.clone().matmul(b.clone()).into_data();
            2.0 * (n * n * n) as f64 / t.elapsed().as_secs_f64() / 1e9
        })
        .collect();
    median(&rates)
}

/// Everything measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Measured {
    /// The shape.
    pub config: BenchConfig,
    /// burn's rounds.
    pub burn: Rounds,
    /// PyTorch's rounds, or why there are none.
    pub torch: Result<Rounds, String>,
    /// burn's matrix-product GFLOP/s (1024³, f32) on the CPU.
    pub burn_matmul_gflops: f64,
    /// PyTorch's, when it ran.
    pub torch_matmul_gflops: Option<f64>,
}

struct Measure<'a>(&'a BenchConfig);

impl BackendVisitor for Measure<'_> {
    type Output = Measured;
    fn visit<B: LmAutodiffBackend>(self, name: &str, device: B::Device) -> Measured {
        let c = self.0;
        let mut burn = Burn::<B>::new(c, device);
        let mut torch = Torch::start(c);
        let mut mine = Rounds { name: name.to_owned(), ..Rounds::default() };
        let mut theirs = Rounds::default();
        let mut failed: Option<String> = torch.as_ref().err().cloned();
        // ABBA: burn first in even rounds, PyTorch first in odd ones.
        for round in 0..c.rounds.max(1) {
            let torch_first = round % 2 == 1;
            if torch_first {
                theirs.train.extend(torch_round(&mut torch, "train", &mut failed));
            }
            mine.train.push(burn.train_round());
            if !torch_first {
                theirs.train.extend(torch_round(&mut torch, "train", &mut failed));
            }
        }
        for round in 0..c.rounds.max(1) {
            for batch in [1, c.gen_batch] {
                let torch_first = round % 2 == 1;
                let mut theirs_now = Vec::new();
                if torch_first {
                    theirs_now.extend(torch_round(&mut torch, &format!("gen {batch}"), &mut failed));
                }
                let v = burn.generate(batch);
                if !torch_first {
                    theirs_now.extend(torch_round(&mut torch, &format!("gen {batch}"), &mut failed));
                }
                let (m, t) = if batch == 1 { (&mut mine.gen_b1, &mut theirs.gen_b1) } else { (&mut mine.gen_batched, &mut theirs.gen_batched) };
                m.push(v);
                t.extend(theirs_now);
            }
        }
        let torch_peak = torch.as_mut().ok().and_then(|t| t.number("matmul").ok());
        if let Ok(t) = &torch {
            theirs.name = t.name.clone();
        }
        drop(torch);
        let torch = match failed {
            Some(e) => Err(e),
            None => Ok(theirs),
        };
        Measured { config: c.clone(), burn: mine, torch, burn_matmul_gflops: burn_matmul_peak(), torch_matmul_gflops: torch_peak }
    }
}

/// Measures `backend` (and PyTorch) at `c`.
pub fn measure(c: &BenchConfig, backend: BackendKind) -> Result<Measured, String> {
    visit(BackendChoice { backend, ..BackendChoice::default() }, Measure(c)).map_err(|e| e.to_string())
}

/// The report (Markdown).
pub fn report(m: &Measured) -> String {
    let c = &m.config;
    let params = c.model.parameter_count();
    let flops = c.train_flops_per_token();
    let peak = m.burn_matmul_gflops.max(m.torch_matmul_gflops.unwrap_or(0.0));
    let mut out = format!(
        "# Llama speed\n\nShape: {} — {params} parameters ({} layers, d_model {}, {} heads, {} key-value heads, vocabulary {}). \
         Training: batch {} x {} tokens, {:.2} MFLOP per token. Generation: prompt {}, {} new tokens, greedy, key-value cache. \
         Threads: {} each. A/B interleaved, median of {} rounds ({} training steps per round).\n\n\
         | | train tokens/s | train GFLOP/s | % of matmul peak | generate tokens/s (batch 1) | generate tokens/s (batch {}) |\n|---|---:|---:|---:|---:|---:|\n",
        c.source,
        c.model.num_hidden_layers,
        c.model.hidden_size,
        c.model.num_attention_heads,
        c.model.num_key_value_heads.unwrap_or(c.model.num_attention_heads),
        c.model.vocab_size,
        c.batch,
        c.seq_len,
        flops / 1e6,
        c.prompt_len,
        c.new_tokens,
        c.threads,
        c.rounds.max(1),
        c.train_steps,
        c.gen_batch
    );
    let row = |r: &Rounds| {
        let t = median(&r.train);
        format!("| {} | {:.0} | {:.1} | {:.0}% | {:.0} | {:.0} |\n", r.name, t, t * flops / 1e9, 100.0 * t * flops / 1e9 / peak, median(&r.gen_b1), median(&r.gen_batched))
    };
    out += &row(&m.burn);
    match &m.torch {
        Ok(t) => {
            out += &row(t);
            out += &format!(
                "\nburn / PyTorch: training **{:.2}x** (rounds: {}), generation {:.2}x (batch 1), {:.2}x (batch {}).\n",
                median(&m.burn.train) / median(&t.train),
                m.burn.train.iter().zip(&t.train).map(|(a, b)| format!("{:.2}", a / b)).collect::<Vec<_>>().join(", "),
                median(&m.burn.gen_b1) / median(&t.gen_b1),
                median(&m.burn.gen_batched) / median(&t.gen_batched),
                c.gen_batch
            );
        }
        Err(e) => out += &format!("| pytorch | not measured: {e} | | | | |\n"),
    }
    out += &format!(
        "\nMatrix-product peak (1024³ f32, {} threads): burn {:.1} GFLOP/s{}.\n",
        c.threads,
        m.burn_matmul_gflops,
        m.torch_matmul_gflops.map(|g| format!(", PyTorch {g:.1} GFLOP/s")).unwrap_or_default()
    );
    out
}
