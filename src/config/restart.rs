//! The settings read only at start-up: what a reload cannot change. One list drives the reload
//! warning ([`restart_required`]) and the README ([`RESTART_REQUIRED`], pinned by a test).
//!
//! Each entry is true of today's code: listeners, the runtime and the accept loops' connection
//! limits are built once in `splitgate serve`; the access log, TLS acceptor, upstream CA, audit
//! file and the DynamoDB watcher are opened there too. Anything read from the live snapshot per
//! request or per pass (`body_timeout_ms`, `max_body_bytes`, `max_in_flight`, `max_config_bytes`,
//! `[cloudwatch]`, `[registry]`, `[guard]`, `admin.tokens`, …) is not listed: it applies live.

use super::{Plan, SourceConfig, SourceKind};

/// Whether one start-up-only setting differs between two plans.
type Changed = fn(&Plan, &Plan) -> bool;

/// The DynamoDB source, if any: `kind = "file"` means the same as no `[source]`.
fn dynamodb(p: &Plan) -> Option<&SourceConfig> {
    p.source.as_ref().filter(|s| s.kind == SourceKind::Dynamodb)
}

const CHECKS: [(&str, Changed); 14] = [
    ("server.listen", |a, b| a.listen != b.listen),
    ("server.admin_listen", |a, b| a.admin_listen != b.admin_listen),
    ("server.workers", |a, b| a.server.workers != b.server.workers),
    ("server.max_connections", |a, b| a.server.max_connections != b.server.max_connections),
    ("server.idle_timeout_ms", |a, b| a.server.idle_timeout_ms != b.server.idle_timeout_ms),
    ("server.max_header_bytes", |a, b| a.server.max_header_bytes != b.server.max_header_bytes),
    ("server.h2_keepalive_interval_ms", |a, b| a.server.h2_keepalive_interval_ms != b.server.h2_keepalive_interval_ms),
    ("server.h2_keepalive_timeout_ms", |a, b| a.server.h2_keepalive_timeout_ms != b.server.h2_keepalive_timeout_ms),
    ("server.access_log", |a, b| a.server.access_log != b.server.access_log),
    // The certificate and key files are re-read when they change; their paths are not.
    ("server.tls", |a, b| a.server.tls != b.server.tls),
    ("server.upstream_ca_path", |a, b| a.server.upstream_ca_path != b.server.upstream_ca_path),
    ("admin.audit_log", |a, b| a.audit_log != b.audit_log),
    ("source", |a, b| dynamodb(a) != dynamodb(b)),
    ("fleet", |a, b| a.fleet != b.fleet),
];

/// Every setting that needs a restart, by field path, in the order [`restart_required`] reports.
pub const RESTART_REQUIRED: &[&str] = &{
    let mut names = [""; CHECKS.len()];
    let mut i = 0;
    while i < CHECKS.len() {
        names[i] = CHECKS[i].0;
        i += 1;
    }
    names
};

/// The start-up-only settings that differ between `old` and `new`: a reload applies everything
/// else, and these keep their old values until a restart.
pub fn restart_required(old: &Plan, new: &Plan) -> Vec<&'static str> {
    CHECKS.iter().filter(|(_, changed)| changed(old, new)).map(|(name, _)| *name).collect()
}

#[cfg(test)]
mod tests {
    use super::super::support_tests::GOOD;
    use super::super::{parse, validate, RawConfig, SourceKind, TlsConfig};
    use super::*;

    /// One edit of the shipped config.
    type Edit = fn(&mut RawConfig);

    fn plan(edit: impl FnOnce(&mut RawConfig)) -> Plan {
        let mut raw = parse(GOOD).unwrap();
        edit(&mut raw);
        validate(&raw).unwrap()
    }

    fn dynamodb_source(raw: &mut RawConfig) {
        raw.source = Some(SourceConfig {
            kind: SourceKind::Dynamodb,
            table: Some("t".into()),
            key: Some("k".into()),
            poll_interval_ms: 1_000,
            region: None,
            endpoint_url: None,
        });
    }

    #[test]
    fn each_setting_alone_is_reported() {
        let edits: [(&str, Edit); 14] = [
            ("server.listen", |r| r.server.listen = "127.0.0.1:8081".into()),
            ("server.admin_listen", |r| r.server.admin_listen = "127.0.0.1:9902".into()),
            ("server.workers", |r| r.server.workers = 2),
            ("server.max_connections", |r| r.server.max_connections = 100),
            ("server.idle_timeout_ms", |r| r.server.idle_timeout_ms = 80_000),
            ("server.max_header_bytes", |r| r.server.max_header_bytes = 32_768),
            ("server.h2_keepalive_interval_ms", |r| r.server.h2_keepalive_interval_ms = 30_000),
            ("server.h2_keepalive_timeout_ms", |r| r.server.h2_keepalive_timeout_ms = 5_000),
            ("server.access_log", |r| r.server.access_log = false),
            ("server.tls", |r| r.server.tls = Some(TlsConfig { cert_path: "c.pem".into(), key_path: "k.pem".into() })),
            ("server.upstream_ca_path", |r| r.server.upstream_ca_path = Some("/etc/ca.pem".into())),
            ("admin.audit_log", |r| r.admin.audit_log = Some("/tmp/audit.jsonl".into())),
            ("source", dynamodb_source),
            ("fleet", |r| {
                r.fleet = Some(crate::config::FleetConfig {
                    table: "fleet".into(),
                    region: None,
                    endpoint_url: None,
                    flush_interval_ms: 5_000,
                    lease_ms: 10_000,
                    replica_id: None,
                })
            }),
        ];
        assert_eq!(edits.map(|(name, _)| name), RESTART_REQUIRED, "one edit per entry, in order");
        let base = plan(|_| {});
        for (name, edit) in edits {
            let changed = plan(edit);
            assert_eq!(restart_required(&base, &changed), [name]);
            assert_eq!(restart_required(&changed, &base), [name], "{name} back");
        }
    }

    #[test]
    fn live_settings_and_unchanged_plans_need_no_restart() {
        let base = plan(|_| {});
        assert!(restart_required(&base, &base).is_empty());
        let live: [Edit; 5] = [
            |r| {
                let vs = &mut r.split.as_mut().unwrap().variants;
                (vs[0].weight, vs[1].weight) = (50.0, 50.0);
            },
            // Read from the live snapshot on every request.
            |r| r.server.body_timeout_ms = 5_000,
            |r| r.server.max_body_bytes = 1_000,
            |r| r.guard = Some(Default::default()),
            // Spelling out the default source is no change.
            |r| {
                r.source = Some(SourceConfig {
                    kind: SourceKind::File,
                    table: None,
                    key: None,
                    poll_interval_ms: 1_000,
                    region: None,
                    endpoint_url: None,
                })
            },
        ];
        for edit in live {
            assert_eq!(restart_required(&base, &plan(edit)), Vec::<&str>::new());
        }
    }

    #[test]
    fn the_readme_names_every_restart_setting() {
        let readme = include_str!("../../README.md");
        for name in RESTART_REQUIRED {
            assert!(readme.contains(&format!("`{name}`")), "README.md does not name `{name}` as needing a restart");
        }
    }
}
