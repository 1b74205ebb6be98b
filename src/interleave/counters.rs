//! An interleaving arm's counters: what it served, and what its users clicked, credited to the
//! team that contributed each clicked item. Relaxed atomics, bumped by the one recording step;
//! the per-request comparison keeps each recent request's clicked positions so a request that
//! gets its clicks one `/feedback` at a time is still judged once, on all of them.
//!
//! **Per-request outcomes.** A request's verdict (B wins, A wins, tie — see `merge::verdict`) can
//! change with each click; each click moves the request from its old verdict's count to its new
//! one, so the counts are always those of every remembered request's clicks so far. The last
//! [`REMEMBERED`] requests that got a click are remembered (a few MiB at most, only ever for an
//! arm's requests that got feedback); a click for a request forgotten since, or for one whose
//! other clicks went to another replica, starts a fresh request. Repeated clicks on one position
//! count once.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::merge::{verdict, Team, Verdict};
use super::stats::Outcomes;
use crate::metrics::FEEDBACK_EVENTS;

/// Requests whose clicks are remembered, per arm (across [`SHARDS`] shards).
pub const REMEMBERED: usize = 1 << 16;
const SHARDS: usize = 16;

/// Why an answer was not merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// The model's call failed (error or non-2xx).
    Failed,
    /// It answered, but more than `interleave_wait_ms` after the other.
    Late,
    /// A 2xx without a readable list at `items_pointer`.
    Unusable,
}

impl Missing {
    pub const ALL: [Missing; 3] = [Missing::Failed, Missing::Late, Missing::Unusable];
    pub const fn as_str(self) -> &'static str {
        match self {
            Missing::Failed => "failed",
            Missing::Late => "late",
            Missing::Unusable => "unusable",
        }
    }
}

/// What happened to one feedback event for an interleaved request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credit {
    /// The item was at `position`, picked by `team`.
    Team { team: Team, position: usize },
    /// The event names no item.
    NoItem,
    /// The item was not on the page.
    NotShown,
    /// Positions of both teams share the item's fingerprint.
    Ambiguous,
    /// The request was answered degraded (one model only): no preference either way.
    Degraded,
    /// The event is for the arm but brings no team code (neither a minted `<id>.<code>` request
    /// id nor `teams`), so its item cannot be placed.
    NoCode,
}

impl Credit {
    pub const fn reason(self) -> Option<&'static str> {
        match self {
            Credit::Team { .. } => None,
            Credit::NoItem => Some("no_item_id"),
            Credit::NotShown => Some("not_shown"),
            Credit::Ambiguous => Some("ambiguous"),
            Credit::Degraded => Some("degraded"),
            Credit::NoCode => Some("no_team_code"),
        }
    }
}

/// Why feedback for an arm's request was not credited, in counter order.
pub const UNCREDITED: [&str; 5] = ["no_item_id", "not_shown", "ambiguous", "degraded", "no_team_code"];

/// One arm's counters, for one pair of models.
pub struct Counters {
    merged: AtomicU64,
    /// `[missing team][Missing]`: degraded answers (the other team's list was served alone).
    degraded: [[AtomicU64; 3]; 2],
    /// Both models failed: the request got no interleaved answer at all.
    failed: AtomicU64,
    /// Positions shown, by team.
    shown: [AtomicU64; 2],
    /// Credited events `[team][event kind]` (clicks: first click on a position only).
    credited: [[AtomicU64; FEEDBACK_EVENTS.len()]; 2],
    /// Clicks on a position already clicked.
    repeat_clicks: AtomicU64,
    /// Events for an arm's request that could not be credited, by [`Credit::reason`] in
    /// [`UNCREDITED`] order.
    uncredited: [AtomicU64; UNCREDITED.len()],
    wins_a: AtomicU64,
    wins_b: AtomicU64,
    ties: AtomicU64,
    /// The models (name and version) these counts are for.
    pub pair: [(String, String); 2],
    clicks: [Mutex<Shard>; SHARDS],
}

/// Recent requests' clicked positions and B positions, oldest first in `order`.
#[derive(Default)]
struct Shard {
    map: HashMap<u64, (u64, u64)>,
    order: VecDeque<u64>,
}

fn zeros<const N: usize>() -> [AtomicU64; N] {
    std::array::from_fn(|_| AtomicU64::new(0))
}

impl Counters {
    pub fn new(pair: [(String, String); 2]) -> Counters {
        Counters {
            merged: AtomicU64::new(0),
            degraded: [zeros(), zeros()],
            failed: AtomicU64::new(0),
            shown: zeros(),
            credited: [zeros(), zeros()],
            repeat_clicks: AtomicU64::new(0),
            uncredited: zeros(),
            wins_a: AtomicU64::new(0),
            wins_b: AtomicU64::new(0),
            ties: AtomicU64::new(0),
            pair,
            clicks: std::array::from_fn(|_| Mutex::default()),
        }
    }

    /// A merged answer: `n` positions, B holding those in `b_mask`.
    pub fn merged(&self, n: usize, b_mask: u64) {
        self.merged.fetch_add(1, Ordering::Relaxed);
        let b = u64::from((b_mask & mask_of(n)).count_ones());
        self.shown[Team::B.index()].fetch_add(b, Ordering::Relaxed);
        self.shown[Team::A.index()].fetch_add(n as u64 - b, Ordering::Relaxed);
    }

    /// A degraded answer: `missing`'s list was not used, for `why`.
    pub fn degraded(&self, missing: Team, why: Missing) {
        let i = Missing::ALL.iter().position(|m| *m == why).unwrap_or(0);
        self.degraded[missing.index()][i].fetch_add(1, Ordering::Relaxed);
    }

    pub fn failed(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
    }

    /// One feedback event of kind `event` (an index into `FEEDBACK_EVENTS`) for the request whose
    /// id hashes to `key`, with B holding `b_mask`.
    pub fn credit(&self, key: u64, b_mask: u64, event: usize, credit: Credit) {
        let Credit::Team { team, position } = credit else {
            let i = UNCREDITED.iter().position(|r| Some(*r) == credit.reason()).unwrap_or(0);
            self.uncredited[i].fetch_add(1, Ordering::Relaxed);
            return;
        };
        let is_click = FEEDBACK_EVENTS.get(event) == Some(&"click");
        if !is_click {
            if let Some(c) = self.credited[team.index()].get(event) {
                c.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        let Some(bit) = 1u64.checked_shl(position as u32) else { return };
        let mut shard = self.clicks[(key as usize) % SHARDS].lock().unwrap_or_else(|p| p.into_inner());
        let (old, b_positions) = match shard.map.get(&key) {
            Some(v) => *v,
            None => {
                if shard.order.len() >= REMEMBERED / SHARDS {
                    if let Some(oldest) = shard.order.pop_front() {
                        shard.map.remove(&oldest);
                    }
                }
                shard.order.push_back(key);
                (0, b_mask)
            }
        };
        if old & bit != 0 {
            self.repeat_clicks.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let new = old | bit;
        shard.map.insert(key, (new, b_positions));
        self.credited[team.index()][event].fetch_add(1, Ordering::Relaxed);
        // Moved under the shard's lock, so a request's verdict is never counted twice.
        self.count(verdict(old, b_positions), false);
        self.count(verdict(new, b_positions), true);
    }

    fn count(&self, v: Verdict, add: bool) {
        let c = match v {
            Verdict::NoClicks => return,
            Verdict::AWins => &self.wins_a,
            Verdict::BWins => &self.wins_b,
            Verdict::Tie => &self.ties,
        };
        if add {
            c.fetch_add(1, Ordering::Relaxed);
        } else {
            c.fetch_sub(1, Ordering::Relaxed);
        }
    }

    pub fn outcomes(&self) -> Outcomes {
        Outcomes {
            wins_a: self.wins_a.load(Ordering::Relaxed),
            wins_b: self.wins_b.load(Ordering::Relaxed),
            ties: self.ties.load(Ordering::Relaxed),
        }
    }

    /// Everything, for the admin view.
    pub fn snapshot(&self) -> Totals {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Totals {
            merged: load(&self.merged),
            degraded: std::array::from_fn(|t| std::array::from_fn(|m| load(&self.degraded[t][m]))),
            failed: load(&self.failed),
            shown: [load(&self.shown[0]), load(&self.shown[1])],
            credited: std::array::from_fn(|t| std::array::from_fn(|e| load(&self.credited[t][e]))),
            repeat_clicks: load(&self.repeat_clicks),
            uncredited: std::array::from_fn(|i| load(&self.uncredited[i])),
            outcomes: self.outcomes(),
        }
    }
}

/// A consistent-enough copy of [`Counters`] (each value read once, relaxed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Totals {
    pub merged: u64,
    pub degraded: [[u64; 3]; 2],
    pub failed: u64,
    pub shown: [u64; 2],
    pub credited: [[u64; FEEDBACK_EVENTS.len()]; 2],
    pub repeat_clicks: u64,
    /// Indexed like [`UNCREDITED`].
    pub uncredited: [u64; UNCREDITED.len()],
    pub outcomes: Outcomes,
}

fn mask_of(n: usize) -> u64 {
    if n >= 64 {
        u64::MAX
    } else {
        (1u64 << n) - 1
    }
}

/// Where an arm's counters live across reloads: they are kept while the arm compares the same two
/// models (by name and version) and start afresh when either changes, so one experiment's
/// numbers never mix with another's.
#[derive(Default)]
pub struct Slot(Mutex<Option<Arc<Counters>>>);

impl Slot {
    pub fn bind(&self, pair: [(String, String); 2]) -> Arc<Counters> {
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match slot.as_ref() {
            Some(c) if c.pair == pair => c.clone(),
            _ => {
                let c = Arc::new(Counters::new(pair));
                *slot = Some(c.clone());
                c
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLICK: usize = 0;

    fn key(id: &[u8]) -> u64 {
        crate::interleave::code::fnv1a64(&[id])
    }

    fn counters() -> Counters {
        Counters::new([("a".into(), "1".into()), ("b".into(), "1".into())])
    }

    fn at(team: Team, position: usize) -> Credit {
        Credit::Team { team, position }
    }

    #[test]
    fn a_request_is_judged_on_all_its_clicks_once() {
        let c = counters();
        // Request r1: B holds positions 1 and 2.
        c.credit(key(b"r1"), 0b110, CLICK, at(Team::B, 1));
        assert_eq!(c.outcomes(), Outcomes { wins_a: 0, wins_b: 1, ties: 0 });
        c.credit(key(b"r1"), 0b110, CLICK, at(Team::A, 0));
        assert_eq!(c.outcomes(), Outcomes { wins_a: 0, wins_b: 0, ties: 1 });
        c.credit(key(b"r1"), 0b110, CLICK, at(Team::A, 0)); // a repeat changes nothing
        assert_eq!(c.outcomes(), Outcomes { wins_a: 0, wins_b: 0, ties: 1 });
        c.credit(key(b"r1"), 0b110, CLICK, at(Team::B, 2));
        assert_eq!(c.outcomes(), Outcomes { wins_a: 0, wins_b: 1, ties: 0 });
        // Another request, won by A.
        c.credit(key(b"r2"), 0b110, CLICK, at(Team::A, 0));
        assert_eq!(c.outcomes(), Outcomes { wins_a: 1, wins_b: 1, ties: 0 });
        let t = c.snapshot();
        assert_eq!((t.credited[0][CLICK], t.credited[1][CLICK], t.repeat_clicks), (2, 2, 1));
    }

    #[test]
    fn other_events_are_credited_but_do_not_judge() {
        let c = counters();
        let purchase = FEEDBACK_EVENTS.iter().position(|e| *e == "purchase").unwrap();
        c.credit(key(b"r"), 0, purchase, at(Team::A, 0));
        c.credit(key(b"r"), 0, purchase, at(Team::A, 0));
        c.credit(key(b"r"), 0, CLICK, Credit::NotShown);
        c.credit(key(b"r"), 0, CLICK, Credit::Degraded);
        let t = c.snapshot();
        assert_eq!(t.uncredited, [0, 1, 0, 1, 0]);
        assert_eq!(t.credited[0][purchase], 2);
        assert_eq!(t.outcomes, Outcomes::default());
        c.credit(key(b"r"), 0, CLICK, Credit::NoCode);
        assert_eq!(c.snapshot().uncredited, [0, 1, 0, 1, 1]);
    }

    #[test]
    fn serving_counts() {
        let c = counters();
        c.merged(4, 0b0110);
        c.merged(3, 0b1111_1000); // bits past n are not positions
        c.degraded(Team::B, Missing::Late);
        c.failed();
        let t = c.snapshot();
        assert_eq!((t.merged, t.shown, t.failed), (2, [5, 2], 1));
        assert_eq!(t.degraded, [[0, 0, 0], [0, 1, 0]]);
    }

    #[test]
    fn old_requests_are_forgotten_not_double_counted() {
        let c = counters();
        // Fill far past the memory: every request clicked once on A, each counted once.
        for i in 0..(REMEMBERED + 5_000) {
            c.credit(key(format!("req-{i}").as_bytes()), 0, CLICK, at(Team::A, 0));
        }
        assert_eq!(c.outcomes().wins_a, (REMEMBERED + 5_000) as u64);
        let remembered: usize = c.clicks.iter().map(|s| s.lock().unwrap().map.len()).sum();
        assert!(remembered <= REMEMBERED, "{remembered}");
        // A forgotten request clicked again counts as a fresh one (documented).
        c.credit(key(b"req-0"), 0, CLICK, at(Team::A, 0));
        assert_eq!(c.outcomes().wins_a, (REMEMBERED + 5_001) as u64);
    }

    #[test]
    fn slots_keep_counts_for_the_same_pair_only() {
        let s = Slot::default();
        let pair = || [("a".to_owned(), "1".to_owned()), ("b".to_owned(), "1".to_owned())];
        let first = s.bind(pair());
        first.failed();
        assert!(Arc::ptr_eq(&first, &s.bind(pair())));
        let other = s.bind([("a".to_owned(), "1".to_owned()), ("b".to_owned(), "2".to_owned())]);
        assert!(!Arc::ptr_eq(&first, &other));
        assert_eq!(other.snapshot().failed, 0);
    }
}
