//! Chaincodes in Docker containers on the daemon of this machine, through the DOCKER backend:
//! images built locally (nothing can be pulled), registration over gRPC with mutual TLS.
//! Without a daemon each test prints `SKIPPED: …` (a failure under REQUIRE_DOCKER=1).

#![allow(unused_crate_dependencies, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use peer_support::ChaincodeDefinition;
use tests::env::{kv_chaincode, require_node, static_kv_chaincode};
use tests::fixtures::CountingVm;
use tests::scenarios::{Callees, kv_scenarios};
use tests::{TestPeer, ok_text};
use vm_api::{Ccid, ChaincodePackage, Platform, PlatformRegistration, ProcessCommand, Settings};
use vm_docker::testing::{Cleanup, docker, node_image, require_docker, shell_image, unique};

/// A peer whose Docker containers and images carry a peer id of their own.
fn docker_peer(peer_id: &str, settings: Settings) -> TestPeer {
    let peer_id = peer_id.to_owned();
    TestPeer::builder()
        .config(move |c| {
            c.peer_id = peer_id;
            c.network_id = "dockertest".into();
            c.settings = settings;
            // Covers building the image on first launch, as Fabric's startup timeout does.
            c.startup_timeout = std::time::Duration::from_secs(120);
        })
        .grpc(true)
        .build()
}

fn define_docker(
    peer: &TestPeer,
    name: &str,
    platform: &str,
    path: impl Into<std::path::PathBuf>,
) -> ChaincodeDefinition {
    let ccid = Ccid::new(name, "1");
    let package = ChaincodePackage::legacy(&ccid, platform, path.into());
    let def = ChaincodeDefinition::user(ccid, "DOCKER", package);
    peer.definitions.define(def.clone());
    def
}

fn containers_of(peer_id: &str) -> Vec<String> {
    let out = docker(&[
        "ps",
        "-aq",
        "--filter",
        &format!("label=io.fabric-ccrt.peer.id={peer_id}"),
    ]);
    out.split_whitespace().map(str::to_owned).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_static_rust_chaincode_in_a_container_with_mtls() {
    if !require_docker("docker::rust_chaincode") {
        return;
    }
    let peer_id = unique("rust");
    let _cleanup = Cleanup {
        peer_id: peer_id.clone(),
        images: vec![],
    };
    let peer = docker_peer(&peer_id, Settings::new());
    let def = define_docker(&peer, "rustkv", "binary", static_kv_chaincode());
    peer.define_process("rustproc", "1", "binary", kv_chaincode());
    kv_scenarios(
        &peer,
        "rustkv",
        Callees {
            system: "kvscc",
            user: "rustproc",
        },
    )
    .await;

    let names = vm_docker::names("dockertest", &peer_id, &def.ccid).unwrap();
    let env = docker(&[
        "inspect",
        "--format",
        "{{json .Config.Env}}",
        &names.container,
    ]);
    for expected in [
        "CORE_CHAINCODE_ID_NAME=rustkv:1",
        "CORE_PEER_TLS_ENABLED=true",
        "CORE_TLS_CLIENT_KEY_PATH=/etc/hyperledger/fabric/client.key",
        "CORE_PEER_TLS_ROOTCERT_FILE=/etc/hyperledger/fabric/peer.crt",
    ] {
        assert!(env.contains(expected), "{expected} in {env}");
    }
    assert_eq!(
        docker(&[
            "inspect",
            "--format",
            "{{.HostConfig.NetworkMode}}",
            &names.container
        ]),
        "host"
    );
    assert_eq!(
        docker(&[
            "image",
            "inspect",
            "--format",
            "{{index .Config.Labels \"org.hyperledger.fabric.chaincode.type\"}}",
            &names.image
        ]),
        "binary"
    );
    peer.support.stop(&def).await.unwrap();
    assert!(
        containers_of(&peer_id).is_empty(),
        "the container is gone after stop"
    );
    peer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fabrics_node_chaincode_in_a_container_on_a_local_node_image() {
    if !require_docker("docker::node_chaincode") {
        return;
    }
    let Some(node) = require_node("docker::node_chaincode") else {
        return;
    };
    let peer_id = unique("node");
    let runtime = format!("ccrt-test-node:{peer_id}");
    let _cleanup = Cleanup {
        peer_id: peer_id.clone(),
        images: vec![runtime.clone()],
    };
    node_image(&runtime);
    let dir = tempfile::tempdir().unwrap();
    let package = node.kv_package(dir.path());
    let peer = docker_peer(
        &peer_id,
        Settings::new().with("chaincode.node.runtime", runtime.as_str()),
    );
    let def = define_docker(&peer, "nodekv", "node", &package);
    peer.define_process("rustproc", "1", "binary", kv_chaincode());
    kv_scenarios(
        &peer,
        "nodekv",
        Callees {
            system: "kvscc",
            user: "rustproc",
        },
    )
    .await;
    let names = vm_docker::names("dockertest", &peer_id, &def.ccid).unwrap();
    let cmd = docker(&[
        "inspect",
        "--format",
        "{{json .Config.Cmd}}",
        &names.container,
    ]);
    assert!(
        cmd.contains("cd /usr/local/src; npm start -- --peer.address 127.0.0.1:"),
        "Fabric's Node command: {cmd}"
    );
    peer.shutdown().await;
    assert!(
        containers_of(&peer_id).is_empty(),
        "shutdown removes the containers"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_launches_of_one_chaincode_make_one_container() {
    if !require_docker("docker::concurrent_launches") {
        return;
    }
    let peer_id = unique("conc");
    let _cleanup = Cleanup {
        peer_id: peer_id.clone(),
        images: vec![],
    };
    let starts = Arc::new(AtomicUsize::new(0));
    let counter = starts.clone();
    let peer_for_vm = peer_id.clone();
    let peer = TestPeer::builder()
        .config({
            let peer_id = peer_id.clone();
            move |c| {
                c.peer_id = peer_id;
                c.network_id = "dockertest".into();
            }
        })
        .grpc(true)
        .with(move |b| {
            b.vm("DOCKER", move |_| {
                let config = vm_docker::DockerConfig::from_settings(
                    &peer_for_vm,
                    "dockertest",
                    &Settings::new(),
                )?;
                Ok(Arc::new(CountingVm {
                    inner: Arc::new(vm_docker::DockerVm::new(config)),
                    starts: counter.clone(),
                    swallow: Arc::new(AtomicUsize::new(0)),
                    start_delay: Duration::ZERO,
                }) as Arc<dyn vm_api::Vm>)
            })
        })
        .build();
    define_docker(&peer, "rustkv", "binary", static_kv_chaincode());
    let calls = (0..8).map(|i| {
        let peer = &peer;
        async move {
            peer.invoke("ch", "rustkv", &["put", &format!("k{i}"), "v"])
                .await
        }
    });
    for result in futures::future::join_all(calls).await {
        assert_eq!(ok_text(&result.unwrap()), "ok");
    }
    assert_eq!(starts.load(Ordering::SeqCst), 1);
    assert_eq!(containers_of(&peer_id).len(), 1);
    peer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_whose_process_exits_at_once_reports_its_code_and_output() {
    if !require_docker("docker::exits_at_once") {
        return;
    }
    let peer_id = unique("exit");
    let base = format!("ccrt-test-shell:{peer_id}");
    let ccid = Ccid::new("quitter", "1");
    let image = vm_docker::names("dockertest", &peer_id, &ccid)
        .unwrap()
        .image;
    let _cleanup = Cleanup {
        peer_id: peer_id.clone(),
        images: vec![base.clone(), image.clone()],
    };
    shell_image(&base);
    // The chaincode's image is present already (a warm start): its `chaincode` quits.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("chaincode"), "#!/bin/sh\necho 'loading connection profile'\necho 'fatal: no database at db:5984' >&2\nexit 4\n").unwrap();
    std::fs::write(dir.path().join("Dockerfile"), format!("FROM {base}\nCOPY chaincode /usr/local/bin/chaincode\nRUN [\"/bin/sh\", \"-c\", \"echo ok\"]\n")).unwrap();
    std::process::Command::new("chmod")
        .args(["+x", dir.path().join("chaincode").to_str().unwrap()])
        .status()
        .unwrap();
    docker(&["build", "-q", "-t", &image, dir.path().to_str().unwrap()]);
    let peer = docker_peer(&peer_id, Settings::new());
    let def = define_docker(&peer, "quitter", "binary", "/not/needed/the/image/exists");
    let err = peer.support.launch(&def).await.unwrap_err();
    let text = err.report();
    assert!(text.contains("chaincode quitter:1 exited with 4"), "{text}");
    assert!(text.contains("fatal: no database at db:5984"), "{text}");
    assert!(text.contains("loading connection profile"), "{text}");
    assert!(
        containers_of(&peer_id).is_empty(),
        "a failed launch leaves no container"
    );
    peer.shutdown().await;
}

/// A platform whose build fails in a RUN step, for the next test.
struct BrokenBuild;

impl Platform for BrokenBuild {
    fn name(&self) -> &'static str {
        "ccrt-test-broken"
    }
    fn description(&self) -> &'static str {
        "a build that fails, for tests"
    }
    fn validate(&self, _: &std::path::Path) -> vm_api::Result<()> {
        Ok(())
    }
    fn build_context(
        &self,
        _: &std::path::Path,
        settings: &Settings,
    ) -> vm_api::Result<bytes::Bytes> {
        let dockerfile = format!(
            "FROM {}\nRUN echo 'npm ERR! missing script: build' && echo 'npm ERR! A complete log is in /root/.npm' && exit 1\n",
            settings.get("test.base-image").unwrap_or("scratch")
        );
        let mut archive = vm_api::archive::Archive::new();
        archive
            .file("Dockerfile", dockerfile.as_bytes(), 0o644)
            .unwrap();
        Ok(archive.finish().unwrap())
    }
    fn image_command(&self, _: &str) -> Vec<String> {
        vec!["/bin/true".into()]
    }
    fn process_command(&self, _: &std::path::Path, _: &str) -> vm_api::Result<ProcessCommand> {
        unimplemented!("images only")
    }
}

vm_api::inventory::submit! { PlatformRegistration { platform: &BrokenBuild } }

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_build_shows_the_build_output() {
    if !require_docker("docker::broken_build") {
        return;
    }
    let peer_id = unique("build");
    let base = format!("ccrt-test-shell:{peer_id}");
    let _cleanup = Cleanup {
        peer_id: peer_id.clone(),
        images: vec![base.clone()],
    };
    shell_image(&base);
    let peer = docker_peer(
        &peer_id,
        Settings::new().with("test.base-image", base.as_str()),
    );
    let def = define_docker(&peer, "unbuildable", "ccrt-test-broken", "/src");
    let err = peer.support.launch(&def).await.unwrap_err();
    let text = err.report();
    assert!(
        text.contains("building chaincode unbuildable:1 failed"),
        "{text}"
    );
    assert!(
        text.contains("npm ERR! missing script: build"),
        "the build output: {text}"
    );
    peer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_peer_removes_its_leftover_containers() {
    if !require_docker("docker::restart_cleanup") {
        return;
    }
    let peer_id = unique("restart");
    let _cleanup = Cleanup {
        peer_id: peer_id.clone(),
        images: vec![],
    };
    let first = docker_peer(&peer_id, Settings::new());
    define_docker(&first, "rustkv", "binary", static_kv_chaincode());
    ok_text(
        &first
            .invoke("ch", "rustkv", &["put", "k", "v"])
            .await
            .unwrap(),
    );
    let leftover = containers_of(&peer_id);
    assert_eq!(leftover.len(), 1);
    // The peer goes away without stopping its chaincodes, as in a crash.
    drop(first);
    assert_eq!(
        containers_of(&peer_id),
        leftover,
        "the container outlives the crashed peer"
    );
    // The same peer starts again: its leftover container goes before anything else runs.
    let second = docker_peer(&peer_id, Settings::new());
    define_docker(&second, "rustkv", "binary", static_kv_chaincode());
    second
        .support
        .controller()
        .vm("DOCKER")
        .unwrap()
        .health_check()
        .await
        .unwrap();
    assert!(
        containers_of(&peer_id).is_empty(),
        "leftovers removed at start"
    );
    ok_text(
        &second
            .invoke("ch", "rustkv", &["put", "k", "again"])
            .await
            .unwrap(),
    );
    second.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_chaincode_as_pid_1_ends_on_sigterm() {
    if !require_docker("docker::sigterm") {
        return;
    }
    let peer_id = unique("term");
    let _cleanup = Cleanup {
        peer_id: peer_id.clone(),
        images: vec![],
    };
    let peer = docker_peer(&peer_id, Settings::new());
    let def = define_docker(&peer, "termkv", "binary", static_kv_chaincode());
    peer.support.launch(&def).await.unwrap();
    let names = vm_docker::names("dockertest", &peer_id, &def.ccid).unwrap();
    // Stop with a long grace period and keep the container to read how it ended: a process
    // that ignored SIGTERM (PID 1 without a handler) would be killed after 60 s with 137.
    let vm = peer.support.controller().vm("DOCKER").unwrap();
    let mut stop = vm_api::StopRequest::new(def.ccid.clone(), Duration::from_secs(60));
    stop.dont_remove = true;
    vm.stop(&stop).await.unwrap();
    assert_eq!(
        docker(&[
            "inspect",
            "--format",
            "{{.State.ExitCode}}",
            &names.container
        ]),
        "0",
        "it ended through its SIGTERM handler"
    );
    peer.shutdown().await;
}
