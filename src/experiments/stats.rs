//! Statistics for A/B experiment results.
//!
//! The first variant of an experiment is the control; every other variant is
//! compared with it. Each variant (an [`Arm`]) has a number of visitors and of
//! conversions. Three figures are computed:
//!
//! * **Chance to beat control** ([`chance_to_beat_control`]): the Bayesian
//!   probability that the variant's true conversion rate is higher than the
//!   control's. Each rate gets a uniform prior, so its posterior is
//!   `Beta(1 + conversions, 1 + visitors - conversions)`, independently per
//!   arm. The probability is computed exactly with the closed form from Evan
//!   Miller, "Formulas for Bayesian A/B testing" (2015), a finite sum with one
//!   term per success (or failure) of one arm. Only when that sum would have
//!   more than 100,000 terms is a normal approximation of the two Betas used
//!   instead; its error there is at most about 3e-4, and about 1e-7 for arms
//!   of similar size (see `EXACT_MAX_TERMS` for the argument).
//! * **p-value** ([`p_value`]): the two-sided pooled two-proportion z-test of
//!   the variant against the control — how likely a difference in conversion
//!   rate at least this large would be if both arms converted at the same
//!   rate. It is the classical frequentist figure; unlike the chance to beat
//!   control it says nothing about the direction or size of the effect.
//! * **SRM p-value** ([`srm_p_value`]): Pearson's chi-square goodness-of-fit
//!   test of the visitors per variant against the split configured by the
//!   weights. A tiny value (the caller alerts below 0.001) means a sample ratio
//!   mismatch: traffic is not being split as configured, so the other figures
//!   cannot be trusted.
//!
//! No function panics, whatever its input. Where the contract says
//! `conversions <= visitors` but an arm breaks it, conversions are clamped to
//! visitors.

use statrs::distribution::{ChiSquared, ContinuousCDF};

/// Visitors and conversions of one variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arm {
    /// Visitors assigned to the variant.
    pub visitors: u64,
    /// Visitors who converted; at most `visitors`.
    pub conversions: u64,
}

/// Longest exact sum `chance_to_beat_control` computes; past it, the normal
/// approximation is used.
///
/// The exact sum has as many terms as the smallest of the four posterior
/// parameters, and at this limit one call takes about a millisecond in release
/// mode. Past it, both posteriors have both parameters above 100,000, so each
/// is close to normal: a Beta's skewness is at most about `2 / sqrt(min(α, β))`
/// ≈ 0.0063, which bounds the error of the normal approximation of the
/// difference by about `0.0063 · φ(0) / 6` ≈ 4e-4. That worst case needs arms
/// of very different sizes (measured: 2.8e-4 for 10^9 visitors with 2·10^8
/// conversions against 500,005 with 100,001); for arms of similar size the
/// skews cancel and the error is about 1e-7 (1.8e-7 for 2,000,000 visitors
/// each with 150,000 vs 151,000 conversions). Either is far below the
/// resolution at which a chance to beat control is read or acted upon.
const EXACT_MAX_TERMS: u64 = 100_000;

/// Beta posterior `Beta(alpha, beta)` of an arm under a uniform prior.
#[derive(Debug, Clone, Copy)]
struct Posterior {
    alpha: u64,
    beta: u64,
}

impl Posterior {
    fn of(arm: Arm) -> Self {
        let conversions = arm.conversions.min(arm.visitors);
        Self {
            alpha: conversions.saturating_add(1),
            beta: (arm.visitors - conversions).saturating_add(1),
        }
    }

    /// Posterior of the failure rate `1 - p`.
    fn flipped(self) -> Self {
        Self {
            alpha: self.beta,
            beta: self.alpha,
        }
    }
}

/// Probability that the variant's conversion rate is higher than the
/// control's, given Beta posteriors with uniform priors (0.5 for equal arms).
///
/// Computed exactly when the smallest of the four Beta parameters is at most
/// 100,000: the relative error is then about 1e-14 for typical counts and
/// stays below 1e-9 up to 10^9 visitors (results near 0 are accurate in
/// absolute rather than relative terms). Otherwise a normal approximation is
/// used, off by at most about 3e-4 and usually by about 1e-7.
pub fn chance_to_beat_control(control: Arm, variant: Arm) -> f64 {
    let (a, b) = (Posterior::of(control), Posterior::of(variant));
    // P(p_b > p_a) = 1 - P(p_a > p_b), and p_b > p_a exactly when the failure
    // rates satisfy 1 - p_a > 1 - p_b: sum over whichever parameter is smallest.
    let shortest = a.alpha.min(a.beta).min(b.alpha).min(b.beta);
    if shortest > EXACT_MAX_TERMS {
        normal_approximation(a, b)
    } else if shortest == b.alpha {
        miller_sum(a, b)
    } else if shortest == a.alpha {
        1.0 - miller_sum(b, a)
    } else if shortest == a.beta {
        miller_sum(b.flipped(), a.flipped())
    } else {
        1.0 - miller_sum(a.flipped(), b.flipped())
    }
}

/// `P(Y > X)` for `X ~ Beta(xa, xb)`, `Y ~ Beta(ya, yb)` by Evan Miller's sum
/// over `i < ya` of `B(xa + i, xb + yb) / ((yb + i) B(1 + i, yb) B(xa, xb))`.
///
/// The first term is `B(xa, xb + yb) / B(xa, xb)`, taken in log space; each
/// next one is the previous times a rational ratio. The running terms are kept
/// relative to the first and rescaled before they could overflow.
fn miller_sum(x: Posterior, y: Posterior) -> f64 {
    let (xa, xb, yb) = (x.alpha as f64, x.beta as f64, y.beta as f64);
    let ln_first = ln_beta_ratio(xa, xb, yb);
    let (mut term, mut sum, mut rescales) = (1.0_f64, 1.0_f64, 0.0);
    for i in 0..y.alpha - 1 {
        let i = i as f64;
        term *= (xa + i) * (yb + i) / ((xa + xb + yb + i) * (1.0 + i));
        sum += term;
        if sum > RESCALE {
            term /= RESCALE;
            sum /= RESCALE;
            rescales += 1.0;
        }
    }
    (ln_first + rescales * RESCALE.ln() + sum.ln())
        .exp()
        .min(1.0)
}

/// Factor by which [`miller_sum`] rescales its terms; a term grows by less
/// than 1e20 per step, so this leaves ample room below `f64::MAX`.
const RESCALE: f64 = 1e200;

/// From this argument on, three terms of Stirling's series for `ln Γ` are
/// exact to double precision.
const STIRLING_FROM: f64 = 100.0;

/// `ln(B(a, s + q) / B(a, s))` for whole numbers `a, s, q >= 1`.
///
/// This is `ln Γ(s+q) + ln Γ(a+s) - ln Γ(a+s+q) - ln Γ(s)`, whose four terms
/// reach 2e10 at 10^9 visitors, so evaluating them separately (as statrs'
/// `ln_beta` does) leaves an absolute error near 1e-6, which becomes the
/// relative error of the result. Instead `s` is first stepped up to
/// [`STIRLING_FROM`] with `Γ(z + 1) = z Γ(z)`, then Stirling's series is
/// arranged so that only quantities of the size of the result, or of
/// `min(a, q)`, are added.
fn ln_beta_ratio(a: f64, mut s: f64, q: f64) -> f64 {
    // The ratio is symmetric in a and q.
    let (h, q) = (a.min(q), a.max(q));
    let mut steps = 0.0;
    while s < STIRLING_FROM {
        steps += (-h * q / ((s + h) * (s + q))).ln_1p();
        s += 1.0;
    }
    // ln Γ(z) - ((z - 1/2) ln z - z + ln(2π)/2) = 1/(12z) - 1/(360z³) + 1/(1260z⁵) - …
    let remainder = |z: f64| {
        let z2 = z * z;
        (1.0 / 12.0 - (1.0 / 360.0 - 1.0 / (1260.0 * z2)) / z2) / z
    };
    steps + (s - 0.5) * (h / s).ln_1p()
        - (s + q - 0.5) * (h / (s + q)).ln_1p()
        - h * (q / (s + h)).ln_1p()
        + (remainder(s + h) - remainder(s) - remainder(s + q + h) + remainder(s + q))
}

/// `P(p_v > p_c)` with each Beta replaced by the normal of equal mean and
/// variance.
fn normal_approximation(control: Posterior, variant: Posterior) -> f64 {
    let moments = |p: Posterior| {
        let (a, b) = (p.alpha as f64, p.beta as f64);
        let n = a + b;
        (a / n, a * b / (n * n * (n + 1.0)))
    };
    let (mean_c, var_c) = moments(control);
    let (mean_v, var_v) = moments(variant);
    let z = (mean_v - mean_c) / (var_c + var_v).sqrt();
    let tail = normal_two_sided_tail(z) / 2.0;
    if z > 0.0 {
        1.0 - tail
    } else {
        tail
    }
}

/// `P(|N(0, 1)| > |z|) = erfc(|z| / √2)`, taken as the chi-square(1) survival
/// function of `z²` (the same number). Neither cancels in the far tail, but
/// statrs 0.19.1's `erfc` is off by up to 1e-10 relative (its interval
/// constants are truncated; fixed upstream in statrs-dev/statrs#412), while
/// its chi-square tail is good to better than 1e-13.
fn normal_two_sided_tail(z: f64) -> f64 {
    ChiSquared::new(1.0).map_or(1.0, |chi_squared| chi_squared.sf(z * z))
}

/// Two-sided p-value of the pooled two-proportion z-test of the variant
/// against the control.
///
/// With pooled rate `p = (c1 + c2) / (n1 + n2)`,
/// `se = sqrt(p (1 - p) (1/n1 + 1/n2))` and `z = (c2/n2 - c1/n1) / se`, the
/// p-value is `2 (1 - Φ(|z|)) = erfc(|z| / √2)`, computed as a survival
/// function so that it keeps its precision far into the tail (down to about
/// 1e-300). `None` when either arm has no visitors; `1.0` when `se` is 0
/// (both rates 0 or both 1).
pub fn p_value(control: Arm, variant: Arm) -> Option<f64> {
    if control.visitors == 0 || variant.visitors == 0 {
        return None;
    }
    let (n1, n2) = (control.visitors as f64, variant.visitors as f64);
    let c1 = control.conversions.min(control.visitors) as f64;
    let c2 = variant.conversions.min(variant.visitors) as f64;
    let pooled = (c1 + c2) / (n1 + n2);
    let pooled_failures = ((n1 - c1) + (n2 - c2)) / (n1 + n2);
    let se = (pooled * pooled_failures * (1.0 / n1 + 1.0 / n2)).sqrt();
    if se == 0.0 {
        return Some(1.0);
    }
    Some(normal_two_sided_tail((c2 / n2 - c1 / n1) / se))
}

/// Sample-ratio-mismatch p-value: Pearson's chi-square goodness-of-fit test of
/// the visitors per variant against the split given by `weights` (normalized
/// by their sum), with `k - 1` degrees of freedom for `k` variants.
///
/// If the slices differ in length only the first `min(len)` variants are
/// compared, which is still a valid test of how traffic splits among them.
/// Returns `1.0` (no evidence of mismatch) when fewer than two variants are
/// compared, when there are no visitors, or when the weights give no valid
/// expected split (a weight that is zero, negative, NaN or infinite, or
/// weights whose sum overflows).
pub fn srm_p_value(visitors: &[u64], weights: &[f64]) -> f64 {
    let k = visitors.len().min(weights.len());
    let (visitors, weights) = (&visitors[..k], &weights[..k]);
    let total: f64 = visitors.iter().map(|&v| v as f64).sum();
    if k < 2 || total == 0.0 {
        return 1.0;
    }
    let weight_sum: f64 = weights.iter().sum();
    let statistic: Option<f64> = visitors
        .iter()
        .zip(weights)
        .map(|(&observed, &weight)| {
            let expected = total * (weight / weight_sum);
            (expected.is_finite() && expected > 0.0)
                .then(|| (observed as f64 - expected).powi(2) / expected)
        })
        .sum();
    match (statistic, ChiSquared::new((k - 1) as f64)) {
        (Some(statistic), Ok(chi_squared)) => chi_squared.sf(statistic),
        _ => 1.0,
    }
}

#[cfg(test)]
mod tests {
    //! Expected values come from Python (scipy 1.17.1, mpmath 1.4.1), never
    //! from this module. Helpers used in the comments:
    //!
    //! * `chance(nA, cA, nB, cB)`: `mpmath.quad` at 40 digits of
    //!   `pdf_B(x) * cdf_A(x)` over `[0, 1]`, split at the mean of B ± k sd,
    //!   with `pdf_B` the `Beta(cB + 1, nB - cB + 1)` density and `cdf_A` the
    //!   regularized incomplete beta `I_x(cA + 1, nA - cA + 1)` by Lentz's
    //!   continued fraction at 40 digits. `chance_c` is the same integral
    //!   taken the other way round, `pdf_A(x) * (1 - cdf_B(x))` split around
    //!   the mean of A, for a control much narrower than the variant. Every
    //!   value was cross-checked with `scipy.integrate.quad(lambda x:
    //!   stats.beta(aB, bB).pdf(x) * stats.beta(aA, bA).cdf(x), ...)` (float
    //!   parameters), agreeing to 4e-14 or better, and with Evan Miller's sum
    //!   evaluated term by term with `mpmath.loggamma` at 40 digits.
    //! * `ztest(n1, c1, n2, c2)`: in mpmath at 40 digits,
    //!   `p = (c1 + c2) / (n1 + n2)`, `se = sqrt(p (1 - p) (1/n1 + 1/n2))`,
    //!   `z = (c2/n2 - c1/n1) / se`, `mpmath.erfc(abs(z) / sqrt(2))`; agrees
    //!   with `2 * scipy.stats.norm.sf(abs(z))`.
    //! * `chisq(obs, w)`: `scipy.stats.chisquare(obs, [sum(obs) * x / sum(w)
    //!   for x in w]).pvalue`.
    use super::*;

    fn arm(visitors: u64, conversions: u64) -> Arm {
        Arm {
            visitors,
            conversions,
        }
    }

    fn assert_close(actual: f64, expected: f64, relative: f64) {
        let error = ((actual - expected) / expected).abs();
        assert!(
            error <= relative,
            "{actual:e} vs expected {expected:e}: relative error {error:e}"
        );
    }

    fn assert_within(actual: f64, expected: f64, absolute: f64) {
        let error = (actual - expected).abs();
        assert!(
            error <= absolute,
            "{actual:e} vs expected {expected:e}: absolute error {error:e}"
        );
    }

    #[test]
    fn chance_small_counts() {
        // chance(100, 10, 100, 15)
        assert_close(
            chance_to_beat_control(arm(100, 10), arm(100, 15)),
            0.8532837899339661,
            1e-9,
        );
        // chance(1000, 50, 900, 30): sums over the variant's successes.
        assert_close(
            chance_to_beat_control(arm(1000, 50), arm(900, 30)),
            0.036097495911463835,
            1e-9,
        );
    }

    #[test]
    fn chance_equal_arms_is_one_half() {
        for a in [arm(100, 10), arm(1000, 0), arm(1000, 1000), arm(0, 0)] {
            assert_within(chance_to_beat_control(a, a), 0.5, 1e-12);
        }
        // Past the exact limit too.
        let big = arm(2_000_000, 1_000_000);
        assert_within(chance_to_beat_control(big, big), 0.5, 1e-12);
    }

    #[test]
    fn chance_zero_conversions() {
        // chance(1000, 0, 1000, 3)
        assert_close(
            chance_to_beat_control(arm(1000, 0), arm(1000, 3)),
            0.9376873594218399,
            1e-9,
        );
    }

    #[test]
    fn chance_all_converted() {
        // chance(500, 500, 500, 490): sums over the control's failures.
        assert_close(
            chance_to_beat_control(arm(500, 500), arm(500, 490)),
            0.00046193262335906057,
            1e-9,
        );
        // chance(500, 490, 500, 500): sums over the variant's failures.
        assert_close(
            chance_to_beat_control(arm(500, 490), arm(500, 500)),
            0.999538067376641,
            1e-9,
        );
    }

    #[test]
    fn chance_with_empty_control_is_variant_mean() {
        // Against a uniform control, P(U < p) = E[p] = 16 / 102; chance(0, 0, 100, 15)
        // gives 0.1568627450980392 as well.
        assert_close(
            chance_to_beat_control(arm(0, 0), arm(100, 15)),
            16.0 / 102.0,
            1e-9,
        );
    }

    #[test]
    fn chance_exact_at_a_billion_visitors() {
        // chance(10**9, 1000, 10**9, 1100)
        assert_close(
            chance_to_beat_control(arm(1_000_000_000, 1000), arm(1_000_000_000, 1100)),
            0.985444725441599,
            1e-9,
        );
        // chance(10**9, 50000, 10**9, 50300): 50,001 terms.
        assert_close(
            chance_to_beat_control(arm(1_000_000_000, 50_000), arm(1_000_000_000, 50_300)),
            0.8282525561317201,
            1e-9,
        );
    }

    #[test]
    fn chance_normal_approximation() {
        // chance(2_000_000, 150_000, 2_000_000, 151_000); alike arms, error 1.8e-7.
        assert_within(
            chance_to_beat_control(arm(2_000_000, 150_000), arm(2_000_000, 151_000)),
            0.9709812392539527,
            1e-6,
        );
        // chance_c(10**9, 2 * 10**8, 500_005, 100_001): just past the limit with
        // very unequal arms, the worst case; error 2.8e-4 (see EXACT_MAX_TERMS).
        assert_within(
            chance_to_beat_control(arm(1_000_000_000, 200_000_000), arm(500_005, 100_001)),
            0.5005637629090461,
            5e-4,
        );
    }

    #[test]
    fn chance_swapping_arms_gives_the_complement() {
        let pairs = [
            (arm(100, 10), arm(100, 15)),
            (arm(1000, 50), arm(900, 30)),
            (arm(500, 500), arm(500, 490)),
            (arm(0, 0), arm(7, 3)),
            (arm(3_000_000, 200_000), arm(2_000_000, 140_000)),
        ];
        for (a, b) in pairs {
            let sum = chance_to_beat_control(a, b) + chance_to_beat_control(b, a);
            assert_within(sum, 1.0, 1e-12);
        }
    }

    #[test]
    fn chance_degenerate_inputs() {
        // Conversions above visitors are clamped to visitors.
        assert_eq!(
            chance_to_beat_control(arm(100, 500), arm(100, 50)),
            chance_to_beat_control(arm(100, 100), arm(100, 50)),
        );
        // Extreme counts neither panic nor leave [0, 1].
        let max = u64::MAX;
        for (a, b) in [
            (arm(max, 0), arm(max, 5)),
            (arm(max, max), arm(max, max - 5)),
            (arm(max, max / 2), arm(max, max / 2 + 1)),
            (arm(max, 0), arm(0, 0)),
            (arm(1, 1), arm(max, 0)),
        ] {
            let chance = chance_to_beat_control(a, b);
            assert!((0.0..=1.0).contains(&chance), "{a:?} {b:?}: {chance}");
        }
    }

    #[test]
    fn p_value_matches_pooled_z_test() {
        let cases = [
            // ztest(100, 10, 100, 15)
            ((100, 10, 100, 15), 0.28504940740261275),
            // ztest(1000, 0, 1000, 3)
            ((1000, 0, 1000, 3), 0.08303324629912974),
            // ztest(1000, 990, 1200, 1200)
            ((1000, 990, 1200, 1200), 0.0005165934213586354),
            // ztest(2_000_000, 150_000, 2_000_000, 151_000)
            (
                (2_000_000, 150_000, 2_000_000, 151_000),
                0.05803728760262788,
            ),
            // ztest(10_000, 1000, 10_000, 1500): 1 - Φ(|z|) would round to 0.
            ((10_000, 1000, 10_000, 1500), 1.1282263028690691e-26),
        ];
        for ((n1, c1, n2, c2), expected) in cases {
            let p = p_value(arm(n1, c1), arm(n2, c2)).unwrap();
            assert_close(p, expected, 1e-9);
            // The test is symmetric in its arms.
            assert_eq!(p_value(arm(n2, c2), arm(n1, c1)), Some(p));
        }
    }

    #[test]
    fn p_value_degenerate_inputs() {
        assert_eq!(p_value(arm(100, 10), arm(100, 10)), Some(1.0));
        // se == 0: both rates 0, both rates 1.
        assert_eq!(p_value(arm(100, 0), arm(50, 0)), Some(1.0));
        assert_eq!(p_value(arm(100, 100), arm(50, 50)), Some(1.0));
        // No visitors in an arm.
        assert_eq!(p_value(arm(0, 0), arm(100, 10)), None);
        assert_eq!(p_value(arm(100, 10), arm(0, 0)), None);
        assert_eq!(p_value(arm(0, 0), arm(0, 0)), None);
        // Conversions above visitors are clamped to visitors.
        assert_eq!(
            p_value(arm(100, 500), arm(100, 50)),
            p_value(arm(100, 100), arm(100, 50)),
        );
        let p = p_value(arm(u64::MAX, 0), arm(u64::MAX, u64::MAX)).unwrap();
        assert!((0.0..=1.0).contains(&p));
    }

    #[test]
    fn srm_two_variants() {
        // chisq([5000, 4700], [1, 1]): a 6% gap on 9,700 visitors is not yet
        // below the 0.001 alert threshold.
        let p = srm_p_value(&[5000, 4700], &[0.5, 0.5]);
        assert_close(p, 0.002318781454334581, 1e-9);
        assert!(p > 0.001);
        // chisq([5000, 4500], [1, 1]): a clear mismatch.
        let p = srm_p_value(&[5000, 4500], &[0.5, 0.5]);
        assert_close(p, 2.899088282877562e-07, 1e-9);
        assert!(p < 0.001);
        // chisq([5000, 4980], [1, 1]): no mismatch.
        assert_close(
            srm_p_value(&[5000, 4980], &[1.0, 1.0]),
            0.841323932165614,
            1e-9,
        );
        // chisq([120, 80], [0.6, 0.4]): observed equals expected.
        assert_within(srm_p_value(&[120, 80], &[0.6, 0.4]), 1.0, 1e-12);
        // chisq([1_000_000, 0], [1, 1]): underflows to 0.
        assert_eq!(srm_p_value(&[1_000_000, 0], &[1.0, 1.0]), 0.0);
    }

    #[test]
    fn srm_three_variants_with_unequal_weights() {
        // chisq([2000, 5000, 3100], [0.2, 0.5, 0.3])
        assert_close(
            srm_p_value(&[2000, 5000, 3100], &[0.2, 0.5, 0.3]),
            0.31502114622043514,
            1e-9,
        );
        // chisq([2000, 5000, 3300], [0.2, 0.5, 0.3]); weights need not sum to 1.
        for weights in [[0.2, 0.5, 0.3], [2.0, 5.0, 3.0]] {
            assert_close(
                srm_p_value(&[2000, 5000, 3300], &weights),
                3.738747669737504e-05,
                1e-9,
            );
        }
    }

    #[test]
    fn srm_degenerate_inputs() {
        assert_eq!(srm_p_value(&[], &[]), 1.0);
        assert_eq!(srm_p_value(&[5000], &[1.0]), 1.0);
        assert_eq!(srm_p_value(&[0, 0], &[0.5, 0.5]), 1.0);
        // Lengths differ: only the common prefix is compared.
        let prefix = srm_p_value(&[5000, 4500], &[1.0, 1.0]);
        assert_eq!(srm_p_value(&[5000, 4500, 7], &[1.0, 1.0]), prefix);
        assert_eq!(srm_p_value(&[5000, 4500], &[1.0, 1.0, 1.0]), prefix);
        assert_eq!(srm_p_value(&[5000, 4500], &[1.0]), 1.0);
        // Weights that give no valid expected split.
        for weights in [
            [0.0, 1.0],
            [-1.0, 2.0],
            [f64::NAN, 1.0],
            [f64::INFINITY, 1.0],
            [f64::MAX, f64::MAX],
        ] {
            assert_eq!(srm_p_value(&[5000, 4500], &weights), 1.0, "{weights:?}");
        }
        assert_eq!(srm_p_value(&[u64::MAX, u64::MAX], &[1.0, 1.0]), 1.0);
    }
}
