//! Why an admin request or an operator change was refused. One typed variant per cause; the HTTP
//! status and the stable `error.code` come from exhaustive matches, so a new variant must be
//! given both, and no call site picks a status by hand.

use std::path::PathBuf;

use http::StatusCode;

use super::edit::EditError;
use crate::aws::dynamo::DynamoError;
use crate::config::{ConfigError, Issue};
use crate::error::ProxyError;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("missing or invalid admin token")]
    Unauthorized,
    #[error("no route")]
    NotFound,
    #[error("method not allowed, use {allow}")]
    MethodNotAllowed { allow: &'static str },
    /// The request body could not be read (too large, too slow, broken framing).
    #[error("request body: {0}")]
    Body(#[source] ProxyError),
    #[error("body: {0}")]
    Json(#[source] serde_json::Error),
    #[error("`{field}` must be a number")]
    NotANumber { field: String },
    #[error("give at least one variant, e.g. {{\"challenger\": 50}}")]
    NoWeights,
    #[error("several challengers: name the one to promote with {{\"variant\": …}}")]
    WhichChallenger,
    #[error("event must be one of {allowed}")]
    UnknownEvent { allowed: String },
    #[error("this proxy has no config source to write to")]
    NoSource,
    #[error("scope=fleet needs a [fleet] section; this replica counts alone (scope=local)")]
    NoFleet,
    #[error("scope must be `fleet` or `local`")]
    BadScope,
    /// The edit itself is wrong for the config it applies to (an unknown variant, a bad weight…).
    #[error("{0}")]
    Edit(#[source] EditError),
    #[error("conflict: expected version {expected}, the live config is version {live}")]
    StaleVersion { expected: u64, live: u64 },
    #[error("conflict: {path} changed since version {version} was loaded; reload and retry")]
    FileChanged { path: String, version: u64 },
    #[error("conflict: the item is at version {item}, this replica serves {live}")]
    ItemAhead { item: u64, live: u64 },
    /// The conditional write lost to another writer.
    #[error("conflict: {0}")]
    Lost(#[source] DynamoError),
    /// The edit would leave a config the validator refuses (or that cannot be parsed).
    #[error("the change would make the config invalid: {}", Issue::render(.0))]
    Invalid(Vec<Issue>),
    #[error("the change would make the config invalid: {0}")]
    Config(#[source] ConfigError),
    #[error("the change would make the config invalid: {0}")]
    Toml(#[source] toml_edit::TomlError),
    /// The DynamoDB item does not have the shape splitgate writes.
    #[error("the config item is invalid: {0}")]
    BadItem(#[source] DynamoError),
    #[error("the source of truth is unavailable: {0}")]
    Dynamo(#[source] DynamoError),
    #[error("the source of truth is unavailable: the DynamoDB source is not initialised")]
    SourceNotReady,
    #[error("the source of truth is unavailable: the config item is missing")]
    ItemMissing,
    #[error("the source of truth is unavailable: {what} {}: {source}", path.display())]
    File {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the source of truth is unavailable: another writer held {} for {waited_ms} ms; retry", path.display())]
    LockBusy { path: PathBuf, waited_ms: u64 },
    #[error("the source of truth is unavailable: config file task failed: {0}")]
    Task(#[source] tokio::task::JoinError),
    /// The experiment's split shows a sample ratio mismatch: its numbers cannot be trusted.
    #[error("sample ratio mismatch (p = {p_value:.3e}): the split is broken and the experiment's numbers cannot be trusted; send \"force\": true to promote anyway (audited as forced)")]
    SrmFlagged { p_value: f64 },
}

impl AdminError {
    pub fn status(&self) -> StatusCode {
        match self {
            AdminError::Unauthorized => StatusCode::UNAUTHORIZED,
            AdminError::NotFound => StatusCode::NOT_FOUND,
            AdminError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            AdminError::Body(e) => e.status(),
            AdminError::Json(_)
            | AdminError::NotANumber { .. }
            | AdminError::NoWeights
            | AdminError::WhichChallenger
            | AdminError::UnknownEvent { .. }
            | AdminError::NoFleet
            | AdminError::BadScope
            | AdminError::NoSource => StatusCode::BAD_REQUEST,
            AdminError::Edit(e) if e.makes_config_invalid() => StatusCode::UNPROCESSABLE_ENTITY,
            AdminError::Edit(_) => StatusCode::BAD_REQUEST,
            AdminError::StaleVersion { .. }
            | AdminError::FileChanged { .. }
            | AdminError::ItemAhead { .. }
            | AdminError::Lost(_)
            | AdminError::SrmFlagged { .. } => StatusCode::CONFLICT,
            AdminError::Invalid(_) | AdminError::Config(_) | AdminError::Toml(_) | AdminError::BadItem(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            AdminError::Dynamo(_)
            | AdminError::SourceNotReady
            | AdminError::ItemMissing
            | AdminError::File { .. }
            | AdminError::LockBusy { .. }
            | AdminError::Task(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The stable `error.code` of the JSON body, one per status class of cause.
    pub fn code(&self) -> &'static str {
        match self {
            AdminError::Unauthorized => "unauthorized",
            AdminError::NotFound => "not_found",
            AdminError::MethodNotAllowed { .. } => "method_not_allowed",
            AdminError::Body(e) => e.code(),
            AdminError::Json(_)
            | AdminError::NotANumber { .. }
            | AdminError::NoWeights
            | AdminError::WhichChallenger
            | AdminError::UnknownEvent { .. }
            | AdminError::NoFleet
            | AdminError::BadScope
            | AdminError::NoSource => "bad_request",
            AdminError::Edit(e) if e.makes_config_invalid() => "invalid_config",
            AdminError::Edit(_) => "bad_request",
            AdminError::StaleVersion { .. }
            | AdminError::FileChanged { .. }
            | AdminError::ItemAhead { .. }
            | AdminError::Lost(_) => "conflict",
            AdminError::SrmFlagged { .. } => "srm_flagged",
            AdminError::Invalid(_) | AdminError::Config(_) | AdminError::Toml(_) | AdminError::BadItem(_) => {
                "invalid_config"
            }
            AdminError::Dynamo(_)
            | AdminError::SourceNotReady
            | AdminError::ItemMissing
            | AdminError::File { .. }
            | AdminError::LockBusy { .. }
            | AdminError::Task(_) => "source_unavailable",
        }
    }
}

impl From<EditError> for AdminError {
    fn from(e: EditError) -> Self {
        AdminError::Edit(e)
    }
}

impl From<DynamoError> for AdminError {
    fn from(e: DynamoError) -> Self {
        match e {
            DynamoError::Conflict { .. } => AdminError::Lost(e),
            DynamoError::BadItem { .. } => AdminError::BadItem(e),
            DynamoError::Unavailable(_) => AdminError::Dynamo(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_and_code_is_pinned() {
        let io = || std::io::Error::other("disk");
        let json = || serde_json::from_str::<serde_json::Value>("{").unwrap_err();
        let cases: Vec<(AdminError, u16, &str)> = vec![
            (AdminError::Unauthorized, 401, "unauthorized"),
            (AdminError::NotFound, 404, "not_found"),
            (AdminError::MethodNotAllowed { allow: "GET" }, 405, "method_not_allowed"),
            (AdminError::Body(ProxyError::PayloadTooLarge { limit: 1 }), 413, "payload_too_large"),
            (AdminError::Body(ProxyError::BodyTimeout { timeout_ms: 1 }), 408, "body_timeout"),
            (AdminError::Json(json()), 400, "bad_request"),
            (AdminError::NotANumber { field: "x".into() }, 400, "bad_request"),
            (AdminError::NoWeights, 400, "bad_request"),
            (AdminError::WhichChallenger, 400, "bad_request"),
            (AdminError::UnknownEvent { allowed: "click".into() }, 400, "bad_request"),
            (AdminError::NoSource, 400, "bad_request"),
            (AdminError::NoFleet, 400, "bad_request"),
            (AdminError::BadScope, 400, "bad_request"),
            (AdminError::Edit(EditError::NoChampion), 422, "invalid_config"),
            (AdminError::Edit(EditError::UnknownVariant("x".into())), 400, "bad_request"),
            (AdminError::StaleVersion { expected: 1, live: 2 }, 409, "conflict"),
            (AdminError::FileChanged { path: "f".into(), version: 1 }, 409, "conflict"),
            (AdminError::ItemAhead { item: 2, live: 1 }, 409, "conflict"),
            (AdminError::Lost(DynamoError::Conflict { expected: Some(1) }), 409, "conflict"),
            (AdminError::Invalid(vec![]), 422, "invalid_config"),
            (AdminError::Toml("x = ".parse::<toml_edit::DocumentMut>().unwrap_err()), 422, "invalid_config"),
            (AdminError::BadItem(DynamoError::BadItem { attribute: "version", problem: "x" }), 422, "invalid_config"),
            (AdminError::Dynamo(DynamoError::Unavailable("down".into())), 503, "source_unavailable"),
            (AdminError::SourceNotReady, 503, "source_unavailable"),
            (AdminError::ItemMissing, 503, "source_unavailable"),
            (AdminError::File { what: "reading", path: "f".into(), source: io() }, 503, "source_unavailable"),
            (AdminError::LockBusy { path: "f".into(), waited_ms: 3 }, 503, "source_unavailable"),
            (AdminError::SrmFlagged { p_value: 1e-9 }, 409, "srm_flagged"),
        ];
        for (e, status, code) in cases {
            assert_eq!((e.status().as_u16(), e.code()), (status, code), "{e}");
            assert!(!e.to_string().is_empty());
        }
        let conflict = AdminError::from(DynamoError::Conflict { expected: Some(3) });
        assert_eq!(conflict.status(), StatusCode::CONFLICT);
    }
}
