//! Host memory of loading a checkpoint and of a training step, measured in child processes
//! (peak resident set, `VmHWM`, against the file size), and the plan's training estimate next to
//! the measured step.
//!
//! ```text
//! cargo run --release --example mem_bench
//! ```
//! The first run writes a random ~510 MB bf16 checkpoint (a 255M-parameter Llama) under
//! `target/eef-mem-bench/`. Each measurement runs in a fresh process so that peaks do not mix.

use std::path::{Path, PathBuf};
use std::process::Command;

use burn::prelude::*;
use burn::tensor::DType;
use eef_runtime::model::hf::{self, files::TensorFiles, load::Loader, LoadOptions, SaveDtype, SaveOptions};
use eef_runtime::model::plan::Plan;
use eef_runtime::model::{Cpu, CpuTrain, Llama, LlamaConfig, LmSettings, TrainSettings, Trainer};

const MIB: f64 = 1024.0 * 1024.0;

/// The benchmark checkpoint's shape: 255M parameters, ~510 MB in bf16.
pub fn bench_model() -> LlamaConfig {
    LlamaConfig {
        vocab_size: 32_000,
        hidden_size: 1024,
        intermediate_size: 2816,
        num_hidden_layers: 16,
        num_attention_heads: 16,
        num_key_value_heads: Some(8),
        ..LlamaConfig::tiny(32_000)
    }
}

/// Resident and peak resident memory of this process, in bytes (Linux `/proc/self/status`).
pub fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| status.lines().find(|l| l.starts_with(name)).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) * 1024;
    (field("VmRSS:"), field("VmHWM:"))
}

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/eef-mem-bench/checkpoint")
}

/// Writes the benchmark checkpoint if it is not there yet.
fn ensure_checkpoint() -> Result<(), String> {
    if dir().join("model.safetensors").exists() {
        return Ok(());
    }
    let c = bench_model();
    let model = Llama::<Cpu>::seeded(&c, 1, &Default::default());
    hf::save::save_llama(&dir(), &c, &model, &SaveOptions { dtype: SaveDtype::Bf16, max_shard_bytes: usize::MAX, ..Default::default() }).map_err(|e| e.to_string())
}

/// One measurement, run in this (child) process: prints `peak final` in bytes.
pub fn child(mode: &str) -> Result<(), String> {
    let device = Default::default();
    let (_, before) = rss();
    match mode {
        "load-f32" => {
            let (_, model) = hf::load_safetensors::<Cpu>(&dir(), &device).map_err(|e| e.to_string())?;
            std::hint::black_box(&model);
            let (now, peak) = rss();
            println!("{} {} {before}", peak, now);
        }
        "load-bf16" => {
            let c = hf::read_config(&dir(), &[]).map_err(|e| e.to_string())?;
            let model = hf::load::load_weights::<Cpu>(&dir(), &c, &device, LoadOptions { dtype: Some(DType::BF16) }).map_err(|e| e.to_string())?;
            std::hint::black_box(&model);
            let (now, peak) = rss();
            println!("{} {} {before}", peak, now);
        }
        "stream" => {
            // What a device backend leaves in host memory: every tensor read, converted and
            // handed over (dropped here), one at a time.
            let files = TensorFiles::open(&dir()).map_err(|e| e.to_string())?;
            let names: Vec<String> = files.names().map(str::to_owned).collect();
            let mut loader = Loader::<Cpu>::new(&files, &device, LoadOptions::default());
            for n in &names {
                let shape: Vec<usize> = files.get(n).map_err(|e| e.to_string())?.shape;
                let t: Tensor<Cpu, 1> = match shape.as_slice() {
                    [a] => loader.tensor(n, [*a]).map_err(|e| e.to_string())?,
                    [a, b] => loader.tensor::<2>(n, [*a, *b]).map_err(|e| e.to_string())?.reshape([a * b]),
                    _ => return Err(format!("{n}: rank {}", shape.len())),
                };
                std::hint::black_box(t);
            }
            let (now, peak) = rss();
            println!("{} {} {before}", peak, now);
        }
        "train" => {
            let (s, c) = train_setting();
            let model = Llama::<CpuTrain>::seeded(&c, 1, &device);
            let mut trainer = Trainer::new(model, s.train.clone());
            let seqs: Vec<(Vec<u32>, Vec<bool>)> = (0..s.batch_size).map(|k| ((0..s.max_context as u32 + 1).map(|i| (i * 7919 + k as u32 * 13) % c.vocab_size as u32).collect(), vec![true; s.max_context + 1])).collect();
            // Above the model's own weights, two steps (the second with the optimizer's moments
            // in place) allocate what the plan estimates.
            let (base, _) = rss();
            for _ in 0..2 {
                trainer.micro_step(eef_runtime::model::Batch::new(&seqs, 0, &device));
            }
            let (now, peak) = rss();
            println!("{} {} {base}", peak, now);
        }
        other => return Err(format!("unknown mode {other}")),
    }
    Ok(())
}

/// The training measurement's model and settings: 60M parameters, 4 windows of 512 tokens.
fn train_setting() -> (LmSettings, LlamaConfig) {
    let c = LlamaConfig { vocab_size: 8000, hidden_size: 512, intermediate_size: 1408, num_hidden_layers: 8, num_attention_heads: 8, num_key_value_heads: Some(4), ..LlamaConfig::tiny(8000) };
    let s = LmSettings { batch_size: 4, max_context: 512, max_new_tokens: 32, model: c.clone(), train: TrainSettings { warmup_steps: 1, ..Default::default() }, ..Default::default() };
    (s, c)
}

fn measure(mode: &str) -> Result<(u64, u64, u64), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = Command::new(exe).env("EEF_MEM_BENCH_CHILD", mode).output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("{mode}: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Vec<u64> = text.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    match v.as_slice() {
        [peak, now, before] => Ok((*peak, *now, *before)),
        _ => Err(format!("{mode}: unexpected output {text}")),
    }
}

/// Runs the benchmark (in child processes) and returns a Markdown report.
pub fn run() -> Result<String, String> {
    if let Ok(mode) = std::env::var("EEF_MEM_BENCH_CHILD") {
        child(&mode)?;
        return Ok(String::new());
    }
    ensure_checkpoint()?;
    let file = std::fs::metadata(dir().join("model.safetensors")).map_err(|e| e.to_string())?.len();
    let c = bench_model();
    let params = c.parameter_count() as f64;
    let largest_f32 = (c.vocab_size * c.hidden_size * 4) as f64;
    let mut out = format!(
        "Checkpoint: {:.0} MiB bf16 ({:.0}M parameters; largest tensor {:.0} MiB in f32). Peak RSS of a fresh process above its \
         baseline. Target: at most 1.2 x file + the largest tensor in f32 on top of the weights the backend keeps in host memory \
         (none for a GPU).\n\n\
         | load into | peak RSS | x file | weights in host memory | peak beyond the weights | target |\n|---|---:|---:|---:|---:|---|\n",
        file as f64 / MIB,
        params / 1e6,
        largest_f32 / MIB
    );
    let allowance = 1.2 * file as f64 + largest_f32;
    for (mode, what, held) in [("stream", "a device (tensors handed over one at a time)", 0.0), ("load-bf16", "the CPU backend, kept in bf16", params * 2.0), ("load-f32", "the CPU backend in f32", params * 4.0)] {
        let (peak, _, before) = measure(mode)?;
        let peak = peak.saturating_sub(before) as f64;
        out.push_str(&format!(
            "| {what} | {:.0} MiB | {:.2} | {:.0} MiB | {:.0} MiB ({:.2} x file) | {} |\n",
            peak / MIB,
            peak / file as f64,
            held / MIB,
            (peak - held).max(0.0) / MIB,
            (peak - held).max(0.0) / file as f64,
            if peak <= held + allowance { "met" } else { "missed" }
        ));
    }
    let (s, tc) = train_setting();
    let plan = Plan::new(&tc, &s, 1);
    let (peak, _, base) = measure("train")?;
    let estimate = plan.training_peak - plan.weights;
    out.push_str(&format!(
        "\nTraining ({:.0}M parameters, {} windows x {} tokens, f32 on the CPU): peak over two steps above the loaded model {:.0} MiB; \
         the plan's training peak less the weights {:.0} MiB (measured / planned {:.2}).\n",
        tc.parameter_count() as f64 / 1e6,
        s.batch_size,
        s.max_context,
        peak.saturating_sub(base) as f64 / MIB,
        estimate as f64 / MIB,
        peak.saturating_sub(base) as f64 / estimate as f64
    ));
    Ok(out)
}
