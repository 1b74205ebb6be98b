//! The process's side of [`Cohorts`]: the epochs this replica has served, with their exact
//! per-variant counters in relaxed atomics, and the user sample in sixteen small maps.
//!
//! The request path bumps two atomics per exposure or event and, only for a user whose key is
//! below the sampling threshold, takes one of sixteen shard locks for a map update (tens of
//! nanoseconds, contended only by requests of users in the same shard). An arc-swapped snapshot
//! cannot serve here — the sample is written by every request — and sharding keeps the lock
//! short and rarely shared. When the sample outgrows its capacity the threshold drops by a
//! quarter and the shards are pruned, at most once per quarter of the capacity's growth.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::cohort::{Cohorts, Counts, Epoch, Exposure, User, ALL};
use super::epoch::MAX_EPOCHS;
use crate::metrics::FEEDBACK_EVENTS;

const SHARDS: usize = 16;
/// Default sample capacity (`[experiment] sample_users`).
pub const DEFAULT_CAPACITY: usize = 4_096;

/// No exposure yet (feedback only).
const NONE: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Local {
    /// Local epoch serial, or [`NONE`].
    epoch: u32,
    variant: u16,
    moved: bool,
    kinds: u8,
    requests: u32,
}

/// Exact counters of one variant in one epoch.
#[derive(Debug, Default)]
pub struct EpochCounters {
    requests: AtomicU64,
    events: [AtomicU64; FEEDBACK_EVENTS.len()],
}

/// One epoch as this process serves it.
#[derive(Debug)]
pub struct LiveEpoch {
    /// Local serial (never reused): what sampled users point at.
    serial: u32,
    pub id: Arc<str>,
    since_version: u64,
    since_ms: u64,
    last_ms: AtomicU64,
    champion: String,
    weights: BTreeMap<String, f64>,
    counters: BTreeMap<String, Arc<EpochCounters>>,
}

/// What a snapshot holds: its epoch and, per variant in config order, the counters and the
/// variant's index in the sampler's name table.
#[derive(Debug)]
pub struct EpochView {
    pub epoch: Arc<LiveEpoch>,
    counters: Vec<Arc<EpochCounters>>,
    variants: Vec<u16>,
}

impl EpochView {
    /// The epoch id (16 hex digits).
    pub fn id(&self) -> &Arc<str> {
        &self.epoch.id
    }
}

#[derive(Default)]
struct Book {
    epochs: Vec<Arc<LiveEpoch>>,
    next_serial: u32,
    variants: Vec<String>,
}

/// The process-wide user sample and epoch book; it outlives every snapshot.
pub struct Sampler {
    threshold: AtomicU64,
    capacity: AtomicUsize,
    len: AtomicUsize,
    pruning: AtomicBool,
    shards: Vec<Mutex<HashMap<u32, Local>>>,
    book: Mutex<Book>,
}

impl Default for Sampler {
    fn default() -> Self {
        Sampler {
            threshold: AtomicU64::new(ALL),
            capacity: AtomicUsize::new(DEFAULT_CAPACITY),
            len: AtomicUsize::new(0),
            pruning: AtomicBool::new(false),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            book: Mutex::default(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means a panic elsewhere mid-update; the counts are still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The user's sample key: the high half of the split's hash. The bucket is the hash mod 10,000,
/// which the low half alone makes uniform, so whether a user is sampled says nothing about their
/// bucket (and so their variant) — the sample is unbiased across variants.
#[inline]
pub fn key_of(user_hash: u64) -> u32 {
    (user_hash >> 32) as u32
}

impl Sampler {
    /// Sets the sample's capacity (from config; applies from the next exposure).
    pub fn set_capacity(&self, users: usize) {
        self.capacity.store(users.max(1), Ordering::Relaxed);
    }

    /// The epoch of an assignment, entered (or re-entered) by a new snapshot. `variants` are the
    /// snapshot's variants in config order with their weights (percent).
    pub fn enter(
        &self,
        signature: u64,
        version: u64,
        now_ms: u64,
        champion: &str,
        variants: &[(&str, f64)],
    ) -> Arc<EpochView> {
        let mut book = lock(&self.book);
        let id = super::epoch::id(signature);
        let epoch = match book.epochs.iter().find(|e| *e.id == *id) {
            Some(e) => {
                e.last_ms.fetch_max(now_ms, Ordering::Relaxed);
                e.clone()
            }
            None => {
                if book.epochs.len() >= MAX_EPOCHS {
                    // The least recently active goes; its users stay, pointing at a gone serial.
                    if let Some(oldest) =
                        (0..book.epochs.len()).min_by_key(|i| book.epochs[*i].last_ms.load(Ordering::Relaxed))
                    {
                        book.epochs.remove(oldest);
                    }
                }
                let serial = book.next_serial;
                book.next_serial = book.next_serial.wrapping_add(1) % NONE;
                let e = Arc::new(LiveEpoch {
                    serial,
                    id: id.into(),
                    since_version: version,
                    since_ms: now_ms,
                    last_ms: AtomicU64::new(now_ms),
                    champion: champion.to_owned(),
                    weights: variants.iter().map(|(n, w)| (n.to_string(), *w)).collect(),
                    counters: variants.iter().map(|(n, _)| (n.to_string(), Arc::default())).collect(),
                });
                book.epochs.push(e.clone());
                e
            }
        };
        let mut ids = Vec::with_capacity(variants.len());
        for (name, _) in variants {
            let i = match book.variants.iter().position(|v| v == name) {
                Some(i) => i,
                None => {
                    book.variants.push(name.to_string());
                    book.variants.len() - 1
                }
            };
            ids.push(u16::try_from(i).unwrap_or(u16::MAX));
        }
        let counters = variants.iter().map(|(n, _)| epoch.counters.get(*n).cloned().unwrap_or_default()).collect();
        Arc::new(EpochView { epoch, counters, variants: ids })
    }

    /// A split-assigned request of variant `vi` (config order) by the user with `user_hash`.
    #[inline]
    pub fn expose(&self, view: &EpochView, vi: usize, user_hash: u64) {
        if let Some(c) = view.counters.get(vi) {
            c.requests.fetch_add(1, Ordering::Relaxed);
        }
        let key = key_of(user_hash);
        if u64::from(key) >= self.threshold.load(Ordering::Relaxed) {
            return;
        }
        let variant = view.variants.get(vi).copied().unwrap_or(u16::MAX);
        let serial = view.epoch.serial;
        let fresh = {
            let mut shard = lock(&self.shards[key as usize % SHARDS]);
            match shard.get_mut(&key) {
                Some(u) => {
                    u.requests = u.requests.saturating_add(1);
                    if u.epoch == NONE {
                        (u.epoch, u.variant) = (serial, variant);
                    } else if u.variant != variant {
                        u.moved = true;
                    }
                    false
                }
                None => {
                    shard.insert(key, Local { epoch: serial, variant, moved: false, kinds: 0, requests: 1 });
                    true
                }
            }
        };
        if fresh {
            self.grew();
        }
    }

    /// A feedback event of kind `kind` credited to variant `vi` by the user with `user_hash`.
    #[inline]
    pub fn event(&self, view: &EpochView, vi: usize, kind: usize, user_hash: u64) {
        if let Some(e) = view.counters.get(vi).and_then(|c| c.events.get(kind)) {
            e.fetch_add(1, Ordering::Relaxed);
        }
        let key = key_of(user_hash);
        if u64::from(key) >= self.threshold.load(Ordering::Relaxed) || kind >= 7 {
            return;
        }
        let bit = 1u8 << kind;
        let fresh = {
            let mut shard = lock(&self.shards[key as usize % SHARDS]);
            match shard.get_mut(&key) {
                Some(u) => {
                    u.kinds |= bit;
                    false
                }
                None => {
                    shard.insert(key, Local { epoch: NONE, variant: 0, moved: false, kinds: bit, requests: 0 });
                    true
                }
            }
        };
        if fresh {
            self.grew();
        }
    }

    fn grew(&self) {
        let len = self.len.fetch_add(1, Ordering::Relaxed) + 1;
        if len > self.capacity.load(Ordering::Relaxed) && !self.pruning.swap(true, Ordering::Acquire) {
            self.prune();
            self.pruning.store(false, Ordering::Release);
        }
    }

    /// Lowers the threshold by a quarter until the sample fits its capacity.
    fn prune(&self) {
        let capacity = self.capacity.load(Ordering::Relaxed);
        loop {
            let threshold = self.threshold.load(Ordering::Relaxed) * 3 / 4;
            self.threshold.store(threshold, Ordering::Relaxed);
            let mut len = 0;
            for shard in &self.shards {
                let mut s = lock(shard);
                s.retain(|k, _| u64::from(*k) < threshold);
                len += s.len();
            }
            self.len.store(len, Ordering::Relaxed);
            if len <= capacity || threshold == 0 {
                return;
            }
        }
    }

    /// Everything as a plain value. `now_ms` marks `live` (the serving epoch) as active now.
    pub fn read(&self, live: &EpochView, now_ms: u64) -> Cohorts {
        live.epoch.last_ms.fetch_max(now_ms, Ordering::Relaxed);
        let (epochs, variants) = {
            let book = lock(&self.book);
            (book.epochs.clone(), book.variants.clone())
        };
        let index: HashMap<u32, u16> = epochs.iter().enumerate().map(|(i, e)| (e.serial, i as u16)).collect();
        let threshold = self.threshold.load(Ordering::Relaxed);
        let mut users = Vec::with_capacity(self.len.load(Ordering::Relaxed));
        for shard in &self.shards {
            for (key, u) in lock(shard).iter() {
                if u64::from(*key) >= threshold {
                    continue;
                }
                let exposure = match (u.epoch, index.get(&u.epoch)) {
                    (NONE, _) => Exposure::None,
                    (_, Some(e)) if usize::from(u.variant) < variants.len() => {
                        Exposure::At { epoch: *e, variant: u.variant }
                    }
                    _ => Exposure::Dropped,
                };
                users.push(User { key: *key, exposure, moved: u.moved, kinds: u.kinds, requests: u.requests });
            }
        }
        users.sort_unstable_by_key(|u| u.key);
        let epochs = epochs
            .iter()
            .map(|e| Epoch {
                id: e.id.to_string(),
                since_version: e.since_version,
                since_ms: e.since_ms,
                last_ms: e.last_ms.load(Ordering::Relaxed),
                champion: e.champion.clone(),
                weights: e.weights.clone(),
                counts: e
                    .counters
                    .iter()
                    .map(|(name, c)| {
                        let counts = Counts {
                            requests: c.requests.load(Ordering::Relaxed),
                            events: c.events.iter().map(|x| x.load(Ordering::Relaxed)).collect(),
                        };
                        (name.clone(), counts)
                    })
                    .collect(),
            })
            .collect();
        Cohorts { threshold, epochs, variants, users }
    }
}

#[cfg(test)]
#[path = "sampler_tests.rs"]
mod tests;
