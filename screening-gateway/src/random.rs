//! Randomness from the operating system (`getrandom`): credentials, tokens, salts and jitter.

/// `N` bytes from the operating system's random source.
///
/// # Panics
/// When the OS has no random source to give, which leaves nothing safe to do.
pub fn bytes<const N: usize>() -> [u8; N] {
    let mut buffer = [0u8; N];
    getrandom::fill(&mut buffer).expect("the operating system's random source");
    buffer
}

/// `N` random bytes as lowercase hex (`2 * N` characters).
pub fn hex<const N: usize>() -> String {
    bytes::<N>().iter().map(|b| format!("{b:02x}")).collect()
}

/// A random number in `[0, 1)`, for jitter.
pub fn fraction() -> f64 {
    (u64::from_le_bytes(bytes::<8>()) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_draws_differ_and_fractions_stay_in_range() {
        assert_ne!(bytes::<32>(), bytes::<32>());
        assert_eq!(hex::<32>().len(), 64);
        for _ in 0..1000 {
            let f = fraction();
            assert!((0.0..1.0).contains(&f), "{f}");
        }
    }
}
