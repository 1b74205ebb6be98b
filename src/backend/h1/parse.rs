//! HTTP/1.1 response framing for the lean client, with no I/O: the response head (status, content
//! type, how the body is delimited, whether the connection can be reused) and an incremental
//! chunked-body decoder. Written against RFC 9112 §6 (message body length) and §7.1 (chunked).

use bytes::BytesMut;

/// At most this many header fields in a model's response head.
const MAX_HEADERS: usize = 64;
/// A chunk-size line (with extensions) or the trailer section may not exceed this.
const MAX_CHUNK_LINE: usize = 4_096;
const MAX_TRAILERS: usize = 16_384;

/// Why a model's answer could not be framed. Every case means "do not reuse this connection".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("malformed response head: {0}")]
    Head(&'static str),
    #[error("invalid content-length")]
    ContentLength,
    #[error("the model switched protocols (status 101)")]
    Upgrade,
    #[error("malformed chunked body: {0}")]
    Chunked(&'static str),
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
}

/// How the body after the head is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body (204, 304).
    Empty,
    Length(u64),
    Chunked,
    /// Until the model closes the connection (no length given, or a coding we do not decode).
    UntilClose,
}

/// A parsed response head. `content_type` is a range into the buffer the head was parsed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Bytes the head occupies, final CRLF included.
    pub len: usize,
    /// Where the final head starts (after any interim 1xx heads).
    pub final_start: usize,
    pub status: u16,
    pub content_type: Option<(usize, usize)>,
    pub framing: Framing,
    /// The model allows another request on this connection after this answer.
    pub keep_alive: bool,
}

/// Parses a final response head at the start of `buf`, skipping interim 1xx heads.
/// `Ok(None)`: the head is not complete yet, read more.
pub fn head(buf: &[u8]) -> Result<Option<Head>, FrameError> {
    let mut start = 0;
    loop {
        let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut fields);
        let rest = &buf[start..];
        let len = match response.parse(rest) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => return Err(FrameError::Head("more than 64 header fields")),
            Err(_) => return Err(FrameError::Head("not an HTTP/1.x status line and header fields")),
        };
        let status = response.code.ok_or(FrameError::Head("no status code"))?;
        match status {
            101 => return Err(FrameError::Upgrade),
            100..=199 => {
                // Interim answers (100 Continue, 103 Early Hints) precede the real one.
                start += len;
                continue;
            }
            _ => {}
        }
        let http10 = response.version == Some(0);
        let mut content_length: Option<u64> = None;
        let mut chunked = false;
        let mut other_coding = false;
        let mut close = http10;
        let mut content_type = None;
        let base = buf.as_ptr() as usize;
        for field in response.headers.iter() {
            let name = field.name;
            if name.eq_ignore_ascii_case("content-length") {
                let n = parse_length(field.value)?;
                // Repeated lengths must agree (RFC 9110 §8.6); a mismatch smells of smuggling.
                if content_length.is_some_and(|c| c != n) {
                    return Err(FrameError::ContentLength);
                }
                content_length = Some(n);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                // Only the final coding decides the framing; anything but chunked runs to close.
                for coding in field.value.split(|&b| b == b',').map(trim) {
                    if coding.is_empty() {
                        continue;
                    }
                    chunked = coding.eq_ignore_ascii_case(b"chunked");
                    other_coding |= !chunked;
                }
            } else if name.eq_ignore_ascii_case("connection") {
                for token in field.value.split(|&b| b == b',').map(trim) {
                    if token.eq_ignore_ascii_case(b"close") {
                        close = true;
                    } else if http10 && token.eq_ignore_ascii_case(b"keep-alive") {
                        close = false;
                    }
                }
            } else if name.eq_ignore_ascii_case("content-type") {
                let at = field.value.as_ptr() as usize - base;
                content_type = Some((at, at + field.value.len()));
            }
        }
        let framing = if status == 204 || status == 304 {
            Framing::Empty
        } else if chunked || other_coding {
            // Transfer-Encoding overrides Content-Length, and such a connection is not reused.
            if content_length.is_some() {
                close = true;
            }
            if chunked {
                Framing::Chunked
            } else {
                Framing::UntilClose
            }
        } else {
            match content_length {
                Some(n) => Framing::Length(n),
                None => Framing::UntilClose,
            }
        };
        let keep_alive = !close && framing != Framing::UntilClose;
        return Ok(Some(Head { len: start + len, final_start: start, status, content_type, framing, keep_alive }));
    }
}

fn parse_length(value: &[u8]) -> Result<u64, FrameError> {
    let digits = trim(value);
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(FrameError::ContentLength);
    }
    Ok(digits.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|b| !matches!(b, b' ' | b'\t')).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !matches!(b, b' ' | b'\t')).map_or(start, |e| e + 1);
    &s[start..end]
}

fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?.windows(2).position(|w| w == b"\r\n").map(|i| from + i)
}

/// Decodes a chunked body as it arrives. Feed it the bytes after the head, as they grow.
#[derive(Debug, Default)]
pub struct Chunked {
    /// Input bytes already consumed.
    pos: usize,
    /// Bytes of the chunk being read that are still to come, with its trailing CRLF; `None` at a
    /// chunk-size line.
    remaining: Option<usize>,
    /// The last chunk was seen; reading trailers.
    last: bool,
    body: BytesMut,
}

impl Chunked {
    /// Consumes what it can of `input` (which always starts at the body's first byte). Returns
    /// `Some(consumed)` once the body is complete, `None` when it needs more input.
    pub fn feed(&mut self, input: &[u8], limit: usize) -> Result<Option<usize>, FrameError> {
        loop {
            if self.last {
                // Trailer fields end with an empty line; they are read and dropped.
                let Some(eol) = find_crlf(input, self.pos) else {
                    return self.need(input, MAX_TRAILERS, "trailer section too long");
                };
                let empty = eol == self.pos;
                self.pos = eol + 2;
                if empty {
                    return Ok(Some(self.pos));
                }
                continue;
            }
            match self.remaining {
                None => {
                    let Some(eol) = find_crlf(input, self.pos) else {
                        return self.need(input, MAX_CHUNK_LINE, "chunk-size line too long");
                    };
                    let line = &input[self.pos..eol];
                    let size_part = line.split(|&b| b == b';').next().map(trim).unwrap_or_default();
                    let size = parse_hex(size_part)?;
                    self.pos = eol + 2;
                    if size == 0 {
                        self.last = true;
                        continue;
                    }
                    if self.body.len().saturating_add(size) > limit {
                        return Err(FrameError::TooLarge(limit));
                    }
                    self.remaining = Some(size + 2);
                }
                Some(left) => {
                    let available = input.len() - self.pos;
                    if available < left {
                        // Copy whole chunk data as it arrives, keeping the CRLF check for the end.
                        let data = available.min(left.saturating_sub(2));
                        self.body.extend_from_slice(&input[self.pos..self.pos + data]);
                        self.pos += data;
                        self.remaining = Some(left - data);
                        return Ok(None);
                    }
                    let data = left - 2;
                    self.body.extend_from_slice(&input[self.pos..self.pos + data]);
                    if &input[self.pos + data..self.pos + left] != b"\r\n" {
                        return Err(FrameError::Chunked("chunk data not followed by CRLF"));
                    }
                    self.pos += left;
                    self.remaining = None;
                }
            }
        }
    }

    fn need(&self, input: &[u8], max: usize, what: &'static str) -> Result<Option<usize>, FrameError> {
        if input.len() - self.pos > max {
            return Err(FrameError::Chunked(what));
        }
        Ok(None)
    }

    /// The decoded body (call once `feed` returned `Some`).
    pub fn into_body(self) -> BytesMut {
        self.body
    }
}

fn parse_hex(s: &[u8]) -> Result<usize, FrameError> {
    if s.is_empty() || s.len() > 15 {
        return Err(FrameError::Chunked("bad chunk size"));
    }
    s.iter().try_fold(0usize, |n, &b| {
        let d = (b as char).to_digit(16).ok_or(FrameError::Chunked("bad chunk size"))?;
        Ok(n * 16 + d as usize)
    })
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
