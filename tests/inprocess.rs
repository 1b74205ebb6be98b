//! The whole app in-process: `splitgate::app::start` on port 0 returns its addresses, serves a
//! real request over loopback, and drains cleanly; start-up errors are typed and found before a
//! port is bound (a missing TLS certificate) or name the listener that could not bind.

mod support;

use std::time::Duration;

use splitgate::app::{self, Options, StartError};
use splitgate::config::{self, ConfigInput};
use support::*;

fn quiet() -> Options {
    Options { access_log: Some(Box::new(std::io::sink())), ..Options::default() }
}

async fn start(text: &str, opts: Options) -> Result<app::App, StartError> {
    let raw = config::parse(text).expect("test config parses");
    app::start(&ConfigInput::Inline(text.to_owned()), text, raw, opts).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_app_runs_in_process_on_port_0() {
    let app = start(&Conf::builtin(50.0, 50.0).to_string(), quiet()).await.unwrap();
    assert_ne!(app.addr.port(), 0);
    assert_ne!(app.addr, app.admin_addr);
    let url = format!("http://{}/recommend", app.addr);
    let (status, headers, body) = recommend(&url, "in-process").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(!header(&headers, "x-splitgate-variant").is_empty());
    let (status, _, _) = get(&format!("http://{}/health?ready", app.admin_addr)).await;
    assert_eq!(status, 200);
    assert_eq!(app.proxy.runtime.snapshot.load().variants.len(), 2, "the test can look inside the running proxy");
    assert!(app.drain(Duration::from_millis(10)).await, "nothing was left open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_errors_are_typed_and_name_what_failed() {
    let text = Conf::builtin(50.0, 50.0)
        .set("server.tls.cert_path", "/nonexistent/cert.pem")
        .set("server.tls.key_path", "/nonexistent/key.pem")
        .to_string();
    let e = start(&text, quiet()).await.err().expect("a missing certificate stops start-up");
    assert!(matches!(e, StartError::Tls(_)), "{e}");
    assert!(e.to_string().starts_with("server.tls:"), "{e}");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let opts = Options { listen: Some(taken.local_addr().unwrap()), ..quiet() };
    let e = start(&Conf::builtin(50.0, 50.0).to_string(), opts).await.err().expect("the port is taken");
    assert!(matches!(e, StartError::Bind { listener: "server.listen", .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("for the main listener (server.listen, --listen)"), "{msg}");
    assert!(msg.contains("another process already listens there"), "address in use says what to do: {msg}");

    // The overrides go through the same check as the config file.
    let same = "127.0.0.1:45123".parse().unwrap();
    let opts = Options { listen: Some(same), admin_listen: Some(same), ..quiet() };
    let e = start(&Conf::builtin(50.0, 50.0).to_string(), opts).await.err().expect("one address for both");
    assert!(matches!(e, StartError::SameAddress { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        format!("{}: here 127.0.0.1:45123 and 127.0.0.1:45123", splitgate::config::LISTENERS_MUST_DIFFER)
    );
    let wild = "0.0.0.0:45123".parse().unwrap();
    let opts = Options { listen: Some(wild), admin_listen: Some(same), ..quiet() };
    let e = start(&Conf::builtin(50.0, 50.0).to_string(), opts).await.err().expect("a wildcard covers loopback");
    assert!(matches!(e, StartError::SameAddress { .. }), "{e}");
}
