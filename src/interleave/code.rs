//! The team code: what an interleaved answer tells `/feedback` later, on any replica, so a click
//! can be credited without any state shared between replicas. Pure, no I/O.
//!
//! The merged list itself cannot be carried (ids can be long), and feedback names an item, not a
//! position. So the code holds, per position, which team picked it and a 16-bit fingerprint of its
//! item id, plus a tag that binds it to the arm, the request and the config's salt:
//!
//! ```text
//! payload = [1 (version), n (positions), B-mask (ceil(n/8) bytes, bit i of byte j = position 8j+i),
//!            fingerprint of each position (2n bytes, big-endian)]
//! fingerprint(item) = splitmix64(FNV-1a-64(request_id ‖ 0x00 ‖ item_id)) >> 48
//! tag     = SHA-256(salt ‖ 0x00 ‖ variant ‖ 0x00 ‖ request_id ‖ 0x00 ‖ payload)[0..4]
//! code    = base64url(payload ‖ tag), no padding
//! ```
//!
//! `request_id` is the id the models were called with (the caller's own, or the one splitgate
//! minted, which then answers as `<minted>.<code>`). The tag makes a code useless with another
//! request id, for another arm or under another salt, and — the salt being known only to the
//! config — hard to forge by a caller. Looking an item up finds the position(s) with its
//! fingerprint: for a 10-item page, a click on a shown item is ambiguous (two positions of
//! different teams share its fingerprint) about once in 13,000 clicks, and an item that was not
//! shown matches by chance about once in 6,500 — both are reported, never guessed.

use sha2::{Digest, Sha256};

use super::merge::{splitmix64, Team};

/// The most positions a code describes (an interleaving arm's `k` is at most this): 24 keeps a
/// minted id with its code under 128 characters.
pub const MAX_POSITIONS: usize = 24;

const VERSION: u8 = 1;
const TAG_BYTES: usize = 4;

/// A decoded, verified code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Code {
    /// Positions on the page.
    pub n: usize,
    /// Bit `i` set: position `i` was picked by team B.
    pub b_mask: u64,
    pub fingerprints: [u16; MAX_POSITIONS],
}

/// Where a fed-back item was on the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Located {
    /// At this position (the first with its fingerprint), picked by this team.
    At { position: usize, team: Team },
    /// No position has its fingerprint: the item was not on the page.
    NotShown,
    /// Positions of both teams share its fingerprint: no credit rather than a guess.
    Ambiguous,
}

/// FNV-1a, 64 bits: specified in a few lines, so the offline check recomputes it exactly.
pub fn fnv1a64(parts: &[&[u8]]) -> u64 {
    fnv1a64_from(FNV_OFFSET, parts)
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a continued from state `h`.
fn fnv1a64_from(mut h: u64, parts: &[&[u8]]) -> u64 {
    for part in parts {
        for b in *part {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// The 16-bit fingerprint of `item_id` on the page of `request_id`. FNV-1a's top bits hardly
/// depend on the last bytes (`item-1` and `item-2` share them), so splitmix64's finalizer mixes
/// every input bit into the 16 kept.
pub fn fingerprint(request_id: &[u8], item_id: &str) -> u16 {
    Fingerprints::of_page(request_id).of(item_id)
}

/// The fingerprints of one page's items: FNV-1a is a running state, so the request id's part is
/// hashed once per page, not once per item.
#[derive(Debug, Clone, Copy)]
pub struct Fingerprints(u64);

impl Fingerprints {
    pub fn of_page(request_id: &[u8]) -> Fingerprints {
        Fingerprints(fnv1a64_from(FNV_OFFSET, &[request_id, &[0]]))
    }

    pub fn of(self, item_id: &str) -> u16 {
        (splitmix64(fnv1a64_from(self.0, &[item_id.as_bytes()])) >> 48) as u16
    }
}

fn tag(salt: &str, variant: &str, request_id: &[u8], payload: &[u8]) -> [u8; TAG_BYTES] {
    let mut h = Sha256::new();
    for part in [salt.as_bytes(), variant.as_bytes(), request_id] {
        h.update(part);
        h.update([0u8]);
    }
    h.update(payload);
    let digest = h.finalize();
    let mut out = [0u8; TAG_BYTES];
    out.copy_from_slice(&digest[..TAG_BYTES]);
    out
}

/// The code of a page: `b_mask` over its `fingerprints.len()` positions (at most
/// [`MAX_POSITIONS`]; extra positions are not encoded).
pub fn encode(salt: &str, variant: &str, request_id: &[u8], b_mask: u64, fingerprints: &[u16]) -> String {
    let n = fingerprints.len().min(MAX_POSITIONS);
    let mask_bytes = n.div_ceil(8);
    let mut bytes = Vec::with_capacity(2 + mask_bytes + 2 * n + TAG_BYTES);
    bytes.extend_from_slice(&[VERSION, n as u8]);
    bytes.extend((0..mask_bytes).map(|j| (b_mask >> (8 * j)) as u8 & mask_byte(n, j)));
    for fp in &fingerprints[..n] {
        bytes.extend_from_slice(&fp.to_be_bytes());
    }
    let t = tag(salt, variant, request_id, &bytes);
    bytes.extend_from_slice(&t);
    base64url(&bytes)
}

/// The bits of mask byte `j` that stand for real positions.
fn mask_byte(n: usize, j: usize) -> u8 {
    let bits = n.saturating_sub(8 * j).min(8);
    if bits == 8 {
        0xff
    } else {
        (1u8 << bits) - 1
    }
}

/// Decodes `code` and checks its tag against `(salt, variant, request_id)`; `None` when it is not
/// a code, or not this arm's code for this request.
pub fn decode(salt: &str, variant: &str, request_id: &[u8], code: &str) -> Option<Code> {
    let bytes = unbase64url(code)?;
    let (&version, rest) = bytes.split_first()?;
    let (&n, rest) = rest.split_first()?;
    let n = usize::from(n);
    let mask_bytes = n.div_ceil(8);
    if version != VERSION || n > MAX_POSITIONS || rest.len() != mask_bytes + 2 * n + TAG_BYTES {
        return None;
    }
    let (payload, t) = bytes.split_at(bytes.len() - TAG_BYTES);
    if tag(salt, variant, request_id, payload) != t {
        return None;
    }
    let (mask, fps) = rest.split_at(mask_bytes);
    if mask.iter().enumerate().any(|(j, m)| m & !mask_byte(n, j) != 0) {
        return None;
    }
    let b_mask = mask.iter().enumerate().fold(0u64, |m, (j, b)| m | u64::from(*b) << (8 * j));
    let mut fingerprints = [0u16; MAX_POSITIONS];
    for (i, pair) in fps[..2 * n].chunks_exact(2).enumerate() {
        fingerprints[i] = u16::from_be_bytes([pair[0], pair[1]]);
    }
    Some(Code { n, b_mask, fingerprints })
}

impl Code {
    /// The team of position `i`.
    pub fn team(&self, i: usize) -> Team {
        if self.b_mask >> i & 1 == 1 {
            Team::B
        } else {
            Team::A
        }
    }

    /// Where the item with fingerprint `fp` was shown.
    pub fn locate(&self, fp: u16) -> Located {
        let mut found: Option<(usize, Team)> = None;
        for i in (0..self.n).filter(|i| self.fingerprints[*i] == fp) {
            match found {
                None => found = Some((i, self.team(i))),
                Some((_, team)) if team != self.team(i) => return Located::Ambiguous,
                Some(_) => {}
            }
        }
        found.map_or(Located::NotShown, |(position, team)| Located::At { position, team })
    }
}

/// A request id as a client holds it: `<id>.<code>` when splitgate minted it for an interleaved
/// answer, else just the id. The split is only a candidate: [`decode`] decides.
pub fn split_request_id(id: &str) -> Option<(&str, &str)> {
    id.rsplit_once('.').filter(|(base, code)| !base.is_empty() && !code.is_empty())
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// RFC 4648 §5 base64url without padding: its characters are all allowed in a request id.
pub fn base64url(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let v = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(v >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// The inverse of [`base64url`]; `None` on any other character, a dangling character or
/// non-zero padding bits (so each byte string has exactly one code).
pub fn unbase64url(s: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| ALPHABET.iter().position(|a| *a == c).map(|p| p as u32);
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.as_bytes().chunks(4) {
        if chunk.len() == 1 {
            return None;
        }
        let mut v = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            v |= digit(*c)? << (18 - 6 * i);
        }
        let bytes = chunk.len() - 1;
        if v & ((1 << (8 * (3 - bytes))) - 1) != 0 {
            return None;
        }
        out.extend((0..bytes).map(|i| (v >> (16 - 8 * i)) as u8));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_matches_rfc_4648_vectors() {
        for (raw, enc) in [
            ("", ""),
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
            ("fooba", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64url(raw.as_bytes()), enc);
            assert_eq!(unbase64url(enc).as_deref(), Some(raw.as_bytes()));
        }
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
        assert_eq!(unbase64url("-_8"), Some(vec![0xfb, 0xff]));
        assert_eq!(unbase64url("Zg=="), None, "no padding");
        assert_eq!(unbase64url("Zh"), None, "non-zero padding bits");
        assert_eq!(unbase64url("Z"), None);
        assert_eq!(unbase64url("Zm9v+"), None);
    }

    #[test]
    fn fnv_vectors() {
        // The FNV-1a 64 reference values (Fowler/Noll/Vo test suite).
        assert_eq!(fnv1a64(&[b""]), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(&[b"a"]), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(&[b"foobar"]), 0x8594_4171_f739_67e8);
        assert_eq!(fnv1a64(&[b"foo", b"bar"]), fnv1a64(&[b"foobar"]));
        assert_eq!(fingerprint(b"r", "x"), (splitmix64(fnv1a64(&[b"r\0x"])) >> 48) as u16);
    }

    #[test]
    fn fingerprints_spread_ids_that_differ_in_their_last_characters() {
        for base in [&b"caller-req-1"[..], b"0123456789abcdef0123456789abcdef"] {
            let fps: std::collections::HashSet<u16> =
                (0..1_000).map(|i| fingerprint(base, &format!("item-{i}"))).collect();
            // 1,000 ids in 65,536 values: about 8 collide by chance.
            assert!(fps.len() >= 980, "{} distinct of 1000", fps.len());
            let short: std::collections::HashSet<u16> =
                ["a1", "a2", "a3", "b1", "b2", "x", "y"].iter().map(|i| fingerprint(base, i)).collect();
            assert_eq!(short.len(), 7);
        }
    }

    #[test]
    fn round_trip_and_layout() {
        let fps = [0x0102, 0xa0b0, 0xffff];
        let code = encode("salt", "arm", b"req-1", 0b101, &fps);
        let bytes = unbase64url(&code).unwrap();
        // Version, n, one mask byte, 3 fingerprints, 4 tag bytes.
        assert_eq!(&bytes[..9], &[1, 3, 0b101, 0x01, 0x02, 0xa0, 0xb0, 0xff, 0xff]);
        assert_eq!(bytes.len(), 13);
        let c = decode("salt", "arm", b"req-1", &code).unwrap();
        assert_eq!((c.n, c.b_mask), (3, 0b101));
        assert_eq!(&c.fingerprints[..3], &fps);
        assert_eq!((c.team(0), c.team(1), c.team(2)), (Team::B, Team::A, Team::B));
        // Another request, arm or salt: not this code.
        assert_eq!(decode("salt", "arm", b"req-2", &code), None);
        assert_eq!(decode("salt", "other", b"req-1", &code), None);
        assert_eq!(decode("pepper", "arm", b"req-1", &code), None);
        // Any changed character breaks the tag or the framing.
        for i in 0..code.len() {
            let mut broken = code.clone().into_bytes();
            broken[i] = if broken[i] == b'A' { b'B' } else { b'A' };
            assert_eq!(decode("salt", "arm", b"req-1", std::str::from_utf8(&broken).unwrap()), None, "char {i}");
        }
        assert_eq!(decode("salt", "arm", b"req-1", "not a code!"), None);
        assert_eq!(decode("salt", "arm", b"req-1", ""), None);
    }

    #[test]
    fn a_full_page_fits_in_a_request_id() {
        let fps = [7u16; MAX_POSITIONS];
        let code = encode("s", "v", b"0123456789abcdef0123456789abcdef", (1 << 24) - 1, &fps);
        let id = format!("0123456789abcdef0123456789abcdef.{code}");
        assert!(id.len() <= 128, "{} characters", id.len());
        assert!(id.bytes().all(|c| c.is_ascii_alphanumeric() || b"-_.:".contains(&c)));
        let c = decode("s", "v", b"0123456789abcdef0123456789abcdef", &code).unwrap();
        assert_eq!((c.n, c.b_mask), (24, (1 << 24) - 1));
        // Mask bits past n are refused, so the mask means one thing.
        let short = encode("s", "v", b"r", 0b1111, &[1, 2, 3]);
        assert_eq!(decode("s", "v", b"r", &short).unwrap().b_mask, 0b111);
    }

    #[test]
    fn locating_items() {
        let c = Code {
            n: 4,
            b_mask: 0b0110,
            fingerprints: {
                let mut f = [0; MAX_POSITIONS];
                f[..4].copy_from_slice(&[10, 20, 30, 20]);
                f
            },
        };
        assert_eq!(c.locate(10), Located::At { position: 0, team: Team::A });
        assert_eq!(c.locate(30), Located::At { position: 2, team: Team::B });
        // Positions 1 and 3 share a fingerprint; 1 is B, 3 is A.
        assert_eq!(c.locate(20), Located::Ambiguous);
        assert_eq!(c.locate(99), Located::NotShown);
        let same = Code { b_mask: 0b1010, ..c.clone() };
        assert_eq!(same.locate(20), Located::At { position: 1, team: Team::B });
        // Fingerprints past n are not positions.
        assert_eq!(Code { n: 1, ..c }.locate(20), Located::NotShown);
    }

    #[test]
    fn request_id_candidates() {
        assert_eq!(split_request_id("abc.def"), Some(("abc", "def")));
        assert_eq!(split_request_id("a.b.c"), Some(("a.b", "c")));
        assert_eq!(split_request_id("abc"), None);
        assert_eq!(split_request_id(".abc"), None);
        assert_eq!(split_request_id("abc."), None);
    }
}
