//! The lean HTTP/1.1 client for `http://` and `https://` models and for the SageMaker SDK's
//! requests (`backend::sagemaker::connector`). Each call takes a connection from a small per-origin
//! idle stack (or dials one, over rustls for TLS origins), writes the whole request with one
//! `write`, and parses the answer in place inside the calling task: no connection task, no
//! channel hop per request, no header map for the answer unless the caller asks for the raw head.
//! Webhooks and the CLI's admin calls use the general hyper client.
//!
//! Idle connections are not watched by a task. Before reuse, a non-blocking read tells whether
//! the model closed the connection meanwhile (tokio answers it from the last epoll readiness,
//! so it costs no syscall in the common case); a reused connection that still fails before
//! the first byte of the answer is retried once on a fresh one, as NGINX does for its
//! keep-alive cache.

pub mod parse;
mod stream;

pub use self::stream::TlsTarget;

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use self::parse::{Chunked, FrameError, Framing};
use self::stream::Stream;

/// A model's response head may not exceed this.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Idle connections older than this are closed instead of reused (model servers commonly close
/// idle keep-alive connections after 5–75 s; we give up on them first when we can).
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Answers up to this size are copied out so the connection's read buffer is reused as is.
const COPY_BELOW: usize = 16 * 1024;
const READ_CHUNK: usize = 8 * 1024;

/// How a call failed, for the caller's error mapping.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("cannot connect to {authority}: {source}")]
    Connect { authority: String, source: io::Error },
    #[error("connecting to {0} timed out")]
    ConnectTimeout(String),
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("the model closed the connection before the answer was complete")]
    Closed,
    #[error("response head larger than {MAX_HEAD_BYTES} bytes")]
    HeadTooLarge,
    #[error(transparent)]
    Frame(#[from] FrameError),
}

/// A model's answer as read off the wire.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// Raw `content-type` value, if any.
    pub content_type: Option<Bytes>,
    /// The whole final response head (status line, fields and the blank line), when the caller
    /// asked for it ([`Want::HeadAndBody`]).
    pub head: Option<Bytes>,
    pub body: Bytes,
}

/// Whether the caller needs the answer's header fields beyond status and content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// Status, content type and body are enough (model answers passed through).
    Body,
    /// Also a copy of the raw head (the SDK reads its own headers, e.g. `x-amzn-errortype`).
    HeadAndBody,
    /// The head only when the status is not 2xx (a SageMaker error answer goes to the SDK's
    /// error model; a success needs only content type and body).
    HeadUnless2xx,
}

impl Want {
    fn head(self, status: u16) -> bool {
        match self {
            Want::Body => false,
            Want::HeadAndBody => true,
            Want::HeadUnless2xx => !(200..300).contains(&status),
        }
    }
}

struct Conn {
    stream: Stream,
    buf: BytesMut,
}

struct Idle {
    conn: Conn,
    since: Instant,
}

/// Keep-alive connections to one origin (`host:port`, plain or TLS).
pub struct Pool {
    authority: Box<str>,
    tls: Option<TlsTarget>,
    idle: Mutex<Vec<Idle>>,
    max_idle: usize,
    connect_timeout: Duration,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("authority", &self.authority)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl Pool {
    fn new(authority: &str, tls: Option<TlsTarget>, max_idle: usize, connect_timeout: Duration) -> Pool {
        Pool { authority: authority.into(), tls, idle: Mutex::new(Vec::new()), max_idle, connect_timeout }
    }

    /// Sends `request` (a complete HTTP/1.1 request, head and body) and reads the answer, up to
    /// `limit` body bytes.
    pub async fn call(&self, request: &[u8], limit: usize) -> Result<Answer, CallError> {
        self.call_with(request, limit, Want::Body).await
    }

    /// [`Self::call`], keeping the raw response head when `want` says so.
    pub async fn call_with(&self, request: &[u8], limit: usize, want: Want) -> Result<Answer, CallError> {
        if let Some(conn) = self.take_idle() {
            match exchange(conn, request, limit, want).await {
                Ok((answer, reusable)) => {
                    self.put_back(reusable);
                    return Ok(answer);
                }
                // The model closed the kept-alive connection as we sent: nothing was answered.
                Err(Failed { error, answered: false }) if is_stale(&error) => {}
                Err(Failed { error, .. }) => return Err(error),
            }
        }
        // Boxed: dialing (TCP, maybe a TLS handshake) is rare on a kept-alive pool, and its
        // future would otherwise be most of every call's.
        let conn = Box::pin(self.connect()).await?;
        let (answer, reusable) = exchange(conn, request, limit, want).await.map_err(|f| f.error)?;
        self.put_back(reusable);
        Ok(answer)
    }

    fn take_idle(&self) -> Option<Conn> {
        loop {
            let mut idle = self.idle.lock().ok()?.pop()?;
            if idle.since.elapsed() < IDLE_TIMEOUT && idle.conn.stream.still_open() {
                return Some(idle.conn);
            }
        }
    }

    fn put_back(&self, conn: Option<Conn>) {
        let Some(conn) = conn else { return };
        let Ok(mut idle) = self.idle.lock() else { return };
        // The stack's bottom is the longest idle; drop it once it is too old to be trusted.
        if idle.first().is_some_and(|oldest| oldest.since.elapsed() >= IDLE_TIMEOUT) {
            idle.remove(0);
        }
        if idle.len() < self.max_idle {
            idle.push(Idle { conn, since: Instant::now() });
        }
    }

    /// Dials a connection; the timeout covers the TLS handshake too.
    async fn connect(&self) -> Result<Conn, CallError> {
        let authority = &*self.authority;
        let stream =
            match tokio::time::timeout(self.connect_timeout, Stream::connect(authority, self.tls.as_ref())).await {
                Ok(Ok(s)) => s,
                Ok(Err(source)) => return Err(CallError::Connect { authority: authority.to_owned(), source }),
                Err(_) => return Err(CallError::ConnectTimeout(authority.to_owned())),
            };
        Ok(Conn { stream, buf: BytesMut::with_capacity(READ_CHUNK) })
    }
}

struct Failed {
    error: CallError,
    /// Some of the answer had arrived.
    answered: bool,
}

// Failures after the first byte of the answer: never retried.
impl From<CallError> for Failed {
    fn from(error: CallError) -> Failed {
        Failed { error, answered: true }
    }
}

impl From<io::Error> for Failed {
    fn from(e: io::Error) -> Failed {
        CallError::Io(e).into()
    }
}

impl From<FrameError> for Failed {
    fn from(e: FrameError) -> Failed {
        CallError::Frame(e).into()
    }
}

/// A failure that, on a reused connection before any answer, means it had gone stale.
fn is_stale(e: &CallError) -> bool {
    match e {
        CallError::Closed => true,
        CallError::Io(e) => matches!(
            e.kind(),
            io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionAborted
        ),
        _ => false,
    }
}

/// One request/answer on `conn`. Returns the connection too when it can carry another request.
async fn exchange(mut conn: Conn, request: &[u8], limit: usize, want: Want) -> Result<(Answer, Option<Conn>), Failed> {
    let fresh = |error: CallError| Failed { error, answered: false };
    conn.buf.clear();
    conn.stream.write_all(request).await.map_err(|e| fresh(e.into()))?;
    if conn.stream.needs_flush() {
        conn.stream.flush().await.map_err(|e| fresh(e.into()))?;
    }
    let head = loop {
        if let Some(head) = parse::head(&conn.buf)? {
            break head;
        }
        if conn.buf.len() > MAX_HEAD_BYTES {
            return Err(CallError::HeadTooLarge.into());
        }
        let empty = conn.buf.is_empty();
        match fill(&mut conn).await {
            Ok(0) if empty => return Err(fresh(CallError::Closed)),
            Ok(0) => return Err(CallError::Closed.into()),
            Ok(_) => {}
            Err(e) if empty => return Err(fresh(e.into())),
            Err(e) => return Err(e.into()),
        }
    };
    let content_type = head.content_type.map(|(a, b)| Bytes::copy_from_slice(&conn.buf[a..b]));
    let raw_head = want.head(head.status).then(|| Bytes::copy_from_slice(&conn.buf[head.final_start..head.len]));
    conn.buf.advance(head.len);
    let mut reusable = head.keep_alive;
    let body = match head.framing {
        Framing::Empty => Bytes::new(),
        Framing::Length(n) => {
            if n > limit as u64 {
                return Err(FrameError::TooLarge(limit).into());
            }
            let n = n as usize;
            while conn.buf.len() < n {
                conn.buf.reserve(n - conn.buf.len());
                if conn.stream.read_buf(&mut conn.buf).await? == 0 {
                    return Err(CallError::Closed.into());
                }
            }
            take(&mut conn.buf, n)
        }
        Framing::Chunked => {
            let mut decoder = Chunked::default();
            let used = loop {
                if let Some(used) = decoder.feed(&conn.buf, limit)? {
                    break used;
                }
                if fill(&mut conn).await? == 0 {
                    return Err(CallError::Closed.into());
                }
            };
            conn.buf.advance(used);
            decoder.into_body().freeze()
        }
        Framing::UntilClose => {
            reusable = false;
            while fill(&mut conn).await? > 0 {
                if conn.buf.len() > limit {
                    return Err(FrameError::TooLarge(limit).into());
                }
            }
            let n = conn.buf.len();
            take(&mut conn.buf, n)
        }
    };
    // Bytes past the answer mean the model and we disagree on framing: never reuse that.
    reusable &= conn.buf.is_empty();
    let answer = Answer { status: head.status, content_type, head: raw_head, body };
    Ok((answer, reusable.then_some(conn)))
}

async fn fill(conn: &mut Conn) -> io::Result<usize> {
    conn.buf.reserve(READ_CHUNK);
    conn.stream.read_buf(&mut conn.buf).await
}

/// The first `n` bytes of `buf` as the body. Small answers are copied so the buffer stays
/// unshared and is reused by the next call without reallocating.
fn take(buf: &mut BytesMut, n: usize) -> Bytes {
    if n <= COPY_BELOW {
        let body = Bytes::copy_from_slice(&buf[..n]);
        buf.advance(n);
        body
    } else {
        buf.split_to(n).freeze()
    }
}

/// Pools by origin (scheme and `host:port`), shared by every snapshot and by the SageMaker
/// clients, so connections survive config reloads.
#[derive(Default)]
pub struct Pools {
    by_origin: Mutex<HashMap<Origin, Weak<Pool>>>,
}

/// Over TLS or not, and `host:port`.
type Origin = (bool, Box<str>);

impl Pools {
    /// The pool for `authority` (over TLS when `tls` is given), created on first use. A TLS pool
    /// keeps the `tls` it was created with: one process has one upstream trust store.
    pub fn get(
        &self,
        authority: &str,
        tls: Option<TlsTarget>,
        max_idle: usize,
        connect_timeout: Duration,
    ) -> Arc<Pool> {
        let Ok(mut map) = self.by_origin.lock() else {
            return Arc::new(Pool::new(authority, tls, max_idle, connect_timeout));
        };
        let key = (tls.is_some(), Box::<str>::from(authority));
        if let Some(pool) = map.get(&key).and_then(Weak::upgrade) {
            return pool;
        }
        map.retain(|_, w| w.strong_count() > 0);
        let pool = Arc::new(Pool::new(authority, tls, max_idle, connect_timeout));
        map.insert(key, Arc::downgrade(&pool));
        pool
    }
}
