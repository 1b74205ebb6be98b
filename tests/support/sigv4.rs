//! An independent SigV4 check (AWS Signature Version 4, header form, as the SageMaker Runtime
//! service verifies it), so tests can tell that what reached the model is exactly what the SDK
//! signed: method, path, the signed header fields and the body. Written from the published
//! algorithm with SHA-256 and HMAC built on `sha2`, sharing no code with the SDK's signer.

use sha2::{Digest, Sha256};

/// What a request's `authorization` header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub access_key_id: String,
    pub date: String,
    pub region: String,
    pub service: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

pub fn parse_authorization(value: &str) -> Option<Authorization> {
    let rest = value.strip_prefix("AWS4-HMAC-SHA256 ")?;
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(',').map(str::trim) {
        let (k, v) = part.split_once('=')?;
        match k {
            "Credential" => credential = Some(v),
            "SignedHeaders" => signed = Some(v),
            "Signature" => signature = Some(v),
            _ => return None,
        }
    }
    let scope: Vec<&str> = credential?.split('/').collect();
    let [key, date, region, service, "aws4_request"] = scope[..] else { return None };
    Some(Authorization {
        access_key_id: key.into(),
        date: date.into(),
        region: region.into(),
        service: service.into(),
        signed_headers: signed?.split(';').map(str::to_owned).collect(),
        signature: signature?.into(),
    })
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// HMAC-SHA256 (RFC 2104).
pub fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let inner: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let outer: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let mut h = Sha256::new();
    h.update(&inner);
    h.update(data);
    let inner_hash = h.finalize();
    let mut h = Sha256::new();
    h.update(&outer);
    h.update(inner_hash);
    h.finalize().to_vec()
}

/// Whether `authorization` is a valid signature of this request with `secret`. `Err` says what
/// does not match.
pub fn verify(
    method: &str,
    uri: &http::Uri,
    headers: &http::HeaderMap,
    body: &[u8],
    secret: &str,
) -> Result<Authorization, String> {
    let value = headers.get("authorization").and_then(|v| v.to_str().ok()).ok_or("no authorization header")?;
    let auth = parse_authorization(value).ok_or_else(|| format!("not SigV4: {value}"))?;
    let amz_date = headers.get("x-amz-date").and_then(|v| v.to_str().ok()).ok_or("no x-amz-date")?;
    let mut canonical_headers = String::new();
    for name in &auth.signed_headers {
        let values: Vec<&str> = headers.get_all(name.as_str()).iter().filter_map(|v| v.to_str().ok()).collect();
        if values.is_empty() {
            return Err(format!("signed header {name} is missing"));
        }
        let joined: Vec<String> = values.iter().map(|v| v.split_whitespace().collect::<Vec<_>>().join(" ")).collect();
        canonical_headers.push_str(&format!("{name}:{}\n", joined.join(",")));
    }
    // Non-S3 services encode each path segment twice; these tests' paths need no encoding.
    let canonical = format!(
        "{method}\n{}\n{}\n{canonical_headers}\n{}\n{}",
        uri.path(),
        uri.query().unwrap_or(""),
        auth.signed_headers.join(";"),
        hex(&Sha256::digest(body))
    );
    let scope = format!("{}/{}/{}/aws4_request", auth.date, auth.region, auth.service);
    let to_sign = format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}", hex(&Sha256::digest(canonical.as_bytes())));
    let mut key = hmac(format!("AWS4{secret}").as_bytes(), auth.date.as_bytes());
    for part in [auth.region.as_str(), auth.service.as_str(), "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    let expected = hex(&hmac(&key, to_sign.as_bytes()));
    if expected == auth.signature {
        Ok(auth)
    } else {
        Err(format!("signature mismatch; canonical request was:\n{canonical}"))
    }
}
