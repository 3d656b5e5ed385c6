//! The safetensors files of a checkpoint folder, memory-mapped: `model.safetensors`, or the
//! shards `model-0000k-of-0000n.safetensors` that `model.safetensors.index.json` names.
//!
//! Nothing is read until a tensor is asked for; each tensor's bytes are then read from the
//! mapping (one tensor at a time) and its pages are handed back to the kernel once converted
//! ([`TensorFiles::release`]), so host memory while loading does not grow with the model.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use safetensors::tensor::{Metadata, TensorInfo};
use safetensors::{Dtype, SafeTensors};

use super::WeightsError;

/// The single-file name.
pub const SINGLE: &str = "model.safetensors";
/// The index of a sharded checkpoint.
pub const INDEX: &str = "model.safetensors.index.json";

struct Shard {
    path: PathBuf,
    map: Mmap,
    data_start: usize,
    meta: Metadata,
}

/// One tensor's raw bytes in the checkpoint's own dtype.
#[derive(Debug)]
pub struct RawTensor<'a> {
    /// Its name.
    pub name: &'a str,
    /// The stored dtype.
    pub dtype: Dtype,
    /// The stored shape (Hugging Face's, e.g. `[out, in]` for a linear weight).
    pub shape: Vec<usize>,
    /// The little-endian bytes.
    pub bytes: &'a [u8],
}

/// The safetensors files of a folder, memory-mapped.
pub struct TensorFiles {
    shards: Vec<Shard>,
    by_name: BTreeMap<String, usize>,
}

impl std::fmt::Debug for TensorFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TensorFiles").field("files", &self.shards.iter().map(|s| &s.path).collect::<Vec<_>>()).field("tensors", &self.by_name.len()).finish()
    }
}

fn io(path: &Path, e: impl std::fmt::Display) -> WeightsError {
    WeightsError::Io { path: path.display().to_string(), message: e.to_string() }
}

fn map(path: &Path) -> Result<Shard, WeightsError> {
    let file = std::fs::File::open(path).map_err(|e| io(path, e))?;
    // SAFETY: the file is opened read-only; a checkpoint changed by another process while it is
    // loaded is the same hazard as for every memory-mapping loader (transformers' included).
    let map = unsafe { Mmap::map(&file) }.map_err(|e| io(path, e))?;
    let (header, meta) = SafeTensors::read_metadata(&map).map_err(|e| io(path, format!("not a safetensors file: {e}")))?;
    Ok(Shard { path: path.to_owned(), map, data_start: 8 + header, meta })
}

impl TensorFiles {
    /// Opens the checkpoint in `dir`: the index and its shards when there is an index, else
    /// `model.safetensors`.
    pub fn open(dir: &Path) -> Result<Self, WeightsError> {
        let index = dir.join(INDEX);
        let single = dir.join(SINGLE);
        if index.exists() {
            let text = std::fs::read_to_string(&index).map_err(|e| io(&index, e))?;
            #[derive(serde::Deserialize)]
            struct Index {
                weight_map: BTreeMap<String, String>,
            }
            let parsed: Index = serde_json::from_str(&text).map_err(|e| io(&index, format!("invalid index: {e}")))?;
            let mut files: Vec<String> = parsed.weight_map.values().cloned().collect();
            files.sort();
            files.dedup();
            let shards = files.iter().map(|f| map(&dir.join(f))).collect::<Result<Vec<_>, _>>()?;
            let slot: HashMap<&str, usize> = files.iter().enumerate().map(|(i, f)| (f.as_str(), i)).collect();
            let mut by_name = BTreeMap::new();
            for (name, file) in &parsed.weight_map {
                let i = slot[file.as_str()];
                if shards[i].meta.info(name).is_none() {
                    return Err(io(&index, format!("names {name} in {file}, which does not contain it")));
                }
                by_name.insert(name.clone(), i);
            }
            for (i, s) in shards.iter().enumerate() {
                if let Some(name) = s.meta.tensors().keys().find(|n| by_name.get(n.as_str()) != Some(&i)) {
                    return Err(io(&s.path, format!("holds {name}, which the index does not map to this file")));
                }
            }
            return Ok(TensorFiles { shards, by_name });
        }
        if !single.exists() {
            return Err(io(dir, format!("no {SINGLE} and no {INDEX}: not a Hugging Face checkpoint folder")));
        }
        Self::open_file(&single)
    }

    /// Opens one safetensors file (e.g. a PEFT `adapter_model.safetensors`).
    pub fn open_file(path: &Path) -> Result<Self, WeightsError> {
        let shard = map(path)?;
        let by_name = shard.meta.tensors().keys().map(|n| (n.clone(), 0)).collect();
        Ok(TensorFiles { shards: vec![shard], by_name })
    }

    /// Every tensor name, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    /// Whether the checkpoint has `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    /// The files, in order.
    pub fn paths(&self) -> Vec<&Path> {
        self.shards.iter().map(|s| s.path.as_path()).collect()
    }

    /// Total bytes of tensor data.
    pub fn data_bytes(&self) -> usize {
        self.shards.iter().map(|s| s.meta.data_len()).sum()
    }

    fn locate(&self, name: &str) -> Result<(&Shard, &TensorInfo), WeightsError> {
        let missing = || WeightsError::Tensor { name: name.to_owned(), message: "not in the checkpoint".into() };
        let shard = &self.shards[*self.by_name.get(name).ok_or_else(missing)?];
        Ok((shard, shard.meta.info(name).ok_or_else(missing)?))
    }

    /// The raw bytes of `name`.
    pub fn get<'a>(&'a self, name: &'a str) -> Result<RawTensor<'a>, WeightsError> {
        let (shard, info) = self.locate(name)?;
        let (a, b) = info.data_offsets;
        let bytes = shard.map.get(shard.data_start + a..shard.data_start + b).ok_or_else(|| io(&shard.path, format!("{name}: data outside the file")))?;
        Ok(RawTensor { name, dtype: info.dtype, shape: info.shape.clone(), bytes })
    }

    /// Hands the pages of `name` back to the kernel (they are re-read from the file if touched
    /// again). Called once a tensor has been converted, so resident memory stays at about one
    /// tensor's worth of mapped pages.
    pub fn release(&self, name: &str) {
        #[cfg(unix)]
        if let Ok((shard, info)) = self.locate(name) {
            let page = page_size();
            let start = (shard.data_start + info.data_offsets.0) / page * page;
            let end = (shard.data_start + info.data_offsets.1).min(shard.map.len());
            if end > start {
                // SAFETY: the mapping is a read-only private file mapping; MADV_DONTNEED only drops
                // resident pages, which are faulted in again from the file with the same bytes.
                // No slice of this range is alive: tensors are copied out before release.
                let _ = unsafe { shard.map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, end - start) };
            }
        }
    }
}

#[cfg(unix)]
fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as usize
    } else {
        4096
    }
}
