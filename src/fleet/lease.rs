//! The guard lease as a pure state machine: which replica may act on fleet-wide decisions.
//!
//! The lease is one item in the fleet table, written only by a conditional put: "no lease, or
//! the lease is mine, or it expired". DynamoDB is the arbiter; this module decides *when* to
//! try and *whether this replica may act now*, from the results it is fed and a clock it is
//! given. Two rules keep it safe:
//! - a replica acts only while its own monotonic clock says the lease it last won is valid,
//!   counted from when the winning write was *sent* (not when it answered), minus a margin for
//!   clock-rate differences between replicas;
//! - a failed or unanswered renewal never extends anything: the holder keeps acting only until
//!   the validity it already had runs out, then stops, even if nobody else could take over.
//!
//! Timing: the holder renews every `period` (the smaller of the flush interval and a third of the
//! lease). Followers do not write while the item they last read names another holder and an
//! unexpired lease, so a healthy fleet costs one lease write per period, the holder's. A dead
//! holder's lease (stored expiry = its last renewal + `lease`) is taken over at the first read
//! after it expires: within `lease + period` — inside the two lease periods the fleet promises.

/// What the edge should do on this tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Conditionally write the lease item (acquire or renew: the same write).
    Write,
    /// Nothing to do yet.
    Wait,
}

/// How the last conditional write ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteResult {
    /// The write won: this replica holds the lease.
    Won,
    /// Someone else holds an unexpired lease.
    Held { holder: String },
    /// DynamoDB did not answer or failed.
    Failed,
}

/// The lease item as last read from the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub holder: String,
    /// Wall-clock ms the holder's lease runs to.
    pub expires_at_ms: u64,
}

#[derive(Debug, Clone)]
pub struct Lease {
    lease_ms: u64,
    period_ms: u64,
    /// Local monotonic ms until which this replica may act (0: not the holder).
    valid_until: u64,
    /// When the last write was sent, for the next tick.
    last_try: Option<u64>,
    holder: Option<String>,
}

impl Lease {
    /// A lease of `lease_ms`, renewed every `period_ms` at most (capped at a third of the lease).
    pub fn new(lease_ms: u64, period_ms: u64) -> Lease {
        let period_ms = period_ms.min(lease_ms / 3).max(1);
        Lease { lease_ms, period_ms, valid_until: 0, last_try: None, holder: None }
    }

    /// The renewal/retry period.
    pub fn period_ms(&self) -> u64 {
        self.period_ms
    }

    /// The safety margin taken off the validity (a fifth of the lease).
    fn margin(&self) -> u64 {
        self.lease_ms / 5
    }

    /// Whether to write the lease item at `now` (monotonic ms), given the item as last read
    /// (`None`: no lease item) and the wall clock. Writes at most once per period; a follower
    /// writes only when the lease it read is free, expired, or its own.
    pub fn tick(&self, now: u64, seen: Option<&Seen>, wall_now_ms: u64, me: &str) -> Action {
        if self.last_try.is_some_and(|t| now.saturating_sub(t) < self.period_ms) {
            return Action::Wait;
        }
        match seen {
            Some(s) if s.holder != me && s.expires_at_ms > wall_now_ms && !self.is_leader(now) => Action::Wait,
            _ => Action::Write,
        }
    }

    /// Records the write sent at `sent` (monotonic ms) and how it ended.
    pub fn wrote(&mut self, sent: u64, result: WriteResult, me: &str) {
        self.last_try = Some(sent);
        match result {
            WriteResult::Won => {
                self.valid_until = sent + self.lease_ms - self.margin();
                self.holder = Some(me.to_owned());
            }
            WriteResult::Held { holder } => {
                self.valid_until = 0;
                self.holder = Some(holder);
            }
            // Keep whatever validity was already earned; it runs out on its own.
            WriteResult::Failed => {}
        }
    }

    /// Whether this replica may act on fleet decisions at `now`.
    pub fn is_leader(&self, now: u64) -> bool {
        now < self.valid_until
    }

    /// The last known holder (this replica or another), for `/admin/status`.
    pub fn holder(&self, now: u64, me: &str) -> Option<&str> {
        match self.holder.as_deref() {
            Some(h) if h == me && !self.is_leader(now) => None,
            h => h,
        }
    }

    /// The expiry to store in the item: wall-clock ms of the write plus the lease.
    pub fn expires_at(&self, wall_now_ms: u64) -> u64 {
        wall_now_ms + self.lease_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake DynamoDB item: holder and wall expiry, with the conditional put's rule.
    struct Item(Option<(String, u64)>);

    impl Item {
        fn seen(&self) -> Option<Seen> {
            self.0
                .as_ref()
                .map(|(holder, expires_at_ms)| Seen { holder: holder.clone(), expires_at_ms: *expires_at_ms })
        }

        fn put(&mut self, me: &str, wall: u64, lease: &Lease) -> WriteResult {
            match &self.0 {
                Some((h, exp)) if h != me && *exp > wall => WriteResult::Held { holder: h.clone() },
                _ => {
                    self.0 = Some((me.to_owned(), lease.expires_at(wall)));
                    WriteResult::Won
                }
            }
        }
    }

    #[test]
    fn one_holder_renews_and_others_wait() {
        let mut item = Item(None);
        let (mut a, mut b) = (Lease::new(9_000, 3_000), Lease::new(9_000, 3_000));
        assert_eq!(a.tick(0, None, 0, "a"), Action::Write);
        a.wrote(0, item.put("a", 0, &a), "a");
        b.wrote(10, item.put("b", 10, &b), "b");
        assert!(a.is_leader(10) && !b.is_leader(10));
        assert_eq!(b.holder(10, "b"), Some("a"));
        assert_eq!(a.tick(1_000, item.seen().as_ref(), 1_000, "a"), Action::Wait, "not before a period");
        // The holder renews every 3 s for a minute: it stays leader throughout; b, reading the
        // item, never even writes.
        for t in (3_000..60_000).step_by(3_000) {
            assert_eq!(a.tick(t, item.seen().as_ref(), t, "a"), Action::Write);
            a.wrote(t, item.put("a", t, &a), "a");
            assert_eq!(b.tick(t + 5, item.seen().as_ref(), t + 5, "b"), Action::Wait);
            assert!(a.is_leader(t + 100) && !b.is_leader(t + 100), "at {t}");
        }
    }

    #[test]
    fn a_dead_holder_is_replaced_within_two_lease_periods() {
        let lease_ms = 10_000;
        let mut item = Item(None);
        let (mut a, mut b) = (Lease::new(lease_ms, 5_000), Lease::new(lease_ms, 5_000));
        a.wrote(0, item.put("a", 0, &a), "a");
        // a dies right after winning; b reads the item every 5 s (its flush) and writes once free.
        let (mut t, mut writes) = (1, 0);
        while !b.is_leader(t) {
            if t % 5_000 == 0 && b.tick(t, item.seen().as_ref(), t, "b") == Action::Write {
                writes += 1;
                b.wrote(t, item.put("b", t, &b), "b");
            }
            t += 1;
            assert!(t < 2 * lease_ms, "no takeover within two lease periods");
        }
        assert_eq!(writes, 1, "one write, once the lease had expired");
        assert!(t > lease_ms, "never while a's lease is unexpired ({t})");
        assert!(!a.is_leader(t), "a's own clock has run out too");
    }

    #[test]
    fn a_holder_that_cannot_renew_stops_acting_on_its_own() {
        let mut a = Lease::new(10_000, 3_333);
        a.wrote(0, WriteResult::Won, "a");
        assert!(a.is_leader(7_999));
        // DynamoDB is gone: renewals fail, validity is never extended.
        for t in [3_333, 6_666, 9_999] {
            a.wrote(t, WriteResult::Failed, "a");
        }
        assert!(!a.is_leader(8_000), "validity ends lease - margin after the winning write was sent");
        assert_eq!(a.holder(8_000, "a"), None);
        // And a replica that never won never acts, whatever happens.
        let mut c = Lease::new(10_000, 3_333);
        c.wrote(0, WriteResult::Failed, "c");
        assert!(!c.is_leader(1));
    }

    #[test]
    fn losing_the_lease_ends_leadership_at_once() {
        let mut a = Lease::new(10_000, 3_333);
        a.wrote(0, WriteResult::Won, "a");
        a.wrote(3_333, WriteResult::Held { holder: "b".into() }, "a");
        assert!(!a.is_leader(3_334));
        assert_eq!(a.holder(3_334, "a"), Some("b"));
    }
}
