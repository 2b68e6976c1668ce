//! Per-chaincode mutual TLS, Fabric's scheme: a registration is accepted only over a
//! connection whose client certificate the peer issued for exactly that chaincode name.

#![allow(unused_crate_dependencies, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use peer_support::tls::ChaincodeCa;
use peer_support::{ChaincodeDefinition, ClientCertIssuer};
use proto::protos::ChaincodeMessage;
use proto::protos::chaincode_support_client::ChaincodeSupportClient;
use tests::TestPeer;
use tests::env::kv_chaincode;
use tokio::process::Command;
use vm_api::Ccid;

fn manual_peer() -> TestPeer {
    TestPeer::builder()
        .grpc(true)
        .with(|b| {
            b.vm("MANUAL", |_| {
                Ok(Arc::new(tests::fixtures::Manual) as Arc<dyn vm_api::Vm>)
            })
        })
        .build()
}

/// Runs the Rust chaincode by hand with the given TLS files; returns its exit status and stderr.
async fn run_chaincode(peer: &TestPeer, name: &str, env: &[(&str, &Path)]) -> (bool, String) {
    let mut cmd = Command::new(kv_chaincode());
    cmd.env("CORE_CHAINCODE_ID_NAME", name)
        .env("CORE_PEER_ADDRESS", peer.listener.unwrap().to_string())
        .env("CORE_PEER_TLS_ENABLED", "true")
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(Duration::from_secs(10), cmd.output())
        .await
        .expect("exits")
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Re-labels a PKCS#8 EC key as SEC1 (`BEGIN EC PRIVATE KEY`), as openssl writes them.
fn pkcs8_to_sec1(pem: &str) -> String {
    use base64::Engine;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap();
    fn tlv(buf: &[u8], tag: u8) -> (&[u8], &[u8]) {
        assert_eq!(buf[0], tag, "DER tag");
        let (len, header) = match buf[1] {
            n if n < 0x80 => (n as usize, 2),
            n => {
                let k = (n & 0x7f) as usize;
                (
                    buf[2..2 + k]
                        .iter()
                        .fold(0usize, |a, b| a << 8 | *b as usize),
                    2 + k,
                )
            }
        };
        (&buf[header..header + len], &buf[header + len..])
    }
    let (info, _) = tlv(&der, 0x30);
    let (_, rest) = tlv(info, 0x02); // version
    let (_, rest) = tlv(rest, 0x30); // algorithm
    let (sec1, _) = tlv(rest, 0x04); // privateKey: the ECPrivateKey
    let encoded = b64(sec1);
    let lines: Vec<&str> = encoded
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN EC PRIVATE KEY-----\n{}\n-----END EC PRIVATE KEY-----\n",
        lines.join("\n")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_registers_only_the_chaincode_it_was_issued_for() {
    let peer = manual_peer();
    let ca = peer.ca.clone().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = write(dir.path(), "peer.crt", ca.ca_pem());

    // The peer launches b:1 and waits for it to register.
    let def = ChaincodeDefinition::builtin(Ccid::new("b", "1"), "MANUAL");
    peer.definitions.define(def.clone());
    let launch = {
        let support = peer.support.clone();
        tokio::spawn(async move { support.launch(&def).await })
    };

    // A certificate issued for a:1 cannot register b:1 (Fabric's base64 *_PATH files).
    let a = ca.issue("a:1").unwrap();
    let key = write(dir.path(), "a.key", &b64(&a.key_pem));
    let cert = write(dir.path(), "a.crt", &b64(&a.cert_pem));
    let (ok, stderr) = run_chaincode(
        &peer,
        "b:1",
        &[
            ("CORE_TLS_CLIENT_KEY_PATH", &key),
            ("CORE_TLS_CLIENT_CERT_PATH", &cert),
            ("CORE_PEER_TLS_ROOTCERT_FILE", &root),
        ],
    )
    .await;
    assert!(!ok);
    assert!(
        stderr.contains("belongs to a different chaincode (a:1)"),
        "{stderr}"
    );
    assert!(
        !launch.is_finished(),
        "the launch still waits for the real b:1"
    );

    // The certificate issued for b:1 does, here with an SEC1 key in plain PEM files.
    let b = ca.issue("b:1").unwrap();
    let key = write(dir.path(), "b.key", &pkcs8_to_sec1(&b.key_pem));
    assert!(
        std::fs::read_to_string(&key)
            .unwrap()
            .starts_with("-----BEGIN EC PRIVATE KEY-----")
    );
    let cert = write(dir.path(), "b.crt", &b.cert_pem);
    let mut chaincode = Command::new(kv_chaincode())
        .env("CORE_CHAINCODE_ID_NAME", "b:1")
        .env("CORE_PEER_ADDRESS", peer.listener.unwrap().to_string())
        .env("CORE_PEER_TLS_ENABLED", "true")
        .env("CORE_TLS_CLIENT_KEY_FILE", &key)
        .env("CORE_TLS_CLIENT_CERT_FILE", &cert)
        .env("CORE_PEER_TLS_ROOTCERT_FILE", &root)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), launch)
        .await
        .expect("launch completes")
        .unwrap()
        .unwrap();
    let result = peer.invoke("ch", "b", &["put", "k", "v"]).await.unwrap();
    assert_eq!(tests::ok_text(&result), "ok");
    chaincode.start_kill().unwrap();
    peer.shutdown().await;
}

/// An open Register stream: the chaincode stays connected while it lives.
#[derive(Debug)]
struct Connected {
    _outbound: tokio::sync::mpsc::Sender<ChaincodeMessage>,
    _inbound: tonic::Streaming<ChaincodeMessage>,
}

/// Opens a Register stream with `identity` and says REGISTER; returns how the peer answered,
/// and the stream, open.
async fn register_with(
    peer: &TestPeer,
    identity: Option<(&str, &str)>,
    name: &str,
) -> Result<(ChaincodeMessage, Connected), String> {
    use futures::StreamExt;
    use prost::Message;
    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
    let ca = peer.ca.as_ref().unwrap();
    let mut tls = ClientTlsConfig::new()
        .domain_name("127.0.0.1")
        .ca_certificate(Certificate::from_pem(ca.ca_pem()));
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    let endpoint = Endpoint::from_shared(format!("https://{}", peer.listener.unwrap()))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect_timeout(Duration::from_secs(5));
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| format!("connect: {e:?}"))?;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let id = proto::protos::ChaincodeId {
        name: name.into(),
        ..Default::default()
    };
    tx.send(ChaincodeMessage::with_payload(
        proto::MessageType::Register,
        "",
        "",
        id.encode_to_vec(),
    ))
    .await
    .unwrap();
    let mut client = ChaincodeSupportClient::new(channel);
    let response = client
        .register(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .map_err(|s| format!("register: {s:?}"))?;
    let mut inbound = response.into_inner();
    match tokio::time::timeout(Duration::from_secs(5), inbound.next()).await {
        Ok(Some(Ok(msg))) => Ok((
            msg,
            Connected {
                _outbound: tx,
                _inbound: inbound,
            },
        )),
        Ok(Some(Err(status))) => Err(format!("stream: {status:?}")),
        Ok(None) => Err("stream closed".into()),
        Err(_) => Err("no answer".into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_certificate_or_a_foreign_one_is_refused() {
    let peer = manual_peer();
    let def = ChaincodeDefinition::builtin(Ccid::new("c", "1"), "MANUAL");
    peer.definitions.define(def.clone());
    let launch = {
        let support = peer.support.clone();
        tokio::spawn(async move { support.launch(&def).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;

    let none = register_with(&peer, None, "c:1").await;
    assert!(none.is_err(), "no client certificate: {none:?}");

    let foreign = ChaincodeCa::new().unwrap().issue("c:1").unwrap();
    let other = register_with(&peer, Some((&foreign.cert_pem, &foreign.key_pem)), "c:1").await;
    assert!(other.is_err(), "a certificate of another CA: {other:?}");

    assert!(
        peer.support
            .registry()
            .registered()
            .iter()
            .all(|n| n != "c:1")
    );
    // The right one works, over the same path.
    let own = peer.ca.as_ref().unwrap().issue("c:1").unwrap();
    // (Connected until the launch has returned, so it finds the chaincode registered.)
    let (reply, _connected) = register_with(&peer, Some((&own.cert_pem, &own.key_pem)), "c:1")
        .await
        .unwrap();
    assert_eq!(reply.kind(), Some(proto::MessageType::Registered));
    tokio::time::timeout(Duration::from_secs(5), launch)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    peer.shutdown().await;
}
