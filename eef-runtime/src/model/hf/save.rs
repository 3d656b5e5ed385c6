//! Saving a [`Llama`] as a Hugging Face checkpoint folder: `config.json` (complete: see
//! [`super::config::to_json`]) and the weights as `model.safetensors`, or, above the shard size,
//! as `model-0000k-of-0000n.safetensors` shards with `model.safetensors.index.json` (the layout
//! `save_pretrained` writes). Shards are planned from the tensor shapes and written one at a
//! time, so saving holds at most one shard's bytes in host memory. LoRA adapters are merged
//! into the weights they adapt.

use std::collections::BTreeMap;
use std::path::Path;

use burn::prelude::*;
use safetensors::Dtype;
use serde_json::json;

use super::config::{to_json, TokenIds};
use super::files::{INDEX, SINGLE};
use super::WeightsError;
use crate::model::config::LlamaConfig;
use crate::model::llama::Llama;
use crate::model::lora::Proj;

/// The dtype weights are written in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SaveDtype {
    /// 32-bit floats.
    #[default]
    F32,
    /// bfloat16 (half the size; what Hugging Face checkpoints ship in).
    Bf16,
}

impl SaveDtype {
    fn bytes(self) -> usize {
        match self {
            SaveDtype::F32 => 4,
            SaveDtype::Bf16 => 2,
        }
    }

    /// The name `config.json` gives it.
    pub fn torch_name(self) -> &'static str {
        match self {
            SaveDtype::F32 => "float32",
            SaveDtype::Bf16 => "bfloat16",
        }
    }

    fn safetensors(self) -> Dtype {
        match self {
            SaveDtype::F32 => Dtype::F32,
            SaveDtype::Bf16 => Dtype::BF16,
        }
    }
}

/// How a checkpoint is written.
#[derive(Clone, Debug, PartialEq)]
pub struct SaveOptions {
    /// The weights' dtype.
    pub dtype: SaveDtype,
    /// Largest shard, in bytes (`save_pretrained`'s default is 5 GB); a checkpoint that fits in
    /// one is a single `model.safetensors`.
    pub max_shard_bytes: usize,
    /// Special-token ids for `config.json`.
    pub token_ids: TokenIds,
}

impl Default for SaveOptions {
    fn default() -> Self {
        SaveOptions { dtype: SaveDtype::F32, max_shard_bytes: 5_000_000_000, token_ids: TokenIds::default() }
    }
}

/// One tensor to write: its Hugging Face name and shape, and how to fetch its values.
struct Entry<'a> {
    name: String,
    shape: Vec<usize>,
    fetch: Box<dyn Fn() -> TensorData + 'a>,
}

fn entries<'a, B: Backend>(m: &'a Llama<B>) -> Vec<Entry<'a>> {
    let mut out: Vec<Entry<'a>> = Vec::new();
    fn vector<'a, B: Backend>(out: &mut Vec<Entry<'a>>, name: String, t: &'a burn::module::Param<Tensor<B, 1>>) {
        out.push(Entry { name, shape: t.shape().to_vec(), fetch: Box::new(move || t.val().into_data()) });
    }
    fn proj<'a, B: Backend>(out: &mut Vec<Entry<'a>>, prefix: String, p: &'a Proj<B>) {
        let [i, o] = p.base.weight.shape().dims();
        out.push(Entry { name: format!("{prefix}.weight"), shape: vec![o, i], fetch: Box::new(move || p.weight().transpose().into_data()) });
        if let Some(b) = &p.base.bias {
            vector(out, format!("{prefix}.bias"), b);
        }
    }
    let e = &m.embed_tokens.weight;
    out.push(Entry { name: "model.embed_tokens.weight".into(), shape: e.shape().to_vec(), fetch: Box::new(move || e.val().into_data()) });
    for (i, b) in m.layers.iter().enumerate() {
        let p = format!("model.layers.{i}");
        vector(&mut out, format!("{p}.input_layernorm.weight"), &b.input_layernorm.gamma);
        vector(&mut out, format!("{p}.post_attention_layernorm.weight"), &b.post_attention_layernorm.gamma);
        for (n, l) in [("q_proj", &b.self_attn.q_proj), ("k_proj", &b.self_attn.k_proj), ("v_proj", &b.self_attn.v_proj), ("o_proj", &b.self_attn.o_proj)] {
            proj(&mut out, format!("{p}.self_attn.{n}"), l);
        }
        for (n, l) in [("gate_proj", &b.mlp.gate_proj), ("up_proj", &b.mlp.up_proj), ("down_proj", &b.mlp.down_proj)] {
            proj(&mut out, format!("{p}.mlp.{n}"), l);
        }
    }
    vector(&mut out, "model.norm.weight".into(), &m.norm.gamma);
    if let Some(head) = &m.lm_head {
        let [i, o] = head.weight.shape().dims();
        out.push(Entry { name: "lm_head.weight".into(), shape: vec![o, i], fetch: Box::new(move || head.weight.val().transpose().into_data()) });
    }
    out
}

fn io(path: &Path, e: impl std::fmt::Display) -> WeightsError {
    WeightsError::Io { path: path.display().to_string(), message: e.to_string() }
}

/// The bytes of `data` in `dtype`.
fn encode(name: &str, data: TensorData, dtype: SaveDtype) -> Result<Vec<u8>, WeightsError> {
    let err = |e: burn::tensor::DataError| WeightsError::Tensor { name: name.to_owned(), message: format!("{e:?}") };
    Ok(match dtype {
        SaveDtype::F32 => data.convert::<f32>().to_vec::<f32>().map_err(err)?.iter().flat_map(|v| v.to_le_bytes()).collect(),
        SaveDtype::Bf16 => data.convert::<half::bf16>().to_vec::<half::bf16>().map_err(err)?.iter().flat_map(|v| v.to_le_bytes()).collect(),
    })
}

/// Writes one safetensors file with `tensors` (fetched now) atomically.
fn write_shard(path: &Path, tensors: &[&Entry<'_>], dtype: SaveDtype) -> Result<(), WeightsError> {
    let mut owned: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::with_capacity(tensors.len());
    for e in tensors {
        owned.push((e.name.clone(), e.shape.clone(), encode(&e.name, (e.fetch)(), dtype)?));
    }
    let views = owned
        .iter()
        .map(|(n, shape, bytes)| {
            safetensors::tensor::TensorView::new(dtype.safetensors(), shape.clone(), bytes).map(|v| (n.clone(), v)).map_err(|e| WeightsError::Tensor { name: n.clone(), message: e.to_string() })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let tmp = path.with_extension("safetensors.tmp");
    let metadata = Some(std::collections::HashMap::from([("format".to_owned(), "pt".to_owned())]));
    safetensors::serialize_to_file(views, metadata, &tmp).map_err(|e| io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io(path, e))
}

/// Saves `model` with configuration `config` into `dir` (created if needed). Weight files of
/// an earlier save in `dir` are replaced.
pub fn save_llama<B: Backend>(dir: &Path, config: &LlamaConfig, model: &Llama<B>, options: &SaveOptions) -> Result<(), WeightsError> {
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let all = entries(model);
    // Plan the shards from the shapes alone.
    let mut shards: Vec<Vec<&Entry<'_>>> = vec![Vec::new()];
    let mut size = 0usize;
    let mut total = 0usize;
    for e in &all {
        let bytes = e.shape.iter().product::<usize>() * options.dtype.bytes();
        if size > 0 && size + bytes > options.max_shard_bytes {
            shards.push(Vec::new());
            size = 0;
        }
        size += bytes;
        total += bytes;
        shards.last_mut().expect("one shard at least").push(e);
    }
    // Old weight files go first, so a folder never mixes two layouts.
    for entry in std::fs::read_dir(dir).map_err(|e| io(dir, e))?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == SINGLE || name == INDEX || (name.starts_with("model-") && name.ends_with(".safetensors")) {
            std::fs::remove_file(entry.path()).map_err(|e| io(&entry.path(), e))?;
        }
    }
    if shards.len() == 1 {
        write_shard(&dir.join(SINGLE), &shards[0], options.dtype)?;
    } else {
        let n = shards.len();
        let mut weight_map = BTreeMap::new();
        for (k, shard) in shards.iter().enumerate() {
            let file = format!("model-{:05}-of-{n:05}.safetensors", k + 1);
            write_shard(&dir.join(&file), shard, options.dtype)?;
            for e in shard {
                weight_map.insert(e.name.clone(), file.clone());
            }
        }
        let index = json!({"metadata": {"total_size": total}, "weight_map": weight_map});
        let text = serde_json::to_string_pretty(&index).map_err(|e| io(dir, e))?;
        crate::jsonl::write_atomic(&dir.join(INDEX), text.as_bytes()).map_err(|e| io(dir, e))?;
    }
    let cfg = serde_json::to_string_pretty(&to_json(config, options.dtype.torch_name(), &options.token_ids)).map_err(|e| io(dir, e))?;
    crate::jsonl::write_atomic(&dir.join("config.json"), cfg.as_bytes()).map_err(|e| io(dir, e))
}
