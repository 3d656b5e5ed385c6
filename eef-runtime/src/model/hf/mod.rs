//! Hugging Face model folders, as `huggingface-cli download` leaves them: `config.json`, the
//! weights (`model.safetensors`, or shards with `model.safetensors.index.json`),
//! `tokenizer.json`, `tokenizer_config.json` (with the chat template) and
//! `generation_config.json`; and PEFT LoRA adapters (`adapter_config.json` +
//! `adapter_model.safetensors`).
//!
//! - [`config`]: `config.json`, read strictly (an unknown key is an error) and written completely.
//! - [`files`] and [`load`]: memory-mapped shards, loaded one tensor at a time.
//! - [`save`]: sharded saving with an index.
//! - [`generation`]: the ids generation stops at.
//! - [`peft`]: LoRA adapters in PEFT's layout.

pub mod config;
pub mod files;
pub mod generation;
pub mod load;
pub mod peft;
pub mod save;

use std::path::Path;

use burn::prelude::*;

pub use config::{ConfigJsonError, TokenIds};
pub use load::LoadOptions;
pub use save::{SaveDtype, SaveOptions};

use super::config::LlamaConfig;
use super::llama::Llama;

/// Why a checkpoint could not be read or written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WeightsError {
    /// File access, or a file that is not what it should be.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        message: String,
    },
    /// A tensor is missing, extra, or has the wrong shape or type.
    #[error("tensor {name}: {message}")]
    Tensor {
        /// The tensor's name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// `config.json` names something this crate does not implement, or is malformed.
    #[error(transparent)]
    Config(#[from] ConfigJsonError),
    /// The model needs a feature this crate does not implement for the sequences it is loaded
    /// for (sliding-window attention shorter than them).
    #[error("{path}: {message}")]
    Unsupported {
        /// The folder.
        path: String,
        /// What is missing, and what to do.
        message: String,
    },
}

/// Reads `dir/config.json` strictly (see [`config`]); `accept` lists unknown keys declared
/// harmless.
pub fn read_config(dir: &Path, accept: &[String]) -> Result<LlamaConfig, WeightsError> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|e| WeightsError::Io { path: path.display().to_string(), message: e.to_string() })?;
    Ok(config::from_json(&path.display().to_string(), &text, accept)?)
}

/// Loads the model in `dir`: its `config.json` (no unknown keys accepted) and weights, in the
/// device's default float type. A model whose attention is a sliding window is refused (this
/// crate attends to the whole sequence, which equals the window only for sequences that fit
/// in it): load it with [`load_safetensors_within`] and the longest sequence you will use.
pub fn load_safetensors<B: Backend>(dir: &Path, device: &B::Device) -> Result<(LlamaConfig, Llama<B>), WeightsError> {
    load_safetensors_within(dir, device, usize::MAX)
}

/// [`load_safetensors`] for sequences of at most `longest` tokens: a sliding window at least
/// that long changes nothing and is accepted, as `[policy] init` accepts it up to `max_context`.
pub fn load_safetensors_within<B: Backend>(dir: &Path, device: &B::Device, longest: usize) -> Result<(LlamaConfig, Llama<B>), WeightsError> {
    let config = read_config(dir, &[])?;
    if let Err(message) = config.check_context(longest) {
        let message = match config.sliding_window {
            Some(w) if longest == usize::MAX => format!(
                "config.json: sliding_window = {w}: sliding-window attention is not implemented, so the model is exact only for sequences of at most {w} tokens; \
                 load it with load_safetensors_within(dir, device, longest) with longest <= {w}"
            ),
            _ => message,
        };
        return Err(WeightsError::Unsupported { path: dir.display().to_string(), message });
    }
    let model = load::load_weights(dir, &config, device, LoadOptions::default())?;
    Ok((config, model))
}

/// Saves `model` into `dir` as f32, in one file up to 5 GB and in shards above.
pub fn save_safetensors<B: Backend>(dir: &Path, config: &LlamaConfig, model: &Llama<B>) -> Result<(), WeightsError> {
    save::save_llama(dir, config, model, &SaveOptions::default())
}
