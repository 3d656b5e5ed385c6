//! The model's architecture: one configuration for the Llama family this crate implements
//! (Llama 2/3/3.1/3.2, Qwen2/Qwen2.5, Mistral), written in `[policy.model]` for a model trained
//! from scratch, or read from a Hugging Face `config.json` by [`super::hf::config`] (which refuses
//! every key it does not understand).

use serde::{Deserialize, Serialize};

use super::rope::RopeScaling;

/// The member of the Llama family: the three differ only in where the projections carry a bias.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Architecture {
    /// `LlamaForCausalLM` (`model_type = "llama"`): biases on q/k/v/o when `attention_bias`.
    #[default]
    Llama,
    /// `Qwen2ForCausalLM` (`model_type = "qwen2"`, also Qwen2.5): biases on q/k/v, none on o.
    Qwen2,
    /// `MistralForCausalLM` (`model_type = "mistral"`): no biases.
    Mistral,
}

impl Architecture {
    /// Hugging Face's `model_type`.
    pub fn model_type(self) -> &'static str {
        match self {
            Architecture::Llama => "llama",
            Architecture::Qwen2 => "qwen2",
            Architecture::Mistral => "mistral",
        }
    }

    /// Hugging Face's class name, written in `architectures`.
    pub fn class_name(self) -> &'static str {
        match self {
            Architecture::Llama => "LlamaForCausalLM",
            Architecture::Qwen2 => "Qwen2ForCausalLM",
            Architecture::Mistral => "MistralForCausalLM",
        }
    }

    /// Every architecture, for error messages.
    pub const ALL: [Architecture; 3] = [Architecture::Llama, Architecture::Qwen2, Architecture::Mistral];
}

/// A Llama-family configuration. The field names are Hugging Face's; in `[policy.model]` an
/// unknown key is an error.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlamaConfig {
    /// Which member of the family (`model_type`).
    #[serde(default)]
    pub model_type: Architecture,
    /// Vocabulary size. In `[policy.model]` it may be left out: a model trained from scratch
    /// takes its tokenizer's size.
    #[serde(default)]
    pub vocab_size: usize,
    /// Model width.
    pub hidden_size: usize,
    /// Width of the SwiGLU feed-forward layer.
    pub intermediate_size: usize,
    /// Decoder blocks.
    pub num_hidden_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key/value heads (grouped-query attention; equal to the query heads for plain MHA).
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    /// Width of one head, when it is not `hidden_size / num_attention_heads` (Llama-3.2,
    /// Mistral-Nemo).
    #[serde(default)]
    pub head_dim: Option<usize>,
    /// RMSNorm epsilon.
    #[serde(default = "default_eps")]
    pub rms_norm_eps: f64,
    /// Rotary base.
    #[serde(default = "default_theta")]
    pub rope_theta: f64,
    /// Rotary frequency scaling (Llama-3.1/3.2's `llama3`, or `linear`).
    #[serde(default)]
    pub rope_scaling: Option<RopeScaling>,
    /// Longest sequence the model was trained for.
    #[serde(default = "default_max_pos")]
    pub max_position_embeddings: usize,
    /// Whether the output projection shares the input embedding.
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// Llama's `attention_bias`: biases on the query, key, value and output projections.
    /// (Qwen2 always has q/k/v biases; Mistral never has any.)
    #[serde(default)]
    pub attention_bias: bool,
    /// Sliding-window attention span (Mistral v0.1: 4096). Not implemented: a model with one is
    /// refused when a sequence could be longer than the window.
    #[serde(default)]
    pub sliding_window: Option<usize>,
}

fn default_eps() -> f64 {
    1e-6
}
fn default_theta() -> f64 {
    10_000.0
}
fn default_max_pos() -> usize {
    2048
}

impl LlamaConfig {
    /// A tiny model that trains on two CPU cores (about 0.5 M parameters with a 256-token
    /// vocabulary).
    pub fn tiny(vocab_size: usize) -> Self {
        LlamaConfig {
            model_type: Architecture::Llama,
            vocab_size,
            hidden_size: 128,
            intermediate_size: 256,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            num_key_value_heads: Some(2),
            head_dim: None,
            rms_norm_eps: 1e-6,
            rope_theta: 10_000.0,
            rope_scaling: None,
            max_position_embeddings: 1024,
            tie_word_embeddings: false,
            attention_bias: false,
            sliding_window: None,
        }
    }

    /// Llama-3-8B's shape.
    pub fn llama3_8b() -> Self {
        LlamaConfig {
            vocab_size: 128_256,
            hidden_size: 4096,
            intermediate_size: 14_336,
            num_hidden_layers: 32,
            num_attention_heads: 32,
            num_key_value_heads: Some(8),
            rms_norm_eps: 1e-5,
            rope_theta: 500_000.0,
            max_position_embeddings: 8192,
            ..LlamaConfig::tiny(128_256)
        }
    }

    /// Key/value heads.
    pub fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    /// Width of one head.
    pub fn head_dim(&self) -> usize {
        self.head_dim.unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }

    /// Whether the query, key and value projections carry a bias.
    pub fn qkv_bias(&self) -> bool {
        match self.model_type {
            Architecture::Llama => self.attention_bias,
            Architecture::Qwen2 => true,
            Architecture::Mistral => false,
        }
    }

    /// Whether the attention's output projection carries a bias.
    pub fn o_bias(&self) -> bool {
        self.model_type == Architecture::Llama && self.attention_bias
    }

    /// Number of parameters (8,030,261,248 for Llama-3-8B).
    pub fn parameter_count(&self) -> usize {
        let (h, hd) = (self.hidden_size, self.head_dim());
        let (q, kv) = (self.num_attention_heads * hd, self.kv_heads() * hd);
        let biases = if self.qkv_bias() { q + 2 * kv } else { 0 } + if self.o_bias() { h } else { 0 };
        let attention = h * q * 2 + h * kv * 2 + biases;
        let layer = attention + 3 * h * self.intermediate_size + 2 * h;
        let head = if self.tie_word_embeddings { 0 } else { self.vocab_size * h };
        self.vocab_size * h + self.num_hidden_layers * layer + h + head
    }

    /// Checks the shape is consistent.
    pub fn validate(&self) -> Result<(), String> {
        if self.num_attention_heads == 0 || self.hidden_size == 0 || self.num_hidden_layers == 0 {
            return Err("hidden_size, num_attention_heads and num_hidden_layers must be positive".into());
        }
        if self.head_dim.is_none() && !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(format!("hidden_size {} is not a multiple of num_attention_heads {}", self.hidden_size, self.num_attention_heads));
        }
        if self.kv_heads() == 0 || !self.num_attention_heads.is_multiple_of(self.kv_heads()) {
            return Err(format!("num_attention_heads {} is not a multiple of num_key_value_heads {}", self.num_attention_heads, self.kv_heads()));
        }
        if !self.head_dim().is_multiple_of(2) || self.head_dim() == 0 {
            return Err(format!("head_dim {} must be even and positive for rotary embeddings", self.head_dim()));
        }
        if let Some(s) = &self.rope_scaling {
            s.validate()?;
        }
        Ok(())
    }

    /// Refuses the model for sequences of up to `longest` tokens when that needs a feature this
    /// crate does not implement (sliding-window attention shorter than the sequence).
    pub fn check_context(&self, longest: usize) -> Result<(), String> {
        match self.sliding_window {
            Some(w) if w < longest => Err(format!(
                "config.json: sliding_window = {w}, but sequences of up to {longest} tokens are used ([policy] max_context): \
                 sliding-window attention is not implemented; set max_context to at most {w}"
            )),
            _ => Ok(()),
        }
    }
}
