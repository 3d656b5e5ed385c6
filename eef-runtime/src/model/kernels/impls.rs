//! The backends [`super::super::backend`] selects that use the reference compositions.

#[cfg(feature = "ndarray")]
impl super::LmBackend for burn::backend::NdArray<f32> {}

#[cfg(feature = "cuda")]
impl super::LmBackend for burn::backend::Cuda<f32> {}

#[cfg(feature = "cuda")]
impl super::LmBackend for burn::backend::Cuda<half::bf16> {}

#[cfg(feature = "wgpu")]
impl super::LmBackend for burn::backend::Wgpu<f32> {}

