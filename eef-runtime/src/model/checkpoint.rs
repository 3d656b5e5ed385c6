//! Mid-training checkpoints: everything needed to continue a killed training run exactly where it
//! stopped — the model and the optimizer's moments (burn records in full precision, with their
//! parameter ids), the optimizer step (which fixes the learning-rate schedule), the micro-batch
//! count and the data position (epoch and batch; each epoch's order is drawn from a seed derived
//! from the run's seed and the epoch, so no random state needs saving).
//!
//! Files in the checkpoint folder: `progress.json`, written last and atomically, names the step of
//! `model-<step>.mpk` and `optim-<step>.mpk`; older files are removed after it is written, so a
//! kill at any moment leaves a complete checkpoint.

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

/// Saves the trainer's state and `progress` into `dir`.
pub fn save<B: LmAutodiffBackend>(dir: &Path, trainer: &Trainer<B>, progress: &TrainProgress) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let (model, optim) = files(dir, progress.step);
    trainer.model().clone().save_file(&model, &recorder()).map_err(|e| format!("{}: {e}", model.display()))?;
    recorder().record(trainer.optimizer_record(), optim.clone()).map_err(|e| format!("{}: {e}", optim.display()))?;
    let json = serde_json::to_string_pretty(progress).map_err(|e| e.to_string())?;
    let tmp = dir.join("progress.json.tmp");
    std::fs::write(&tmp, json).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, dir.join("progress.json")).map_err(|e| format!("{}: {e}", dir.display()))?;
    // Older steps' files are no longer referenced.
    let keep = [format!("model-{}.mpk", progress.step), format!("optim-{}.mpk", progress.step)];
    for entry in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if (name.starts_with("model-") || name.starts_with("optim-")) && !keep.contains(&name) {
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
    let record = recorder().load(model.clone(), device).map_err(|e| format!("{}: {e}", model.display()))?;
    let optim_record = recorder().load(optim.clone(), device).map_err(|e| format!("{}: {e}", optim.display()))?;
    trainer.restore(record, optim_record, progress.step, progress.micro);
    Ok(Some(progress))
}
