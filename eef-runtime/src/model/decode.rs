//! Batched decoding across concurrent episodes, free or constrained to a list of valid actions.
//!
//! - **Batching.** Prompts are left-padded and decoded together with one key-value cache;
//!   finished rows leave the batch. Each prompt is padded to a multiple of `pad_to` that depends
//!   only on its own length, and rows are batched only with rows of the same padded length, so a
//!   row's arithmetic (and therefore its action) is the same whatever batch it arrives in: burn's
//!   CPU matrix products are row-independent (checked by `tests/model.rs`).
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

/// Decodes every row; the result is in row order.
pub fn decode<B: LmBackend, R: Rng>(model: &Llama<B>, rows: Vec<DecodeRow<R>>, s: DecodeSettings, device: &B::Device) -> Vec<Decoded> {
    let n = rows.len();
    let pad_to = s.pad_to.max(1);
    let bucket = |r: &DecodeRow<R>| r.prompt.len().max(1).div_ceil(pad_to) * pad_to;
    let mut groups: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for (i, r) in rows.iter().enumerate() {
        groups.entry(bucket(r)).or_default().push(i);
    }
    let mut rows: Vec<Option<DecodeRow<R>>> = rows.into_iter().map(Some).collect();
    let mut out: Vec<Option<Decoded>> = vec![None; n];
    for (len, members) in groups {
        let group: Vec<DecodeRow<R>> = members.iter().map(|&i| rows[i].take().expect("each row in one group")).collect();
        for (i, d) in members.into_iter().zip(decode_group(model, group, len, &s, device)) {
            out[i] = Some(d);
        }
    }
    out.into_iter().map(|d| d.expect("every row decoded")).collect()
}

struct Live<R> {
    row: DecodeRow<R>,
    generated: Vec<u32>,
    pad: usize,
}

fn decode_group<B: LmBackend, R: Rng>(model: &Llama<B>, rows: Vec<DecodeRow<R>>, len: usize, s: &DecodeSettings, device: &B::Device) -> Vec<Decoded> {
    let n = rows.len();
    let mut ids = Vec::with_capacity(n * len);
    let mut live: Vec<(usize, Live<R>)> = Vec::with_capacity(n);
    for (i, mut row) in rows.into_iter().enumerate() {
        if row.prompt.is_empty() {
            row.prompt.push(s.pad);
        }
        let pad = len - row.prompt.len();
        ids.extend(std::iter::repeat_n(s.pad as i64, pad).chain(row.prompt.iter().map(|&t| t as i64)));
        if let Some(choices) = &mut row.choices {
            dedup(choices);
        }
        live.push((i, Live { row, generated: Vec::new(), pad }));
    }
    let mut out: Vec<Option<Decoded>> = vec![None; n];
    let mut cache = model.new_cache();
    let pads: Vec<usize> = live.iter().map(|(_, l)| l.pad).collect();
    let mut lp = last_log_probs(model.forward_last(Tensor::from_data(TensorData::new(ids, [n, len]), device), &mut cache, &pads));
    loop {
        // Each live row picks its next token or finishes.
        let mut next = Vec::new();
        let mut keep = Vec::new();
        for (k, (i, l)) in live.iter_mut().enumerate() {
            match step(l, &lp[k], s) {
                Some(Ok(token)) => {
                    l.generated.push(token);
                    next.push(token as i64);
                    keep.push(k);
                }
                Some(Err(done)) => out[*i] = Some(done),
                None => out[*i] = Some(Decoded::Tokens(std::mem::take(&mut l.generated))),
            }
        }
        if keep.is_empty() {
            break;
        }
        if keep.len() < live.len() {
            let index = Tensor::<B, 1, Int>::from_data(TensorData::new(keep.iter().map(|&k| k as i64).collect::<Vec<_>>(), [keep.len()]), device);
            for c in cache.iter_mut() {
                c.select_rows(index.clone());
            }
            let mut old: Vec<Option<(usize, Live<R>)>> = live.into_iter().map(Some).collect();
            live = keep.iter().map(|&k| old[k].take().expect("kept once")).collect();
        }
        let pads: Vec<usize> = live.iter().map(|(_, l)| l.pad).collect();
        let m = next.len();
        lp = last_log_probs(model.forward_last(Tensor::from_data(TensorData::new(next, [m, 1]), device), &mut cache, &pads));
    }
    out.into_iter().map(|d| d.expect("every row finished")).collect()
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
