//! Causal attention on the CPU in one pass per query block, forward and backward (the flex
//! backend's [`super::LmBackend::causal_attention`]).
//!
//! - **Work.** Only the keys a query sees are computed: half the products of the square
//!   `q kᵀ`, and no `[len, len]` score, probability or mask tensor per head is ever stored
//!   (each was a full pass over memory at 512 tokens). The backward pass recomputes the
//!   probabilities from the saved log-sum-exp, as FlashAttention does. Grouped-query heads read
//!   their key-value head in place.
//! - **Arithmetic that depends on nothing but the query.** Every score is a fused multiply-add
//!   chain over the head dimension in order; a query's softmax sums its window in eight lanes
//!   counted from the window's first key, added in a fixed tree; each output, each gradient, is
//!   accumulated over keys (or queries) in increasing order. None of this depends on where the
//!   window sits among the keys, how much padding precedes it, which other rows share the batch,
//!   how the work is split over threads, or the SIMD width: a prompt gives bit-for-bit the same
//!   attention whether it is computed in one prefill, continued from a cached earlier prompt, or
//!   batched with longer prompts — which is what lets acting reuse a cache across turns
//!   ([`crate::model::decode`]) without changing any rollout, and makes results the same on every
//!   x86-64 CPU. The exponential and logarithm are `super::math`'s polynomials for the same
//!   reason (libm's differ between CPUs).
//! - **Speed.** The inner loops are written for the compiler to vectorise; on x86-64 they are
//!   compiled again with AVX2 and FMA, and with AVX-512 ([`multiversion`](mod@multiversion)), and the best copy the
//!   CPU runs is used (fused multiply-adds round once whatever the vector width, and no sum
//!   depends on it, so every copy gives the same bits).

use multiversion::multiversion;
use multiversion::target::match_target;
use rayon::prelude::*;

use super::math::{exp, ln};
use super::KeyRanges;

/// Queries per block (whose scores are computed together).
const QUERY_BLOCK: usize = 64;
/// Below this many multiply-adds a call runs on the calling thread.
const PARALLEL_WORK: usize = 1 << 16;
/// Key columns every padded operand has beyond its keys (the widest register tile), so that a
/// block's scores can be computed in whole tiles.
const PAD_KEYS: usize = 32;

/// The sizes of one attention call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims {
    /// Batch rows.
    pub batch: usize,
    /// Query heads.
    pub heads: usize,
    /// Key-value heads (dividing `heads`).
    pub kv_heads: usize,
    /// Queries per head.
    pub len: usize,
    /// Keys per head (cached ones first).
    pub keys: usize,
    /// Head width.
    pub dim: usize,
}

impl Dims {
    fn rep(&self) -> usize {
        self.heads / self.kv_heads
    }

    /// Keys in a padded operand.
    fn padded(&self) -> usize {
        self.keys + PAD_KEYS
    }
}

/// The output `[batch, heads, len, dim]` and log-sum-exp `[batch, heads, len]` of attention of
/// the pre-scaled `q` over `k`, `v` (see [`super::LmBackend::causal_attention`]).
pub fn forward(q: &[f32], k: &[f32], v: &[f32], d: Dims, keys: &KeyRanges) -> (Vec<f32>, Vec<f32>) {
    let mut out = vec![0.0f32; d.batch * d.heads * d.len * d.dim];
    let mut lse = vec![0.0f32; d.batch * d.heads * d.len];
    // One task per key-value head and the query heads that read it (their keys are transposed
    // once).
    let (group_len, kv_len) = (d.rep() * d.len * d.dim, d.keys * d.dim);
    let group = |(g, (o, l)): (usize, (&mut [f32], &mut [f32]))| {
        let bi = g / d.kv_heads;
        let qs = &q[g * group_len..(g + 1) * group_len];
        forward_group(qs, &k[g * kv_len..(g + 1) * kv_len], &v[g * kv_len..(g + 1) * kv_len], o, l, d, keys, bi);
    };
    if work(d) >= PARALLEL_WORK {
        out.par_chunks_mut(group_len).zip(lse.par_chunks_mut(d.rep() * d.len)).enumerate().for_each(group);
    } else {
        out.chunks_mut(group_len).zip(lse.chunks_mut(d.rep() * d.len)).enumerate().for_each(group);
    }
    (out, lse)
}

/// The gradients `(dq, dk, dv)` of [`forward`] given its output, log-sum-exp and the output's
/// gradient.
#[allow(clippy::too_many_arguments)]
pub fn backward(q: &[f32], k: &[f32], v: &[f32], out: &[f32], lse: &[f32], grad: &[f32], d: Dims, keys: &KeyRanges) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let head_len = d.len * d.dim;
    let kv_len = d.keys * d.dim;
    let mut dq = vec![0.0f32; q.len()];
    let mut dk = vec![0.0f32; k.len()];
    let mut dv = vec![0.0f32; v.len()];
    // One task per key-value head: it owns that head's key and value gradients and the query
    // gradients of the query heads that read it.
    type Grads<'a> = ((&'a mut [f32], &'a mut [f32]), &'a mut [f32]);
    let group = |(g, ((dq, dk), dv)): (usize, Grads<'_>)| {
        let (bi, kh) = (g / d.kv_heads, g % d.kv_heads);
        let (kv, first) = (g * kv_len, (bi * d.heads + kh * d.rep()) * head_len);
        let rows = first..first + d.rep() * head_len;
        let stats = (bi * d.heads + kh * d.rep()) * d.len..(bi * d.heads + (kh + 1) * d.rep()) * d.len;
        let io = GroupIo { q: &q[rows.clone()], out: &out[rows.clone()], grad: &grad[rows], lse: &lse[stats] };
        backward_group(io, &k[kv..kv + kv_len], &v[kv..kv + kv_len], dq, dk, dv, d, keys, bi);
    };
    let rep_len = d.rep() * head_len;
    if work(d) >= PARALLEL_WORK {
        dq.par_chunks_mut(rep_len).zip(dk.par_chunks_mut(kv_len)).zip(dv.par_chunks_mut(kv_len)).enumerate().for_each(group);
    } else {
        dq.chunks_mut(rep_len).zip(dk.chunks_mut(kv_len)).zip(dv.chunks_mut(kv_len)).enumerate().for_each(group);
    }
    (dq, dk, dv)
}

/// Multiply-adds of a call's scores (for choosing between threads and the calling thread).
fn work(d: Dims) -> usize {
    d.batch * d.heads * d.len * d.keys.max(1) * d.dim
}

/// `v` holding at least `n` elements (those past its old length are zero; the rest keep whatever
/// the last block left, which the next block overwrites before reading).
#[inline(always)]
fn grow(v: &mut Vec<f32>, n: usize) {
    if v.len() < n {
        v.resize(n, 0.0);
    }
}

/// `x` (`[rows, cols]`) transposed, `[cols, rows + extra]`, the extra columns zero.
#[inline(always)]
fn transposed(x: &[f32], rows: usize, cols: usize, extra: usize) -> Vec<f32> {
    let width = rows + extra;
    let mut t = vec![0.0f32; cols * width];
    for (r, row) in x[..rows * cols].chunks_exact(cols).enumerate() {
        for (c, &v) in row.iter().enumerate() {
            t[c * width + r] = v;
        }
    }
    t
}

/// One register tile of `C += A · B` (`ADD`) or `C = A · B`: rows `i..i + M`, columns
/// `j..j + N`; `A`'s element `(r, kk)` at `a[r * ars + kk * acs]`. Each element's products are
/// added in `kk` order with fused multiply-adds, starting from its current value (`ADD`) or from
/// 0 — the same value as adding to a zero.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn tile<const M: usize, const N: usize, const ADD: bool>(c: &mut [f32], ldc: usize, a: &[f32], ars: usize, acs: usize, b: &[f32], ldb: usize, i: usize, j: usize, k: usize) {
    let mut acc = [[0.0f32; N]; M];
    if ADD {
        for (r, acc) in acc.iter_mut().enumerate() {
            acc.copy_from_slice(&c[(i + r) * ldc + j..(i + r) * ldc + j + N]);
        }
    }
    if k > 0 {
        // Every index the loop reads, checked once.
        assert!((i + M - 1) * ars + (k - 1) * acs < a.len() && (k - 1) * ldb + j + N <= b.len());
        let (ap, bp) = (a.as_ptr(), b.as_ptr());
        for kk in 0..k {
            // SAFETY: within the bounds asserted above.
            let bk = unsafe { &*(bp.add(kk * ldb + j) as *const [f32; N]) };
            for (r, acc) in acc.iter_mut().enumerate() {
                // SAFETY: as above.
                let av = unsafe { *ap.add((i + r) * ars + kk * acs) };
                for (x, &bv) in acc.iter_mut().zip(bk.iter()) {
                    *x = av.mul_add(bv, *x);
                }
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        c[(i + r) * ldc + j..(i + r) * ldc + j + N].copy_from_slice(acc);
    }
}

/// `C += A · B` (`ADD`) or `C = A · B` over `m` rows and `n` columns with `k` products each, in
/// tiles of `M x N` (then one row at a time, then narrower columns): see [`tile`]. The tile sizes
/// change no result.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn gemm<const M: usize, const N: usize, const ADD: bool>(c: &mut [f32], ldc: usize, a: &[f32], ars: usize, acs: usize, b: &[f32], ldb: usize, m: usize, n: usize, k: usize) {
    let mut j = 0;
    while j < n {
        let w = n - j;
        let mut i = 0;
        if w >= N {
            while i + M <= m {
                tile::<M, N, ADD>(c, ldc, a, ars, acs, b, ldb, i, j, k);
                i += M;
            }
            for i in i..m {
                tile::<1, N, ADD>(c, ldc, a, ars, acs, b, ldb, i, j, k);
            }
            j += N;
        } else if w >= 8 {
            for i in 0..m {
                tile::<1, 8, ADD>(c, ldc, a, ars, acs, b, ldb, i, j, k);
            }
            j += 8;
        } else {
            for i in 0..m {
                tile::<1, 1, ADD>(c, ldc, a, ars, acs, b, ldb, i, j, k);
            }
            j += 1;
        }
    }
}

/// Σ `x`, in eight lanes counted from `x[0]` and added in a fixed tree.
#[inline(always)]
fn lane_sum(x: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        for l in 0..8 {
            lanes[l] += c[l];
        }
    }
    for (l, &r) in chunks.remainder().iter().enumerate() {
        lanes[l] += r;
    }
    ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]))
}

/// The largest of `x` (finite scores: the order of comparisons does not matter).
#[inline(always)]
fn lane_max(x: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; 8];
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        for l in 0..8 {
            lanes[l] = if c[l] > lanes[l] { c[l] } else { lanes[l] };
        }
    }
    for (l, &r) in chunks.remainder().iter().enumerate() {
        lanes[l] = if r > lanes[l] { r } else { lanes[l] };
    }
    lanes.iter().fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m })
}

/// `x · y` in the same lanes and tree as [`lane_sum`].
#[inline(always)]
fn lane_dot(x: &[f32], y: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let n = x.len().min(y.len());
    let full = n / 8 * 8;
    for c in (0..full).step_by(8) {
        for l in 0..8 {
            lanes[l] = x[c + l].mul_add(y[c + l], lanes[l]);
        }
    }
    for l in 0..n - full {
        lanes[l] = x[full + l].mul_add(y[full + l], lanes[l]);
    }
    ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]))
}

/// The queries of one block: their first query and count, the first key they see together
/// (`from`), and the row width of their scores (the keys they see together, rounded up to whole
/// tiles).
struct Block {
    first: usize,
    n: usize,
    from: usize,
    /// Keys from `from` on that exist (at most `stride`).
    keys: usize,
    stride: usize,
}

/// Query blocks of a head: `QUERY_BLOCK` queries each, with the union of their windows.
fn blocks(d: Dims, keys: &KeyRanges, row: usize) -> Vec<Block> {
    (0..d.len)
        .step_by(QUERY_BLOCK)
        .map(|first| {
            let n = QUERY_BLOCK.min(d.len - first);
            let from = (first..first + n).map(|i| keys.window(row, i).0).min().unwrap_or(0);
            let to = (first..first + n).map(|i| keys.window(row, i).1 + 1).max().unwrap_or(0).min(d.keys);
            Block { first, n, from, keys: to - from, stride: (to - from).next_multiple_of(PAD_KEYS) }
        })
        .collect()
}

/// Each query's probabilities in place of its scores (`s`, rows of the block's stride, column 0
/// being key `from`), zero outside its window, with their sums in `sums`; `lse[i]` too when
/// given.
#[inline(always)]
fn softmax_rows(s: &mut [f32], b: &Block, keys: &KeyRanges, row: usize, mut lse: Option<&mut [f32]>, sums: &mut Vec<f32>) {
    sums.clear();
    for a in 0..b.n {
        let i = b.first + a;
        let (lo, hi) = keys.window(row, i);
        let r = &mut s[a * b.stride..(a + 1) * b.stride];
        let (lo, hi) = (lo - b.from, hi - b.from);
        let max = lane_max(&r[lo..=hi]);
        for x in r[lo..=hi].iter_mut() {
            *x = exp(*x - max);
        }
        r[..lo].fill(0.0);
        r[hi + 1..].fill(0.0);
        let sum = lane_sum(&r[lo..=hi]);
        if let Some(lse) = lse.as_deref_mut() {
            lse[i] = max + ln(sum);
        }
        sums.push(sum);
    }
}

/// The attention of one key-value head's group of query heads: their queries `q` (`[rep, len,
/// dim]`), the head's `k`, `v` (`[keys, dim]`), into `out` and `lse`; register tiles chosen for
/// the instruction set.
#[allow(clippy::too_many_arguments)]
#[multiversion(targets("x86_64+avx512f+avx2+fma", "x86_64+avx2+fma"))]
fn forward_group(q: &[f32], k: &[f32], v: &[f32], out: &mut [f32], lse: &mut [f32], d: Dims, keys: &KeyRanges, row: usize) {
    match_target! {
        "x86_64+avx512f" => forward_tiles::<8, 32>(q, k, v, out, lse, d, keys, row),
        _ => forward_tiles::<4, 16>(q, k, v, out, lse, d, keys, row),
    }
}

/// [`forward_group`] with register tiles of `M` by `N`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn forward_tiles<const M: usize, const N: usize>(q: &[f32], k: &[f32], v: &[f32], out: &mut [f32], lse: &mut [f32], d: Dims, keys: &KeyRanges, row: usize) {
    let kt = transposed(k, d.keys, d.dim, PAD_KEYS);
    let head_len = d.len * d.dim;
    let (mut s, mut sums) = (Vec::new(), Vec::new());
    for g in 0..d.rep() {
        let (q, out, lse) = (&q[g * head_len..(g + 1) * head_len], &mut out[g * head_len..(g + 1) * head_len], &mut lse[g * d.len..(g + 1) * d.len]);
        for b in blocks(d, keys, row) {
            // Every score is written before it is read: no zeroing.
            grow(&mut s, b.n * b.stride);
            gemm::<M, N, false>(&mut s, b.stride, &q[b.first * d.dim..], d.dim, 1, &kt[b.from..], d.padded(), b.n, b.stride, d.dim);
            softmax_rows(&mut s, &b, keys, row, Some(&mut *lse), &mut sums);
            let o = &mut out[b.first * d.dim..(b.first + b.n) * d.dim];
            // Over the keys that exist (the probabilities of the padding columns are zero).
            gemm::<M, N, false>(o, d.dim, &s, b.stride, 1, &v[b.from * d.dim..], d.dim, b.n, d.dim, b.keys);
            for (o, &sum) in o.chunks_mut(d.dim).zip(sums.iter()) {
                let inv = 1.0 / sum;
                for x in o.iter_mut() {
                    *x *= inv;
                }
            }
        }
    }
}

/// What the backward pass reads for one key-value head's group of query heads.
struct GroupIo<'a> {
    q: &'a [f32],
    out: &'a [f32],
    grad: &'a [f32],
    lse: &'a [f32],
}

/// The backward pass of one key-value head and the query heads that read it.
#[allow(clippy::too_many_arguments)]
#[multiversion(targets("x86_64+avx512f+avx2+fma", "x86_64+avx2+fma"))]
fn backward_group(io: GroupIo<'_>, k: &[f32], v: &[f32], dq: &mut [f32], dk: &mut [f32], dv: &mut [f32], d: Dims, keys: &KeyRanges, row: usize) {
    match_target! {
        "x86_64+avx512f" => backward_tiles::<8, 32>(io, k, v, dq, dk, dv, d, keys, row),
        _ => backward_tiles::<4, 16>(io, k, v, dq, dk, dv, d, keys, row),
    }
}

/// [`backward_group`] with register tiles of `M` by `N`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn backward_tiles<const M: usize, const N: usize>(io: GroupIo<'_>, k: &[f32], v: &[f32], dq: &mut [f32], dk: &mut [f32], dv: &mut [f32], d: Dims, keys: &KeyRanges, row: usize) {
    let (kt, vt) = (transposed(k, d.keys, d.dim, PAD_KEYS), transposed(v, d.keys, d.dim, PAD_KEYS));
    let head_len = d.len * d.dim;
    let (mut p, mut ds, mut sums) = (Vec::new(), Vec::new(), Vec::new());
    for g in 0..d.rep() {
        let q = &io.q[g * head_len..(g + 1) * head_len];
        let dout = &io.grad[g * head_len..(g + 1) * head_len];
        let out = &io.out[g * head_len..(g + 1) * head_len];
        let lse = &io.lse[g * d.len..(g + 1) * d.len];
        let dq = &mut dq[g * head_len..(g + 1) * head_len];
        for b in blocks(d, keys, row) {
            grow(&mut p, b.n * b.stride);
            grow(&mut ds, b.n * b.stride);
            // The probabilities, recomputed from the scores and the saved log-sum-exp.
            gemm::<M, N, false>(&mut p, b.stride, &q[b.first * d.dim..], d.dim, 1, &kt[b.from..], d.padded(), b.n, b.stride, d.dim);
            sums.clear();
            for a in 0..b.n {
                let i = b.first + a;
                let (lo, hi) = keys.window(row, i);
                let r = &mut p[a * b.stride..(a + 1) * b.stride];
                let (lo, hi) = (lo - b.from, hi - b.from);
                for x in r[lo..=hi].iter_mut() {
                    *x = exp(*x - lse[i]);
                }
                r[..lo].fill(0.0);
                r[hi + 1..].fill(0.0);
                sums.push(lane_dot(&dout[i * d.dim..(i + 1) * d.dim], &out[i * d.dim..(i + 1) * d.dim]));
            }
            // dS = P ∘ (dO Vᵀ - Σ dO ∘ O).
            gemm::<M, N, false>(&mut ds, b.stride, &dout[b.first * d.dim..], d.dim, 1, &vt[b.from..], d.padded(), b.n, b.stride, d.dim);
            for (a, &delta) in sums.iter().enumerate() {
                for (x, &pij) in ds[a * b.stride..(a + 1) * b.stride].iter_mut().zip(&p[a * b.stride..(a + 1) * b.stride]) {
                    *x = pij * (*x - delta);
                }
            }
            // dQ = dS K; dK += dSᵀ Q; dV += Pᵀ dO (summed over the block's queries in order,
            // continuing the earlier blocks' sums).
            // (Over and for the keys that exist: the padding columns of P and dS are zero.)
            gemm::<M, N, false>(&mut dq[b.first * d.dim..], d.dim, &ds, b.stride, 1, &k[b.from * d.dim..], d.dim, b.n, d.dim, b.keys);
            gemm::<M, N, true>(&mut dk[b.from * d.dim..], d.dim, &ds, 1, b.stride, &q[b.first * d.dim..], d.dim, b.keys, d.dim, b.n);
            gemm::<M, N, true>(&mut dv[b.from * d.dim..], d.dim, &p, 1, b.stride, &dout[b.first * d.dim..], d.dim, b.keys, d.dim, b.n);
        }
    }
}
