//! A real HTTP model server on 127.0.0.1:0 whose behaviour tests choose with
//! `Upstream::builder()`, and which counts the connections and requests it gets.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

/// What the model does with each request.
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// 200 with `{"model":NAME,"items":[…]}` listing `items`.
    Items(Vec<String>),
    /// Answer like `Items` after a delay.
    Slow(Duration, Vec<String>),
    /// Never answer.
    Hang,
    /// Answer this status with a small JSON body.
    Status(u16),
    /// 200 with a body that is not JSON.
    Garbage,
}

/// One request as the model saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: http::Method,
    pub uri: http::Uri,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

/// A running mock model. It counts the sockets it accepted ([`Upstream::connections`]) and the
/// requests it answered ([`Upstream::requests`]), keeps each request ([`Upstream::seen`]), and
/// [`Upstream::set`] changes what it does from the next request on.
pub struct Upstream {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    requests: Arc<AtomicU64>,
    connections: Arc<AtomicU64>,
    behaviour: Arc<Mutex<Behaviour>>,
    task: tokio::task::JoinHandle<()>,
}

/// How a mock model answers: `Upstream::builder().latency(..).answer(..).start().await`.
/// By default it answers 200 with no items, at once.
#[derive(Clone, Debug, Default)]
pub struct Builder {
    items: Vec<String>,
    latency: Option<Duration>,
    fail_with: Option<u16>,
    hang: bool,
    garbage: bool,
}

impl Builder {
    /// 200 with `{"items":[{"item_id":…,"score":0.5},…]}`.
    pub fn answer(mut self, ids: &[&str]) -> Builder {
        self.items = items(ids);
        self
    }
    /// Wait this long before answering (with items; a status or garbage answer is not delayed).
    pub fn latency(mut self, d: Duration) -> Builder {
        self.latency = Some(d);
        self
    }
    /// Answer this status with `{"error":"model failed"}`.
    pub fn fail_with(mut self, status: u16) -> Builder {
        self.fail_with = Some(status);
        self
    }
    /// Read the request, never answer.
    pub fn hang(mut self) -> Builder {
        self.hang = true;
        self
    }
    /// 200 with a body that is not JSON.
    pub fn garbage(mut self) -> Builder {
        self.garbage = true;
        self
    }
    /// The behaviour this builder describes.
    pub fn behaviour(self) -> Behaviour {
        if self.hang {
            Behaviour::Hang
        } else if let Some(code) = self.fail_with {
            Behaviour::Status(code)
        } else if self.garbage {
            Behaviour::Garbage
        } else if let Some(d) = self.latency {
            Behaviour::Slow(d, self.items)
        } else {
            Behaviour::Items(self.items)
        }
    }
    pub async fn start(self) -> Upstream {
        Upstream::start(self.behaviour()).await
    }
}

impl Upstream {
    pub fn builder() -> Builder {
        Builder::default()
    }

    pub async fn start(behaviour: Behaviour) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(AtomicU64::new(0));
        let connections = Arc::new(AtomicU64::new(0));
        let behaviour = Arc::new(Mutex::new(behaviour));
        let (s, h, b, c) = (seen.clone(), requests.clone(), behaviour.clone(), connections.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                c.fetch_add(1, Ordering::Relaxed);
                let _ = stream.set_nodelay(true);
                let (s, h, b) = (s.clone(), h.clone(), b.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let (s, h, b) = (s.clone(), h.clone(), b.clone());
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
                            h.fetch_add(1, Ordering::Relaxed);
                            s.lock().unwrap().push(Seen {
                                method: parts.method,
                                uri: parts.uri,
                                headers: parts.headers,
                                body,
                            });
                            let behaviour = b.lock().unwrap().clone();
                            Ok::<_, Infallible>(respond(behaviour).await)
                        }
                    });
                    let _ = auto::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(stream), svc).await;
                });
            }
        });
        Upstream { addr, seen, requests, connections, behaviour, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}/invocations", self.addr)
    }

    /// Changes the behaviour for the requests that follow (a `Behaviour` or a `Builder`).
    pub fn set(&self, behaviour: impl Into<Behaviour>) {
        *self.behaviour.lock().unwrap() = behaviour.into();
    }

    /// Requests received (counted when the body has been read, before answering).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// TCP connections accepted.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }
}

impl From<Builder> for Behaviour {
    fn from(b: Builder) -> Behaviour {
        b.behaviour()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn items(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

async fn respond(b: Behaviour) -> http::Response<Full<Bytes>> {
    let ok = |list: Vec<String>| {
        let items: Vec<_> = list.iter().map(|i| serde_json::json!({"item_id": i, "score": 0.5})).collect();
        let body = serde_json::json!({"items": items}).to_string();
        http::Response::builder().header("content-type", "application/json").body(Full::new(Bytes::from(body))).unwrap()
    };
    match b {
        Behaviour::Items(list) => ok(list),
        Behaviour::Slow(d, list) => {
            tokio::time::sleep(d).await;
            ok(list)
        }
        Behaviour::Hang => {
            std::future::pending::<()>().await;
            unreachable!()
        }
        Behaviour::Status(code) => http::Response::builder()
            .status(code)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(b"{\"error\":\"model failed\"}")))
            .unwrap(),
        Behaviour::Garbage => http::Response::new(Full::new(Bytes::from_static(b"<html>not json"))),
    }
}

/// An address where nothing listens (bound, then closed).
pub async fn dead_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap();
    drop(l);
    a
}
