//! The dashboard on the admin listener: `GET /` (and `/ui`) serves one page, with its script and
//! stylesheet at `/ui/app.js` and `/ui/app.css`, all embedded in the binary (no CDN, no build
//! step). The page holds no data: it asks for the admin token, keeps it in `sessionStorage`
//! and sends it as `Authorization: Bearer …` on every call to the admin API (no cookies, so no
//! CSRF); every data route still answers 401 without it.
//!
//! Every asset goes out with a strict Content-Security-Policy (scripts and styles only from this
//! origin, no inline script or style, no framing, requests only to this origin), plus
//! `X-Frame-Options: DENY`, `Referrer-Policy: no-referrer`, `X-Content-Type-Options: nosniff` and
//! `Cache-Control: no-store` (a new binary's page is never mixed with an old script).

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use http::{Method, Response, StatusCode};
use http_body_util::Full;

use crate::proxy::Body;

const INDEX: &str = include_str!("ui/index.html");
const APP_JS: &str = include_str!("ui/app.js");
const APP_CSS: &str = include_str!("ui/app.css");

/// No inline script or style anywhere: the page's behaviour is `/ui/app.js`, its look
/// `/ui/app.css`; the favicon is an empty `data:` image so the browser asks for nothing else.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                       connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The page or asset at `path`, if it is one; `None` sends the request on to the admin routes.
pub fn asset(method: &Method, path: &str) -> Option<Response<Body>> {
    let (body, content_type) = match path {
        "/" | "/ui" | "/ui/" | "/ui/index.html" => (INDEX, "text/html; charset=utf-8"),
        "/ui/app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        "/ui/app.css" => (APP_CSS, "text/css; charset=utf-8"),
        _ => return None,
    };
    let mut r = if method == Method::GET || method == Method::HEAD {
        let mut r = Response::new(Full::new(if method == Method::HEAD {
            Bytes::new()
        } else {
            Bytes::from_static(body.as_bytes())
        }));
        r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        r
    } else {
        let mut r = crate::proxy::json_response(
            StatusCode::METHOD_NOT_ALLOWED,
            &serde_json::json!({"error": {"code": "method_not_allowed", "message": "method not allowed, use GET"}}),
        );
        r.headers_mut().insert(http::header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        r
    };
    let h = r.headers_mut();
    h.insert(HeaderName::from_static("content-security-policy"), HeaderValue::from_static(CSP));
    h.insert(HeaderName::from_static("x-frame-options"), HeaderValue::from_static("DENY"));
    h.insert(HeaderName::from_static("referrer-policy"), HeaderValue::from_static("no-referrer"));
    h.insert(HeaderName::from_static("x-content-type-options"), HeaderValue::from_static("nosniff"));
    h.insert(HeaderName::from_static("cross-origin-opener-policy"), HeaderValue::from_static("same-origin"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(r: &'a Response<Body>, name: &str) -> &'a str {
        r.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    #[test]
    fn the_page_and_its_assets_carry_strict_headers() {
        for path in ["/", "/ui", "/ui/", "/ui/app.js", "/ui/app.css"] {
            let r = asset(&Method::GET, path).unwrap();
            assert_eq!(r.status(), 200, "{path}");
            assert_eq!(header(&r, "x-frame-options"), "DENY");
            assert_eq!(header(&r, "referrer-policy"), "no-referrer");
            assert_eq!(header(&r, "x-content-type-options"), "nosniff");
            let csp = header(&r, "content-security-policy");
            assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
            assert!(csp.contains("frame-ancestors 'none'"));
        }
        assert!(header(&asset(&Method::GET, "/ui/app.js").unwrap(), "content-type").starts_with("text/javascript"));
        assert_eq!(asset(&Method::POST, "/").unwrap().status(), 405);
        assert!(asset(&Method::GET, "/admin/status").is_none());
        assert!(asset(&Method::GET, "/ui/other.js").is_none());
    }

    #[test]
    fn the_page_has_no_inline_script_or_style() {
        // What the CSP would block: the page must not depend on it.
        let lower = INDEX.to_ascii_lowercase();
        assert!(!lower.contains("<script>") && !lower.contains("<style"), "inline script or style");
        assert!(!lower.contains(" style=") && !lower.contains(" onclick=") && !lower.contains("javascript:"));
        assert!(INDEX.contains(r#"src="/ui/app.js""#) && INDEX.contains(r#"href="/ui/app.css""#));
        // The script never writes HTML from data (no XSS through variant names or reasons).
        assert!(!APP_JS.contains("innerHTML") && !APP_JS.contains("eval(") && !APP_JS.contains("document.write"));
        assert!(!APP_JS.contains("document.cookie") && APP_JS.contains("sessionStorage"));
    }

    #[test]
    fn the_event_picker_lists_every_feedback_event() {
        let options: Vec<&str> = INDEX.split("<option>").skip(1).filter_map(|o| o.split("</option>").next()).collect();
        assert_eq!(options, crate::metrics::FEEDBACK_EVENTS);
    }
}
