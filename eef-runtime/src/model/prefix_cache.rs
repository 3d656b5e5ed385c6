//! Keys and values kept across an episode's turns: [`PrefixCache`].
//!
//! An agent's prompt at turn `k + 1` is its prompt at turn `k`, the answer it generated and the
//! new observation. After each decoding the policy keeps the keys and values of the prompt and
//! the generated answer; the next request whose prompt begins with those tokens continues from
//! them and feeds only the rest (the longest cached prefix is taken, so samples explored from the
//! same replayed expert prefix share it too). A prompt that was cut to the context budget, or is
//! otherwise not an extension, shares only what it does share and prefills the rest.
//!
//! On the CPU backend this changes no result: attention there computes each query from its own
//! window in a fixed order ([`super::kernels::cpu_attention`]) and every other operation works
//! row by row, so a continued prompt gets the same bits as a full prefill (`tests/model.rs`
//! checks greedy rollouts with and without the cache). On GPU backends results may differ in
//! the last bits, as they may with the batch a prompt arrives in.
//!
//! Memory is bounded: entries are dropped, least recently used first, beyond
//! `[policy] kv_cache_tokens` cached positions.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::attention::KvCache;

/// What reuse saved, since the policy was loaded or trained.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheStats {
    /// Prompts looked up.
    pub lookups: usize,
    /// Prompts that continued from a cached prefix.
    pub hits: usize,
    /// Prompt tokens taken from the cache.
    pub reused_tokens: usize,
    /// Prompt tokens fed to the model.
    pub prefilled_tokens: usize,
}

struct Entry<B: Backend> {
    ids: Vec<u32>,
    /// Per layer: keys and values `[1, kv_heads, ids.len(), head_dim]`.
    kv: Vec<KvCache<B>>,
    used: u64,
}

/// Cached keys and values of earlier prompts and answers, looked up by longest common prefix.
pub struct PrefixCache<B: Backend> {
    entries: Vec<Entry<B>>,
    tokens: usize,
    limit: usize,
    clock: u64,
    stats: CacheStats,
}

impl<B: Backend> std::fmt::Debug for PrefixCache<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrefixCache").field("entries", &self.entries.len()).field("tokens", &self.tokens).field("stats", &self.stats).finish()
    }
}

impl<B: Backend> PrefixCache<B> {
    /// An empty cache holding at most `limit` positions (0: reuse off).
    pub fn new(limit: usize) -> Self {
        PrefixCache { entries: Vec::new(), tokens: 0, limit, clock: 0, stats: CacheStats::default() }
    }

    /// What reuse saved so far.
    pub fn stats(&self) -> CacheStats {
        self.stats
    }

    /// Positions held.
    pub fn tokens(&self) -> usize {
        self.tokens
    }

    /// The longest cached prefix of `prompt` that leaves at least one token to feed (the model
    /// needs the last position's logits): its length and a copy of its keys and values, or
    /// `(0, None)`. Counts the lookup.
    pub fn lookup(&mut self, prompt: &[u32]) -> (usize, Option<Vec<KvCache<B>>>) {
        self.stats.lookups += 1;
        let room = prompt.len().saturating_sub(1);
        let best = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| (i, e.ids.iter().zip(prompt).take(room).take_while(|(a, b)| a == b).count()))
            .max_by_key(|&(i, n)| (n, std::cmp::Reverse(i)));
        let Some((i, n)) = best.filter(|&(_, n)| n > 0) else {
            self.stats.prefilled_tokens += prompt.len();
            return (0, None);
        };
        self.clock += 1;
        let e = &mut self.entries[i];
        e.used = self.clock;
        let kv = e
            .kv
            .iter()
            .map(|c| KvCache { keys: c.keys.as_ref().map(|k| k.clone().narrow(2, 0, n)), values: c.values.as_ref().map(|v| v.clone().narrow(2, 0, n)) })
            .collect();
        self.stats.hits += 1;
        self.stats.reused_tokens += n;
        self.stats.prefilled_tokens += prompt.len() - n;
        (n, Some(kv))
    }

    /// Keeps the keys and values `kv` (per layer, `[1, kv_heads, ids.len(), head_dim]`) of the
    /// tokens `ids`, dropping the least recently used entries beyond the limit; an entry whose
    /// tokens begin the new one is replaced by it.
    pub fn insert(&mut self, ids: Vec<u32>, kv: Vec<KvCache<B>>) {
        if ids.is_empty() || ids.len() > self.limit {
            return;
        }
        let before = self.entries.len();
        self.entries.retain(|e| !(e.ids.len() <= ids.len() && ids[..e.ids.len()] == e.ids[..]));
        if self.entries.len() != before {
            self.tokens = self.entries.iter().map(|e| e.ids.len()).sum();
        }
        while self.tokens + ids.len() > self.limit {
            let Some(oldest) = self.entries.iter().enumerate().min_by_key(|(_, e)| e.used).map(|(i, _)| i) else { break };
            self.tokens -= self.entries.swap_remove(oldest).ids.len();
        }
        self.clock += 1;
        self.tokens += ids.len();
        self.entries.push(Entry { ids, kv, used: self.clock });
    }

    /// Forgets every entry (the weights changed); the counts stay.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.tokens = 0;
    }
}
