//! Grouped-query self-attention with a key-value cache.

use burn::nn::LinearConfig;
use burn::prelude::*;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;

use super::config::LlamaConfig;
use super::kernels::{self, LmBackend};
use super::lora::Proj;
use super::rope::{apply_rope, Rope};

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

/// Self-attention: query/key/value/output projections (with biases where the architecture has
/// them: Qwen2's q/k/v, Llama's `attention_bias`).
#[derive(Module, Debug)]
pub struct Attention<B: Backend> {
    /// Query projection.
    pub q_proj: Proj<B>,
    /// Key projection.
    pub k_proj: Proj<B>,
    /// Value projection.
    pub v_proj: Proj<B>,
    /// Output projection.
    pub o_proj: Proj<B>,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    #[module(skip)]
    rope: Rope,
}

impl<B: Backend> Attention<B> {
    /// A randomly initialised layer.
    pub fn new(c: &LlamaConfig, device: &B::Device) -> Self {
        let hd = c.head_dim();
        let lin = |i, o, bias| Proj::new(LinearConfig::new(i, o).with_bias(bias).init(device));
        let (qkv, o) = (c.qkv_bias(), c.o_bias());
        Attention {
            q_proj: lin(c.hidden_size, c.num_attention_heads * hd, qkv),
            k_proj: lin(c.hidden_size, c.kv_heads() * hd, qkv),
            v_proj: lin(c.hidden_size, c.kv_heads() * hd, qkv),
            o_proj: lin(c.num_attention_heads * hd, c.hidden_size, o),
            heads: c.num_attention_heads,
            kv_heads: c.kv_heads(),
            head_dim: hd,
            rope: Rope::new(hd, c.rope_theta, c.rope_scaling.as_ref()),
        }
    }
}

impl<B: LmBackend> Attention<B> {
    /// Attends `x` (`[batch, len, hidden]`) causally to the cache and itself; updates the cache.
    pub fn forward(&self, x: Tensor<B, 3>, cache: &mut KvCache<B>) -> Tensor<B, 3> {
        self.forward_padded(x, cache, &[])
    }

    /// [`Attention::forward`] for left-padded sequences: row `r` starts with `pads[r]` padding
    /// tokens, which no query attends to and which do not count as positions (empty `pads`: no
    /// padding). The padding stays in the cache, so later calls pass the same `pads`.
    pub fn forward_padded(&self, x: Tensor<B, 3>, cache: &mut KvCache<B>, pads: &[usize]) -> Tensor<B, 3> {
        let [b, t, _] = x.dims();
        let device = x.device();
        let start = cache.len();
        let padded = pads.iter().any(|&p| p > 0);
        // Several new tokens (training, a prompt) take the fused path, which wants the queries
        // pre-scaled; one new token (decoding) takes burn's attention op.
        let fused = t > 1;
        let starts: Vec<i64> = if padded { pads.iter().map(|&p| start as i64 - p as i64).collect() } else { vec![start as i64] };
        let (cos, sin) = self.rope.tables::<B>(&starts, t, &device);
        let q = apply_rope(self.q_proj.forward(x.clone()), self.heads, cos.clone(), sin.clone());
        let q = kernels::split_heads(if fused { q * (1.0 / (self.head_dim as f64).sqrt()) } else { q }, self.heads);
        let k = kernels::split_heads(apply_rope(self.k_proj.forward(x.clone()), self.kv_heads, cos, sin), self.kv_heads);
        let v = kernels::split_heads(self.v_proj.forward(x), self.kv_heads);
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
        let out = if fused {
            // Query i (absolute position start + i) sees the keys up to it, minus its row's
            // padding.
            let scores = q.matmul(k.swap_dims(2, 3));
            let probs = if start == 0 && !padded { kernels::causal_softmax(scores) } else { kernels::padded_causal_softmax(scores, start, pads) };
            probs.matmul(v)
        } else {
            // One new token sees every cached key except its row's padding.
            let mask = padded.then(|| {
                let hidden: Vec<bool> = (0..b).flat_map(|r| (0..s).map(move |j| j < pads[r])).collect();
                Tensor::<B, 3, Bool>::from_data(TensorData::new(hidden, [b, 1, s]), &device).reshape([b, 1, 1, s]).expand([b, self.heads, 1, s])
            });
            attention(q, k, v, mask, None, AttentionModuleOptions { scale: None, softcap: None, is_causal: false })
        };
        let out = kernels::merge_heads(out);
        self.o_proj.forward(out)
    }
}
