//! AWS Signature Version 4 for the one request shape the direct path sends (a `POST` with no
//! query, header fields already lower-case), with the signing key derived once per day and
//! credentials instead of on every call, and the canonical request streamed into SHA-256
//! instead of built as a string. Pure: no I/O, no clock (the caller passes the time).
//!
//! `aws-sigv4`, the SDK's signer, is the reference: the tests sign thousands of generated
//! requests with both and require the same signature, and `direct`'s tests require the
//! SDK's own request to sign the same. It is not used on the path because it builds the
//! canonical request as a `HeaderMap` and strings (~65 heap allocations per call) and derives
//! the key (four HMACs) every time.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwapOption;
use ring::{digest, hmac};

use crate::civil::civil_from_days;

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// Fields SigV4 leaves out (`aws-sigv4`'s default `excluded_headers`: changed by proxies or
/// computed by the signing itself).
pub fn is_signed(name: &str) -> bool {
    !matches!(name, "authorization" | "user-agent" | "x-amzn-trace-id" | "transfer-encoding")
}

/// Whether `path` is its own canonical form: double URI-encoding and dot-segment normalisation
/// leave it unchanged (only unreserved characters and `/`, no empty, `.` or `..` segments).
pub fn is_canonical_path(path: &str) -> bool {
    path.starts_with('/')
        && path.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/'))
        && path[1..].split('/').all(|seg| !seg.is_empty() && seg != "." && seg != "..")
}

/// `YYYYMMDDTHHMMSSZ` (UTC) for `t`; times before 1970 sign as the epoch.
pub fn amz_date(t: SystemTime) -> [u8; 16] {
    let secs = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    let mut out = *b"00000000T000000Z";
    let mut put = |at: usize, width: usize, mut v: u64| {
        for i in (at..at + width).rev() {
            out[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, y as u64);
    put(4, 2, m as u64);
    put(6, 2, d as u64);
    put(9, 2, rem / 3600);
    put(11, 2, rem % 3600 / 60);
    put(13, 2, rem % 60);
    out
}

/// A signing key and its credential scope, for one day, region, service and secret.
pub struct DayKey {
    day: [u8; 8],
    secret: Box<str>,
    /// `DAY/REGION/SERVICE/aws4_request`.
    pub scope: Box<str>,
    key: hmac::Key,
}

impl DayKey {
    pub fn derive(secret: &str, day: [u8; 8], region: &str, service: &str) -> DayKey {
        let day_str = std::str::from_utf8(&day).unwrap_or("19700101");
        let mut k = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, format!("AWS4{secret}").as_bytes()), &day);
        for part in [region, service, "aws4_request"] {
            k = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, k.as_ref()), part.as_bytes());
        }
        DayKey {
            day,
            secret: secret.into(),
            scope: format!("{day_str}/{region}/{service}/aws4_request").into(),
            key: hmac::Key::new(hmac::HMAC_SHA256, k.as_ref()),
        }
    }
}

/// The last derived key, reused while the day and the secret stay the same (credentials rotate
/// hourly at most, days change once a day: a derivation is a few times a day per endpoint).
pub struct KeyCache {
    region: Box<str>,
    service: &'static str,
    last: ArcSwapOption<DayKey>,
}

impl KeyCache {
    pub fn new(region: &str, service: &'static str) -> KeyCache {
        KeyCache { region: region.into(), service, last: ArcSwapOption::empty() }
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    pub fn get(&self, secret: &str, day: [u8; 8]) -> Arc<DayKey> {
        if let Some(k) = self.last.load_full() {
            if k.day == day && *k.secret == *secret {
                return k;
            }
        }
        let k = Arc::new(DayKey::derive(secret, day, &self.region, self.service));
        self.last.store(Some(k.clone()));
        k
    }
}

/// Lower-case hex of `bytes` into `out` (twice as long).
fn hex_into(bytes: &[u8], out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = DIGITS[usize::from(b >> 4)];
        out[2 * i + 1] = DIGITS[usize::from(b & 15)];
    }
}

/// A header value as SigV4 canonicalises it: spaces trimmed at both ends, runs of spaces
/// collapsed to one (only spaces, as `aws-sigv4`'s `trim_all`).
fn update_trimmed(ctx: &mut digest::Context, value: &str) {
    let v = value.trim_matches(' ');
    if !v.contains("  ") {
        ctx.update(v.as_bytes());
        return;
    }
    let mut prev_space = false;
    let mut start = 0;
    for (i, b) in v.bytes().enumerate() {
        if b == b' ' && prev_space {
            ctx.update(&v.as_bytes()[start..i]);
            start = i + 1;
        }
        prev_space = b == b' ';
    }
    ctx.update(&v.as_bytes()[start..]);
}

/// The signed field names joined by `;`, in `fields`' (sorted) order, each name once.
pub fn signed_names<'a>(fields: &'a [(&'a str, &'a str)]) -> impl Iterator<Item = &'a str> + 'a {
    fields
        .iter()
        .enumerate()
        .filter(move |(i, (n, _))| is_signed(n) && (*i == 0 || fields[i - 1].0 != *n))
        .map(|(_, (n, _))| *n)
}

/// The hex signature of a `POST` to `path` (canonical, no query) with `fields` — lower-case
/// names, stably sorted by name, `host`, `x-amz-date` and any `x-amz-security-token` among
/// them — and `body`, at `amz_date`, with `key`.
pub fn signature(key: &DayKey, amz_date: &[u8; 16], path: &str, fields: &[(&str, &str)], body: &[u8]) -> [u8; 64] {
    let mut hex = [0u8; 64];
    let mut c = digest::Context::new(&digest::SHA256);
    c.update(b"POST\n");
    c.update(path.as_bytes());
    c.update(b"\n\n");
    let mut prev: Option<&str> = None;
    for (name, value) in fields.iter().filter(|(n, _)| is_signed(n)) {
        if prev == Some(*name) {
            c.update(b",");
        } else {
            if prev.is_some() {
                c.update(b"\n");
            }
            c.update(name.as_bytes());
            c.update(b":");
        }
        update_trimmed(&mut c, value);
        prev = Some(name);
    }
    c.update(b"\n\n");
    for (i, name) in signed_names(fields).enumerate() {
        if i > 0 {
            c.update(b";");
        }
        c.update(name.as_bytes());
    }
    c.update(b"\n");
    hex_into(digest::digest(&digest::SHA256, body).as_ref(), &mut hex);
    c.update(&hex);
    hex_into(c.finish().as_ref(), &mut hex);

    let mut s = hmac::Context::with_key(&key.key);
    for part in [ALGORITHM.as_bytes(), b"\n", amz_date, b"\n", key.scope.as_bytes(), b"\n", &hex] {
        s.update(part);
    }
    hex_into(s.sign().as_ref(), &mut hex);
    hex
}

#[cfg(test)]
#[path = "sigv4_tests.rs"]
mod tests;
