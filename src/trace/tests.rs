//! Trace-context unit tests. Expected values come from the W3C and AWS documents' own examples
//! and from SplitMix64's reference output (Vigna's `splitmix64.c`, recomputed in Python).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue};

use super::*;

const W3C_EXAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const XRAY_EXAMPLE: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";

fn bytes<const N: usize>(hex_digits: &str) -> [u8; N] {
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&hex_digits[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (n, v) in pairs {
        h.append(http::HeaderName::from_bytes(n.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
    }
    h
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

#[test]
fn parses_the_w3c_example() {
    let (t, p, f) = parse_traceparent(W3C_EXAMPLE.as_bytes()).unwrap();
    assert_eq!(t, bytes::<16>("4bf92f3577b34da6a3ce929d0e0e4736"));
    assert_eq!(p, bytes::<8>("00f067aa0ba902b7"));
    assert_eq!(f, 1);
    let (_, _, f) = parse_traceparent(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00").unwrap();
    assert_eq!(f, 0);
}

#[test]
fn rejects_every_malformed_traceparent() {
    let bad = [
        "",
        "00-abc-def-01",
        // uppercase hex is not HEXDIGLC
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        // version 00 has nothing after the flags
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        // a later version's extra fields start with a dash
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01extra",
        "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01",
        "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
        " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    ];
    for b in bad {
        assert_eq!(parse_traceparent(b.as_bytes()), None, "{b:?}");
    }
}

#[test]
fn later_versions_are_read_as_00_and_unknown_flags_dropped() {
    let v = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff-what-the-future-holds";
    let (t, p, f) = parse_traceparent(v.as_bytes()).unwrap();
    assert_eq!((t[0], p[7], f), (0x4b, 0xb7, 0x03));
    let exact = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09";
    assert_eq!(parse_traceparent(exact.as_bytes()).unwrap().2, 0x01);
}

#[test]
fn parses_xray_headers_as_aws_documents_them() {
    let x = parse_xray(XRAY_EXAMPLE.as_bytes()).unwrap();
    assert_eq!(x.trace_id, bytes::<16>("5759e988bd862e3fe1be46a994272793"));
    assert_eq!(x.parent_id, Some(bytes::<8>("53995c3f42cd8ad8")));
    assert_eq!(x.sampled, Some(true));
    // What an ALB adds: a root, later a Self field in front; no parent, no decision.
    let alb = "Self=1-67891234-12456789abcdef012345678;Root=1-67891233-abcdef012345678912345678";
    let x = parse_xray(alb.as_bytes()).unwrap();
    assert_eq!(x.trace_id, bytes::<16>("67891233abcdef012345678912345678"));
    assert_eq!((x.parent_id, x.sampled), (None, None));
    let spaced = "sampled=0 ; root=1-5759E988-BD862E3FE1BE46A994272793 ;Lineage=a87bd80c:1|68fd508a:5";
    let x = parse_xray(spaced.as_bytes()).unwrap();
    assert_eq!(x.trace_id, bytes::<16>("5759e988bd862e3fe1be46a994272793"));
    assert_eq!(x.sampled, Some(false));
    assert_eq!(parse_xray(b"Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=?").unwrap().sampled, None);
    for bad in [
        "",
        "Parent=53995c3f42cd8ad8;Sampled=1",
        "Root=2-5759e988-bd862e3fe1be46a994272793",
        "Root=1-5759e988bd862e3fe1be46a994272793",
        "Root=1-5759e988-bd862e3fe1be46a99427279",
        "Root=1-5759e988-bd862e3fe1be46a99427279z",
        "Root=1-00000000-000000000000000000000000",
    ] {
        assert_eq!(parse_xray(bad.as_bytes()), None, "{bad:?}");
    }
    let zero_parent = parse_xray(b"Root=1-5759e988-bd862e3fe1be46a994272793;Parent=0000000000000000").unwrap();
    assert_eq!(zero_parent.parent_id, None);
}

#[test]
fn renders_both_formats_byte_for_byte() {
    let x = parse_xray(XRAY_EXAMPLE.as_bytes()).unwrap();
    let ctx = TraceContext {
        trace_id: x.trace_id,
        parent_id: x.parent_id.unwrap(),
        flags: 1,
        from_w3c: false,
        from_xray: true,
    };
    assert_eq!(&ctx.xray()[..], XRAY_EXAMPLE.as_bytes());
    assert_eq!(&ctx.traceparent()[..], b"00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01");
    assert_eq!(&ctx.trace_id_hex()[..], b"5759e988bd862e3fe1be46a994272793");
    let unsampled = TraceContext { flags: 0, ..ctx };
    assert!(unsampled.xray().ends_with(b";Sampled=0"));
    assert!(unsampled.traceparent().ends_with(b"-00"));
    let (t, p, f) = parse_traceparent(W3C_EXAMPLE.as_bytes()).unwrap();
    let w3c = TraceContext { trace_id: t, parent_id: p, flags: f, from_w3c: true, from_xray: false };
    assert_eq!(&w3c.traceparent()[..], W3C_EXAMPLE.as_bytes());
}

#[test]
fn splitmix_matches_the_reference_output() {
    assert_eq!(
        TraceIds::with_seed(0).next::<4>(),
        [0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4, 0x06c45d188009454f, 0xf88bb8a8724c81ec]
    );
    // One atomic step per call, so consecutive calls continue the same sequence.
    let ids = TraceIds::with_seed(0);
    assert_eq!(ids.next::<1>(), [0xe220a8397b1dcdaf]);
    assert_eq!(ids.next::<2>(), [0x6e789e6aa1b965f4, 0x06c45d188009454f]);
}

#[test]
fn minted_contexts_lead_with_the_epoch_second_and_are_sampled() {
    let ctx = TraceIds::with_seed(42).mint(at(0x5759_e988));
    // Seed 42's first three outputs: bdd732262feb6e95, 28efe333b266f103, 47526757130f9f52.
    assert_eq!(&ctx.trace_id_hex()[..], b"5759e988bdd732262feb6e95b266f103");
    assert_eq!(ctx.parent_id, 0x4752_6757_130f_9f52u64.to_be_bytes());
    assert!(ctx.sampled() && !ctx.from_w3c && !ctx.from_xray);
    let rendered = ctx.traceparent();
    assert_eq!(parse_traceparent(&rendered), Some((ctx.trace_id, ctx.parent_id, 1)));
    assert_eq!(parse_xray(&ctx.xray()).map(|x| x.trace_id), Some(ctx.trace_id));
}

#[test]
fn minted_ids_are_distinct() {
    let ids = TraceIds::new();
    let mut seen = std::collections::HashSet::new();
    for _ in 0..50_000 {
        let c = ids.mint(at(1_800_000_000));
        assert!(seen.insert(c.trace_id), "trace id repeated");
        assert!(seen.insert([c.parent_id, [0; 8]].concat().try_into().unwrap()), "span id repeated");
    }
}

#[test]
fn the_callers_traceparent_wins_and_keeps_its_ids() {
    let ids = TraceIds::with_seed(1);
    let h = headers(&[("traceparent", W3C_EXAMPLE), ("x-amzn-trace-id", XRAY_EXAMPLE)]);
    let ctx = TraceContext::from_headers(&h, &ids, at(1));
    assert_eq!(&ctx.trace_id_hex()[..], b"4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(&ctx.traceparent()[..], W3C_EXAMPLE.as_bytes());
    assert!(ctx.from_w3c && ctx.from_xray);
}

#[test]
fn an_xray_root_becomes_the_trace_when_there_is_no_traceparent() {
    let ids = TraceIds::with_seed(7);
    let ctx = TraceContext::from_headers(&headers(&[("x-amzn-trace-id", XRAY_EXAMPLE)]), &ids, at(1));
    assert_eq!(&ctx.traceparent()[..], b"00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01");
    assert!(!ctx.from_w3c && ctx.from_xray);
    // An ALB's root has no parent: a span id is minted; no decision: sampled.
    let alb = headers(&[("x-amzn-trace-id", "Root=1-67891233-abcdef012345678912345678")]);
    let ctx = TraceContext::from_headers(&alb, &ids, at(1));
    assert_eq!(&ctx.trace_id_hex()[..], b"67891233abcdef012345678912345678");
    assert!(ctx.sampled() && ctx.parent_id != [0; 8]);
    let unsampled = headers(&[("x-amzn-trace-id", "Root=1-67891233-abcdef012345678912345678;Sampled=0")]);
    assert!(!TraceContext::from_headers(&unsampled, &ids, at(1)).sampled());
}

#[test]
fn invalid_or_repeated_traceparents_restart_the_trace() {
    let ids = TraceIds::with_seed(3);
    for h in [
        headers(&[("traceparent", "00-abc-def-01")]),
        headers(&[("traceparent", W3C_EXAMPLE), ("traceparent", W3C_EXAMPLE)]),
        headers(&[("traceparent", "00-abc-def-01"), ("tracestate", "vendor=1")]),
        headers(&[]),
    ] {
        let ctx = TraceContext::from_headers(&h, &ids, at(0x6000_0000));
        assert!(!ctx.from_w3c, "{h:?}");
        assert_eq!(&ctx.trace_id_hex()[..8], b"60000000", "{h:?}");
        assert!(ctx.sampled());
    }
    // A broken traceparent does not hide a good X-Ray header.
    let h = headers(&[("traceparent", "garbage"), ("x-amzn-trace-id", XRAY_EXAMPLE)]);
    assert_eq!(&TraceContext::from_headers(&h, &ids, at(1)).trace_id_hex()[..8], b"5759e988");
    // An X-Ray header without a usable root is still the caller's, forwarded as it came.
    let h = headers(&[("x-amzn-trace-id", "Self=1-67891234-12456789abcdef012345678")]);
    let ctx = TraceContext::from_headers(&h, &ids, at(1));
    assert!(ctx.from_xray && !ctx.from_w3c);
}
