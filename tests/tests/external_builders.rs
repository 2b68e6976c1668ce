//! Fabric 2.x packages built and run by external builders, through the library API: the
//! fixture builders (`tests/fixtures/builders`, shell scripts written from Fabric's facts)
//! build the static Rust kv chaincode and their `run` execs it, as Fabric's sample binary
//! builders do. Builds survive a restart without `detect`; failures say why.

#![allow(unused_crate_dependencies, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use peer_support::ChaincodeDefinition;
use serde_json::json;
use tests::builders::{binary_package, calls, environment, require_jq, traced, write_script};
use tests::env::{kv_chaincode, process_alive};
use tests::scenarios::{Callees, kv_scenarios};
use tests::{TestPeer, ok_text};

const CALLEES: Callees<'static> = Callees {
    system: "kvscc",
    user: "rustproc",
};

fn builder(name: &str, path: &Path) -> serde_json::Value {
    json!({"name": name, "path": path, "propagateEnvironment": ["HOME"]})
}

/// The durable build folder of `package_id` under the peer's data folder.
fn durable(data: &Path, package_id: &str) -> PathBuf {
    data.join("externalbuilder/builds")
        .join(package_id.replace(':', "-"))
}

fn count(calls: &[String], program: &str) -> usize {
    calls
        .iter()
        .filter(|l| l.starts_with(&format!("{program} ")))
        .count()
}

async fn the_binary_builder_runs_the_rust_chaincode(tls: bool) {
    if !require_jq("external_builders::the_binary_builder_runs_the_rust_chaincode") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("peer");
    let binary = traced(dir.path(), "binary", "binary");
    let peer = TestPeer::builder()
        .fabric2(&data, json!([builder("binary", &binary)]))
        .grpc(tls)
        .build();
    peer.define_process("rustproc", "1", "binary", kv_chaincode());
    let (def, installed) = peer
        .install_and_define("kvbin", binary_package("kvbin_1", &[]))
        .await
        .unwrap();
    assert_eq!(installed.container_type, "EXTERNAL");
    assert!(
        installed.package.id.starts_with("kvbin_1:"),
        "{}",
        installed.package.id
    );
    kv_scenarios(&peer, "kvbin", CALLEES).await;

    // Fabric's calls, with Fabric's arguments.
    let log = calls(&binary);
    assert_eq!(count(&log, "detect"), 1, "{log:?}");
    assert_eq!(
        (count(&log, "build"), count(&log, "release")),
        (1, 1),
        "{log:?}"
    );
    let folder = durable(&data, &installed.package.id);
    assert_eq!(
        std::fs::read_to_string(folder.join("build-info.json")).unwrap(),
        r#"{"builder_name":"binary"}"#
    );
    assert!(folder.join("bld/chaincode").is_file());
    let run: Vec<&str> = log
        .iter()
        .find(|l| l.starts_with("run "))
        .expect("run was called")
        .split_whitespace()
        .collect();
    assert_eq!(
        run[1],
        folder.join("bld").display().to_string(),
        "run BLD RUNDIR"
    );
    let rundir = PathBuf::from(run[2]);
    // The environment holds the propagated names and the four always passed, nothing else.
    let env = environment(&binary, "run");
    assert!(env.iter().any(|l| l.starts_with("PATH=")), "{env:?}");
    if let Ok(home) = std::env::var("HOME") {
        assert!(env.contains(&format!("HOME={home}")), "propagated: {env:?}");
    }
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    assert!(
        !manifest.is_empty() && !env.iter().any(|l| l.starts_with("CARGO_MANIFEST_DIR=")),
        "the peer's other variables are not passed: {env:?}"
    );

    // Stopping ends the chaincode and removes its run folder; nothing is left running.
    let pid = peer
        .external
        .get()
        .unwrap()
        .pid(&def.ccid)
        .expect("run runs");
    assert!(process_alive(pid));
    peer.support.stop(&def).await.unwrap();
    assert!(!process_alive(pid), "stopped through the builder");
    assert!(!rundir.exists(), "the run folder goes with run");
    peer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_builder_runs_the_rust_chaincode_with_mutual_tls() {
    the_binary_builder_runs_the_rust_chaincode(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_builder_runs_the_rust_chaincode_without_tls() {
    the_binary_builder_runs_the_rust_chaincode(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_is_reused_after_a_restart_without_detect_and_a_removed_builder_is_named() {
    if !require_jq(
        "external_builders::a_build_is_reused_after_a_restart_without_detect_and_a_removed_builder_is_named",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("peer");
    let binary = traced(dir.path(), "binary", "binary");
    let builders = json!([builder("binary", &binary)]);
    let first = TestPeer::builder()
        .fabric2(&data, builders.clone())
        .grpc(false)
        .build();
    let (_, installed) = first
        .install_and_define("kvre", binary_package("kvre_1", &[]))
        .await
        .unwrap();
    ok_text(
        &first
            .invoke("ch", "kvre", &["put", "k", "v1"])
            .await
            .unwrap(),
    );
    first.shutdown().await;
    assert_eq!(count(&calls(&binary), "detect"), 1);

    // The same peer again (a new support over the same data folder).
    let second = TestPeer::builder()
        .fabric2(&data, builders)
        .grpc(false)
        .build();
    let package = second.support.package(&installed.package.id).await.unwrap();
    second
        .definitions
        .define(ChaincodeDefinition::packaged("kvre", package.clone()));
    ok_text(
        &second
            .invoke("ch", "kvre", &["put", "k", "v2"])
            .await
            .unwrap(),
    );
    let log = calls(&binary);
    assert_eq!(count(&log, "detect"), 1, "reused without detect: {log:?}");
    assert_eq!(
        count(&log, "build"),
        1,
        "and without building again: {log:?}"
    );
    assert_eq!(count(&log, "run"), 2);
    second.shutdown().await;

    // Configured without that builder: the launch names it.
    let other = traced(dir.path(), "other", "ccaas");
    let third = TestPeer::builder()
        .fabric2(&data, json!([builder("other", &other)]))
        .grpc(false)
        .build();
    third
        .definitions
        .define(ChaincodeDefinition::packaged("kvre", package));
    let e = third
        .invoke("ch", "kvre", &["put", "k", "v3"])
        .await
        .unwrap_err()
        .report();
    assert!(
        e.contains("built by external builder \"binary\", which is no longer configured"),
        "{e}"
    );
    assert!(calls(&other).is_empty(), "no other builder is asked: {e}");
    third.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_build_shows_its_stderr_and_keeps_nothing() {
    if !require_jq("external_builders::a_failing_build_shows_its_stderr_and_keeps_nothing") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("peer");
    let binary = traced(dir.path(), "binary", "binary");
    let peer = TestPeer::builder()
        .fabric2(&data, json!([builder("binary", &binary)]))
        .build();
    let broken = binary_package(
        "broken_1",
        &[(
            "FAIL_BUILD",
            "error[E0425]: cannot find value `x` in this scope\nerror: could not compile `kv`",
        )],
    );
    let e = peer
        .support
        .install_package(broken.into())
        .await
        .unwrap_err()
        .report();
    assert!(
        e.contains("external builder binary: build exited with 3"),
        "{e}"
    );
    assert!(
        e.contains("error[E0425]: cannot find value `x` in this scope"),
        "{e}"
    );
    assert!(e.contains("error: could not compile `kv`"), "{e}");
    // The scratch context (detect SRC META) is gone, no build is kept, the package is not
    // installed (as Fabric removes a package whose build failed).
    let log = calls(&binary);
    let detect: Vec<&str> = log[0].split_whitespace().collect();
    assert_eq!(detect[0], "detect");
    let scratch = Path::new(detect[1]).parent().unwrap();
    assert!(Path::new(detect[1]).ends_with("src"), "{log:?}");
    assert!(!scratch.exists(), "scratch {} removed", scratch.display());
    let builds = data.join("externalbuilder/builds");
    assert!(
        std::fs::read_dir(&builds).map_or(true, |mut d| d.next().is_none()),
        "no build kept in {}",
        builds.display()
    );
    assert!(
        std::fs::read_dir(data.join("lifecycle/chaincodes"))
            .unwrap()
            .next()
            .is_none(),
        "the package was removed"
    );
    peer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packages_no_builder_detects_take_the_platforms_own_path() {
    if !require_jq("external_builders::packages_no_builder_detects_take_the_platforms_own_path") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ccaas = traced(dir.path(), "ccaas", "ccaas");
    // A builder whose detect cannot even run has not detected anything (as in Fabric).
    let broken = dir.path().join("broken");
    std::fs::create_dir_all(broken.join("bin")).unwrap();
    std::fs::write(broken.join("bin/detect"), "#!/bin/sh\nexit 0\n").unwrap();
    let peer = TestPeer::builder()
        .fabric2(
            &dir.path().join("peer"),
            json!([builder("broken", &broken), builder("ccaas", &ccaas)]),
        )
        .grpc(true)
        .build();
    let (_, installed) = peer
        .install_and_define("kvproc", binary_package("kvproc_1", &[]))
        .await
        .unwrap();
    assert_eq!(
        installed.container_type, "PROCESS",
        "routed past the builders"
    );
    let log = calls(&ccaas);
    assert_eq!(
        count(&log, "detect"),
        1,
        "the builder was asked first: {log:?}"
    );
    assert_eq!(count(&log, "build"), 0);
    ok_text(
        &peer
            .invoke("ch", "kvproc", &["put", "k", "v"])
            .await
            .unwrap(),
    );
    assert_eq!(
        ok_text(&peer.query("ch", "kvproc", &["get", "k"]).await.unwrap()),
        "v"
    );
    // A type no backend runs is refused at install, naming what each backend said.
    let e = peer
        .support
        .install_package(
            chaincode_package::package_dir(
                dir.path(),
                &chaincode_package::Metadata::new("", "cobol", "old_1"),
                "",
            )
            .unwrap()
            .into(),
        )
        .await
        .unwrap_err()
        .report();
    assert!(e.contains("no backend runs chaincode old_1:"), "{e}");
    assert!(
        e.contains("EXTERNAL: no external builder detected it (tried broken, ccaas)"),
        "{e}"
    );
    assert!(
        e.contains("PROCESS: no platform runs packages of type \"cobol\""),
        "{e}"
    );
    peer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_builder_that_hangs_is_killed_at_the_install_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let hangs = dir.path().join("hangs");
    std::fs::create_dir_all(hangs.join("bin")).unwrap();
    write_script(
        &hangs.join("bin/detect"),
        &format!(
            "#!/bin/sh\necho $$ > '{}/pid'\nwhile :; do echo 'still detecting' >&2; sleep 0.05; done\n",
            hangs.display()
        ),
    );
    let peer = TestPeer::builder()
        .fabric2(&dir.path().join("peer"), json!([builder("hangs", &hangs)]))
        .config(|c| c.install_timeout = Duration::from_secs(2))
        .build();
    let package = binary_package("slow_1", &[]);
    let started = Instant::now();
    let e = peer
        .support
        .install_package(package.into())
        .await
        .unwrap_err()
        .report();
    assert!(
        e.contains("took longer than 2s (chaincode.installTimeout)"),
        "{e}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    let pid: u32 = std::fs::read_to_string(hangs.join("pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // Killed with its process group (the signal is sent; give the kernel a moment to act).
    let deadline = Instant::now() + Duration::from_secs(5);
    while process_alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!process_alive(pid), "the builder was killed");
    peer.shutdown().await;
}

#[test]
fn the_fixture_builders_pass_their_own_checks() {
    if !require_jq("external_builders::the_fixture_builders_pass_their_own_checks") {
        return;
    }
    let out = std::process::Command::new("bash")
        .arg(tests::builders::fixture("selftest.sh"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("selftest: ok"),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_builders_stdout_is_dropped_and_its_stderr_kept() {
    let dir = tempfile::tempdir().unwrap();
    let noisy = dir.path().join("noisy");
    std::fs::create_dir_all(noisy.join("bin")).unwrap();
    write_script(
        &noisy.join("bin/detect"),
        "#!/bin/sh\necho 'detect on stdout'\nexit 0\n",
    );
    write_script(
        &noisy.join("bin/build"),
        "#!/bin/sh\necho 'STDOUT-LINE'\necho 'STDERR-LINE-1' >&2\nprintf 'STDERR-LINE-2 without a newline' >&2\nexit 2\n",
    );
    let peer = TestPeer::builder()
        .fabric2(&dir.path().join("peer"), json!([builder("noisy", &noisy)]))
        .build();
    let e = peer
        .support
        .install_package(binary_package("noisy_1", &[]).into())
        .await
        .unwrap_err()
        .report();
    assert!(
        e.contains("external builder noisy: build exited with 2"),
        "{e}"
    );
    assert!(
        e.contains("STDERR-LINE-1\nSTDERR-LINE-2 without a newline"),
        "{e}"
    );
    assert!(
        !e.contains("STDOUT-LINE") && !e.contains("detect on stdout"),
        "{e}"
    );
    peer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fabric_2_chaincode_is_called_by_name_whatever_version_a_caller_names() {
    let dir = tempfile::tempdir().unwrap();
    let peer = TestPeer::builder()
        .fabric2(&dir.path().join("peer"), json!([]))
        .grpc(true)
        .build();
    // Labelled as it is named, as users often do.
    let (_, installed) = peer
        .install_and_define("samename", binary_package("samename", &[]))
        .await
        .unwrap();
    assert_eq!(installed.container_type, "PROCESS");
    ok_text(
        &peer
            .invoke("ch", "samename", &["put", "k", "v"])
            .await
            .unwrap(),
    );
    for callee in ["samename", "samename:2.0"] {
        assert_eq!(
            ok_text(
                &peer
                    .invoke("ch", "callerscc", &["call", callee, "get", "k"])
                    .await
                    .unwrap()
            ),
            "v",
            "{callee}"
        );
    }
    peer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_ignores_sigterm_is_killed_after_fabrics_5_seconds() {
    if !require_jq(
        "external_builders::a_run_that_ignores_sigterm_is_killed_after_fabrics_5_seconds",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The sample binary builder, with a run that ignores SIGTERM (a plain process: the
    // disposition survives exec, and sleep sets no handler of its own).
    let stubborn = traced(dir.path(), "stubborn", "binary");
    write_script(
        &stubborn.join("bin/run"),
        &format!(
            "#!/bin/sh\ntrap '' TERM\necho $$ > '{}/pid'\nexec sleep 600\n",
            stubborn.display()
        ),
    );
    let peer = TestPeer::builder()
        .fabric2(
            &dir.path().join("peer"),
            json!([builder("stubborn", &stubborn)]),
        )
        .build();
    let (def, installed) = peer
        .install_and_define("stubborn", binary_package("stubborn_1", &[]))
        .await
        .unwrap();
    assert_eq!(installed.container_type, "EXTERNAL");
    // Straight through the backend: run starts; stop asks, waits Fabric's 5 s, then kills.
    let vm = peer.support.controller().vm("EXTERNAL").unwrap();
    let req = peer
        .support
        .runtime()
        .start_request(&def, "EXTERNAL")
        .unwrap();
    vm.start(&req).await.unwrap();
    let pid_file = stubborn.join("pid");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !pid_file.exists() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(process_alive(pid));
    let started = Instant::now();
    vm.stop(&vm_api::StopRequest::new(
        def.ccid.clone(),
        Duration::from_millis(100),
    ))
    .await
    .unwrap();
    let took = started.elapsed();
    assert!(!process_alive(pid), "killed");
    assert!(
        took >= vm_external::STOP_GRACE && took < vm_external::STOP_GRACE * 3,
        "SIGTERM, {:?}, then SIGKILL: took {took:?}",
        vm_external::STOP_GRACE
    );
    assert_eq!(vm.wait(&def.ccid).await.ok(), None, "removed once stopped");
    peer.shutdown().await;
}
