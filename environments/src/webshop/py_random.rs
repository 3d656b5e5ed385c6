//! Python's `random.seed(n)` + `random.shuffle`, bit for bit (MT19937 from `rand_mt`, seeded
//! with `init_by_array` on the seed's 32-bit words, indices drawn by rejection from
//! `getrandbits(k)` as `_randbelow` does). WebShop orders its goals with
//! `random.seed(233); random.shuffle(goals)`, and its splits are index ranges of that order.

use rand_mt::Mt;

/// Python's `random.Random(seed)` for a non-negative integer seed, as far as `shuffle` needs it.
pub struct PyRandom {
    mt: Mt,
}

impl std::fmt::Debug for PyRandom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PyRandom(..)")
    }
}

impl PyRandom {
    /// `random.seed(seed)`.
    pub fn new(seed: u64) -> Self {
        let key: Vec<u32> = if seed >> 32 == 0 { vec![seed as u32] } else { vec![seed as u32, (seed >> 32) as u32] };
        PyRandom { mt: Mt::new_with_key(key) }
    }

    /// `random.getrandbits(k)` for `1 <= k <= 32`.
    pub fn getrandbits(&mut self, k: u32) -> u32 {
        debug_assert!((1..=32).contains(&k));
        self.mt.next_u32() >> (32 - k)
    }

    /// `random._randbelow(n)` for `0 < n < 2^32`.
    pub fn randbelow(&mut self, n: u32) -> u32 {
        let k = 32 - n.leading_zeros();
        loop {
            let r = self.getrandbits(k);
            if r < n {
                return r;
            }
        }
    }

    /// `random.shuffle(items)`.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.randbelow(i as u32 + 1) as usize;
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected values from CPython 3.11:
    /// `random.seed(233); l = list(range(n)); random.shuffle(l); l[:12]`.
    #[test]
    fn shuffles_as_cpython() {
        let mut r = PyRandom::new(233);
        assert_eq!([r.getrandbits(32), r.getrandbits(32), r.getrandbits(32)], [2931216007, 3446561803, 2698614761]);
        for (n, head) in [
            (10usize, vec![5, 9, 0, 1, 4, 7, 6, 3, 8, 2]),
            (1000, vec![127, 320, 431, 331, 760, 454, 129, 769, 485, 270, 689, 918]),
            (12087, vec![8655, 10304, 6940, 2750, 3667, 2144, 3577, 9548, 8911, 10662, 5267, 3565]),
        ] {
            let mut l: Vec<usize> = (0..n).collect();
            PyRandom::new(233).shuffle(&mut l);
            assert_eq!(l[..head.len()], head[..], "n = {n}");
        }
    }
}
