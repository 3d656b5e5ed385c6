//! The decoder: embedding, blocks (RMSNorm -> attention -> residual, RMSNorm -> SwiGLU ->
//! residual), final norm, output projection.

use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig, RmsNorm, RmsNormConfig};
use burn::module::Param;
use burn::prelude::*;

use super::attention::{Attention, KvCache, Layout};
use super::config::LlamaConfig;
use super::kernels::{self, LmBackend};
use super::lora::Proj;

/// The SwiGLU feed-forward layer: `down(silu(gate(x)) * up(x))`.
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    /// Gate projection.
    pub gate_proj: Proj<B>,
    /// Up projection.
    pub up_proj: Proj<B>,
    /// Down projection.
    pub down_proj: Proj<B>,
}

impl<B: Backend> Mlp<B> {
    fn new(c: &LlamaConfig, device: &B::Device) -> Self {
        let lin = |i, o| Proj::new(LinearConfig::new(i, o).with_bias(false).init(device));
        Mlp {
            gate_proj: lin(c.hidden_size, c.intermediate_size),
            up_proj: lin(c.hidden_size, c.intermediate_size),
            down_proj: lin(c.intermediate_size, c.hidden_size),
        }
    }
}

impl<B: LmBackend> Mlp<B> {
    fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        self.down_proj.forward(kernels::swiglu(self.gate_proj.forward(x.clone()), self.up_proj.forward(x)))
    }
}

/// One decoder block.
#[derive(Module, Debug)]
pub struct Block<B: Backend> {
    /// Norm before attention.
    pub input_layernorm: RmsNorm<B>,
    /// Attention.
    pub self_attn: Attention<B>,
    /// Norm before the feed-forward layer.
    pub post_attention_layernorm: RmsNorm<B>,
    /// Feed-forward layer.
    pub mlp: Mlp<B>,
}

/// A Llama-architecture causal language model.
#[derive(Module, Debug)]
pub struct Llama<B: Backend> {
    /// Token embedding (`[vocab, hidden]`).
    pub embed_tokens: Embedding<B>,
    /// The blocks.
    pub layers: Vec<Block<B>>,
    /// Final norm.
    pub norm: RmsNorm<B>,
    /// Output projection (absent when tied to the embedding).
    pub lm_head: Option<Linear<B>>,
}

impl<B: Backend> Llama<B> {
    /// A randomly initialised model.
    pub fn new(c: &LlamaConfig, device: &B::Device) -> Self {
        let norm = || RmsNormConfig::new(c.hidden_size).with_epsilon(c.rms_norm_eps).init(device);
        Llama {
            embed_tokens: EmbeddingConfig::new(c.vocab_size, c.hidden_size).init(device),
            layers: (0..c.num_hidden_layers)
                .map(|_| Block { input_layernorm: norm(), self_attn: Attention::new(c, device), post_attention_layernorm: norm(), mlp: Mlp::new(c, device) })
                .collect(),
            norm: norm(),
            lm_head: (!c.tie_word_embeddings).then(|| LinearConfig::new(c.hidden_size, c.vocab_size).with_bias(false).init(device)),
        }
    }

    /// Grows the vocabulary to `size` tokens, as Hugging Face's `resize_token_embeddings` does
    /// when tokens are added: the new embedding rows (and output-head columns) start at the mean
    /// of the existing ones. Used when a pretrained tokenizer lacks the chat template's special
    /// tokens. A smaller or equal `size` changes nothing.
    pub fn resize_vocab(mut self, size: usize) -> Self {
        let [v, _] = self.embed_tokens.weight.dims();
        if size <= v {
            return self;
        }
        let extra = size - v;
        let grow = |w: Tensor<B, 2>, dim: usize| {
            let mean = w.clone().mean_dim(dim);
            let new = if dim == 0 { mean.repeat_dim(0, extra) } else { mean.repeat_dim(1, extra) };
            Param::from_tensor(Tensor::cat(vec![w, new], dim).detach())
        };
        self.embed_tokens.weight = grow(self.embed_tokens.weight.val(), 0);
        if let Some(head) = &mut self.lm_head {
            head.weight = grow(head.weight.val(), 1);
        }
        self
    }

    /// A fresh cache for this model.
    pub fn new_cache(&self) -> Vec<KvCache<B>> {
        self.layers.iter().map(|_| KvCache::default()).collect()
    }
}

impl<B: LmBackend> Llama<B> {
    /// Logits `[batch, len, vocab]` for `tokens` `[batch, len]`, continuing from `cache` (which
    /// is extended).
    pub fn forward(&self, tokens: Tensor<B, 2, Int>, cache: &mut [KvCache<B>]) -> Tensor<B, 3> {
        self.forward_padded(tokens, cache, &[])
    }

    /// [`Llama::forward`] for a left-padded batch: row `r` begins with `pads[r]` padding tokens
    /// (see [`Attention::forward_padded`]); the logits at padding positions are meaningless.
    pub fn forward_padded(&self, tokens: Tensor<B, 2, Int>, cache: &mut [KvCache<B>], pads: &[usize]) -> Tensor<B, 3> {
        let h = self.hidden(tokens, cache, Layout::Padded(pads));
        self.head(h)
    }

    /// Logits `[batch, len, vocab]` of training rows that hold sequences packed end to end (row
    /// `r`'s second, third, … sequence starting at the offsets `starts[r]`; see
    /// [`Layout::Packed`]): per token, what each sequence gives alone.
    pub fn logits_packed(&self, tokens: Tensor<B, 2, Int>, starts: &[Vec<usize>]) -> Tensor<B, 3> {
        let h = self.hidden(tokens, &mut self.new_cache(), Layout::Packed(starts));
        self.head(h)
    }

    /// Like [`Llama::forward_padded`], but the logits of the last position only (`[batch, 1,
    /// vocab]`): what decoding needs. With a 128k-token vocabulary the logits of every prompt
    /// position would outweigh the rest of a prefill.
    pub fn forward_last(&self, tokens: Tensor<B, 2, Int>, cache: &mut [KvCache<B>], pads: &[usize]) -> Tensor<B, 3> {
        let h = self.hidden(tokens, cache, Layout::Padded(pads));
        let t = h.dims()[1];
        self.head(h.narrow(1, t - 1, 1))
    }

    /// The last block's output, before the final norm.
    fn hidden(&self, tokens: Tensor<B, 2, Int>, cache: &mut [KvCache<B>], layout: Layout<'_>) -> Tensor<B, 3> {
        let mut h = self.embed_tokens.forward(tokens);
        for (block, c) in self.layers.iter().zip(cache.iter_mut()) {
            h = h.clone() + block.self_attn.forward_layout(rms_norm(&block.input_layernorm, h), c, layout);
            h = h.clone() + block.mlp.forward(rms_norm(&block.post_attention_layernorm, h));
        }
        h
    }

    /// Final norm and output projection.
    fn head(&self, h: Tensor<B, 3>) -> Tensor<B, 3> {
        let h = rms_norm(&self.norm, h);
        match &self.lm_head {
            Some(head) => head.forward(h),
            None => {
                let [b, t, d] = h.dims();
                let w = self.embed_tokens.weight.val();
                let v = w.dims()[0];
                h.reshape([b * t, d]).matmul(w.transpose()).reshape([b, t, v])
            }
        }
    }

    /// Logits for a whole sequence without a cache.
    pub fn logits(&self, tokens: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        let mut cache = self.new_cache();
        self.forward(tokens, &mut cache)
    }
}

/// `norm` applied to `x` with the fused kernel (burn's `RmsNorm::forward` computes the same).
fn rms_norm<B: LmBackend, const D: usize>(norm: &RmsNorm<B>, x: Tensor<B, D>) -> Tensor<B, D> {
    kernels::rms_norm(x, norm.gamma.val(), norm.epsilon)
}
