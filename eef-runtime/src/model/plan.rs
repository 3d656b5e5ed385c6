//! What a run of the language-model policy needs, computed before it runs: parameters, trainable
//! parameters, and device memory for weights, adapters, gradients, optimizer state and
//! activations while training, and for the key-value cache and prefill while rolling out.
//!
//! The activation estimate follows what this crate's training step keeps for the backward pass
//! (burn's autodiff keeps the inputs each operation's backward needs): per layer and token the
//! residual stream and the two normed inputs to the projections (4 x hidden, counting the
//! residual twice), the split queries and the attention output (2 x heads x head_dim), the keys
//! and values (2 x kv_heads x head_dim: the attention operation reads grouped-query heads in
//! place and keeps no probabilities, its backward pass recomputes them), and the feed-forward
//! gate, up and SwiGLU outputs (3 x intermediate); per sequence, the scores and probabilities of
//! the one layer being computed (`2 × heads × len²`: the reference composition GPU backends run;
//! the CPU kernel needs far less); and the logits, their f32 copy for the cross-entropy and its
//! gradient. Activations and the fresh gradients are not alive at once (the backward pass
//! frees the first as it makes the second), so the training peak is the weights, the optimizer's
//! moments and the gradients accumulated so far, plus the larger of the two. Rollouts keep the
//! weights, the key-value cache of every row of a decoding batch, the cache of earlier turns kept
//! for reuse (`kv_cache_tokens` positions, when `kv_reuse`), and, during a prefill, one layer's
//! attention scores and probabilities.

use serde::Serialize;

use super::backend::Precision;
use super::config::LlamaConfig;
use super::lora::LoraSettings;
use super::settings::LmSettings;

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// Parameters and memory of one run, in bytes unless named otherwise.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Plan {
    /// Parameters of the model.
    pub parameters: u64,
    /// Parameters that train (the adapters with LoRA).
    pub trainable: u64,
    /// Bytes per weight and activation (2 in bf16, 4 in f32).
    pub bytes: u64,
    /// The model's weights.
    pub weights: u64,
    /// LoRA adapters (0 without LoRA).
    pub adapters: u64,
    /// Gradients of the trainable parameters (with accumulation, also the buffer that sums them).
    pub gradients: u64,
    /// AdamW's two moments per trainable parameter.
    pub optimizer: u64,
    /// Activations kept for the backward pass of one micro-batch on one device (`batch_size`, or
    /// with `[policy.train] devices` its share of it, windows of
    /// `max_context` tokens).
    pub activations: u64,
    /// Logits of a micro-batch, their f32 copy for the cross-entropy and its gradient.
    pub logits: u64,
    /// Peak while training: weights, adapters, optimizer state and accumulated gradients, plus
    /// the larger of activations with logits and the fresh gradients.
    pub training_peak: u64,
    /// Key-value cache of a decoding batch (`max_batch` rows of `max_context` tokens).
    pub kv_cache: u64,
    /// Keys and values of earlier turns kept for reuse (`kv_cache_tokens` positions).
    pub reuse_cache: u64,
    /// One layer's attention scores and probabilities during a prefill of that batch.
    pub prefill: u64,
    /// Peak while rolling out: weights, adapters, cache and prefill.
    pub rollout_peak: u64,
    /// Tokens a training window holds at most; a micro-batch holds `batch_size` of them.
    pub tokens_per_micro_batch: u64,
    /// Tokens one episode processes at most: a prefill of the whole prompt and the answer per step
    /// (the bound without the reuse of earlier turns' keys and values, which a prompt cut to the
    /// context loses).
    pub tokens_per_episode: u64,
}

fn lora_parameters(c: &LlamaConfig, l: &LoraSettings) -> u64 {
    let (h, q, kv, i) = (c.hidden_size, c.num_attention_heads * c.head_dim(), c.kv_heads() * c.head_dim(), c.intermediate_size);
    let per_layer: usize = l
        .targets
        .iter()
        .map(|t| match t.as_str() {
            "q_proj" => h + q,
            "k_proj" | "v_proj" => h + kv,
            "o_proj" => q + h,
            "gate_proj" | "up_proj" => h + i,
            "down_proj" => i + h,
            _ => 0,
        })
        .sum();
    (per_layer * l.rank * c.num_hidden_layers) as u64
}

impl Plan {
    /// The plan for model `c` trained and rolled out with `s`, decoding batches of up to
    /// `max_batch` rows.
    pub fn new(c: &LlamaConfig, s: &LmSettings, max_batch: usize) -> Self {
        let bytes: u64 = match s.precision {
            Precision::F32 => 4,
            Precision::Bf16 => 2,
        };
        let parameters = c.parameter_count() as u64;
        let lora = s.lora.as_ref().map_or(0, |l| lora_parameters(c, l));
        let trainable = if s.lora.is_some() { lora } else { parameters };
        // Each data-parallel device ([policy.train] devices) holds its share of the micro-batch.
        let (b, t) = (s.batch_size.max(1).div_ceil(s.train.devices.len().max(1)) as u64, s.max_context as u64);
        let (d, h, hd) = (c.hidden_size as u64, c.num_attention_heads as u64, c.head_dim() as u64);
        let (q, kv, i, layers) = (h * hd, c.kv_heads() as u64 * hd, c.intermediate_size as u64, c.num_hidden_layers as u64);
        // Per token and layer (see the module documentation); the adapters' `x A` rows in f32.
        let per_token_layer = 4 * d + 2 * q + 2 * kv + 3 * i;
        let lora_rows = s.lora.as_ref().map_or(0, |l| l.rank as u64 * l.targets.len() as u64 * 4);
        // Per sequence: the scores and probabilities of the layer being computed.
        let attention = 2 * h * t * t;
        let activations = b * t * layers * (per_token_layer * bytes + lora_rows) + b * attention * bytes;
        let logits = b * t * c.vocab_size as u64 * (bytes + 4 + 4);
        let weights = parameters * bytes;
        // Adapters, their gradients and moments are f32 (see crate::model::lora).
        let param_bytes = if s.lora.is_some() { 4 } else { bytes };
        let adapters = lora * 4;
        let fresh = trainable * param_bytes;
        let accumulated = if s.train.accumulation > 1 { fresh } else { 0 };
        let gradients = fresh + accumulated;
        let optimizer = 2 * trainable * param_bytes;
        let training_peak = weights + adapters + optimizer + accumulated + (activations + logits).max(fresh);
        let rows = max_batch.max(1) as u64;
        let kv_cache = rows * t * layers * 2 * kv * bytes;
        let reuse_cache = if s.kv_reuse { s.kv_cache_tokens as u64 * layers * 2 * kv * bytes } else { 0 };
        let prefill = 2 * rows * h * t * t * bytes + rows * t * (2 * d + 3 * i) * bytes;
        let rollout_peak = weights + adapters + kv_cache + reuse_cache + prefill;
        Plan {
            parameters,
            trainable,
            bytes,
            weights,
            adapters,
            gradients,
            optimizer,
            activations,
            logits,
            training_peak,
            kv_cache,
            reuse_cache,
            prefill,
            rollout_peak,
            tokens_per_micro_batch: b * t,
            tokens_per_episode: 0,
        }
    }

    /// Sets the episode's token bound for `max_steps` steps.
    pub fn with_steps(mut self, max_steps: usize, s: &LmSettings) -> Self {
        self.tokens_per_episode = (max_steps * (s.prompt_budget() + s.max_new_tokens)) as u64;
        self
    }

    /// The larger of the two peaks.
    pub fn peak(&self) -> u64 {
        self.training_peak.max(self.rollout_peak)
    }

    /// A table for people, with a verdict against `device_gib` of device memory.
    pub fn render(&self, device_gib: f64) -> String {
        let g = |b: u64| format!("{:.2} GiB", b as f64 / GIB);
        let mut out = String::new();
        let mut row = |k: &str, v: String| out.push_str(&format!("| {k} | {v} |\n"));
        row("parameters", format!("{:.3} B ({})", self.parameters as f64 / 1e9, self.parameters));
        row("trainable parameters", format!("{:.1} M ({:.2}%)", self.trainable as f64 / 1e6, 100.0 * self.trainable as f64 / self.parameters.max(1) as f64));
        row("weights", format!("{} ({} bytes each)", g(self.weights), self.bytes));
        row("LoRA adapters", g(self.adapters));
        row("gradients (with accumulation buffer)", g(self.gradients));
        row("optimizer state (AdamW moments)", g(self.optimizer));
        row("activations of one micro-batch", format!("{} ({} tokens)", g(self.activations), self.tokens_per_micro_batch));
        row("logits, their f32 copy and gradient", g(self.logits));
        row("**training peak**", format!("**{}**", g(self.training_peak)));
        row("key-value cache of a decoding batch", g(self.kv_cache));
        row("cache of earlier turns (kv_cache_tokens)", g(self.reuse_cache));
        row("prefill (one layer's attention, that batch)", g(self.prefill));
        row("**rollout peak**", format!("**{}**", g(self.rollout_peak)));
        if self.tokens_per_episode > 0 {
            row("tokens per episode, at most", self.tokens_per_episode.to_string());
        }
        let peak = self.peak() as f64 / GIB;
        let verdict = if peak <= device_gib * 0.9 {
            format!("fits: peak {peak:.1} GiB of {device_gib:.0} GiB (10% kept for the allocator and the CUDA context)")
        } else {
            format!("does NOT fit: peak {peak:.1} GiB > 90% of {device_gib:.0} GiB; lower batch_size, max_context or max_batch, or use LoRA / bf16")
        };
        format!("| | |\n|---|---|\n{out}\n{verdict}\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama3_8b_with_lora_in_bf16() {
        let c = LlamaConfig::llama3_8b();
        let all = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"].map(String::from).to_vec();
        let s = LmSettings { kv_reuse: false, precision: Precision::Bf16, lora: Some(LoraSettings { rank: 16, alpha: 32.0, targets: all, ..Default::default() }), batch_size: 1, max_context: 2048, ..Default::default() };
        let p = Plan::new(&c, &s, 16);
        assert_eq!(p.parameters, 8_030_261_248);
        // PEFT reports 41,943,040 trainable parameters for r=16 on all seven projections.
        assert_eq!(p.trainable, 41_943_040);
        assert_eq!(p.weights, 2 * 8_030_261_248);
        // Key-value cache: 16 rows x 2048 tokens x 32 layers x 2 x 1024 x 2 bytes = 4 GiB.
        assert_eq!(p.kv_cache, 4 * 1024 * 1024 * 1024);
    }
}
