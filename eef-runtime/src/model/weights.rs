//! Hugging Face safetensors: load a Llama checkpoint (`model.safetensors` + `config.json`) into a
//! [`Llama`], and save one in the same layout. Hugging Face stores linear weights as
//! `[out, in]`, burn as `[in, out]`: they are transposed on the way in and out. `f32`, `f16` and
//! `bf16` checkpoints load (as `f32`).

use std::collections::HashMap;
use std::path::Path;

use burn::module::Param;
use burn::nn::Linear;
use burn::prelude::*;
use safetensors::{Dtype, SafeTensors};

use super::config::LlamaConfig;
use super::llama::Llama;

/// Why a checkpoint could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// File access.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        message: String,
    },
    /// A tensor is missing or has the wrong shape or type.
    #[error("tensor {name}: {message}")]
    Tensor {
        /// The tensor's name.
        name: String,
        /// What is wrong.
        message: String,
    },
}

fn io(path: &Path, e: impl std::fmt::Display) -> WeightsError {
    WeightsError::Io { path: path.display().to_string(), message: e.to_string() }
}

fn read<B: Backend, const D: usize>(st: &SafeTensors<'_>, name: &str, shape: [usize; D], device: &B::Device) -> Result<Tensor<B, D>, WeightsError> {
    let err = |m: String| WeightsError::Tensor { name: name.to_owned(), message: m };
    let view = st.tensor(name).map_err(|e| err(e.to_string()))?;
    if view.shape() != shape {
        return Err(err(format!("shape {:?}, expected {shape:?}", view.shape())));
    }
    let bytes = view.data();
    let values: Vec<f32> = match view.dtype() {
        Dtype::F32 => bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
        Dtype::F16 => bytes.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
        Dtype::BF16 => bytes.chunks_exact(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
        other => return Err(err(format!("unsupported dtype {other:?}"))),
    };
    Ok(Tensor::from_data(TensorData::new(values, shape), device))
}

fn linear<B: Backend>(st: &SafeTensors<'_>, name: &str, out_dim: usize, in_dim: usize, target: &mut Linear<B>, device: &B::Device) -> Result<(), WeightsError> {
    let w: Tensor<B, 2> = read(st, name, [out_dim, in_dim], device)?;
    target.weight = Param::from_tensor(w.transpose());
    Ok(())
}

/// Loads `dir/config.json` and `dir/model.safetensors`.
pub fn load_safetensors<B: Backend>(dir: &Path, device: &B::Device) -> Result<(LlamaConfig, Llama<B>), WeightsError> {
    let cfg_path = dir.join("config.json");
    let text = std::fs::read_to_string(&cfg_path).map_err(|e| io(&cfg_path, e))?;
    let mut config: LlamaConfig = serde_json::from_str(&text).map_err(|e| io(&cfg_path, e))?;
    // transformers >= 5 writes the rotary base under `rope_parameters`.
    let raw: serde_json::Value = serde_json::from_str(&text).map_err(|e| io(&cfg_path, e))?;
    if raw.get("rope_theta").is_none() {
        if let Some(theta) = raw.pointer("/rope_parameters/rope_theta").and_then(serde_json::Value::as_f64) {
            config.rope_theta = theta;
        }
    }
    if raw.get("vocab_size").is_none() {
        return Err(io(&cfg_path, "no vocab_size"));
    }
    config.validate().map_err(|e| io(&cfg_path, e))?;
    let path = dir.join("model.safetensors");
    let bytes = std::fs::read(&path).map_err(|e| io(&path, e))?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| io(&path, e))?;
    let c = &config;
    let (d, hd) = (c.hidden_size, c.head_dim());
    let mut m = Llama::<B>::new(c, device);
    m.embed_tokens.weight = Param::from_tensor(read(&st, "model.embed_tokens.weight", [c.vocab_size, d], device)?);
    for (i, block) in m.layers.iter_mut().enumerate() {
        let p = format!("model.layers.{i}");
        block.input_layernorm.gamma = Param::from_tensor(read(&st, &format!("{p}.input_layernorm.weight"), [d], device)?);
        block.post_attention_layernorm.gamma = Param::from_tensor(read(&st, &format!("{p}.post_attention_layernorm.weight"), [d], device)?);
        let a = &mut block.self_attn;
        linear(&st, &format!("{p}.self_attn.q_proj.weight"), c.num_attention_heads * hd, d, &mut a.q_proj.base, device)?;
        linear(&st, &format!("{p}.self_attn.k_proj.weight"), c.kv_heads() * hd, d, &mut a.k_proj.base, device)?;
        linear(&st, &format!("{p}.self_attn.v_proj.weight"), c.kv_heads() * hd, d, &mut a.v_proj.base, device)?;
        linear(&st, &format!("{p}.self_attn.o_proj.weight"), d, c.num_attention_heads * hd, &mut a.o_proj.base, device)?;
        let f = &mut block.mlp;
        linear(&st, &format!("{p}.mlp.gate_proj.weight"), c.intermediate_size, d, &mut f.gate_proj.base, device)?;
        linear(&st, &format!("{p}.mlp.up_proj.weight"), c.intermediate_size, d, &mut f.up_proj.base, device)?;
        linear(&st, &format!("{p}.mlp.down_proj.weight"), d, c.intermediate_size, &mut f.down_proj.base, device)?;
    }
    m.norm.gamma = Param::from_tensor(read(&st, "model.norm.weight", [d], device)?);
    if let Some(head) = &mut m.lm_head {
        linear(&st, "lm_head.weight", c.vocab_size, d, head, device)?;
    }
    Ok((config, m))
}

/// Saves `model` (with any LoRA adapters merged into the weights) as `dir/config.json` and `dir/model.safetensors` (f32) in Hugging Face's layout.
pub fn save_safetensors<B: Backend>(dir: &Path, config: &LlamaConfig, model: &Llama<B>) -> Result<(), WeightsError> {
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    // Any rank: norms stay 1-D, as in Hugging Face's files; linear weights go back to [out, in].
    let mut put = |name: String, dims: Vec<usize>, data: TensorData| {
        let values: Vec<f32> = data.convert::<f32>().to_vec().unwrap_or_default();
        tensors.push((name, dims, values.iter().flat_map(|v| v.to_le_bytes()).collect()));
    };
    macro_rules! put {
        ($name:expr, $t:expr) => {{
            let t = $t;
            put($name, t.dims().to_vec(), t.into_data())
        }};
    }
    put!("model.embed_tokens.weight".into(), model.embed_tokens.weight.val());
    for (i, b) in model.layers.iter().enumerate() {
        let p = format!("model.layers.{i}");
        put!(format!("{p}.input_layernorm.weight"), b.input_layernorm.gamma.val());
        put!(format!("{p}.post_attention_layernorm.weight"), b.post_attention_layernorm.gamma.val());
        for (n, l) in [("q_proj", &b.self_attn.q_proj), ("k_proj", &b.self_attn.k_proj), ("v_proj", &b.self_attn.v_proj), ("o_proj", &b.self_attn.o_proj)] {
            put!(format!("{p}.self_attn.{n}.weight"), l.weight().transpose());
        }
        for (n, l) in [("gate_proj", &b.mlp.gate_proj), ("up_proj", &b.mlp.up_proj), ("down_proj", &b.mlp.down_proj)] {
            put!(format!("{p}.mlp.{n}.weight"), l.weight().transpose());
        }
    }
    put!("model.norm.weight".into(), model.norm.gamma.val());
    if let Some(head) = &model.lm_head {
        put!("lm_head.weight".into(), head.weight.val().transpose());
    }
    let views = tensors
        .iter()
        .map(|(n, shape, bytes)| {
            safetensors::tensor::TensorView::new(Dtype::F32, shape.clone(), bytes)
                .map(|v| (n.clone(), v))
                .map_err(|e| WeightsError::Tensor { name: n.clone(), message: e.to_string() })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let path = dir.join("model.safetensors");
    let bytes = safetensors::serialize(views, Some(HashMap::from([("format".to_owned(), "pt".to_owned())]))).map_err(|e| io(&path, e))?;
    crate::jsonl::write_atomic(&path, &bytes).map_err(|e| io(&path, e))?;
    let cfg = serde_json::to_string_pretty(config).map_err(|e| io(dir, e))?;
    crate::jsonl::write_atomic(&dir.join("config.json"), cfg.as_bytes()).map_err(|e| io(dir, e))
}
