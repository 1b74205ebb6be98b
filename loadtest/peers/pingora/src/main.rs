//! Peer for loadtest/compare.sh: the smallest honest sticky-split proxy on Pingora 0.8.1.
//!
//! API key check (plain compare of `X-API-Key`), sticky split on a salted FNV-1a hash of the
//! `X-User-Id` header (Pingora picks the upstream before the body is read, so it cannot hash the
//! JSON body the way splitgate does), forward over pooled keep-alive connections, one JSON access
//! log line per request into a buffered file. One worker thread, no work stealing.
//!
//!   pingora-split --listen IP:PORT --champion IP:PORT --challenger IP:PORT
//!                 --challenger-percent 10 --key KEY --salt SALT --log FILE --run-dir DIR
//!
//! SIGINT stops it at once (SIGTERM would start Pingora's graceful drain).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use pingora::prelude::*;
use pingora::server::configuration::ServerConf;

struct Split {
    key: Vec<u8>,
    salt: Vec<u8>,
    champion: SocketAddr,
    challenger: SocketAddr,
    /// Buckets out of 10,000 that go to the challenger.
    challenger_buckets: u64,
    log: Mutex<BufWriter<File>>,
}

struct Ctx {
    start: Instant,
    variant: &'static str,
}

fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for &b in *p {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

#[async_trait]
impl ProxyHttp for Split {
    type CTX = Ctx;

    fn new_ctx(&self) -> Ctx {
        Ctx { start: Instant::now(), variant: "-" }
    }

    async fn request_filter(&self, session: &mut Session, _ctx: &mut Ctx) -> Result<bool> {
        let ok = session.req_header().headers.get("x-api-key").is_some_and(|k| k.as_bytes() == self.key.as_slice());
        if !ok {
            session.respond_error(401).await?;
            return Ok(true);
        }
        Ok(false)
    }

    async fn upstream_peer(&self, session: &mut Session, ctx: &mut Ctx) -> Result<Box<HttpPeer>> {
        let uid = session.req_header().headers.get("x-user-id").map(|v| v.as_bytes()).unwrap_or(b"");
        let bucket = fnv1a(&[&self.salt, b":", uid]) % 10_000;
        let addr = if bucket < self.challenger_buckets {
            ctx.variant = "challenger";
            self.challenger
        } else {
            ctx.variant = "champion";
            self.champion
        };
        Ok(Box::new(HttpPeer::new(addr, false, String::new())))
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream_request: &mut RequestHeader,
        _ctx: &mut Ctx,
    ) -> Result<()> {
        upstream_request.remove_header("x-api-key");
        Ok(())
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        upstream_response.insert_header("x-variant", ctx.variant)?;
        Ok(())
    }

    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut Ctx) {
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        let ip = session.client_addr().and_then(|a| a.as_inet()).map(|a| a.ip().to_string()).unwrap_or_default();
        let epoch_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
        let us = ctx.start.elapsed().as_micros();
        if let Ok(mut log) = self.log.lock() {
            let _ = writeln!(
                log,
                "{{\"time\":{epoch_ms},\"ip\":\"{ip}\",\"method\":\"{}\",\"path\":\"{}\",\"status\":{status},\"variant\":\"{}\",\"latencyMs\":{}.{:03}}}",
                session.req_header().method,
                session.req_header().uri.path(),
                ctx.variant,
                us / 1000,
                us % 1000
            );
        }
    }
}

fn main() {
    let mut listen = String::from("127.0.0.1:6188");
    let (mut champion, mut challenger) = (None, None);
    let (mut key, mut salt, mut log) = (String::new(), String::from("salt"), String::new());
    let mut percent = 10.0f64;
    let mut run_dir = String::from("/tmp");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().unwrap_or_else(|| usage(&a));
        match a.as_str() {
            "--listen" => listen = v,
            "--champion" => champion = Some(v.parse().unwrap_or_else(|_| usage(&a))),
            "--challenger" => challenger = Some(v.parse().unwrap_or_else(|_| usage(&a))),
            "--challenger-percent" => percent = v.parse().unwrap_or_else(|_| usage(&a)),
            "--key" => key = v,
            "--salt" => salt = v,
            "--log" => log = v,
            "--run-dir" => run_dir = v,
            _ => usage(&a),
        }
    }
    let (Some(champion), Some(challenger)) = (champion, challenger) else { usage("--champion/--challenger") };
    let file = File::create(&log).unwrap_or_else(|e| {
        eprintln!("cannot create log file {log:?}: {e}");
        std::process::exit(2)
    });

    let conf = ServerConf {
        threads: 1,
        work_stealing: false,
        pid_file: format!("{run_dir}/pingora.pid"),
        upgrade_sock: format!("{run_dir}/pingora_upgrade.sock"),
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let split = Split {
        key: key.into_bytes(),
        salt: salt.into_bytes(),
        champion,
        challenger,
        challenger_buckets: (percent * 100.0).round() as u64,
        log: Mutex::new(BufWriter::with_capacity(64 * 1024, file)),
    };
    let mut svc = http_proxy_service(&server.configuration, split);
    svc.add_tcp(&listen);
    server.add_service(svc);
    eprintln!("listening {listen}");
    server.run_forever();
}

fn usage(bad: &str) -> ! {
    eprintln!(
        "bad or missing argument {bad}\nusage: pingora-split --listen IP:PORT --champion IP:PORT \
         --challenger IP:PORT [--challenger-percent P] --key KEY [--salt S] --log FILE [--run-dir DIR]"
    );
    std::process::exit(2)
}
