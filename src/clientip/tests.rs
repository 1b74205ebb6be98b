//! Client-address unit tests: CIDR parsing and membership at the networks' edges, and the
//! X-Forwarded-For walk for each way a header reaches the proxy.

use std::net::IpAddr;

use http::{HeaderMap, HeaderValue};

use super::*;

fn cidr(s: &str) -> Cidr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn xff(values: &[&str]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for v in values {
        h.append(&X_FORWARDED_FOR, HeaderValue::from_str(v).unwrap());
    }
    h
}

/// The VPC an ALB and the ECS tasks live in.
fn vpc() -> TrustedProxies {
    TrustedProxies::new(vec![cidr("10.0.0.0/16")])
}

#[test]
fn networks_contain_exactly_their_range() {
    let cases = [
        ("10.0.0.0/8", "10.0.0.0", true),
        ("10.0.0.0/8", "10.255.255.255", true),
        ("10.0.0.0/8", "11.0.0.0", false),
        ("10.0.0.0/8", "9.255.255.255", false),
        ("172.16.0.0/12", "172.31.255.255", true),
        ("172.16.0.0/12", "172.32.0.0", false),
        ("192.168.1.7", "192.168.1.7", true),
        ("192.168.1.7", "192.168.1.8", false),
        ("192.168.1.7/32", "192.168.1.7", true),
        ("0.0.0.0/0", "203.0.113.9", true),
        ("0.0.0.0/0", "2001:db8::1", false),
        ("2001:db8::/32", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", true),
        ("2001:db8::/32", "2001:db9::", false),
        ("::/0", "::1", true),
        ("::/0", "10.0.0.1", false),
        ("fd00::/8", "fdff::1", true),
        ("::1", "::1", true),
        // A dual-stack listener reports IPv4 peers as mapped IPv6 addresses.
        ("10.0.0.0/8", "::ffff:10.1.2.3", true),
        ("10.0.0.0/8", "::ffff:11.1.2.3", false),
    ];
    for (net, addr, want) in cases {
        assert_eq!(cidr(net).contains(ip(addr)), want, "{net} ∋ {addr}");
    }
    assert!(cidr("0.0.0.0/0").is_everything() && !cidr("10.0.0.0/8").is_everything());
    assert_eq!(cidr("10.0.0.0/8").to_string(), "10.0.0.0/8");
    assert_eq!(cidr("10.0.3.7").to_string(), "10.0.3.7/32");
}

#[test]
fn malformed_networks_say_what_is_wrong() {
    let cases = [
        ("", "is not an IP address or CIDR network"),
        ("ten.0.0.0/8", "is not an IP address or CIDR network"),
        ("10.0.0.0/", "is not an IP address or CIDR network"),
        ("10.0.0.0/+8", "is not an IP address or CIDR network"),
        ("10.0.0.0/8/8", "is not an IP address or CIDR network"),
        ("10.0.0.0/33", "`10.0.0.0/33`: the prefix length must be 0-32 for an IPv4 network"),
        ("2001:db8::/129", "`2001:db8::/129`: the prefix length must be 0-128 for an IPv6 network"),
        ("10.0.0.0/300", "the prefix length must be 0-32"),
        ("10.0.0.1/8", "`10.0.0.1/8` has address bits set past its /8; the network is 10.0.0.0/8"),
        ("2001:db8::1/32", "the network is 2001:db8::/32"),
    ];
    for (text, want) in cases {
        let e = text.parse::<Cidr>().unwrap_err().to_string();
        assert!(e.contains(want), "{text:?}: {e}");
    }
}

#[test]
fn nobody_is_trusted_by_default() {
    let h = xff(&["203.0.113.7"]);
    assert_eq!(TrustedProxies::default().client_ip(ip("10.0.1.5"), &h), ip("10.0.1.5"));
}

#[test]
fn an_untrusted_peer_cannot_choose_its_address() {
    let h = xff(&["198.51.100.1"]);
    assert_eq!(vpc().client_ip(ip("203.0.113.7"), &h), ip("203.0.113.7"));
}

#[test]
fn behind_the_alb_the_client_is_the_rightmost_untrusted_hop() {
    let alb = ip("10.0.1.5");
    let cases: [(&[&str], &str); 9] = [
        (&["203.0.113.7"], "203.0.113.7"),
        // The client's own header comes first; the ALB appends what it saw.
        (&["1.1.1.1, 203.0.113.7"], "203.0.113.7"),
        // API Gateway's VPC link (in the VPC) in between.
        (&["203.0.113.7, 10.0.2.9"], "203.0.113.7"),
        (&["1.1.1.1", "203.0.113.7"], "203.0.113.7"),
        (&["1.1.1.1, 203.0.113.7", "10.0.2.9"], "203.0.113.7"),
        (&["203.0.113.7,, 10.0.2.9 ,"], "203.0.113.7"),
        (&["203.0.113.7:5678"], "203.0.113.7"),
        (&["[2001:db8::7]:443"], "2001:db8::7"),
        (&["::ffff:203.0.113.7"], "203.0.113.7"),
    ];
    for (values, want) in cases {
        assert_eq!(vpc().client_ip(alb, &xff(values)), ip(want), "{values:?}");
    }
}

#[test]
fn trusted_all_the_way_or_garbled_stops_at_the_last_address_reached() {
    let alb = ip("10.0.1.5");
    assert_eq!(vpc().client_ip(alb, &HeaderMap::new()), alb, "no header: the peer");
    assert_eq!(vpc().client_ip(alb, &xff(&["10.0.0.3, 10.0.0.4"])), ip("10.0.0.3"));
    assert_eq!(vpc().client_ip(alb, &xff(&["203.0.113.7, unknown"])), alb);
    assert_eq!(vpc().client_ip(alb, &xff(&["203.0.113.7, unknown, 10.0.0.4"])), ip("10.0.0.4"));
    for garbled in ["1.2.3.4:", "1.2.3.4:123456", "[2001:db8::7", "[2001:db8::7]x", "[1.2.3.4]", "_hidden"] {
        assert_eq!(vpc().client_ip(alb, &xff(&[garbled])), alb, "{garbled}");
    }
    let mut h = HeaderMap::new();
    h.append(&X_FORWARDED_FOR, HeaderValue::from_bytes(b"203.0.113.7\xff").unwrap());
    assert_eq!(vpc().client_ip(alb, &h), alb, "not text");
}

#[test]
fn a_mapped_peer_is_trusted_as_its_ipv4_address() {
    let h = xff(&["203.0.113.7"]);
    assert_eq!(vpc().client_ip(ip("::ffff:10.0.1.5"), &h), ip("203.0.113.7"));
    let both = TrustedProxies::new(vec![cidr("10.0.0.0/16"), cidr("fd00::/8")]);
    assert_eq!(both.client_ip(ip("fd12::5"), &xff(&["2001:db8::9, fd00::1"])), ip("2001:db8::9"));
}
