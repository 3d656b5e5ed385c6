//! LoRA adapters in PEFT's layout: `adapter_config.json` and `adapter_model.safetensors` with
//! tensors named `base_model.model.model.layers.{i}.{self_attn|mlp}.{proj}.lora_A.weight`
//! (`[rank, in]`) and `...lora_B.weight` (`[out, rank]`), the adapter's output scaled by
//! `lora_alpha / r` (`lora_alpha / sqrt(r)` with `use_rslora`). `PeftModel.from_pretrained(base,
//! folder)` loads what [`save_adapter`] writes, and [`load_adapter`] reads what PEFT saves.
//!
//! An `adapter_config.json` that asks for something these adapters do not do (DoRA, biases,
//! per-layer rank patterns, extra trainable modules, ...) is refused with the key and value.

use std::path::Path;

use burn::prelude::*;
use serde_json::{json, Map, Value};

use super::files::TensorFiles;
use super::load::{LoadOptions, Loader};
use super::WeightsError;
use crate::model::llama::Llama;
use crate::model::lora::{Adapter, LoraSettings, Proj, PROJECTIONS};

/// The adapter's configuration file.
pub const CONFIG: &str = "adapter_config.json";
/// The adapter's weights.
pub const WEIGHTS: &str = "adapter_model.safetensors";

/// PEFT config keys that do not change what a loaded adapter computes.
const INERT: &[&str] = &[
    "base_model_name_or_path",
    "revision",
    "task_type",
    "inference_mode",
    "init_lora_weights",
    "auto_mapping",
    "peft_version",
    "megatron_config",
    "megatron_core",
    "loftq_config",
    "eva_config",
    "corda_config",
    "layers_pattern",
    "qalora_group_size",
    "ensure_weight_tying",
];

fn err(path: &Path, message: String) -> WeightsError {
    WeightsError::Io { path: path.display().to_string(), message }
}

/// Whether a value means "feature off" (`null`, `false`, `{}`, `[]`).
fn off(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// Reads `dir/adapter_config.json` into [`LoraSettings`], refusing what is not implemented.
pub fn read_adapter_config(dir: &Path) -> Result<LoraSettings, WeightsError> {
    let path = dir.join(CONFIG);
    let text = std::fs::read_to_string(&path).map_err(|e| err(&path, e.to_string()))?;
    let Value::Object(mut m) = serde_json::from_str(&text).map_err(|e| err(&path, format!("not valid JSON: {e}")))? else {
        return Err(err(&path, "not a JSON object".into()));
    };
    let mut take = |k: &str| m.remove(k).unwrap_or(Value::Null);
    match take("peft_type") {
        Value::String(t) if t == "LORA" => {}
        v => return Err(err(&path, format!("peft_type = {v}: only LORA adapters are implemented"))),
    }
    let rank = take("r").as_u64().filter(|&r| r > 0).ok_or_else(|| err(&path, "r: expected a positive rank".into()))? as usize;
    let alpha = match take("lora_alpha") {
        Value::Null => 8.0,
        v => v.as_f64().ok_or_else(|| err(&path, format!("lora_alpha = {v}: expected a number")))?,
    };
    let rslora = take("use_rslora").as_bool().unwrap_or(false);
    let targets: Vec<String> = match take("target_modules") {
        Value::String(s) if s == "all-linear" => PROJECTIONS.iter().map(|s| s.to_string()).collect(),
        Value::Array(a) => a.iter().map(|t| t.as_str().map(str::to_owned).ok_or_else(|| err(&path, format!("target_modules contains {t}: expected names")))).collect::<Result<_, _>>()?,
        v => return Err(err(&path, format!("target_modules = {v}: expected a list of projection names or \"all-linear\""))),
    };
    match take("bias") {
        Value::Null => {}
        Value::String(b) if b == "none" => {}
        v => return Err(err(&path, format!("bias = {v}: adapters with biases are not implemented (only \"none\")"))),
    }
    if let Some(p) = take("lora_dropout").as_f64().filter(|p| *p != 0.0) {
        return Err(err(&path, format!("lora_dropout = {p}: dropout is not implemented, and training on without it would change the method; set it to 0.0")));
    }
    for key in INERT {
        m.remove(*key);
    }
    // Everything else must be switched off: DoRA, rank/alpha patterns, layers_to_transform,
    // modules_to_save, lora_bias, fan_in_fan_out, ...
    let on: Vec<String> = m.iter().filter(|(_, v)| !off(v)).map(|(k, v)| format!("`{k}` = {v}")).collect();
    if !on.is_empty() {
        return Err(err(&path, format!("{} not implemented by eef's LoRA (only plain LoRA on {PROJECTIONS:?})", on.join(", "))));
    }
    let settings = LoraSettings { rank, alpha, targets, rslora, export_merged: false };
    settings.validate().map_err(|e| err(&path, e))?;
    Ok(settings)
}

fn tensor_name(layer: usize, proj: &str, which: &str) -> String {
    let block = if matches!(proj, "gate_proj" | "up_proj" | "down_proj") { "mlp" } else { "self_attn" };
    format!("base_model.model.model.layers.{layer}.{block}.{proj}.lora_{which}.weight")
}

/// Attaches the adapter saved in `dir` to `model` (whose projections must carry none yet) and
/// returns the model with the base frozen and the adapters trainable.
pub fn load_adapter<B: Backend>(dir: &Path, model: Llama<B>, device: &B::Device) -> Result<(Llama<B>, LoraSettings), WeightsError> {
    let settings = read_adapter_config(dir)?;
    let path = dir.join(WEIGHTS);
    if !path.exists() {
        return Err(err(&path, "missing (an adapter folder holds adapter_config.json and adapter_model.safetensors)".into()));
    }
    // TensorFiles opens model.safetensors; an adapter file is read the same way through a
    // folder view holding only that name.
    let files = TensorFiles::open_file(&path)?;
    // Adapters stay in f32 whatever the base's precision (see crate::model::lora).
    let mut loader = Loader::<B>::new(&files, device, LoadOptions { dtype: Some(burn::tensor::DType::F32) });
    let mut failure = None;
    let model = model.no_grad().map_projections_indexed(|layer, name, p| {
        if failure.is_some() || !settings.targets.iter().any(|t| t == name) {
            return p;
        }
        let [input, output] = p.base.weight.dims();
        let r = settings.rank;
        let a = loader.tensor::<2>(&tensor_name(layer, name, "A"), [r, input]);
        let b = loader.tensor::<2>(&tensor_name(layer, name, "B"), [output, r]);
        match (a, b) {
            (Ok(a), Ok(b)) => Proj { base: p.base, lora: Some(Adapter::new(a.transpose(), b.transpose(), settings.scale())) },
            (Err(e), _) | (_, Err(e)) => {
                failure = Some(e);
                p
            }
        }
    });
    if let Some(e) = failure {
        return Err(e);
    }
    let unused = loader.unused();
    if !unused.is_empty() {
        return Err(WeightsError::Tensor { name: unused.join(", "), message: format!("not an adapter of this model's projections ({})", path.display()) });
    }
    Ok((model, settings))
}

/// Writes the adapters attached to `model` (configured by `settings`) into `dir` in PEFT's
/// layout, in f32. `base` is recorded as `base_model_name_or_path`.
pub fn save_adapter<B: Backend>(dir: &Path, model: &Llama<B>, settings: &LoraSettings, base: Option<&str>) -> Result<(), WeightsError> {
    std::fs::create_dir_all(dir).map_err(|e| err(dir, e.to_string()))?;
    let mut owned: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    let mut targets: Vec<&str> = Vec::new();
    for (layer, name, p) in model.projections() {
        let Some(l) = &p.lora else { continue };
        if !targets.contains(&name) {
            targets.push(name);
        }
        for (which, t) in [("A", l.a.val().transpose()), ("B", l.b.val().transpose())] {
            let dims = t.dims().to_vec();
            let values: Vec<f32> = t.into_data().convert::<f32>().to_vec().map_err(|e| WeightsError::Tensor { name: tensor_name(layer, name, which), message: format!("{e:?}") })?;
            owned.push((tensor_name(layer, name, which), dims, values.iter().flat_map(|v| v.to_le_bytes()).collect()));
        }
    }
    if owned.is_empty() {
        return Err(err(dir, "the model carries no LoRA adapter to export".into()));
    }
    let views = owned
        .iter()
        .map(|(n, shape, bytes)| safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes).map(|v| (n.clone(), v)).map_err(|e| err(dir, e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    let path = dir.join(WEIGHTS);
    let tmp = dir.join(format!("{WEIGHTS}.tmp"));
    safetensors::serialize_to_file(views, Some(std::collections::HashMap::from([("format".to_owned(), "pt".to_owned())])), &tmp).map_err(|e| err(&tmp, e.to_string()))?;
    std::fs::rename(&tmp, &path).map_err(|e| err(&path, e.to_string()))?;
    let mut cfg = Map::new();
    cfg.insert("peft_type".into(), json!("LORA"));
    cfg.insert("task_type".into(), json!("CAUSAL_LM"));
    cfg.insert("base_model_name_or_path".into(), json!(base));
    cfg.insert("r".into(), json!(settings.rank));
    cfg.insert("lora_alpha".into(), json!(settings.alpha));
    cfg.insert("use_rslora".into(), json!(settings.rslora));
    cfg.insert("target_modules".into(), json!(targets));
    cfg.insert("lora_dropout".into(), json!(0.0));
    cfg.insert("bias".into(), json!("none"));
    cfg.insert("fan_in_fan_out".into(), json!(false));
    cfg.insert("use_dora".into(), json!(false));
    cfg.insert("inference_mode".into(), json!(true));
    cfg.insert("modules_to_save".into(), Value::Null);
    cfg.insert("rank_pattern".into(), json!({}));
    cfg.insert("alpha_pattern".into(), json!({}));
    let text = serde_json::to_string_pretty(&Value::Object(cfg)).map_err(|e| err(dir, e.to_string()))?;
    crate::jsonl::write_atomic(&dir.join(CONFIG), text.as_bytes()).map_err(|e| err(dir, e.to_string()))
}
