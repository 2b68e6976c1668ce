//! Client identities: an MSP folder in Fabric's layout (`signcerts/`, `keystore/`), a
//! development identity generated on first use, ECDSA P-256 signatures (DER, low-S as Fabric
//! requires), and their verification against the creator's certificate.

use std::path::Path;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use prost::Message;
use proto::msp::SerializedIdentity;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivatePkcs8KeyDer};

/// A client identity that signs proposals.
pub struct Identity {
    /// The MSP id.
    pub mspid: String,
    /// The certificate, PEM.
    pub cert_pem: String,
    key: EcdsaKeyPair,
    rng: SystemRandom,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("mspid", &self.mspid)
            .finish_non_exhaustive()
    }
}

fn first_file(dir: &Path) -> Result<std::path::PathBuf> {
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

/// Writes `contents` to `path` readable by the owner only, atomically.
fn write_private(path: &Path, contents: &[u8]) -> Result<()> {
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
    file.write_all(contents)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

impl Identity {
    /// Loads the identity of MSP folder `dir` (`signcerts/` holds the certificate, `keystore/`
    /// the PKCS#8 key).
    pub fn load(dir: &Path, mspid: &str) -> Result<Self> {
        let cert_path = first_file(&dir.join("signcerts"))?;
        let cert_pem = std::fs::read_to_string(&cert_path)
            .with_context(|| format!("cannot read {}", cert_path.display()))?;
        CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .with_context(|| format!("{} holds no PEM certificate", cert_path.display()))?;
        let key_path = first_file(&dir.join("keystore"))?;
        let key_pem = std::fs::read(&key_path)
            .with_context(|| format!("cannot read {}", key_path.display()))?;
        let key_der = PrivatePkcs8KeyDer::from_pem_slice(&key_pem).with_context(|| {
            format!(
                "{} holds no PKCS#8 key (BEGIN PRIVATE KEY)",
                key_path.display()
            )
        })?;
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_ASN1_SIGNING,
            key_der.secret_pkcs8_der(),
            &rng,
        )
        .map_err(|e| anyhow::anyhow!("{} is not an ECDSA P-256 key: {e}", key_path.display()))?;
        Ok(Self {
            mspid: mspid.to_owned(),
            cert_pem,
            key,
            rng,
        })
    }

    /// Loads `dir`, generating a development identity there first if it holds none.
    pub fn load_or_create(dir: &Path, mspid: &str) -> Result<Self> {
        if !dir.join("signcerts").is_dir() {
            Self::generate(dir)?;
        }
        Self::load(dir, mspid)
    }

    /// Writes a self-signed development identity in Fabric's MSP layout.
    pub fn generate(dir: &Path) -> Result<()> {
        let key = rcgen::KeyPair::generate()?;
        let mut params = rcgen::CertificateParams::new(vec!["admin.dev.example".to_owned()])?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Admin@dev.example");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "fabric-ccrt development");
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
        write_private(&dir.join("signcerts/cert.pem"), cert.pem().as_bytes())?;
        Ok(())
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
        let signature = self
            .key
            .sign(&self.rng, message)
            .map_err(|_| anyhow::anyhow!("signing failed"))?;
        low_s(signature.as_ref())
    }
}

/// The order of the P-256 group.
const P256_N: [u8; 32] = [
    0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xBC, 0xE6, 0xFA, 0xAD, 0xA7, 0x17, 0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63, 0x25, 0x51,
];

fn der_int(bytes: &[u8]) -> Vec<u8> {
    let trimmed: &[u8] = {
        let start = bytes
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(bytes.len() - 1);
        &bytes[start..]
    };
    let mut out = vec![0x02];
    let pad = trimmed[0] & 0x80 != 0;
    out.push((trimmed.len() + usize::from(pad)) as u8);
    if pad {
        out.push(0);
    }
    out.extend_from_slice(trimmed);
    out
}

/// Rewrites a DER ECDSA P-256 signature with `s` replaced by `n - s` when `s > n / 2`.
fn low_s(der: &[u8]) -> Result<Vec<u8>> {
    fn int(buf: &[u8]) -> Result<(&[u8], &[u8])> {
        if buf.len() < 2 || buf[0] != 0x02 || buf.len() < 2 + buf[1] as usize {
            bail!("malformed signature");
        }
        let len = buf[1] as usize;
        Ok((&buf[2..2 + len], &buf[2 + len..]))
    }
    if der.len() < 2 || der[0] != 0x30 {
        bail!("malformed signature");
    }
    let (r, rest) = int(&der[2..])?;
    let (s, _) = int(rest)?;
    let mut s32 = [0u8; 32];
    let s_trim: &[u8] = &s[s.iter().position(|b| *b != 0).unwrap_or(s.len())..];
    if s_trim.len() > 32 {
        bail!("malformed signature");
    }
    s32[32 - s_trim.len()..].copy_from_slice(s_trim);
    // half = n >> 1
    let mut half = [0u8; 32];
    let mut carry = 0u8;
    for (i, byte) in P256_N.iter().enumerate() {
        half[i] = (byte >> 1) | (carry << 7);
        carry = byte & 1;
    }
    if s32 > half {
        let mut borrow = 0i16;
        for i in (0..32).rev() {
            let d = i16::from(P256_N[i]) - i16::from(s32[i]) - borrow;
            borrow = i16::from(d < 0);
            s32[i] = (d + 256 * borrow) as u8;
        }
    }
    let body = [der_int(r), der_int(&s32)].concat();
    let mut out = vec![0x30, body.len() as u8];
    out.extend(body);
    Ok(out)
}

/// Checks that `signature` over `message` was made with the key of the certificate inside
/// `creator` (an encoded `msp.SerializedIdentity`).
pub fn verify(creator: &[u8], message: &[u8], signature: &[u8]) -> Result<SerializedIdentity> {
    let identity =
        SerializedIdentity::decode(creator).context("the creator is not a SerializedIdentity")?;
    let der = CertificateDer::from_pem_slice(&identity.id_bytes)
        .context("the creator's identity holds no PEM certificate")?;
    let cert = webpki::EndEntityCert::try_from(&der)
        .map_err(|e| anyhow::anyhow!("the creator's certificate cannot be parsed: {e}"))?;
    let algorithms = [
        webpki::ring::ECDSA_P256_SHA256,
        webpki::ring::ECDSA_P384_SHA384,
    ];
    let ok = algorithms
        .iter()
        .any(|alg| cert.verify_signature(*alg, message, signature).is_ok());
    if !ok {
        bail!("the proposal's signature does not match its creator's certificate");
    }
    Ok(identity)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let half = {
            let mut h = [0u8; 32];
            let mut c = 0;
            for (i, b) in P256_N.iter().enumerate() {
                h[i] = (b >> 1) | (c << 7);
                c = b & 1;
            }
            h
        };
        for i in 0..64 {
            let msg = format!("proposal {i}");
            let sig = id.sign(msg.as_bytes()).unwrap();
            let identity = verify(&id.creator(), msg.as_bytes(), &sig).unwrap();
            assert_eq!(identity.mspid, "SampleOrg");
            // S is in the lower half.
            let r_len = sig[3] as usize;
            let s = &sig[4 + r_len + 2..];
            let s = &s[s.iter().position(|b| *b != 0).unwrap()..];
            let mut s32 = [0u8; 32];
            s32[32 - s.len()..].copy_from_slice(s);
            assert!(s32 <= half);
            assert!(verify(&id.creator(), b"another message", &sig).is_err());
        }
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
    }
}
