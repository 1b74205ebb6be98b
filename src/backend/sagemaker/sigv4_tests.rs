//! The signer against `aws-sigv4` (the SDK's): generated requests — repeated, padded and
//! space-run values, with and without a session token, any time from 1970 to 2200 — must get
//! the same signature, signed-field list and `x-amz-date`.

use std::time::Duration;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

use super::*;

/// The test's generator, with the one draw it needs beyond the shared stream.
struct Rng(crate::testing::SplitMix);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0.next()
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0.below(n)
    }
    fn value(&mut self) -> String {
        const CHARS: &[u8] = b"  abcXYZ019-_.;=,/:()+*\"'~!";
        let len = self.below(24) as usize;
        let v: String = (0..len).map(|_| CHARS[self.below(CHARS.len() as u64) as usize] as char).collect();
        // Header values never start or end with a tab and hold no control characters; spaces
        // anywhere are what canonicalisation has to get right.
        if v.trim_matches(' ').is_empty() {
            "x".into()
        } else {
            v
        }
    }
}

struct Case {
    path: String,
    host: String,
    fields: Vec<(&'static str, String)>,
    token: Option<String>,
    body: Vec<u8>,
    time: SystemTime,
}

fn case(r: &mut Rng) -> Case {
    let names = [
        "content-type",
        "accept",
        "x-amzn-sagemaker-inference-id",
        "x-amzn-sagemaker-target-variant",
        "traceparent",
        "tracestate",
        "x-amzn-trace-id",
        "content-length",
        "user-agent",
    ];
    let mut fields = Vec::new();
    for name in names {
        let repeats = if name == "tracestate" { r.below(4) } else { r.below(2) };
        for _ in 0..repeats {
            fields.push((name, r.value()));
        }
    }
    let prefix = ["", "/p", "/a-b/c.d_e~f"][r.below(3) as usize];
    let name_len = 1 + r.below(20) as usize;
    let name: String = (0..name_len).map(|_| b"abcXYZ019-"[r.below(10) as usize] as char).collect();
    let host = ["runtime.sagemaker.eu-west-1.amazonaws.com", "127.0.0.1:9000", "[::1]:80", "h"][r.below(4) as usize];
    let body_len = r.below(300) as usize;
    Case {
        path: format!("{prefix}/endpoints/{name}/invocations"),
        host: host.into(),
        fields,
        token: (r.below(2) == 0).then(|| r.value().replace(' ', "")),
        body: (0..body_len).map(|_| r.next() as u8).collect(),
        time: UNIX_EPOCH + Duration::from_secs(r.below(230 * 365 * 86_400)),
    }
}

/// (signature, signed names, x-amz-date) from aws-sigv4.
fn reference(c: &Case, secret: &str, region: &str) -> (String, String, String) {
    let identity = Identity::from(Credentials::new("AKID", secret, c.token.clone(), None, "t"));
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sagemaker")
        .time(c.time)
        .settings(SigningSettings::default())
        .build()
        .unwrap();
    let uri = format!("http://{}{}", c.host, c.path);
    let mut headers: Vec<(&str, &str)> = vec![("host", c.host.as_str())];
    headers.extend(c.fields.iter().map(|(n, v)| (*n, v.as_str())));
    let req = SignableRequest::new("POST", uri, headers.into_iter(), SignableBody::Bytes(&c.body)).unwrap();
    let (instructions, signature) = sign(req, &params.into()).unwrap().into_parts();
    let get = |name: &str| instructions.headers().find(|(n, _)| *n == name).map(|(_, v)| v.to_owned()).unwrap();
    let auth = get("authorization");
    let signed = auth.split(", ").find_map(|p| p.strip_prefix("SignedHeaders=")).unwrap().to_owned();
    (signature, signed, get("x-amz-date"))
}

fn ours(c: &Case, keys: &KeyCache, secret: &str) -> (String, String, String) {
    let date = amz_date(c.time);
    let date_str = std::str::from_utf8(&date).unwrap();
    let mut fields: Vec<(&str, &str)> = vec![("host", c.host.as_str()), ("x-amz-date", date_str)];
    fields.extend(c.fields.iter().map(|(n, v)| (*n, v.as_str())));
    if let Some(t) = &c.token {
        fields.push(("x-amz-security-token", t));
    }
    fields.sort_by(|a, b| a.0.cmp(b.0));
    let key = keys.get(secret, date[..8].try_into().unwrap());
    let sig = signature(&key, &date, &c.path, &fields, &c.body);
    let signed: Vec<&str> = signed_names(&fields).collect();
    (String::from_utf8(sig.to_vec()).unwrap(), signed.join(";"), date_str.to_owned())
}

#[test]
fn signatures_match_aws_sigv4_on_generated_requests() {
    let mut r = Rng(crate::testing::SplitMix(0x5157_4e34));
    let keys = KeyCache::new("eu-west-1", "sagemaker");
    for i in 0..3_000 {
        let c = case(&mut r);
        // Two secrets in turn: the key cache must follow a rotation, not keep the first.
        let secret = if i % 3 == 0 { "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" } else { "other/secret+key" };
        assert_eq!(
            ours(&c, &keys, secret),
            reference(&c, secret, "eu-west-1"),
            "case {i}: {:?} {:?}",
            c.path,
            c.fields
        );
    }
}

#[test]
fn dates() {
    let at = |secs: u64| String::from_utf8(amz_date(UNIX_EPOCH + Duration::from_secs(secs)).to_vec()).unwrap();
    assert_eq!(at(0), "19700101T000000Z");
    assert_eq!(at(1_764_633_600), "20251202T000000Z");
    assert_eq!(at(951_782_400), "20000229T000000Z"); // a leap day in a year divisible by 400
    assert_eq!(at(4_107_542_400), "21000301T000000Z"); // 2100 is not a leap year
    assert_eq!(at(86_399), "19700101T235959Z");
    assert_eq!(amz_date(UNIX_EPOCH - Duration::from_secs(5)), *b"19700101T000000Z");
}

#[test]
fn canonical_paths() {
    for ok in ["/endpoints/a-1/invocations", "/p/endpoints/x/invocations", "/a.b~c_d/e"] {
        assert!(is_canonical_path(ok), "{ok}");
    }
    for bad in ["", "endpoints", "/a//b", "/a/./b", "/a/../b", "/a%20b", "/a b", "/a/", "/ä"] {
        assert!(!is_canonical_path(bad), "{bad}");
    }
}

#[test]
fn the_key_is_derived_once_per_day_and_secret() {
    let keys = KeyCache::new("us-east-1", "sagemaker");
    let a = keys.get("s", *b"20251202");
    assert!(Arc::ptr_eq(&a, &keys.get("s", *b"20251202")), "reused");
    assert!(!Arc::ptr_eq(&a, &keys.get("s", *b"20251203")), "a new day");
    assert!(!Arc::ptr_eq(&keys.get("t", *b"20251203"), &keys.get("s", *b"20251203")), "a new secret");
    assert_eq!(&*a.scope, "20251202/us-east-1/sagemaker/aws4_request");
}
