//! Where the config text comes from: `--config PATH` when given, else the `SPLITGATE_CONFIG`
//! environment variable (TOML text, or a path), else `config/splitgate.toml`. The variable lets a
//! container get its config without an image rebuild (an ECS task definition, a Kubernetes env).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::{read, ConfigError, STARTUP_MAX_CONFIG_BYTES};

/// The shipped default, relative to the working directory (the repo root for `make run`).
pub const DEFAULT_CONFIG: &str = "config/splitgate.toml";
/// The environment variable holding the config's TOML text or its path.
pub const CONFIG_ENV: &str = "SPLITGATE_CONFIG";

/// The config's origin, resolved once at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigInput {
    /// A file: watched and reloaded, and the admin API's source of truth (unless `[source]` says
    /// DynamoDB).
    File(PathBuf),
    /// TOML text from `SPLITGATE_CONFIG`: static, unless `[source]` points at DynamoDB.
    Inline(String),
}

/// No config could be found.
#[derive(Debug, thiserror::Error)]
#[error("no config: pass --config, set SPLITGATE_CONFIG, or run from the repo root (looked for {looked_for})")]
pub struct NoConfig {
    pub looked_for: String,
}

impl ConfigInput {
    /// `--config` beats `SPLITGATE_CONFIG`, which beats the default path (which must exist).
    pub fn resolve(explicit: Option<PathBuf>) -> Result<ConfigInput, NoConfig> {
        Self::resolve_with(explicit, std::env::var_os(CONFIG_ENV), Path::new(DEFAULT_CONFIG))
    }

    /// [`resolve`](Self::resolve) with the environment value and default path given.
    pub fn resolve_with(
        explicit: Option<PathBuf>,
        env: Option<OsString>,
        default: &Path,
    ) -> Result<ConfigInput, NoConfig> {
        if let Some(path) = explicit {
            return Ok(ConfigInput::File(path));
        }
        match env.filter(|v| !v.is_empty()).map(OsString::into_string) {
            Some(Ok(text)) if looks_like_toml(&text) => return Ok(ConfigInput::Inline(text)),
            Some(Ok(path)) => return Ok(ConfigInput::File(PathBuf::from(path.trim()))),
            // Not UTF-8, so not TOML: a path.
            Some(Err(path)) => return Ok(ConfigInput::File(PathBuf::from(path))),
            None => {}
        }
        if default.exists() {
            return Ok(ConfigInput::File(default.to_path_buf()));
        }
        let abs = std::path::absolute(default).unwrap_or_else(|_| default.to_path_buf());
        Err(NoConfig { looked_for: abs.display().to_string() })
    }

    /// The text: the file (at most [`STARTUP_MAX_CONFIG_BYTES`]) or the variable's value.
    pub fn read(&self) -> Result<String, ConfigError> {
        match self {
            ConfigInput::File(path) => read(path),
            ConfigInput::Inline(text) if text.len() > STARTUP_MAX_CONFIG_BYTES => {
                Err(ConfigError::TooLarge { path: CONFIG_ENV.into(), max: STARTUP_MAX_CONFIG_BYTES })
            }
            ConfigInput::Inline(text) => Ok(text.clone()),
        }
    }

    /// For messages and logs: the path, or `SPLITGATE_CONFIG`.
    pub fn label(&self) -> String {
        match self {
            ConfigInput::File(path) => path.display().to_string(),
            ConfigInput::Inline(_) => CONFIG_ENV.to_owned(),
        }
    }
}

/// TOML text rather than a path: several lines, or a table header or comment first.
fn looks_like_toml(value: &str) -> bool {
    let t = value.trim();
    value.contains('\n') || t.starts_with('[') || t.starts_with('#')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(explicit: Option<&str>, env: Option<&str>, default: &Path) -> Result<ConfigInput, NoConfig> {
        ConfigInput::resolve_with(explicit.map(PathBuf::from), env.map(OsString::from), default)
    }

    #[test]
    fn explicit_beats_the_environment_which_beats_the_default() {
        let dir = tempfile::tempdir().unwrap();
        let default = dir.path().join("splitgate.toml");
        std::fs::write(&default, "").unwrap();
        let file = |p: &str| Ok::<_, ()>(ConfigInput::File(PathBuf::from(p)));
        assert_eq!(resolve(Some("a.toml"), Some("[server]\n"), &default).map_err(drop), file("a.toml"));
        assert_eq!(resolve(None, Some(" /etc/s.toml\t"), &default).map_err(drop), file("/etc/s.toml"));
        assert_eq!(resolve(None, Some(""), &default).map_err(drop), Ok(ConfigInput::File(default.clone())));
        assert_eq!(resolve(None, None, &default).map_err(drop), Ok(ConfigInput::File(default.clone())));
    }

    #[test]
    fn toml_text_is_told_from_a_path() {
        let missing = Path::new("/nonexistent/splitgate.toml");
        for text in ["[server]", "  # comment", "version = 3\n[split]", "[[auth.keys]]\nname = \"a\""] {
            assert_eq!(resolve(None, Some(text), missing).unwrap(), ConfigInput::Inline(text.into()), "{text}");
        }
        assert_eq!(resolve(None, Some("conf/x.toml"), missing).unwrap(), ConfigInput::File("conf/x.toml".into()));
    }

    #[test]
    fn a_missing_default_says_where_it_looked_and_what_to_do() {
        let e = resolve(None, None, Path::new("no/such/splitgate.toml")).unwrap_err().to_string();
        assert!(e.starts_with("no config: pass --config, set SPLITGATE_CONFIG, or run from the repo root"), "{e}");
        assert!(e.contains("/no/such/splitgate.toml") && e.contains("(looked for /"), "absolute path: {e}");
    }
}
