//! The exponential and logarithm of the CPU kernels: polynomials of fused multiply-adds, so that
//! they give the same bits on every CPU and in every vectorised copy of a kernel (libm's `expf`
//! and `logf` pick an implementation by CPU), and vectorise.

/// `e^x` within 2 ulp (Cephes' polynomial; the argument clamped to `[-87, 88]`: 0 below,
/// `e^88` above).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const ROUND: f32 = 12_582_912.0; // 1.5 · 2^23: adding it rounds to an integer
    let x = x.clamp(-87.0, 88.0);
    // `t` holds the rounded `n = round(x / ln 2)` in its low mantissa bits (|n| < 2^22), read
    // as an integer below without a float-to-integer conversion (which does not vectorise).
    let t = x.mul_add(LOG2E, ROUND);
    let n = t - ROUND;
    let r = n.mul_add(-LN2_LO, n.mul_add(-LN2_HI, x));
    let mut p = 1.987_569_1e-4f32;
    p = p.mul_add(r, 1.398_199_9e-3);
    p = p.mul_add(r, 8.333_452e-3);
    p = p.mul_add(r, 4.166_579_6e-2);
    p = p.mul_add(r, 1.666_666_5e-1);
    p = p.mul_add(r, 0.5);
    let p = (p * r).mul_add(r, r) + 1.0;
    // 2^n: the exponent field n + 127.
    let two_n = f32::from_bits(t.to_bits().wrapping_sub(ROUND.to_bits()).wrapping_add(127) << 23);
    p * two_n
}

/// `ln x` for a positive, normal `x` to about 1 ulp.
#[inline(always)]
pub fn ln(x: f32) -> f32 {
    let bits = x.to_bits();
    let mut e = ((bits >> 23) & 0xff) as i32 - 127;
    let mut m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
    if m > std::f32::consts::SQRT_2 {
        m *= 0.5;
        e += 1;
    }
    let z = (m - 1.0) / (m + 1.0);
    let z2 = z * z;
    let mut p = 1.0f32 / 11.0;
    p = p.mul_add(z2, 1.0 / 9.0);
    p = p.mul_add(z2, 1.0 / 7.0);
    p = p.mul_add(z2, 1.0 / 5.0);
    p = p.mul_add(z2, 1.0 / 3.0);
    p = p.mul_add(z2, 1.0);
    (e as f32).mul_add(std::f32::consts::LN_2, 2.0 * z * p)
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exponential_and_logarithm_are_accurate() {
        for i in 0..40_000 {
            let x = -87.0 + i as f32 * 0.004374;
            let (got, want) = (exp(x), x.exp());
            assert!((got - want).abs() <= 2.5e-7 * want, "exp({x}) = {got}, want {want}");
        }
        for i in 0..40_000 {
            let x = (1e-30f64 * 1.00345f64.powi(i)) as f32;
            let (got, want) = (ln(x), x.ln());
            assert!((got - want).abs() <= 2.5e-7 * want.abs().max(1.0), "ln({x}) = {got}, want {want}");
        }
    }
}
