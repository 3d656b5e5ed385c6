//! Grouped-query self-attention with a key-value cache.

use burn::nn::LinearConfig;
use burn::prelude::*;

use super::config::LlamaConfig;
use super::kernels::{self, KeyRanges, LmBackend};
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

/// How the rows of a batch are laid out.
#[derive(Clone, Copy, Debug)]
pub enum Layout<'a> {
    /// Row `r` begins with `pads[r]` padding tokens, which no query attends to and which do not
    /// count as positions (empty: no padding). The padding stays in the cache, so later calls
    /// pass the same `pads`.
    Padded(&'a [usize]),
    /// Row `r` holds sequences packed end to end, the second, third, … starting at the offsets
    /// `starts[r]`: each attends only to itself and its positions start at 0 (training, no cache).
    Packed(&'a [Vec<usize>]),
}

impl<B: Backend> Attention<B> {
    /// `(kv_heads, head_dim)`: the shape of a position's cached keys (and values).
    pub fn kv_shape(&self) -> (usize, usize) {
        (self.kv_heads, self.head_dim)
    }
}

impl<B: LmBackend> Attention<B> {
    /// Attends `x` (`[batch, len, hidden]`) causally to the cache and itself; updates the cache.
    pub fn forward(&self, x: Tensor<B, 3>, cache: &mut KvCache<B>) -> Tensor<B, 3> {
        self.forward_layout(x, cache, Layout::Padded(&[]))
    }

    /// [`Attention::forward`] for left-padded sequences: row `r` starts with `pads[r]` padding
    /// tokens (see [`Layout::Padded`]).
    pub fn forward_padded(&self, x: Tensor<B, 3>, cache: &mut KvCache<B>, pads: &[usize]) -> Tensor<B, 3> {
        self.forward_layout(x, cache, Layout::Padded(pads))
    }

    /// Attends `x` (`[batch, len, hidden]`) to the cache and itself as `layout` says; updates the
    /// cache. One fused operation ([`kernels::causal_attention`]) from the rotated, pre-scaled queries
    /// and the keys and values to the output, with grouped-query heads read in place.
    pub fn forward_layout(&self, x: Tensor<B, 3>, cache: &mut KvCache<B>, layout: Layout<'_>) -> Tensor<B, 3> {
        let [b, t, _] = x.dims();
        let device = x.device();
        let start = cache.len();
        let (keys, (cos, sin)) = match layout {
            Layout::Padded(pads) => {
                let keys = KeyRanges::padded(start, t, pads);
                let starts: Vec<i64> = if keys.is_plain() { vec![start as i64] } else { pads.iter().map(|&p| start as i64 - p as i64).collect() };
                (keys, self.rope.tables::<B>(&starts, t, &device))
            }
            Layout::Packed(starts) => {
                assert_eq!(start, 0, "packed rows are trained without a cache");
                let keys = KeyRanges::packed(t, starts);
                let rows = keys.rows();
                let positions: Vec<i64> = (0..rows).flat_map(|r| (0..t).map(move |i| (r, i))).map(|(r, i)| keys.position(r, i) as i64).collect();
                let tables = self.rope.tables_at::<B>(&positions, rows, t, &device);
                (keys, tables)
            }
        };
        debug_assert!(keys.rows() == 1 || keys.rows() == b);
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let q = kernels::split_heads(apply_rope(self.q_proj.forward(x.clone()), self.heads, cos.clone(), sin.clone()) * scale, self.heads);
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
        let out = kernels::causal_attention(q, k, v, &keys);
        self.o_proj.forward(kernels::merge_heads(out))
    }
}
