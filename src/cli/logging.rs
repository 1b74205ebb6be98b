//! `serve`'s diagnostic log on stderr (the access log is stdout's): its level (`SPLITGATE_LOG`)
//! and format (`SPLITGATE_LOG_FORMAT`), and how a fatal start-up error is reported in it.
//!
//! `text` (default): one human-readable line per event, colored when stderr is a terminal and
//! `NO_COLOR` is unset, the same lines without color codes otherwise (a file, a pipe, a container
//! log driver). `json`: one JSON object per line — `timestamp`, `level`, `message`, the event's
//! fields at the top level, `target` — for CloudWatch Logs Insights, Loki or any log pipeline;
//! then fatal errors are JSON lines too, so nothing on stderr breaks the format.

use std::io::IsTerminal as _;
use std::process::ExitCode;

/// `SPLITGATE_LOG_FORMAT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    /// From the variable's value (`None`: unset). Case-insensitive; empty means the default.
    pub fn parse(value: Option<&str>) -> Result<LogFormat, String> {
        match value.map(str::trim) {
            None | Some("") => Ok(LogFormat::Text),
            Some(v) if v.eq_ignore_ascii_case("text") => Ok(LogFormat::Text),
            Some(v) if v.eq_ignore_ascii_case("json") => Ok(LogFormat::Json),
            Some(other) => Err(format!("SPLITGATE_LOG_FORMAT must be `text` or `json`, not `{other}`")),
        }
    }
}

/// The diagnostic log once set up; fatal errors go through it.
#[derive(Debug, Clone, Copy)]
pub struct Log {
    format: LogFormat,
}

impl Log {
    /// Installs the subscriber from the environment. An unknown `SPLITGATE_LOG_FORMAT` is an error
    /// (a silently ignored typo would send text to a pipeline expecting JSON).
    pub fn init() -> Result<Log, String> {
        let format = LogFormat::parse(std::env::var("SPLITGATE_LOG_FORMAT").ok().as_deref())?;
        let builder = tracing_subscriber::fmt().with_writer(std::io::stderr).with_max_level(level());
        match format {
            LogFormat::Text => {
                let color =
                    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
                builder.with_ansi(color).init();
            }
            LogFormat::Json => builder
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_span_list(false)
                .with_ansi(false)
                .init(),
        }
        Ok(Log { format })
    }

    /// Reports a fatal error and returns the failing exit code: `error: …` in text (as every
    /// command prints its errors), an ERROR event in JSON.
    pub fn fatal(&self, msg: &str) -> ExitCode {
        match self.format {
            LogFormat::Text => super::local::fail(msg),
            LogFormat::Json => {
                tracing::error!("{msg}");
                ExitCode::FAILURE
            }
        }
    }
}

/// `SPLITGATE_LOG=error|warn|info|debug|trace` (default info).
fn level() -> tracing::Level {
    match std::env::var("SPLITGATE_LOG").unwrap_or_default().to_ascii_lowercase().as_str() {
        "error" => tracing::Level::ERROR,
        "warn" => tracing::Level::WARN,
        "debug" => tracing::Level::DEBUG,
        "trace" => tracing::Level::TRACE,
        _ => tracing::Level::INFO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_by_name_and_typos_are_errors() {
        assert_eq!(LogFormat::parse(None), Ok(LogFormat::Text));
        assert_eq!(LogFormat::parse(Some("")), Ok(LogFormat::Text));
        assert_eq!(LogFormat::parse(Some("TEXT")), Ok(LogFormat::Text));
        assert_eq!(LogFormat::parse(Some(" json ")), Ok(LogFormat::Json));
        let e = LogFormat::parse(Some("jsonl")).unwrap_err();
        assert_eq!(e, "SPLITGATE_LOG_FORMAT must be `text` or `json`, not `jsonl`");
    }
}
