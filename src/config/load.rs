//! Reading and parsing config text: a bounded read of the file, TOML parsing into the raw shape,
//! and the errors both give. Parse errors carry line and column but never the source text: the
//! text around a mistake may be a salt, a key digest or a token, and these errors are logged and
//! shown on the admin `/health`.

use std::path::Path;

use serde::de::DeserializeOwned;

use super::{validate, Issue, Plan, RawConfig};

/// Largest config read at start-up, before the file's own `server.max_config_bytes` is known.
pub const STARTUP_MAX_CONFIG_BYTES: usize = 64 << 20;

/// Why a config file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Syntax(#[from] SyntaxError),
    /// Refused unread: a config this large is a mistake or an attack, and would be held in memory.
    #[error("{path} is larger than {max} bytes (server.max_config_bytes); not read")]
    TooLarge { path: String, max: usize },
    #[error("{} problem(s):\n{}", .0.len(), Issue::render(.0))]
    Invalid(Vec<Issue>),
    /// Valid, but holds the published demo key where this process may not serve it.
    #[error(transparent)]
    DemoKey(#[from] crate::auth::DemoKeyRefused),
}

/// A TOML syntax, type or unknown-field error, located by line and column (1-based).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}TOML parse error{}: {message}", origin.as_deref().map(|o| format!("{o}: ")).unwrap_or_default(), at(*.line, *.column))]
pub struct SyntaxError {
    /// What was parsed when it is not the config file itself, e.g. `DynamoDB document v3`.
    pub origin: Option<String>,
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// The parser's message with quoted values replaced by `"…"`, on one line.
    pub message: String,
}

fn at(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(" at line {l}, column {c}"),
        _ => String::new(),
    }
}

impl SyntaxError {
    /// Locates `e` in `text` and keeps its message without any source text or quoted value.
    pub fn new(origin: Option<&str>, e: &toml::de::Error, text: &str) -> SyntaxError {
        let (line, column) = match e.span().map(|s| s.start.min(text.len())) {
            Some(start) => {
                let before = &text.as_bytes()[..start];
                let line_start = before.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
                let column = String::from_utf8_lossy(&before[line_start..]).chars().count() + 1;
                (Some(before.iter().filter(|b| **b == b'\n').count() + 1), Some(column))
            }
            None => (None, None),
        };
        SyntaxError { origin: origin.map(str::to_owned), line, column, message: redact(e.message()) }
    }
}

/// One line, with every `"…"`-quoted part (serde quotes the offending value there) blanked.
fn redact(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut quoted = false;
    for c in message.trim().chars() {
        match (c, quoted) {
            ('"', false) => {
                out.push_str("\"…");
                quoted = true;
            }
            ('"', true) => {
                out.push('"');
                quoted = false;
            }
            (_, true) => {}
            ('\n', false) => out.push_str("; "),
            (c, false) => out.push(c),
        }
    }
    if quoted {
        out.push('"');
    }
    out
}

/// Parses TOML text into the raw shape (syntax, types and unknown fields).
pub fn parse(text: &str) -> Result<RawConfig, ConfigError> {
    parse_as(text, None)
}

/// Parses TOML text into `T`; `origin` names the text in errors when it is not the config file.
pub fn parse_as<T: DeserializeOwned>(text: &str, origin: Option<&str>) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Syntax(SyntaxError::new(origin, &e, text)))
}

/// Reads, parses and validates a file.
pub fn load(path: &Path) -> Result<(RawConfig, Plan), ConfigError> {
    let text = read(path)?;
    let raw = parse(&text)?;
    let plan = validate(&raw).map_err(ConfigError::Invalid)?;
    Ok((raw, plan))
}

/// Reads the file as UTF-8 text, at most [`STARTUP_MAX_CONFIG_BYTES`].
pub fn read(path: &Path) -> Result<String, ConfigError> {
    read_limited(path, STARTUP_MAX_CONFIG_BYTES)
}

/// Reads the file as UTF-8 text, refusing it past `max` bytes without reading it whole: the size
/// is checked before reading, and at most `max + 1` bytes are read (the file may grow meanwhile).
pub fn read_limited(path: &Path, max: usize) -> Result<String, ConfigError> {
    use std::io::Read as _;
    let read_error = |source| ConfigError::Read { path: path.display().to_string(), source };
    let too_large = || ConfigError::TooLarge { path: path.display().to_string(), max };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let len = file.metadata().map_err(read_error)?.len();
    if len > max as u64 {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(max as u64 + 1).read_to_end(&mut bytes).map_err(read_error)?;
    if bytes.len() > max {
        return Err(too_large());
    }
    String::from_utf8(bytes)
        .map_err(|_| read_error(std::io::Error::new(std::io::ErrorKind::InvalidData, "the file is not UTF-8 text")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_errors_have_line_and_column_but_no_source_text() {
        let text = "[server]\nlisten = \"127.0.0.1:0\"\n[split]\nsalt = \"s3cret-salt-value\nx = 1\n";
        let e = parse(text).unwrap_err().to_string();
        assert!(e.starts_with("TOML parse error at line 4, column "), "{e}");
        assert!(!e.contains("s3cret") && !e.contains('\n'), "{e}");
    }

    #[test]
    fn type_errors_do_not_echo_the_value() {
        let e = parse("[server]\nmax_body_bytes = \"a1b2c3d4e5\"\n").unwrap_err().to_string();
        assert!(e.contains("line 2"), "{e}");
        assert!(!e.contains("a1b2c3d4e5"), "{e}");
        let e = parse_as::<RawConfig>("bogus = 1\n", Some("DynamoDB document v3")).unwrap_err().to_string();
        assert!(
            e.starts_with("DynamoDB document v3: TOML parse error at line 1, column 1: unknown field `bogus`"),
            "{e}"
        );
    }

    #[test]
    fn reads_refuse_a_file_over_the_limit_unread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "x".repeat(2048)).unwrap();
        assert!(matches!(read_limited(&path, 2047), Err(ConfigError::TooLarge { max: 2047, .. })));
        assert_eq!(read_limited(&path, 2048).unwrap().len(), 2048);
    }
}
