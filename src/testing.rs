//! Helpers shared by the unit tests (compiled only for them): a seeded generator.

/// SplitMix64 (Steele, Lea & Flood 2014) as a stream: tiny, fast, and replays exactly from its
/// seed, so a seeded simulation fails or passes the same way on every machine.
pub(crate) struct SplitMix(pub(crate) u64);

impl SplitMix {
    pub(crate) fn next(&mut self) -> u64 {
        let out = crate::interleave::merge::splitmix64(self.0);
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        out
    }

    /// Uniform in `0..n` (`n` > 0; the modulo bias is irrelevant at test sizes).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// A Bernoulli(p) draw.
    pub(crate) fn hit(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 * (1.0 / (1u64 << 53) as f64) < p
    }
}

#[cfg(test)]
mod tests {
    use super::SplitMix;

    #[test]
    fn the_reference_stream() {
        // Seed 1234567, computed independently in Python from the published algorithm.
        let mut r = SplitMix(1_234_567);
        assert_eq!(r.next(), 6_457_827_717_110_365_317);
        assert_eq!(r.next(), 3_203_168_211_198_807_973);
    }
}
