//! The checks behind the fuzz targets, shared with `tests/fuzz_regressions.rs` (both include this
//! file with `#[path]`), so a saved input is replayed through exactly what the fuzzer ran.
//!
//! Each check must never panic on any input. Besides "no panic" they assert only contracts that
//! the code documents and meets today. Stricter oracles (the ones that currently find bugs, see
//! fuzz/README.md) run only when `SPLITGATE_FUZZ_STRICT=1` is set, so the regression test stays
//! green while those bugs are open and the fuzzer can still be pointed at them.
#![allow(dead_code)]

use std::collections::HashSet;
use std::sync::OnceLock;

use splitgate::config::{self, Issue};
use splitgate::proxy::head;
use splitgate::shadow::compare::{compare as compare_lists, extract_ids, Comparison, RBO_P};
use splitgate::userid;

/// The fixed list that fuzzed lists are compared against.
const FIXED: [&str; 10] = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];

fn strict() -> bool {
    static STRICT: OnceLock<bool> = OnceLock::new();
    *STRICT.get_or_init(|| std::env::var_os("SPLITGATE_FUZZ_STRICT").is_some_and(|v| v == "1"))
}

/// Config text → `config::parse` → `config::validate`. A validated plan must keep the split's
/// promises: exactly one champion, weights filling all 10 000 buckets, the layout giving every
/// variant exactly its weight, and every model index in range.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = config_outcome(text);
}

/// What `config` concluded: `None` when the text does not parse, else whether it validated.
pub fn config_outcome(text: &str) -> Option<bool> {
    let raw = match config::parse(text) {
        Ok(raw) => raw,
        Err(e) => {
            assert!(!e.to_string().is_empty(), "a syntax error without a message");
            return None;
        }
    };
    match config::validate(&raw) {
        Ok(plan) => {
            assert!(!plan.variants.is_empty(), "a plan without variants");
            let champions: Vec<usize> =
                plan.variants.iter().enumerate().filter(|(_, v)| v.champion).map(|(i, _)| i).collect();
            assert_eq!(champions, vec![plan.champion], "the plan's champion is not the one champion variant");
            let buckets: Vec<u32> = plan.variants.iter().map(|v| v.buckets).collect();
            assert_eq!(buckets.iter().sum::<u32>(), splitgate::split::BUCKETS, "weights do not fill the space");
            assert_eq!(plan.layout.counts(plan.variants.len()), buckets, "layout disagrees with the weights");
            for b in [0, 1, 4_999, 9_999, 10_000, u32::MAX] {
                assert!(plan.layout.variant_of(b) < plan.variants.len());
            }
            assert!(plan.variants.iter().all(|v| v.model < plan.models.len()), "variant model out of range");
            assert!(plan.shadows.iter().all(|s| s.model < plan.models.len()), "shadow model out of range");
            Some(true)
        }
        Err(issues) => {
            assert!(!issues.is_empty(), "validation failed without saying why");
            assert!(issues.iter().all(|i| !i.path.is_empty() && !i.message.is_empty()), "{issues:?}");
            assert!(!Issue::render(&issues).is_empty());
            Some(false)
        }
    }
}

/// Request body → `userid::from_json(body, "user_id")`, checked against serde_json's own parse of
/// the same bytes where the two must agree.
pub fn user_id(data: &[u8]) {
    let found = userid::from_json(data, "user_id");
    // Other field names take the same path; they must not panic either.
    let _ = userid::from_json(data, "");
    let _ = userid::from_json(data, "user\u{e9}\"id");
    let tree = serde_json::from_slice::<serde_json::Value>(data);
    match (&found, &tree) {
        (Ok(Some(_)), Ok(v)) => {
            assert!(v.get("user_id").is_some(), "found a user id serde_json does not see: {v}")
        }
        (Ok(None), Ok(v)) => {
            assert!(v.get("user_id").is_none(), "missed a top-level user_id: {v}")
        }
        (Err(_), Ok(v)) => {
            // Only a non-string or a repeated top-level `user_id` may make valid JSON an error.
            assert!(v.get("user_id").is_some(), "rejected valid JSON without a user_id: {v}")
        }
        // JSON's grammar allows 1e400 (serde_json's tree refuses it as out of range): not a bug.
        (Ok(_), Err(e)) if strict() && !e.to_string().starts_with("number out of range") => {
            panic!("accepted a body that is not valid JSON ({e})")
        }
        _ => {}
    }
}

/// Model answer → `extract_ids(body, "/items", "item_id", 10)`, then `compare` of the ids with
/// themselves and with a fixed list at several k. Scores stay in [0, 1], top-1 means what it says,
/// and identical lists of distinct ids score 1.
pub fn compare(data: &[u8]) {
    let Ok(ids) = extract_ids(data, "/items", "item_id", 10) else { return };
    let ids: Vec<String> = ids.into_iter().map(std::borrow::Cow::into_owned).collect();
    assert!(ids.len() <= 10, "extract_ids returned {} ids for k = 10", ids.len());
    let fixed: Vec<String> = FIXED.iter().map(|s| s.to_string()).collect();
    for k in [1, 3, 10, 1_000] {
        for (a, b) in [(&ids, &ids), (&ids, &fixed), (&fixed, &ids)] {
            check_comparison(a, b, k);
        }
    }
    let distinct = ids.iter().collect::<HashSet<_>>().len() == ids.len();
    if distinct {
        let same = compare_lists(&ids, &ids, 10);
        assert!(same.overlap_at_k == 1.0 && (same.rbo - 1.0).abs() < 1e-9 && same.top1_match, "{ids:?}: {same:?}");
    }
}

fn check_comparison(a: &[String], b: &[String], k: usize) {
    let c = compare_lists(a, b, k);
    assert!(c.overlap_at_k.is_finite() && (0.0..=1.0).contains(&c.overlap_at_k), "{a:?} {b:?} k={k}: {c:?}");
    assert!(c.rbo.is_finite() && (0.0..=1.0).contains(&c.rbo), "{a:?} {b:?} k={k}: {c:?}");
    let (ak, bk) = (&a[..a.len().min(k)], &b[..b.len().min(k)]);
    if ak.is_empty() && bk.is_empty() {
        assert!(c.top1_match && c.overlap_at_k == 1.0, "two empty lists agree");
    } else {
        assert_eq!(c.top1_match, !ak.is_empty() && ak.first() == bk.first(), "{a:?} {b:?} k={k}");
    }
    if strict() {
        let want = reference(ak, bk, k);
        assert!(
            (c.overlap_at_k - want.overlap_at_k).abs() < 1e-9 && (c.rbo - want.rbo).abs() < 1e-9,
            "{a:?} vs {b:?} at k={k}: got {c:?}, the definition gives {want:?}"
        );
    }
}

/// overlap@k and RBO_ext straight from their definitions over sets (X_d = |A[..d] ∩ B[..d]|, each
/// id counted once), for lists already cut to k.
fn reference(a: &[String], b: &[String], k: usize) -> Comparison {
    let depth = a.len().max(b.len());
    if depth == 0 {
        return Comparison { overlap_at_k: 1.0, rbo: 1.0, top1_match: true };
    }
    let x = |d: usize| -> usize {
        let sa: HashSet<&String> = a[..d.min(a.len())].iter().collect();
        b[..d.min(b.len())].iter().collect::<HashSet<_>>().intersection(&sa).count()
    };
    let sum: f64 = (1..=depth).map(|d| x(d) as f64 / d as f64 * RBO_P.powi(d as i32)).sum();
    let rbo = x(depth) as f64 / depth as f64 * RBO_P.powi(depth as i32) + (1.0 - RBO_P) / RBO_P * sum;
    Comparison {
        overlap_at_k: x(depth) as f64 / k.min(depth) as f64,
        rbo: rbo.clamp(0.0, 1.0),
        top1_match: !a.is_empty() && a.first() == b.first(),
    }
}

/// Raw HTTP/1 request head → httparse → `proxy::head::check`. Verdict `Some(true)` when the head
/// is accepted, `Some(false)` when refused, `None` when httparse does not see a whole head. An
/// accepted head keeps the rules: at most one `Host` (exactly one on HTTP/1.1), `chunked` as the
/// only transfer coding, and no header left that a `Connection` header named.
pub fn request_head(data: &[u8]) {
    let _ = request_head_outcome(data);
}

pub fn request_head_outcome(data: &[u8]) -> Option<bool> {
    let mut slots = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut slots);
    let Ok(httparse::Status::Complete(_)) = req.parse(data) else { return None };
    let version = if req.version == Some(0) { http::Version::HTTP_10 } else { http::Version::HTTP_11 };
    let mut headers = http::HeaderMap::new();
    for h in req.headers.iter() {
        let (Ok(name), Ok(value)) =
            (http::HeaderName::from_bytes(h.name.as_bytes()), http::HeaderValue::from_bytes(h.value))
        else {
            continue;
        };
        headers.append(name, value);
    }
    let nominated: Vec<String> = headers
        .get_all(http::header::CONNECTION)
        .iter()
        .flat_map(|v| {
            v.as_bytes().split(|b| *b == b',').map(|t| String::from_utf8_lossy(t.trim_ascii()).to_ascii_lowercase())
        })
        .filter(|t| !t.is_empty() && t != "close" && t != "keep-alive" && t != "host" && t != "connection")
        .collect();
    match head::check(&mut headers, version) {
        Ok(()) => {
            let hosts = headers.get_all(http::header::HOST).iter().count();
            assert!(hosts <= 1, "accepted {hosts} Host headers");
            assert!(hosts == 1 || version != http::Version::HTTP_11, "accepted HTTP/1.1 without Host");
            for te in headers.get_all(http::header::TRANSFER_ENCODING) {
                for coding in te.as_bytes().split(|b| *b == b',') {
                    assert!(coding.trim_ascii().eq_ignore_ascii_case(b"chunked"), "accepted coding {coding:?}");
                }
            }
            for name in &nominated {
                assert!(headers.get(name.as_str()).is_none(), "`{name}` was named in Connection and kept");
            }
            Some(true)
        }
        Err(e) => {
            assert!(
                matches!(e.code(), "malformed_request" | "unsupported_transfer_encoding"),
                "refused with {}",
                e.code()
            );
            Some(false)
        }
    }
}
