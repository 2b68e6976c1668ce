//! Chaincode processes that crash, hang or never register, and a peer that shuts down.

#![allow(unused_crate_dependencies, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tests::TestPeer;
use tests::env::{kv_chaincode, process_alive};

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chaincode_killed_mid_transaction_fails_it_at_once_and_is_relaunched() {
    let peer = TestPeer::builder().grpc(true).build();
    let def = peer.define_process("rustkv", "1", "binary", kv_chaincode());
    tests::ok_text(
        &peer
            .invoke("ch", "rustkv", &["put", "k", "v"])
            .await
            .unwrap(),
    );
    let pid = peer.process.pid(&def.ccid).expect("running");
    let call = {
        let support = peer.support.clone();
        let input = tests::input(&["sleep", "20000"]);
        let (params, _) = peer.tx("ch", "rustkv", &input);
        tokio::spawn(async move { support.execute(&params, "rustkv", input).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
    let killed_at = Instant::now();
    let err = tokio::time::timeout(Duration::from_secs(5), call)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(
        killed_at.elapsed() < Duration::from_secs(1),
        "error within a second, took {:?}",
        killed_at.elapsed()
    );
    assert!(
        err.to_string().starts_with("chaincode stream terminated"),
        "{}",
        err.report()
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        peer.support
            .registry()
            .registered()
            .iter()
            .all(|n| n != "rustkv:1"),
        "deregistered"
    );
    // The next invoke launches it again.
    assert_eq!(
        tests::ok_text(&peer.query("ch", "rustkv", &["get", "k"]).await.unwrap()),
        "v"
    );
    let new_pid = peer.process.pid(&def.ccid).expect("relaunched");
    assert_ne!(new_pid, pid);
    peer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chaincode_that_never_registers_times_out_with_its_output_and_nothing_left_running() {
    let dir = tempfile::tempdir().unwrap();
    let stuck = script(
        dir.path(),
        "stuck",
        "echo 'reading configuration'\necho 'waiting for a database that never comes' >&2\nexec sleep 600",
    );
    let peer = TestPeer::builder()
        .config(|c| c.startup_timeout = Duration::from_secs(1))
        .grpc(true)
        .build();
    let def = peer.define_process("stuck", "1", "binary", &stuck);
    let launch = {
        let support = peer.support.clone();
        let def = def.clone();
        tokio::spawn(async move { support.launch(&def).await })
    };
    // Note the process while it runs.
    let mut pid = None;
    for _ in 0..100 {
        if let Some(p) = peer.process.pid(&def.ccid) {
            pid = Some(p);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let pid = pid.expect("the chaincode process started");
    let err = launch.await.unwrap().unwrap_err();
    let text = err.report();
    assert!(text.contains("did not register within 1s"), "{text}");
    assert!(
        text.contains("reading configuration"),
        "stdout shown: {text}"
    );
    assert!(
        text.contains("waiting for a database that never comes"),
        "stderr shown: {text}"
    );
    assert!(!process_alive(pid), "the process was stopped");
    assert!(peer.process.pids().is_empty());
    assert!(peer.support.registry().launched().is_empty());
    peer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chaincode_that_exits_at_once_reports_its_code_and_output() {
    let dir = tempfile::tempdir().unwrap();
    let broken = script(
        dir.path(),
        "broken",
        "echo 'fatal: cannot parse config.yaml line 3' >&2\nexit 3",
    );
    let peer = TestPeer::builder().grpc(true).build();
    let def = peer.define_process("broken", "1", "binary", &broken);
    let started = Instant::now();
    let err = peer.support.launch(&def).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "no waiting for the startup timeout"
    );
    let text = err.report();
    assert!(text.contains("chaincode broken:1 exited with 3"), "{text}");
    assert!(
        text.contains("fatal: cannot parse config.yaml line 3"),
        "{text}"
    );
    // Nothing is left registered: the next attempt starts afresh (and fails the same way).
    assert!(peer.support.registry().launched().is_empty());
    let again = peer.support.launch(&def).await.unwrap_err();
    assert!(again.report().contains("exited with 3"));
    peer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutting_the_peer_down_ends_every_chaincode_process() {
    let dir = tempfile::tempdir().unwrap();
    // A chaincode that ignores SIGTERM: only the kill after the grace period ends it.
    let stubborn_launcher = script(
        dir.path(),
        "stubborn",
        &format!(
            "trap '' TERM\n(trap '' TERM; exec sleep 600) &\nexec {} \"$@\"",
            kv_chaincode().display()
        ),
    );
    let peer = TestPeer::builder()
        .config(|c| c.stop_timeout = Duration::from_millis(300))
        .grpc(true)
        .build();
    peer.define_process("rustkv", "1", "binary", kv_chaincode());
    peer.define_process("stubborn", "1", "binary", &stubborn_launcher);
    tests::ok_text(
        &peer
            .invoke("ch", "rustkv", &["put", "k", "v"])
            .await
            .unwrap(),
    );
    tests::ok_text(
        &peer
            .invoke("ch", "stubborn", &["put", "k", "v"])
            .await
            .unwrap(),
    );
    let pids = peer.process.pids();
    assert_eq!(pids.len(), 2);
    let group_members: Vec<u32> = all_processes_in_groups(&pids);
    assert!(
        group_members.len() >= 3,
        "the stubborn chaincode's background child counts too: {group_members:?}"
    );
    peer.shutdown().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    for pid in group_members {
        assert!(
            !process_alive(pid),
            "process {pid} survived the peer's shutdown"
        );
    }
}

/// Every process whose process group is one of `groups`.
fn all_processes_in_groups(groups: &[u32]) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the command name: state ppid pgrp ...
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        if let Some(pgrp) = fields.get(2).and_then(|p| p.parse::<u32>().ok())
            && groups.contains(&pgrp)
        {
            found.push(pid);
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_package_path_is_a_clear_error() {
    let peer = TestPeer::builder().grpc(true).build();
    let def = peer.define_process("ghost", "1", "binary", "/nonexistent/chaincode");
    // The build checks the package before anything starts.
    let err = peer.support.launch(&def).await.unwrap_err();
    assert!(
        err.report()
            .contains("cannot read the package /nonexistent/chaincode: No such file"),
        "{}",
        err.report()
    );
    assert!(peer.support.registry().launched().is_empty());
    peer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_an_exited_chaincode_left_in_its_process_group_goes_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("helper.pid");
    let leaky = script(
        dir.path(),
        "leaky",
        &format!(
            "sleep 600 &\necho $! > {}\necho 'helper started, leaving'\nexit 5",
            marker.display()
        ),
    );
    let peer = TestPeer::builder().grpc(true).build();
    let def = peer.define_process("leaky", "1", "binary", &leaky);
    let err = peer.support.launch(&def).await.unwrap_err();
    assert!(err.report().contains("exited with 5"), "{}", err.report());
    let helper: u32 = std::fs::read_to_string(&marker)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while process_alive(helper) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !process_alive(helper),
        "the background helper was swept with its chaincode"
    );
    peer.shutdown().await;
}
