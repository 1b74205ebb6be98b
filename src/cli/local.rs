//! The commands that need no server and no AWS: `check`, `route`, `keys new`, and the config
//! loading they share with `serve`.

use std::io::Write as _;
use std::process::ExitCode;

use splitgate::config::{self, ConfigInput, Plan, RawConfig};

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

pub(super) fn check(input: &ConfigInput) -> ExitCode {
    match load(input) {
        Ok((_, plan)) => {
            println!(
                "{}: ok — {} model(s), {} variant(s), {} shadow(s), {} key(s)",
                input.label(),
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
        Err(code) => code,
    }
}

/// Valid but risky settings.
fn warnings(plan: &Plan) -> Vec<String> {
    let mut w = Vec::new();
    if !plan.admin_listen.ip().is_loopback() {
        w.push(format!(
            "server.admin_listen {} is not loopback: the admin API is reachable from the network without TLS",
            plan.admin_listen
        ));
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
    w
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
