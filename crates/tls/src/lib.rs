//! TLS for the receiver's and the worker's HTTP ports (rustls, no OpenSSL): loads a PEM
//! certificate chain and key, and serves them through a resolver that reloads them, on
//! SIGHUP or when either file changes (checked every [`POLL`]), so a certbot or
//! cert-manager renewal needs no restart. TLS 1.2 and 1.3 only (rustls has nothing
//! older).
//!
//! Failure model: [`TlsError`] at start-up (a missing, unreadable or invalid file: the
//! binary refuses to start with one line). A reload that fails keeps serving the
//! previous certificate, logs one warning and counts `workos_sync_tls_reloads_total
//! {outcome="failed"}`; the next change or SIGHUP tries again.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex, RwLock},
    time::{Duration, SystemTime},
};

use rustls::{
    ServerConfig,
    crypto::CryptoProvider,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
};

/// How often the files' modification times are compared.
pub const POLL: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

fn file_error(path: &Path, reason: impl ToString) -> TlsError {
    TlsError::File {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

/// The certificate chain and key files of one port: the settings' own pair
/// (`receiver.tls_cert`/`tls_key`, `worker.tls_cert`/`tls_key`).
pub use workos_sync_core::settings::TlsPaths as TlsFiles;

/// When the files last changed, as far as a reload saw them.
type Stamp = (Option<SystemTime>, Option<SystemTime>);

fn stamp(files: &TlsFiles) -> Stamp {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    (modified(&files.cert), modified(&files.key))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Reads and checks the chain and key.
fn load(files: &TlsFiles, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| file_error(&files.cert, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_error(&files.cert, e))?;
    if certs.is_empty() {
        return Err(file_error(&files.cert, "no CERTIFICATE in the file"));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| file_error(&files.key, e))?;
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| file_error(&files.key, e))?;
    let certified = CertifiedKey::new(certs, signing);
    certified
        .keys_match()
        .map_err(|e| file_error(&files.key, format!("does not match the certificate: {e}")))?;
    Ok(certified)
}

/// Serves the current certificate; [`CertReloader::reload`] swaps it.
#[derive(Debug)]
pub struct CertReloader {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
    seen: Mutex<Stamp>,
}

impl CertReloader {
    /// Loads the files once; fails when they cannot be served.
    pub fn load(files: TlsFiles) -> Result<Arc<Self>, TlsError> {
        let provider = provider();
        let seen = stamp(&files);
        let key = load(&files, &provider)?;
        Ok(Arc::new(Self {
            files,
            provider,
            current: RwLock::new(Arc::new(key)),
            seen: Mutex::new(seen),
        }))
    }

    /// A server configuration (TLS 1.2 and 1.3, no client certificates) that asks this
    /// reloader for its certificate on every handshake.
    pub fn server_config(self: &Arc<Self>) -> Result<ServerConfig, TlsError> {
        Ok(ServerConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .with_no_client_auth()
            .with_cert_resolver(self.clone()))
    }

    /// Reads the files again and serves them from the next handshake on; on failure the
    /// previous certificate stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let seen = stamp(&self.files);
        let result = load(&self.files, &self.provider);
        if let Ok(mut s) = self.seen.lock() {
            *s = seen;
        }
        let key = result?;
        match self.current.write() {
            Ok(mut cur) => *cur = Arc::new(key),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(key),
        }
        Ok(())
    }

    /// True when either file's modification time differs from the last (re)load's.
    pub fn changed(&self) -> bool {
        let now = stamp(&self.files);
        self.seen.lock().map_or(true, |s| *s != now)
    }

    /// Reloads, and records the outcome (log line, metric).
    fn reload_and_record(&self, why: &'static str) {
        let outcome = match self.reload() {
            Ok(()) => {
                tracing::info!(cert = %self.files.cert.display(), why, "TLS certificate reloaded");
                "ok"
            }
            Err(e) => {
                tracing::warn!(error = %e, why, "TLS certificate reload failed; serving the previous one");
                "failed"
            }
        };
        metrics::counter!(workos_sync_core::metric::TLS_RELOADS_TOTAL, "outcome" => outcome)
            .increment(1);
    }

    /// Reloads on SIGHUP and whenever the files change (polled every [`POLL`]), until
    /// the runtime stops. Spawn it on a runtime that lives as long as the server.
    pub async fn watch(self: Arc<Self>) {
        #[cfg(unix)]
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        loop {
            #[cfg(unix)]
            let hangup = async {
                match hup.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            #[cfg(not(unix))]
            let hangup = std::future::pending::<()>();
            tokio::select! {
                () = hangup => self.reload_and_record("SIGHUP"),
                () = tokio::time::sleep(POLL) => {
                    if self.changed() {
                        self.reload_and_record("files changed");
                    }
                }
            }
        }
    }
}

/// Without TLS there is nothing to reload, but SIGHUP must not end the process (its
/// default action; `kill -HUP` is what operators send every process after a
/// certificate renewal): takes the signal on the current tokio runtime and logs it.
pub fn ignore_hangup() {
    #[cfg(unix)]
    if let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                tracing::info!("SIGHUP received; no TLS configured, nothing to reload");
            }
        });
    }
}

/// Loads `files`, starts their reloader on the current tokio runtime (SIGHUP, changed
/// files), and returns the server configuration to bind with.
pub fn serve(files: TlsFiles) -> Result<ServerConfig, TlsError> {
    let reloader = CertReloader::load(files)?;
    let config = reloader.server_config()?;
    tokio::spawn(reloader.watch());
    Ok(config)
}

impl ResolvesServerCert for CertReloader {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        match self.current.read() {
            Ok(cur) => Some(cur.clone()),
            Err(poisoned) => Some(poisoned.into_inner().clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn write_cert(dir: &Path, name: &str) -> TlsFiles {
        let c = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
        let files = TlsFiles {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        };
        std::fs::write(&files.cert, c.cert.pem()).unwrap();
        std::fs::write(&files.key, c.signing_key.serialize_pem()).unwrap();
        files
    }

    #[test]
    fn loads_reloads_and_keeps_the_old_certificate_on_a_bad_file() {
        let dir = std::env::temp_dir().join(format!("wst-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let files = write_cert(&dir, "a.test");
        let r = CertReloader::load(files.clone()).unwrap();
        let first = r.current.read().unwrap().cert[0].clone();
        r.server_config().unwrap();
        write_cert(&dir, "b.test");
        r.reload().unwrap();
        let second = r.current.read().unwrap().cert[0].clone();
        assert_ne!(first, second);
        // A key that is not PEM: the reload fails and the certificate stays.
        std::fs::write(&files.key, "not a key").unwrap();
        assert!(r.reload().is_err());
        assert_eq!(r.current.read().unwrap().cert[0], second);
        // Missing files refuse to start, with the path in the message.
        let missing = TlsFiles {
            cert: dir.join("none.pem"),
            key: files.key.clone(),
        };
        let e = CertReloader::load(missing).unwrap_err().to_string();
        assert!(e.contains("none.pem"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
