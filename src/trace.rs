//! Trace context: which trace a request belongs to, read from the caller's W3C `traceparent` /
//! `tracestate` or AWS X-Ray `X-Amzn-Trace-Id`, or minted when it has none, and rendered for the
//! models and shadows the request reaches. Pure (no I/O): parsing, minting and rendering into
//! fixed-size buffers, so the request path never allocates for it.
//!
//! One trace id serves both formats: an X-Ray root `1-XXXXXXXX-YYYYYYYYYYYYYYYYYYYYYYYY` is the
//! 32 hex digits of the W3C trace id split after the eighth, which is how the ADOT collector maps
//! them. Minted ids start with the epoch second (X-Ray's rule), so they are valid in both.
//!
//! Precedence: a valid `traceparent` (its `tracestate` then travels on unchanged); else the X-Ray
//! header's root (and its `Parent`, `Sampled`); else a fresh trace, sampled. A caller's X-Ray
//! header is forwarded as it came (the ALB adds `Self=` and others X-Ray wants kept); without one
//! the proxy sends one derived from the trace context. splitgate exports no spans of its own (see
//! the README's "Traces"), so the parent id it sends on is the caller's: the model's span becomes
//! a child of the caller's span, and a minted context starts the trace at the proxy.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName};

pub static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
pub static TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
pub static XRAY: HeaderName = HeaderName::from_static("x-amzn-trace-id");

/// `traceparent` of version 00: `00-<32 hex>-<16 hex>-<2 hex>`.
pub const TRACEPARENT_LEN: usize = 55;
/// `Root=1-<8>-<24>;Parent=<16>;Sampled=<0|1>`.
pub const XRAY_LEN: usize = 74;

const SAMPLED: u8 = 0x01;
/// The flag bits of trace-context level 2 (sampled, random trace id); version 00 requires every
/// other bit to be zero.
const KNOWN_FLAGS: u8 = 0x03;

/// The trace a request belongs to, and what the caller sent of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: [u8; 16],
    /// The span the models' calls are children of: the caller's, or a minted one.
    pub parent_id: [u8; 8],
    pub flags: u8,
    /// The caller's `traceparent` was valid: its `tracestate` is forwarded with it.
    pub from_w3c: bool,
    /// The caller sent an `X-Amzn-Trace-Id`: it is forwarded as it came.
    pub from_xray: bool,
}

impl TraceContext {
    /// The request's context from its headers, minting what is missing from `ids` (`now` gives
    /// a minted trace id its leading epoch second).
    pub fn from_headers(headers: &HeaderMap, ids: &TraceIds, now: SystemTime) -> TraceContext {
        let xray = headers.get(&XRAY);
        let mut all = headers.get_all(&TRACEPARENT).iter();
        // Two traceparent headers are as good as none (W3C: the vendor restarts the trace).
        let w3c = match (all.next(), all.next()) {
            (Some(v), None) => parse_traceparent(v.as_bytes()),
            _ => None,
        };
        if let Some((trace_id, parent_id, flags)) = w3c {
            return TraceContext { trace_id, parent_id, flags, from_w3c: true, from_xray: xray.is_some() };
        }
        if let Some(x) = xray.and_then(|v| parse_xray(v.as_bytes())) {
            return TraceContext {
                trace_id: x.trace_id,
                parent_id: x.parent_id.unwrap_or_else(|| ids.span_id()),
                // No decision from upstream (ALB roots carry none): we are the first to decide.
                flags: if x.sampled.unwrap_or(true) { SAMPLED } else { 0 },
                from_w3c: false,
                from_xray: true,
            };
        }
        TraceContext { from_xray: xray.is_some(), ..ids.mint(now) }
    }

    pub fn sampled(&self) -> bool {
        self.flags & SAMPLED != 0
    }

    /// The 32 lowercase hex digits of the trace id (the access log's `traceId`).
    pub fn trace_id_hex(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        hex(&self.trace_id, &mut out);
        out
    }

    /// The `traceparent` value to send on (always version 00).
    pub fn traceparent(&self) -> [u8; TRACEPARENT_LEN] {
        let mut out = [b'-'; TRACEPARENT_LEN];
        out[..2].copy_from_slice(b"00");
        hex(&self.trace_id, &mut out[3..35]);
        hex(&self.parent_id, &mut out[36..52]);
        hex(&[self.flags], &mut out[53..55]);
        out
    }

    /// An `X-Amzn-Trace-Id` value carrying the same trace (sent when the caller sent none).
    pub fn xray(&self) -> [u8; XRAY_LEN] {
        let mut out = [0u8; XRAY_LEN];
        out[..7].copy_from_slice(b"Root=1-");
        hex(&self.trace_id[..4], &mut out[7..15]);
        out[15] = b'-';
        hex(&self.trace_id[4..], &mut out[16..40]);
        out[40..48].copy_from_slice(b";Parent=");
        hex(&self.parent_id, &mut out[48..64]);
        out[64..73].copy_from_slice(b";Sampled=");
        out[73] = if self.sampled() { b'1' } else { b'0' };
        out
    }
}

/// Mints trace and span ids: SplitMix64 over a per-process random seed and one atomic counter,
/// so minting costs an atomic add and a few multiplies, never a system call. Ids are unique within
/// the process (the mix is a bijection of the counter) and unpredictable enough across replicas
/// (64 random bits of seed); they are identifiers, not secrets.
#[derive(Debug)]
pub struct TraceIds {
    state: AtomicU64,
}

/// SplitMix64's increment (the golden ratio in 64 bits).
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

impl TraceIds {
    /// Seeded from the OS once; falls back to the clock if it has no randomness to give.
    pub fn new() -> TraceIds {
        let mut seed = [0u8; 8];
        if getrandom::fill(&mut seed).is_err() {
            let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
            seed = (nanos.as_nanos() as u64).to_le_bytes();
        }
        TraceIds::with_seed(u64::from_le_bytes(seed))
    }

    /// A generator with a fixed seed (tests, benchmarks).
    pub fn with_seed(seed: u64) -> TraceIds {
        TraceIds { state: AtomicU64::new(seed) }
    }

    /// `n` consecutive SplitMix64 outputs from one atomic step.
    fn next<const N: usize>(&self) -> [u64; N] {
        let base = self.state.fetch_add(GAMMA.wrapping_mul(N as u64), Ordering::Relaxed);
        std::array::from_fn(|i| mix(base.wrapping_add(GAMMA.wrapping_mul(i as u64 + 1))))
    }

    /// A fresh, sampled context: trace id = epoch second (4 bytes, big-endian) + 12 random bytes.
    pub fn mint(&self, now: SystemTime) -> TraceContext {
        let [a, b, c] = self.next::<3>();
        let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as u32;
        let mut trace_id = [0u8; 16];
        trace_id[..4].copy_from_slice(&secs.to_be_bytes());
        trace_id[4..12].copy_from_slice(&a.to_be_bytes());
        trace_id[12..].copy_from_slice(&(b as u32).to_be_bytes());
        TraceContext { trace_id, parent_id: span(c), flags: SAMPLED, from_w3c: false, from_xray: false }
    }

    /// A fresh span id (never all zero).
    pub fn span_id(&self) -> [u8; 8] {
        let [c] = self.next::<1>();
        span(c)
    }
}

impl Default for TraceIds {
    fn default() -> Self {
        TraceIds::new()
    }
}

fn span(v: u64) -> [u8; 8] {
    // All-zero is the one invalid span id; the mix maps exactly one counter value to it.
    v.max(1).to_be_bytes()
}

/// SplitMix64's finaliser (Steele, Lea, Flood 2014): a bijection on u64.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A W3C `traceparent` (trace-context level 1, §3.2): version 00 is exactly 55 characters of
/// lowercase hex and dashes; a higher version may carry more after a dash, and is read as 00;
/// version ff, an all-zero trace id or parent id are invalid. Returns trace id, parent id and
/// the known flag bits.
pub fn parse_traceparent(v: &[u8]) -> Option<([u8; 16], [u8; 8], u8)> {
    if v.len() < TRACEPARENT_LEN || v[2] != b'-' || v[35] != b'-' || v[52] != b'-' {
        return None;
    }
    let version = unhex::<1>(&v[..2])?[0];
    match version {
        0xff => return None,
        0 if v.len() != TRACEPARENT_LEN => return None,
        // A future version may append fields, always after a dash.
        _ if v.len() > TRACEPARENT_LEN && v[TRACEPARENT_LEN] != b'-' => return None,
        _ => {}
    }
    let trace_id = unhex::<16>(&v[3..35])?;
    let parent_id = unhex::<8>(&v[36..52])?;
    let flags = unhex::<1>(&v[53..55])?[0];
    if trace_id == [0; 16] || parent_id == [0; 8] {
        return None;
    }
    Some((trace_id, parent_id, flags & KNOWN_FLAGS))
}

/// What an `X-Amzn-Trace-Id` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XRayHeader {
    pub trace_id: [u8; 16],
    pub parent_id: Option<[u8; 8]>,
    /// `Sampled=1` / `Sampled=0`; `None` when absent or `?` (no decision yet).
    pub sampled: Option<bool>,
}

/// `Root=1-<8 hex>-<24 hex>[;Parent=<16 hex>][;Sampled=0|1|?][;…]`, fields in any order, keys
/// case-insensitive, spaces around `;` ignored. `None` without a valid root.
pub fn parse_xray(v: &[u8]) -> Option<XRayHeader> {
    let (mut trace_id, mut parent_id, mut sampled) = (None, None, None);
    for field in v.split(|&b| b == b';') {
        let field = field.trim_ascii();
        let Some(eq) = field.iter().position(|&b| b == b'=') else { continue };
        let (key, value) = (&field[..eq], &field[eq + 1..]);
        if key.eq_ignore_ascii_case(b"root") {
            trace_id = xray_root(value);
        } else if key.eq_ignore_ascii_case(b"parent") {
            parent_id = unhex_any::<8>(value).filter(|p| *p != [0; 8]);
        } else if key.eq_ignore_ascii_case(b"sampled") {
            sampled = match value {
                b"1" => Some(true),
                b"0" => Some(false),
                _ => None,
            };
        }
    }
    Some(XRayHeader { trace_id: trace_id?, parent_id, sampled })
}

fn xray_root(v: &[u8]) -> Option<[u8; 16]> {
    if v.len() != 35 || &v[..2] != b"1-" || v[10] != b'-' {
        return None;
    }
    let mut digits = [0u8; 32];
    digits[..8].copy_from_slice(&v[2..10]);
    digits[8..].copy_from_slice(&v[11..]);
    unhex_any::<16>(&digits).filter(|t| *t != [0; 16])
}

/// Digit values by byte; 0xff marks a byte that is not a digit of that alphabet.
const fn digits(upper: bool) -> [u8; 256] {
    let mut t = [0xff; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        if upper {
            t[b'A' as usize + i] = 10 + i as u8;
        }
        i += 1;
    }
    t
}

/// Lowercase hex only (W3C's HEXDIGLC).
static LOWER: [u8; 256] = digits(false);
/// Either case (X-Ray ids are documented lowercase, but nothing there says they must be).
static ANY_CASE: [u8; 256] = digits(true);

fn unhex<const N: usize>(s: &[u8]) -> Option<[u8; N]> {
    decode(s, &LOWER)
}

fn unhex_any<const N: usize>(s: &[u8]) -> Option<[u8; N]> {
    decode(s, &ANY_CASE)
}

/// Table lookups without a branch per digit: any invalid byte sets high bits in `bad`.
fn decode<const N: usize>(s: &[u8], table: &[u8; 256]) -> Option<[u8; N]> {
    if s.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    let mut bad = 0u8;
    for (o, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        let (hi, lo) = (table[usize::from(pair[0])], table[usize::from(pair[1])]);
        bad |= hi | lo;
        *o = hi << 4 | (lo & 0x0f);
    }
    (bad & 0xf0 == 0).then_some(out)
}

/// Lowercase hex of `bytes` into `out` (twice as long).
fn hex(bytes: &[u8], out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 15)];
    }
}

#[cfg(test)]
mod tests;
