//! Request ids: echo a sane caller-supplied `x-request-id`, else mint a unique one cheaply.
//!
//! A minted id is 32 hex digits: 8 random per process, 8 for the config version that served
//! (so feedback naming the id is attributed under that version's split on any replica, with no
//! shared state), and a 16-digit counter.

use std::sync::atomic::{AtomicU64, Ordering};

use http::HeaderValue;

/// Mints `<8 hex random per process><8 hex config version><16 hex counter>` ids: unique across
/// replicas with overwhelming probability, and one atomic increment per request instead of a
/// CSPRNG call.
#[derive(Debug)]
pub struct RequestIds {
    prefix: u32,
    counter: AtomicU64,
}

impl RequestIds {
    pub fn new() -> RequestIds {
        let mut seed = [0u8; 4];
        // Without OS randomness, fall back to time: ids stay unique within this process anyway.
        if getrandom::fill(&mut seed).is_err() {
            let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            seed = (nanos.as_nanos() as u32).to_le_bytes();
        }
        RequestIds { prefix: u32::from_le_bytes(seed), counter: AtomicU64::new(0) }
    }

    /// A fresh id naming `version` (versions past `u32::MAX` are not named: `ffffffff`).
    pub fn next(&self, version: u64) -> HeaderValue {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let v = u32::try_from(version).ok().filter(|v| *v != u32::MAX).unwrap_or(u32::MAX);
        let mut buf = [0u8; 32];
        hex16((u64::from(self.prefix) << 32) | u64::from(v), &mut buf[..16]);
        hex16(n, &mut buf[16..]);
        // Hex digits are always a valid header value.
        HeaderValue::from_bytes(&buf).unwrap_or_else(|_| HeaderValue::from_static("0"))
    }

    /// The caller's id when it is 1-128 characters of `A-Za-z0-9-_.:`, else a fresh one.
    pub fn accept_or_mint(&self, supplied: Option<&HeaderValue>, version: u64) -> HeaderValue {
        match supplied {
            Some(v) if acceptable(v.as_bytes()) => v.clone(),
            _ => self.next(version),
        }
    }
}

/// The config version a minted id names, if `id` has a minted id's shape. A caller's own
/// 32-hex id decodes to a random number too: callers only trust it when that version is one
/// the history knows (a chance of about 1 in 16 million for a random id).
pub fn version_of(id: &[u8]) -> Option<u64> {
    if id.len() != 32 || !id.iter().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c)) {
        return None;
    }
    let text = std::str::from_utf8(&id[8..16]).ok()?;
    let v = u32::from_str_radix(text, 16).ok()?;
    (v != u32::MAX).then_some(u64::from(v))
}

impl Default for RequestIds {
    fn default() -> Self {
        RequestIds::new()
    }
}

fn acceptable(b: &[u8]) -> bool {
    (1..=128).contains(&b.len()) && b.iter().all(|c| c.is_ascii_alphanumeric() || b"-_.:".contains(c))
}

fn hex16(v: u64, out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, o) in out.iter_mut().enumerate().take(16) {
        *o = DIGITS[((v >> (60 - 4 * i)) & 15) as usize];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_ids_are_unique_hex() {
        let ids = RequestIds::new();
        let a = ids.next(7);
        let b = ids.next(7);
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a.as_bytes().iter().all(|c| c.is_ascii_hexdigit()));
        assert!(b.to_str().unwrap().ends_with("0000000000000001"));
        assert_eq!(version_of(a.as_bytes()), Some(7));
        assert_eq!(&a.as_bytes()[8..16], b"00000007");
        assert_eq!(version_of(ids.next(u64::MAX).as_bytes()), None, "too large to name");
        assert_eq!(version_of(b"req-123"), None);
        assert_eq!(version_of(b"0123456789ABCDEF0123456789abcdef"), None, "minted ids are lowercase");
    }

    #[test]
    fn echoes_only_sane_ids() {
        let ids = RequestIds::new();
        let good = HeaderValue::from_static("req-1.a:b_c");
        assert_eq!(ids.accept_or_mint(Some(&good), 1), good);
        let bad = HeaderValue::from_static("has space");
        assert_ne!(ids.accept_or_mint(Some(&bad), 1), bad);
        let long = HeaderValue::from_str(&"a".repeat(129)).unwrap();
        assert_eq!(ids.accept_or_mint(Some(&long), 1).len(), 32);
    }
}
