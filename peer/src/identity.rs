//! Client identities: an MSP folder in Fabric's layout (`signcerts/`, `keystore/`), ECDSA P-256
//! signatures (DER, low-S as Fabric requires), and their verification against the creator's
//! certificate.
//!
//! Keys are read in PKCS#8 (`BEGIN PRIVATE KEY`) or SEC1 (`BEGIN EC PRIVATE KEY`) form, as
//! Fabric's tools write them. Signing and verification go through RustCrypto's `p256`/`p384`,
//! certificates are read with `x509-parser`. Whether the certificate itself is trusted is
//! [`crate::msp`]'s question, not this module's.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use p256::ecdsa::signature::{Signer, Verifier};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey};
use prost::Message;
use proto::msp::SerializedIdentity;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// A client identity that signs proposals.
pub struct Identity {
    /// The MSP id.
    pub mspid: String,
    /// The certificate, PEM.
    pub cert_pem: String,
    key: p256::ecdsa::SigningKey,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("mspid", &self.mspid)
            .finish_non_exhaustive()
    }
}

/// The first file (by name) of folder `dir`, as Fabric picks `signcerts/` and `keystore/`.
pub(crate) fn first_file(dir: &Path) -> Result<PathBuf> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    entries.sort();
    entries
        .into_iter()
        .next()
        .with_context(|| format!("{} holds no file", dir.display()))
}

/// Writes `contents` to `path` readable by the owner only, atomically (a temporary file, synced,
/// then renamed).
pub(crate) fn write_private(path: &Path, contents: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

/// Reads a P-256 private key from PEM: PKCS#8 (`PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`, with or
/// without a leading `EC PARAMETERS` block).
pub fn signing_key_from_pem(pem: &[u8]) -> Result<p256::ecdsa::SigningKey> {
    let der = PrivateKeyDer::from_pem_slice(pem)
        .context("no private key (BEGIN PRIVATE KEY or BEGIN EC PRIVATE KEY) found")?;
    let secret = match &der {
        PrivateKeyDer::Pkcs8(k) => p256::SecretKey::from_pkcs8_der(k.secret_pkcs8_der())
            .map_err(|e| anyhow!("not a PKCS#8 ECDSA P-256 key: {e}"))?,
        PrivateKeyDer::Sec1(k) => p256::SecretKey::from_sec1_der(k.secret_sec1_der())
            .map_err(|e| anyhow!("not a SEC1 ECDSA P-256 key: {e}"))?,
        _ => bail!("an RSA key: Fabric identities use ECDSA P-256"),
    };
    Ok(secret.into())
}

impl Identity {
    /// Makes an identity from its certificate and private key, both PEM.
    pub fn from_pem(mspid: &str, cert_pem: &str, key_pem: &[u8]) -> Result<Self> {
        let der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .context("no PEM certificate found")?;
        let key = signing_key_from_pem(key_pem)?;
        let cert_key = public_key(&der)?;
        let own_key = p256::PublicKey::from(key.verifying_key());
        if !matches!(cert_key, PublicKey::P256(k) if k == own_key) {
            bail!("the private key does not belong to the certificate");
        }
        Ok(Self {
            mspid: mspid.to_owned(),
            cert_pem: cert_pem.to_owned(),
            key,
        })
    }

    /// Loads the identity of MSP folder `dir`: the first file of `signcerts/` holds the
    /// certificate, the first file of `keystore/` the key (PKCS#8 or SEC1).
    pub fn load(dir: &Path, mspid: &str) -> Result<Self> {
        let cert_path = first_file(&dir.join("signcerts"))?;
        let cert_pem = std::fs::read_to_string(&cert_path)
            .with_context(|| format!("cannot read {}", cert_path.display()))?;
        let key_path = first_file(&dir.join("keystore"))?;
        let key_pem = std::fs::read(&key_path)
            .with_context(|| format!("cannot read {}", key_path.display()))?;
        signing_key_from_pem(&key_pem).with_context(|| format!("{}", key_path.display()))?;
        Self::from_pem(mspid, &cert_pem, &key_pem).with_context(|| {
            format!(
                "{} and {} do not make an identity",
                cert_path.display(),
                key_path.display()
            )
        })
    }

    /// Loads `dir`, first writing a self-signed identity there if it holds none.
    ///
    /// Such an identity is refused by an MSP that checks its CAs; prefer
    /// [`crate::msp::dev::create`], whose administrator is issued by the development CA.
    pub fn load_or_create(dir: &Path, mspid: &str) -> Result<Self> {
        if !dir.join("signcerts").is_dir() {
            Self::generate(dir)?;
        }
        Self::load(dir, mspid)
    }

    /// Writes a self-signed identity in Fabric's MSP layout (the certificate is also its own
    /// CA, in `cacerts/`).
    pub fn generate(dir: &Path) -> Result<()> {
        let key = rcgen::KeyPair::generate()?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Admin@dev.example");
        params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        let cert = params.self_signed(&key)?;
        for sub in ["signcerts", "keystore", "cacerts"] {
            std::fs::create_dir_all(dir.join(sub))
                .with_context(|| format!("cannot create {}", dir.join(sub).display()))?;
        }
        write_private(
            &dir.join("keystore/priv_sk"),
            key.serialize_pem().as_bytes(),
        )?;
        write_private(&dir.join("cacerts/ca.pem"), cert.pem().as_bytes())?;
        // Written last: its presence means the identity is complete.
        write_private(&dir.join("signcerts/cert.pem"), cert.pem().as_bytes())
    }

    /// The encoded `msp.SerializedIdentity` of this identity: a proposal's creator.
    pub fn creator(&self) -> Bytes {
        SerializedIdentity {
            mspid: self.mspid.clone(),
            id_bytes: Bytes::from(self.cert_pem.clone()),
        }
        .encode_to_vec()
        .into()
    }

    /// Signs `message`: ECDSA P-256 with SHA-256, DER-encoded, S in the lower half of the
    /// order (Fabric rejects the other half).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        let signature: p256::ecdsa::Signature = self
            .key
            .try_sign(message)
            .map_err(|e| anyhow!("signing failed: {e}"))?;
        Ok(signature.normalize_s().to_der().as_bytes().to_vec())
    }
}

/// The public key of a certificate, on a curve Fabric uses.
enum PublicKey {
    P256(p256::PublicKey),
    P384(p384::PublicKey),
}

fn public_key(cert_der: &[u8]) -> Result<PublicKey> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der)
        .map_err(|e| anyhow!("the certificate cannot be parsed: {e}"))?;
    let spki = cert.public_key().raw;
    if let Ok(key) = p256::PublicKey::from_public_key_der(spki) {
        return Ok(PublicKey::P256(key));
    }
    if let Ok(key) = p384::PublicKey::from_public_key_der(spki) {
        return Ok(PublicKey::P384(key));
    }
    bail!("the certificate's key is not an ECDSA P-256 or P-384 key")
}

/// Checks that `signature` (ECDSA, DER) over `message` was made with the key of certificate
/// `cert_der`, as Fabric does: SHA-256 digest (Fabric's default hash family, also for P-384
/// keys) and S in the lower half of the order (a high-S signature is refused).
pub fn verify_signature(cert_der: &[u8], message: &[u8], signature: &[u8]) -> Result<()> {
    match public_key(cert_der)? {
        PublicKey::P256(key) => {
            let signature = p256::ecdsa::Signature::from_der(signature)
                .map_err(|_| anyhow!("the signature is not a DER ECDSA P-256 signature"))?;
            if signature.normalize_s() != signature {
                bail!("the signature has a high S value, which Fabric refuses");
            }
            p256::ecdsa::VerifyingKey::from(key)
                .verify(message, &signature)
                .map_err(|_| anyhow!("the signature does not verify"))
        }
        PublicKey::P384(key) => {
            use p384::ecdsa::signature::hazmat::PrehashVerifier;
            use sha2::Digest;
            let signature = p384::ecdsa::Signature::from_der(signature)
                .map_err(|_| anyhow!("the signature is not a DER ECDSA P-384 signature"))?;
            if signature.normalize_s() != signature {
                bail!("the signature has a high S value, which Fabric refuses");
            }
            let digest = sha2::Sha256::digest(message);
            p384::ecdsa::VerifyingKey::from(key)
                .verify_prehash(&digest, &signature)
                .map_err(|_| anyhow!("the signature does not verify"))
        }
    }
}

/// Checks that `signature` over `message` was made with the key of the certificate inside
/// `creator` (an encoded `msp.SerializedIdentity`). This does not say whether the certificate is
/// trusted: [`crate::msp::MspManager::authenticate`] does both.
pub fn verify(creator: &[u8], message: &[u8], signature: &[u8]) -> Result<SerializedIdentity> {
    let identity =
        SerializedIdentity::decode(creator).context("the creator is not a SerializedIdentity")?;
    let der = CertificateDer::from_pem_slice(&identity.id_bytes)
        .context("the creator's identity holds no PEM certificate")?;
    verify_signature(&der, message, signature)
        .context("the proposal's signature does not match its creator's certificate")?;
    Ok(identity)
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::pkcs8::EncodePrivateKey;

    #[test]
    fn generated_identity_signs_low_s_and_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let id = Identity::load_or_create(dir.path(), "SampleOrg").unwrap();
        // Loading again finds the same identity.
        let again = Identity::load_or_create(dir.path(), "SampleOrg").unwrap();
        assert_eq!(id.cert_pem, again.cert_pem);
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dir.path().join("keystore/priv_sk"))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        for i in 0..32 {
            let msg = format!("proposal {i}");
            let sig = id.sign(msg.as_bytes()).unwrap();
            let identity = verify(&id.creator(), msg.as_bytes(), &sig).unwrap();
            assert_eq!(identity.mspid, "SampleOrg");
            let parsed = p256::ecdsa::Signature::from_der(&sig).unwrap();
            assert_eq!(parsed.normalize_s(), parsed, "S is in the lower half");
            assert!(verify(&id.creator(), b"another message", &sig).is_err());
        }
    }

    #[test]
    fn a_high_s_signature_of_a_valid_message_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let id = Identity::load_or_create(dir.path(), "SampleOrg").unwrap();
        let sig = p256::ecdsa::Signature::from_der(&id.sign(b"m").unwrap()).unwrap();
        let (r, s) = sig.split_scalars();
        let high = p256::ecdsa::Signature::from_scalars(r, -*s).unwrap();
        assert_ne!(high.normalize_s(), high);
        // Mathematically valid, but malleated: Fabric refuses it.
        let err = verify(&id.creator(), b"m", high.to_der().as_bytes()).unwrap_err();
        assert!(format!("{err:#}").contains("high S"), "{err:#}");
    }

    #[test]
    fn a_foreign_signature_or_creator_is_refused() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let a = Identity::load_or_create(a.path(), "A").unwrap();
        let b = Identity::load_or_create(b.path(), "B").unwrap();
        let sig = a.sign(b"m").unwrap();
        assert!(
            verify(&b.creator(), b"m", &sig)
                .unwrap_err()
                .to_string()
                .contains("does not match")
        );
        assert!(verify(b"garbage", b"m", &sig).is_err());
        assert!(verify(&a.creator(), b"m", b"garbage").is_err());
    }

    #[test]
    fn pkcs8_and_sec1_keys_both_load() {
        let dir = tempfile::tempdir().unwrap();
        Identity::generate(dir.path()).unwrap();
        let key_path = dir.path().join("keystore/priv_sk");
        let pkcs8 = std::fs::read_to_string(&key_path).unwrap();
        assert!(pkcs8.contains("BEGIN PRIVATE KEY"));
        let secret = p256::SecretKey::from_pkcs8_pem(&pkcs8).unwrap();
        let sec1 = secret.to_sec1_pem(p256::pkcs8::LineEnding::LF).unwrap();
        assert!(sec1.contains("BEGIN EC PRIVATE KEY"));
        // And back: p256 writes PKCS#8 too.
        let rewritten = secret.to_pkcs8_pem(p256::pkcs8::LineEnding::LF).unwrap();
        for pem in [pkcs8.as_str(), sec1.as_str(), rewritten.as_str()] {
            std::fs::write(&key_path, pem).unwrap();
            let id = Identity::load(dir.path(), "SampleOrg").unwrap();
            let sig = id.sign(b"m").unwrap();
            verify(&id.creator(), b"m", &sig).unwrap();
        }
        // A key that is not the certificate's is refused when loading.
        let other = rcgen::KeyPair::generate().unwrap().serialize_pem();
        std::fs::write(&key_path, other).unwrap();
        let err = Identity::load(dir.path(), "SampleOrg").unwrap_err();
        assert!(format!("{err:#}").contains("does not belong"), "{err:#}");
    }
}
