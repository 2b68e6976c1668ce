//! Per-chaincode mutual TLS, Fabric's scheme: the peer holds a chaincode CA, issues a client
//! certificate for each launch, serves `Register` requiring client certificates from that CA,
//! and on REGISTER checks that the connection's certificate was issued for exactly the name
//! the chaincode registers with.

use std::collections::HashMap;
use std::sync::Mutex;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use sha2::{Digest, Sha256};
use vm_api::StreamOrigin;

use vm_api::ClientTls;

use crate::chaincode_identity::{ClientCertIssuer, RegistrationCheck};
use crate::{Error, Result};

/// What the gRPC server needs to serve TLS: its identity and the CA whose client
/// certificates it accepts.
#[derive(Clone)]
pub struct ServerTls {
    /// The server certificate, PEM.
    pub cert_pem: String,
    /// The server key, PEM.
    pub key_pem: String,
    /// Client certificates must be signed by this CA (PEM).
    pub client_ca_pem: String,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Issued {
    /// Registered name by certificate hash.
    by_hash: HashMap<[u8; 32], String>,
    /// The current certificate hash of each name (one launch at a time per chaincode).
    by_name: HashMap<String, [u8; 32]>,
}

/// The chaincode CA of one peer. Its key lives in memory only: certificates are issued per
/// launch and a restarted peer starts a new CA, as Fabric's does.
pub struct ChaincodeCa {
    issuer: Issuer<'static, KeyPair>,
    ca_pem: String,
    issued: Mutex<Issued>,
    /// In dev mode chaincodes start themselves, so their certificates are not bound to names.
    bind_names: bool,
}

impl std::fmt::Debug for ChaincodeCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChaincodeCa").finish_non_exhaustive()
    }
}

fn tls_error(e: impl std::fmt::Display) -> Error {
    Error::Config {
        key: "peer.tls".into(),
        message: format!("cannot issue a certificate: {e}"),
    }
}

impl ChaincodeCa {
    /// A new CA with a fresh ECDSA P-256 key.
    pub fn new() -> Result<Self> {
        let key = KeyPair::generate().map_err(tls_error)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(tls_error)?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "chaincode CA");
        params
            .distinguished_name
            .push(DnType::OrganizationName, "fabric-ccrt peer");
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::CrlSign,
        ];
        let cert = params.self_signed(&key).map_err(tls_error)?;
        Ok(Self {
            ca_pem: cert.pem(),
            issuer: Issuer::new(params, key),
            issued: Mutex::new(Issued::default()),
            bind_names: true,
        })
    }

    /// Accept any certificate of this CA at registration, whatever name it was issued for
    /// (for dev mode, where chaincodes are started by hand).
    pub fn without_name_binding(mut self) -> Self {
        self.bind_names = false;
        self
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    fn leaf(
        &self,
        common_name: &str,
        sans: Vec<String>,
        server: bool,
    ) -> Result<(String, String, [u8; 32])> {
        let key = KeyPair::generate().map_err(tls_error)?;
        let mut params = CertificateParams::new(sans).map_err(tls_error)?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![if server {
            ExtendedKeyUsagePurpose::ServerAuth
        } else {
            ExtendedKeyUsagePurpose::ClientAuth
        }];
        let cert = params.signed_by(&key, &self.issuer).map_err(tls_error)?;
        let hash: [u8; 32] = Sha256::digest(cert.der()).into();
        Ok((cert.pem(), key.serialize_pem(), hash))
    }

    /// A server identity for the chaincode listener, valid for `hosts` (names or IPs) and
    /// loopback.
    pub fn server_tls(&self, hosts: &[&str]) -> Result<ServerTls> {
        let mut sans: Vec<String> = ["127.0.0.1", "::1", "localhost"]
            .map(str::to_owned)
            .to_vec();
        for h in hosts {
            if !h.is_empty() && !sans.iter().any(|s| s == h) {
                sans.push((*h).to_owned());
            }
        }
        let (cert_pem, key_pem, _) = self.leaf("chaincode listener", sans, true)?;
        Ok(ServerTls {
            cert_pem,
            key_pem,
            client_ca_pem: self.ca_pem.clone(),
        })
    }

    /// The name a certificate (by SHA-256 of its DER) was issued for.
    pub fn issued_for(&self, hash: &[u8; 32]) -> Option<String> {
        self.issued
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .by_hash
            .get(hash)
            .cloned()
    }
}

impl ClientCertIssuer for ChaincodeCa {
    fn issue(&self, name: &str) -> Result<ClientTls> {
        let (cert_pem, key_pem, hash) = self.leaf(name, Vec::new(), false)?;
        let mut issued = self.issued.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = issued.by_name.insert(name.to_owned(), hash) {
            issued.by_hash.remove(&old);
        }
        issued.by_hash.insert(hash, name.to_owned());
        Ok(ClientTls {
            cert_pem,
            key_pem,
            root_pem: self.ca_pem.clone(),
        })
    }
}

impl RegistrationCheck for ChaincodeCa {
    fn check(&self, name: &str, origin: &StreamOrigin) -> Result<()> {
        if origin.expected.is_some() {
            // Opened by the peer itself (in process): nothing to authenticate.
            return Ok(());
        }
        let refuse = |reason: String| Error::RegistrationRefused {
            name: name.to_owned(),
            reason,
        };
        let Some(hash) = origin.client_cert_hash else {
            return Err(refuse(
                "the connection presented no client certificate".into(),
            ));
        };
        if !self.bind_names {
            return Ok(());
        }
        match self.issued_for(&hash) {
            Some(owner) if owner == name => Ok(()),
            Some(owner) => Err(refuse(format!(
                "the client certificate belongs to a different chaincode ({owner})"
            ))),
            None => Err(refuse(
                "the client certificate was not issued for any chaincode".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(hash: Option<[u8; 32]>) -> StreamOrigin {
        StreamOrigin {
            expected: None,
            client_cert_hash: hash,
        }
    }

    fn hash_of(pem: &str) -> [u8; 32] {
        use rustls_pki_types::pem::PemObject;
        let der = rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        Sha256::digest(der.as_ref()).into()
    }

    #[test]
    fn registration_is_bound_to_the_issued_name() {
        let ca = ChaincodeCa::new().unwrap();
        let a = ca.issue("a:1").unwrap();
        let b = ca.issue("b:1").unwrap();
        assert!(ca.check("a:1", &origin(Some(hash_of(&a.cert_pem)))).is_ok());
        let e = ca
            .check("b:1", &origin(Some(hash_of(&a.cert_pem))))
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("belongs to a different chaincode (a:1)"),
            "{e}"
        );
        assert!(ca.check("b:1", &origin(Some(hash_of(&b.cert_pem)))).is_ok());
        assert!(ca.check("a:1", &origin(None)).is_err());
        // A relaunch replaces the certificate: the old one no longer registers.
        let a2 = ca.issue("a:1").unwrap();
        assert!(
            ca.check("a:1", &origin(Some(hash_of(&a.cert_pem))))
                .is_err()
        );
        assert!(
            ca.check("a:1", &origin(Some(hash_of(&a2.cert_pem))))
                .is_ok()
        );
        // Without name binding any certificate of the CA will do, but one is required.
        let dev = ChaincodeCa::new().unwrap().without_name_binding();
        assert!(dev.check("x:1", &origin(Some([7; 32]))).is_ok());
        assert!(dev.check("x:1", &origin(None)).is_err());
    }
}
