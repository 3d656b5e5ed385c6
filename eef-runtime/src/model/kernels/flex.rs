//! Single-pass CPU kernels for burn's flex backend (f32; other types use the reference
//! compositions). Large tensors are processed in parallel on rayon's pool, which flex's matrix
//! products share; small ones (decoding a token) on the calling thread, where handing work to
//! the pool would cost more than the work. Sums run in a fixed order, so results do not depend
//! on the number of threads.

use burn::tensor::{DType, Shape, TensorData, TensorMetadata};
use burn_flex::{Flex, FlexTensor};
use rayon::prelude::*;

use super::{reference, LmBackend};

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

/// The `i`-th `chunk`-long piece of `s`, `len` long (the last piece may be shorter).
fn piece(s: &[f32], i: usize, chunk: usize, len: usize) -> &[f32] {
    &s[i * chunk..i * chunk + len]
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// The length of the last dimension when `shape` ends in a square `[len, len]`.
fn square_side(shape: &Shape) -> Option<usize> {
    let dims = shape.as_slice();
    let t = *dims.last()?;
    (dims.len() >= 2 && dims[dims.len() - 2] == t && t > 0).then_some(t)
}

impl LmBackend for Flex {
    fn swiglu(gate: FlexTensor, up: FlexTensor) -> FlexTensor {
        let shape = gate.shape();
        let (Some(g), Some(u)) = (f32_contiguous(&gate).filter(|_| up.shape() == shape), f32_contiguous(&up)) else {
            return reference::swiglu::<Flex>(gate, up);
        };
        let (g, u) = (slice(&g), slice(&u));
        let mut out = vec![0.0f32; shape.num_elements()];
        for_chunks(&mut out, CHUNK, |i, o| {
            let (g, u) = (piece(g, i, CHUNK, o.len()), piece(u, i, CHUNK, o.len()));
            for ((o, &g), &u) in o.iter_mut().zip(g).zip(u) {
                *o = g * sigmoid(g) * u;
            }
        });
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
            let (g, u, dy) = (piece(g, i, CHUNK, len), piece(u, i, CHUNK, len), piece(dy, i, CHUNK, len));
            for j in 0..len {
                let s = sigmoid(g[j]);
                du[j] = dy[j] * g[j] * s;
                dg[j] = dy[j] * u[j] * s * (1.0 + g[j] * (1.0 - s));
            }
        });
        [tensor(dg, shape.clone()), tensor(du, shape)]
    }

    fn causal_softmax(scores: FlexTensor) -> FlexTensor {
        let shape = scores.shape();
        let (Some(t), Some(s)) = (square_side(&shape), f32_contiguous(&scores)) else {
            return reference::causal_softmax::<Flex>(scores);
        };
        let s = slice(&s);
        let mut out = vec![0.0f32; shape.num_elements()];
        for_chunks(&mut out, t, |r, p| {
            let seen = r % t + 1;
            softmax_window(&piece(s, r, t, t)[..seen], &mut p[..seen]);
        });
        tensor(out, shape)
    }

    fn padded_causal_softmax(scores: FlexTensor, start: usize, pads: &[usize]) -> FlexTensor {
        let shape = scores.shape();
        let &[b, h, t, s] = shape.as_slice() else { return reference::padded_causal_softmax::<Flex>(scores, start, pads) };
        let fits = s == start + t && t > 0 && (pads.is_empty() || pads.len() == b);
        let Some(x) = f32_contiguous(&scores).filter(|_| fits) else {
            return reference::padded_causal_softmax::<Flex>(scores, start, pads);
        };
        let x = slice(&x);
        let mut out = vec![0.0f32; shape.num_elements()];
        for_chunks(&mut out, s, |r, p| {
            let pad = pads.get(r / (h * t)).copied().unwrap_or(0);
            let (lo, hi) = super::visible_keys(start, r % t, pad);
            softmax_window(&piece(x, r, s, s)[lo..=hi], &mut p[lo..=hi]);
        });
        tensor(out, shape)
    }

    fn causal_softmax_backward(probs: FlexTensor, grad: FlexTensor) -> FlexTensor {
        let shape = probs.shape();
        let (Some(t), Some(p), Some(g)) = (square_side(&shape).filter(|_| grad.shape() == shape), f32_contiguous(&probs), f32_contiguous(&grad)) else {
            return reference::causal_softmax_backward::<Flex>(probs, grad);
        };
        let (p, g) = (slice(&p), slice(&g));
        let mut out = vec![0.0f32; shape.num_elements()];
        for_chunks(&mut out, t, |r, ds| {
            let seen = r % t + 1;
            let (p, g) = (&piece(p, r, t, t)[..seen], &piece(g, r, t, t)[..seen]);
            let dot: f32 = p.iter().zip(g).map(|(p, g)| p * g).sum();
            for ((ds, &p), &g) in ds[..seen].iter_mut().zip(p).zip(g) {
                *ds = p * (g - dot);
            }
        });
        tensor(out, shape)
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
        // Rows are `vocab` long: parallel by rows once the logits are large.
        let each = |r: usize, o: &mut f32| {
            let row = piece(l, r, v, v);
            *o = log_sum_exp(row) - row[ids[r]];
        };
        if n * v >= PARALLEL_MIN {
            out.par_iter_mut().enumerate().for_each(|(r, o)| each(r, o));
        } else {
            out.iter_mut().enumerate().for_each(|(r, o)| each(r, o));
        }
        tensor(out, Shape::new([n]))
    }

    fn cross_entropy_backward(logits: FlexTensor, targets: FlexTensor, grad: FlexTensor) -> FlexTensor {
        let shape = logits.shape();
        let (Some((n, v)), Some(l), Some(g)) = (matrix(&shape), f32_contiguous(&logits), f32_contiguous(&grad)) else {
            return reference::cross_entropy_backward::<Flex>(logits, targets, grad);
        };
        let Some(ids) = token_ids(&targets, n, v).filter(|_| grad.shape().num_elements() == n) else {
            return reference::cross_entropy_backward::<Flex>(logits, targets, grad);
        };
        let (l, g) = (slice(&l), slice(&g));
        let mut out = vec![0.0f32; n * v];
        for_chunks(&mut out, v, |r, d| {
            let row = piece(l, r, v, v);
            let (lse, gr) = (log_sum_exp(row), g[r]);
            for (d, &x) in d.iter_mut().zip(row) {
                *d = (x - lse).exp() * gr;
            }
            d[ids[r]] -= gr;
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
        for_chunks(&mut out, d, |r, y| {
            let x = piece(xs, r, d, d);
            let inv = inverse_rms(x, eps);
            for ((y, &x), &g) in y.iter_mut().zip(x).zip(gamma) {
                *y = x * inv * g;
            }
        });
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
            for ((dx, x), dy) in dx.chunks_mut(d).zip(x.chunks(d)).zip(dy.chunks(d)) {
                let inv = inverse_rms(x, eps);
                let dot = x.iter().zip(dy).zip(gamma).map(|((x, dy), g)| x * dy * g).sum::<f32>() / d as f32;
                let c = inv * inv * inv * dot;
                for j in 0..d {
                    dx[j] = inv * dy[j] * gamma[j] - x[j] * c;
                    sum[j] += dy[j] * x[j] * inv;
                }
            }
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

/// Softmax of `scores` into `probs` (the visible keys of one query).
fn softmax_window(scores: &[f32], probs: &mut [f32]) {
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f32;
    for (p, &s) in probs.iter_mut().zip(scores) {
        *p = (s - max).exp();
        sum += *p;
    }
    let inv = 1.0 / sum;
    probs.iter_mut().for_each(|p| *p *= inv);
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
    // One piece per (batch, position) row; its table row is shared by the heads.
    for_chunks(&mut out, w, |row, o| {
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

/// `log(Σ exp(row))`, shifted by the row's maximum.
fn log_sum_exp(row: &[f32]) -> f32 {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    max + row.iter().map(|&x| (x - max).exp()).sum::<f32>().ln()
}

/// `1 / sqrt(mean(x²) + eps)` of one row.
fn inverse_rms(x: &[f32], eps: f64) -> f32 {
    let mean = x.iter().map(|x| x * x).sum::<f32>() / x.len() as f32;
    1.0 / (mean + eps as f32).sqrt()
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
    fn causal_softmax_matches_reference() {
        for shape in [[1, 1, 3, 3], [8, 4, 64, 64]] {
            let s = random::<A, 4>(shape, 3);
            check_grads(vec![s], |x| t::<A, 4>(<A as LmBackend>::causal_softmax(p(x[0].clone()))), |x| t::<A, 4>(reference::causal_softmax::<A>(p(x[0].clone()))), "causal softmax");
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
    fn padded_causal_softmax_matches_reference() {
        for (b, h, t, start, pads) in [(2, 2, 4, 0, vec![0, 2]), (3, 4, 5, 6, vec![1, 0, 9]), (2, 2, 1, 7, vec![]), (4, 4, 64, 0, vec![])] {
            let scores = random::<Flex, 4>([b, h, t, start + t], 11);
            let got = t4(<Flex as LmBackend>::padded_causal_softmax(p(scores.clone()), start, &pads));
            let expected = t4(reference::padded_causal_softmax::<Flex>(p(scores), start, &pads));
            close(got, expected, &format!("padded causal softmax {b}x{h}x{t}, start {start}, pads {pads:?}"));
        }
    }

    fn t4(p: burn::tensor::ops::FloatTensor<Flex>) -> Tensor<Flex, 4> {
        t(p)
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
