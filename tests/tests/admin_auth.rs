//! The admin API authenticates every call: a signed proposal whose creator an MSP of the peer
//! issued (UNAUTHENTICATED otherwise), authorized by role (PERMISSION_DENIED otherwise), over
//! TLS when asked for, mutual TLS when required, and never beyond loopback without TLS.

#![allow(unused_crate_dependencies, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use peer_support::proposal::{ProposalSpec, build};
use proto::admin::ExecuteRequest;
use proto::admin::execute_request::Kind;
use proto::protos::{ChaincodeInput, SignedProposal};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tests::env::{kv_chaincode, workspace_binary};
use tests::peer_process::{CliOutput, PeerProcess, free_port};

const PUT: &str = r#"{"Args":["put","k","v"]}"#;
const GET: &str = r#"{"Args":["get","k"]}"#;

fn kv_path() -> String {
    kv_chaincode().display().to_string()
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// `peer chaincode install -n kv -v <version>` of the kv chaincode, with `extra` arguments.
fn install(peer: &PeerProcess, version: &str, extra: &[&str]) -> CliOutput {
    let kv = kv_path();
    let mut args = vec![
        "chaincode",
        "install",
        "-n",
        "kv",
        "-v",
        version,
        "-l",
        "binary",
        "-p",
        &kv,
    ];
    args.extend_from_slice(extra);
    peer.cli(&args)
}

/// `peer chaincode instantiate -n kv -v <version>`, with `extra` arguments.
fn instantiate(peer: &PeerProcess, version: &str, extra: &[&str]) -> CliOutput {
    let mut args = vec![
        "chaincode",
        "instantiate",
        "-n",
        "kv",
        "-v",
        version,
        "-c",
        r#"{"Args":["init"]}"#,
    ];
    args.extend_from_slice(extra);
    peer.cli(&args)
}

/// `peer chaincode invoke|query -n kv -c <ctor>`, with `extra` arguments.
fn call(peer: &PeerProcess, how: &str, ctor: &str, extra: &[&str]) -> CliOutput {
    let mut args = vec!["chaincode", how, "-n", "kv", "-c", ctor];
    args.extend_from_slice(extra);
    peer.cli(&args)
}

/// `peer identity issue --name <name> --output <dir>` (`--admin` when `admin`).
fn issue(peer: &PeerProcess, name: &str, dir: &Path, admin: bool) -> CliOutput {
    let mut args = vec![
        "identity",
        "issue",
        "--name",
        name,
        "--output",
        path_str(dir),
    ];
    if admin {
        args.push("--admin");
    }
    peer.cli(&args)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn write(path: &Path, text: &str) -> PathBuf {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, text).unwrap();
    path.to_path_buf()
}

/// A self-signed CA certificate (PEM) and its issuer.
fn make_ca(cn: &str) -> (String, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let pem = params.self_signed(&key).unwrap().pem();
    (pem, Issuer::new(params, key))
}

/// A leaf certificate for `sans`, issued by `issuer`: (certificate PEM, key PEM).
fn make_leaf(
    issuer: &Issuer<'_, KeyPair>,
    cn: &str,
    sans: &[&str],
    usage: ExtendedKeyUsagePurpose,
) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(sans.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![usage];
    params.use_authority_key_identifier_extension = true;
    let cert = params.signed_by(&key, issuer).unwrap().pem();
    (cert, key.serialize_pem())
}

/// An MSP folder whose identity is its own CA: a self-signed certificate claiming to be an
/// administrator, its PKCS#8 key at `keystore/priv_sk`.
fn self_made_msp(dir: &Path) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "mallory");
    params
        .distinguished_name
        .push(DnType::OrganizationalUnitName, "admin");
    let cert = params.self_signed(&key).unwrap().pem();
    write(&dir.join("signcerts/cert.pem"), &cert);
    write(&dir.join("cacerts/ca.pem"), &cert);
    write(&dir.join("keystore/priv_sk"), &key.serialize_pem());
}

/// A proposal to `chaincode` with `function`, created by `mspid`/`certificate_pem` (both
/// empty: no creator at all), carrying `signature`.
fn proposal(
    chaincode: &str,
    function: &str,
    mspid: &str,
    certificate_pem: Bytes,
    signature: Bytes,
) -> SignedProposal {
    build(&ProposalSpec {
        channel_id: if chaincode == "_lifecycle" {
            String::new()
        } else {
            "mychannel".into()
        },
        chaincode: chaincode.into(),
        input: ChaincodeInput {
            args: vec![Bytes::copy_from_slice(function.as_bytes())],
            ..ChaincodeInput::default()
        },
        mspid: mspid.into(),
        certificate_pem,
        nonce: peer::client::nonce(),
        ..ProposalSpec::default()
    })
    .signed(signature)
}

/// The status of a `lifecycle` call: the call's own error or its stream's first item.
async fn lifecycle_status(addr: &str, signed: SignedProposal) -> tonic::Status {
    let mut admin = peer::client::connect(&peer::cli::ClientOptions::to(addr))
        .await
        .unwrap();
    match admin.lifecycle(signed).await {
        Err(status) => status,
        Ok(response) => match response.into_inner().next().await {
            Some(Err(status)) => status,
            other => panic!("the call was not refused: {other:?}"),
        },
    }
}

/// The status of an `execute` call: the call's own error or its stream's first item.
async fn execute_status(addr: &str, signed: SignedProposal) -> tonic::Status {
    let mut admin = peer::client::connect(&peer::cli::ClientOptions::to(addr))
        .await
        .unwrap();
    let request = ExecuteRequest {
        kind: Kind::Invoke as i32,
        signed_proposal: Some(signed),
    };
    match admin.execute(request).await {
        Err(status) => status,
        Ok(response) => match response.into_inner().next().await {
            Some(Err(status)) => status,
            other => panic!("the call was not refused: {other:?}"),
        },
    }
}

/// A `peer node start` run by hand (for addresses `PeerProcess` does not choose), killed on
/// drop; its stderr goes to `log`.
struct HandStarted {
    child: Option<Child>,
    log: PathBuf,
}

impl HandStarted {
    fn spawn(data: &Path, env: &[(&str, &str)]) -> Self {
        std::fs::create_dir_all(data).unwrap();
        let log = data.join("peer.log");
        let mut cmd = Command::new(workspace_binary("peer"));
        cmd.args(["node", "start"])
            .env_remove("RUST_LOG")
            .env("CORE_PEER_FILESYSTEMPATH", data)
            .env(
                "CORE_PEER_CHAINCODELISTENADDRESS",
                format!("127.0.0.1:{}", free_port()),
            )
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        for (k, v) in env {
            cmd.env(k, v);
        }
        Self {
            child: Some(cmd.spawn().unwrap()),
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits up to `within` for the exit; `None` while it still runs.
    fn exit_within(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Waits up to 20 s for `addr` to accept connections.
    fn listening(&mut self, addr: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(addr).is_ok() {
                return true;
            }
            if self.exit_within(Duration::ZERO).is_some() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for HandStarted {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- peer log ---\n{}", self.log());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_credentials_are_unauthenticated() {
    let dir = tempfile::tempdir().unwrap();
    let peer = PeerProcess::start(dir.path(), &[], &[]);
    let admin_cert = Bytes::from(std::fs::read(dir.path().join("msp/signcerts/cert.pem")).unwrap());

    // No creator, no signature.
    let status = lifecycle_status(
        &peer.admin,
        proposal(
            "_lifecycle",
            "QueryInstalledChaincodes",
            "",
            Bytes::new(),
            Bytes::new(),
        ),
    )
    .await;
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
    assert!(
        status.message().contains("MSP \"\" is not known"),
        "{status:?}"
    );
    let status = execute_status(
        &peer.admin,
        proposal("kv", "get", "", Bytes::new(), Bytes::new()),
    )
    .await;
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
    assert!(
        status.message().contains("MSP \"\" is not known"),
        "{status:?}"
    );

    // The administrator's certificate, but no signature.
    let status = lifecycle_status(
        &peer.admin,
        proposal(
            "_lifecycle",
            "QueryInstalledChaincodes",
            "SampleOrg",
            admin_cert.clone(),
            Bytes::new(),
        ),
    )
    .await;
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
    assert!(
        status.message().contains("signature does not verify"),
        "{status:?}"
    );
    let status = execute_status(
        &peer.admin,
        proposal("kv", "get", "SampleOrg", admin_cert, Bytes::new()),
    )
    .await;
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
    assert!(
        status.message().contains("signature does not verify"),
        "{status:?}"
    );
}

#[test]
fn a_self_made_certificate_is_unauthenticated() {
    let dir = tempfile::tempdir().unwrap();
    let peer = PeerProcess::start(dir.path(), &[], &[]);
    install(&peer, "1", &[]).ok();
    instantiate(&peer, "1", &[]).ok();
    let evil = dir.path().join("self-made-msp");
    self_made_msp(&evil);
    let evil = path_str(&evil);

    for (mspid, reason) in [
        (
            "SampleOrg",
            "the certificate of creator in MSP SampleOrg was not issued by any of its CAs",
        ),
        (
            "EvilMSP",
            "MSP \"EvilMSP\" is not known to this peer (known: SampleOrg)",
        ),
    ] {
        let as_evil = ["--mspconfigpath", evil, "--localMspId", mspid];
        let out = install(&peer, "2", &as_evil).failed();
        assert!(
            out.stderr.contains("Error: UNAUTHENTICATED: ") && out.stderr.contains(reason),
            "install as {mspid}: {}",
            out.stderr
        );
        let out = call(&peer, "invoke", PUT, &as_evil).failed();
        assert!(
            out.stderr.contains("Error: UNAUTHENTICATED: ") && out.stderr.contains(reason),
            "invoke as {mspid}: {}",
            out.stderr
        );
    }

    // Nothing was installed or written, and the peer still serves its administrator.
    let list = peer.cli(&["chaincode", "list", "--installed"]).ok().stdout;
    assert!(
        list.contains("Version: 1") && !list.contains("Version: 2"),
        "{list}"
    );
    let out = call(&peer, "query", GET, &[]).failed();
    assert!(out.stderr.contains("no such key: k"), "{}", out.stderr);
    call(&peer, "invoke", PUT, &[]).ok();
    assert_eq!(call(&peer, "query", GET, &[]).ok().stdout, "v\n");
}

#[test]
fn a_member_may_invoke_but_not_install() {
    let dir = tempfile::tempdir().unwrap();
    let peer = PeerProcess::start(dir.path(), &[], &[]);
    install(&peer, "1", &[]).ok();
    instantiate(&peer, "1", &[]).ok();
    let member = dir.path().join("user1-msp");
    issue(&peer, "user1", &member, false).ok();
    let as_member = ["--mspconfigpath", path_str(&member)];

    let out = install(&peer, "2", &as_member).failed();
    assert!(
        out.stderr
            .contains("Error: PERMISSION_DENIED: install needs an administrator of SampleOrg"),
        "{}",
        out.stderr
    );
    let mut args = vec!["lifecycle", "chaincode", "queryinstalled"];
    args.extend_from_slice(&as_member);
    let out = peer.cli(&args).failed();
    assert!(
        out.stderr.contains(
            "Error: PERMISSION_DENIED: queryinstalled needs an administrator of SampleOrg"
        ),
        "{}",
        out.stderr
    );

    let out = call(&peer, "invoke", PUT, &as_member).ok();
    assert!(
        out.stderr
            .contains("Chaincode invoke successful. result: status:200"),
        "{}",
        out.stderr
    );
    assert_eq!(call(&peer, "query", GET, &as_member).ok().stdout, "v\n");
}

#[test]
fn an_administrator_may_do_everything() {
    let dir = tempfile::tempdir().unwrap();
    let peer = PeerProcess::start(dir.path(), &[], &[]);
    let out = install(&peer, "1", &[]).ok();
    assert!(out.stderr.contains("Installed kv:1"), "{}", out.stderr);
    let out = instantiate(&peer, "1", &[]).ok();
    assert!(
        out.stderr
            .contains("Instantiated kv:1 on channel mychannel"),
        "{}",
        out.stderr
    );
    let out = call(&peer, "invoke", PUT, &[]).ok();
    assert!(
        out.stderr
            .contains("Chaincode invoke successful. result: status:200"),
        "{}",
        out.stderr
    );
    assert_eq!(call(&peer, "query", GET, &[]).ok().stdout, "v\n");

    let admin2 = dir.path().join("admin2-msp");
    issue(&peer, "admin2", &admin2, true).ok();
    let out = install(&peer, "2", &["--mspconfigpath", path_str(&admin2)]).ok();
    assert!(out.stderr.contains("Installed kv:2"), "{}", out.stderr);
    let list = peer.cli(&["chaincode", "list", "--installed"]).ok().stdout;
    assert!(list.contains("Version: 2"), "{list}");
}

#[test]
fn keys_in_sec1_form_sign_too() {
    let dir = tempfile::tempdir().unwrap();
    let peer = PeerProcess::start(dir.path(), &[], &[]);
    install(&peer, "1", &[]).ok();
    instantiate(&peer, "1", &[]).ok();
    let sec1 = dir.path().join("sec1-msp");
    copy_dir(&dir.path().join("msp"), &sec1);
    let key = sec1.join("keystore/priv_sk");
    assert!(
        std::fs::read_to_string(&key)
            .unwrap()
            .contains("-----BEGIN PRIVATE KEY-----"),
        "the development MSP's key is PKCS#8"
    );
    let secret = {
        use p256::pkcs8::DecodePrivateKey;
        p256::SecretKey::from_pkcs8_pem(&std::fs::read_to_string(&key).unwrap()).unwrap()
    };
    let sec1_pem = secret.to_sec1_pem(p256::pkcs8::LineEnding::LF).unwrap();
    std::fs::write(&key, sec1_pem.as_bytes()).unwrap();
    let pem = std::fs::read_to_string(&key).unwrap();
    assert!(pem.starts_with("-----BEGIN EC PRIVATE KEY-----"), "{pem}");

    let out = call(&peer, "invoke", PUT, &["--mspconfigpath", path_str(&sec1)]).ok();
    assert!(
        out.stderr
            .contains("Chaincode invoke successful. result: status:200"),
        "{}",
        out.stderr
    );
    assert_eq!(call(&peer, "query", GET, &[]).ok().stdout, "v\n");
}

#[test]
fn tls_on_the_admin_api() {
    let dir = tempfile::tempdir().unwrap();
    let peer = PeerProcess::start(dir.path(), &[("CORE_PEER_TLS_ENABLED", "true")], &[]);
    // The certificate is generated before the admin port answers.
    let ca = dir.path().join("tls/ca.crt");
    assert!(ca.is_file(), "the peer generated its TLS CA");
    let tls = ["--tls", "--cafile", path_str(&ca)];

    let out = install(&peer, "1", &tls).ok();
    assert!(out.stderr.contains("Installed kv:1"), "{}", out.stderr);
    let out = instantiate(&peer, "1", &tls).ok();
    assert!(
        out.stderr
            .contains("Instantiated kv:1 on channel mychannel"),
        "{}",
        out.stderr
    );
    let out = call(&peer, "invoke", PUT, &tls).ok();
    assert!(
        out.stderr
            .contains("Chaincode invoke successful. result: status:200"),
        "{}",
        out.stderr
    );
    assert_eq!(call(&peer, "query", GET, &tls).ok().stdout, "v\n");

    // Plain text does not reach a TLS server.
    let out = peer
        .cli_with(
            &["chaincode", "query", "-n", "kv", "-c", GET],
            &[("CORE_PEER_TLS_ENABLED", "false")],
        )
        .failed();
    assert_eq!(out.stdout, "", "{}", out.stderr);
    assert!(out.stderr.starts_with("Error: "), "{}", out.stderr);
    println!("plain text to TLS: {}", out.stderr);
}

#[test]
fn beyond_loopback_needs_tls() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let everywhere = format!("0.0.0.0:{port}");

    // TLS off: the peer refuses to start.
    let mut peer = HandStarted::spawn(
        &dir.path().join("plain"),
        &[("CORE_PEER_LISTENADDRESS", everywhere.as_str())],
    );
    let status = peer
        .exit_within(Duration::from_secs(20))
        .expect("the peer exits");
    assert!(!status.success(), "{status}");
    let log = peer.log();
    assert!(
        log.contains("peer.listenAddress")
            && log.contains("beyond loopback")
            && log.contains("TLS"),
        "{log}"
    );
    drop(peer);

    // TLS on: it starts, and serves the CLI over TLS on loopback. (PeerProcess would wait on
    // an address of its own choosing, so the peer is started by hand.)
    let data = dir.path().join("tls");
    let mut peer = HandStarted::spawn(
        &data,
        &[
            ("CORE_PEER_LISTENADDRESS", everywhere.as_str()),
            ("CORE_PEER_TLS_ENABLED", "true"),
        ],
    );
    let loopback = format!("127.0.0.1:{port}");
    assert!(peer.listening(&loopback), "{}", peer.log());
    let ca = data.join("tls/ca.crt");
    let out = Command::new(workspace_binary("peer"))
        .args(["chaincode", "list", "--installed", "--tls", "--cafile"])
        .arg(&ca)
        .args(["--peerAddresses", &loopback])
        .env_remove("RUST_LOG")
        .env("CORE_PEER_FILESYSTEMPATH", &data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        peer.exit_within(Duration::ZERO).is_none(),
        "the peer still runs"
    );
}

#[test]
fn mutual_tls_requires_a_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let (ca_pem, ca) = make_ca("test-tls-ca");
    let (server_pem, server_key) = make_leaf(
        &ca,
        "localhost",
        &["127.0.0.1", "localhost"],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let (client_pem, client_key) = make_leaf(&ca, "cli", &[], ExtendedKeyUsagePurpose::ClientAuth);
    let ca_file = write(&certs.join("ca.crt"), &ca_pem);
    let server_cert = write(&certs.join("server.crt"), &server_pem);
    let server_key = write(&certs.join("server.key"), &server_key);
    let client_cert = write(&certs.join("client.crt"), &client_pem);
    let client_key = write(&certs.join("client.key"), &client_key);

    let peer = PeerProcess::start(
        &dir.path().join("data"),
        &[
            ("CORE_PEER_TLS_ENABLED", "true"),
            ("CORE_PEER_TLS_CERT_FILE", path_str(&server_cert)),
            ("CORE_PEER_TLS_KEY_FILE", path_str(&server_key)),
            ("CORE_PEER_TLS_ROOTCERT_FILE", path_str(&ca_file)),
            ("CORE_PEER_TLS_CLIENTAUTHREQUIRED", "true"),
            ("CORE_PEER_TLS_CLIENTROOTCAS_FILES", path_str(&ca_file)),
        ],
        &[],
    );
    let tls = ["--tls", "--cafile", path_str(&ca_file)];

    // No client certificate: no call gets through.
    let out = install(&peer, "1", &tls).failed();
    assert!(
        out.stderr.starts_with("Error: ") && !out.stderr.contains("Installed kv:1"),
        "{}",
        out.stderr
    );
    println!("TLS without a client certificate: {}", out.stderr);

    let mtls = [
        "--tls",
        "--cafile",
        path_str(&ca_file),
        "--certfile",
        path_str(&client_cert),
        "--keyfile",
        path_str(&client_key),
    ];
    let out = install(&peer, "1", &mtls).ok();
    assert!(out.stderr.contains("Installed kv:1"), "{}", out.stderr);
    let out = instantiate(&peer, "1", &mtls).ok();
    assert!(
        out.stderr
            .contains("Instantiated kv:1 on channel mychannel"),
        "{}",
        out.stderr
    );
    let out = call(&peer, "invoke", PUT, &mtls).ok();
    assert!(
        out.stderr
            .contains("Chaincode invoke successful. result: status:200"),
        "{}",
        out.stderr
    );
    assert_eq!(call(&peer, "query", GET, &mtls).ok().stdout, "v\n");
}
