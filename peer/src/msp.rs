//! Fabric's membership service provider (MSP): which certificate authorities an organisation
//! trusts, who its administrators are, and the authentication of a request's creator against
//! them.
//!
//! An MSP folder in Fabric's layout holds `cacerts/` (the root CAs, every PEM certificate of
//! every file), `intermediatecerts/` (optional), `admincerts/` (optional) and `config.yaml`
//! (optional; NodeOUs and OU identifiers, see [`MspConfig`]). `crls/` is not read: revocation
//! lists are ignored, so a revoked certificate of a configured CA is accepted.
//!
//! An identity is valid in an MSP when its certificate chains to one of the MSP's CAs (through
//! its intermediates, with `rustls-webpki`), every certificate of the chain is within its
//! validity period, and, with NodeOUs enabled, it carries exactly one of the configured node OUs
//! (client, peer, admin, orderer) issued by the configured certificate. Extended key usages are
//! not required (enrollment certificates usually have none), as Fabric does not require them.
//!
//! [`MspManager`] holds the peer's own MSP and the MSPs it trusts, and turns a creator, a
//! message and its signature into a [`Principal`]. [`dev`] makes the development MSP.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};

mod config;
pub mod dev;
mod dn;
mod error;
mod manager;
#[cfg(test)]
mod tests;

pub use config::{MspConfig, NodeOus, OuIdentifier};
pub use error::AuthError;
pub use manager::MspManager;

/// What an authenticated identity may do in its organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// An administrator: listed in `admincerts/`, or carrying the admin node OU.
    Admin,
    /// Any other valid identity of the MSP.
    Member,
}

/// An authenticated identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The MSP that validated it.
    pub mspid: String,
    /// Its role in that MSP.
    pub role: Role,
    /// Fabric's client identity id before its base64 encoding: `x509::<subject>::<issuer>`,
    /// both names written as Go's `pkix.Name.String()` writes them (e.g.
    /// `x509::CN=Admin@org1.example.com,OU=admin::CN=ca.org1.example.com,O=Org1`).
    pub id: String,
}

impl Principal {
    /// The id as Fabric's `cid.GetID()` returns it (base64 of [`Principal::id`]).
    pub fn cid_id(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(&self.id)
    }
}

/// The signature algorithms accepted in certificate chains.
static CHAIN_ALGORITHMS: &[&dyn rustls_pki_types::SignatureVerificationAlgorithm] = &[
    webpki::ring::ECDSA_P256_SHA256,
    webpki::ring::ECDSA_P256_SHA384,
    webpki::ring::ECDSA_P384_SHA256,
    webpki::ring::ECDSA_P384_SHA384,
    webpki::ring::ED25519,
    webpki::ring::RSA_PKCS1_2048_8192_SHA256,
    webpki::ring::RSA_PKCS1_2048_8192_SHA384,
    webpki::ring::RSA_PKCS1_2048_8192_SHA512,
];

/// Accepts any (well-formed) extended key usage, as Fabric's MSP does.
struct AnyExtendedKeyUsage;

impl webpki::ExtendedKeyUsageValidator for AnyExtendedKeyUsage {
    fn validate(&self, iter: webpki::KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        for purpose in iter {
            purpose?;
        }
        Ok(())
    }
}

/// One organisation's MSP, loaded from its folder.
#[derive(Debug)]
pub struct Msp {
    mspid: String,
    dir: PathBuf,
    ca_certs: Vec<CertificateDer<'static>>,
    /// The trust anchors of `ca_certs`, same order.
    anchors: Vec<TrustAnchor<'static>>,
    intermediates: Vec<CertificateDer<'static>>,
    admins: Vec<CertificateDer<'static>>,
    config: MspConfig,
}

/// Every PEM certificate of every file of `dir`; an absent folder is empty unless `required`.
fn read_certs(dir: &Path, required: bool) -> Result<Vec<CertificateDer<'static>>> {
    if !dir.exists() && !required {
        return Ok(Vec::new());
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let mut certs = Vec::new();
    for file in files {
        let pem =
            std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
        let found: Vec<_> = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<_, _>>()
            .map_err(|e| anyhow!("{} is not PEM: {e}", file.display()))?;
        if found.is_empty() {
            bail!("{} holds no PEM certificate", file.display());
        }
        for cert in &found {
            x509_parser::parse_x509_certificate(cert)
                .map_err(|e| anyhow!("{} holds an unreadable certificate: {e}", file.display()))?;
        }
        certs.extend(found);
    }
    if required && certs.is_empty() {
        bail!(
            "{} holds no certificate: an MSP needs at least one CA",
            dir.display()
        );
    }
    Ok(certs)
}

/// `Err` with the certificate's validity period unless `now` is within it.
fn check_validity(der: &[u8], what: &str, now: UnixTime) -> Result<(), String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| e.to_string())?;
    let validity = cert.validity();
    let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    if now < validity.not_before.timestamp() || now > validity.not_after.timestamp() {
        return Err(format!(
            "{what} ({}) is valid from {} until {}",
            dn::go_string(cert.subject()),
            validity.not_before,
            validity.not_after
        ));
    }
    Ok(())
}

impl Msp {
    /// Loads the MSP of folder `dir` for organisation `mspid`.
    pub fn load(dir: &Path, mspid: &str) -> Result<Self> {
        let ca_certs = read_certs(&dir.join("cacerts"), true)?;
        let anchors = ca_certs
            .iter()
            .map(|c| {
                webpki::anchor_from_trusted_cert(c)
                    .map(|a| a.to_owned())
                    .map_err(|e| anyhow!("{}: a CA certificate is not usable: {e}", dir.display()))
            })
            .collect::<Result<_>>()?;
        let intermediates = read_certs(&dir.join("intermediatecerts"), false)?;
        let admins = read_certs(&dir.join("admincerts"), false)?;
        let config = MspConfig::load(dir)?;
        let known = |der: &[u8]| ca_certs.iter().chain(&intermediates).any(|c| c[..] == *der);
        let configured = config
            .node_ous
            .iter()
            .flat_map(|n| n.all().map(|(_, ou)| ou));
        for ou in configured.chain(&config.ou_identifiers) {
            if ou.certifier.as_deref().is_some_and(|c| !known(c)) {
                bail!(
                    "{}: the certificate of OU {:?} is not a CA or intermediate CA of the MSP",
                    dir.join("config.yaml").display(),
                    ou.ou
                );
            }
        }
        Ok(Self {
            mspid: mspid.to_owned(),
            dir: dir.to_owned(),
            ca_certs,
            anchors,
            intermediates,
            admins,
            config,
        })
    }

    /// The MSP id.
    pub fn mspid(&self) -> &str {
        &self.mspid
    }

    /// The folder it was loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Validates certificate `cert_der` as an identity of this MSP, now.
    pub fn validate(&self, cert_der: &[u8]) -> Result<Principal, AuthError> {
        self.validate_at(cert_der, UnixTime::now())
    }

    /// Validates certificate `cert_der` as an identity of this MSP at time `now`.
    pub fn validate_at(&self, cert_der: &[u8], now: UnixTime) -> Result<Principal, AuthError> {
        let mspid = || self.mspid.clone();
        let bad = |reason: String| AuthError::BadCertificate {
            mspid: mspid(),
            reason,
        };
        let (_, cert) =
            x509_parser::parse_x509_certificate(cert_der).map_err(|e| bad(e.to_string()))?;
        let der = CertificateDer::from(cert_der);
        let end_entity = webpki::EndEntityCert::try_from(&der).map_err(|e| bad(e.to_string()))?;
        let path = end_entity
            .verify_for_usage(
                CHAIN_ALGORITHMS,
                &self.anchors,
                &self.intermediates,
                now,
                AnyExtendedKeyUsage,
                None,
                None,
            )
            .map_err(|e| match e {
                webpki::Error::CertExpired { .. } | webpki::Error::CertNotValidYet { .. } => {
                    let reason = check_validity(cert_der, "the certificate", now)
                        .err()
                        .unwrap_or_else(|| e.to_string());
                    AuthError::NotValidNow {
                        mspid: mspid(),
                        reason,
                    }
                }
                webpki::Error::UnknownIssuer
                | webpki::Error::InvalidSignatureForPublicKey
                | webpki::Error::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => {
                    AuthError::NotIssued {
                        mspid: mspid(),
                        reason: format!("{e} (issuer {})", dn::go_string(cert.issuer())),
                    }
                }
                e => AuthError::Invalid {
                    mspid: mspid(),
                    reason: e.to_string(),
                },
            })?;
        // rustls-webpki does not check the trust anchor's own validity period; Fabric does.
        if let Some(i) = self.anchors.iter().position(|a| a == path.anchor()) {
            check_validity(&self.ca_certs[i], "its CA certificate", now).map_err(|reason| {
                AuthError::NotValidNow {
                    mspid: mspid(),
                    reason,
                }
            })?;
        }
        // The OUs the identity carries, and whether its direct issuer is a given certificate.
        let ous: Vec<String> = cert
            .subject()
            .iter_organizational_unit()
            .filter_map(dn::string_value)
            .collect();
        let issued_by = |certifier: &[u8]| match path.intermediate_certificates().next() {
            Some(issuer) => issuer.der()[..] == *certifier,
            None => webpki::anchor_from_trusted_cert(&CertificateDer::from(certifier))
                .is_ok_and(|a| a == *path.anchor()),
        };
        let carries = |id: &OuIdentifier| ous.contains(&id.ou);
        let matches =
            |id: &OuIdentifier| carries(id) && id.certifier.as_deref().is_none_or(issued_by);
        let ou_error = |reason: String| AuthError::OrganizationalUnit {
            mspid: mspid(),
            reason,
        };
        if !self.config.ou_identifiers.is_empty() && !self.config.ou_identifiers.iter().any(matches)
        {
            return Err(ou_error(format!(
                "none of its organizational units {ous:?} is one of the MSP's"
            )));
        }
        let mut is_admin_ou = false;
        if let Some(node_ous) = &self.config.node_ous {
            let carried: Vec<_> = node_ous.all().filter(|(_, id)| carries(id)).collect();
            if let Some((name, _)) = carried.iter().find(|(_, id)| !matches(id)) {
                return Err(ou_error(format!(
                    "its {name} OU was not issued by the certificate the MSP names for it"
                )));
            }
            match carried.as_slice() {
                [] => {
                    return Err(ou_error(format!(
                        "it carries none of the node OUs ({}); its OUs: {ous:?}",
                        node_ous
                            .all()
                            .map(|(_, id)| id.ou.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
                [(name, _)] => is_admin_ou = *name == "admin",
                _ => {
                    return Err(ou_error(format!(
                        "it must be a client, a peer, an orderer or an admin, \
                         not a combination of them; its OUs: {ous:?}"
                    )));
                }
            }
        }
        let in_admincerts = self.admins.iter().any(|a| a[..] == *cert_der);
        Ok(Principal {
            mspid: mspid(),
            role: if in_admincerts || is_admin_ou {
                Role::Admin
            } else {
                Role::Member
            },
            id: format!(
                "x509::{}::{}",
                dn::go_string(cert.subject()),
                dn::go_string(cert.issuer())
            ),
        })
    }
}
