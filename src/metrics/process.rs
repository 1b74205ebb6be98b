//! Process metrics under the names every Prometheus client library uses (`process_cpu_seconds_total`,
//! `process_resident_memory_bytes`, `process_open_fds`, `process_start_time_seconds`, …), so the
//! dashboards and alerts SREs already have work unchanged.
//!
//! Read from `/proc` at scrape time, never on the request path: the parsers here are pure and
//! unit-tested; [`read`] is the only I/O. Not the `metrics-process` crate: it reports through the
//! global recorder (the proxy owns its recorder, see `metrics`), rounds CPU time down to whole
//! seconds, and would pull `procfs` and its tree in for a few fields of three text files.
//! On systems without `/proc` only the start time is reported.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

/// Clock ticks per second in `/proc/<pid>/stat`: the kernel reports them in `USER_HZ`, which is
/// fixed at 100 in the ABI on every architecture Linux supports today (x86, arm, riscv, …),
/// whatever the kernel's internal `HZ`.
const USER_HZ: f64 = 100.0;

/// What one scrape reports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcStats {
    pub cpu_seconds: Option<f64>,
    pub resident_bytes: Option<u64>,
    pub virtual_bytes: Option<u64>,
    pub threads: Option<u64>,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
    pub start_time_seconds: f64,
}

/// From `/proc/<pid>/stat`: (utime + stime in seconds, start time in ticks after boot). The
/// command name (field 2) is in parentheses and may hold spaces or parentheses itself, so the
/// fields are counted from the last `)`.
pub fn parse_stat(text: &str) -> Option<(f64, u64)> {
    let rest = &text[text.rfind(')')? + 1..];
    // After the name: field 3 (state) is index 0, so field N is index N - 3.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let num = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    let cpu = (num(14)? + num(15)?) as f64 / USER_HZ;
    Some((cpu, num(22)?))
}

/// `btime` (boot time, Unix seconds) from `/proc/stat`.
pub fn parse_btime(text: &str) -> Option<u64> {
    text.lines().find_map(|l| l.strip_prefix("btime")).and_then(|v| v.trim().parse().ok())
}

/// A `kB` line (`VmRSS:   1234 kB`) of `/proc/<pid>/status`, in bytes; `Threads:` as a count.
pub fn parse_status(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.split(':').next() == Some(key))?;
    let mut parts = line.split(':').nth(1)?.split_whitespace();
    let n: u64 = parts.next()?.parse().ok()?;
    Some(if parts.next() == Some("kB") { n * 1024 } else { n })
}

/// The soft limit of `Max open files` in `/proc/<pid>/limits` (`None` when unlimited).
pub fn parse_max_fds(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..].split_whitespace().next()?.parse().ok()
}

/// Reads this process's figures. `started` is when the process began by its own clock, used
/// where `/proc` cannot say.
pub fn read(started: SystemTime) -> ProcStats {
    let file = |p: &str| std::fs::read_to_string(p).ok();
    let fallback_start = started.duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
    let stat = file("/proc/self/stat").as_deref().and_then(parse_stat);
    let boot = file("/proc/stat").as_deref().and_then(parse_btime);
    let status = file("/proc/self/status").unwrap_or_default();
    ProcStats {
        cpu_seconds: stat.map(|s| s.0),
        resident_bytes: parse_status(&status, "VmRSS"),
        virtual_bytes: parse_status(&status, "VmSize"),
        threads: parse_status(&status, "Threads"),
        open_fds: std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count() as u64),
        max_fds: file("/proc/self/limits").as_deref().and_then(parse_max_fds),
        start_time_seconds: match (stat, boot) {
            (Some((_, ticks)), Some(boot)) => boot as f64 + ticks as f64 / USER_HZ,
            _ => fallback_start,
        },
    }
}

/// Appends the exposition lines; figures that could not be read are left out, not made up.
pub fn render(out: &mut String, s: &ProcStats) {
    let mut one = |name: &str, kind: &str, help: &str, value: Option<f64>| {
        if let Some(v) = value {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        }
    };
    one("process_cpu_seconds_total", "counter", "User and system CPU time spent, in seconds.", s.cpu_seconds);
    one("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", s.resident_bytes.map(|v| v as f64));
    one("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", s.virtual_bytes.map(|v| v as f64));
    one("process_threads", "gauge", "Operating system threads in the process.", s.threads.map(|v| v as f64));
    one("process_open_fds", "gauge", "Open file descriptors.", s.open_fds.map(|v| v as f64));
    one("process_max_fds", "gauge", "Maximum number of open file descriptors.", s.max_fds.map(|v| v as f64));
    one(
        "process_start_time_seconds",
        "gauge",
        "Start time of the process since the Unix epoch, in seconds.",
        Some(s.start_time_seconds),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_count_from_the_last_parenthesis() {
        // A real line (kernel 6.x), with a name holding a space and a parenthesis.
        let line = "4242 (split gate) x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 9 0 123456 \
                    100000000 5000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        let (cpu, start) = parse_stat(line).unwrap();
        assert!((cpu - 3.25).abs() < 1e-9, "(250 + 75) ticks / 100: {cpu}");
        assert_eq!(start, 123_456);
        assert_eq!(parse_stat("no parenthesis"), None);
        assert_eq!(parse_stat("1 (x) S 1 2"), None, "too few fields");
    }

    #[test]
    fn status_limits_and_btime() {
        let status = "Name:\tsplitgate\nVmSize:\t  123456 kB\nVmRSS:\t   26200 kB\nThreads:\t9\n";
        assert_eq!(parse_status(status, "VmRSS"), Some(26_200 * 1024));
        assert_eq!(parse_status(status, "VmSize"), Some(123_456 * 1024));
        assert_eq!(parse_status(status, "Threads"), Some(9));
        assert_eq!(parse_status(status, "VmSwap"), None);
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max cpu time              unlimited            unlimited            seconds   \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(parse_max_fds(limits), Some(1024));
        assert_eq!(parse_max_fds("Max open files            unlimited            unlimited            files"), None);
        assert_eq!(parse_btime("cpu  1 2 3\nbtime 1764000000\nprocesses 9\n"), Some(1_764_000_000));
    }

    #[test]
    fn renders_what_it_has_and_nothing_else() {
        let s =
            ProcStats { cpu_seconds: Some(1.5), open_fds: Some(12), start_time_seconds: 100.0, ..Default::default() };
        let mut out = String::new();
        render(&mut out, &s);
        assert!(out.contains("# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 1.5\n"), "{out}");
        assert!(out.contains("process_open_fds 12\n"));
        assert!(out.contains("process_start_time_seconds 100\n"));
        assert!(!out.contains("process_resident_memory_bytes"), "unknown figures are left out");
    }

    #[test]
    fn reads_this_process() {
        let s = read(SystemTime::now());
        if std::path::Path::new("/proc/self/stat").exists() {
            assert!(s.resident_bytes.is_some_and(|b| b > 0), "{s:?}");
            assert!(s.open_fds.is_some_and(|n| n >= 3), "{s:?}");
            assert!(s.cpu_seconds.is_some());
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
            assert!(s.start_time_seconds <= now + 1.0 && s.start_time_seconds > now - 86_400.0, "{s:?}");
        }
    }
}
