//! Bucket layout: which variant owns which bucket, designed for ramp stability.
//!
//! Every non-champion variant owns a fixed *slot* of the bucket space that does not depend on any
//! weight, and fills it from the slot's start with `weight × 100` buckets. Whatever is not filled
//! belongs to the champion. Changing one variant's weight (the champion absorbing the difference)
//! therefore only moves buckets at the end of that variant's own fill, between it and the champion:
//! no user ever moves between two non-champion variants, and ramping 10% → 50% → 100% keeps every
//! user who was already in the challenger.
//!
//! Slots default to an equal division of the space among the non-champion variants in config
//! order (one challenger gets the whole space, so it can ramp to 100%), or are given explicitly.

use super::BUCKETS;

/// A non-champion variant's fixed region `[start, end)` and how much of it is filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// First bucket of the slot.
    pub start: u32,
    /// One past the last bucket of the slot.
    pub end: u32,
}

impl Slot {
    /// Number of buckets the slot can hold.
    pub fn capacity(&self) -> u32 {
        self.end - self.start
    }
}

/// Why a set of weights and slots cannot form a layout. Indices are variant positions in config.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    #[error("weights add up to {0} buckets, they must add up to {BUCKETS} (100%)")]
    Sum(u32),
    #[error("variant {variant}: weight of {weight} buckets exceeds its slot of {capacity} buckets")]
    SlotTooSmall { variant: usize, weight: u32, capacity: u32 },
    #[error("variant {variant}: slot [{start}, {end}) is empty or outside [0, {BUCKETS})")]
    BadSlot { variant: usize, start: u32, end: u32 },
    #[error("variants {a} and {b}: slots overlap")]
    Overlap { a: usize, b: usize },
    #[error("at most 255 variants are supported, got {0}")]
    TooMany(usize),
}

/// The compiled assignment: a bucket → variant table, so a lookup is one indexed load.
#[derive(Debug, Clone)]
pub struct Layout {
    table: Box<[u8]>,
    slots: Vec<Option<Slot>>,
}

impl Layout {
    /// Builds the layout for `weights` (in buckets, one per variant in config order). `champion` is
    /// the index of the champion; `explicit[i]` optionally fixes variant `i`'s slot (ignored for
    /// the champion). Variants without an explicit slot share the space left by equal division.
    pub fn new(weights: &[u32], champion: usize, explicit: &[Option<Slot>]) -> Result<Layout, LayoutError> {
        if weights.len() > 255 {
            return Err(LayoutError::TooMany(weights.len()));
        }
        let sum: u32 = weights.iter().sum();
        if sum != BUCKETS {
            return Err(LayoutError::Sum(sum));
        }
        let slots = Self::slots(weights.len(), champion, explicit)?;
        let mut table = vec![champion as u8; BUCKETS as usize].into_boxed_slice();
        for (i, slot) in slots.iter().enumerate() {
            let Some(slot) = slot else { continue };
            if weights[i] > slot.capacity() {
                return Err(LayoutError::SlotTooSmall { variant: i, weight: weights[i], capacity: slot.capacity() });
            }
            let fill = slot.start as usize..(slot.start + weights[i]) as usize;
            table[fill].fill(i as u8);
        }
        Ok(Layout { table, slots })
    }

    /// Default slots: equal division among non-champions in order; explicit ones are validated.
    fn slots(n: usize, champion: usize, explicit: &[Option<Slot>]) -> Result<Vec<Option<Slot>>, LayoutError> {
        let others: Vec<usize> = (0..n).filter(|&i| i != champion).collect();
        let count = others.len() as u32;
        let mut slots = vec![None; n];
        for (k, &i) in others.iter().enumerate() {
            let k = k as u32;
            let slot = match explicit.get(i).copied().flatten() {
                Some(s) => s,
                None => Slot { start: k * BUCKETS / count, end: (k + 1) * BUCKETS / count },
            };
            if slot.start >= slot.end || slot.end > BUCKETS {
                return Err(LayoutError::BadSlot { variant: i, start: slot.start, end: slot.end });
            }
            slots[i] = Some(slot);
        }
        for (a, sa) in slots.iter().enumerate() {
            for (b, sb) in slots.iter().enumerate().skip(a + 1) {
                if let (Some(x), Some(y)) = (sa, sb) {
                    if x.start < y.end && y.start < x.end {
                        return Err(LayoutError::Overlap { a, b });
                    }
                }
            }
        }
        Ok(slots)
    }

    /// The variant index owning `bucket` (`bucket` is reduced mod [`BUCKETS`], so any value is safe).
    #[inline]
    pub fn variant_of(&self, bucket: u32) -> usize {
        self.table[(bucket % BUCKETS) as usize] as usize
    }

    /// The slot of variant `i` (`None` for the champion).
    pub fn slot(&self, i: usize) -> Option<Slot> {
        self.slots.get(i).copied().flatten()
    }

    /// How many buckets each variant owns, in config order.
    pub fn counts(&self, variants: usize) -> Vec<u32> {
        let mut counts = vec![0u32; variants];
        for &v in self.table.iter() {
            if let Some(c) = counts.get_mut(v as usize) {
                *c += 1;
            }
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(weights: &[u32], champion: usize) -> Layout {
        Layout::new(weights, champion, &vec![None; weights.len()]).unwrap()
    }

    #[test]
    fn single_challenger_fills_from_start() {
        let l = layout(&[9_000, 1_000], 0);
        assert_eq!(l.variant_of(0), 1);
        assert_eq!(l.variant_of(999), 1);
        assert_eq!(l.variant_of(1_000), 0);
        assert_eq!(l.variant_of(9_999), 0);
        assert_eq!(l.counts(2), vec![9_000, 1_000]);
        assert_eq!(l.slot(1), Some(Slot { start: 0, end: 10_000 }));
        assert_eq!(l.slot(0), None);
    }

    #[test]
    fn challenger_can_take_everything() {
        let l = layout(&[0, 10_000], 0);
        assert!((0..BUCKETS).all(|b| l.variant_of(b) == 1));
    }

    #[test]
    fn champion_may_be_anywhere_in_the_list() {
        let l = layout(&[2_000, 5_000, 3_000], 1);
        assert_eq!(l.counts(3), vec![2_000, 5_000, 3_000]);
        assert_eq!(l.slot(0), Some(Slot { start: 0, end: 5_000 }));
        assert_eq!(l.slot(2), Some(Slot { start: 5_000, end: 10_000 }));
    }

    #[test]
    fn rejects_bad_weights_and_slots() {
        let none = [None, None, None];
        assert_eq!(Layout::new(&[5_000, 4_000], 0, &none[..2]).unwrap_err(), LayoutError::Sum(9_000));
        assert!(matches!(
            Layout::new(&[2_000, 6_000, 2_000], 0, &none).unwrap_err(),
            LayoutError::SlotTooSmall { variant: 1, weight: 6_000, capacity: 5_000 }
        ));
        let overlap = [None, Some(Slot { start: 0, end: 6_000 }), Some(Slot { start: 5_000, end: 10_000 })];
        assert_eq!(Layout::new(&[8_000, 1_000, 1_000], 0, &overlap).unwrap_err(), LayoutError::Overlap { a: 1, b: 2 });
        let empty = [None, Some(Slot { start: 5, end: 5 })];
        assert!(matches!(Layout::new(&[10_000, 0], 0, &empty).unwrap_err(), LayoutError::BadSlot { .. }));
        let outside = [None, Some(Slot { start: 5, end: 10_001 })];
        assert!(matches!(Layout::new(&[10_000, 0], 0, &outside).unwrap_err(), LayoutError::BadSlot { .. }));
    }

    #[test]
    fn explicit_slots_are_honoured() {
        let slots = [None, Some(Slot { start: 7_000, end: 10_000 })];
        let l = Layout::new(&[9_000, 1_000], 0, &slots).unwrap();
        assert_eq!(l.variant_of(6_999), 0);
        assert_eq!(l.variant_of(7_000), 1);
        assert_eq!(l.variant_of(7_999), 1);
        assert_eq!(l.variant_of(8_000), 0);
    }

    /// xorshift64*: a tiny deterministic generator so the property test needs no extra crate and
    /// replays exactly from its seed.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u32) -> u32 {
            (self.next() % u64::from(n.max(1))) as u32
        }
    }

    /// Property: over random weight sequences where one variant changes and the champion absorbs
    /// the difference, every bucket that changes owner moves between that variant and the
    /// champion, never between two other variants; each layout holds the configured weights exactly.
    #[test]
    fn ramp_moves_users_only_between_changed_variant_and_champion() {
        for seed in 1..=300u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let n = 2 + rng.below(4) as usize;
            let champion = rng.below(n as u32) as usize;
            let cap = BUCKETS / (n as u32 - 1);
            let mut weights = vec![0u32; n];
            for (i, w) in weights.iter_mut().enumerate() {
                if i != champion {
                    *w = rng.below(cap + 1) / 2;
                }
            }
            weights[champion] = BUCKETS - weights.iter().sum::<u32>();
            let mut current = layout(&weights, champion);
            for _ in 0..20 {
                let mut changed = rng.below(n as u32) as usize;
                if changed == champion {
                    changed = (changed + 1) % n;
                }
                let capacity = current.slot(changed).unwrap().capacity();
                let max = capacity.min(weights[changed] + weights[champion]);
                let new_weight = rng.below(max + 1);
                weights[champion] = weights[champion] + weights[changed] - new_weight;
                weights[changed] = new_weight;
                let next = layout(&weights, champion);
                assert_eq!(next.counts(n), weights, "seed {seed}");
                for b in 0..BUCKETS {
                    let (before, after) = (current.variant_of(b), next.variant_of(b));
                    if before != after {
                        let pair = [before, after];
                        assert!(
                            pair.contains(&changed) && pair.contains(&champion),
                            "seed {seed}: bucket {b} moved {before} -> {after}, changed {changed}"
                        );
                    }
                }
                current = next;
            }
        }
    }

    #[test]
    fn ramping_up_keeps_every_existing_challenger_user() {
        let steps = [1_000, 5_000, 10_000];
        let mut prev: Option<Layout> = None;
        for w in steps {
            let l = layout(&[BUCKETS - w, w], 0);
            if let Some(p) = prev {
                assert!((0..BUCKETS).all(|b| p.variant_of(b) != 1 || l.variant_of(b) == 1));
            }
            prev = Some(l);
        }
    }
}
