//! Token ids with a per-token loss mask.

/// Tokens with a per-token flag: whether predicting this token carries loss.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tokens {
    /// Token ids.
    pub ids: Vec<u32>,
    /// Loss mask per token.
    pub trainable: Vec<bool>,
}

impl Tokens {
    /// Appends `ids`, all with the same flag.
    pub fn push(&mut self, ids: &[u32], trainable: bool) {
        self.ids.extend_from_slice(ids);
        self.trainable.extend(std::iter::repeat_n(trainable, ids.len()));
    }

    /// Appends `ids` with their own flags.
    pub fn extend(&mut self, other: Tokens) {
        self.ids.extend(other.ids);
        self.trainable.extend(other.trainable);
    }

    /// Keeps the last `max` tokens (a dialogue too long for the context loses its beginning).
    pub fn keep_last(mut self, max: usize) -> Self {
        if self.ids.len() > max {
            let cut = self.ids.len() - max;
            self.ids.drain(..cut);
            self.trainable.drain(..cut);
        }
        self
    }

    /// The trainable ids, in order.
    pub fn trained_ids(&self) -> Vec<u32> {
        self.ids.iter().zip(&self.trainable).filter(|(_, t)| **t).map(|(i, _)| *i).collect()
    }
}
