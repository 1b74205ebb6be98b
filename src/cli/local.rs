//! The commands that need no server and no AWS: `check`, `route`, `keys new`, and the config
//! loading they share with `serve`.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use splitgate::config::{self, ConfigInput, Plan, RawConfig, SourceKind};

pub(super) fn load(input: &ConfigInput) -> Result<(String, Plan), ExitCode> {
    let label = input.label();
    let text = input.read().map_err(|e| fail(&e.to_string()))?;
    let raw = config::parse(&text).map_err(|e| fail(&format!("{label}: {e}")))?;
    within_own_limit(input, &text, &raw).map_err(|e| fail(&e.to_string()))?;
    let plan = config::validate(&raw).map_err(|issues| {
        fail(&format!("{label}: {} problem(s):\n{}", issues.len(), config::Issue::render(&issues)))
    })?;
    Ok((text, plan))
}

/// Start-up reads up to 64 MiB before the config's own `server.max_config_bytes` is known; once
/// parsed, the config must fit its own limit (or the first reload of the same text would fail).
pub(super) fn within_own_limit(input: &ConfigInput, text: &str, raw: &RawConfig) -> Result<(), config::ConfigError> {
    let max = raw.server.max_config_bytes;
    if text.len() > max {
        return Err(config::ConfigError::TooLarge { path: input.label(), max });
    }
    Ok(())
}

pub(super) fn fail(msg: &str) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::FAILURE
}

/// `splitgate check`: the whole config; or, for a DynamoDB-sourced config, its static part alone
/// or combined with `document` (the item's TOML), as `serve` and `source put` would combine them.
pub(super) fn check(input: &ConfigInput, document: Option<&Path>) -> ExitCode {
    let label = input.label();
    let text = match input.read() {
        Ok(t) => t,
        Err(e) => return fail(&e.to_string()),
    };
    let raw = match config::parse(&text) {
        Ok(r) => r,
        Err(e) => return fail(&format!("{label}: {e}")),
    };
    if let Err(e) = within_own_limit(input, &text, &raw) {
        return fail(&e.to_string());
    }
    let dynamodb = raw.source.as_ref().filter(|s| s.kind == SourceKind::Dynamodb);
    let (raw, what) = match (document, dynamodb) {
        (Some(path), _) => {
            let doc = match std::fs::read_to_string(path) {
                Ok(d) => d,
                Err(e) => return fail(&format!("cannot read {}: {e}", path.display())),
            };
            // The next version is unknown offline; the number does not change what is valid.
            match splitgate::reload::combine(&raw, raw.version.unwrap_or(0) + 1, &doc) {
                Ok(combined) => (combined, format!(" with the document {}", path.display())),
                Err(e) => return fail(&format!("{}: {e}", path.display())),
            }
        }
        (None, Some(source)) if raw.split.is_none() => return check_static(&label, &raw, source),
        (None, _) => (raw, String::new()),
    };
    match config::validate(&raw) {
        Ok(plan) => {
            println!(
                "{label}{what}: ok — {} model(s), {} variant(s), {} shadow(s), {} key(s)",
                plan.models.len(),
                plan.variants.len(),
                plan.shadows.len(),
                plan.keys.len()
            );
            for w in warnings(&plan) {
                println!("warning: {w}");
            }
            ExitCode::SUCCESS
        }
        Err(issues) => {
            fail(&format!("{label}{what}: {} problem(s):\n{}", issues.len(), config::Issue::render(&issues)))
        }
    }
}

/// The sections a DynamoDB document supplies (and replaces when it is applied).
const HOT_SECTIONS: [&str; 5] = ["auth", "throttle", "models", "split", "shadow"];

/// A static part: everything but the hot sections must be valid; those come from the item.
fn check_static(label: &str, raw: &RawConfig, source: &config::SourceConfig) -> ExitCode {
    let issues: Vec<config::Issue> = match config::validate(raw) {
        Ok(_) => Vec::new(),
        Err(all) => all
            .into_iter()
            .filter(|i| !HOT_SECTIONS.iter().any(|s| i.path == *s || i.path.starts_with(&format!("{s}."))))
            .collect(),
    };
    if !issues.is_empty() {
        return fail(&format!("{label}: {} problem(s):\n{}", issues.len(), config::Issue::render(&issues)));
    }
    let item = format!("{}/{}", source.table.as_deref().unwrap_or("?"), source.key.as_deref().unwrap_or("?"));
    println!(
        "{label}: ok — the static part; keys, models, the split and shadows come from the DynamoDB item {item} \
         (check a document with `splitgate check {label} --document FILE`)"
    );
    for w in static_warnings(raw) {
        println!("warning: {w}");
    }
    ExitCode::SUCCESS
}

/// Valid but risky settings.
fn warnings(plan: &Plan) -> Vec<String> {
    let mut w = Vec::new();
    if !plan.admin_listen.ip().is_loopback() {
        w.push(admin_exposed(plan.admin_listen));
    }
    if plan.throttle.is_none() {
        w.push("no [throttle]: the listener is not rate limited".into());
    }
    if plan.keys.iter().any(|(d, _)| splitgate::auth::is_demo_key(d)) {
        w.push(
            "the config holds the published demo key (splitgate-demo-key): `serve` refuses it off loopback \
             without --demo, and always on ECS"
                .into(),
        );
    }
    if let Some(c) = plan.trusted_proxies.networks().iter().find(|c| c.is_everything()) {
        w.push(format!(
            "server.trusted_proxies has {c}: every peer is trusted, so any client can choose the logged ip"
        ));
    }
    w
}

/// The static part's own risky settings (a valid static part has valid listeners).
fn static_warnings(raw: &RawConfig) -> Vec<String> {
    match raw.server.admin_listen.parse::<std::net::SocketAddr>() {
        Ok(a) if !a.ip().is_loopback() => vec![admin_exposed(a)],
        _ => Vec::new(),
    }
}

fn admin_exposed(addr: std::net::SocketAddr) -> String {
    format!("server.admin_listen {addr} is not loopback: the admin API is reachable from the network without TLS")
}

pub(super) fn route(input: &ConfigInput, user_ids: &[String]) -> ExitCode {
    let (_, plan) = match load(input) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let from_stdin: Vec<String>;
    let user_ids = if user_ids == ["-"] {
        from_stdin = std::io::stdin().lines().map_while(Result::ok).filter(|l| !l.is_empty()).collect();
        &from_stdin[..]
    } else {
        user_ids
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for id in user_ids {
        let v = &plan.variants[plan.assign(id.as_bytes())];
        // An interleaving arm serves both of its models: `A+B`.
        let model = match &v.interleave {
            Some(arm) => format!("{}+{}", plan.models[arm.models[0]].name, plan.models[arm.models[1]].name),
            None => plan.models[v.model].name.clone(),
        };
        let _ = writeln!(out, "{id}\t{}\t{model}", v.name);
    }
    ExitCode::SUCCESS
}

pub(super) fn keys_new(name: &str, allow_override: bool) -> ExitCode {
    match splitgate::auth::generate_key() {
        Ok((key, digest)) => {
            println!(
                "# X-API-Key: {key}\n# Store the key in your secret manager; only its SHA-256 goes in the config."
            );
            println!("[[auth.keys]]\nname = {name:?}\nsha256 = \"{digest}\"\nallow_override = {allow_override}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&format!("no OS randomness: {e}")),
    }
}
