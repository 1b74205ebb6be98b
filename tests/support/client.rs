//! HTTP client helpers: one request, a pooled client, and the variant each user is served.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

use super::{header, KEY, PLAIN_KEY};

pub type Response = (http::StatusCode, http::HeaderMap, Bytes);

pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// A pooled client; create one per test (pools are tied to the test's runtime).
pub fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

pub async fn send(req: http::Request<Full<Bytes>>) -> Response {
    send_with(&client(), req).await
}

pub async fn send_with(c: &HttpClient, req: http::Request<Full<Bytes>>) -> Response {
    let resp = c.request(req).await.expect("request failed");
    let (parts, body) = resp.into_parts();
    (parts.status, parts.headers, body.collect().await.unwrap().to_bytes())
}

pub async fn get(url: &str) -> Response {
    send(http::Request::get(url).body(Full::new(Bytes::new())).unwrap()).await
}

/// POST with an optional key and extra headers.
pub async fn post(url: &str, key: Option<&str>, body: &str, headers: &[(&str, &str)]) -> Response {
    let mut b = http::Request::post(url).header("content-type", "application/json");
    if let Some(k) = key {
        b = b.header("x-api-key", k);
    }
    for (n, v) in headers {
        b = b.header(*n, *v);
    }
    send(b.body(Full::new(Bytes::from(body.to_owned()))).unwrap()).await
}

pub async fn recommend(url: &str, user: &str) -> Response {
    post(url, Some(KEY), &format!(r#"{{"user_id":"{user}"}}"#), &[]).await
}

/// `POST /recommend` for `user` on a shared client, with the plain (no override) key.
pub async fn recommend_with(c: &HttpClient, url: &str, user: &str) -> Response {
    let req = http::Request::post(url)
        .header("content-type", "application/json")
        .header("x-api-key", PLAIN_KEY)
        .body(Full::new(Bytes::from(format!(r#"{{"user_id":"{user}"}}"#))))
        .unwrap();
    send_with(c, req).await
}

/// The variant of each user, asking `url` with `concurrency` parallel requests.
pub async fn variants_of(url: &str, users: &[String], concurrency: usize) -> Vec<String> {
    let c = client();
    let mut out = vec![String::new(); users.len()];
    let chunk = users.len().div_ceil(concurrency.max(1));
    let mut tasks = Vec::new();
    for (n, part) in users.chunks(chunk.max(1)).enumerate() {
        let (c, url, part) = (c.clone(), url.to_owned(), part.to_vec());
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::with_capacity(part.len());
            for u in &part {
                let (status, headers, _) = recommend_with(&c, &url, u).await;
                assert_eq!(status, 200, "user {u}");
                got.push(header(&headers, "x-splitgate-variant").to_owned());
            }
            (n, got)
        }));
    }
    for t in tasks {
        let (n, got) = t.await.unwrap();
        for (i, v) in got.into_iter().enumerate() {
            out[n * chunk + i] = v;
        }
    }
    out
}
