//! Sticky assignment: a visitor's variant is a pure function of the experiment's key and
//! the visitor's id, so every daemon, before and after a restart, puts the same visitor in
//! the same variant without having to remember it. The scheme is GrowthBook's (hash
//! version 2): FNV-1a (32 bits) over the UTF-16 code units of `seed + id`, hashed again
//! over its own decimal digits, taken modulo 10,000 as a point in [0, 1); the variants
//! share [0, 1) by their weights, in order. A visitor moved between two experiments
//! seeded alike would land alike, so each experiment seeds with its own key.

const FNV_OFFSET: u32 = 0x811c_9dc5;
const FNV_PRIME: u32 = 0x0100_0193;

/// FNV-1a over UTF-16 code units, as JavaScript's `charCodeAt` reads a string.
fn fnv1a32(text: &str) -> u32 {
    text.encode_utf16().fold(FNV_OFFSET, |hash, unit| {
        (hash ^ u32::from(unit)).wrapping_mul(FNV_PRIME)
    })
}

/// The visitor's point in [0, 1), in steps of 1/10,000.
pub fn point(seed: &str, visitor: &str) -> f64 {
    let first = fnv1a32(&format!("{seed}{visitor}"));
    f64::from(fnv1a32(&first.to_string()) % 10_000) / 10_000.0
}

/// The variant whose share of [0, 1) holds `point`, the shares laid out by `weights` in
/// order (they sum to 1; a point past the last share, from rounding, takes the last).
pub fn choose(point: f64, weights: &[f64]) -> usize {
    let mut end = 0.0;
    for (index, weight) in weights.iter().enumerate() {
        end += weight;
        if point < end {
            return index;
        }
    }
    weights.len().saturating_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_published_test_vectors() {
        // From the FNV reference (isthe.com/chongo/tech/comp/fnv): FNV-1a 32 of "" and "a".
        assert_eq!(fnv1a32(""), 0x811c_9dc5);
        assert_eq!(fnv1a32("a"), 0xe40c_292c);
        assert_eq!(fnv1a32("ab"), 0x4d25_05ca);
        assert_eq!(fnv1a32("foobar"), 0xbf9c_f968);
    }

    #[test]
    fn points_match_growthbooks_hash_v2() {
        // GrowthBook's SDK test cases (packages/sdk-js/test/cases.json, "hash", version 2):
        // (seed, value) -> point.
        let cases = [
            ("seed", "a", 0.0505),
            ("seed", "b", 0.2696),
            ("foo", "ab", 0.2575),
            ("foo", "def", 0.2019),
            ("89123klj", "8952klfjas09ujkasdf", 0.124),
            ("90850943850283058242805", "123", 0.7516),
            ("()**(%$##$%#$#", "___)((*\":&", 0.0128),
        ];
        for (seed, value, expected) in cases {
            assert_eq!(point(seed, value), expected, "{seed:?} + {value:?}");
        }
    }

    #[test]
    fn variants_share_the_unit_interval_by_weight() {
        let weights = [0.5, 0.3, 0.2];
        assert_eq!(choose(0.0, &weights), 0);
        assert_eq!(choose(0.4999, &weights), 0);
        assert_eq!(choose(0.5, &weights), 1);
        assert_eq!(choose(0.7999, &weights), 1);
        assert_eq!(choose(0.8, &weights), 2);
        assert_eq!(choose(0.9999, &weights), 2);
        // Weights that sum a hair under 1 leave no visitor out.
        assert_eq!(choose(0.9999, &[0.33333, 0.33333, 0.33333]), 2);
    }
}
