//! Test harness: spawns the real `splitgate` binary on 127.0.0.1:0 with a config built by
//! [`Conf`] and written to a temp dir, real HTTP mock models on loopback ([`Upstream`]), a small
//! HTTP client, and [`eventually`] to wait on a condition instead of sleeping.
#![allow(dead_code)]

pub mod client;
pub mod conf;
pub mod moto;
pub mod sigv4;
pub mod upstream;

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;

#[allow(unused_imports)]
pub use client::*;
#[allow(unused_imports)]
pub use conf::Conf;
#[allow(unused_imports)]
pub use upstream::{Behaviour, Upstream};

/// Polls `check` until it returns `Ok`, and returns that value; the pause between polls starts at
/// 10 ms and doubles up to 200 ms. After `within` it panics with `what` and the last `Err` the
/// check gave, which should say what it saw.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + within;
    let mut pause = Duration::from_millis(10);
    loop {
        match check().await {
            Ok(v) => return v,
            Err(last) => assert!(Instant::now() < deadline, "after {within:?}, {what}: {last}"),
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

/// [`eventually`] for a plain condition: waits until `check` is true.
pub async fn wait_until<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    eventually(within, what, || {
        let f = check();
        async move {
            if f.await {
                Ok(())
            } else {
                Err("still false".to_owned())
            }
        }
    })
    .await
}

/// The share of `n` users (ids `PREFIX-0`…) the proxy serves from the `challenger` variant.
pub async fn challenger_share(p: &Proxy, prefix: &str, n: usize) -> f64 {
    let ids: Vec<String> = (0..n).map(|i| format!("{prefix}-{i}")).collect();
    let v = variants_of(&p.url("/recommend"), &ids, 4).await;
    v.iter().filter(|x| *x == "challenger").count() as f64 / ids.len() as f64
}

/// The demo key from `config/splitgate.toml`.
pub const KEY: &str = "splitgate-demo-key";
pub const KEY_SHA: &str = "5b1f89fd1eaf4f5a25821da4a9d3f8a6881fdd0d8ec50232ed0bf787f4f9a0ad";
/// A second key without override rights: SHA-256("test").
pub const PLAIN_KEY: &str = "test";
pub const PLAIN_SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
/// Admin bearer token `ops-token` (named `ops`).
pub const ADMIN_TOKEN: &str = "ops-token";
pub const ADMIN_SHA: &str = "d9310c002af91822beb0b3487d8b04f85bf6bf1f8a5496bff7d35fc7c5a29def";

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_splitgate")
}

/// `splitgate ARGS` in the tests' environment: dummy AWS credentials and a region (the SDK must
/// never probe instance metadata), and nothing from the developer's shell that would change
/// which config is used or how.
pub fn command(args: &[&str]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("SPLITGATE_CONFIG")
        .env_remove("ECS_CONTAINER_METADATA_URI_V4")
        .env_remove("ECS_CONTAINER_METADATA_URI");
    cmd
}

/// `splitgate serve ARGS` in the tests' environment ([`command`]), logging at info.
pub fn serve_command(args: &[&str]) -> Command {
    let mut cmd = command(&["serve"]);
    cmd.args(args).env("SPLITGATE_LOG", "info");
    cmd
}

/// Runs `cmd` expecting it to exit by itself within 20 s (it is killed otherwise); returns its
/// exit code (`None` if it had to be killed) and standard error.
pub fn exit_of(mut cmd: Command) -> (Option<i32>, String) {
    use std::io::Read as _;
    let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    (code, err)
}

/// A running proxy process; killed on drop.
pub struct Proxy {
    child: Child,
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    /// Access-log lines (stdout).
    pub stdout: Arc<Mutex<Vec<String>>>,
    /// Log lines (stderr).
    pub stderr: Arc<Mutex<Vec<String>>>,
}

impl Proxy {
    /// Runs the operator CLI (`splitgate ARGS`) against this proxy's admin API with the test token.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        command(args)
            .env("SPLITGATE_ADMIN_URL", format!("http://{}", self.admin))
            .env("SPLITGATE_ADMIN_TOKEN", ADMIN_TOKEN)
            .output()
            .unwrap()
    }

    /// Writes `config` (a [`Conf`] or raw text) to a temp dir and serves it.
    pub fn start(config: impl std::fmt::Display) -> Proxy {
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("splitgate.toml");
        std::fs::write(&config_path, config.to_string()).unwrap();
        Self::start_at(dir, config_path)
    }

    pub fn start_at(dir: tempfile::TempDir, config_path: PathBuf) -> Proxy {
        let path = config_path.to_str().unwrap().to_owned();
        Self::start_with(dir, config_path, &["--config", &path], &[])
    }

    /// `splitgate serve ARGS --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0` with `envs` added to
    /// the test environment; `config_path` is only what [`Proxy::path`] reports.
    pub fn start_with(dir: tempfile::TempDir, config_path: PathBuf, args: &[&str], envs: &[(&str, &str)]) -> Proxy {
        let mut cmd = serve_command(args);
        cmd.args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"]);
        cmd.envs(envs.iter().copied());
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        let (o, e) = (stdout.clone(), stderr.clone());
        std::thread::spawn(move || {
            BufReader::new(out).lines().map_while(Result::ok).for_each(|l| o.lock().unwrap().push(l))
        });
        std::thread::spawn(move || {
            BufReader::new(err).lines().map_while(Result::ok).for_each(|l| e.lock().unwrap().push(l))
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = stderr.lock().unwrap().iter().find(|l| l.contains("splitgate listening")).cloned();
            if let Some(line) = ready {
                let addr = field(&line, " addr=").parse().unwrap();
                let admin = field(&line, "admin_addr=").parse().unwrap();
                return Proxy { child, addr, admin, dir, config_path, stdout, stderr };
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("splitgate exited with {status}: {:?}", stderr.lock().unwrap());
            }
            assert!(Instant::now() < deadline, "splitgate did not start: {:?}", stderr.lock().unwrap());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: the process dies without draining (a crashed task).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits (bounded) for a clean exit; returns the exit code.
    pub fn terminate(&mut self, within: Duration) -> Option<i32> {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin)
    }

    /// Replaces the config file as editors and config management do: a temp file beside it,
    /// then a rename, so the proxy never reads a half-written text (an in-place write can be
    /// caught mid-way and rejected as a truncated config first, which makes counts racy).
    pub fn write_config(&self, text: impl std::fmt::Display) {
        let tmp = self.config_path.with_extension("toml.tmp-write");
        std::fs::write(&tmp, text.to_string()).unwrap();
        std::fs::rename(&tmp, &self.config_path).unwrap();
    }

    /// Waits until the admin `/health` reports config `version`, or panics after 5 s.
    pub async fn wait_version(&self, version: u64) {
        eventually(Duration::from_secs(5), &format!("config version {version} not applied"), || async {
            let v = self.health().await;
            if v["config"]["version"] == version {
                Ok(())
            } else {
                Err(v.to_string())
            }
        })
        .await
    }

    pub async fn health(&self) -> serde_json::Value {
        serde_json::from_slice(&get(&self.admin_url("/health")).await.2).unwrap()
    }

    pub async fn metrics(&self) -> String {
        String::from_utf8(get(&self.admin_url("/metrics")).await.2.to_vec()).unwrap()
    }

    pub fn stderr_text(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    pub fn path(&self) -> &Path {
        &self.config_path
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn field<'a>(line: &'a str, name: &str) -> &'a str {
    let start = line.find(name).unwrap() + name.len();
    line[start..].split_whitespace().next().unwrap()
}

/// Open file descriptors of process `pid`: (all, sockets), from /proc/PID/fd.
pub fn open_fds(pid: u32) -> (usize, usize) {
    let mut all = 0;
    let mut sockets = 0;
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().flatten() {
        all += 1;
        if std::fs::read_link(entry.path()).is_ok_and(|t| t.to_string_lossy().starts_with("socket:")) {
            sockets += 1;
        }
    }
    (all, sockets)
}

/// The metric's value now (0 when the series is not exported yet).
pub async fn value(p: &Proxy, series: &str) -> f64 {
    metric(&p.metrics().await, series).unwrap_or(0.0)
}

/// Polls until `series` reaches at least `want` (metrics are updated before the answer is sent,
/// but a reload is asynchronous); fails after 5 s with the whole metrics text.
pub async fn wait_metric(p: &Proxy, series: &str, want: f64) {
    eventually(Duration::from_secs(5), &format!("{series} never reached {want}"), || async {
        let m = p.metrics().await;
        if metric(&m, series).unwrap_or(0.0) >= want {
            Ok(())
        } else {
            Err(m)
        }
    })
    .await
}

/// Status and `error.code` ("" for a non-error body) of one `/recommend` on a fresh connection.
pub async fn attempt(p: &Proxy, user: &str) -> (u16, String) {
    let (status, _, body) = recommend(&p.url("/recommend"), user).await;
    let code = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["error"]["code"].as_str().map(str::to_owned))
        .unwrap_or_default();
    (status.as_u16(), code)
}

/// The proxy's log has no panic in it.
pub fn assert_no_panic(p: &Proxy) {
    let err = p.stderr_text();
    assert!(!err.contains("panicked"), "the proxy panicked:\n{err}");
}

/// The value of one metric sample line (exact series text before the value).
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series).and_then(|rest| rest.trim().parse().ok()))
}

/// An admin API call with the test token.
pub async fn admin(
    p: &Proxy,
    method: http::Method,
    path: &str,
    body: Option<serde_json::Value>,
    headers: &[(&str, &str)],
) -> Response {
    let mut b = http::Request::builder()
        .method(method)
        .uri(p.admin_url(path))
        .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
        .header("content-type", "application/json");
    for (n, v) in headers {
        b = b.header(*n, *v);
    }
    send(b.body(Full::new(Bytes::from(body.map(|v| v.to_string()).unwrap_or_default()))).unwrap()).await
}

pub fn header<'a>(h: &'a http::HeaderMap, name: &str) -> &'a str {
    h.get(name).map(|v| v.to_str().unwrap()).unwrap_or("")
}

pub fn json(body: &Bytes) -> serde_json::Value {
    serde_json::from_slice(body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)))
}

/// For raw model servers in tests: reads one request (head up to CRLFCRLF, then content-length
/// bytes of body) and returns the head. `None` at EOF or past 64 KiB of head.
pub async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 || buf.len() > 64 * 1024 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut have = buf.len() - head_end;
    while have < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        have += n;
    }
    Some(head)
}
