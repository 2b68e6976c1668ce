//! Authentication against development MSPs, hand-made MSPs and foreign identities.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, SystemTime};

use super::*;
use crate::identity::Identity;

const ORG: &str = "SampleOrg";

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A data folder with a development MSP, and the manager of that MSP alone.
fn dev_peer(mspid: &str) -> (tempfile::TempDir, MspManager) {
    let data = tempfile::tempdir().unwrap();
    let msp = dev::create(data.path(), mspid).unwrap();
    let manager = MspManager::new(Msp::load(&msp, mspid).unwrap(), Vec::new());
    (data, manager)
}

/// Signs `message` with the identity of MSP folder `dir` and authenticates it.
fn sign_and_authenticate(
    manager: &MspManager,
    dir: &Path,
    mspid: &str,
) -> Result<Principal, AuthError> {
    let id = Identity::load(dir, mspid).unwrap();
    let signature = id.sign(b"proposal").unwrap();
    manager.authenticate(&id.creator(), b"proposal", &signature)
}

fn cert_der(dir: &Path) -> Vec<u8> {
    let pem = std::fs::read(dir.join("signcerts/cert.pem")).unwrap();
    CertificateDer::from_pem_slice(&pem).unwrap().to_vec()
}

#[test]
fn the_dev_msp_is_made_once_complete_and_private() {
    let data = tempfile::tempdir().unwrap();
    let msp = dev::create(data.path(), ORG).unwrap();
    assert_eq!(msp, data.path().join("msp"));
    let cert = std::fs::read(msp.join("signcerts/cert.pem")).unwrap();
    assert_eq!(dev::create(data.path(), ORG).unwrap(), msp);
    assert_eq!(std::fs::read(msp.join("signcerts/cert.pem")).unwrap(), cert);
    assert_eq!(
        std::fs::read(msp.join("cacerts/ca.pem")).unwrap(),
        std::fs::read(data.path().join("dev-ca/ca-cert.pem")).unwrap()
    );
    for folder in ["dev-ca", "msp/keystore"] {
        assert_eq!(mode(&data.path().join(folder)), 0o700, "{folder}");
    }
    for file in [
        "dev-ca/ca-key.pem",
        "msp/keystore/priv_sk",
        "msp/config.yaml",
    ] {
        assert_eq!(mode(&data.path().join(file)), 0o600, "{file}");
    }
    assert!(!msp.join("admincerts").exists(), "NodeOUs: no admincerts");
    let names: Vec<_> = std::fs::read_dir(data.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(names.iter().all(|n| !n.contains("partial")), "{names:?}");
}

#[test]
fn a_crash_between_the_ca_and_the_msp_reuses_the_ca() {
    let data = tempfile::tempdir().unwrap();
    let msp = dev::create(data.path(), ORG).unwrap();
    std::fs::remove_dir_all(&msp).unwrap();
    // A half-written MSP of a crashed process is not taken for the MSP.
    std::fs::create_dir_all(data.path().join(".msp.partial-1/signcerts")).unwrap();
    dev::create(data.path(), ORG).unwrap();
    let manager = MspManager::new(Msp::load(&msp, ORG).unwrap(), Vec::new());
    assert_eq!(
        sign_and_authenticate(&manager, &msp, ORG).unwrap().role,
        Role::Admin
    );
}

#[test]
fn a_legacy_self_signed_identity_is_replaced() {
    let data = tempfile::tempdir().unwrap();
    Identity::generate(&data.path().join("msp")).unwrap();
    let msp = dev::create(data.path(), ORG).unwrap();
    assert!(msp.join("config.yaml").is_file());
    assert!(
        data.path()
            .join("msp.self-signed/signcerts/cert.pem")
            .is_file()
    );
}

#[test]
fn the_dev_admin_authenticates_as_admin() {
    let (data, manager) = dev_peer(ORG);
    let who = sign_and_authenticate(&manager, &data.path().join("msp"), ORG).unwrap();
    assert_eq!(who.role, Role::Admin);
    assert_eq!(who.mspid, ORG);
    assert_eq!(
        who.id,
        "x509::CN=Admin@sampleorg.dev,OU=admin::CN=ca.sampleorg.dev,O=SampleOrg"
    );
    let by_cert = manager
        .authenticate_cert(&cert_der(&data.path().join("msp")))
        .unwrap();
    assert_eq!(by_cert, who);
}

#[test]
fn issued_identities_authenticate_with_their_role() {
    let (data, manager) = dev_peer(ORG);
    let member = data.path().join("users/alice");
    dev::issue(data.path(), "alice@example.com", &member, Role::Member).unwrap();
    let who = sign_and_authenticate(&manager, &member, ORG).unwrap();
    assert_eq!(who.role, Role::Member);
    assert!(
        who.id.starts_with("x509::CN=alice@example.com,OU=client::"),
        "{}",
        who.id
    );
    assert!(
        std::fs::read_to_string(member.join("keystore/priv_sk"))
            .unwrap()
            .contains("BEGIN PRIVATE KEY")
    );

    let admin = data.path().join("users/root");
    dev::issue(data.path(), "root", &admin, Role::Admin).unwrap();
    assert_eq!(
        sign_and_authenticate(&manager, &admin, ORG).unwrap().role,
        Role::Admin
    );

    let err = dev::issue(data.path(), "bob", &member, Role::Member).unwrap_err();
    assert!(err.to_string().contains("not empty"), "{err}");
    for bad in ["", "a/b", "../x", "é", &"x".repeat(65)] {
        assert!(dev::issue(data.path(), bad, &data.path().join("x"), Role::Member).is_err());
    }
}

#[test]
fn a_self_signed_identity_with_the_right_mspid_is_refused() {
    let (_data, manager) = dev_peer(ORG);
    let rogue = tempfile::tempdir().unwrap();
    Identity::generate(rogue.path()).unwrap();
    let err = sign_and_authenticate(&manager, rogue.path(), ORG).unwrap_err();
    assert!(matches!(err, AuthError::NotIssued { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with(
            "the certificate of creator in MSP SampleOrg was not issued by any of its CAs"
        ),
        "{err}"
    );
    let err = manager
        .authenticate_cert(&cert_der(rogue.path()))
        .unwrap_err();
    assert!(matches!(err, AuthError::UnknownIssuer { .. }), "{err:?}");

    // A CA that copies the name of the MSP's CA does not issue its identities.
    let (pem, key) = dev::make_ca("ca.sampleorg.dev", ORG).unwrap();
    let forger = rcgen::Issuer::from_ca_cert_pem(&pem, key).unwrap();
    let (forged, _) = dev::issue_leaf(&forger, "Admin@sampleorg.dev", "admin").unwrap();
    let der = CertificateDer::from_pem_slice(forged.as_bytes()).unwrap();
    let err = manager.local.validate(&der).unwrap_err();
    assert!(matches!(err, AuthError::NotIssued { .. }), "{err:?}");
}

#[test]
fn a_node_ou_counts_only_from_the_ca_the_config_names() {
    let (one, two) = (TestCa::new(), TestCa::new());
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("cacerts")).unwrap();
    std::fs::write(dir.path().join("cacerts/one.pem"), &one.pem).unwrap();
    std::fs::write(dir.path().join("cacerts/two.pem"), &two.pem).unwrap();
    let config = dev::NODE_OUS_CONFIG.replace("cacerts/ca.pem", "cacerts/one.pem");
    std::fs::write(dir.path().join("config.yaml"), config).unwrap();
    let msp = Msp::load(dir.path(), ORG).unwrap();
    let (from_one, _) = dev::issue_leaf(&one.issuer, "a", "admin").unwrap();
    let (from_two, _) = dev::issue_leaf(&two.issuer, "b", "admin").unwrap();
    let der = |pem: &str| CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
    assert_eq!(msp.validate(&der(&from_one)).unwrap().role, Role::Admin);
    let err = msp.validate(&der(&from_two)).unwrap_err();
    assert!(
        err.to_string().contains("its admin OU was not issued"),
        "{err}"
    );

    // The configured certificate must be one of the MSP's CAs.
    std::fs::remove_file(dir.path().join("cacerts/one.pem")).unwrap();
    std::fs::write(dir.path().join("cacerts/one-copy.pem"), &two.pem).unwrap();
    std::fs::write(dir.path().join("elsewhere.pem"), &one.pem).unwrap();
    let config = dev::NODE_OUS_CONFIG.replace("cacerts/ca.pem", "elsewhere.pem");
    std::fs::write(dir.path().join("config.yaml"), config).unwrap();
    let err = Msp::load(dir.path(), ORG).unwrap_err();
    assert!(err.to_string().contains("not a CA"), "{err}");
}

#[test]
fn an_unknown_mspid_is_refused() {
    let (data, manager) = dev_peer(ORG);
    let err = sign_and_authenticate(&manager, &data.path().join("msp"), "EvilMSP").unwrap_err();
    assert_eq!(
        err.to_string(),
        "MSP \"EvilMSP\" is not known to this peer (known: SampleOrg)"
    );
    let err = manager.authenticate(b"\xff\xff", b"m", b"s").unwrap_err();
    assert!(
        matches!(err, AuthError::NotSerializedIdentity(_)),
        "{err:?}"
    );
}

#[test]
fn a_wrong_signature_is_refused() {
    let (data, manager) = dev_peer(ORG);
    let id = Identity::load(&data.path().join("msp"), ORG).unwrap();
    let signature = id.sign(b"proposal").unwrap();
    let err = manager
        .authenticate(&id.creator(), b"another proposal", &signature)
        .unwrap_err();
    assert!(matches!(err, AuthError::BadSignature { .. }), "{err:?}");
    assert!(
        err.to_string().contains("signature does not verify"),
        "{err}"
    );
}

#[test]
fn a_node_ou_is_required_and_must_be_single() {
    let (data, manager) = dev_peer(ORG);
    let (_, issuer) = dev::load_ca(data.path()).unwrap();
    for (ou, expected) in [("sales", "none of the node OUs"), ("peer", "")] {
        let (cert_pem, _) = dev::issue_leaf(&issuer, "x", ou).unwrap();
        let der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap();
        let result = manager.local.validate(&der);
        if expected.is_empty() {
            assert_eq!(result.unwrap().role, Role::Member);
        } else {
            let err = result.unwrap_err();
            assert!(err.to_string().contains(expected), "{err}");
        }
    }
}

/// A CA made with rcgen, for MSPs written by hand.
struct TestCa {
    pem: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl TestCa {
    fn new() -> Self {
        let (pem, key) = dev::make_ca("ca.test", "Test").unwrap();
        let issuer = rcgen::Issuer::from_ca_cert_pem(&pem, key).unwrap();
        Self { pem, issuer }
    }

    /// A leaf `CN=cn` valid from `not_before` to `not_after`.
    fn leaf(&self, cn: &str, not_before: SystemTime, not_after: SystemTime) -> rcgen::Certificate {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = dev::params(Duration::ZERO).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        params.not_before = not_before.into();
        params.not_after = not_after.into();
        params.signed_by(&key, &self.issuer).unwrap()
    }
}

#[test]
fn admincerts_without_node_ous_make_admins() {
    let ca = TestCa::new();
    let now = SystemTime::now();
    let year = Duration::from_secs(365 * 24 * 3600);
    let admin = ca.leaf("admin", now - year, now + year);
    let user = ca.leaf("user", now - year, now + year);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("cacerts")).unwrap();
    std::fs::create_dir_all(dir.path().join("admincerts")).unwrap();
    std::fs::write(dir.path().join("cacerts/ca.pem"), &ca.pem).unwrap();
    std::fs::write(dir.path().join("admincerts/admin.pem"), admin.pem()).unwrap();
    let msp = Msp::load(dir.path(), "Org1MSP").unwrap();
    assert_eq!(msp.validate(admin.der()).unwrap().role, Role::Admin);
    assert_eq!(msp.validate(user.der()).unwrap().role, Role::Member);

    // An expired certificate of the same CA is refused, as is one not yet valid.
    let expired = ca.leaf("old", now - 2 * year, now - year);
    let err = msp.validate(expired.der()).unwrap_err();
    assert!(matches!(err, AuthError::NotValidNow { .. }), "{err:?}");
    assert!(err.to_string().contains("not valid at this time"), "{err}");
    let future = ca.leaf("new", now + year, now + 2 * year);
    assert!(matches!(
        msp.validate(future.der()),
        Err(AuthError::NotValidNow { .. })
    ));
}

#[test]
fn msp_folders_that_are_not_msps_are_named_in_errors() {
    let dir = tempfile::tempdir().unwrap();
    let err = Msp::load(dir.path(), ORG).unwrap_err();
    assert!(format!("{err:#}").contains("cacerts"), "{err:#}");
    std::fs::create_dir_all(dir.path().join("cacerts")).unwrap();
    std::fs::write(dir.path().join("cacerts/junk.pem"), "not a certificate").unwrap();
    let err = Msp::load(dir.path(), ORG).unwrap_err();
    assert!(format!("{err:#}").contains("junk.pem"), "{err:#}");
}

#[test]
fn members_of_a_trusted_msp_authenticate_with_their_own_mspid() {
    let (org1, _) = dev_peer("Org1MSP");
    let (org2, _) = dev_peer("Org2MSP");
    let manager = MspManager::new(
        Msp::load(&org1.path().join("msp"), "Org1MSP").unwrap(),
        vec![Msp::load(&org2.path().join("msp"), "Org2MSP").unwrap()],
    );
    let member = org2.path().join("users/carol");
    dev::issue(org2.path(), "carol", &member, Role::Member).unwrap();
    let who = sign_and_authenticate(&manager, &member, "Org2MSP").unwrap();
    assert_eq!((who.mspid.as_str(), who.role), ("Org2MSP", Role::Member));
    // Org2's administrator is an administrator of Org2, not of Org1.
    let admin2 = sign_and_authenticate(&manager, &org2.path().join("msp"), "Org2MSP").unwrap();
    assert_eq!(
        (admin2.mspid.as_str(), admin2.role),
        ("Org2MSP", Role::Admin)
    );
    // Claiming the other organisation does not work.
    let err = sign_and_authenticate(&manager, &member, "Org1MSP").unwrap_err();
    assert!(matches!(err, AuthError::NotIssued { .. }), "{err:?}");
    assert_eq!(
        manager.authenticate_cert(&cert_der(&member)).unwrap().mspid,
        "Org2MSP"
    );
}

#[test]
fn the_tls_server_certificate_is_made_once_for_its_hosts() {
    let dir = tempfile::tempdir().unwrap();
    let tls = dir.path().join("tls");
    let hosts = ["peer0.example".to_owned(), "127.0.0.1".to_owned()];
    let (cert, key, ca) = dev::tls_server_cert(&tls, &hosts).unwrap();
    assert_eq!(mode(&key), 0o600);
    let first = std::fs::read(&cert).unwrap();
    assert_eq!(dev::tls_server_cert(&tls, &[]).unwrap().0, cert);
    assert_eq!(std::fs::read(&cert).unwrap(), first);

    let ca_der = CertificateDer::from_pem_file(&ca).unwrap();
    let anchors = [webpki::anchor_from_trusted_cert(&ca_der).unwrap()];
    let der = CertificateDer::from_pem_slice(&first).unwrap();
    let server = webpki::EndEntityCert::try_from(&der).unwrap();
    server
        .verify_for_usage(
            CHAIN_ALGORITHMS,
            &anchors,
            &[],
            UnixTime::now(),
            webpki::KeyUsage::server_auth(),
            None,
            None,
        )
        .unwrap();
    for host in ["peer0.example", "127.0.0.1"] {
        let name = rustls_pki_types::ServerName::try_from(host).unwrap();
        server.verify_is_valid_for_subject_name(&name).unwrap();
    }
    let other = rustls_pki_types::ServerName::try_from("other.example").unwrap();
    assert!(server.verify_is_valid_for_subject_name(&other).is_err());
}
