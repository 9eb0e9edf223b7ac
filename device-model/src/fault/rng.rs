//! The fault engine's deterministic generator: keyed SplitMix64.
//!
//! Every random decision is a pure function of its key, never the next draw
//! of a stream: the value for (seed, rule index, seq) does not depend on how
//! many other rules exist, which channels ran in between, or in what order
//! the device asked. That is what makes a failing run replay exactly with the
//! same `--seed`, and what keeps a rule's decisions stable when another rule
//! is added to the plan.
//!
//! The algorithm is SplitMix64 (Steele, Lea & Flood, "Fast splittable
//! pseudorandom number generators", OOPSLA 2014; the constants of Vigna's
//! `splitmix64.c`). One SplitMix64 step adds the golden-ratio increment
//! `0x9E3779B97F4A7C15` to the state and passes it through the `mix64`
//! finaliser. A key of several words is absorbed by starting from the seed
//! and, for each word `w`, setting `state = mix64(state + GAMMA) ^ w`; the
//! value is one last `mix64(state + GAMMA)`. A uniform number in `[0, 1)`
//! takes the top 53 bits of the value, divided by 2^53.

/// SplitMix64's increment: 2^64 divided by the golden ratio.
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// Domain word for the trigger decisions of rules (`probability`).
pub(super) const DOMAIN_TRIGGER: u64 = 0x7472_6967_6765_7221; // "trigger!"
/// Domain word for the values an effect draws (`FaultEngine::effect_random`).
pub(super) const DOMAIN_EFFECT: u64 = 0x6566_6665_6374_2121; // "effect!!"

/// SplitMix64's output function (Vigna's `splitmix64.c`, variant 13 of
/// Stafford's mixers).
pub(super) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The 64-bit value keyed by `seed` and the words of `key`.
pub(super) fn keyed(seed: u64, key: &[u64]) -> u64 {
    let state = key
        .iter()
        .fold(seed, |state, &word| mix64(state.wrapping_add(GAMMA)) ^ word);
    mix64(state.wrapping_add(GAMMA))
}

/// A uniform number in `[0, 1)` from the top 53 bits of `value`.
pub(super) fn unit(value: u64) -> f64 {
    const SCALE: f64 = 1.0 / (1u64 << 53) as f64;
    (value >> 11) as f64 * SCALE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix64_matches_the_reference_splitmix64_stream() {
        // splitmix64.c seeded with 0 outputs these first three values.
        let mut state = 0u64;
        let mut next = || {
            state = state.wrapping_add(GAMMA);
            mix64(state)
        };
        assert_eq!(next(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(next(), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(next(), 0x06C4_5D18_8009_454F);
    }

    #[test]
    fn keyed_values_depend_on_every_word_and_on_order() {
        let base = keyed(1, &[2, 3]);
        assert_eq!(base, keyed(1, &[2, 3]));
        assert_ne!(base, keyed(2, &[2, 3]));
        assert_ne!(base, keyed(1, &[3, 2]));
        assert_ne!(base, keyed(1, &[2, 4]));
        assert_ne!(base, keyed(1, &[2, 3, 0]));
    }

    #[test]
    fn unit_stays_in_the_half_open_interval() {
        assert_eq!(unit(0), 0.0);
        assert!(unit(u64::MAX) < 1.0);
        assert!(unit(u64::MAX) > 0.999_999_999);
    }
}
