//! `[admin]`: the operators' bearer tokens and where changes are audited.

use serde::{Deserialize, Serialize};

use super::{valid_name, Issues};
use crate::auth::parse_sha256_hex;

/// `[admin]`. A token may also come from `SPLITGATE_ADMIN_TOKEN` (named `env`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
    /// JSON-lines audit file; changes are still kept in memory for `GET /admin/audit` without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_log: Option<String>,
    /// With a DynamoDB source: also write each change to this table (`pk` = the config key,
    /// `sk` = time#new-version), in the same region/endpoint as `[source]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_table: Option<String>,
}

/// `[[admin.tokens]]`: an operator, by the SHA-256 hex of its bearer token.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    pub name: String,
    pub sha256: String,
}

/// Checks `[admin]`; returns the tokens whose digest parses, by digest, with their names.
pub(super) fn validate(issues: &mut Issues, admin: &AdminConfig) -> Vec<([u8; 32], String)> {
    let mut out = Vec::new();
    for (i, t) in admin.tokens.iter().enumerate() {
        if !valid_name(&t.name) {
            issues.add(format!("admin.tokens[{i}].name"), "must be 1-64 characters of A-Z a-z 0-9 - _ .");
        }
        match parse_sha256_hex(&t.sha256) {
            Some(d) => out.push((d, t.name.clone())),
            None => issues.add(format!("admin.tokens[{i}].sha256"), "must be the 64 hex digits of the token's SHA-256"),
        }
    }
    if admin.audit_log.as_deref() == Some("") {
        issues.add("admin.audit_log", "must not be empty (omit it to keep the audit in memory only)");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::support_tests::{paths, GOOD};
    use super::super::{parse, validate};

    const TOKEN: &str = "5b1f89fd1eaf4f5a25821da4a9d3f8a6881fdd0d8ec50232ed0bf787f4f9a0ad";

    #[test]
    fn tokens_reach_the_plan_and_bad_ones_are_named() {
        let ok = format!(
            "{GOOD}\n[admin]\naudit_log = \"/tmp/a\"\n[[admin.tokens]]\nname = \"ops\"\nsha256 = \"{TOKEN}\"\n"
        );
        let plan = validate(&parse(&ok).unwrap()).unwrap();
        assert_eq!(plan.admin_tokens.len(), 1);
        assert_eq!(plan.admin_tokens[0].1, "ops");
        assert_eq!(plan.audit_log.as_deref(), Some(std::path::Path::new("/tmp/a")));
        let bad = format!("{GOOD}\n[admin]\naudit_log = \"\"\n[[admin.tokens]]\nname = \"a b\"\nsha256 = \"zz\"\n");
        assert_eq!(paths(&bad), ["admin.tokens[0].name", "admin.tokens[0].sha256", "admin.audit_log"]);
    }
}
