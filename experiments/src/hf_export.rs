//! Loads Hugging Face fixture folders and saves them again, for `scripts/make_hf_fixtures.py
//! --check` to load with `transformers` and `peft`: each model as f32 shards (with an index) and
//! as one bf16 file, and the PEFT fixture's adapter exported again, with the merged weights.

use std::path::Path;

use eef_runtime::model::hf::{self, peft, SaveDtype, SaveOptions};
use eef_runtime::model::Cpu;

/// The model folders of `tests/data/hf` that are re-saved.
pub const MODELS: [&str; 4] = ["tiny-llama3.2-instruct", "tiny-qwen2.5-instruct", "tiny-llama3.1", "tiny-mistral"];

/// Re-saves the fixtures in `fixtures` under `out`.
pub fn run(fixtures: &Path, out: &Path) -> Result<(), String> {
    let device = Default::default();
    for name in MODELS {
        let (config, model) = hf::load_safetensors::<Cpu>(&fixtures.join(name), &device).map_err(|e| e.to_string())?;
        for (variant, dtype, shard) in [("f32-sharded", SaveDtype::F32, 40_000), ("bf16", SaveDtype::Bf16, usize::MAX)] {
            let options = SaveOptions { dtype, max_shard_bytes: shard, ..Default::default() };
            hf::save::save_llama(&out.join(name).join(variant), &config, &model, &options).map_err(|e| e.to_string())?;
        }
    }
    let base = "tiny-llama3.2-instruct";
    let (config, model) = hf::load_safetensors::<Cpu>(&fixtures.join(base), &device).map_err(|e| e.to_string())?;
    let (model, settings) = peft::load_adapter(&fixtures.join("peft-lora"), model, &device).map_err(|e| e.to_string())?;
    let dir = out.join("peft-lora");
    peft::save_adapter(&dir, &model, &settings, Some(base)).map_err(|e| e.to_string())?;
    hf::save::save_llama(&dir.join("merged"), &config, &model, &SaveOptions::default()).map_err(|e| e.to_string())?;
    Ok(())
}
