//! The Rust kv chaincode (built on `shim::start`) over gRPC: launched by the peer through the
//! PROCESS backend with mutual TLS, and started by hand in dev mode.

#![allow(unused_crate_dependencies, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tests::TestPeer;
use tests::env::kv_chaincode;
use tests::scenarios::{Callees, kv_scenarios};
use tokio::process::{Child, Command};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launched_by_the_peer_through_vm_process_with_tls() {
    let peer = TestPeer::builder().grpc(true).build();
    let bin = kv_chaincode();
    peer.define_process("rustkv", "1", "binary", &bin);
    peer.define_process("rustkv2", "1", "binary", &bin);
    kv_scenarios(
        &peer,
        "rustkv",
        Callees {
            system: "kvscc",
            user: "rustkv2",
        },
    )
    .await;
    let mut registered = peer.support.registry().registered();
    registered.sort();
    assert_eq!(registered, ["kvscc:0.1.0", "rustkv2:1", "rustkv:1"]);
    assert_eq!(peer.process.pids().len(), 2, "two chaincode processes");
    let pids = peer.process.pids();
    peer.shutdown().await;
    for pid in pids {
        assert!(
            !tests::env::process_alive(pid),
            "process {pid} is gone after shutdown"
        );
    }
}

/// Starts the Rust chaincode by hand, as a developer does in dev mode.
fn start_by_hand(name: &str, peer_address: &str) -> Child {
    Command::new(kv_chaincode())
        .env("CORE_CHAINCODE_ID_NAME", name)
        .env("CORE_PEER_ADDRESS", peer_address)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start kv-chaincode")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn started_by_hand_in_dev_mode() {
    let peer = TestPeer::builder()
        .config(|c| c.dev_mode = true)
        .grpc(false)
        .build();
    let address = peer.listener.unwrap().to_string();
    let bin = kv_chaincode();
    peer.define_process("rustkv", "1", "binary", &bin);
    peer.define_process("rustkv2", "1", "binary", &bin);
    let _a = start_by_hand("rustkv:1", &address);
    let _b = start_by_hand("rustkv2:1", &address);
    assert!(
        peer.wait_registered("rustkv:1", Duration::from_secs(10))
            .await
    );
    assert!(
        peer.wait_registered("rustkv2:1", Duration::from_secs(10))
            .await
    );
    kv_scenarios(
        &peer,
        "rustkv",
        Callees {
            system: "kvscc",
            user: "rustkv2",
        },
    )
    .await;
    assert!(
        peer.process.pids().is_empty(),
        "the peer launched nothing in dev mode"
    );
    peer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chaincode_started_by_hand_exits_when_the_peer_shuts_down() {
    let peer = TestPeer::builder()
        .config(|c| c.dev_mode = true)
        .grpc(false)
        .build();
    let address = peer.listener.unwrap().to_string();
    peer.define_process("rustkv", "1", "binary", kv_chaincode());
    let child = Command::new(kv_chaincode())
        .env("CORE_CHAINCODE_ID_NAME", "rustkv:1")
        .env("CORE_PEER_ADDRESS", &address)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    assert!(
        peer.wait_registered("rustkv:1", Duration::from_secs(10))
            .await
    );
    tests::ok_text(
        &peer
            .invoke("ch", "rustkv", &["put", "k", "v"])
            .await
            .unwrap(),
    );
    peer.shutdown().await;
    let out = tokio::time::timeout(Duration::from_secs(5), child.wait_with_output())
        .await
        .expect("the chaincode exits when the peer goes away")
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("stream to the peer closed"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chaincode_process_exits_when_the_peer_refuses_or_is_unreachable() {
    // Refused: outside dev mode the peer does not accept a chaincode it did not launch.
    let peer = TestPeer::builder().grpc(false).build();
    let address = peer.listener.unwrap().to_string();
    let out = Command::new(kv_chaincode())
        .env("CORE_CHAINCODE_ID_NAME", "stranger:1")
        .env("CORE_PEER_ADDRESS", &address)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(10), out)
        .await
        .expect("exits")
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("will not accept external chaincode connection stranger:1"),
        "{stderr}"
    );
    peer.shutdown().await;

    // Unreachable: nothing listens.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Command::new(kv_chaincode())
        .env("CORE_CHAINCODE_ID_NAME", "lonely:1")
        .args(["--peer.address", &format!("127.0.0.1:{port}")])
        .output();
    let out = tokio::time::timeout(Duration::from_secs(10), out)
        .await
        .expect("exits")
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot connect to the peer at 127.0.0.1:{port}")),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_mid_transaction_fails_it_and_is_deregistered() {
    let peer = TestPeer::builder()
        .config(|c| c.dev_mode = true)
        .grpc(false)
        .build();
    let address = peer.listener.unwrap().to_string();
    peer.define_process("rustkv", "1", "binary", kv_chaincode());
    let mut child = start_by_hand("rustkv:1", &address);
    assert!(
        peer.wait_registered("rustkv:1", Duration::from_secs(10))
            .await
    );
    let call = {
        let support = peer.support.clone();
        let input = tests::input(&["sleep", "10000"]);
        let (params, _) = peer.tx("interop", "rustkv", &input);
        tokio::spawn(async move { support.execute(&params, "rustkv", input).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    child.start_kill().unwrap();
    let started = std::time::Instant::now();
    let err = tokio::time::timeout(Duration::from_secs(5), call)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "failed within a second: {:?}",
        started.elapsed()
    );
    assert!(
        err.to_string().starts_with("chaincode stream terminated"),
        "{err}"
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        peer.support
            .registry()
            .registered()
            .iter()
            .all(|n| n != "rustkv:1")
    );
    peer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaincode_as_a_service_the_peer_dials() {
    use std::sync::Arc;
    // The chaincode serves Chaincode/Connect; the peer (in dev mode) dials it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(shim::serve(
        Arc::new(scc_examples::KvChaincode),
        "caas:1",
        listener,
        None,
        async {
            let _ = stopped.await;
        },
    ));
    let peer = TestPeer::builder().config(|c| c.dev_mode = true).build();
    peer.define_process("caas", "1", "binary", "/not/launched/in/dev/mode");
    let server_info = vm_api::ChaincodeServer {
        address,
        dial_timeout: Duration::from_secs(5),
        tls: None,
    };
    let stream = peer_support::caas::connect(&server_info).await.unwrap();
    let support = peer.support.clone();
    tokio::spawn(async move {
        support
            .handle_chaincode_stream(stream, vm_api::StreamOrigin::default())
            .await
    });
    assert!(peer.wait_registered("caas:1", Duration::from_secs(5)).await);
    tests::ok_text(
        &peer
            .invoke("ch", "caas", &["put", "k", "served"])
            .await
            .unwrap(),
    );
    assert_eq!(
        tests::ok_text(&peer.query("ch", "caas", &["get", "k"]).await.unwrap()),
        "served"
    );
    let _ = stop.send(());
    peer.shutdown().await;
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_shim_ends_its_chaincode_on_sigterm() {
    let peer = TestPeer::builder().grpc(true).build();
    let def = peer.define_process("termkv", "1", "binary", kv_chaincode());
    tests::ok_text(
        &peer
            .invoke("ch", "termkv", &["put", "k", "v"])
            .await
            .unwrap(),
    );
    let pid = peer.process.pid(&def.ccid).expect("running");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    // Without a handler SIGTERM's default action would end it as 128 + 15; the shim's handler
    // ends it with 0 (as PID 1 of a container, without one, it would not end at all).
    let code = tokio::time::timeout(
        Duration::from_secs(10),
        vm_api::Vm::wait(peer.process.as_ref(), &def.ccid),
    )
    .await
    .expect("it ended by itself")
    .unwrap();
    assert_eq!(code, 0, "it ended through its SIGTERM handler");
    peer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chaincode_server_is_dialed_with_its_tls_and_domain() {
    use peer_support::ClientCertIssuer;
    use std::sync::Arc;
    // The chaincode's server certificate names cc.example (and loopback); its clients need a
    // certificate from the same CA.
    let ca = peer_support::tls::ChaincodeCa::new().unwrap();
    let server = ca.server_tls(&["cc.example"]).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(shim::serve(
        Arc::new(scc_examples::KvChaincode),
        "tlscaas:1",
        listener,
        Some(shim::ServerTls {
            cert_pem: server.cert_pem,
            key_pem: server.key_pem,
            client_ca_pem: Some(ca.ca_pem().to_owned()),
        }),
        async {
            let _ = stopped.await;
        },
    ));
    let client = ca.issue("the peer").unwrap();
    let dial = |domain: Option<&str>, with_client: bool| vm_api::ChaincodeServer {
        address: address.clone(),
        dial_timeout: Duration::from_secs(5),
        tls: Some(vm_api::ServerTls {
            root_pem: ca.ca_pem().to_owned(),
            client: with_client.then(|| vm_api::TlsKeyPair {
                cert_pem: client.cert_pem.clone(),
                key_pem: client.key_pem.clone(),
            }),
            domain: domain.map(str::to_owned),
        }),
    };
    // The name checked is the domain, not the address's host.
    let e = peer_support::caas::connect(&dial(Some("other.example"), true))
        .await
        .unwrap_err();
    assert!(e.to_string().contains(&address), "{e}");
    let stream = peer_support::caas::connect(&dial(Some("cc.example"), true))
        .await
        .unwrap();
    let peer = TestPeer::builder().config(|c| c.dev_mode = true).build();
    peer.define_process("tlscaas", "1", "binary", "/not/launched/in/dev/mode");
    let support = peer.support.clone();
    tokio::spawn(async move {
        support
            .handle_chaincode_stream(stream, vm_api::StreamOrigin::default())
            .await
    });
    assert!(
        peer.wait_registered("tlscaas:1", Duration::from_secs(5))
            .await
    );
    tests::ok_text(
        &peer
            .invoke("ch", "tlscaas", &["put", "k", "v"])
            .await
            .unwrap(),
    );
    // Without the client certificate the server refuses the peer.
    let refused = peer_support::caas::connect(&dial(None, false)).await;
    assert!(refused.is_err(), "client authentication is required");
    let _ = stop.send(());
    peer.shutdown().await;
    drop(served);
}
