//! Seeded weight initialisation, as Hugging Face initialises Llama: every matrix (projections,
//! embedding, output head) drawn from N(0, 0.02²), norms at one.
//!
//! The values come from this crate's ChaCha generator seeded by the caller, not from the
//! backend's global generator, so a model's initial weights depend only on the seed — not on what
//! other threads drew before — and are the same on every backend.

use burn::module::{Module, ModuleMapper, Param};
use burn::prelude::*;
use rand_distr::{Distribution, Normal};

use super::config::LlamaConfig;
use super::llama::Llama;

/// Standard deviation of initial matrix entries (Hugging Face's `initializer_range`).
pub const INITIALIZER_RANGE: f64 = 0.02;

struct Seeded {
    rng: rand_chacha::ChaCha8Rng,
}

impl<B: Backend> ModuleMapper<B> for Seeded {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        if D < 2 {
            return param; // norm weights stay at one
        }
        let normal = Normal::new(0.0f32, INITIALIZER_RANGE as f32).expect("a positive standard deviation");
        param.map(|t| {
            let shape = t.shape();
            let values: Vec<f32> = (0..shape.num_elements()).map(|_| normal.sample(&mut self.rng)).collect();
            let fresh = Tensor::<B, D>::from_data(TensorData::new(values, shape), &t.device());
            if t.is_require_grad() {
                fresh.require_grad()
            } else {
                fresh
            }
        })
    }
}

impl<B: Backend> Llama<B> {
    /// A model initialised from `seed` alone (see the module documentation).
    pub fn seeded(c: &LlamaConfig, seed: u64, device: &B::Device) -> Self {
        Llama::new(c, device).map(&mut Seeded { rng: crate::seed::rng(seed) })
    }
}
