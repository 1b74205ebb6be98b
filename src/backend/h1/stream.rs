//! The lean client's transport: a plain TCP stream or rustls over one, behind one type so the
//! exchange code is the same for `http://` and `https://` models (and SageMaker endpoints).
//! Also owns dialing (TCP, `TCP_NODELAY`, the TLS handshake within the connect deadline) and the
//! "is this idle connection still usable" probe.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// Where TLS connections of one pool go: the client config (roots, ALPN `http/1.1`) and the name
/// the certificate must carry.
#[derive(Clone)]
pub struct TlsTarget {
    pub config: Arc<rustls::ClientConfig>,
    pub server_name: ServerName<'static>,
}

impl std::fmt::Debug for TlsTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsTarget").field("server_name", &self.server_name).finish_non_exhaustive()
    }
}

/// One connection to a model.
pub enum Stream {
    Plain(TcpStream),
    /// Boxed: rustls' connection state is large, and plain connections should not pay for it.
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    /// TCP (with `TCP_NODELAY`: requests are written whole, never worth delaying), then the TLS
    /// handshake when `tls` is given. The caller bounds the whole with its connect timeout.
    pub async fn connect(authority: &str, tls: Option<&TlsTarget>) -> io::Result<Stream> {
        let tcp = TcpStream::connect(authority).await?;
        tcp.set_nodelay(true)?;
        match tls {
            None => Ok(Stream::Plain(tcp)),
            Some(t) => {
                let connector = tokio_rustls::TlsConnector::from(t.config.clone());
                let tls = connector.connect(t.server_name.clone(), tcp).await?;
                Ok(Stream::Tls(Box::new(tls)))
            }
        }
    }

    /// An idle connection is usable if reading would block: no EOF, no stray bytes from the model.
    /// Plain TCP answers from the last epoll readiness (no syscall in the common case). TLS is
    /// polled once with a no-op waker: that also consumes what a TLS 1.3 server sends after the
    /// handshake (session tickets) without mistaking it for an answer, and a `close_notify`
    /// reads as EOF. The real waker replaces the no-op one at the next real read.
    pub fn still_open(&mut self) -> bool {
        let mut probe = [0u8; 1];
        match self {
            Stream::Plain(s) => matches!(s.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock),
            Stream::Tls(s) => {
                let mut cx = Context::from_waker(std::task::Waker::noop());
                let mut buf = ReadBuf::new(&mut probe);
                matches!(Pin::new(&mut **s).poll_read(&mut cx, &mut buf), Poll::Pending)
            }
        }
    }

    /// TLS buffers records in rustls; they must reach the socket before we wait for the answer.
    pub fn needs_flush(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(&mut **s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(&mut **s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(&mut **s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(&mut **s).poll_shutdown(cx),
        }
    }
}
