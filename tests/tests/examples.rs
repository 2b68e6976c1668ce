//! The two examples a newcomer reads to extend the runtime, run for real: the backend
//! skeleton (a backend crate of its own) launches the Rust kv chaincode, and the embedded peer
//! (a custom peer program) serves its own system chaincode and launches a user chaincode.

#![allow(unused_crate_dependencies, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use peer_support::ChaincodeDefinition;
use tests::TestPeer;
use tests::env::{kv_chaincode, processes_with_env, workspace_binary};
use tests::scenarios::{Callees, kv_scenarios};
use vm_api::{Ccid, ChaincodePackage};

// Linked for its registration, as any backend crate is.
use backend_skeleton as _;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backend_skeleton_runs_the_rust_chaincode_with_mutual_tls() {
    assert!(vm_api::providers().unwrap().get("SKELETON").is_some());
    let peer = TestPeer::builder().grpc(true).build();
    let ccid = Ccid::new("skelkv", "1");
    let package = ChaincodePackage::legacy(&ccid, "binary", kv_chaincode());
    let def = ChaincodeDefinition::user(ccid, "SKELETON", package);
    peer.definitions.define(def.clone());
    peer.define_process("rustproc", "1", "binary", kv_chaincode());
    kv_scenarios(
        &peer,
        "skelkv",
        Callees {
            system: "kvscc",
            user: "rustproc",
        },
    )
    .await;
    let pids = processes_with_env("CORE_CHAINCODE_ID_NAME", "skelkv:1");
    assert_eq!(pids.len(), 1, "one process: {pids:?}");
    peer.support.stop(&def).await.unwrap();
    assert!(processes_with_env("CORE_CHAINCODE_ID_NAME", "skelkv:1").is_empty());
    peer.shutdown().await;
}

#[test]
fn the_embedded_peer_serves_its_system_chaincode_and_launches_a_user_chaincode() {
    let mut peer = Command::new(workspace_binary("embed-peer"))
        .args(["--listen", "127.0.0.1:0", "--chaincode"])
        .arg(format!("embkv:1={}", kv_chaincode().display()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = peer.stdin.take().unwrap();
    let mut output = BufReader::new(peer.stdout.take().unwrap()).lines();
    let listening = output.next().unwrap().unwrap();
    assert!(
        listening.starts_with("listening on 127.0.0.1:"),
        "{listening}"
    );
    let mut ask = |command: &str| {
        writeln!(input, "{command}").unwrap();
        output.next().unwrap().unwrap()
    };
    // Its system chaincode, never defined by hand: linking it was enough.
    assert_eq!(ask("invoke hello"), "200 hello from an embedded peer, tx1");
    // A user chaincode, launched through the PROCESS backend it linked.
    assert_eq!(ask("invoke embkv put k v"), "200 ok");
    assert_eq!(ask("invoke embkv get k"), "200 v");
    assert_eq!(
        processes_with_env("CORE_CHAINCODE_ID_NAME", "embkv:1").len(),
        1
    );
    let unknown = ask("invoke ghost x");
    assert!(
        unknown.starts_with("error: chaincode ghost is not defined"),
        "{unknown}"
    );
    drop(input);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = peer.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the peer stops at the end of its input"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    assert!(
        processes_with_env("CORE_CHAINCODE_ID_NAME", "embkv:1").is_empty(),
        "its chaincode stopped with it"
    );
}
