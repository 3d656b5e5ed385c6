//! Choosing burn's backend at run time: `[policy] backend = "cpu" | "ndarray" | "flex" | "cuda" |
//! "wgpu"` and `precision = "f32" | "bf16"` (bf16 on CUDA only).
//!
//! Each backend is a cargo feature of `eef-runtime` (and of `eef-experiments`, which passes it
//! through). The CPU backend `flex` is on by default (`ndarray` is opt-in); `cuda` (burn-cuda, which
//! builds without a GPU and loads the driver at run time) and `wgpu` are opt-in:
//!
//! ```text
//! cargo run --release --features cuda --example webshop_eef -- --config experiments/configs/webshop-large.toml
//! ```
//!
//! Code that is generic over the backend implements [`BackendVisitor`] and is handed the concrete
//! type by [`visit`].

use super::kernels::LmAutodiffBackend;
use serde::{Deserialize, Serialize};

/// The CPU backend used by tests and CI: burn-flex, chosen on `--example lm_bench`'s numbers
/// (see the book's policy-model chapter).
#[cfg(feature = "flex")]
pub type Cpu = burn::backend::Flex;
/// The CPU backend used by tests and CI.
#[cfg(all(not(feature = "flex"), feature = "ndarray"))]
pub type Cpu = burn::backend::NdArray<f32>;
/// [`Cpu`] with autodiff, for training.
#[cfg(any(feature = "flex", feature = "ndarray"))]
pub type CpuTrain = burn::backend::Autodiff<Cpu>;

/// Which burn backend runs the model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// The default CPU backend ([`Cpu`]).
    #[default]
    Cpu,
    /// burn-ndarray (feature `ndarray`).
    Ndarray,
    /// burn-flex (feature `flex`).
    Flex,
    /// burn-cuda (feature `cuda`), on GPU `device`.
    Cuda,
    /// burn-wgpu (feature `wgpu`).
    Wgpu,
}

impl BackendKind {
    /// The cargo feature that compiles this backend in.
    pub fn feature(self) -> &'static str {
        match self {
            BackendKind::Cpu => "flex",
            BackendKind::Ndarray => "ndarray",
            BackendKind::Flex => "flex",
            BackendKind::Cuda => "cuda",
            BackendKind::Wgpu => "wgpu",
        }
    }

    /// Whether this build has the backend.
    pub fn compiled(self) -> bool {
        match self {
            BackendKind::Cpu => cfg!(any(feature = "flex", feature = "ndarray")),
            BackendKind::Ndarray => cfg!(feature = "ndarray"),
            BackendKind::Flex => cfg!(feature = "flex"),
            BackendKind::Cuda => cfg!(feature = "cuda"),
            BackendKind::Wgpu => cfg!(feature = "wgpu"),
        }
    }

    /// Every backend this build has.
    pub fn all_compiled() -> Vec<BackendKind> {
        [BackendKind::Ndarray, BackendKind::Flex, BackendKind::Cuda, BackendKind::Wgpu].into_iter().filter(|b| b.compiled()).collect()
    }
}

/// Floating-point precision of weights and activations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// 32-bit floats (every backend).
    #[default]
    F32,
    /// bfloat16 (CUDA only: the CPU backends compute in f32, and WGSL, wgpu's shader language,
    /// has no bf16).
    Bf16,
}

/// Backend, precision and device index.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackendChoice {
    /// The backend.
    pub backend: BackendKind,
    /// The precision.
    pub precision: Precision,
    /// GPU index (CUDA).
    pub device: usize,
}

/// Why a backend could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// The backend's feature is off in this build.
    #[error("backend `{backend:?}` is not compiled in: rebuild with `--features {feature}` (e.g. `cargo run --release --features {feature} --example ...`)")]
    NotCompiled {
        /// The backend asked for.
        backend: BackendKind,
        /// The feature to enable.
        feature: &'static str,
    },
    /// The precision is not available on this backend.
    #[error("precision {precision:?} is not available on backend {backend:?}: use precision = \"f32\"")]
    Precision {
        /// The backend.
        backend: BackendKind,
        /// The precision asked for.
        precision: Precision,
    },
}

/// Code generic over the backend, run by [`visit`] with the concrete type.
pub trait BackendVisitor: Sized {
    /// What the visit returns.
    type Output;
    /// Runs with backend `B` on `device`; `name` describes it for reports.
    fn visit<B: LmAutodiffBackend>(self, name: &str, device: B::Device) -> Self::Output;

    /// Runs with backend `B` on several devices (from [`visit_devices`], never empty, the chosen
    /// device first). By default: [`BackendVisitor::visit`] on the first.
    fn visit_devices<B: LmAutodiffBackend>(self, name: &str, devices: Vec<B::Device>) -> Self::Output {
        let first = devices.into_iter().next().unwrap_or_default();
        self.visit::<B>(name, first)
    }
}

/// Runs `visitor` with the backend `choice` names, on its device.
pub fn visit<V: BackendVisitor>(choice: BackendChoice, visitor: V) -> Result<V::Output, BackendError> {
    visit_devices(choice, &[], visitor)
}

/// Runs `visitor` with the backend `choice` names on the devices `indices` names (empty: the
/// choice's one device). GPU backends map an index to that GPU (CUDA: `CudaDevice::new(i)`;
/// wgpu: the `i`-th discrete GPU, or the default adapter for a single device); the CPU backends
/// have one device, which every index names (several indices are then several threads).
pub fn visit_devices<V: BackendVisitor>(choice: BackendChoice, indices: &[usize], visitor: V) -> Result<V::Output, BackendError> {
    let indices: Vec<usize> = if indices.is_empty() { vec![choice.device] } else { indices.to_vec() };
    let cpu = |_: &usize| Default::default();
    let not_compiled = |b: BackendKind| BackendError::NotCompiled { backend: b, feature: b.feature() };
    let cpu_precision = |b: BackendKind| match choice.precision {
        Precision::F32 => Ok(()),
        p => Err(BackendError::Precision { backend: b, precision: p }),
    };
    let _ = (&visitor, &not_compiled, &cpu);
    if matches!(choice.backend, BackendKind::Cpu | BackendKind::Ndarray | BackendKind::Flex) {
        super::allocator::keep_freed_memory();
    }
    match choice.backend {
        BackendKind::Cpu => {
            cpu_precision(BackendKind::Cpu)?;
            #[cfg(any(feature = "flex", feature = "ndarray"))]
            return Ok(visitor.visit_devices::<CpuTrain>(if cfg!(feature = "flex") { "burn flex (CPU)" } else { "burn ndarray (CPU)" }, indices.iter().map(cpu).collect()));
            #[allow(unreachable_code)]
            Err(not_compiled(BackendKind::Cpu))
        }
        BackendKind::Ndarray => {
            cpu_precision(BackendKind::Ndarray)?;
            #[cfg(feature = "ndarray")]
            return Ok(visitor.visit_devices::<burn::backend::Autodiff<burn::backend::NdArray<f32>>>("burn ndarray (CPU)", indices.iter().map(cpu).collect()));
            #[allow(unreachable_code)]
            Err(not_compiled(BackendKind::Ndarray))
        }
        BackendKind::Flex => {
            cpu_precision(BackendKind::Flex)?;
            #[cfg(feature = "flex")]
            return Ok(visitor.visit_devices::<burn::backend::Autodiff<burn::backend::Flex>>("burn flex (CPU)", indices.iter().map(cpu).collect()));
            #[allow(unreachable_code)]
            Err(not_compiled(BackendKind::Flex))
        }
        BackendKind::Cuda => {
            #[cfg(feature = "cuda")]
            {
                use burn::backend::cuda::CudaDevice;
                let devices: Vec<CudaDevice> = indices.iter().map(|&i| CudaDevice::new(i)).collect();
                return Ok(match choice.precision {
                    Precision::F32 => visitor.visit_devices::<burn::backend::Autodiff<burn::backend::Cuda<f32>>>("burn cuda f32", devices),
                    Precision::Bf16 => visitor.visit_devices::<burn::backend::Autodiff<burn::backend::Cuda<half::bf16>>>("burn cuda bf16", devices),
                });
            }
            #[allow(unreachable_code)]
            Err(not_compiled(BackendKind::Cuda))
        }
        BackendKind::Wgpu => {
            #[cfg(feature = "wgpu")]
            {
                // WGSL has no bf16: cubecl's wgpu compiler refuses it (in a worker thread, at the
                // first kernel), so it is refused here, before anything runs.
                if choice.precision != Precision::F32 {
                    return Err(BackendError::Precision { backend: BackendKind::Wgpu, precision: choice.precision });
                }
                use burn::backend::wgpu::WgpuDevice;
                let devices: Vec<WgpuDevice> = match indices.as_slice() {
                    [_] => vec![WgpuDevice::default()],
                    many => many.iter().map(|&i| WgpuDevice::DiscreteGpu(i)).collect(),
                };
                return Ok(visitor.visit_devices::<burn::backend::Autodiff<burn::backend::Wgpu<f32>>>("burn wgpu f32", devices));
            }
            #[allow(unreachable_code)]
            Err(not_compiled(BackendKind::Wgpu))
        }
    }
}
