//! Low-rank adapters (LoRA, Hu et al. 2021) on the model's projections.
//!
//! With `[policy.lora]` set, each training call freezes the base weights, attaches adapters
//! `W x + (alpha / rank) * B A x` to the chosen projections (`A` drawn from N(0, 1/rank) with
//! the run's seed, `B` zero, so training starts from the unchanged model), trains only them, and
//! merges them into the base weights at the end. Checkpoints therefore stay plain Hugging Face
//! Llama files; mid-training checkpoints hold the adapters and their optimizer state. Only the
//! adapters get gradients and AdamW moments, which is what makes large models fit.
//!
//! Adapters are kept in f32 whatever the base's precision (PEFT's practice with bf16 bases): a
//! bf16 base casts its input up for the adapter's product and the result back down, so that the
//! small updates AdamW makes to the adapters are not rounded away in bf16.

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::prelude::*;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

use super::llama::Llama;

/// The projections of a block that can carry adapters, by Hugging Face name.
pub const PROJECTIONS: [&str; 7] = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

/// `[policy.lora]`: which projections get adapters, and their shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoraSettings {
    /// Rank of the adapters.
    pub rank: usize,
    /// Scale numerator: updates are multiplied by `alpha / rank`.
    pub alpha: f64,
    /// Projections to adapt, by Hugging Face name (`q_proj`, `k_proj`, `v_proj`, `o_proj`,
    /// `gate_proj`, `up_proj`, `down_proj`).
    pub targets: Vec<String>,
    /// Rank-stabilised scaling (`alpha / sqrt(rank)` instead of `alpha / rank`; PEFT's
    /// `use_rslora`).
    pub rslora: bool,
    /// Also write the merged weights (a full model folder in `merged/`) with every checkpoint,
    /// besides the PEFT adapter.
    pub export_merged: bool,
}

impl Default for LoraSettings {
    fn default() -> Self {
        LoraSettings { rank: 8, alpha: 16.0, targets: ["q_proj", "k_proj", "v_proj", "o_proj"].map(String::from).to_vec(), rslora: false, export_merged: false }
    }
}

impl LoraSettings {
    /// The factor the adapters' product is multiplied by.
    pub fn scale(&self) -> f64 {
        if self.rslora {
            self.alpha / (self.rank as f64).sqrt()
        } else {
            self.alpha / self.rank as f64
        }
    }

    /// Checks the settings: a positive rank and known target names.
    pub fn validate(&self) -> Result<(), String> {
        if self.rank == 0 {
            return Err("[policy.lora] rank must be at least 1".into());
        }
        match self.targets.iter().find(|t| !PROJECTIONS.contains(&t.as_str())) {
            Some(t) => Err(format!("[policy.lora] targets: unknown projection `{t}`; expected some of {PROJECTIONS:?}")),
            None => Ok(()),
        }
    }
}

/// The adapter of one projection: `x -> (x @ a @ b) * scale`.
#[derive(Module, Debug)]
pub struct Adapter<B: Backend> {
    /// Down projection `[in, rank]` (PEFT's `lora_A.weight` transposed).
    pub a: Param<Tensor<B, 2>>,
    /// Up projection `[rank, out]` (zero at the start; PEFT's `lora_B.weight` transposed).
    pub b: Param<Tensor<B, 2>>,
    scale: f64,
}

impl<B: Backend> Adapter<B> {
    /// An adapter with the given matrices (`a`: `[in, rank]`, `b`: `[rank, out]`).
    pub fn new(a: Tensor<B, 2>, b: Tensor<B, 2>, scale: f64) -> Self {
        Adapter { a: Param::from_tensor(a), b: Param::from_tensor(b), scale }
    }

    /// An adapter made of existing parameters (keeping their ids, which the optimizer's state
    /// refers to).
    pub fn from_params(a: Param<Tensor<B, 2>>, b: Param<Tensor<B, 2>>, scale: f64) -> Self {
        Adapter { a, b, scale }
    }

    /// The factor the product is multiplied by.
    pub fn scale(&self) -> f64 {
        self.scale
    }
}

/// A linear projection (with a bias where the architecture has one) and an optional adapter.
#[derive(Module, Debug)]
pub struct Proj<B: Backend> {
    /// The base weights (`[in, out]`, as burn stores them).
    pub base: Linear<B>,
    /// The adapter, while one is attached.
    pub lora: Option<Adapter<B>>,
}

impl<B: Backend> Proj<B> {
    /// A projection without adapter.
    pub fn new(base: Linear<B>) -> Self {
        Proj { base, lora: None }
    }

    /// `x @ W` (+ the adapter's update, computed in the adapter's f32).
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        let y = self.base.forward(x.clone());
        match &self.lora {
            None => y,
            Some(l) => {
                let dtype = y.dtype();
                let a = l.a.val();
                let update = x.cast(a.dtype()).matmul(a.unsqueeze()).matmul(l.b.val().unsqueeze()) * l.scale;
                y + update.cast(dtype)
            }
        }
    }

    /// The effective `[in, out]` weight: base plus the adapter's update, if any.
    pub fn weight(&self) -> Tensor<B, 2> {
        let w = self.base.weight.val();
        match &self.lora {
            None => w,
            Some(l) => {
                let dtype = w.dtype();
                w + (l.a.val().matmul(l.b.val()) * l.scale).cast(dtype)
            }
        }
    }

    fn attach(self, s: &LoraSettings, rng: &mut impl rand::Rng) -> Self {
        let [input, output] = self.base.weight.dims();
        let device = self.base.weight.device();
        let normal = Normal::new(0.0f32, (1.0 / s.rank as f32).sqrt()).expect("a positive standard deviation");
        let a: Vec<f32> = (0..input * s.rank).map(|_| normal.sample(rng)).collect();
        let f32 = burn::tensor::DType::F32;
        let a = Param::from_tensor(Tensor::from_data(TensorData::new(a, [input, s.rank]), (&device, f32)));
        let b = Param::from_tensor(Tensor::from_data(TensorData::new(vec![0.0f32; s.rank * output], [s.rank, output]), (&device, f32)));
        Proj { base: self.base.no_grad(), lora: Some(Adapter { a, b, scale: s.scale() }) }
    }

    fn merge(self) -> Self {
        if self.lora.is_none() {
            return self;
        }
        let weight = self.weight();
        let mut base = self.base;
        base.weight = Param::from_tensor(weight.detach());
        Proj { base, lora: None }
    }
}

impl<B: Backend> Llama<B> {
    /// Freezes every weight and attaches fresh adapters (seeded by `seed`) to the projections
    /// `s.targets` names.
    ///
    /// Adapters already attached (loaded from a PEFT folder, or kept from an earlier training
    /// call) stay and are trained further; only projections without one get a fresh adapter.
    pub fn with_lora(self, s: &LoraSettings, seed: u64) -> Self {
        let mut rng = crate::seed::rng(seed);
        self.no_grad().map_projections(|name, p| match p.lora {
            Some(l) => Proj { base: p.base, lora: Some(Adapter { a: l.a.set_require_grad(true), b: l.b.set_require_grad(true), scale: l.scale }) },
            None if s.targets.iter().any(|t| t == name) => p.attach(s, &mut rng),
            None => p,
        })
    }

    /// Folds every adapter into its base weight and detaches it; all weights become trainable
    /// again.
    pub fn merge_lora(self) -> Self {
        struct Trainable;
        impl<B: Backend> burn::module::ModuleMapper<B> for Trainable {
            fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
                param.set_require_grad(true)
            }
        }
        self.map_projections(|_, p| p.merge()).map(&mut Trainable)
    }

    /// Every projection of every block: `(layer, name, projection)`, in the order of
    /// `PROJECTIONS` within each layer.
    pub fn projections(&self) -> Vec<(usize, &'static str, &Proj<B>)> {
        let mut out = Vec::new();
        for (i, b) in self.layers.iter().enumerate() {
            let a = &b.self_attn;
            let f = &b.mlp;
            for (name, p) in PROJECTIONS.iter().zip([&a.q_proj, &a.k_proj, &a.v_proj, &a.o_proj, &f.gate_proj, &f.up_proj, &f.down_proj]) {
                out.push((i, *name, p));
            }
        }
        out
    }

    /// Whether any projection carries an adapter.
    pub fn has_lora(&self) -> bool {
        self.projections().iter().any(|(_, _, p)| p.lora.is_some())
    }

    /// Replaces every projection of every block with `f(layer, name, projection)`, in the order
    /// of `PROJECTIONS`.
    pub fn map_projections_indexed(mut self, mut f: impl FnMut(usize, &str, Proj<B>) -> Proj<B>) -> Self {
        let layers = std::mem::take(&mut self.layers);
        self.layers = layers
            .into_iter()
            .enumerate()
            .map(|(i, mut b)| {
                b.self_attn.q_proj = f(i, PROJECTIONS[0], b.self_attn.q_proj);
                b.self_attn.k_proj = f(i, PROJECTIONS[1], b.self_attn.k_proj);
                b.self_attn.v_proj = f(i, PROJECTIONS[2], b.self_attn.v_proj);
                b.self_attn.o_proj = f(i, PROJECTIONS[3], b.self_attn.o_proj);
                b.mlp.gate_proj = f(i, PROJECTIONS[4], b.mlp.gate_proj);
                b.mlp.up_proj = f(i, PROJECTIONS[5], b.mlp.up_proj);
                b.mlp.down_proj = f(i, PROJECTIONS[6], b.mlp.down_proj);
                b
            })
            .collect();
        self
    }

    /// Replaces every projection of every block with `f(name, projection)`, in the order of
    /// [`PROJECTIONS`].
    fn map_projections(self, mut f: impl FnMut(&str, Proj<B>) -> Proj<B>) -> Self {
        self.map_projections_indexed(|_, name, p| f(name, p))
    }

    /// Parameters that get gradients.
    pub fn trainable_parameters(&self) -> usize {
        struct Count(usize);
        impl<B: Backend> burn::module::ModuleVisitor<B> for Count {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
                if param.is_require_grad() {
                    self.0 += param.shape().num_elements();
                }
            }
        }
        let mut c = Count(0);
        self.visit(&mut c);
        c.0
    }
}
