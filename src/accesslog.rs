//! JSON access log: one line per request on stdout, written off the request path.
//!
//! Requests hand a small record to a bounded channel (`try_send`, never blocking); a dedicated
//! thread formats and writes. If the writer falls behind, records are dropped and counted rather
//! than slowing requests. Fields follow API Gateway's access log, plus the split's own. Keys and
//! bodies are never part of a record, so they cannot be logged.

use std::io::Write;
use std::net::IpAddr;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderValue, Method, Version};
use metrics::Counter;

use crate::civil::civil_from_days;

/// What is logged about one request.
#[derive(Debug)]
pub struct Record {
    pub request_id: HeaderValue,
    /// The W3C trace id (the X-Ray root without its dashes), as sent to the models.
    pub trace_id: [u8; 16],
    /// The client: the peer, or the `X-Forwarded-For` hop a trusted proxy names.
    pub ip: IpAddr,
    pub time: SystemTime,
    pub method: Method,
    /// API Gateway style `"POST /recommend"`, or `"$default"` for unmatched routes.
    pub route_key: &'static str,
    pub status: u16,
    pub protocol: Version,
    pub response_length: u64,
    pub latency: Duration,
    pub variant: Option<Arc<str>>,
    pub model: Option<Arc<str>>,
    pub upstream_latency: Option<Duration>,
    pub caller: Option<Arc<str>>,
    pub error: Option<&'static str>,
    pub fallback: bool,
    /// The exposure log: the split's hash of the user (`userHash`, 16 hex digits: the first 8
    /// bytes of SHA-256(salt ‖ 0 ‖ user id)), the bucket when the split chose the variant, the
    /// config version and weight epoch the request was served under, and the raw id only when
    /// `[experiment] log_raw_user_id = true`.
    pub user_hash: Option<u64>,
    pub bucket: Option<u32>,
    pub config_version: u64,
    pub epoch: Option<Arc<str>>,
    pub user_id: Option<Box<str>>,
    /// An interleaving arm's answer: merged (with each position's team), degraded or failed.
    pub interleave: Option<crate::interleave::Outcome>,
}

/// The sending side; cheap to share.
#[derive(Clone)]
pub struct AccessLog {
    tx: Option<SyncSender<Record>>,
    dropped: Counter,
}

impl AccessLog {
    /// Starts the writer thread over `out` with room for `capacity` pending records.
    pub fn spawn(capacity: usize, out: Box<dyn Write + Send>, dropped: Counter) -> std::io::Result<AccessLog> {
        let (tx, rx) = sync_channel(capacity);
        std::thread::Builder::new().name("access-log".into()).spawn(move || write_loop(rx, out))?;
        Ok(AccessLog { tx: Some(tx), dropped })
    }

    /// A log that discards everything (`server.access_log = false`).
    pub fn disabled(dropped: Counter) -> AccessLog {
        AccessLog { tx: None, dropped }
    }

    pub fn log(&self, record: Record) {
        if let Some(tx) = &self.tx {
            if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = tx.try_send(record) {
                self.dropped.increment(1);
            }
        }
    }
}

/// How long the writer sleeps when the queue is empty. Polling (instead of blocking in `recv`)
/// means a request never pays for waking the writer thread: at 10k req/s that would be 10k futex
/// wake-ups a second on the request path. 4,096 records of headroom cover 5 ms at 800k req/s.
const IDLE_SLEEP: Duration = Duration::from_millis(5);

fn write_loop(rx: Receiver<Record>, out: Box<dyn Write + Send>) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
    let mut line = String::with_capacity(512);
    loop {
        let mut wrote = false;
        loop {
            match rx.try_recv() {
                Ok(rec) => {
                    line.clear();
                    format_record(&rec, &mut line);
                    // A closed stdout cannot be reported anywhere useful; keep draining so
                    // senders never block.
                    let _ = out.write_all(line.as_bytes());
                    wrote = true;
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    let _ = out.flush();
                    return;
                }
            }
        }
        if wrote {
            let _ = out.flush();
        }
        std::thread::sleep(IDLE_SLEEP);
    }
}

/// Formats one JSON line (with the trailing newline) into `out`.
pub fn format_record(r: &Record, out: &mut String) {
    let epoch = r.time.duration_since(UNIX_EPOCH).unwrap_or_default();
    out.push_str("{\"requestId\":");
    json_str(out, r.request_id.to_str().unwrap_or("-"));
    out.push_str(",\"traceId\":\"");
    hex(out, &r.trace_id);
    out.push_str("\",\"ip\":\"");
    ip(out, r.ip);
    out.push_str("\",\"requestTime\":\"");
    clf_time(epoch.as_secs(), out);
    out.push_str("\",\"requestTimeEpoch\":");
    int(out, epoch.as_millis() as u64);
    out.push_str(",\"httpMethod\":\"");
    out.push_str(r.method.as_str());
    out.push_str("\",\"routeKey\":\"");
    out.push_str(r.route_key);
    out.push_str("\",\"status\":");
    int(out, u64::from(r.status));
    out.push_str(",\"protocol\":\"");
    out.push_str(protocol(r.protocol));
    out.push_str("\",\"responseLength\":");
    int(out, r.response_length);
    out.push_str(",\"latencyMs\":");
    millis(out, r.latency);
    out.push_str(",\"variant\":");
    opt_str(out, r.variant.as_deref());
    out.push_str(",\"model\":");
    opt_str(out, r.model.as_deref());
    match r.upstream_latency {
        Some(d) => {
            out.push_str(",\"upstreamLatencyMs\":");
            millis(out, d);
        }
        None => out.push_str(",\"upstreamLatencyMs\":null"),
    }
    out.push_str(",\"caller\":");
    opt_str(out, r.caller.as_deref());
    out.push_str(",\"error\":");
    opt_str(out, r.error);
    if r.fallback {
        out.push_str(",\"fallback\":true");
    }
    match r.user_hash {
        Some(h) => {
            out.push_str(",\"userHash\":\"");
            hex16(out, h);
            out.push('"');
        }
        None => out.push_str(",\"userHash\":null"),
    }
    match r.bucket {
        Some(b) => {
            out.push_str(",\"bucket\":");
            int(out, u64::from(b));
        }
        None => out.push_str(",\"bucket\":null"),
    }
    out.push_str(",\"configVersion\":");
    int(out, r.config_version);
    out.push_str(",\"epoch\":");
    opt_str(out, r.epoch.as_deref());
    if let Some(id) = &r.user_id {
        out.push_str(",\"userId\":");
        json_str(out, id);
    }
    if let Some(i) = r.interleave {
        i.log_fields(out);
    }
    out.push_str("}\n");
}

/// `h` as 16 lowercase hex digits.
fn hex16(out: &mut String, h: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for i in (0..16).rev() {
        out.push(char::from(HEX[((h >> (4 * i)) & 15) as usize]));
    }
}

// Integers go through `itoa`: `core::fmt` machinery was the log thread's largest cost.
fn int(out: &mut String, n: u64) {
    out.push_str(itoa::Buffer::new().format(n));
}

/// `n` with at least two digits.
fn int2(out: &mut String, n: u64) {
    if n < 10 {
        out.push('0');
    }
    int(out, n);
}

fn ip(out: &mut String, ip: std::net::IpAddr) {
    match ip {
        std::net::IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                int(out, u64::from(octet));
            }
        }
        std::net::IpAddr::V6(v6) => {
            use std::fmt::Write as _;
            let _ = write!(out, "{v6}");
        }
    }
}

/// The 16 bytes as 32 lowercase hex digits, rendered on the stack and copied once.
fn hex(out: &mut String, bytes: &[u8; 16]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0u8; 32];
    for (pair, b) in buf.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 15)];
    }
    // Hex digits are ASCII: this never fails.
    out.push_str(std::str::from_utf8(&buf).unwrap_or_default());
}

/// Milliseconds with microsecond precision, formatted from integers (float formatting is slow).
fn millis(out: &mut String, d: Duration) {
    let us = d.as_micros() as u64;
    int(out, us / 1_000);
    out.push('.');
    let frac = us % 1_000;
    if frac < 100 {
        out.push('0');
    }
    int2(out, frac);
}

fn protocol(v: Version) -> &'static str {
    match v {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_11 => "HTTP/1.1",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/?",
    }
}

fn opt_str(out: &mut String, s: Option<&str>) {
    match s {
        Some(s) => json_str(out, s),
        None => out.push_str("null"),
    }
}

fn json_str(out: &mut String, s: &str) {
    use std::fmt::Write as _;
    out.push('"');
    // Nearly every value (ids, names, versions) needs no escaping: copy it whole.
    if !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        out.push_str(s);
        out.push('"');
        return;
    }
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// API Gateway's `requestTime`: `26/Nov/2026:13:47:36 +0000`, always UTC.
pub fn clf_time(epoch_secs: u64, out: &mut String) {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let (y, m, d) = civil_from_days((epoch_secs / 86_400) as i64);
    let s = epoch_secs % 86_400;
    int2(out, u64::from(d));
    out.push('/');
    out.push_str(MONTHS[(m - 1) as usize % 12]);
    out.push('/');
    out.push_str(itoa::Buffer::new().format(y));
    out.push(':');
    int2(out, s / 3600);
    out.push(':');
    int2(out, s / 60 % 60);
    out.push(':');
    int2(out, s % 60);
    out.push_str(" +0000");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        let mut s = String::new();
        clf_time(0, &mut s);
        assert_eq!(s, "01/Jan/1970:00:00:00 +0000");
        s.clear();
        clf_time(1_795_700_856, &mut s);
        assert_eq!(s, "26/Nov/2026:13:47:36 +0000");
        s.clear();
        clf_time(951_782_400, &mut s); // leap day
        assert_eq!(s, "29/Feb/2000:00:00:00 +0000");
    }

    #[test]
    fn record_is_one_valid_json_line() {
        let r = Record {
            request_id: HeaderValue::from_static("abc\"1"),
            trace_id: [0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36],
            ip: "127.0.0.1".parse().unwrap(),
            time: UNIX_EPOCH + Duration::from_secs(1_795_700_856),
            method: Method::POST,
            route_key: "POST /recommend",
            status: 200,
            protocol: Version::HTTP_11,
            response_length: 321,
            latency: Duration::from_micros(1500),
            variant: Some("champion".into()),
            model: Some("v2.2.0".into()),
            upstream_latency: Some(Duration::from_micros(900)),
            caller: Some("locust".into()),
            error: None,
            fallback: false,
            user_hash: Some(0xa525_63fb_69ad_02b7),
            bucket: Some(3_575),
            config_version: 7,
            epoch: Some("00000000000000ab".into()),
            user_id: None,
            interleave: None,
        };
        let mut line = String::new();
        format_record(&r, &mut line);
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
        assert!(
            line.contains(
                r#""userHash":"a52563fb69ad02b7","bucket":3575,"configVersion":7,"epoch":"00000000000000ab"}"#
            ),
            "{line}"
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["requestId"], "abc\"1");
        assert_eq!(v["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(v["status"], 200);
        assert_eq!(v["routeKey"], "POST /recommend");
        assert_eq!(v["protocol"], "HTTP/1.1");
        assert_eq!(v["variant"], "champion");
        assert_eq!(v["upstreamLatencyMs"], 0.9);
        assert_eq!(v["error"], serde_json::Value::Null);
        assert_eq!(v["requestTime"], "26/Nov/2026:13:47:36 +0000");
    }

    #[test]
    fn numbers_and_addresses_are_written_exactly() {
        let mut r = Record {
            request_id: HeaderValue::from_static("r"),
            trace_id: [0; 16],
            ip: "10.20.3.4".parse().unwrap(),
            time: UNIX_EPOCH + Duration::from_millis(1_795_700_856_007),
            method: Method::GET,
            route_key: "GET /health",
            status: 503,
            protocol: Version::HTTP_2,
            response_length: 0,
            latency: Duration::from_micros(5),
            variant: None,
            model: None,
            upstream_latency: Some(Duration::from_micros(1_234_040)),
            caller: Some("tab\there".into()),
            error: Some("overloaded"),
            fallback: true,
            user_hash: Some(0x0f),
            bucket: None,
            config_version: 1,
            epoch: None,
            user_id: Some("raw\"id".into()),
            interleave: None,
        };
        let mut line = String::new();
        format_record(&r, &mut line);
        for part in [
            r#""traceId":"00000000000000000000000000000000","#,
            r#""ip":"10.20.3.4""#,
            r#""requestTimeEpoch":1795700856007,"#,
            r#""httpMethod":"GET","#,
            r#""status":503,"#,
            r#""protocol":"HTTP/2.0","#,
            r#""responseLength":0,"#,
            r#""latencyMs":0.005,"#,
            r#""upstreamLatencyMs":1234.040,"#,
            r#""caller":"tab\u0009here","#,
            r#""error":"overloaded","fallback":true,"userHash":"000000000000000f","bucket":null,"configVersion":1,"epoch":null,"userId":"raw\"id"}"#,
        ] {
            assert!(line.contains(part), "{part} not in {line}");
        }
        r.ip = "2001:db8::1".parse().unwrap();
        r.latency = Duration::from_micros(99_100);
        line.clear();
        format_record(&r, &mut line);
        assert!(line.contains(r#""ip":"2001:db8::1""#) && line.contains(r#""latencyMs":99.100,"#), "{line}");
        serde_json::from_str::<serde_json::Value>(&line).unwrap();
    }
}
