//! Mid-training checkpoints: everything needed to continue a killed training run exactly where it
//! stopped — the model and the optimizer's moments (burn records in full precision, with their
//! parameter ids), the optimizer step (which fixes the learning-rate schedule), the micro-batch
//! count and the data position (epoch and batch; each epoch's order is drawn from a seed derived
//! from the run's seed and the epoch, so no random state needs saving).
//!
//! Files in the checkpoint folder: `progress.json`, written last and atomically, names the step of
//! `model-<step>.mpk` and `optim-<step>.mpk`; older files are removed after it is written, so a
//! kill at any moment leaves a complete checkpoint.
//!
//! With LoRA only the adapters train, so only they are saved (`adapters-<step>.safetensors`,
//! with their parameter ids, which the optimizer state refers to): the frozen base weights are
//! reloaded from the model folder, and a checkpoint of an 8B model stays megabytes, not the 32 GB
//! a full f32 record would take.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder, Recorder};
use super::kernels::LmAutodiffBackend;
use serde::{Deserialize, Serialize};

use super::train::Trainer;

/// Where a training run stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainProgress {
    /// Identifies the run (data, settings, seed): a checkpoint is resumed only by the same run.
    pub fingerprint: u64,
    /// The epoch in progress.
    pub epoch: usize,
    /// Batches of that epoch already trained.
    pub batch: usize,
    /// Optimizer steps taken.
    pub step: usize,
    /// Micro-batches trained.
    pub micro: usize,
    /// Loss of the last micro-batch.
    pub loss: f32,
}

impl TrainProgress {
    /// The start of a run.
    pub fn start(fingerprint: u64) -> Self {
        TrainProgress { fingerprint, epoch: 0, batch: 0, step: 0, micro: 0, loss: 0.0 }
    }

    /// Whether batch `batch` of epoch `epoch` was already trained.
    pub fn done(&self, epoch: usize, batch: usize) -> bool {
        (epoch, batch) < (self.epoch, self.batch)
    }
}

fn recorder() -> NamedMpkFileRecorder<FullPrecisionSettings> {
    NamedMpkFileRecorder::<FullPrecisionSettings>::new()
}

fn files(dir: &Path, step: usize) -> (PathBuf, PathBuf) {
    (dir.join(format!("model-{step}")), dir.join(format!("optim-{step}")))
}

fn adapters_file(dir: &Path, step: usize) -> PathBuf {
    dir.join(format!("adapters-{step}.safetensors"))
}

/// Writes the adapters of `model` with their parameter ids (f32).
fn save_adapters<B: burn::prelude::Backend>(path: &Path, model: &super::llama::Llama<B>) -> Result<(), String> {
    let mut owned: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    let mut ids = std::collections::HashMap::new();
    for (layer, name, p) in model.projections() {
        let Some(l) = &p.lora else { continue };
        for (which, param) in [("a", &l.a), ("b", &l.b)] {
            let key = format!("{layer}.{name}.{which}");
            let t = param.val();
            let dims = t.dims().to_vec();
            let values: Vec<f32> = t.into_data().convert::<f32>().to_vec().map_err(|e| format!("{key}: {e:?}"))?;
            ids.insert(key.clone(), param.id.val().to_string());
            owned.push((key, dims, values.iter().flat_map(|v| v.to_le_bytes()).collect()));
        }
    }
    let views = owned
        .iter()
        .map(|(n, shape, bytes)| safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes).map(|v| (n.clone(), v)).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    safetensors::serialize_to_file(views, Some(ids), path).map_err(|e| format!("{}: {e}", path.display()))
}

/// The model with its adapters replaced by those saved in `path` (values and parameter ids).
fn load_adapters<B: LmAutodiffBackend>(path: &Path, model: super::llama::Llama<B>, device: &B::Device) -> Result<super::llama::Llama<B>, String> {
    use burn::module::{Param, ParamId};
    use burn::prelude::*;
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    let ids = meta.metadata().clone().unwrap_or_default();
    let mut failure = None;
    let param = |key: String| -> Result<Param<Tensor<B, 2>>, String> {
        let view = st.tensor(&key).map_err(|e| format!("{}: {key}: {e}", path.display()))?;
        let [r, c] = [view.shape()[0], view.shape()[1]];
        let values: Vec<f32> = view.data().chunks_exact(4).map(|x| f32::from_le_bytes([x[0], x[1], x[2], x[3]])).collect();
        let id: u64 = ids.get(&key).and_then(|v| v.parse().ok()).ok_or_else(|| format!("{}: no parameter id for {key}", path.display()))?;
        Ok(Param::initialized(ParamId::from(id), Tensor::from_data(TensorData::new(values, [r, c]), (device, burn::tensor::DType::F32))).set_require_grad(true))
    };
    let model = model.map_projections_indexed(|layer, name, p| match p.lora {
        Some(l) if failure.is_none() => match (param(format!("{layer}.{name}.a")), param(format!("{layer}.{name}.b"))) {
            (Ok(a), Ok(b)) => super::lora::Proj { base: p.base, lora: Some(super::lora::Adapter::from_params(a, b, l.scale())) },
            (Err(e), _) | (_, Err(e)) => {
                failure = Some(e);
                super::lora::Proj { base: p.base, lora: Some(l) }
            }
        },
        lora => super::lora::Proj { base: p.base, lora },
    });
    match failure {
        Some(e) => Err(e),
        None => Ok(model),
    }
}

/// Saves the trainer's state and `progress` into `dir`.
pub fn save<B: LmAutodiffBackend>(dir: &Path, trainer: &Trainer<B>, progress: &TrainProgress) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let (model, optim) = files(dir, progress.step);
    if trainer.model().has_lora() {
        save_adapters(&adapters_file(dir, progress.step), trainer.model())?;
    } else {
        trainer.model().clone().save_file(&model, &recorder()).map_err(|e| format!("{}: {e}", model.display()))?;
    }
    recorder().record(trainer.optimizer_record(), optim.clone()).map_err(|e| format!("{}: {e}", optim.display()))?;
    let json = serde_json::to_string_pretty(progress).map_err(|e| e.to_string())?;
    let tmp = dir.join("progress.json.tmp");
    std::fs::write(&tmp, json).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, dir.join("progress.json")).map_err(|e| format!("{}: {e}", dir.display()))?;
    // Older steps' files are no longer referenced.
    let keep = [format!("model-{}.mpk", progress.step), format!("optim-{}.mpk", progress.step), format!("adapters-{}.safetensors", progress.step)];
    for entry in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if (name.starts_with("model-") || name.starts_with("optim-") || name.starts_with("adapters-")) && !keep.contains(&name) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(())
}

/// Restores the state saved in `dir` into `trainer` when it belongs to the run `fingerprint`;
/// `Ok(None)` when there is none (or it belongs to another run, which is then discarded).
pub fn restore<B: LmAutodiffBackend>(dir: &Path, fingerprint: u64, trainer: &mut Trainer<B>, device: &B::Device) -> Result<Option<TrainProgress>, String> {
    let path = dir.join("progress.json");
    let Ok(text) = std::fs::read_to_string(&path) else { return Ok(None) };
    let progress: TrainProgress = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    if progress.fingerprint != fingerprint {
        tracing::warn!(dir = %dir.display(), "a training checkpoint of another run (different data or settings) is discarded");
        let _ = std::fs::remove_dir_all(dir);
        return Ok(None);
    }
    let (model, optim) = files(dir, progress.step);
    let optim_record = recorder().load(optim.clone(), device).map_err(|e| format!("{}: {e}", optim.display()))?;
    let adapters = adapters_file(dir, progress.step);
    if adapters.exists() {
        let restored = load_adapters(&adapters, trainer.model().clone(), device)?;
        trainer.restore_model(restored, optim_record, progress.step, progress.micro);
    } else {
        let record = recorder().load(model.clone(), device).map_err(|e| format!("{}: {e}", model.display()))?;
        trainer.restore(record, optim_record, progress.step, progress.micro);
    }
    Ok(Some(progress))
}
