//! Helpers for the section files' tests (test-only): the shipped config and shortcuts to its issues.

use super::{parse, validate, Issue};

/// The shipped default config, valid as it stands; tests mutate it with `replace`.
pub const GOOD: &str = include_str!("../../config/splitgate.toml");

/// The issues `text` validates to (it must parse and must not validate).
pub fn issues(text: &str) -> Vec<Issue> {
    validate(&parse(text).unwrap()).unwrap_err()
}

/// Just the issues' paths.
pub fn paths(text: &str) -> Vec<String> {
    issues(text).into_iter().map(|i| i.path).collect()
}
