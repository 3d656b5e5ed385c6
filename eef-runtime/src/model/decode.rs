//! Batched decoding across concurrent episodes, free or constrained to a list of valid actions.
//!
//! - **Batching.** Prompts are left-padded and decoded together with one key-value cache;
//!   finished rows leave the batch. Each prompt's new part (what the [`PrefixCache`] does not
//!   hold) is padded to a multiple of `pad_to` that depends only on its own length, and rows are
//!   batched only with rows of the same padded length, so a row's arithmetic (and therefore its
//!   action) is the same whatever batch it arrives in: burn's CPU matrix products are
//!   row-independent and the CPU attention kernel depends only on each query's own window
//!   (checked by `tests/model.rs`).
//! - **Reuse across turns.** With a [`PrefixCache`], a prompt that begins with an earlier prompt
//!   and answer (the same episode's previous turn) continues from their keys and values and
//!   feeds only the new tokens; every decoded row's prompt and answer are cached for the next
//!   turn.
//! - **Free decoding** samples with temperature and top-p until a stop token (every eos id of the
//!   model: Llama-3 stops on `<|eot_id|>` as well as `<|end_of_text|>`).
//! - **Prefix-constrained decoding** walks the token trie of the valid actions: at each step only
//!   tokens that continue some valid action are allowed (renormalised), and decoding stops as soon
//!   as one action is left. Sampling at temperature 1 draws from the model's stepwise distribution
//!   restricted to valid actions; at 0 it is greedy.

use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use rand::Rng;

use super::attention::KvCache;
use super::kernels::LmBackend;
use super::llama::Llama;
use super::prefix_cache::PrefixCache;

/// One sequence to decode.
#[derive(Clone, Debug)]
pub struct DecodeRow<R> {
    /// The prompt tokens.
    pub prompt: Vec<u32>,
    /// When set, the answer must be one of these token sequences (each ending with a stop
    /// token).
    pub choices: Option<Vec<Vec<u32>>>,
    /// Sampling temperature (0 = greedy).
    pub temperature: f32,
    /// The row's own random stream.
    pub rng: R,
}

/// What a row decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decoded {
    /// Generated tokens (without the stop token).
    Tokens(Vec<u32>),
    /// Index of the chosen entry of `choices`.
    Choice(usize),
}

/// Decoding settings shared by a batch.
#[derive(Clone, Debug)]
pub struct DecodeSettings {
    /// Tokens that end an answer.
    pub stop: Vec<u32>,
    /// Padding token.
    pub pad: u32,
    /// Longest free generation.
    pub max_new_tokens: usize,
    /// Nucleus mass for free generation.
    pub top_p: f32,
    /// Prompts are left-padded to a multiple of this.
    pub pad_to: usize,
}

/// Decodes every row; the result is in row order. With `cache`, prompts continue from their
/// longest cached prefix, and every row's prompt and answer are cached afterwards.
pub fn decode<B: LmBackend, R: Rng>(model: &Llama<B>, rows: Vec<DecodeRow<R>>, s: DecodeSettings, device: &B::Device, mut cache: Option<&mut PrefixCache<B>>) -> Vec<Decoded> {
    let n = rows.len();
    let pad_to = s.pad_to.max(1);
    let mut starts: Vec<Start<B, R>> = rows
        .into_iter()
        .map(|mut row| {
            if row.prompt.is_empty() {
                row.prompt.push(s.pad);
            }
            let (reused, kv) = match cache.as_deref_mut() {
                Some(c) => c.lookup(&row.prompt),
                None => (0, None),
            };
            Start { row, reused, kv }
        })
        .collect();
    let bucket = |r: &Start<B, R>| (r.row.prompt.len() - r.reused).div_ceil(pad_to) * pad_to;
    let mut groups: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for (i, r) in starts.iter().enumerate() {
        groups.entry(bucket(r)).or_default().push(i);
    }
    let mut taken: Vec<Option<Start<B, R>>> = starts.drain(..).map(Some).collect();
    let mut out: Vec<Option<Decoded>> = vec![None; n];
    for (new, members) in groups {
        let group: Vec<Start<B, R>> = members.iter().map(|&i| taken[i].take().expect("each row in one group")).collect();
        for (i, (d, kept)) in members.into_iter().zip(decode_group(model, group, new, &s, device, cache.is_some())) {
            if let (Some(c), Some((ids, kv))) = (cache.as_deref_mut(), kept) {
                c.insert(ids, kv);
            }
            out[i] = Some(d);
        }
    }
    out.into_iter().map(|d| d.expect("every row decoded")).collect()
}

/// A row to decode with what the cache holds of its prompt.
struct Start<B: Backend, R> {
    row: DecodeRow<R>,
    /// Prompt tokens whose keys and values `kv` holds.
    reused: usize,
    kv: Option<Vec<KvCache<B>>>,
}

struct Live<R> {
    row: DecodeRow<R>,
    generated: Vec<u32>,
    pad: usize,
}

/// A finished row's tokens (prompt and answer) and their keys and values, per layer.
type Kept<B> = Option<(Vec<u32>, Vec<KvCache<B>>)>;

/// Decodes rows whose new prompt parts are at most `new` tokens: the cached parts are
/// left-padded to a common length before the new parts, the new parts are left-padded to `new`.
/// With `keep`, each row's prompt and answer come back with their keys and values.
fn decode_group<B: LmBackend, R: Rng>(model: &Llama<B>, rows: Vec<Start<B, R>>, new: usize, s: &DecodeSettings, device: &B::Device, keep: bool) -> Vec<(Decoded, Kept<B>)> {
    let n = rows.len();
    // Every row spans `cached + new` columns: padding, then its prompt; the first `cached`
    // columns come from the cache (a row with a short prompt has only padding there).
    let total = rows.iter().map(|r| r.row.prompt.len()).max().unwrap_or(1).max(new);
    let cached = total - new;
    let layers = model.layers.len();
    let mut ids = Vec::with_capacity(n * new);
    // Per layer, the key and value pieces to concatenate: from the cache, then the new columns.
    type Pieces<B> = (Vec<Tensor<B, 4>>, Vec<Tensor<B, 4>>);
    let mut past: Vec<Pieces<B>> = vec![(Vec::new(), Vec::new()); layers];
    let mut live: Vec<(usize, Live<R>)> = Vec::with_capacity(n);
    for (i, Start { mut row, kv, .. }) in rows.into_iter().enumerate() {
        let p = row.prompt.len();
        let pad = total - p;
        // Prompt tokens taken from the cache: all of them before the new columns.
        let from_cache = p.saturating_sub(new);
        if cached > 0 {
            for (l, (keys, values)) in past.iter_mut().enumerate() {
                let (k, v) = cached_columns(kv.as_ref().map(|kv| &kv[l]), from_cache, cached, model, device);
                keys.push(k);
                values.push(v);
            }
        }
        let fed = &row.prompt[from_cache..];
        ids.extend(std::iter::repeat_n(s.pad as i64, new - fed.len()).chain(fed.iter().map(|&t| t as i64)));
        if let Some(choices) = &mut row.choices {
            dedup(choices);
        }
        live.push((i, Live { row, generated: Vec::new(), pad }));
    }
    let mut cache: Vec<KvCache<B>> = if cached > 0 {
        past.into_iter().map(|(k, v)| KvCache { keys: Some(Tensor::cat(k, 0)), values: Some(Tensor::cat(v, 0)) }).collect()
    } else {
        model.new_cache()
    };
    let mut out: Vec<Option<(Decoded, Kept<B>)>> = (0..n).map(|_| None).collect();
    let pads: Vec<usize> = live.iter().map(|(_, l)| l.pad).collect();
    let mut lp = last_log_probs(model.forward_last(Tensor::from_data(TensorData::new(ids, [n, new]), device), &mut cache, &pads));
    loop {
        // Each live row picks its next token or finishes.
        let mut next = Vec::new();
        let mut keep_rows = Vec::new();
        for (k, (i, l)) in live.iter_mut().enumerate() {
            let done = match step(l, &lp[k], s) {
                Some(Ok(token)) => {
                    l.generated.push(token);
                    next.push(token as i64);
                    keep_rows.push(k);
                    continue;
                }
                Some(Err(done)) => done,
                None => Decoded::Tokens(l.generated.clone()),
            };
            let kept = keep.then(|| {
                let mut tokens = l.row.prompt.clone();
                tokens.extend_from_slice(&l.generated);
                (tokens, row_columns(&cache, k, l.pad))
            });
            out[*i] = Some((done, kept));
        }
        if keep_rows.is_empty() {
            break;
        }
        if keep_rows.len() < live.len() {
            let index = Tensor::<B, 1, Int>::from_data(TensorData::new(keep_rows.iter().map(|&k| k as i64).collect::<Vec<_>>(), [keep_rows.len()]), device);
            for c in cache.iter_mut() {
                c.select_rows(index.clone());
            }
            let mut old: Vec<Option<(usize, Live<R>)>> = live.into_iter().map(Some).collect();
            live = keep_rows.iter().map(|&k| old[k].take().expect("kept once")).collect();
        }
        let pads: Vec<usize> = live.iter().map(|(_, l)| l.pad).collect();
        let m = next.len();
        lp = last_log_probs(model.forward_last(Tensor::from_data(TensorData::new(next, [m, 1]), device), &mut cache, &pads));
    }
    out.into_iter().map(|d| d.expect("every row finished")).collect()
}

/// The first `cached` key and value columns of a row whose cache `kv` holds `from_cache` prompt
/// tokens: zeros (padding, never attended to) and then those tokens' keys and values.
fn cached_columns<B: LmBackend>(kv: Option<&KvCache<B>>, from_cache: usize, cached: usize, model: &Llama<B>, device: &B::Device) -> (Tensor<B, 4>, Tensor<B, 4>) {
    let (kv_heads, dim) = model.layers[0].self_attn.kv_shape();
    let zeros = |n: usize| Tensor::<B, 4>::zeros([1, kv_heads, n, dim], device);
    let part = |t: Option<&Tensor<B, 4>>| {
        let t = t.filter(|_| from_cache > 0).map(|t| t.clone().narrow(2, 0, from_cache));
        match t {
            Some(t) if cached > from_cache => Tensor::cat(vec![zeros(cached - from_cache), t], 2),
            Some(t) => t,
            None => zeros(cached),
        }
    };
    (part(kv.and_then(|c| c.keys.as_ref())), part(kv.and_then(|c| c.values.as_ref())))
}

/// Row `k`'s keys and values from column `pad` on, per layer.
fn row_columns<B: Backend>(cache: &[KvCache<B>], k: usize, pad: usize) -> Vec<KvCache<B>> {
    let take = |t: &Option<Tensor<B, 4>>| {
        t.as_ref().map(|t| {
            let len = t.dims()[2];
            t.clone().narrow(0, k, 1).narrow(2, pad, len - pad)
        })
    };
    cache.iter().map(|c| KvCache { keys: take(&c.keys), values: take(&c.values) }).collect()
}

/// The next token of a live row (`Some(Ok)`), its final answer (`Some(Err)`), or `None` when free
/// generation ended.
fn step<R: Rng>(l: &mut Live<R>, lp: &[f32], s: &DecodeSettings) -> Option<Result<u32, Decoded>> {
    let g = &l.generated;
    match &l.row.choices {
        Some(choices) if !choices.is_empty() => {
            let open: Vec<usize> = (0..choices.len()).filter(|&c| choices[c].len() > g.len() && choices[c][..g.len()] == g[..]).collect();
            match open.as_slice() {
                [] => Some(Err(Decoded::Choice(choices.iter().position(|c| c == g).unwrap_or(0)))),
                [only] => Some(Err(Decoded::Choice(*only))),
                _ => {
                    let mut allowed: Vec<u32> = open.iter().map(|&c| choices[c][g.len()]).collect();
                    allowed.sort_unstable();
                    allowed.dedup();
                    let scores: Vec<f32> = allowed.iter().map(|&t| lp.get(t as usize).copied().unwrap_or(f32::NEG_INFINITY)).collect();
                    Some(Ok(allowed[sample(&scores, l.row.temperature, 1.0, &mut l.row.rng)]))
                }
            }
        }
        _ => {
            if g.len() >= s.max_new_tokens {
                return None;
            }
            let token = sample(lp, l.row.temperature, s.top_p, &mut l.row.rng) as u32;
            (!s.stop.contains(&token)).then_some(Ok(token))
        }
    }
}

/// Removes repeated choices, keeping the first (so indices still name the first occurrence).
fn dedup(choices: &mut [Vec<u32>]) {
    for i in 1..choices.len() {
        if choices[..i].contains(&choices[i]) {
            // An impossible sequence: it never stays open past the shared prefix's end token.
            choices[i].clear();
        }
    }
}

/// Log-probabilities of the next token per row, from logits `[rows, len, vocab]`.
pub(crate) fn last_log_probs<B: Backend>(logits: Tensor<B, 3>) -> Vec<Vec<f32>> {
    let [b, t, v] = logits.dims();
    let flat: Vec<f32> = log_softmax(logits.narrow(1, t - 1, 1).reshape([b, v]), 1).into_data().convert::<f32>().to_vec().unwrap_or_default();
    flat.chunks(v).map(<[f32]>::to_vec).collect()
}

/// Index drawn from log-scores: argmax at temperature 0, else top-p sampling of
/// `softmax(scores / temperature)`.
pub fn sample(scores: &[f32], temperature: f32, top_p: f32, rng: &mut impl Rng) -> usize {
    if temperature <= 0.0 || scores.len() == 1 {
        return scores.iter().enumerate().fold(0, |best, (i, s)| if *s > scores[best] { i } else { best });
    }
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut p: Vec<(usize, f32)> = scores.iter().enumerate().map(|(i, s)| (i, ((s - max) / temperature).exp())).collect();
    p.sort_by(|a, b| b.1.total_cmp(&a.1));
    let total: f32 = p.iter().map(|x| x.1).sum();
    let (mut kept, mut mass) = (0, 0.0);
    for (_, w) in &p {
        kept += 1;
        mass += w / total;
        if mass >= top_p {
            break;
        }
    }
    let p = &p[..kept];
    let total: f32 = p.iter().map(|x| x.1).sum();
    let mut x = rng.gen::<f32>() * total;
    for (i, w) in p {
        if x < *w {
            return *i;
        }
        x -= w;
    }
    p[p.len() - 1].0
}

impl<B: Backend> KvCache<B> {
    /// Keeps only the batch rows in `index` (in that order).
    pub fn select_rows(&mut self, index: Tensor<B, 1, Int>) {
        self.keys = self.keys.take().map(|k| k.select(0, index.clone()));
        self.values = self.values.take().map(|v| v.select(0, index));
    }
}
