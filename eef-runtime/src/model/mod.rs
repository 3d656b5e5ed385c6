//! The policy model: a Llama-architecture decoder on burn (RMSNorm, rotary embeddings, SwiGLU,
//! grouped-query attention), loadable from and savable to Hugging Face safetensors, with a
//! key-value cache for generation and a masked causal-LM loss for training.
//!
//! Backends: the model is generic over burn's `Backend`; [`backend`] picks one at run time from
//! those compiled in (CPU by default; `cuda` and `wgpu` are cargo features).

pub mod allocator;
mod attention;
mod dpo;
pub mod checkpoint;
pub mod data_parallel;
pub mod backend;
pub mod config;
mod init;
pub mod kernels;
pub mod plan;
pub mod decode;
pub mod epoch_cost;
pub mod hf;
mod llama;
mod lora;
mod meter;
mod loss;
mod policy;
pub mod prefix_cache;
pub mod row;
mod settings;
pub mod rope;
pub mod chat;
mod tokenizer;
mod train;

pub use attention::{Attention, KvCache, Layout};
pub use config::{Architecture, LlamaConfig};
pub use llama::{Block, Llama, Mlp};
pub use init::INITIALIZER_RANGE;
pub use lora::{Adapter, LoraSettings, Proj};
pub use loss::masked_lm_loss;
pub use policy::{lm_policy, LmPolicy};
pub use settings::{Constrained, LmSettings};
pub use rope::{apply_rope, rope_tables, Rope, RopeScaling};
pub use tokenizer::{Tok, SPECIAL_TOKENS};
pub use row::Row;
pub use train::{learning_rate, Batch, OptimRecord, TrainSettings, Trainer};
pub use hf::{load_safetensors, load_safetensors_within, save_safetensors, WeightsError};
#[cfg(any(feature = "flex", feature = "ndarray"))]
pub use backend::{Cpu, CpuTrain};
pub use kernels::{LmAutodiffBackend, LmBackend};
pub use backend::{BackendChoice, BackendError, BackendKind, BackendVisitor, Precision};
