//! Request ids: echo a sane caller-supplied `x-request-id`, else mint a unique one cheaply.

use std::sync::atomic::{AtomicU64, Ordering};

use http::HeaderValue;

/// Mints `<16 hex random per process><16 hex counter>` ids: unique across replicas with
/// overwhelming probability, and one atomic increment per request instead of a CSPRNG call.
#[derive(Debug)]
pub struct RequestIds {
    prefix: u64,
    counter: AtomicU64,
}

impl RequestIds {
    pub fn new() -> RequestIds {
        let mut seed = [0u8; 8];
        // Without OS randomness, fall back to time: ids stay unique within this process anyway.
        if getrandom::fill(&mut seed).is_err() {
            let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            seed = (nanos.as_nanos() as u64).to_le_bytes();
        }
        RequestIds { prefix: u64::from_le_bytes(seed), counter: AtomicU64::new(0) }
    }

    pub fn next(&self) -> HeaderValue {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut buf = [0u8; 32];
        hex16(self.prefix, &mut buf[..16]);
        hex16(n, &mut buf[16..]);
        // Hex digits are always a valid header value.
        HeaderValue::from_bytes(&buf).unwrap_or_else(|_| HeaderValue::from_static("0"))
    }

    /// The caller's id when it is 1-128 characters of `A-Za-z0-9-_.:`, else a fresh one.
    pub fn accept_or_mint(&self, supplied: Option<&HeaderValue>) -> HeaderValue {
        match supplied {
            Some(v) if acceptable(v.as_bytes()) => v.clone(),
            _ => self.next(),
        }
    }
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
        let a = ids.next();
        let b = ids.next();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a.as_bytes().iter().all(|c| c.is_ascii_hexdigit()));
        assert!(b.to_str().unwrap().ends_with("0000000000000001"));
    }

    #[test]
    fn echoes_only_sane_ids() {
        let ids = RequestIds::new();
        let good = HeaderValue::from_static("req-1.a:b_c");
        assert_eq!(ids.accept_or_mint(Some(&good)), good);
        let bad = HeaderValue::from_static("has space");
        assert_ne!(ids.accept_or_mint(Some(&bad)), bad);
        let long = HeaderValue::from_str(&"a".repeat(129)).unwrap();
        assert_eq!(ids.accept_or_mint(Some(&long)).len(), 32);
    }
}
