//! Randomness as Tidal makes it, so a pattern copied from Tidal makes the same choices here.
//!
//! Tidal (1.10, `Sound.Tidal.UI`) has no random state: a random number is a function of time.
//! The time is divided by 300, its fractional part stretched over `[0, 2^29)` and truncated,
//! and that integer goes through one round of a 64-bit xorshift (shifts 13, 17, 5, as
//! Haskell's `Int`: wrapping left shifts, arithmetic right shifts); the result modulo `2^29`,
//! over `2^29`, is the number. Tidal does this on the exact rational time, and so does
//! [`time_to_rand`], in 128-bit integers: no float rounding stands between a time and its
//! number.
//!
//! Mini-notation gives each `?` and each `|` group a seed, counted from 0 in the order the
//! parser meets them, and reads the random stream `seed / 10000` cycles later (Tidal's
//! `rotL (0.0001 * seed) rand`): [`rand_at`]. Tidal's functions (`degradeBy`, `sometimesBy`,
//! `randcat`, `choose`) read it unshifted, which is seed 0.
//!
//! Strudel computes the same definitions in 32-bit JavaScript integers, so its numbers differ
//! from Tidal's (and from these).

use crate::time::Q;

/// `2^29`: the range the fractional time is stretched over.
const RANGE: i128 = 1 << 29;

/// Tidal's `xorwise`: one round of a xorshift on a 64-bit signed integer.
fn xorwise(x: i64) -> i64 {
    let a = (x << 13) ^ x;
    let b = (a >> 17) ^ a;
    (b << 5) ^ b
}

/// Tidal's `timeToIntSeed` of the rational `n / d` (`d > 0`): the fractional part of
/// `n / (300 d)` (truncated toward zero, as Haskell's `properFraction`), times `2^29`,
/// truncated, through [`xorwise`].
fn int_seed(n: i128, d: i128) -> i64 {
    let whole = 300 * d;
    let frac_numer = n % whole;
    // |frac_numer| < whole, so the quotient is below 2^29 in magnitude.
    xorwise((frac_numer * RANGE / whole) as i64)
}

/// Tidal's `intSeedToRand`: the seed modulo `2^29` (Haskell's `mod`, never negative), as a
/// fraction of `2^29`.
fn seed_to_rand(seed: i64) -> f64 {
    (i128::from(seed).rem_euclid(RANGE)) as f64 / RANGE as f64
}

/// Tidal's `timeToRand`: the random number in `[0, 1)` at time `t`.
pub fn time_to_rand(t: Q) -> f64 {
    seed_to_rand(int_seed(i128::from(t.numer()), i128::from(t.denom())))
}

/// The random number mini-notation's `seed`-th random choice reads at `t`: Tidal's
/// `timeToRand (t + 0.0001 * seed)`, exact (seed 0 is [`time_to_rand`]).
pub fn rand_at(t: Q, seed: u32) -> f64 {
    // t + seed / 10000 = (n · 10000 + seed · d) / (d · 10000); every term fits in 128 bits
    // (|n|, d < 2^63), and so does `300 · d · 10000 · 2^29` in `int_seed`.
    let (n, d) = (i128::from(t.numer()), i128::from(t.denom()));
    seed_to_rand(int_seed(n * 10_000 + i128::from(seed) * d, d * 10_000))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::q;

    // Expected values computed from Tidal 1.10's definitions (Sound.Tidal.UI: xorwise,
    // timeToIntSeed, intSeedToRand) in exact rationals with 64-bit Int arithmetic.

    #[test]
    fn whole_cycles_give_tidals_numbers() {
        let expected = [
            0.0,
            0.5177721455693245,
            0.03601731359958649,
            0.8026083502918482,
            0.07203462719917297,
            0.11536062508821487,
            0.6052166428416967,
            0.146883986890316,
        ];
        for (c, want) in expected.iter().enumerate() {
            assert_eq!(time_to_rand(Q::int(c as i64)), *want, "cycle {c}");
        }
    }

    #[test]
    fn fractions_negative_times_and_seeds_give_tidals_numbers() {
        assert_eq!(time_to_rand(q(1, 3)), 0.338086212053895);
        assert_eq!(time_to_rand(q(7, 4)), 0.7870833929628134);
        assert_eq!(time_to_rand(q(-1, 2)), 0.3040562067180872);
        // The seed shifts the stream by seed/10000 cycles: seed 1001 at 0 is 1001/10000.
        assert_eq!(rand_at(Q::ZERO, 1001), 0.8080371115356684);
        assert_eq!(rand_at(Q::ZERO, 1001), time_to_rand(q(1001, 10_000)));
        assert_eq!(rand_at(q(7, 4), 0), time_to_rand(q(7, 4)));
    }

    #[test]
    fn extreme_times_stay_in_range() {
        for t in [
            Q::int(i64::MAX),
            Q::int(i64::MIN + 1),
            q(i64::MAX, i64::MAX - 1),
            q(1, i64::MAX),
        ] {
            for seed in [0, 1, u32::MAX] {
                let r = rand_at(t, seed);
                assert!((0.0..1.0).contains(&r), "{t} {seed}: {r}");
            }
        }
    }
}
