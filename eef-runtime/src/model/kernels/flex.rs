//! Single-pass CPU kernels for burn's flex backend (f32; other types use the reference
//! compositions). Large tensors are processed in parallel on rayon's pool, which flex's matrix
//! products share; small ones (decoding a token) on the calling thread, where handing work to
//! the pool would cost more than the work. Sums run in a fixed order, so results do not depend
//! on the number of threads.

use burn::tensor::{DType, Shape, TensorData, TensorMetadata};
use burn_flex::{Flex, FlexTensor};
use rayon::prelude::*;

use multiversion::multiversion;

use super::math::{exp, ln};
use super::{cpu_attention, reference, KeyRanges, LmBackend};

/// Elements per parallel task of the element-wise kernels.
const CHUNK: usize = 1 << 14;
/// Outputs below this many elements are computed on the calling thread.
const PARALLEL_MIN: usize = 1 << 15;
/// Rows per partial sum of RMSNorm's weight gradient.
const ROWS_PER_SUM: usize = 64;

/// `t`'s elements as a contiguous f32 slice owner, or `None` for other types.
fn f32_contiguous(t: &FlexTensor) -> Option<FlexTensor> {
    if t.dtype() != DType::F32 {
        return None;
    }
    Some(if t.as_slice::<f32>().is_some() { t.clone() } else { t.to_contiguous() })
}

fn slice(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>().expect("contiguous f32 tensor")
}

fn tensor(data: Vec<f32>, shape: Shape) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(data, shape))
}

/// Calls `f(i, chunk)` for each `chunk`-long piece `i` of `out`, in parallel when `out` is large.
fn for_chunks<F: Fn(usize, &mut [f32]) + Sync + Send>(out: &mut [f32], chunk: usize, f: F) {
    if out.len() >= PARALLEL_MIN {
        out.par_chunks_mut(chunk).enumerate().for_each(|(i, o)| f(i, o));
    } else {
        out.chunks_mut(chunk).enumerate().for_each(|(i, o)| f(i, o));
    }
}

/// [`for_chunks`] over two outputs of the same length.
fn for_chunks2<F: Fn(usize, &mut [f32], &mut [f32]) + Sync + Send>(a: &mut [f32], b: &mut [f32], chunk: usize, f: F) {
    if a.len() >= PARALLEL_MIN {
        a.par_chunks_mut(chunk).zip(b.par_chunks_mut(chunk)).enumerate().for_each(|(i, (a, b))| f(i, a, b));
    } else {
        a.chunks_mut(chunk).zip(b.chunks_mut(chunk)).enumerate().for_each(|(i, (a, b))| f(i, a, b));
    }
}

/// Calls `f(first_row, block)` for blocks of whole `row`-long rows of `out` (about `CHUNK`
/// elements each), in parallel when `out` is large: many small rows would otherwise be one task
/// each.
fn for_rows<F: Fn(usize, &mut [f32]) + Sync + Send>(out: &mut [f32], row: usize, f: F) {
    let rows = (CHUNK / row.max(1)).max(1);
    for_chunks(out, rows * row, |b, block| f(b * rows, block));
}

/// The `i`-th `chunk`-long piece of `s`, `len` long (the last piece may be shorter).
fn piece(s: &[f32], i: usize, chunk: usize, len: usize) -> &[f32] {
    &s[i * chunk..i * chunk + len]
}

#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// `silu(g) * u` of a chunk.
#[multiversion(targets("x86_64+avx512f+avx2+fma", "x86_64+avx2+fma"))]
fn swiglu_chunk(g: &[f32], u: &[f32], o: &mut [f32]) {
    for ((o, &g), &u) in o.iter_mut().zip(g).zip(u) {
        *o = g * sigmoid(g) * u;
    }
}

/// The gradients of [`swiglu_chunk`] for a chunk.
#[multiversion(targets("x86_64+avx512f+avx2+fma", "x86_64+avx2+fma"))]
fn swiglu_backward_chunk(g: &[f32], u: &[f32], dy: &[f32], dg: &mut [f32], du: &mut [f32]) {
    for j in 0..dg.len() {
        let s = sigmoid(g[j]);
        du[j] = dy[j] * g[j] * s;
        dg[j] = dy[j] * u[j] * s * (1.0 + g[j] * (1.0 - s));
    }
}

/// Each row's `logsumexp(row) - row[target]` (rows of `v` logits).
#[multiversion(targets("x86_64+avx512f+avx2+fma", "x86_64+avx2+fma"))]
fn nll_rows(logits: &[f32], v: usize, ids: &[usize], out: &mut [f32]) {
    for ((o, row), &id) in out.iter_mut().zip(logits.chunks(v)).zip(ids) {
        let (max, sum) = shifted_sum_exp(row, None);
        *o = max + ln(sum) - row[id];
    }
}

/// [`nll_rows`] and, in the same pass, each row's `softmax(row) - onehot(target)` into `grad`.
#[multiversion(targets("x86_64+avx512f+avx2+fma", "x86_64+avx2+fma"))]
fn nll_and_grad_rows(logits: &[f32], v: usize, ids: &[usize], out: &mut [f32], grad: &mut [f32]) {
    for (((o, row), &id), g) in out.iter_mut().zip(logits.chunks(v)).zip(ids).zip(grad.chunks_mut(v)) {
        // `g` gets exp(x - max), then the softmax.
        let (max, sum) = shifted_sum_exp(row, Some(g));
        let inv = 1.0 / sum;
        for g in g.iter_mut() {
            *g *= inv;
        }
        g[id] -= 1.0;
        *o = max + ln(sum) - row[id];
    }
}

impl LmBackend for Flex {
    fn swiglu(gate: FlexTensor, up: FlexTensor) -> FlexTensor {
        let shape = gate.shape();
        let (Some(g), Some(u)) = (f32_contiguous(&gate).filter(|_| up.shape() == shape), f32_contiguous(&up)) else {
            return reference::swiglu::<Flex>(gate, up);
        };
        let (g, u) = (slice(&g), slice(&u));
        let mut out = vec![0.0f32; shape.num_elements()];
        for_chunks(&mut out, CHUNK, |i, o| swiglu_chunk(piece(g, i, CHUNK, o.len()), piece(u, i, CHUNK, o.len()), o));
        tensor(out, shape)
    }

    fn swiglu_backward(gate: FlexTensor, up: FlexTensor, grad: FlexTensor) -> [FlexTensor; 2] {
        let shape = gate.shape();
        let fits = up.shape() == shape && grad.shape() == shape;
        let (Some(g), Some(u), Some(dy)) = (f32_contiguous(&gate).filter(|_| fits), f32_contiguous(&up), f32_contiguous(&grad)) else {
            return reference::swiglu_backward::<Flex>(gate, up, grad);
        };
        let (g, u, dy) = (slice(&g), slice(&u), slice(&dy));
        let n = shape.num_elements();
        let (mut dg, mut du) = (vec![0.0f32; n], vec![0.0f32; n]);
        for_chunks2(&mut dg, &mut du, CHUNK, |i, dg, du| {
            let len = dg.len();
            swiglu_backward_chunk(piece(g, i, CHUNK, len), piece(u, i, CHUNK, len), piece(dy, i, CHUNK, len), dg, du);
        });
        [tensor(dg, shape.clone()), tensor(du, shape)]
    }

    fn causal_attention(q: FlexTensor, k: FlexTensor, v: FlexTensor, keys: &KeyRanges) -> [FlexTensor; 2] {
        let (qs, ks) = (q.shape(), k.shape());
        let (&[b, h, t, d], &[kb, kvh, s, kd]) = (qs.as_slice(), ks.as_slice()) else { return reference::causal_attention::<Flex>(q, k, v, keys) };
        let fits = kb == b && kd == d && kvh > 0 && h % kvh == 0 && v.shape() == ks && s == keys.start + t && t == keys.len && (keys.rows() == 1 || keys.rows() == b);
        let (Some(qc), Some(kc), Some(vc)) = (f32_contiguous(&q).filter(|_| fits), f32_contiguous(&k), f32_contiguous(&v)) else {
            return reference::causal_attention::<Flex>(q, k, v, keys);
        };
        let dims = cpu_attention::Dims { batch: b, heads: h, kv_heads: kvh, len: t, keys: s, dim: d };
        let (out, lse) = cpu_attention::forward(slice(&qc), slice(&kc), slice(&vc), dims, keys);
        [tensor(out, qs), tensor(lse, Shape::new([b, h, t]))]
    }

    fn causal_attention_backward(q: FlexTensor, k: FlexTensor, v: FlexTensor, out: FlexTensor, lse: FlexTensor, grad: FlexTensor, keys: &KeyRanges) -> [FlexTensor; 3] {
        let (qs, ks) = (q.shape(), k.shape());
        let (&[b, h, t, d], &[_, kvh, s, _]) = (qs.as_slice(), ks.as_slice()) else {
            return reference::causal_attention_backward::<Flex>(q, k, v, out, lse, grad, keys);
        };
        let fits = kvh > 0 && h % kvh == 0 && out.shape() == qs && grad.shape() == qs && s == keys.start + t && (keys.rows() == 1 || keys.rows() == b);
        let all = (f32_contiguous(&q).filter(|_| fits), f32_contiguous(&k), f32_contiguous(&v), f32_contiguous(&out), f32_contiguous(&lse), f32_contiguous(&grad));
        let (Some(qc), Some(kc), Some(vc), Some(oc), Some(lc), Some(gc)) = all else {
            return reference::causal_attention_backward::<Flex>(q, k, v, out, lse, grad, keys);
        };
        let dims = cpu_attention::Dims { batch: b, heads: h, kv_heads: kvh, len: t, keys: s, dim: d };
        let (dq, dk, dv) = cpu_attention::backward(slice(&qc), slice(&kc), slice(&vc), slice(&oc), slice(&lc), slice(&gc), dims, keys);
        [tensor(dq, qs), tensor(dk, ks.clone()), tensor(dv, ks)]
    }

    fn rope(x: FlexTensor, heads: usize, cos: FlexTensor, sin: FlexTensor) -> FlexTensor {
        rotate(&x, heads, &cos, &sin, false).unwrap_or_else(|| reference::rope::<Flex>(x, heads, cos, sin))
    }

    fn rope_backward(grad: FlexTensor, heads: usize, cos: FlexTensor, sin: FlexTensor) -> FlexTensor {
        rotate(&grad, heads, &cos, &sin, true).unwrap_or_else(|| reference::rope_backward::<Flex>(grad, heads, cos, sin))
    }

    fn split_heads(x: FlexTensor, heads: usize) -> FlexTensor {
        let shape = x.shape();
        let &[b, t, w] = shape.as_slice() else { return reference::split_heads::<Flex>(x, heads) };
        if heads == 0 || w % heads != 0 {
            return reference::split_heads::<Flex>(x, heads);
        }
        let d = w / heads;
        if t == 1 {
            // One position: the two layouts are the same memory order.
            return x.reshape(Shape::new([b, heads, 1, d]));
        }
        let Some(xs) = f32_contiguous(&x) else { return reference::split_heads::<Flex>(x, heads) };
        let src = slice(&xs);
        let mut out = vec![0.0f32; b * t * w];
        // One piece per (batch, head) block of `len * head_dim` outputs.
        for_chunks(&mut out, t * d, |block, o| {
            let (bi, hi) = (block / heads, block % heads);
            for (ti, o) in o.chunks_mut(d).enumerate() {
                let at = (bi * t + ti) * w + hi * d;
                o.copy_from_slice(&src[at..at + d]);
            }
        });
        tensor(out, Shape::new([b, heads, t, d]))
    }

    fn merge_heads(x: FlexTensor) -> FlexTensor {
        let shape = x.shape();
        let &[b, h, t, d] = shape.as_slice() else { return reference::merge_heads::<Flex>(x) };
        if t == 1 {
            return x.reshape(Shape::new([b, 1, h * d]));
        }
        let Some(xs) = f32_contiguous(&x).filter(|_| h * d > 0) else { return reference::merge_heads::<Flex>(x) };
        let src = slice(&xs);
        let mut out = vec![0.0f32; b * t * h * d];
        // One piece per (batch, position) row of `heads * head_dim` outputs.
        for_chunks(&mut out, h * d, |row, o| {
            let (bi, ti) = (row / t, row % t);
            for (hi, o) in o.chunks_mut(d).enumerate() {
                let at = ((bi * h + hi) * t + ti) * d;
                o.copy_from_slice(&src[at..at + d]);
            }
        });
        tensor(out, Shape::new([b, t, h * d]))
    }

    fn cross_entropy(logits: FlexTensor, targets: FlexTensor) -> FlexTensor {
        let shape = logits.shape();
        let (Some((n, v)), Some(l)) = (matrix(&shape), f32_contiguous(&logits)) else {
            return reference::cross_entropy::<Flex>(logits, targets);
        };
        let Some(ids) = token_ids(&targets, n, v) else { return reference::cross_entropy::<Flex>(logits, targets) };
        let l = slice(&l);
        let mut out = vec![0.0f32; n];
        // Rows are `vocab` long: parallel by blocks of rows once the logits are large.
        let rows = (CHUNK / v).max(1);
        let each = |(b, o): (usize, &mut [f32])| nll_rows(&l[b * rows * v..(b * rows + o.len()) * v], v, &ids[b * rows..b * rows + o.len()], o);
        if n * v >= PARALLEL_MIN {
            out.par_chunks_mut(rows).enumerate().for_each(each);
        } else {
            out.chunks_mut(rows).enumerate().for_each(each);
        }
        tensor(out, Shape::new([n]))
    }

    fn cross_entropy_with_grad(logits: FlexTensor, targets: FlexTensor) -> [FlexTensor; 2] {
        let shape = logits.shape();
        let (Some((n, v)), Some(l)) = (matrix(&shape), f32_contiguous(&logits)) else {
            return reference::cross_entropy_with_grad::<Flex>(logits, targets);
        };
        let Some(ids) = token_ids(&targets, n, v) else { return reference::cross_entropy_with_grad::<Flex>(logits, targets) };
        let l = slice(&l);
        let (mut nll, mut unit) = (vec![0.0f32; n], vec![0.0f32; n * v]);
        let rows = (CHUNK / v).max(1);
        let each = |(b, (o, d)): (usize, (&mut [f32], &mut [f32]))| {
            let first = b * rows;
            nll_and_grad_rows(&l[first * v..(first + o.len()) * v], v, &ids[first..first + o.len()], o, d);
        };
        if n * v >= PARALLEL_MIN {
            nll.par_chunks_mut(rows).zip(unit.par_chunks_mut(rows * v)).enumerate().for_each(each);
        } else {
            nll.chunks_mut(rows).zip(unit.chunks_mut(rows * v)).enumerate().for_each(each);
        }
        [tensor(nll, Shape::new([n])), tensor(unit, shape)]
    }

    fn scale_rows(x: FlexTensor, scale: FlexTensor) -> FlexTensor {
        let shape = x.shape();
        let (Some((n, v)), Some(xs), Some(ss)) = (matrix(&shape), f32_contiguous(&x), f32_contiguous(&scale)) else {
            return reference::scale_rows::<Flex>(x, scale);
        };
        if scale.shape().num_elements() != n {
            return reference::scale_rows::<Flex>(x, scale);
        }
        let (xs, ss) = (slice(&xs), slice(&ss));
        let mut out = vec![0.0f32; n * v];
        for_rows(&mut out, v, |first, o| {
            for (r, (o, x)) in o.chunks_mut(v).zip(xs[first * v..].chunks(v)).enumerate() {
                let scale = ss[first + r];
                for (o, &x) in o.iter_mut().zip(x) {
                    *o = x * scale;
                }
            }
        });
        tensor(out, shape)
    }

    fn rms_norm(x: FlexTensor, gamma: FlexTensor, eps: f64) -> FlexTensor {
        let shape = x.shape();
        let d = shape.as_slice().last().copied().unwrap_or(0);
        let fits = d > 0 && gamma.shape().num_elements() == d;
        let (Some(xs), Some(gs)) = (f32_contiguous(&x).filter(|_| fits), f32_contiguous(&gamma)) else {
            return reference::rms_norm::<Flex>(x, gamma, eps);
        };
        let (xs, gamma) = (slice(&xs), slice(&gs));
        let mut out = vec![0.0f32; shape.num_elements()];
        for_rows(&mut out, d, |first, y| rms_rows(&xs[first * d..first * d + y.len()], gamma, eps, y));
        tensor(out, shape)
    }

    fn rms_norm_backward(x: FlexTensor, gamma: FlexTensor, eps: f64, grad: FlexTensor) -> [FlexTensor; 2] {
        let shape = x.shape();
        let d = shape.as_slice().last().copied().unwrap_or(0);
        let fits = d > 0 && gamma.shape().num_elements() == d && grad.shape() == shape;
        let (Some(xs), Some(gs), Some(dys)) = (f32_contiguous(&x).filter(|_| fits), f32_contiguous(&gamma), f32_contiguous(&grad)) else {
            return reference::rms_norm_backward::<Flex>(x, gamma, eps, grad);
        };
        let gamma_shape = gamma.shape();
        let (xs, gamma, dys) = (slice(&xs), slice(&gs), slice(&dys));
        // One pass over blocks of rows: each block writes its rows of `dx` and returns its
        // partial sum of the weight's gradient; the partials are added in block order.
        let block = d * ROWS_PER_SUM;
        let each = |(dx, (x, dy)): (&mut [f32], (&[f32], &[f32]))| {
            let mut sum = vec![0.0f32; d];
            rms_backward_rows(x, dy, gamma, eps, dx, &mut sum);
            sum
        };
        let mut dx = vec![0.0f32; shape.num_elements()];
        let partials: Vec<Vec<f32>> = if dx.len() >= PARALLEL_MIN {
            dx.par_chunks_mut(block).zip(xs.par_chunks(block).zip(dys.par_chunks(block))).map(each).collect()
        } else {
            dx.chunks_mut(block).zip(xs.chunks(block).zip(dys.chunks(block))).map(each).collect()
        };
        let mut dgamma = vec![0.0f32; d];
        for p in partials {
            dgamma.iter_mut().zip(p).for_each(|(a, b)| *a += b);
        }
        [tensor(dx, shape), tensor(dgamma, gamma_shape)]
    }
}

/// Rotary embeddings of `x` (`[batch, len, heads * head_dim]`) by the tables (`[rows, len,
/// head_dim]`, rows 1 or `batch`), or by the opposite angle when `inverse` (the backward pass);
/// `None` when the kernel does not apply.
fn rotate(x: &FlexTensor, heads: usize, cos: &FlexTensor, sin: &FlexTensor, inverse: bool) -> Option<FlexTensor> {
    let shape = x.shape();
    let (&[b, t, w], &[rows, tt, d]) = (shape.as_slice(), cos.shape().as_slice()) else { return None };
    let fits = heads > 0 && d * heads == w && d % 2 == 0 && tt == t && (rows == 1 || rows == b) && sin.shape() == cos.shape();
    let (xs, cs, ss) = (f32_contiguous(x).filter(|_| fits)?, f32_contiguous(cos)?, f32_contiguous(sin)?);
    let (xs, cs, ss, half) = (slice(&xs), slice(&cs), slice(&ss), d / 2);
    let mut out = vec![0.0f32; b * t * w];
    // Blocks of (batch, position) rows; a row's table row is shared by its heads.
    for_rows(&mut out, w, |first, block| {
        for (r, o) in block.chunks_mut(w).enumerate() {
            let row = first + r;
            let table = if rows == 1 { row % t } else { row };
            let (c, s) = (piece(cs, table, d, d), piece(ss, table, d, d));
            let x = piece(xs, row, w, w);
            for (o, x) in o.chunks_mut(d).zip(x.chunks(d)) {
                for j in 0..half {
                    let (lo, hi) = (j, j + half);
                    if inverse {
                        // g c + (g s) Rᵀ: the rotation by the opposite angle.
                        o[lo] = x[lo] * c[lo] + x[hi] * s[hi];
                        o[hi] = x[hi] * c[hi] - x[lo] * s[lo];
                    } else {
                        o[lo] = x[lo] * c[lo] - x[hi] * s[lo];
                        o[hi] = x[hi] * c[hi] + x[lo] * s[hi];
                    }
                }
            }
        }
    });
    Some(tensor(out, shape))
}

/// `(rows, columns)` of a matrix shape.
fn matrix(shape: &Shape) -> Option<(usize, usize)> {
    match shape.as_slice() {
        &[n, v] if v > 0 => Some((n, v)),
        _ => None,
    }
}

/// `n` token ids below `vocab` from an integer tensor, or `None` (a shape, type or range the
/// reference composition should handle, or report).
fn token_ids(t: &FlexTensor, n: usize, vocab: usize) -> Option<Vec<usize>> {
    if t.shape().num_elements() != n {
        return None;
    }
    let t = if t.is_contiguous() { t.clone() } else { t.to_contiguous() };
    let ids: Vec<i64> = match t.dtype() {
        DType::I64 => t.as_slice::<i64>()?.to_vec(),
        DType::I32 => t.as_slice::<i32>()?.iter().map(|&i| i as i64).collect(),
        _ => return None,
    };
    ids.into_iter().map(|i| usize::try_from(i).ok().filter(|&i| i < vocab)).collect()
}

/// The largest element of `row`, in sixteen lanes.
#[inline(always)]
fn lane_max16(row: &[f32]) -> f32 {
    const L: usize = 16;
    let mut lanes = [f32::NEG_INFINITY; L];
    let mut chunks = row.chunks_exact(L);
    for c in &mut chunks {
        for l in 0..L {
            lanes[l] = if c[l] > lanes[l] { c[l] } else { lanes[l] };
        }
    }
    for (l, &x) in chunks.remainder().iter().enumerate() {
        lanes[l] = if x > lanes[l] { x } else { lanes[l] };
    }
    lanes.iter().fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m })
}

/// The row's maximum and `Σ exp(x - max)` (`log Σ exp(row)` is `max + ln(sum)`): the sum in
/// sixteen lanes counted from the row's start, added in a fixed tree (the same bits on every
/// CPU). With `exps`, each `exp(x - max)` is also written there.
#[inline(always)]
fn shifted_sum_exp(row: &[f32], mut exps: Option<&mut [f32]>) -> (f32, f32) {
    const L: usize = 16;
    let max = lane_max16(row);
    let mut sums = [0.0f32; L];
    let full = row.len() / L * L;
    for c in (0..full).step_by(L) {
        let e: [f32; L] = std::array::from_fn(|l| exp(row[c + l] - max));
        for l in 0..L {
            sums[l] += e[l];
        }
        if let Some(x) = exps.as_deref_mut() {
            x[c..c + L].copy_from_slice(&e);
        }
    }
    for (l, &x) in row[full..].iter().enumerate() {
        let e = exp(x - max);
        sums[l] += e;
        if let Some(x) = exps.as_deref_mut() {
            x[full + l] = e;
        }
    }
    let mut width = L;
    while width > 1 {
        width /= 2;
        for l in 0..width {
            sums[l] += sums[l + width];
        }
    }
    (max, sums[0])
}

/// `Σ x·y` in sixteen lanes counted from the start, added in a fixed tree (the same bits on
/// every CPU and thread count; vectorised, where a plain running sum is not).
#[inline(always)]
fn lane_dot(x: &[f32], y: &[f32]) -> f32 {
    const L: usize = 16;
    let mut lanes = [0.0f32; L];
    let n = x.len().min(y.len());
    let full = n / L * L;
    for c in (0..full).step_by(L) {
        for l in 0..L {
            lanes[l] = x[c + l].mul_add(y[c + l], lanes[l]);
        }
    }
    for l in 0..n - full {
        lanes[l] = x[full + l].mul_add(y[full + l], lanes[l]);
    }
    let mut width = L;
    while width > 1 {
        width /= 2;
        for l in 0..width {
            lanes[l] += lanes[l + width];
        }
    }
    lanes[0]
}

/// `1 / sqrt(mean(x²) + eps)` of one row.
#[inline(always)]
fn inverse_rms(x: &[f32], eps: f64) -> f32 {
    let mean = lane_dot(x, x) / x.len() as f32;
    1.0 / (mean + eps as f32).sqrt()
}

/// RMSNorm of rows of `gamma.len()` values.
#[multiversion(targets("x86_64+avx512f+avx2+fma", "x86_64+avx2+fma"))]
fn rms_rows(x: &[f32], gamma: &[f32], eps: f64, out: &mut [f32]) {
    let d = gamma.len();
    for (y, x) in out.chunks_mut(d).zip(x.chunks(d)) {
        let inv = inverse_rms(x, eps);
        for ((y, &x), &g) in y.iter_mut().zip(x).zip(gamma) {
            *y = x * inv * g;
        }
    }
}

/// RMSNorm's input gradient for rows of `gamma.len()` values, into `dx`, and their part of the
/// weight's gradient added to `sum` row by row.
#[multiversion(targets("x86_64+avx512f+avx2+fma", "x86_64+avx2+fma"))]
fn rms_backward_rows(x: &[f32], dy: &[f32], gamma: &[f32], eps: f64, dx: &mut [f32], sum: &mut [f32]) {
    let d = gamma.len();
    let mut h = vec![0.0f32; d];
    for ((dx, x), dy) in dx.chunks_mut(d).zip(x.chunks(d)).zip(dy.chunks(d)) {
        let inv = inverse_rms(x, eps);
        for ((h, &dy), &g) in h.iter_mut().zip(dy).zip(gamma) {
            *h = dy * g;
        }
        let c = inv * inv * inv * (lane_dot(x, &h) / d as f32);
        for j in 0..d {
            dx[j] = inv * h[j] - x[j] * c;
            sum[j] += dy[j] * x[j] * inv;
        }
    }
}

#[cfg(test)]
mod tests {
    //! Each kernel against its reference composition, forwards and (through autodiff)
    //! backwards, on shapes that exercise the chunking, the single-thread path, and
    //! non-contiguous inputs.

    use burn::backend::Autodiff;
    use burn::prelude::*;
    use burn::tensor::TensorPrimitive;

    use super::super::{reference, LmBackend};
    use burn_flex::Flex;

    type A = Autodiff<Flex>;

    /// Normal noise from this test's own generator (burn's is global, shared by tests running
    /// in parallel).
    fn random<B: Backend, const D: usize>(shape: [usize; D], seed: u64) -> Tensor<B, D> {
        use rand::SeedableRng;
        use rand_distr::Distribution as _;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let normal = rand_distr::StandardNormal;
        let n = shape.iter().product();
        let values: Vec<f32> = (0..n).map(|_| normal.sample(&mut rng)).collect();
        Tensor::from_data(TensorData::new(values, shape), &Default::default())
    }

    fn close<B: Backend, const D: usize>(a: Tensor<B, D>, b: Tensor<B, D>, what: &str) {
        assert_eq!(a.dims(), b.dims(), "{what}: shapes");
        let (a, b) = (a.into_data().to_vec::<f32>().unwrap(), b.into_data().to_vec::<f32>().unwrap());
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert!((x - y).abs() <= 1e-4 * (1.0 + y.abs()), "{what}: element {i}: {x} vs {y}");
        }
    }

    fn p<B: Backend, const D: usize>(t: Tensor<B, D>) -> burn::tensor::ops::FloatTensor<B> {
        t.into_primitive().tensor()
    }

    fn t<B: Backend, const D: usize>(p: burn::tensor::ops::FloatTensor<B>) -> Tensor<B, D> {
        Tensor::from_primitive(TensorPrimitive::Float(p))
    }

    /// Output and input gradients of `fused` and `composed` (both on autodiff) for a random
    /// upstream gradient.
    fn check_grads<const D: usize, const O: usize>(inputs: Vec<Tensor<A, D>>, fused: impl Fn(&[Tensor<A, D>]) -> Tensor<A, O>, composed: impl Fn(&[Tensor<A, D>]) -> Tensor<A, O>, what: &str) {
        let run = |f: &dyn Fn(&[Tensor<A, D>]) -> Tensor<A, O>| {
            let xs: Vec<Tensor<A, D>> = inputs.iter().map(|x| x.clone().detach().require_grad()).collect();
            let out = f(&xs);
            let upstream = random::<A, O>(out.dims(), 99);
            let grads = (out.clone() * upstream).sum().backward();
            let gs: Vec<Tensor<Flex, D>> = xs.iter().map(|x| x.grad(&grads).expect("gradient")).collect();
            (out.inner(), gs)
        };
        let (fo, fg) = run(&fused);
        let (co, cg) = run(&composed);
        close(fo, co, &format!("{what} forward"));
        for (i, (f, c)) in fg.into_iter().zip(cg).enumerate() {
            close(f, c, &format!("{what} gradient {i}"));
        }
    }

    #[test]
    fn swiglu_matches_reference() {
        for shape in [[2, 3, 5], [4, 128, 352]] {
            let (g, u) = (random::<A, 3>(shape, 1), random::<A, 3>(shape, 2));
            check_grads(vec![g, u], |x| t::<A, 3>(<A as LmBackend>::swiglu(p(x[0].clone()), p(x[1].clone()))), |x| t::<A, 3>(reference::swiglu::<A>(p(x[0].clone()), p(x[1].clone()))), "swiglu");
        }
    }

    #[test]
    fn rms_norm_matches_reference() {
        for (rows, d) in [(3, 7), (1000, 128)] {
            let x = random::<A, 2>([rows, d], 4);
            let gamma = random::<A, 1>([d], 5).reshape([1, d]);
            let eps = 1e-5;
            let fused = |x: &[Tensor<A, 2>]| t::<A, 2>(<A as LmBackend>::rms_norm(p(x[0].clone()), p(x[1].clone().reshape([d])), eps));
            let composed = |x: &[Tensor<A, 2>]| t::<A, 2>(reference::rms_norm::<A>(p(x[0].clone()), p(x[1].clone().reshape([d])), eps));
            check_grads(vec![x, gamma], fused, composed, "rms norm");
        }
    }

    #[test]
    fn head_split_and_merge_match_reference() {
        for (b, tl, h, d) in [(2, 1, 4, 8), (3, 5, 2, 4), (8, 128, 4, 32)] {
            let x = random::<A, 3>([b, tl, h * d], 6);
            check_grads(vec![x], |x| t::<A, 4>(<A as LmBackend>::split_heads(p(x[0].clone()), h)), |x| t::<A, 4>(reference::split_heads::<A>(p(x[0].clone()), h)), "split heads");
            let y = random::<A, 4>([b, h, tl, d], 7);
            check_grads(vec![y], |x| t::<A, 3>(<A as LmBackend>::merge_heads(p(x[0].clone()))), |x| t::<A, 3>(reference::merge_heads::<A>(p(x[0].clone()))), "merge heads");
        }
    }

    #[test]
    fn attention_matches_reference_for_every_kind_of_window() {
        use super::super::KeyRanges;
        // (batch, heads, kv heads, queries, cached keys, dim, windows)
        let cases: Vec<(usize, usize, usize, usize, usize, usize, KeyRanges)> = vec![
            (1, 1, 1, 1, 0, 4, KeyRanges::causal(0, 1)),
            (2, 4, 2, 37, 0, 8, KeyRanges::causal(0, 37)),
            (2, 2, 2, 5, 6, 8, KeyRanges::padded(6, 5, &[1, 9])),
            (3, 4, 1, 1, 20, 16, KeyRanges::padded(20, 1, &[0, 4, 19])),
            (2, 4, 2, 70, 0, 32, KeyRanges::packed(70, &[vec![17, 40], vec![]])),
        ];
        for (b, h, kvh, len, start, d, keys) in cases {
            let q = random::<A, 4>([b, h, len, d], 21);
            let k = random::<A, 4>([b, kvh, start + len, d], 22);
            let v = random::<A, 4>([b, kvh, start + len, d], 23);
            let what = format!("attention {b}x{h}/{kvh}x{len}+{start}x{d} {keys:?}");
            let fused = |x: &[Tensor<A, 4>]| t::<A, 4>(<A as LmBackend>::causal_attention(p(x[0].clone()), p(x[1].clone()), p(x[2].clone()), &keys)[0].clone());
            let composed = |x: &[Tensor<A, 4>]| {
                let [out, _] = reference::causal_attention::<A>(p(x[0].clone()), p(x[1].clone()), p(x[2].clone()), &keys);
                t::<A, 4>(out)
            };
            check_grads(vec![q.clone(), k.clone(), v.clone()], fused, composed, &what);
            // The log-sum-exp too.
            let [_, l1] = <Flex as LmBackend>::causal_attention(p(q.clone().inner()), p(k.clone().inner()), p(v.clone().inner()), &keys);
            let [_, l2] = reference::causal_attention::<Flex>(p(q.inner()), p(k.inner()), p(v.inner()), &keys);
            close(t::<Flex, 3>(l1), t::<Flex, 3>(l2), &format!("{what}: log-sum-exp"));
        }
    }

    #[test]
    fn attention_of_a_query_does_not_depend_on_padding_batch_or_cache() {
        use super::super::KeyRanges;
        // One 9-token sequence: alone, left-padded by 5 next to another row, and its last 3
        // queries continued from a cache of the first 6: the same bits.
        let (h, d, n) = (2, 8, 9);
        let q = random::<Flex, 4>([1, h, n, d], 31);
        let k = random::<Flex, 4>([1, h, n, d], 32);
        let v = random::<Flex, 4>([1, h, n, d], 33);
        let alone: Vec<f32> = t::<Flex, 4>(<Flex as LmBackend>::causal_attention(p(q.clone()), p(k.clone()), p(v.clone()), &KeyRanges::causal(0, n))[0].clone()).into_data().to_vec().unwrap();
        let pad = |x: Tensor<Flex, 4>| Tensor::cat(vec![Tensor::cat(vec![random::<Flex, 4>([1, h, 5, d], 34), x.clone()], 2), random::<Flex, 4>([1, h, n + 5, d], 35)], 0);
        let batched = <Flex as LmBackend>::causal_attention(p(pad(q.clone())), p(pad(k.clone())), p(pad(v.clone())), &KeyRanges::padded(0, n + 5, &[5, 0]))[0].clone();
        let batched: Vec<f32> = t::<Flex, 4>(batched).narrow(0, 0, 1).narrow(2, 5, n).into_data().to_vec().unwrap();
        assert_eq!(alone, batched, "padding and another row change nothing");
        let tail = <Flex as LmBackend>::causal_attention(p(q.clone().narrow(2, 6, 3)), p(k), p(v), &KeyRanges::causal(6, 3))[0].clone();
        let tail: Vec<f32> = t::<Flex, 4>(tail).into_data().to_vec().unwrap();
        let want: Vec<f32> = (0..h).flat_map(|hh| alone[(hh * n + 6) * d..(hh * n + 9) * d].to_vec()).collect();
        assert_eq!(tail, want, "continuing from a cache changes nothing");
    }

    #[test]
    fn rope_matches_reference() {
        use crate::model::rope_tables;
        for (b, tl, h, d, per_row) in [(1, 1, 2, 4, false), (3, 5, 2, 8, true), (8, 128, 4, 32, false)] {
            let x = random::<A, 3>([b, tl, h * d], 10);
            let starts: Vec<i64> = if per_row { (0..b as i64).map(|r| 3 * r - 2).collect() } else { vec![7] };
            let (cos, sin) = rope_tables::<A>(&starts, tl, d, 10_000.0, &Default::default());
            let fused = |x: &[Tensor<A, 3>]| t::<A, 3>(<A as LmBackend>::rope(p(x[0].clone()), h, p(cos.clone()), p(sin.clone())));
            let composed = |x: &[Tensor<A, 3>]| t::<A, 3>(reference::rope::<A>(p(x[0].clone()), h, p(cos.clone()), p(sin.clone())));
            check_grads(vec![x], fused, composed, "rope");
        }
    }

    #[test]
    fn cross_entropy_matches_reference() {
        for (n, v) in [(5, 7), (1024, 256)] {
            let logits = random::<A, 2>([n, v], 9);
            let ids: Vec<i64> = (0..n as i64).map(|i| (i * 7919) % v as i64).collect();
            let targets = Tensor::<A, 1, Int>::from_data(TensorData::new(ids, [n]), &Default::default());
            let fused = |x: &[Tensor<A, 2>]| t::<A, 1>(<A as LmBackend>::cross_entropy(p(x[0].clone()), targets.clone().into_primitive()));
            let composed = |x: &[Tensor<A, 2>]| t::<A, 1>(reference::cross_entropy::<A>(p(x[0].clone()), targets.clone().into_primitive()));
            check_grads(vec![logits], fused, composed, "cross entropy");
        }
    }

    #[test]
    fn non_contiguous_inputs_are_read_in_logical_order() {
        let x = random::<Flex, 3>([6, 4, 5], 8).swap_dims(0, 1);
        let expected = t::<Flex, 3>(reference::rms_norm::<Flex>(p(x.clone()), p(Tensor::<Flex, 1>::ones([5], &Default::default())), 1e-5));
        let got = t::<Flex, 3>(<Flex as LmBackend>::rms_norm(p(x), p(Tensor::<Flex, 1>::ones([5], &Default::default())), 1e-5));
        close(got, expected, "rms norm of a transposed input");
    }
}
