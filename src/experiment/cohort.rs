//! The experiment's users as a plain, mergeable value: the weight epochs with their exact
//! per-variant counts, and an exact uniform sample of users, each with the epoch and variant of
//! their *first* exposure (their cohort), whether they were later served by another variant,
//! which feedback kinds they sent, and how many requests.
//!
//! Why a sample and not sketches: distinct-user sketches (HyperLogLog) carry an error that grows
//! with the count — at 20,000 users a 2^12-register sketch is off by ±160 per arm, more than the
//! ±71 of binomial noise an SRM test looks for — and per-epoch, per-kind sketches would not fit a
//! fleet item. A sample of users chosen by a hash (every user whose key is below `threshold`) is
//! exact: every count in it is a true count of a Bernoulli(θ) subsample of users, independent of
//! the split's bucket, so the χ² and sequential tests on it are exactly as valid as on the full
//! population — only with the power of the sample's size. Below the sample's capacity θ = 1 and
//! the sample *is* every user.
//!
//! Merge is exact, commutative and associative: the threshold is the minimum (users above it
//! are dropped), epochs unite by id (counts add, first seen = min, last seen = max), and a user
//! seen by two replicas adds its requests, ORs its kinds and keeps its earliest exposure.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::epoch::MAX_EPOCHS;

/// Every user: the threshold of an unsampled experiment (keys are 32-bit).
pub const ALL: u64 = 1 << 32;

/// Exact counts of one variant in one epoch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Split-assigned requests (exposures) in the epoch.
    pub requests: u64,
    /// Feedback events by kind (indexed like `FEEDBACK_EVENTS`).
    pub events: Vec<u64>,
}

impl Counts {
    pub fn merge(&mut self, o: &Counts) {
        self.requests = self.requests.saturating_add(o.requests);
        if self.events.len() < o.events.len() {
            self.events.resize(o.events.len(), 0);
        }
        for (a, b) in self.events.iter_mut().zip(&o.events) {
            *a = a.saturating_add(*b);
        }
    }
}

/// One weight epoch (see `epoch`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Epoch {
    /// The assignment's signature, 16 hex digits.
    pub id: String,
    /// The earliest config version and time (Unix ms) any replica served it.
    pub since_version: u64,
    pub since_ms: u64,
    /// The latest time a replica served it (epochs beyond the bound are dropped by this).
    pub last_ms: u64,
    pub champion: String,
    /// Percent per variant.
    pub weights: BTreeMap<String, f64>,
    pub counts: BTreeMap<String, Counts>,
}

impl Epoch {
    /// The order of epochs: first seen first.
    fn order(&self) -> (u64, u64, &str) {
        (self.since_ms, self.since_version, &self.id)
    }
}

/// Where a sampled user was first exposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exposure {
    /// Only feedback seen so far (on this replica): not an exposed user.
    None,
    /// First exposed in an epoch no longer kept: known, but in no stratum.
    Dropped,
    /// Indices into [`Cohorts::epochs`] and [`Cohorts::variants`].
    At { epoch: u16, variant: u16 },
}

/// One sampled user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct User {
    pub key: u32,
    pub exposure: Exposure,
    /// Served by a variant other than the first one later on (a weight change moved them).
    pub moved: bool,
    /// Bit `i` set: at least one feedback event of kind `i`.
    pub kinds: u8,
    pub requests: u32,
}

/// The epochs and the user sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Cohorts {
    /// Users with `key < threshold` are sampled: θ = threshold / 2^32.
    pub threshold: u64,
    pub epochs: Vec<Epoch>,
    pub variants: Vec<String>,
    /// Sorted by key, one per user.
    pub users: Vec<User>,
}

impl Default for Cohorts {
    fn default() -> Self {
        Cohorts { threshold: ALL, epochs: Vec::new(), variants: Vec::new(), users: Vec::new() }
    }
}

impl Cohorts {
    /// The sampling rate θ.
    pub fn rate(&self) -> f64 {
        self.threshold.min(ALL) as f64 / ALL as f64
    }

    pub fn merge(&mut self, o: &Cohorts) {
        self.threshold = self.threshold.min(o.threshold);
        // Epochs by id; the other's indices map onto ours.
        let mut epoch_map = Vec::with_capacity(o.epochs.len());
        for e in &o.epochs {
            match self.epochs.iter().position(|x| x.id == e.id) {
                Some(i) => {
                    let mine = &mut self.epochs[i];
                    if e.order() < mine.order() {
                        (mine.since_ms, mine.since_version) = (e.since_ms, e.since_version);
                    }
                    mine.last_ms = mine.last_ms.max(e.last_ms);
                    for (name, c) in &e.counts {
                        mine.counts.entry(name.clone()).or_default().merge(c);
                    }
                    epoch_map.push(i);
                }
                None => {
                    self.epochs.push(e.clone());
                    epoch_map.push(self.epochs.len() - 1);
                }
            }
        }
        let mut variant_map = Vec::with_capacity(o.variants.len());
        for v in &o.variants {
            match self.variants.iter().position(|x| x == v) {
                Some(i) => variant_map.push(i),
                None => {
                    self.variants.push(v.clone());
                    variant_map.push(self.variants.len() - 1);
                }
            }
        }
        let remap = |x: Exposure| match x {
            Exposure::At { epoch, variant } => {
                match (epoch_map.get(usize::from(epoch)), variant_map.get(usize::from(variant))) {
                    (Some(e), Some(v)) => Exposure::At { epoch: *e as u16, variant: *v as u16 },
                    _ => Exposure::Dropped,
                }
            }
            other => other,
        };
        let mut merged: BTreeMap<u32, User> = std::mem::take(&mut self.users).into_iter().map(|u| (u.key, u)).collect();
        for u in &o.users {
            let theirs = User { exposure: remap(u.exposure), ..*u };
            let combined = match merged.get(&u.key) {
                Some(mine) => self.combine(*mine, theirs),
                None => theirs,
            };
            merged.insert(u.key, combined);
        }
        let mut merged: Vec<User> = merged.into_values().collect();
        let threshold = self.threshold;
        merged.retain(|u| u64::from(u.key) < threshold);
        self.users = merged;
        self.bound_epochs();
    }

    /// One user seen twice: requests add, kinds OR, the earliest exposure wins.
    fn combine(&self, a: User, b: User) -> User {
        let (exposure, moved) = match (a.exposure, b.exposure) {
            (Exposure::Dropped, _) | (_, Exposure::Dropped) => (Exposure::Dropped, a.moved || b.moved),
            (Exposure::None, x) | (x, Exposure::None) => (x, a.moved || b.moved),
            (Exposure::At { epoch: ea, variant: va }, Exposure::At { epoch: eb, variant: vb }) => {
                // The earlier epoch; in one epoch (only conflicting counts do that) the variant
                // named first, so the result never depends on the order of merging.
                let name = |v: u16| self.variants.get(usize::from(v)).map(String::as_str);
                let rank = |e: u16, v: u16| (self.epochs.get(usize::from(e)).map(Epoch::order), name(v));
                let first = if rank(eb, vb) < rank(ea, va) { b.exposure } else { a.exposure };
                (first, a.moved || b.moved || va != vb)
            }
        };
        User { key: a.key, exposure, moved, kinds: a.kinds | b.kinds, requests: a.requests.saturating_add(b.requests) }
    }

    /// Keeps the [`MAX_EPOCHS`] most recently active epochs; users of a dropped one stay, in no
    /// stratum, so a returning user is never taken for a new one.
    fn bound_epochs(&mut self) {
        if self.epochs.len() <= MAX_EPOCHS {
            return;
        }
        let mut by_recency: Vec<usize> = (0..self.epochs.len()).collect();
        by_recency.sort_by(|&a, &b| {
            let (x, y) = (&self.epochs[a], &self.epochs[b]);
            (y.last_ms, &y.id).cmp(&(x.last_ms, &x.id))
        });
        let keep: std::collections::BTreeSet<usize> = by_recency.into_iter().take(MAX_EPOCHS).collect();
        let mut new_index = HashMap::new();
        let mut kept = Vec::with_capacity(MAX_EPOCHS);
        for (i, e) in std::mem::take(&mut self.epochs).into_iter().enumerate() {
            if keep.contains(&i) {
                new_index.insert(i, kept.len() as u16);
                kept.push(e);
            }
        }
        self.epochs = kept;
        for u in &mut self.users {
            if let Exposure::At { epoch, variant } = u.exposure {
                u.exposure = match new_index.get(&usize::from(epoch)) {
                    Some(e) => Exposure::At { epoch: *e, variant },
                    None => Exposure::Dropped,
                };
            }
        }
    }
}

/// The wire shape: users as one compact string (see [`encode_users`]).
#[derive(Serialize, Deserialize)]
struct Wire {
    threshold: u64,
    #[serde(default)]
    epochs: Vec<Epoch>,
    #[serde(default)]
    variants: Vec<String>,
    #[serde(default)]
    users: String,
}

impl Serialize for Cohorts {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Wire {
            threshold: self.threshold,
            epochs: self.epochs.clone(),
            variants: self.variants.clone(),
            users: encode_users(&self.users, self.variants.len()),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Cohorts {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = Wire::deserialize(d)?;
        let users = decode_users(&w.users, w.variants.len(), w.epochs.len()).map_err(serde::de::Error::custom)?;
        if w.threshold > ALL {
            return Err(serde::de::Error::custom("threshold above 2^32"));
        }
        Ok(Cohorts { threshold: w.threshold, epochs: w.epochs, variants: w.variants, users })
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Users sorted by key as bytes — per user: varint(key − previous key), varint(exposure: 0 none,
/// 1 dropped, 2 + epoch·variants + variant), one byte (kinds | moved << 7), varint(requests) —
/// then base64url without padding. About 6 bytes a user once the sample is full.
pub fn encode_users(users: &[User], variants: usize) -> String {
    let mut bytes = Vec::with_capacity(users.len() * 6);
    let mut prev = 0u64;
    let nv = variants.max(1) as u64;
    for u in users {
        varint(&mut bytes, u64::from(u.key) - prev);
        prev = u64::from(u.key);
        let code = match u.exposure {
            Exposure::None => 0,
            Exposure::Dropped => 1,
            Exposure::At { epoch, variant } => 2 + u64::from(epoch) * nv + u64::from(variant),
        };
        varint(&mut bytes, code);
        bytes.push((u.kinds & 0x7f) | (u8::from(u.moved) << 7));
        varint(&mut bytes, u64::from(u.requests));
    }
    let mut out = String::with_capacity(bytes.len() * 4 / 3 + 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(B64[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn done(&self) -> bool {
        self.at >= self.bytes.len()
    }

    fn byte(&mut self) -> Result<u64, &'static str> {
        let b = *self.bytes.get(self.at).ok_or("a truncated user sample")?;
        self.at += 1;
        Ok(u64::from(b))
    }

    fn varint(&mut self) -> Result<u64, &'static str> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= (b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err("a user sample number too long")
    }
}

/// The inverse of [`encode_users`]; refuses anything it would not have written.
pub fn decode_users(text: &str, variants: usize, epochs: usize) -> Result<Vec<User>, &'static str> {
    let mut bytes = Vec::with_capacity(text.len() * 3 / 4);
    let sextets: Vec<u32> = text
        .bytes()
        .map(|c| B64.iter().position(|a| *a == c).map(|p| p as u32))
        .collect::<Option<_>>()
        .ok_or("a user sample character outside base64url")?;
    for chunk in sextets.chunks(4) {
        if chunk.len() == 1 {
            return Err("a truncated user sample");
        }
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, s)| acc | s << (18 - 6 * i));
        for i in 0..chunk.len() - 1 {
            bytes.push((n >> (16 - 8 * i)) as u8);
        }
    }
    let mut r = Reader { bytes: &bytes, at: 0 };
    let nv = variants.max(1) as u64;
    let mut users = Vec::new();
    let mut key = 0u64;
    while !r.done() {
        let delta = r.varint()?;
        key += delta;
        if key >= ALL || (!users.is_empty() && delta == 0) {
            return Err("user sample keys out of order");
        }
        let code = r.varint()?;
        let flags = u8::try_from(r.byte()?).map_err(|_| "bad user flags")?;
        let requests = u32::try_from(r.varint()?).map_err(|_| "bad request count")?;
        let exposure = match code {
            0 => Exposure::None,
            1 => Exposure::Dropped,
            c => {
                let (epoch, variant) = ((c - 2) / nv, (c - 2) % nv);
                if epoch as usize >= epochs || variant as usize >= variants {
                    return Err("a sampled user in an unknown epoch or variant");
                }
                Exposure::At { epoch: epoch as u16, variant: variant as u16 }
            }
        };
        users.push(User { key: key as u32, exposure, moved: flags & 0x80 != 0, kinds: flags & 0x7f, requests });
    }
    Ok(users)
}

#[cfg(test)]
#[path = "cohort_tests.rs"]
mod tests;
