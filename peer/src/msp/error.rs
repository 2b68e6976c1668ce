//! Why authentication failed, in words an operator can act on.

/// Why a creator or certificate was not authenticated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The creator bytes are not an encoded `msp.SerializedIdentity`.
    #[error("the creator is not a serialized MSP identity")]
    NotSerializedIdentity(#[source] prost::DecodeError),
    /// The creator names an MSP the peer does not know.
    #[error("MSP {mspid:?} is not known to this peer (known: {known})")]
    UnknownMsp {
        /// The creator's MSP id.
        mspid: String,
        /// The known MSP ids, comma-separated.
        known: String,
    },
    /// The certificate cannot be read.
    #[error("the certificate of creator in MSP {mspid} cannot be read: {reason}")]
    BadCertificate {
        /// The MSP id.
        mspid: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No CA of the MSP issued the certificate (directly or through an intermediate).
    #[error("the certificate of creator in MSP {mspid} was not issued by any of its CAs: {reason}")]
    NotIssued {
        /// The MSP id.
        mspid: String,
        /// The chain builder's verdict.
        reason: String,
    },
    /// A TLS client certificate that no known MSP issued.
    #[error(
        "the certificate was not issued by the CAs of any MSP known to this peer (known: {known})"
    )]
    UnknownIssuer {
        /// The known MSP ids, comma-separated.
        known: String,
    },
    /// A certificate of the chain is expired or not yet valid.
    #[error("the certificate of creator in MSP {mspid} is not valid at this time: {reason}")]
    NotValidNow {
        /// The MSP id.
        mspid: String,
        /// Which certificate, and its validity period.
        reason: String,
    },
    /// The chain exists but is not acceptable (key usage, basic constraints, …).
    #[error("the certificate of creator in MSP {mspid} is not valid: {reason}")]
    Invalid {
        /// The MSP id.
        mspid: String,
        /// The chain builder's verdict.
        reason: String,
    },
    /// The identity's OUs do not satisfy the MSP's NodeOUs or OU identifiers.
    #[error("the identity is not valid in MSP {mspid}: {reason}")]
    OrganizationalUnit {
        /// The MSP id.
        mspid: String,
        /// Which OU rule failed.
        reason: String,
    },
    /// The signature was not made with the certificate's key.
    #[error(
        "signature does not verify against the certificate of creator in MSP {mspid}: {reason}"
    )]
    BadSignature {
        /// The MSP id.
        mspid: String,
        /// What the verifier said.
        reason: String,
    },
}
