//! Team-draft interleaving (Radlinski, Kurup and Joachims, "How does clickthrough data reflect
//! retrieval quality?", CIKM 2008): the merge of two ranked lists, the seed it draws its coins
//! from, and the credit of a clicked position. Pure, no I/O.
//!
//! The algorithm, exactly as implemented (and as `loadtest/interleave.py` recomputes it):
//!
//! ```text
//! picks = []; size_a = size_b = 0; coin = 0
//! while len(picks) < k:
//!     ia = first index of A whose id is not in picks;  ib = the same for B
//!     if neither exists: stop
//!     if only one exists: that team picks                       (fill, see below)
//!     elif size_a < size_b or (size_a == size_b and coin_bit(coin++) == 1): A picks
//!     else: B picks
//! ```
//!
//! A pick appends the team's first unused item, so an item both lists hold is shown once, credited
//! to the team that picked it first, and an item repeated inside one list is shown once too.
//! The coins: coin `i` is bit `i % 64` (least significant first) of word `i / 64`, where word 0 is
//! the request's [`seed`] and word `j + 1` is `splitmix64(word j)`.
//!
//! **Fill.** Radlinski's loop stops as soon as either list runs out; here the other list fills the
//! rest of the page, credited to its own team, so a user never gets a shorter page than either
//! model alone would give. A model that returns fewer than `k` items thereby cedes those slots
//! (and the clicks on them) to the other: a preference users would express too.

/// Which model of the pair `interleave = [A, B]` contributed an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Team {
    A,
    B,
}

impl Team {
    /// `"a"` or `"b"`: the JSON name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Team::A => "a",
            Team::B => "b",
        }
    }

    /// `b'A'` or `b'B'`: the access log's `teams` letter.
    pub const fn letter(self) -> u8 {
        match self {
            Team::A => b'A',
            Team::B => b'B',
        }
    }

    /// 0 for A, 1 for B (arrays indexed by team).
    pub const fn index(self) -> usize {
        self as usize
    }

    pub const fn other(self) -> Team {
        match self {
            Team::A => Team::B,
            Team::B => Team::A,
        }
    }
}

/// One position of the merged list: the team that picked it and the index of the item in that
/// team's own list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pick {
    pub team: Team,
    pub index: usize,
}

/// The coin seed of one request: the first 8 bytes of
/// `SHA-256(salt ‖ 0x00 ‖ user_id ‖ 0x00 ‖ request_id)`, big-endian — the same construction as
/// the split's hash, so it is the same on every replica and release and in Python's `hashlib`.
/// `request_id` is the id the models were called with.
pub fn seed(salt: &str, user_id: &[u8], request_id: &[u8]) -> u64 {
    crate::split::hash_parts(salt, &[user_id, request_id])
}

/// The splitmix64 step (Steele, Lea, Flood 2014): the next 64 coins once a word is used up.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The stream of coins drawn from a seed.
struct Coins {
    word: u64,
    used: u32,
}

impl Coins {
    fn flip(&mut self) -> bool {
        if self.used == 64 {
            self.word = splitmix64(self.word);
            self.used = 0;
        }
        let bit = (self.word >> self.used) & 1 == 1;
        self.used += 1;
        bit
    }
}

/// The team-draft merge of `a` and `b` (ids, best first) into at most `k` positions.
///
/// Ids compare by equality; the cost is `O(k · (|a| + |b|))` comparisons, which for the page sizes
/// an interleaving arm allows (`k ≤ 24`) is cheaper than hashing.
pub fn team_draft<T: PartialEq>(a: &[T], b: &[T], k: usize, seed: u64) -> Vec<Pick> {
    let mut picks: Vec<Pick> = Vec::with_capacity(k.min(a.len() + b.len()));
    let (mut next_a, mut next_b) = (0usize, 0usize);
    let (mut size_a, mut size_b) = (0usize, 0usize);
    let mut coins = Coins { word: seed, used: 0 };
    let taken = |picks: &[Pick], id: &T| picks.iter().any(|p| item(a, b, *p) == id);
    while picks.len() < k {
        while next_a < a.len() && taken(&picks, &a[next_a]) {
            next_a += 1;
        }
        while next_b < b.len() && taken(&picks, &b[next_b]) {
            next_b += 1;
        }
        let team = match (next_a < a.len(), next_b < b.len()) {
            (false, false) => break,
            (true, false) => Team::A,
            (false, true) => Team::B,
            (true, true) if size_a < size_b => Team::A,
            (true, true) if size_b < size_a => Team::B,
            (true, true) => {
                if coins.flip() {
                    Team::A
                } else {
                    Team::B
                }
            }
        };
        match team {
            Team::A => {
                picks.push(Pick { team, index: next_a });
                next_a += 1;
                size_a += 1;
            }
            Team::B => {
                picks.push(Pick { team, index: next_b });
                next_b += 1;
                size_b += 1;
            }
        }
    }
    picks
}

/// The item a pick refers to.
#[inline]
pub fn item<'t, T>(a: &'t [T], b: &'t [T], p: Pick) -> &'t T {
    match p.team {
        Team::A => &a[p.index],
        Team::B => &b[p.index],
    }
}

/// The positions team B holds, as a bit mask (bit `i` = position `i`; positions past 63 are not
/// represented, and an arm's `k` is at most 24).
pub fn b_mask(picks: &[Pick]) -> u64 {
    picks.iter().enumerate().take(64).filter(|(_, p)| p.team == Team::B).fold(0, |m, (i, _)| m | 1 << i)
}

/// One request's clicks, as the per-request comparison sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No credited click: the request says nothing about the models.
    NoClicks,
    /// More clicks on A's positions than on B's.
    AWins,
    /// More clicks on B's positions than on A's.
    BWins,
    /// Clicks on both, equally many.
    Tie,
}

/// The verdict of one request from the positions clicked and the positions B holds (both bit
/// masks over positions; each position counts once however often it was clicked).
pub fn verdict(clicked: u64, b_positions: u64) -> Verdict {
    let b = (clicked & b_positions).count_ones();
    let a = (clicked & !b_positions).count_ones();
    match (a, b) {
        (0, 0) => Verdict::NoClicks,
        (a, b) if a > b => Verdict::AWins,
        (a, b) if b > a => Verdict::BWins,
        _ => Verdict::Tie,
    }
}

#[cfg(test)]
#[path = "merge_tests.rs"]
mod tests;
