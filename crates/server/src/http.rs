//! Outgoing HTTP(S) clients: the webhook sender's, `ledgerport check-report`'s, the benchmark's
//! and the tests'.
//!
//! reqwest is built with rustls but without a crypto provider of its own (its default,
//! aws-lc-rs, is a large C build; lettre already brings rustls with ring). A client reqwest
//! configures itself would look for a process-wide provider and panic when none is installed,
//! so every client starts from [`client_builder`], which hands reqwest a complete rustls
//! configuration (ring, the system's root certificates, optionally one more CA file); clippy.toml
//! refuses reqwest's own constructors everywhere else.

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::path::Path;
use std::sync::{Arc, OnceLock};

/// The system's root certificates (Debian's ca-certificates, or `SSL_CERT_FILE` /
/// `SSL_CERT_DIR`), read once per process: reading them takes milliseconds, and clients are
/// built often in tests.
fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            tracing::warn!(error = %e, "a system root certificate could not be read");
        }
        found.certs
    })
}

/// The certificates of a PEM file (one or more `CERTIFICATE` blocks); an error names the file.
pub fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: not a PEM certificate file: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{}: holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(certs)
}

/// The TLS settings of every client: ring, TLS 1.2 and 1.3, the system's roots plus `extra`.
pub fn tls_config(extra: &[CertificateDer<'static>]) -> Result<rustls::ClientConfig, String> {
    let mut roots = RootCertStore::empty();
    // A system certificate rustls cannot use is skipped, as every TLS client does.
    let _ = roots.add_parsable_certificates(system_roots().iter().cloned());
    for cert in extra {
        roots
            .add(cert.clone())
            .map_err(|e| format!("a CA certificate rustls cannot use: {e}"))?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS settings: {e}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(config)
}

/// A reqwest client builder whose TLS is configured (see the module's documentation); `extra`
/// CA certificates are trusted besides the system's.
pub fn client_builder_with(
    extra: &[CertificateDer<'static>],
) -> Result<reqwest::ClientBuilder, String> {
    #[allow(clippy::disallowed_methods)] // the one place that may: it sets the TLS below
    let builder = reqwest::Client::builder();
    Ok(builder.tls_backend_preconfigured(tls_config(extra)?))
}

/// A reqwest client builder trusting the system's root certificates.
pub fn client_builder() -> Result<reqwest::ClientBuilder, String> {
    client_builder_with(&[])
}

/// A client with reqwest's other defaults.
pub fn client() -> Result<reqwest::Client, String> {
    client_builder()?
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_build_without_a_process_wide_crypto_provider() {
        // No provider is installed in this test process: the preconfigured TLS is all it has.
        assert!(rustls::crypto::CryptoProvider::get_default().is_none());
        client().expect("a client");
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused_naming_the_file() {
        let path = std::env::temp_dir().join(format!("ledgerport-ca-{}.pem", std::process::id()));
        std::fs::write(&path, "not a certificate\n").expect("write");
        let e = read_ca_file(&path).expect_err("refused");
        let _ = std::fs::remove_file(&path);
        assert!(e.contains(&path.display().to_string()), "{e}");
        let missing = read_ca_file(Path::new("/nonexistent/ca.pem")).expect_err("refused");
        assert!(missing.contains("/nonexistent/ca.pem"), "{missing}");
    }
}
