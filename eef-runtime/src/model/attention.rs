//! Grouped-query self-attention with a key-value cache.

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::softmax;

use super::config::LlamaConfig;
use super::rope::{apply_rope, rope_tables};

/// Keys and values of earlier positions, per block: `[batch, kv_heads, len, head_dim]`.
#[derive(Clone, Debug)]
pub struct KvCache<B: Backend> {
    /// Cached keys (rotated).
    pub keys: Option<Tensor<B, 4>>,
    /// Cached values.
    pub values: Option<Tensor<B, 4>>,
}

impl<B: Backend> Default for KvCache<B> {
    fn default() -> Self {
        KvCache { keys: None, values: None }
    }
}

impl<B: Backend> KvCache<B> {
    /// Positions already cached.
    pub fn len(&self) -> usize {
        self.keys.as_ref().map_or(0, |k| k.dims()[2])
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Self-attention: query/key/value/output projections without bias.
#[derive(Module, Debug)]
pub struct Attention<B: Backend> {
    /// Query projection.
    pub q_proj: Linear<B>,
    /// Key projection.
    pub k_proj: Linear<B>,
    /// Value projection.
    pub v_proj: Linear<B>,
    /// Output projection.
    pub o_proj: Linear<B>,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    theta: f64,
}

impl<B: Backend> Attention<B> {
    /// A randomly initialised layer.
    pub fn new(c: &LlamaConfig, device: &B::Device) -> Self {
        let hd = c.head_dim();
        let lin = |i, o| LinearConfig::new(i, o).with_bias(false).init(device);
        Attention {
            q_proj: lin(c.hidden_size, c.num_attention_heads * hd),
            k_proj: lin(c.hidden_size, c.kv_heads() * hd),
            v_proj: lin(c.hidden_size, c.kv_heads() * hd),
            o_proj: lin(c.num_attention_heads * hd, c.hidden_size),
            heads: c.num_attention_heads,
            kv_heads: c.kv_heads(),
            head_dim: hd,
            theta: c.rope_theta,
        }
    }

    /// Attends `x` (`[batch, len, hidden]`) causally to the cache and itself; updates the cache.
    pub fn forward(&self, x: Tensor<B, 3>, cache: &mut KvCache<B>) -> Tensor<B, 3> {
        let [b, t, _] = x.dims();
        let device = x.device();
        let start = cache.len();
        let split = |y: Tensor<B, 3>, heads: usize| y.reshape([b, t, heads, self.head_dim]).swap_dims(1, 2);
        let q = split(self.q_proj.forward(x.clone()), self.heads);
        let k = split(self.k_proj.forward(x.clone()), self.kv_heads);
        let v = split(self.v_proj.forward(x), self.kv_heads);
        let (cos, sin) = rope_tables::<B>(start, t, self.head_dim, self.theta, &device);
        let q = apply_rope(q, cos.clone(), sin.clone());
        let k = apply_rope(k, cos, sin);
        let k = match cache.keys.take() {
            Some(past) => Tensor::cat(vec![past, k], 2),
            None => k,
        };
        let v = match cache.values.take() {
            Some(past) => Tensor::cat(vec![past, v], 2),
            None => v,
        };
        cache.keys = Some(k.clone());
        cache.values = Some(v.clone());
        let s = start + t;
        let rep = self.heads / self.kv_heads;
        let expand = |y: Tensor<B, 4>| {
            if rep == 1 {
                y
            } else {
                y.reshape([b, self.kv_heads, 1, s, self.head_dim]).repeat_dim(2, rep).reshape([b, self.heads, s, self.head_dim])
            }
        };
        let (k, v) = (expand(k), expand(v));
        let scores = q.matmul(k.swap_dims(2, 3)) / (self.head_dim as f64).sqrt();
        // Query i (absolute position start + i) may not see keys after it.
        let mask: Vec<bool> = (0..t).flat_map(|i| (0..s).map(move |j| j > start + i)).collect();
        let mask = Tensor::<B, 2, Bool>::from_data(TensorData::new(mask, [t, s]), &device).reshape([1, 1, t, s]).expand([b, self.heads, t, s]);
        let weights = softmax(scores.mask_fill(mask, f32::NEG_INFINITY), 3);
        let out = weights.matmul(v).swap_dims(1, 2).reshape([b, t, self.heads * self.head_dim]);
        self.o_proj.forward(out)
    }
}
