//! Model configuration, read from (and written as) a Hugging Face `config.json`.

use serde::{Deserialize, Serialize};

/// A Llama-family configuration; the field names are Hugging Face's, so a `config.json` of a
/// Llama checkpoint deserialises directly (unknown fields are ignored).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LlamaConfig {
    /// Vocabulary size. In `[policy.model]` it may be left out: a model trained from scratch
    /// takes its tokenizer's size. A `config.json` must have it.
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
    /// RMSNorm epsilon.
    #[serde(default = "default_eps")]
    pub rms_norm_eps: f64,
    /// Rotary base.
    #[serde(default = "default_theta")]
    pub rope_theta: f64,
    /// Longest sequence.
    #[serde(default = "default_max_pos")]
    pub max_position_embeddings: usize,
    /// Whether the output projection shares the input embedding.
    #[serde(default)]
    pub tie_word_embeddings: bool,
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
            vocab_size,
            hidden_size: 128,
            intermediate_size: 256,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            num_key_value_heads: Some(2),
            rms_norm_eps: 1e-6,
            rope_theta: 10_000.0,
            max_position_embeddings: 1024,
            tie_word_embeddings: false,
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
            tie_word_embeddings: false,
        }
    }

    /// Key/value heads.
    pub fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    /// Width of one head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// Number of parameters (8,030,261,248 for Llama-3-8B).
    pub fn parameter_count(&self) -> usize {
        let (h, hd) = (self.hidden_size, self.head_dim());
        let attention = h * self.num_attention_heads * hd * 2 + h * self.kv_heads() * hd * 2;
        let layer = attention + 3 * h * self.intermediate_size + 2 * h;
        let head = if self.tie_word_embeddings { 0 } else { self.vocab_size * h };
        self.vocab_size * h + self.num_hidden_layers * layer + h + head
    }

    /// Checks the shape is consistent.
    pub fn validate(&self) -> Result<(), String> {
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(format!("hidden_size {} is not a multiple of num_attention_heads {}", self.hidden_size, self.num_attention_heads));
        }
        if !self.num_attention_heads.is_multiple_of(self.kv_heads()) {
            return Err(format!("num_attention_heads {} is not a multiple of num_key_value_heads {}", self.num_attention_heads, self.kv_heads()));
        }
        if !self.head_dim().is_multiple_of(2) {
            return Err("the head width must be even for rotary embeddings".into());
        }
        Ok(())
    }
}
