//! Training rows: one token sequence, or several packed end to end so that padding does not eat
//! what whole-conversation training saves.
//!
//! In a packed row each sequence attends only to itself (the attention's key ranges start at its
//! first token, [`super::kernels::KeyRanges::packed`]), its rotary positions start again at 0,
//! and the token that would predict the next sequence's first token carries no loss: a packed
//! row computes, per token, what its sequences compute alone (`tests/model.rs` holds it to that).

use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::chat::Tokens;

/// A training row: token ids, per token whether predicting it carries loss, and where packed
/// sequences begin.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    /// Token ids.
    pub ids: Vec<u32>,
    /// Per token: whether predicting it carries loss (a sequence's first token never does).
    pub trainable: Vec<bool>,
    /// Offsets at which the second, third, … packed sequence begins (empty: one sequence).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub starts: Vec<usize>,
}

impl Row {
    /// A row holding one sequence.
    pub fn single(ids: Vec<u32>, trainable: Vec<bool>) -> Self {
        Row { ids, trainable, starts: Vec::new() }
    }

    /// Tokens in the row.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the row is empty.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The token ranges of the row's sequences, in order.
    pub fn segments(&self) -> Vec<Range<usize>> {
        let mut bounds = vec![0];
        bounds.extend(self.starts.iter().copied());
        bounds.push(self.ids.len());
        bounds.windows(2).map(|w| w[0]..w[1]).collect()
    }

    /// Whether predicting token `i` carries loss: its flag, unless it opens a packed sequence.
    pub fn target_trained(&self, i: usize) -> bool {
        self.trainable.get(i).copied().unwrap_or(false) && i != 0 && !self.starts.contains(&i)
    }

    /// Trainable target tokens (what the masked loss divides by).
    pub fn trained_targets(&self) -> usize {
        (1..self.ids.len()).filter(|&i| self.target_trained(i)).count()
    }

    /// Appends `tokens` as a new packed sequence.
    fn push(&mut self, tokens: &Tokens) {
        if !self.ids.is_empty() {
            self.starts.push(self.ids.len());
        }
        self.ids.extend_from_slice(&tokens.ids);
        self.trainable.extend_from_slice(&tokens.trainable);
    }
}

impl From<Tokens> for Row {
    fn from(t: Tokens) -> Self {
        Row::single(t.ids, t.trainable)
    }
}

/// Packs `seqs` into rows of at most `max_len` tokens, first fit in order of decreasing length
/// (ties in input order): deterministic, and about as few rows as can be. A sequence longer than
/// `max_len` gets a row of its own.
pub fn pack(seqs: &[Tokens], max_len: usize) -> Vec<Row> {
    let mut order: Vec<usize> = (0..seqs.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(seqs[i].ids.len()));
    let mut rows: Vec<Row> = Vec::new();
    for i in order {
        let s = &seqs[i];
        match rows.iter_mut().find(|r| r.len() + s.ids.len() <= max_len) {
            Some(row) => row.push(s),
            None => {
                let mut row = Row::default();
                row.push(s);
                rows.push(row);
            }
        }
    }
    rows
}

/// Tokens the forward passes of one epoch process, padding included: each micro-batch of
/// `batch` rows (in the order training shuffles them in its first epoch, from `seed`) padded to
/// its longest row.
pub fn batch_tokens(rows: &[Row], batch: usize, seed: u64) -> usize {
    use rand::seq::SliceRandom;
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.shuffle(&mut crate::seed::rng(crate::seed::derive_n(seed, 0)));
    order.chunks(batch.max(1)).map(|c| c.len() * c.iter().map(|&i| rows[i].len().saturating_sub(1)).max().unwrap_or(0)).sum()
}

/// One row per sequence.
pub fn unpacked(seqs: Vec<Tokens>) -> Vec<Row> {
    seqs.into_iter().map(Row::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(n: usize, tag: u32) -> Tokens {
        Tokens { ids: vec![tag; n], trainable: (0..n).map(|i| i > 0).collect() }
    }

    #[test]
    fn packing_fills_rows_first_fit_decreasing_and_keeps_every_token() {
        let seqs = [seq(300, 1), seq(100, 2), seq(250, 3), seq(200, 4), seq(600, 5)];
        let rows = pack(&seqs, 512);
        let lens: Vec<usize> = rows.iter().map(Row::len).collect();
        // 600 alone; 300 + 200; 250 + 100.
        assert_eq!(lens, [600, 500, 350]);
        assert_eq!(rows[1].segments(), [0..300, 300..500]);
        assert_eq!(rows[1].ids[300], 4);
        assert_eq!(rows.iter().map(Row::len).sum::<usize>(), 1450);
        // A packed sequence's first token is never a trained target; the rest keep their flags.
        assert!(!rows[1].target_trained(300) && rows[1].target_trained(301) && !rows[1].target_trained(0));
        assert_eq!(rows[1].trained_targets(), 299 + 199);
    }
}
