//! The peer's own MSP and those it trusts: a creator, a message and its signature become a
//! [`Principal`].

use prost::Message;
use proto::msp::SerializedIdentity;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use super::{AuthError, Msp, Principal};

/// The peer's own MSP and the MSPs it trusts.
#[derive(Debug)]
pub struct MspManager {
    /// The peer's organisation.
    pub local: Msp,
    /// Other organisations whose members may call the peer.
    pub trusted: Vec<Msp>,
}

impl MspManager {
    /// The peer's MSP and the others it trusts.
    pub fn new(local: Msp, trusted: Vec<Msp>) -> Self {
        Self { local, trusted }
    }

    /// Every MSP, the local one first.
    pub fn msps(&self) -> impl Iterator<Item = &Msp> {
        std::iter::once(&self.local).chain(&self.trusted)
    }

    /// The MSP with id `mspid`.
    pub fn get(&self, mspid: &str) -> Option<&Msp> {
        self.msps().find(|m| m.mspid == mspid)
    }

    fn known(&self) -> String {
        self.msps().map(Msp::mspid).collect::<Vec<_>>().join(", ")
    }

    /// Authenticates a signed request: `creator` is an encoded `msp.SerializedIdentity`, whose
    /// certificate must be valid in the MSP it names and whose key must have made `signature`
    /// over `message`.
    pub fn authenticate(
        &self,
        creator: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<Principal, AuthError> {
        let identity =
            SerializedIdentity::decode(creator).map_err(AuthError::NotSerializedIdentity)?;
        let msp = self
            .get(&identity.mspid)
            .ok_or_else(|| AuthError::UnknownMsp {
                mspid: identity.mspid.clone(),
                known: self.known(),
            })?;
        let der = CertificateDer::from_pem_slice(&identity.id_bytes).map_err(|_| {
            AuthError::BadCertificate {
                mspid: msp.mspid.clone(),
                reason: "the identity holds no PEM certificate".to_owned(),
            }
        })?;
        let principal = msp.validate(&der)?;
        crate::identity::verify_signature(&der, message, signature).map_err(|e| {
            AuthError::BadSignature {
                mspid: msp.mspid.clone(),
                reason: format!("{e:#}"),
            }
        })?;
        Ok(principal)
    }

    /// Authenticates a certificate presented without a signature (a TLS client certificate):
    /// the first MSP, local first, in which it is valid.
    pub fn authenticate_cert(&self, cert_der: &[u8]) -> Result<Principal, AuthError> {
        let mut first_error = None;
        for msp in self.msps() {
            match msp.validate(cert_der) {
                Ok(principal) => return Ok(principal),
                Err(AuthError::NotIssued { .. }) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(first_error.unwrap_or_else(|| AuthError::UnknownIssuer {
            known: self.known(),
        }))
    }
}
