//! The operations service's TLS (rustls, ring): the configured certificate and key; with
//! `clientAuthRequired`, client certificates are verified against the configured CAs when
//! presented, and the secured endpoints refuse requests without one.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use axum_server::tls_rustls::RustlsConfig;
use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::OperationsTls;

fn certificates(path: &Path, key: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("cannot read {key} {}", path.display()))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "{key} {} holds no certificate",
        path.display()
    );
    Ok(certs)
}

/// The server configuration, read off the async workers.
pub(super) async fn server_config(tls: &OperationsTls) -> Result<RustlsConfig> {
    let tls = tls.clone();
    let config = tokio::task::spawn_blocking(move || -> Result<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain = certificates(&tls.cert, "operations.tls.cert.file")?;
        let key = PrivateKeyDer::from_pem_file(&tls.key).with_context(|| {
            format!("cannot read operations.tls.key.file {}", tls.key.display())
        })?;
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .context("TLS versions")?;
        let builder = if tls.client_auth_required {
            let mut roots = RootCertStore::empty();
            for file in &tls.client_root_cas {
                for cert in certificates(file, "operations.tls.clientRootCAs.files")? {
                    roots.add(cert).with_context(|| {
                        format!(
                            "invalid CA in operations.tls.clientRootCAs.files {}",
                            file.display()
                        )
                    })?;
                }
            }
            // Presented certificates must verify; none at all is refused by the secured
            // endpoints only, so that health probes need none (as in Fabric).
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .context("invalid operations.tls.clientRootCAs.files")?;
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let mut config = builder
            .with_single_cert(chain, key)
            .context("invalid operations.tls.cert.file or operations.tls.key.file")?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    })
    .await??;
    Ok(RustlsConfig::from_config(Arc::new(config)))
}
