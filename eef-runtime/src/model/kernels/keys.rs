//! Which keys each attention query sees: [`KeyRanges`].

/// The keys each query of an attention call sees: query `i` of batch row `r` sits at column
/// `start + i` of the keys (`start` keys were cached before this call) and sees the keys
/// `lo(r, i) ..= start + i` — causal attention whose window begins at 0, after a row's left
/// padding, or at the first token of a packed sequence.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyRanges {
    /// Keys cached before the queries.
    pub start: usize,
    /// Queries per row.
    pub len: usize,
    /// Per row and query, the first visible key (`rows * len` entries; empty: every query's
    /// window begins at key 0).
    lo: Vec<u32>,
}

impl KeyRanges {
    /// Plain causal attention of `len` queries after `start` cached keys.
    pub fn causal(start: usize, len: usize) -> Self {
        KeyRanges { start, len, lo: Vec::new() }
    }

    /// Causal attention over left-padded rows: row `r` begins with `pads[r]` padding keys, which
    /// no real query sees (a padding query sees the padding before it: its output is never used,
    /// but a window with no key would be NaN). Empty `pads`: no padding.
    pub fn padded(start: usize, len: usize, pads: &[usize]) -> Self {
        if pads.iter().all(|&p| p == 0) {
            return Self::causal(start, len);
        }
        let lo = pads.iter().flat_map(|&pad| (0..len).map(move |i| if start + i >= pad { pad as u32 } else { 0 })).collect();
        KeyRanges { start, len, lo }
    }

    /// Causal attention within packed sequences: row `r`'s sequences after the first begin at
    /// the offsets `starts[r]` (increasing); a query sees the keys of its own sequence only.
    pub fn packed(len: usize, starts: &[Vec<usize>]) -> Self {
        if starts.iter().all(Vec::is_empty) {
            return Self::causal(0, len);
        }
        let lo = starts
            .iter()
            .flat_map(|s| {
                let mut begin = 0u32;
                let mut next = s.iter().peekable();
                (0..len).map(move |i| {
                    while next.peek().is_some_and(|&&b| b <= i) {
                        begin = *next.next().expect("peeked") as u32;
                    }
                    begin
                })
            })
            .collect();
        KeyRanges { start: 0, len, lo }
    }

    /// Whether every window begins at key 0.
    pub fn is_plain(&self) -> bool {
        self.lo.is_empty()
    }

    /// The visible keys of query `i` of row `r`: `(first, last)`, inclusive.
    pub fn window(&self, r: usize, i: usize) -> (usize, usize) {
        let lo = if self.lo.is_empty() { 0 } else { self.lo[r * self.len + i] as usize };
        (lo, self.start + i)
    }

    /// The rotary position of query `i` of row `r`: its distance from the start of its window's
    /// sequence (after padding, or from its packed sequence's first token).
    pub fn position(&self, r: usize, i: usize) -> usize {
        let (lo, at) = self.window(r, i);
        at - lo
    }

    /// Rows described (1 when every row is alike).
    pub fn rows(&self) -> usize {
        if self.lo.is_empty() {
            1
        } else {
            self.lo.len() / self.len.max(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::KeyRanges;

    #[test]
    fn windows_begin_after_padding_and_at_each_packed_sequence() {
        let p = KeyRanges::padded(2, 3, &[0, 3]);
        assert_eq!((0..3).map(|i| p.window(0, i)).collect::<Vec<_>>(), [(0, 2), (0, 3), (0, 4)]);
        // Row 1: columns 0..3 are padding; query 0 (column 2) is padding and sees 0..=2.
        assert_eq!((0..3).map(|i| p.window(1, i)).collect::<Vec<_>>(), [(0, 2), (3, 3), (3, 4)]);
        assert_eq!(p.position(1, 2), 1);
        let k = KeyRanges::packed(6, &[vec![2, 5], vec![]]);
        assert_eq!((0..6).map(|i| k.window(0, i).0).collect::<Vec<_>>(), [0, 0, 2, 2, 2, 5]);
        assert_eq!((0..6).map(|i| k.position(0, i)).collect::<Vec<_>>(), [0, 1, 0, 1, 2, 0]);
        assert_eq!((0..6).map(|i| k.window(1, i).0).collect::<Vec<_>>(), [0; 6]);
        assert!(KeyRanges::packed(4, &[vec![], vec![]]).is_plain());
    }
}
