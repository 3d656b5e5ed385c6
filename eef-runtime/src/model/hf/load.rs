//! Loading a Hugging Face checkpoint into a [`Llama`]: tensor by tensor from the memory-mapped
//! files, each converted straight into the backend's float type (or kept in the checkpoint's
//! dtype when the backend computes in it, e.g. bf16 on CUDA) and its file pages released.
//!
//! Hugging Face stores linear weights as `[out, in]`, burn as `[in, out]`: they are transposed
//! (a view on every backend). Biases load where the architecture has them; a tensor the
//! architecture does not use, or a missing one, is an error naming it.

use std::collections::BTreeSet;
use std::path::Path;

use burn::module::Param;
use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::DType;
use safetensors::Dtype;

use super::files::TensorFiles;
use super::WeightsError;
use crate::model::config::LlamaConfig;
use crate::model::llama::Llama;

/// How tensors are stored once loaded.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LoadOptions {
    /// The float dtype to store weights in; `None`: the device's default float type (the
    /// backend's, e.g. `f32` on the CPU, `bf16` for `precision = "bf16"` on CUDA).
    pub dtype: Option<DType>,
}

/// Converts a stored dtype to burn's.
fn burn_dtype(name: &str, d: Dtype) -> Result<DType, WeightsError> {
    match d {
        Dtype::F32 => Ok(DType::F32),
        Dtype::F16 => Ok(DType::F16),
        Dtype::BF16 => Ok(DType::BF16),
        Dtype::F64 => Ok(DType::F64),
        other => Err(WeightsError::Tensor { name: name.to_owned(), message: format!("dtype {other:?} is not a float type this loader reads (F32, F16, BF16, F64)") }),
    }
}

/// Reads tensors out of a [`TensorFiles`], remembering which were used.
pub struct Loader<'a, B: Backend> {
    files: &'a TensorFiles,
    device: &'a B::Device,
    options: LoadOptions,
    used: BTreeSet<String>,
}

impl<'a, B: Backend> Loader<'a, B> {
    /// A loader over `files` onto `device`.
    pub fn new(files: &'a TensorFiles, device: &'a B::Device, options: LoadOptions) -> Self {
        Loader { files, device, options, used: BTreeSet::new() }
    }

    /// The tensor `name`, checked to have `shape`.
    pub fn tensor<const D: usize>(&mut self, name: &str, shape: [usize; D]) -> Result<Tensor<B, D>, WeightsError> {
        let raw = self.files.get(name)?;
        if raw.shape != shape {
            return Err(WeightsError::Tensor { name: name.to_owned(), message: format!("shape {:?}, expected {shape:?}", raw.shape) });
        }
        let data = TensorData::from_bytes_vec(raw.bytes.to_vec(), shape, burn_dtype(name, raw.dtype)?);
        let t = match self.options.dtype {
            Some(dtype) => Tensor::from_data(data, (self.device, dtype)),
            None => Tensor::from_data(data, self.device),
        };
        self.files.release(name);
        self.used.insert(name.to_owned());
        Ok(t)
    }

    /// Whether the checkpoint has `name`.
    pub fn has(&self, name: &str) -> bool {
        self.files.contains(name)
    }

    /// Loads `prefix.weight` (`[out, in]`) and, when `bias`, `prefix.bias` into `target`.
    pub fn linear(&mut self, prefix: &str, out_dim: usize, in_dim: usize, bias: bool, target: &mut Linear<B>) -> Result<(), WeightsError> {
        let w: Tensor<B, 2> = self.tensor(&format!("{prefix}.weight"), [out_dim, in_dim])?;
        target.weight = Param::from_tensor(w.transpose());
        let bias_name = format!("{prefix}.bias");
        target.bias = match (bias, self.has(&bias_name)) {
            (true, _) => Some(Param::from_tensor(self.tensor(&bias_name, [out_dim])?)),
            (false, true) => {
                return Err(WeightsError::Tensor { name: bias_name, message: "the checkpoint has a bias the configuration does not (check attention_bias / model_type)".into() })
            }
            (false, false) => None,
        };
        Ok(())
    }

    /// Tensors of the checkpoint that were never read (buffers that are recomputed, like
    /// `rotary_emb.inv_freq`, excluded).
    pub fn unused(&self) -> Vec<&str> {
        self.files.names().filter(|n| !self.used.contains(*n) && !n.ends_with("rotary_emb.inv_freq")).collect()
    }
}

/// Loads the weights in `files` into a model of configuration `c`.
pub fn load_llama<B: Backend>(files: &TensorFiles, c: &LlamaConfig, device: &B::Device, options: LoadOptions) -> Result<Llama<B>, WeightsError> {
    let mut l = Loader::<B>::new(files, device, options);
    let (d, hd) = (c.hidden_size, c.head_dim());
    let (q, kv) = (c.num_attention_heads * hd, c.kv_heads() * hd);
    // Parameters start uninitialised (burn initialises lazily), so nothing is allocated for
    // weights that are replaced below.
    let mut m = Llama::<B>::new(c, device);
    m.embed_tokens.weight = Param::from_tensor(l.tensor("model.embed_tokens.weight", [c.vocab_size, d])?);
    for (i, block) in m.layers.iter_mut().enumerate() {
        let p = format!("model.layers.{i}");
        block.input_layernorm.gamma = Param::from_tensor(l.tensor(&format!("{p}.input_layernorm.weight"), [d])?);
        block.post_attention_layernorm.gamma = Param::from_tensor(l.tensor(&format!("{p}.post_attention_layernorm.weight"), [d])?);
        let a = &mut block.self_attn;
        l.linear(&format!("{p}.self_attn.q_proj"), q, d, c.qkv_bias(), &mut a.q_proj.base)?;
        l.linear(&format!("{p}.self_attn.k_proj"), kv, d, c.qkv_bias(), &mut a.k_proj.base)?;
        l.linear(&format!("{p}.self_attn.v_proj"), kv, d, c.qkv_bias(), &mut a.v_proj.base)?;
        l.linear(&format!("{p}.self_attn.o_proj"), d, q, c.o_bias(), &mut a.o_proj.base)?;
        let f = &mut block.mlp;
        l.linear(&format!("{p}.mlp.gate_proj"), c.intermediate_size, d, false, &mut f.gate_proj.base)?;
        l.linear(&format!("{p}.mlp.up_proj"), c.intermediate_size, d, false, &mut f.up_proj.base)?;
        l.linear(&format!("{p}.mlp.down_proj"), d, c.intermediate_size, false, &mut f.down_proj.base)?;
    }
    m.norm.gamma = Param::from_tensor(l.tensor("model.norm.weight", [d])?);
    match &mut m.lm_head {
        Some(head) => l.linear("lm_head", c.vocab_size, d, false, head)?,
        // Tied: transformers ties lm_head to the embedding and ignores a stored copy.
        None => {
            if l.has("lm_head.weight") {
                tracing::debug!("tie_word_embeddings: the stored lm_head.weight is ignored, as transformers does");
                l.used.insert("lm_head.weight".into());
            }
        }
    }
    let unused = l.unused();
    if !unused.is_empty() {
        let shown: Vec<&str> = unused.iter().take(5).copied().collect();
        return Err(WeightsError::Tensor {
            name: shown.join(", "),
            message: format!("{} tensor(s) of the checkpoint are not part of a {} model with this config.json", unused.len(), c.model_type.class_name()),
        });
    }
    Ok(m)
}

/// Loads `dir`'s weights (single file or shards) for configuration `c`.
pub fn load_weights<B: Backend>(dir: &Path, c: &LlamaConfig, device: &B::Device, options: LoadOptions) -> Result<Llama<B>, WeightsError> {
    let files = TensorFiles::open(dir)?;
    load_llama(&files, c, device, options)
}
