//! The development MSP a peer makes in its data folder on first start, the member identities
//! the CLI issues from it, and a development TLS server certificate.
//!
//! ```text
//! <data>/dev-ca/ca-key.pem, ca-cert.pem     the CA (folder 0700, files 0600)
//! <data>/msp/cacerts/ca.pem                 the organisation's MSP definition …
//! <data>/msp/config.yaml                    … NodeOUs client, peer, admin, orderer
//! <data>/msp/signcerts/cert.pem             … and the administrator the CLI signs with
//! <data>/msp/keystore/priv_sk                   (CN=Admin@<mspid lowercase>.dev, OU=admin)
//! ```
//!
//! With NodeOUs, Fabric wants no `admincerts/`: the administrator is known by its OU. Each folder
//! is written under a temporary name and renamed into place, so a crash leaves either nothing
//! or a complete folder.

use std::os::unix::fs::DirBuilderExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, anyhow, bail};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SerialNumber,
};

use super::Role;
use crate::identity::write_private;

/// The `config.yaml` of an MSP whose node OUs are certified by `cacerts/ca.pem`.
pub const NODE_OUS_CONFIG: &str = "NodeOUs:
  Enable: true
  ClientOUIdentifier:
    Certificate: cacerts/ca.pem
    OrganizationalUnitIdentifier: client
  PeerOUIdentifier:
    Certificate: cacerts/ca.pem
    OrganizationalUnitIdentifier: peer
  AdminOUIdentifier:
    Certificate: cacerts/ca.pem
    OrganizationalUnitIdentifier: admin
  OrdererOUIdentifier:
    Certificate: cacerts/ca.pem
    OrganizationalUnitIdentifier: orderer
";

/// Leaf certificates are valid for ten years.
const LEAF_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// Certificates start an hour in the past, for clocks that differ a little.
const CLOCK_SKEW: Duration = Duration::from_secs(3600);

fn mkdir(path: &Path, mode: u32) -> Result<()> {
    std::fs::DirBuilder::new()
        .mode(mode)
        .create(path)
        .with_context(|| format!("cannot create {}", path.display()))
}

/// A fresh sibling of `target` to build it in.
fn staging(target: &Path) -> Result<PathBuf> {
    let name = target
        .file_name()
        .with_context(|| format!("{} has no folder name", target.display()))?;
    let staging = target.with_file_name(format!(
        ".{}.partial-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    if staging.exists() {
        std::fs::remove_dir_all(&staging)
            .with_context(|| format!("cannot remove {}", staging.display()))?;
    }
    Ok(staging)
}

/// Renames `staging` to `target`; if another process got there first, keeps theirs.
fn commit(staging: &Path, target: &Path) -> Result<()> {
    if let Err(e) = std::fs::rename(staging, target) {
        let _ = std::fs::remove_dir_all(staging);
        if !target.join("signcerts").is_dir() && !target.join("ca-cert.pem").is_file() {
            return Err(e).with_context(|| format!("cannot create {}", target.display()));
        }
    }
    if let Some(parent) = target.parent() {
        // Make the rename durable.
        let _ = std::fs::File::open(parent).and_then(|d| d.sync_all());
    }
    Ok(())
}

fn random_serial() -> Result<SerialNumber> {
    let mut bytes = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| anyhow!("no randomness for a serial number"))?;
    bytes[0] &= 0x7f;
    Ok(SerialNumber::from_slice(&bytes))
}

/// Parameters valid from an hour ago for `validity`, with a random serial number.
pub(super) fn params(validity: Duration) -> Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let now = SystemTime::now();
    params.not_before = (now - CLOCK_SKEW).into();
    params.not_after = (now + validity).into();
    params.serial_number = Some(random_serial()?);
    Ok(params)
}

/// A self-signed CA certificate named `cn` (and `o`); returns its PEM and its key.
pub(super) fn make_ca(cn: &str, o: &str) -> Result<(String, KeyPair)> {
    let key = KeyPair::generate()?;
    let mut ca = params(2 * LEAF_VALIDITY)?;
    ca.distinguished_name.push(DnType::CommonName, cn);
    ca.distinguished_name.push(DnType::OrganizationName, o);
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok((ca.self_signed(&key)?.pem(), key))
}

/// The dev CA of `data_dir`: its certificate PEM and an issuer.
pub(super) fn load_ca(data_dir: &Path) -> Result<(String, Issuer<'static, KeyPair>)> {
    let dir = data_dir.join("dev-ca");
    let read = |file: &str| {
        let path = dir.join(file);
        std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))
    };
    let (cert_pem, key_pem) = (read("ca-cert.pem")?, read("ca-key.pem")?);
    let key = KeyPair::from_pem(&key_pem)
        .with_context(|| format!("{} is not a key", dir.join("ca-key.pem").display()))?;
    let issuer = Issuer::from_ca_cert_pem(&cert_pem, key)
        .with_context(|| format!("{} is not a CA", dir.join("ca-cert.pem").display()))?;
    Ok((cert_pem, issuer))
}

/// Makes `<data_dir>/dev-ca` unless present.
fn ensure_ca(data_dir: &Path, mspid: &str) -> Result<()> {
    let dir = data_dir.join("dev-ca");
    if dir.is_dir() {
        return Ok(());
    }
    let (cert_pem, key) = make_ca(&format!("ca.{}.dev", mspid.to_lowercase()), mspid)?;
    let stage = staging(&dir)?;
    mkdir(&stage, 0o700)?;
    write_private(&stage.join("ca-key.pem"), key.serialize_pem().as_bytes())?;
    write_private(&stage.join("ca-cert.pem"), cert_pem.as_bytes())?;
    commit(&stage, &dir)
}

/// Issues a leaf identity (`CN=cn`, `OU=ou`) from `issuer`; returns (certificate PEM, key PEM).
pub(super) fn issue_leaf(
    issuer: &Issuer<'_, KeyPair>,
    cn: &str,
    ou: &str,
) -> Result<(String, String)> {
    let key = KeyPair::generate()?;
    let mut leaf = params(LEAF_VALIDITY)?;
    leaf.distinguished_name.push(DnType::CommonName, cn);
    leaf.distinguished_name
        .push(DnType::OrganizationalUnitName, ou);
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.use_authority_key_identifier_extension = true;
    Ok((leaf.signed_by(&key, issuer)?.pem(), key.serialize_pem()))
}

/// Writes an MSP folder in Fabric's layout at `dir` (which must not exist).
fn write_msp(dir: &Path, ca_pem: &str, cert_pem: &str, key_pem: &str) -> Result<()> {
    mkdir(dir, 0o755)?;
    for (sub, mode) in [
        ("cacerts", 0o755),
        ("signcerts", 0o755),
        ("keystore", 0o700),
    ] {
        mkdir(&dir.join(sub), mode)?;
    }
    write_private(&dir.join("cacerts/ca.pem"), ca_pem.as_bytes())?;
    write_private(&dir.join("config.yaml"), NODE_OUS_CONFIG.as_bytes())?;
    write_private(&dir.join("keystore/priv_sk"), key_pem.as_bytes())?;
    write_private(&dir.join("signcerts/cert.pem"), cert_pem.as_bytes())
}

/// Whether `msp` is the self-signed identity an earlier `Identity::load_or_create` wrote: its
/// own CA, no `config.yaml`, no dev CA beside it.
fn is_legacy_self_signed(data_dir: &Path, msp: &Path) -> bool {
    let read = |p: &str| std::fs::read(msp.join(p)).ok();
    !data_dir.join("dev-ca").exists()
        && !msp.join("config.yaml").exists()
        && read("signcerts/cert.pem").is_some_and(|c| Some(c) == read("cacerts/ca.pem"))
}

/// Makes the development MSP of `data_dir` unless present and returns its folder
/// (`<data_dir>/msp`). A self-signed identity left there by an earlier version is moved to
/// `<data_dir>/msp.self-signed` first.
pub fn create(data_dir: &Path, mspid: &str) -> Result<PathBuf> {
    let msp = data_dir.join("msp");
    if msp.exists() {
        if !is_legacy_self_signed(data_dir, &msp) {
            return Ok(msp);
        }
        let aside = data_dir.join("msp.self-signed");
        std::fs::rename(&msp, &aside)
            .with_context(|| format!("cannot move {} aside", msp.display()))?;
        tracing::warn!(
            old = %aside.display(),
            "replaced a self-signed identity with the development MSP"
        );
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    ensure_ca(data_dir, mspid)?;
    let (ca_pem, issuer) = load_ca(data_dir)?;
    let admin = format!("Admin@{}.dev", mspid.to_lowercase());
    let (cert_pem, key_pem) = issue_leaf(&issuer, &admin, "admin")?;
    let stage = staging(&msp)?;
    write_msp(&stage, &ca_pem, &cert_pem, &key_pem)?;
    commit(&stage, &msp)?;
    Ok(msp)
}

/// Whether `name` may name an identity: `[A-Za-z0-9@._-]{1,64}`.
fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'@' | b'.' | b'_' | b'-'))
}

/// Issues identity `name` from the development CA of `data_dir` (`OU=client` for a member,
/// `OU=admin` for an administrator) as an MSP folder at `out_dir`, which must not exist or be
/// empty: `signcerts/cert.pem`, `keystore/priv_sk` (PKCS#8), `cacerts/ca.pem`, `config.yaml`.
pub fn issue(data_dir: &Path, name: &str, out_dir: &Path, role: Role) -> Result<()> {
    if !valid_name(name) {
        bail!("{name:?} is not a valid identity name: 1 to 64 of A-Z a-z 0-9 @ . _ -");
    }
    if std::fs::read_dir(out_dir).is_ok_and(|mut d| d.next().is_some()) {
        bail!("{} already exists and is not empty", out_dir.display());
    }
    let (ca_pem, issuer) =
        load_ca(data_dir).context("no development CA (is this a peer's data folder?)")?;
    let ou = match role {
        Role::Admin => "admin",
        Role::Member => "client",
    };
    let (cert_pem, key_pem) = issue_leaf(&issuer, name, ou)?;
    if let Some(parent) = out_dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let stage = staging(out_dir)?;
    write_msp(&stage, &ca_pem, &cert_pem, &key_pem)?;
    // Replaces an empty folder; fails on a folder filled meanwhile.
    std::fs::rename(&stage, out_dir).map_err(|e| {
        let _ = std::fs::remove_dir_all(&stage);
        anyhow!("cannot create {}: {e}", out_dir.display())
    })
}

/// Makes, unless `<dir>/server.crt` exists, a TLS CA (`ca.crt`) and a server certificate
/// (`server.crt`, key `server.key`) for `hosts` (DNS names, or IP addresses as IP SANs;
/// `localhost` and `127.0.0.1` when empty). Returns (certificate, key, CA) paths.
pub fn tls_server_cert(dir: &Path, hosts: &[String]) -> Result<(PathBuf, PathBuf, PathBuf)> {
    let (cert, key, ca) = (
        dir.join("server.crt"),
        dir.join("server.key"),
        dir.join("ca.crt"),
    );
    if cert.is_file() {
        return Ok((cert, key, ca));
    }
    if !dir.is_dir() {
        // Readable by others: clients need `ca.crt`; the key itself is 0600.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let hosts = if hosts.is_empty() {
        vec!["localhost".to_owned(), "127.0.0.1".to_owned()]
    } else {
        hosts.to_vec()
    };
    let (ca_pem, ca_key) = make_ca("tls-ca.dev", "fabric-ccrt development")?;
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key)?;
    let server_key = KeyPair::generate()?;
    let mut server = params(LEAF_VALIDITY)?;
    server.subject_alt_names = CertificateParams::new(hosts.clone())
        .with_context(|| format!("not host names: {hosts:?}"))?
        .subject_alt_names;
    server
        .distinguished_name
        .push(DnType::CommonName, hosts[0].as_str());
    server.is_ca = IsCa::ExplicitNoCa;
    server.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server.use_authority_key_identifier_extension = true;
    let server_pem = server.signed_by(&server_key, &issuer)?.pem();
    let public = |path: &Path| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
            .with_context(|| format!("cannot make {} readable", path.display()))
    };
    write_private(&ca, ca_pem.as_bytes())?;
    public(&ca)?;
    write_private(&key, server_key.serialize_pem().as_bytes())?;
    // Written last: its presence means the set is complete.
    write_private(&cert, server_pem.as_bytes())?;
    public(&cert)?;
    Ok((cert, key, ca))
}
