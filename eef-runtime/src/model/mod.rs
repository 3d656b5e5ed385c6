//! The policy model: a Llama-architecture decoder on burn (RMSNorm, rotary embeddings, SwiGLU,
//! grouped-query attention), loadable from and savable to Hugging Face safetensors, with a
//! key-value cache for generation and a masked causal-LM loss for training.
//!
//! Backends: the CPU backend (`burn-ndarray`) is what tests and CI use; the model is generic over
//! burn's `Backend`, so the same code runs on CUDA or wgpu once those features are enabled.

mod attention;
mod config;
mod llama;
mod loss;
mod policy;
mod rope;
pub mod template;
mod tokenizer;
mod train;
mod weights;

pub use attention::{Attention, KvCache};
pub use config::LlamaConfig;
pub use llama::{Block, Llama, Mlp};
pub use loss::masked_lm_loss;
pub use policy::{LmPolicy, LmSettings};
pub use rope::rope_tables;
pub use tokenizer::{Tok, SPECIAL_TOKENS};
pub use train::{learning_rate, Batch, TrainSettings, Trainer};
pub use weights::{load_safetensors, save_safetensors, WeightsError};

/// The CPU backend used by tests and CI.
pub type Cpu = burn::backend::NdArray<f32>;
/// The CPU backend with autodiff, for training.
pub type CpuTrain = burn::backend::Autodiff<Cpu>;
