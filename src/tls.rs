//! TLS for the main listener (rustls with ring: TLS 1.2/1.3 only, the provider's modern AEAD
//! suites, ALPN h2 + http/1.1) and certificate hot reload: the files are re-read every few
//! seconds and a changed, valid pair replaces the acceptor for *new* connections only, so
//! nothing in flight is dropped. A bad pair is logged and the previous one keeps serving.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// How often the certificate files are checked for changes.
const RELOAD_EVERY: Duration = Duration::from_secs(2);

/// Why a certificate pair could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("certificate and key do not form a usable TLS config: {0}")]
    Config(#[from] rustls::Error),
}

fn file_err(path: &Path, e: impl std::fmt::Display) -> TlsError {
    TlsError::File { path: path.display().to_string(), message: e.to_string() }
}

/// Builds a server config from PEM files.
pub fn server_config(cert: &Path, key: &Path) -> Result<rustls::ServerConfig, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| file_err(cert, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_err(cert, e))?;
    if certs.is_empty() {
        return Err(file_err(cert, "no certificate found"));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| file_err(key, e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// The live acceptor, swapped when the files change.
pub struct Tls {
    acceptor: ArcSwap<TlsAcceptor>,
    cert: PathBuf,
    key: PathBuf,
}

impl Tls {
    pub fn load(cert: &Path, key: &Path) -> Result<Arc<Tls>, TlsError> {
        let config = server_config(cert, key)?;
        Ok(Arc::new(Tls {
            acceptor: ArcSwap::from_pointee(TlsAcceptor::from(Arc::new(config))),
            cert: cert.to_owned(),
            key: key.to_owned(),
        }))
    }

    pub fn acceptor(&self) -> Arc<TlsAcceptor> {
        self.acceptor.load_full()
    }

    /// Re-reads the files every [`RELOAD_EVERY`] while `tls` lives.
    pub fn watch(tls: &Arc<Tls>) {
        let weak: Weak<Tls> = Arc::downgrade(tls);
        // The files as loaded: any later difference is a change to apply.
        let mut last = (std::fs::read(&tls.cert).ok(), std::fs::read(&tls.key).ok());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(RELOAD_EVERY).await;
                let Some(tls) = weak.upgrade() else { return };
                let stamp = (tokio::fs::read(&tls.cert).await.ok(), tokio::fs::read(&tls.key).await.ok());
                if last == stamp {
                    continue;
                }
                last = stamp;
                let (cert, key) = (tls.cert.clone(), tls.key.clone());
                let built = tokio::task::spawn_blocking(move || server_config(&cert, &key)).await;
                let Ok(built) = built else { continue };
                match built {
                    Ok(c) => {
                        tls.acceptor.store(Arc::new(TlsAcceptor::from(Arc::new(c))));
                        tracing::info!(cert = %tls.cert.display(), "TLS certificate reloaded");
                    }
                    Err(e) => tracing::error!(error = %e, "new TLS certificate rejected; keeping the previous one"),
                }
            }
        });
    }
}
