//! Hooks for per-chaincode identities: issuing client certificates at launch and checking
//! registrations against them (Fabric's chaincode TLS scheme).

use vm_api::StreamOrigin;

use crate::Result;

/// A client identity issued for one launch of one chaincode.
#[derive(Clone)]
pub struct ClientIdentity {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, PEM.
    pub key_pem: String,
    /// The CA certificate the chaincode checks the peer against, PEM.
    pub root_pem: String,
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("ClientIdentity").finish_non_exhaustive()
    }
}

/// Issues the client certificates of launched chaincodes.
pub trait ClientCertIssuer: Send + Sync {
    /// Issues a certificate for the chaincode that will register as `name` (`name:version`)
    /// and remembers it, so the registration can be checked against it.
    fn issue(&self, name: &str) -> Result<ClientIdentity>;
}

/// Decides whether a stream may register as a chaincode name.
pub trait RegistrationCheck: Send + Sync {
    /// Accepts or refuses the registration of `name` on a stream from `origin`; the error's
    /// text is sent to the chaincode.
    fn check(&self, name: &str, origin: &StreamOrigin) -> Result<()>;
}
