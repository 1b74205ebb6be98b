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

/// SHA-256 of `splitgate-demo-key`, the key published in the README and `config/splitgate.toml`.
/// Anyone can send it, so a config holding it must never serve beyond this machine.
pub const DEMO_KEY_SHA256: &str = "5b1f89fd1eaf4f5a25821da4a9d3f8a6881fdd0d8ec50232ed0bf787f4f9a0ad";

/// Whether `digest` is the published demo key's.
pub fn is_demo_key(digest: &[u8; 32]) -> bool {
    parse_sha256_hex(DEMO_KEY_SHA256).is_some_and(|d| constant_time_eq(&d, digest))
}

/// Environment variables the ECS agent sets in every task: their presence means "deployed".
const ECS_MARKERS: [&str; 2] = ["ECS_CONTAINER_METADATA_URI_V4", "ECS_CONTAINER_METADATA_URI"];

/// Where a config holding the demo key may be served: decided once at start-up, applied to the
/// first config and to every reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoPolicy {
    /// The main listener's address (after `--listen`).
    pub listen: std::net::SocketAddr,
    /// `serve --demo`: the operator asked for the demo key off loopback.
    pub demo: bool,
    /// Running as an ECS task.
    pub on_ecs: bool,
}

/// Why a config holding the demo key was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DemoKeyRefused {
    #[error(
        "the config holds the published demo key (splitgate-demo-key) and this is an ECS task: a deployment \
         never serves it, `--demo` or not; put your own `[[auth.keys]]` (splitgate keys new) in the config"
    )]
    OnEcs,
    #[error(
        "the config holds the published demo key (splitgate-demo-key) and the main listener {0} is not loopback; \
         replace the key (splitgate keys new), or pass `serve --demo` to serve the demo anyway"
    )]
    NotLoopback(std::net::SocketAddr),
}

impl DemoPolicy {
    /// The policy for this process: `listen`, `--demo`, and the ECS markers in the environment.
    pub fn from_env(listen: std::net::SocketAddr, demo: bool) -> DemoPolicy {
        DemoPolicy { listen, demo, on_ecs: ECS_MARKERS.iter().any(|v| std::env::var_os(v).is_some()) }
    }

    /// Refuses `keys` when they include the demo key and this process may not serve it.
    pub fn check<'a>(&self, mut keys: impl Iterator<Item = &'a [u8; 32]>) -> Result<(), DemoKeyRefused> {
        if !keys.any(is_demo_key) {
            return Ok(());
        }
        match (self.on_ecs, self.listen.ip().is_loopback(), self.demo) {
            (true, _, _) => Err(DemoKeyRefused::OnEcs),
            (false, false, false) => Err(DemoKeyRefused::NotLoopback(self.listen)),
            _ => Ok(()),
        }
    }
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

    #[test]
    fn the_demo_key_serves_on_loopback_or_with_demo_and_never_on_ecs() {
        let demo = [parse_sha256_hex(DEMO_KEY_SHA256).unwrap()];
        let other = [[7u8; 32]];
        let policy = |listen: &str, demo, on_ecs| DemoPolicy { listen: listen.parse().unwrap(), demo, on_ecs };
        assert_eq!(to_hex(&Sha256::digest(b"splitgate-demo-key")), DEMO_KEY_SHA256);
        assert_eq!(policy("127.0.0.1:8080", false, false).check(demo.iter()), Ok(()));
        assert_eq!(policy("[::1]:8080", false, false).check(demo.iter()), Ok(()));
        let open = policy("0.0.0.0:8080", false, false);
        assert_eq!(open.check(demo.iter()), Err(DemoKeyRefused::NotLoopback(open.listen)));
        assert!(open.check(demo.iter()).unwrap_err().to_string().contains("--demo"));
        assert_eq!(open.check(other.iter()), Ok(()), "only the demo key is refused");
        assert_eq!(policy("0.0.0.0:8080", true, false).check(demo.iter()), Ok(()));
        assert_eq!(policy("127.0.0.1:8080", true, true).check(demo.iter()), Err(DemoKeyRefused::OnEcs));
        assert_eq!(policy("0.0.0.0:8080", false, true).check(other.iter()), Ok(()));
    }
}
