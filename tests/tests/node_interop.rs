//! Fabric's own Node chaincode shim (fabric-shim 2.5.8) against our peer: the interop `kv`
//! chaincode launched through the PROCESS backend with mutual TLS, and started by hand in dev
//! mode. Without Node this prints `SKIPPED: node_interop: …` (a failure under REQUIRE_NODE=1).

#![allow(unused_crate_dependencies, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tests::TestPeer;
use tests::env::{kv_chaincode, require_node, run_node_chaincode};
use tests::scenarios::{Callees, kv_scenarios};
use tokio::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_kv_launched_through_vm_process_with_tls() {
    let Some(node) = require_node("node_interop") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let package = node.kv_package(dir.path());
    let peer = TestPeer::builder().grpc(true).build();
    peer.define_process("nodekv", "1", "node", &package);
    peer.define_process("rustkv", "1", "binary", kv_chaincode());
    kv_scenarios(
        &peer,
        "nodekv",
        Callees {
            system: "kvscc",
            user: "rustkv",
        },
    )
    .await;
    // The Rust chaincode calls the Node one as well.
    peer.invoke("interop", "nodekv", &["put", "from-node", "n"])
        .await
        .unwrap();
    let back = peer
        .query("interop", "rustkv", &["call", "nodekv", "get", "from-node"])
        .await
        .unwrap();
    assert_eq!(tests::ok_text(&back), "n");
    let pids = peer.process.pids();
    assert_eq!(pids.len(), 2);
    peer.shutdown().await;
    for pid in pids {
        assert!(
            !tests::env::process_alive(pid),
            "process {pid} is gone after shutdown"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_kv_started_by_hand_in_dev_mode() {
    let Some(node) = require_node("node_interop") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let package = node.kv_package(dir.path());
    let peer = TestPeer::builder()
        .config(|c| c.dev_mode = true)
        .grpc(false)
        .build();
    let address = peer.listener.unwrap().to_string();
    peer.define_process("nodekv", "1", "node", &package);
    peer.define_process("rustkv", "1", "binary", kv_chaincode());
    let _node = Command::new(run_node_chaincode())
        .arg(&package)
        .args([
            "--peer.address",
            &address,
            "--chaincode-id-name",
            "nodekv:1",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("run-node-chaincode");
    let _rust = Command::new(kv_chaincode())
        .env("CORE_CHAINCODE_ID_NAME", "rustkv:1")
        .env("CORE_PEER_ADDRESS", &address)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("kv-chaincode");
    assert!(
        peer.wait_registered("nodekv:1", Duration::from_secs(20))
            .await,
        "the Node chaincode registered"
    );
    assert!(
        peer.wait_registered("rustkv:1", Duration::from_secs(10))
            .await
    );
    kv_scenarios(
        &peer,
        "nodekv",
        Callees {
            system: "kvscc",
            user: "rustkv",
        },
    )
    .await;
    peer.shutdown().await;
}
