//! Seeded random streams and the few distributions the generator needs.
//!
//! Every independent part of a bundle (an eye's anatomy, one lesion type, one OCT frame's speckle)
//! draws from its own ChaCha8 stream derived from the spec's seed and a list of labels.
//! Adding draws to one part therefore never shifts the random numbers of another part.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The random number generator used everywhere in the generator.
pub(crate) type SynthRng = ChaCha8Rng;

/// 64-bit FNV-1a hash: stable across platforms and Rust versions, unlike `DefaultHasher`.
pub(crate) fn fnv1a(bytes: &[u8], mut hash: u64) -> u64 {
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The SplitMix64 finalizer, to spread the bits of a hash.
pub(crate) fn mix64(mut value: u64) -> u64 {
    value = (value ^ (value >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    value = (value ^ (value >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    value ^ (value >> 31)
}

/// Derives a sub-seed from a seed and a list of labels.
pub(crate) fn derive(seed: u64, labels: &[&str]) -> u64 {
    let mut hash = fnv1a(&seed.to_le_bytes(), 0xcbf2_9ce4_8422_2325);
    for label in labels {
        // The separator keeps ["ab", "c"] and ["a", "bc"] apart.
        hash = fnv1a(&[0xff], hash);
        hash = fnv1a(label.as_bytes(), hash);
    }
    mix64(hash)
}

/// A random stream for the part of the bundle named by `labels`.
pub(crate) fn stream(seed: u64, labels: &[&str]) -> SynthRng {
    SynthRng::seed_from_u64(derive(seed, labels))
}

/// A uniform number in `[low, high)`.
pub(crate) fn uniform(rng: &mut SynthRng, low: f64, high: f64) -> f64 {
    low + (high - low) * rng.r#gen::<f64>()
}

/// A standard normal number (Box–Muller; one of the pair is discarded for simplicity).
pub(crate) fn normal(rng: &mut SynthRng) -> f64 {
    let u1 = 1.0 - rng.r#gen::<f64>();
    let u2 = rng.r#gen::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// An integer in `low..=high`.
pub(crate) fn int(rng: &mut SynthRng, low: u32, high: u32) -> u32 {
    if high <= low {
        return low;
    }
    low + (rng.next_u32_below(high - low + 1))
}

/// `true` with probability `p`.
pub(crate) fn chance(rng: &mut SynthRng, p: f64) -> bool {
    rng.r#gen::<f64>() < p
}

/// Extension giving an unbiased bounded integer without `gen_range`'s version-dependent algorithm.
trait BelowExt {
    fn next_u32_below(&mut self, bound: u32) -> u32;
}

impl BelowExt for SynthRng {
    fn next_u32_below(&mut self, bound: u32) -> u32 {
        // Lemire's multiply-shift with rejection: unbiased and stable across crate versions.
        let bound = u64::from(bound.max(1));
        loop {
            let product = u64::from(rand::RngCore::next_u32(self)) * bound;
            let low = product as u32;
            let threshold = (u64::from(u32::MAX) + 1 - bound) % bound;
            if u64::from(low) >= threshold {
                return (product >> 32) as u32;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_label_sensitive() {
        let a: Vec<u32> = (0..4)
            .map(|_| int(&mut stream(7, &["x"]), 0, 1000))
            .collect();
        let mut first = stream(7, &["x"]);
        let mut second = stream(7, &["x"]);
        let mut other = stream(7, &["y"]);
        let first_values: Vec<f64> = (0..8).map(|_| uniform(&mut first, 0.0, 1.0)).collect();
        let second_values: Vec<f64> = (0..8).map(|_| uniform(&mut second, 0.0, 1.0)).collect();
        let other_values: Vec<f64> = (0..8).map(|_| uniform(&mut other, 0.0, 1.0)).collect();
        assert_eq!(first_values, second_values);
        assert_ne!(first_values, other_values);
        assert!(a.iter().all(|v| *v <= 1000));
        assert_ne!(derive(1, &["ab", "c"]), derive(1, &["a", "bc"]));
    }

    #[test]
    fn bounded_integers_stay_in_range() {
        let mut rng = stream(3, &["int"]);
        for _ in 0..1000 {
            let value = int(&mut rng, 5, 9);
            assert!((5..=9).contains(&value));
        }
        assert_eq!(int(&mut rng, 4, 4), 4);
        assert_eq!(int(&mut rng, 4, 2), 4);
    }
}
