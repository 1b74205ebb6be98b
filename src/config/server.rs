//! `[server]`: listeners, connection and request limits, TLS and the upstream CA. Most of it is
//! read once at start-up (see `restart`); the per-request limits apply live.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::Issues;
use crate::clientip::{Cidr, TrustedProxies};

/// `[server]`: listeners and request limits. Listener changes need a restart.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(default = "default_listen")]
    pub listen: String,
    #[serde(default = "default_admin_listen")]
    pub admin_listen: String,
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// Largest model answer the proxy will buffer.
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: usize,
    /// Requests being processed at once before new ones are shed with 503.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// Open client connections on the main listener; more are closed at once.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Tokio worker threads; 0 = one per core. 1 runs a current-thread runtime (no work-stealing
    /// queues, no cross-thread wake-ups): the choice for one pinned core or a 1-vCPU task.
    #[serde(default)]
    pub workers: usize,
    /// One JSON line per request on stdout.
    #[serde(default = "default_access_log")]
    pub access_log: bool,
    /// Largest request head (request line + headers) accepted.
    #[serde(default = "default_max_header_bytes")]
    pub max_header_bytes: usize,
    /// How long an HTTP/1 client connection may wait for its next request head, idle keep-alive
    /// time included (hyper times both with one timer). Keep it above the idle timeout of the load
    /// balancer in front (ALB: 60 s by default), or it reuses connections we just closed (502s).
    #[serde(default = "default_idle_timeout_ms")]
    pub idle_timeout_ms: u64,
    /// How long a request body may take to arrive once its head has (NGINX's
    /// `client_body_timeout`); past it the caller gets 408 and the connection is closed.
    #[serde(default = "default_body_timeout_ms")]
    pub body_timeout_ms: u64,
    /// HTTP/2: a PING is sent on a connection this long after its last frame…
    #[serde(default = "default_h2_keepalive_interval_ms")]
    pub h2_keepalive_interval_ms: u64,
    /// …and the connection is closed if the PING is not acknowledged within this.
    #[serde(default = "default_h2_keepalive_timeout_ms")]
    pub h2_keepalive_timeout_ms: u64,
    /// Largest config file (or DynamoDB document) accepted; a larger one is rejected unread.
    /// Default 1 MiB, at least 1 KiB, at most 64 MiB.
    #[serde(default = "default_max_config_bytes")]
    pub max_config_bytes: usize,
    /// TLS on the main listener; plain HTTP (and h2c) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    /// Extra CA bundle (PEM) trusted for https:// model URLs, besides the system roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_ca_path: Option<String>,
    /// Networks (CIDRs, or single addresses) of the proxies in front (the ALB's subnets): when the
    /// peer is one of them, the access log's `ip` is the rightmost untrusted `X-Forwarded-For`
    /// hop. Empty (default): the peer's address, whatever the header says.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted_proxies: Vec<String>,
}

/// `[server.tls]`: PEM files, re-read when they change.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert_path: String,
    pub key_path: String,
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_admin_listen() -> String {
    "127.0.0.1:9901".into()
}
fn default_max_body_bytes() -> usize {
    1 << 20
}
fn default_max_response_bytes() -> usize {
    8 << 20
}
fn default_max_in_flight() -> usize {
    8_192
}
fn default_max_connections() -> usize {
    16_384
}
fn default_access_log() -> bool {
    true
}
fn default_max_header_bytes() -> usize {
    16 * 1024
}
fn default_idle_timeout_ms() -> u64 {
    75_000
}
fn default_body_timeout_ms() -> u64 {
    10_000
}
fn default_h2_keepalive_interval_ms() -> u64 {
    20_000
}
fn default_h2_keepalive_timeout_ms() -> u64 {
    10_000
}
fn default_max_config_bytes() -> usize {
    1 << 20
}

/// A file without `[server]`: the same values as every field left out.
impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            admin_listen: default_admin_listen(),
            max_body_bytes: default_max_body_bytes(),
            max_response_bytes: default_max_response_bytes(),
            max_in_flight: default_max_in_flight(),
            max_connections: default_max_connections(),
            workers: 0,
            access_log: default_access_log(),
            max_header_bytes: default_max_header_bytes(),
            idle_timeout_ms: default_idle_timeout_ms(),
            body_timeout_ms: default_body_timeout_ms(),
            h2_keepalive_interval_ms: default_h2_keepalive_interval_ms(),
            h2_keepalive_timeout_ms: default_h2_keepalive_timeout_ms(),
            max_config_bytes: default_max_config_bytes(),
            tls: None,
            upstream_ca_path: None,
            trusted_proxies: Vec::new(),
        }
    }
}

/// Checks `[server]`; returns the two listener addresses when they parse.
pub(super) fn validate(issues: &mut Issues, s: &ServerConfig) -> (Option<SocketAddr>, Option<SocketAddr>) {
    let listen = parse_addr(issues, "server.listen", &s.listen);
    let admin_listen = parse_addr(issues, "server.admin_listen", &s.admin_listen);
    if let (Some(a), Some(b)) = (listen, admin_listen) {
        if listeners_conflict(a, b) {
            issues.add("server.admin_listen", LISTENERS_MUST_DIFFER);
        }
    }
    if !(1..=64 << 20).contains(&s.max_body_bytes) {
        issues.add("server.max_body_bytes", "must be between 1 and 67108864");
    }
    if !(1..=256 << 20).contains(&s.max_response_bytes) {
        issues.add("server.max_response_bytes", "must be between 1 and 268435456");
    }
    if s.max_in_flight == 0 {
        issues.add("server.max_in_flight", "must be at least 1");
    }
    if !(8_192..=1 << 20).contains(&s.max_header_bytes) {
        issues.add("server.max_header_bytes", "must be between 8192 and 1048576");
    }
    if !(1_000..=3_600_000).contains(&s.idle_timeout_ms) {
        issues.add("server.idle_timeout_ms", "must be between 1000 and 3600000");
    }
    if !(100..=600_000).contains(&s.body_timeout_ms) {
        issues.add("server.body_timeout_ms", "must be between 100 and 600000");
    }
    if !(1_000..=3_600_000).contains(&s.h2_keepalive_interval_ms) {
        issues.add("server.h2_keepalive_interval_ms", "must be between 1000 and 3600000");
    }
    if !(100..=600_000).contains(&s.h2_keepalive_timeout_ms) {
        issues.add("server.h2_keepalive_timeout_ms", "must be between 100 and 600000");
    }
    if !(1 << 10..=super::STARTUP_MAX_CONFIG_BYTES).contains(&s.max_config_bytes) {
        issues.add("server.max_config_bytes", "must be between 1024 and 67108864");
    }
    if s.tls.as_ref().is_some_and(|t| t.cert_path.is_empty() || t.key_path.is_empty()) {
        issues.add("server.tls", "cert_path and key_path are both required");
    }
    if s.max_connections == 0 {
        issues.add("server.max_connections", "must be at least 1");
    }
    if s.workers > 1024 {
        issues.add("server.workers", "must be at most 1024 (0 = one per core)");
    }
    (listen, admin_listen)
}

/// Why [`listeners_conflict`] refuses a pair; `splitgate check` and `serve` (after `--listen` /
/// `--admin-listen`) say the same.
pub const LISTENERS_MUST_DIFFER: &str = "the main and admin listeners must not share a port on the same address \
     (server.listen / --listen, server.admin_listen / --admin-listen)";

/// Whether the two listeners would fight over one socket: the same port on the same address, or
/// on a wildcard address that covers the other (`0.0.0.0:8080` and `127.0.0.1:8080`). Port 0
/// twice is fine: each listener gets its own ephemeral port.
pub fn listeners_conflict(a: SocketAddr, b: SocketAddr) -> bool {
    if a.port() != b.port() || a.port() == 0 {
        return false;
    }
    let covers = |wild: SocketAddr, other: SocketAddr| {
        // `[::]` is dual-stack on Linux by default, so it covers IPv4 addresses as well.
        wild.ip().is_unspecified() && (wild.is_ipv6() || other.is_ipv4())
    };
    a.ip() == b.ip() || covers(a, b) || covers(b, a)
}

/// `server.trusted_proxies`, parsed; each bad entry is an issue at its index.
pub(super) fn trusted_proxies(issues: &mut Issues, s: &ServerConfig) -> TrustedProxies {
    let mut networks = Vec::with_capacity(s.trusted_proxies.len());
    for (i, text) in s.trusted_proxies.iter().enumerate() {
        match text.trim().parse::<Cidr>() {
            Ok(c) => networks.push(c),
            Err(e) => issues.add(format!("server.trusted_proxies[{i}]"), e.to_string()),
        }
    }
    TrustedProxies::new(networks)
}

fn parse_addr(issues: &mut Issues, path: &str, value: &str) -> Option<SocketAddr> {
    match value.parse() {
        Ok(a) => Some(a),
        Err(_) => {
            issues.add(path, format!("`{value}` is not an IP:port address"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::support_tests::{paths, GOOD};
    use super::super::{parse, validate};
    use super::*;

    #[test]
    fn an_absent_section_and_absent_fields_get_the_same_defaults() {
        let empty: ServerConfig = toml::from_str("").unwrap();
        assert_eq!(empty, ServerConfig::default());
    }

    #[test]
    fn idle_timeout_defaults_above_load_balancer_idle_timeouts_and_is_bounded() {
        let plan = validate(&parse(&GOOD.replace("idle_timeout_ms = 75000", "")).unwrap()).unwrap();
        // ALB's default idle timeout is 60 s: ours must be longer, or the ALB reuses closed connections.
        assert_eq!(plan.server.idle_timeout_ms, 75_000);
        for bad in ["999", "3600001"] {
            let text = GOOD.replace("idle_timeout_ms = 75000", &format!("idle_timeout_ms = {bad}"));
            assert_eq!(paths(&text), vec!["server.idle_timeout_ms"], "{bad}");
        }
    }

    #[test]
    fn max_config_bytes_defaults_to_one_mib_and_is_at_least_one_kib() {
        let plan = validate(&parse(GOOD).unwrap()).unwrap();
        assert_eq!(plan.server.max_config_bytes, 1_048_576);
        let with = |v: &str| GOOD.replacen("[server]", &format!("[server]\nmax_config_bytes = {v}"), 1);
        assert_eq!(paths(&with("1023")), vec!["server.max_config_bytes"]);
        assert_eq!(paths(&with("67108865")), vec!["server.max_config_bytes"]);
        assert_eq!(validate(&parse(&with("1024")).unwrap()).unwrap().server.max_config_bytes, 1024);
    }

    #[test]
    fn listeners_conflict_on_a_shared_port_and_address_only() {
        let c = |a: &str, b: &str| listeners_conflict(a.parse().unwrap(), b.parse().unwrap());
        assert!(c("127.0.0.1:8080", "127.0.0.1:8080"));
        assert!(c("0.0.0.0:8080", "127.0.0.1:8080") && c("127.0.0.1:8080", "0.0.0.0:8080"));
        assert!(c("[::]:8080", "10.0.0.1:8080") && c("[::]:8080", "[::1]:8080"));
        assert!(!c("0.0.0.0:8080", "[::1]:8080"), "an IPv4 wildcard leaves IPv6 alone");
        assert!(!c("127.0.0.1:8080", "127.0.0.2:8080"));
        assert!(!c("127.0.0.1:8080", "127.0.0.1:9901"));
        assert!(!c("127.0.0.1:0", "127.0.0.1:0"), "two ephemeral ports never clash");
        let text = GOOD.replace("127.0.0.1:9901", "0.0.0.0:8080");
        assert_eq!(paths(&text), ["server.admin_listen"]);
        let all = super::super::support_tests::issues(&text);
        assert!(all[0].message.contains("--admin-listen"), "{:?}", all[0]);
    }

    #[test]
    fn trusted_proxies_are_parsed_and_every_bad_entry_named() {
        let with = |v: &str| GOOD.replacen("[server]", &format!("[server]\ntrusted_proxies = {v}"), 1);
        let plan = validate(&parse(GOOD).unwrap()).unwrap();
        assert!(plan.trusted_proxies.is_empty(), "nobody is trusted by default");
        let plan = validate(&parse(&with(r#"["10.0.0.0/16", " 2001:db8::/32 ", "192.168.7.1"]"#)).unwrap()).unwrap();
        let shown: Vec<String> = plan.trusted_proxies.networks().iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["10.0.0.0/16", "2001:db8::/32", "192.168.7.1/32"]);
        let text = with(r#"["10.0.0.0/16", "10.0.0.1/8", "vpc", "10.0.0.0/40"]"#);
        assert_eq!(
            paths(&text),
            ["server.trusted_proxies[1]", "server.trusted_proxies[2]", "server.trusted_proxies[3]"]
        );
        let all = super::super::support_tests::issues(&text);
        assert!(all[0].message.contains("the network is 10.0.0.0/8"), "{:?}", all[0]);
        assert!(all[2].message.contains("0-32"), "{:?}", all[2]);
        assert!(parse(&with(r#""10.0.0.0/8""#)).is_err(), "a list, not a string");
    }
}
