use super::*;

fn parsed(raw: &str) -> Head {
    match head(raw.as_bytes()) {
        Ok(Some(h)) => h,
        other => panic!("{raw:?} → {other:?}"),
    }
}

#[test]
fn content_length_answer() {
    let raw = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
    let h = parsed(raw);
    assert_eq!(h.len, raw.len() - 2);
    assert_eq!(h.status, 200);
    assert_eq!(h.framing, Framing::Length(2));
    assert!(h.keep_alive);
    let (a, b) = h.content_type.unwrap();
    assert_eq!(&raw.as_bytes()[a..b], b"application/json");
}

#[test]
fn incomplete_head_asks_for_more() {
    for cut in 0..30 {
        let raw = &"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"[..cut];
        assert_eq!(head(raw.as_bytes()), Ok(None), "{raw:?}");
    }
}

#[test]
fn interim_answers_are_skipped() {
    let raw = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n";
    let h = parsed(raw);
    assert_eq!((h.status, h.len, h.framing), (201, raw.len(), Framing::Length(0)));
    assert_eq!(&raw[h.final_start..], "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n", "the final head only");
    assert_eq!(parsed("HTTP/1.1 200 OK\r\n\r\n").final_start, 0);
    assert_eq!(head(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 2"), Ok(None));
}

#[test]
fn switching_protocols_is_refused() {
    assert_eq!(head(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n"), Err(FrameError::Upgrade));
}

#[test]
fn framing_rules() {
    let cases: &[(&str, Framing, bool)] = &[
        ("HTTP/1.1 204 No Content\r\n\r\n", Framing::Empty, true),
        ("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", Framing::Empty, true),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", Framing::Chunked, true),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n", Framing::Chunked, true),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", Framing::UntilClose, false),
        // Transfer-Encoding beats Content-Length, and the connection is not reused.
        ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", Framing::Chunked, false),
        ("HTTP/1.1 200 OK\r\n\r\n", Framing::UntilClose, false),
        ("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\n", Framing::Length(3), false),
        ("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: upgrade, Close\r\n\r\n", Framing::Length(3), false),
        ("HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\n", Framing::Length(3), false),
        ("HTTP/1.0 200 OK\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\n", Framing::Length(3), true),
        ("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", Framing::Length(3), true),
        ("HTTP/1.1 500 Oops\r\nContent-Length:  7 \r\n\r\n", Framing::Length(7), true),
    ];
    for (raw, framing, keep_alive) in cases {
        let h = parsed(raw);
        assert_eq!((h.framing, h.keep_alive), (*framing, *keep_alive), "{raw:?}");
    }
}

#[test]
fn bad_heads_are_errors() {
    for raw in [
        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1e3\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
        "SSH-2.0-OpenSSH_9.6\r\n\r\n",
        "HTTP/1.1 abc OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n",
    ] {
        assert!(head(raw.as_bytes()).is_err(), "{raw:?}");
    }
    let many: String = (0..70).map(|i| format!("X-{i}: v\r\n")).collect();
    assert_eq!(
        head(format!("HTTP/1.1 200 OK\r\n{many}\r\n").as_bytes()),
        Err(FrameError::Head("more than 64 header fields"))
    );
}

/// Feeds `wire` to a decoder in pieces of `step` bytes, as reads would deliver it.
fn decode(wire: &[u8], step: usize, limit: usize) -> Result<(Vec<u8>, usize), FrameError> {
    let mut c = Chunked::default();
    let mut end = 0;
    loop {
        end = (end + step).min(wire.len());
        if let Some(used) = c.feed(&wire[..end], limit)? {
            return Ok((c.into_body().to_vec(), used));
        }
        if end == wire.len() {
            return Err(FrameError::Chunked("test: ran out of input"));
        }
    }
}

#[test]
fn chunked_bodies_decode_in_any_read_size() {
    let wire = b"4\r\nWiki\r\n6;ext=1\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\nX-Trailer: 1\r\n\r\nLEFTOVER";
    for step in 1..=wire.len() {
        let (body, used) = decode(wire, step, 1 << 20).unwrap();
        assert_eq!(body, b"Wikipedia in \r\n\r\nchunks.", "step {step}");
        assert_eq!(&wire[used..], b"LEFTOVER", "step {step}");
    }
    assert_eq!(decode(b"0\r\n\r\n", 1, 10), Ok((Vec::new(), 5)));
    assert_eq!(decode(b"a\r\n0123456789\r\n0\r\n\r\n", 3, 10).map(|(b, _)| b.len()), Ok(10));
}

#[test]
fn chunked_errors() {
    assert_eq!(decode(b"a\r\n0123456789\r\n0\r\n\r\n", 4, 9), Err(FrameError::TooLarge(9)));
    assert_eq!(decode(b"3\r\nabcX\r\n0\r\n\r\n", 2, 100), Err(FrameError::Chunked("chunk data not followed by CRLF")));
    assert_eq!(decode(b"zz\r\n", 4, 100), Err(FrameError::Chunked("bad chunk size")));
    assert_eq!(decode(b"\r\n", 4, 100), Err(FrameError::Chunked("bad chunk size")));
    assert_eq!(decode(b"ffffffffffffffffff\r\n", 4, 100), Err(FrameError::Chunked("bad chunk size")));
    let long = vec![b'1'; 5_000];
    assert_eq!(decode(&long, 1_000, 100), Err(FrameError::Chunked("chunk-size line too long")));
}
