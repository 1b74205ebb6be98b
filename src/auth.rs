//! API-key authentication. Only SHA-256 digests of keys are stored or compared.
//!
//! The presented key is hashed and the digest looked up in a map. Because the lookup is keyed by a
//! digest of the secret, timing differences reveal nothing usable about any stored key; the final
//! equality check is still done in constant time as defence in depth.

use std::sync::Arc;

use sha2::{Digest, Sha256};

/// What the proxy knows about a caller once its key matched.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The key's configured name: safe to log, never the key itself.
    pub name: Arc<str>,
    /// May force a variant with the `x-splitgate-variant` request header.
    pub allow_override: bool,
    /// This key's own rate limit, if configured.
    pub throttle: Option<crate::throttle::Gcra>,
    /// Its live bucket (built with the snapshot; state carried across reloads).
    pub bucket: Option<std::sync::Arc<crate::throttle::TokenBucket>>,
}

/// The set of valid keys, by digest.
#[derive(Debug, Default)]
pub struct KeyStore {
    by_digest: ahash::HashMap<[u8; 32], Caller>,
}

impl KeyStore {
    pub fn new(entries: impl IntoIterator<Item = ([u8; 32], Caller)>) -> KeyStore {
        KeyStore { by_digest: entries.into_iter().collect() }
    }

    /// The caller owning `key`, if any.
    pub fn authenticate(&self, key: &[u8]) -> Option<&Caller> {
        let digest: [u8; 32] = Sha256::digest(key).into();
        let (stored, caller) = self.by_digest.get_key_value(&digest)?;
        constant_time_eq(stored, &digest).then_some(caller)
    }

    /// The caller named `name` (build time only: a linear scan).
    pub fn by_name(&self, name: &str) -> Option<&Caller> {
        self.by_digest.values().find(|c| &*c.name == name)
    }

    pub fn len(&self) -> usize {
        self.by_digest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Parses 64 hex digits (either case) into a digest.
pub fn parse_sha256_hex(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        out[i] = (hex_val(pair[0])? << 4) | hex_val(pair[1])?;
    }
    Some(out)
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Lowercase hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// A fresh random key (`sg_` + 40 hex digits of OS randomness) and its SHA-256 hex.
pub fn generate_key() -> Result<(String, String), getrandom::Error> {
    let mut raw = [0u8; 20];
    getrandom::fill(&mut raw)?;
    let key = format!("sg_{}", to_hex(&raw));
    let digest = to_hex(&Sha256::digest(key.as_bytes()));
    Ok((key, digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> KeyStore {
        let digest = parse_sha256_hex("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08").unwrap();
        KeyStore::new([(digest, Caller { name: "locust".into(), allow_override: false, throttle: None, bucket: None })])
    }

    #[test]
    fn matches_by_digest() {
        // 9f86d0... is SHA-256("test").
        let s = store();
        assert_eq!(s.authenticate(b"test").map(|c| &*c.name), Some("locust"));
        assert!(s.authenticate(b"Test").is_none());
        assert!(s.authenticate(b"").is_none());
        assert!(s
            .authenticate("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".as_bytes())
            .is_none());
    }

    #[test]
    fn hex_parsing() {
        assert!(parse_sha256_hex(&"A".repeat(64)).is_some());
        assert!(parse_sha256_hex(&"a".repeat(63)).is_none());
        assert!(parse_sha256_hex(&"g".repeat(64)).is_none());
        assert!(parse_sha256_hex(&"é".repeat(32)).is_none());
        let d = [0xabu8; 32];
        assert_eq!(parse_sha256_hex(&to_hex(&d)), Some(d));
    }

    #[test]
    fn generated_keys_authenticate() {
        let (key, digest) = generate_key().unwrap();
        assert!(key.starts_with("sg_") && key.len() == 43);
        let s = KeyStore::new([(
            parse_sha256_hex(&digest).unwrap(),
            Caller { name: "n".into(), allow_override: true, throttle: None, bucket: None },
        )]);
        assert!(s.authenticate(key.as_bytes()).is_some());
        assert_ne!(generate_key().unwrap().0, key);
    }
}
