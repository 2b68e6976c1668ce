//! Hooks for per-chaincode identities: issuing client certificates at launch and checking
//! registrations against them (Fabric's chaincode TLS scheme).

use vm_api::{ClientTls, StreamOrigin};

use crate::Result;

/// Issues the client certificates of launched chaincodes.
pub trait ClientCertIssuer: Send + Sync {
    /// Issues a certificate for the chaincode that will register as `name` (`name:version`)
    /// and remembers it, so the registration can be checked against it.
    fn issue(&self, name: &str) -> Result<ClientTls>;
}

/// Decides whether a stream may register as a chaincode name.
pub trait RegistrationCheck: Send + Sync {
    /// Accepts or refuses the registration of `name` on a stream from `origin`; the error's
    /// text is sent to the chaincode.
    fn check(&self, name: &str, origin: &StreamOrigin) -> Result<()>;
}
