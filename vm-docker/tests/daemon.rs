//! The Docker backend against the daemon on this machine (images built locally; nothing
//! pulled). Without a daemon each test prints `SKIPPED: …` (a failure with REQUIRE_DOCKER=1).

#![allow(unused_crate_dependencies, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use vm_api::{
    BuildOutcome, BuildRequest, Ccid, ChaincodePackage, ClientTls, Error, Platform,
    PlatformRegistration, ProcessCommand, Settings, StartRequest, StopRequest, Vm,
};
use vm_docker::testing::{Cleanup, docker, exists, require_docker, shell_image, unique};
use vm_docker::{DockerConfig, DockerVm};

/// A platform of this test: the package is a folder with `run.sh` and `base` (the image to
/// build on); a `BROKEN` file makes its build fail.
struct Script;

impl Platform for Script {
    fn name(&self) -> &'static str {
        "test-script"
    }
    fn description(&self) -> &'static str {
        "a shell script on a base image (test)"
    }
    fn validate(&self, _: &Path) -> vm_api::Result<()> {
        Ok(())
    }
    fn build_context(&self, code: &Path, _: &Settings) -> vm_api::Result<Bytes> {
        let read = |f: &str| std::fs::read_to_string(code.join(f)).unwrap_or_default();
        let base = read("base");
        let dockerfile = if code.join("BROKEN").exists() {
            format!(
                "FROM {base}\nRUN echo 'compiling chaincode' && echo 'error: expected ; at line 7' && exit 2\n"
            )
        } else {
            format!("FROM {base}\nCOPY run.sh /run.sh\n")
        };
        let mut archive = vm_api::archive::Archive::new();
        archive
            .file("Dockerfile", dockerfile.as_bytes(), 0o644)
            .unwrap();
        archive
            .file("run.sh", read("run.sh").as_bytes(), 0o755)
            .unwrap();
        Ok(archive.finish().unwrap())
    }
    fn image_command(&self, peer_address: &str) -> Vec<String> {
        vec!["/bin/sh".into(), "/run.sh".into(), peer_address.into()]
    }
    fn process_command(&self, _: &Path, _: &str) -> vm_api::Result<ProcessCommand> {
        unimplemented!("images only")
    }
}

inventory::submit! { PlatformRegistration { platform: &Script } }

struct Fixture {
    vm: DockerVm,
    base: String,
    peer: String,
    code: tempfile::TempDir,
    _cleanup: Cleanup,
}

fn fixture() -> Fixture {
    let peer = unique("vmdocker");
    let base = format!("ccrt-test-shell:{peer}");
    let cleanup = Cleanup {
        peer_id: peer.clone(),
        images: vec![base.clone()],
    };
    shell_image(&base);
    let config = DockerConfig::from_settings(&peer, "test", &Settings::new()).unwrap();
    Fixture {
        vm: DockerVm::new(config),
        base,
        peer,
        code: tempfile::tempdir().unwrap(),
        _cleanup: cleanup,
    }
}

/// The package of `ccid`: `script` on the fixture's base image (or a broken build).
fn package(f: &Fixture, ccid: &Ccid, script: &str, broken: bool) -> ChaincodePackage {
    let dir = f.code.path().join(ccid.dashed());
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("run.sh"), script).unwrap();
    std::fs::write(dir.join("base"), &f.base).unwrap();
    if broken {
        std::fs::write(dir.join("BROKEN"), "").unwrap();
    }
    ChaincodePackage::legacy(ccid, "test-script", dir)
}

fn request(f: &Fixture, ccid: &Ccid, script: &str, broken: bool) -> StartRequest {
    let mut req = StartRequest::new(ccid.clone());
    req.package = Some(package(f, ccid, script, broken));
    req.platform = vm_api::platform("test-script").unwrap();
    req.peer.address = "127.0.0.1:7052".into();
    req.peer.msp_id = Some("TestMSP".into());
    req.peer.tls = Some(ClientTls {
        cert_pem: "CERT".into(),
        key_pem: "KEY".into(),
        root_pem: "-----BEGIN CERTIFICATE-----".into(),
    });
    req
}

fn build_request(f: &Fixture, ccid: &Ccid, broken: bool) -> BuildRequest {
    BuildRequest {
        ccid: ccid.clone(),
        package: package(f, ccid, "exit 0\n", broken),
        platform: vm_api::platform("test-script").unwrap(),
    }
}

#[tokio::test]
async fn start_builds_uploads_files_streams_output_and_wait_reports_the_exit_code() {
    if !require_docker("vm_docker::start") {
        return;
    }
    let f = fixture();
    let ccid = Ccid::new("echo", "1");
    let script = "echo \"name=$CORE_CHAINCODE_ID_NAME $CORE_PEER_LOCALMSPID peer=$1\"\ncat /etc/hyperledger/fabric/peer.crt\necho\necho bye >&2\nexit 7\n";
    f.vm.start(&request(&f, &ccid, script, false))
        .await
        .unwrap();
    let code = tokio::time::timeout(Duration::from_secs(30), f.vm.wait(&ccid))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(code, 7);
    let output = f.vm.recent_output(&ccid).await;
    assert!(
        output.contains(&"name=echo:1 TestMSP peer=127.0.0.1:7052".to_owned()),
        "{output:?}"
    );
    assert!(
        output.contains(&"-----BEGIN CERTIFICATE-----".to_owned()),
        "uploaded before start: {output:?}"
    );
    assert!(output.contains(&"bye".to_owned()), "stderr too: {output:?}");
    // Named and labelled as Fabric does.
    let names = vm_docker::names("test", &f.peer, &ccid).unwrap();
    let labels = docker(&[
        "inspect",
        "--format",
        "{{json .Config.Labels}}",
        &names.container,
    ]);
    assert!(
        labels.contains(&format!("\"io.fabric-ccrt.peer.id\":\"{}\"", f.peer)),
        "{labels}"
    );
    assert!(
        labels.contains("\"org.hyperledger.fabric.chaincode.id.name\":\"echo\""),
        "{labels}"
    );
    let image_labels = docker(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Labels}}",
        &names.image,
    ]);
    assert!(
        image_labels.contains("\"org.hyperledger.fabric.chaincode.id.version\":\"1\""),
        "{image_labels}"
    );
    // A second start replaces the exited container (and reuses the image).
    f.vm.start(&request(&f, &ccid, script, false))
        .await
        .unwrap();
    assert_eq!(f.vm.wait(&ccid).await.unwrap(), 7);
}

#[tokio::test]
async fn stop_kills_and_removes_and_what_is_gone_is_not_running() {
    if !require_docker("vm_docker::stop") {
        return;
    }
    let f = fixture();
    let ccid = Ccid::new("sleeper", "1");
    f.vm.start(&request(&f, &ccid, "exec sleep 600\n", false))
        .await
        .unwrap();
    let names = vm_docker::names("test", &f.peer, &ccid).unwrap();
    assert_eq!(
        docker(&[
            "inspect",
            "--format",
            "{{.State.Running}}",
            &names.container
        ]),
        "true"
    );
    let started = std::time::Instant::now();
    f.vm.stop(&StopRequest::new(ccid.clone(), Duration::from_millis(500)))
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(!exists(&names.container), "the container is removed");
    let e =
        f.vm.stop(&StopRequest::new(ccid.clone(), Duration::ZERO))
            .await
            .unwrap_err();
    assert!(matches!(e, Error::NotRunning { .. }), "{e}");
    assert!(matches!(
        f.vm.wait(&ccid).await,
        Err(Error::NotRunning { .. })
    ));
    // dont_remove keeps the stopped container.
    f.vm.start(&request(&f, &ccid, "exec sleep 600\n", false))
        .await
        .unwrap();
    let mut keep = StopRequest::new(ccid.clone(), Duration::ZERO);
    keep.dont_remove = true;
    f.vm.stop(&keep).await.unwrap();
    assert_eq!(
        docker(&[
            "inspect",
            "--format",
            "{{.State.Running}}",
            &names.container
        ]),
        "false"
    );
}

#[tokio::test]
async fn a_broken_build_reports_its_output() {
    if !require_docker("vm_docker::build") {
        return;
    }
    let f = fixture();
    let ccid = Ccid::new("broken", "1");
    let e = f.vm.start(&request(&f, &ccid, "", true)).await.unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, Error::Build { .. }), "{text}");
    assert!(text.contains("error: expected ; at line 7"), "{text}");
    assert!(text.contains("compiling chaincode"), "{text}");
}

#[tokio::test]
async fn a_restarted_peer_removes_its_own_leftovers_and_nobody_elses() {
    if !require_docker("vm_docker::leftovers") {
        return;
    }
    let f = fixture();
    let other = fixture();
    let ccid = Ccid::new("left", "1");
    f.vm.start(&request(&f, &ccid, "exec sleep 600\n", false))
        .await
        .unwrap();
    other
        .vm
        .start(&request(&other, &ccid, "exec sleep 600\n", false))
        .await
        .unwrap();
    let mine = vm_docker::names("test", &f.peer, &ccid).unwrap().container;
    let theirs = vm_docker::names("test", &other.peer, &ccid)
        .unwrap()
        .container;
    // The same peer starts again: a new backend with the same ids.
    let config = DockerConfig::from_settings(&f.peer, "test", &Settings::new()).unwrap();
    DockerVm::new(config).health_check().await.unwrap();
    assert!(!exists(&mine));
    assert_eq!(
        docker(&["inspect", "--format", "{{.State.Running}}", &theirs]),
        "true"
    );
}

#[tokio::test]
async fn images_of_chaincodes_the_peer_no_longer_has_can_be_removed() {
    if !require_docker("vm_docker::images") {
        return;
    }
    let f = fixture();
    let (kept, dropped) = (Ccid::new("kept", "1"), Ccid::new("dropped", "1"));
    for ccid in [&kept, &dropped] {
        f.vm.start(&request(&f, ccid, "exit 0\n", false))
            .await
            .unwrap();
        f.vm.wait(ccid).await.unwrap();
    }
    let removed =
        f.vm.remove_unused_images(std::slice::from_ref(&kept))
            .await
            .unwrap();
    let dropped_image = vm_docker::names("test", &f.peer, &dropped).unwrap().image;
    assert_eq!(removed, [format!("{dropped_image}:latest")]);
    let kept_image = vm_docker::names("test", &f.peer, &kept).unwrap().image;
    docker(&["image", "inspect", &kept_image]);
}

#[tokio::test]
async fn an_unreachable_daemon_is_a_clear_error() {
    let settings = Settings::new().with("vm.endpoint", "unix:///nonexistent/docker.sock");
    let vm = DockerVm::new(DockerConfig::from_settings("p", "n", &settings).unwrap());
    let e = vm.health_check().await.unwrap_err();
    assert!(
        e.to_string()
            .starts_with("cannot reach Docker at unix:///nonexistent/docker.sock: "),
        "{e}"
    );
    let bad = Settings::new().with("vm.endpoint", "ftp://x");
    let vm = DockerVm::new(DockerConfig::from_settings("p", "n", &bad).unwrap());
    assert!(
        vm.health_check()
            .await
            .unwrap_err()
            .to_string()
            .contains("vm.endpoint")
    );
}

#[tokio::test]
async fn the_builder_builds_a_missing_image_without_starting_anything() {
    if !require_docker("vm_docker::build_only") {
        return;
    }
    let f = fixture();
    let builder = f.vm.builder().expect("Docker builds images");
    let ccid = Ccid::new("prepared", "1");
    let outcome = builder
        .build(&build_request(&f, &ccid, false))
        .await
        .unwrap();
    let names = vm_docker::names("test", &f.peer, &ccid).unwrap();
    assert_eq!(
        outcome,
        BuildOutcome::Built {
            detail: format!("image {}", names.image)
        }
    );
    docker(&["image", "inspect", &names.image]);
    assert!(!exists(&names.container), "no container");
    // Present now: a second build builds nothing (a broken package is not even looked at).
    builder
        .build(&build_request(&f, &ccid, true))
        .await
        .unwrap();
    let e = builder
        .build(&build_request(&f, &Ccid::new("unbuildable", "1"), true))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("error: expected ; at line 7"), "{e}");
    // A package type without a platform is declined, not an error.
    let mut java = build_request(&f, &Ccid::new("j", "1"), false);
    java.package.kind = "java".into();
    java.platform = None;
    assert!(matches!(
        builder.build(&java).await.unwrap(),
        BuildOutcome::Declined { .. }
    ));
}
