//! Fabric 2.x's lifecycle through the `peer` CLI, as a Fabric user runs it: package, install,
//! approve, commit, `--isInit`, upgrades, collections, the custodian's launches and stops;
//! and the install paths that must not hurt the peer (names, folders, blocking, failures).

#![allow(unused_crate_dependencies, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tests::env::{kv_chaincode, processes_with_env};
use tests::peer_process::PeerProcess;

/// Writes a package of `path` (`lang`, `label`) with `peer lifecycle chaincode package`.
fn package(peer: &PeerProcess, dir: &Path, label: &str, path: &Path, lang: &str) -> PathBuf {
    let file = dir.join(format!("{label}.tar.gz"));
    let out = peer
        .cli(&[
            "lifecycle",
            "chaincode",
            "package",
            file.to_str().unwrap(),
            "--path",
            path.to_str().unwrap(),
            "--lang",
            lang,
            "--label",
            label,
        ])
        .ok();
    assert_eq!(out.stdout, "", "package prints nothing");
    file
}

/// Installs `file`; returns the package ID the CLI printed.
fn install(peer: &PeerProcess, file: &Path) -> String {
    let out = peer
        .cli(&["lifecycle", "chaincode", "install", file.to_str().unwrap()])
        .ok();
    out.stderr
        .lines()
        .find_map(|l| l.strip_prefix("Chaincode code package identifier: "))
        .unwrap_or_else(|| panic!("no package identifier in {}", out.stderr))
        .to_owned()
}

/// `approveformyorg` then `commit` of `name` at `version`/`sequence` with `extra` flags.
fn approve_and_commit(
    peer: &PeerProcess,
    channel: &str,
    name: &str,
    version: &str,
    sequence: u32,
    package_id: &str,
    extra: &[&str],
) {
    let seq = sequence.to_string();
    let definition = ["-C", channel, "-n", name, "-v", version, "--sequence", &seq];
    let mut approve = vec!["lifecycle", "chaincode", "approveformyorg"];
    approve.extend(definition);
    approve.extend(["--package-id", package_id]);
    approve.extend(extra);
    peer.cli(&approve).ok();
    let mut commit = vec!["lifecycle", "chaincode", "commit"];
    commit.extend(definition);
    commit.extend(extra);
    peer.cli(&commit).ok();
}

/// `peer chaincode install -n NAME -v VERSION -l binary -p PATH` (Fabric 1.4).
fn install_1_4(
    peer: &PeerProcess,
    name: &str,
    version: &str,
    path: &str,
) -> tests::peer_process::CliOutput {
    peer.cli(&[
        "chaincode",
        "install",
        "-n",
        name,
        "-v",
        version,
        "-l",
        "binary",
        "-p",
        path,
    ])
}

/// `peer chaincode instantiate -n NAME -v VERSION -c CTOR` (Fabric 1.4).
fn instantiate_1_4(
    peer: &PeerProcess,
    name: &str,
    version: &str,
    ctor: &str,
) -> tests::peer_process::CliOutput {
    peer.cli(&[
        "chaincode",
        "instantiate",
        "-n",
        name,
        "-v",
        version,
        "-c",
        ctor,
    ])
}

/// `querycommitted -C CHANNEL -n NAME --output json`, parsed.
fn committed_json(peer: &PeerProcess, channel: &str, name: &str) -> serde_json::Value {
    let out = peer
        .cli(&[
            "lifecycle",
            "chaincode",
            "querycommitted",
            "-C",
            channel,
            "-n",
            name,
            "-O",
            "json",
        ])
        .ok();
    serde_json::from_str(&out.stdout).unwrap()
}

fn invoke(
    peer: &PeerProcess,
    channel: &str,
    name: &str,
    ctor: &str,
) -> tests::peer_process::CliOutput {
    peer.cli(&["chaincode", "invoke", "-C", channel, "-n", name, "-c", ctor])
}

fn query(peer: &PeerProcess, channel: &str, name: &str, ctor: &str) -> String {
    peer.cli(&["chaincode", "query", "-C", channel, "-n", name, "-c", ctor])
        .ok()
        .stdout
}

/// Waits until `check` holds, for at most 20 s.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not happen within 20 s");
}

#[test]
fn fabric2_lifecycle_from_package_to_upgrade_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut peer = PeerProcess::start(&dir.path().join("peer"), &[], &[]);
    let file = package(&peer, dir.path(), "kv_1", &kv_chaincode(), "binary");
    // The ID needs no peer; install prints the same.
    let calculated = peer
        .cli(&[
            "lifecycle",
            "chaincode",
            "calculatepackageid",
            file.to_str().unwrap(),
        ])
        .ok()
        .stdout;
    let id = install(&peer, &file);
    assert_eq!(calculated, format!("{id}\n"));
    assert!(
        id.starts_with("kv_1:") && id.len() == "kv_1:".len() + 64,
        "{id}"
    );
    let json = peer
        .cli(&[
            "lifecycle",
            "chaincode",
            "calculatepackageid",
            file.to_str().unwrap(),
            "-O",
            "json",
        ])
        .ok()
        .stdout;
    assert_eq!(json, format!("{{\n\t\"package_id\": \"{id}\"\n}}\n"));
    // Installing it again is Fabric's error.
    let again = peer
        .cli(&["lifecycle", "chaincode", "install", file.to_str().unwrap()])
        .failed();
    assert!(
        again.stderr.contains(&format!(
            "chaincode already successfully installed (package ID '{id}')"
        )),
        "{}",
        again.stderr
    );
    let installed = peer.cli(&["lifecycle", "chaincode", "queryinstalled"]).ok();
    assert_eq!(
        installed.stdout,
        format!("Installed chaincodes on peer:\nPackage ID: {id}, Label: kv_1\n")
    );
    let downloads = dir.path().join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    peer.cli(&[
        "lifecycle",
        "chaincode",
        "getinstalledpackage",
        "--package-id",
        &id,
        "--output-directory",
        downloads.to_str().unwrap(),
    ])
    .ok();
    assert_eq!(
        std::fs::read(downloads.join(format!("{id}.tar.gz"))).unwrap(),
        std::fs::read(&file).unwrap(),
        "the installed package is the uploaded one"
    );

    // Approve with --init-required and a signature policy; the sequence rules are Fabric's.
    let policy = "OR('SampleOrg.member')";
    let wrong = peer
        .cli(&[
            "lifecycle",
            "chaincode",
            "approveformyorg",
            "-C",
            "mychannel",
            "-n",
            "kv",
            "-v",
            "1.0",
            "--sequence",
            "3",
            "--package-id",
            &id,
        ])
        .failed();
    assert!(
        wrong.stderr.contains(
            "failed to invoke backing implementation of 'ApproveChaincodeDefinitionForMyOrg': requested sequence 3 is larger than the next available sequence number 1"
        ),
        "{}",
        wrong.stderr
    );
    peer.cli(&[
        "lifecycle",
        "chaincode",
        "approveformyorg",
        "-C",
        "mychannel",
        "-n",
        "kv",
        "-v",
        "1.0",
        "--sequence",
        "1",
        "--package-id",
        &id,
        "--init-required",
        "--signature-policy",
        policy,
    ])
    .ok();
    let approved = peer
        .cli(&[
            "lifecycle",
            "chaincode",
            "queryapproved",
            "-C",
            "mychannel",
            "-n",
            "kv",
        ])
        .ok()
        .stdout;
    assert_eq!(
        approved,
        format!(
            "Approved chaincode definition for chaincode 'kv' on channel 'mychannel':\n\
             sequence: 1, version: 1.0, init-required: true, package-id: {id}, endorsement plugin: escc, validation plugin: vscc\n"
        )
    );
    // Readiness: the same definition is approved; another (no --init-required) is not.
    let ready = peer
        .cli(&[
            "lifecycle",
            "chaincode",
            "checkcommitreadiness",
            "-C",
            "mychannel",
            "-n",
            "kv",
            "-v",
            "1.0",
            "--sequence",
            "1",
            "--init-required",
            "--signature-policy",
            policy,
        ])
        .ok()
        .stdout;
    assert_eq!(
        ready,
        "Chaincode definition for chaincode 'kv', version '1.0', sequence '1' on channel 'mychannel' approval status by org:\nSampleOrg: true\n"
    );
    let not_ready = peer
        .cli(&[
            "lifecycle",
            "chaincode",
            "checkcommitreadiness",
            "-C",
            "mychannel",
            "-n",
            "kv",
            "-v",
            "1.0",
            "--sequence",
            "1",
            "--signature-policy",
            policy,
            "-O",
            "json",
        ])
        .ok()
        .stdout;
    assert_eq!(
        not_ready,
        "{\n\t\"approvals\": {\n\t\t\"SampleOrg\": false\n\t}\n}\n"
    );
    let refused = peer
        .cli(&[
            "lifecycle",
            "chaincode",
            "commit",
            "-C",
            "mychannel",
            "-n",
            "kv",
            "-v",
            "1.0",
            "--sequence",
            "1",
            "--signature-policy",
            policy,
        ])
        .failed();
    assert!(
        refused
            .stderr
            .contains("chaincode definition not agreed to by this org (SampleOrg)"),
        "{}",
        refused.stderr
    );
    // Nothing runs before the commit; the commit launches the chaincode by itself.
    assert!(processes_with_env("CORE_CHAINCODE_ID_NAME", &id).is_empty());
    peer.cli(&[
        "lifecycle",
        "chaincode",
        "commit",
        "-C",
        "mychannel",
        "-n",
        "kv",
        "-v",
        "1.0",
        "--sequence",
        "1",
        "--init-required",
        "--signature-policy",
        policy,
    ])
    .ok();
    eventually("the launch at commit", || {
        processes_with_env("CORE_CHAINCODE_ID_NAME", &id).len() == 1
    });
    let committed = peer
        .cli(&[
            "lifecycle",
            "chaincode",
            "querycommitted",
            "-C",
            "mychannel",
            "-n",
            "kv",
        ])
        .ok()
        .stdout;
    assert_eq!(
        committed,
        "Committed chaincode definition for chaincode 'kv' on channel 'mychannel':\n\
         Version: 1.0, Sequence: 1, Endorsement Plugin: escc, Validation Plugin: vscc, Approvals: [SampleOrg: true]\n"
    );
    // The signature policy is stored: Fabric's JSON shows it as the encoded ApplicationPolicy.
    let json = committed_json(&peer, "mychannel", "kv");
    assert_eq!(json["init_required"], true);
    let expected_policy = {
        use prost::Message;
        base64_of(
            &peer_support::policy::application_policy(Some(policy), None)
                .unwrap()
                .encode_to_vec(),
        )
    };
    assert_eq!(json["validation_parameter"], expected_policy.as_str());

    // --init-required: nothing before Init, Init once.
    let early = invoke(&peer, "mychannel", "kv", r#"{"Args":["put","a","1"]}"#).failed();
    assert!(
        early.stderr.contains(
            "chaincode 'kv' has not been initialized for this version, must call as init first"
        ),
        "{}",
        early.stderr
    );
    let init = peer
        .cli(&[
            "chaincode",
            "invoke",
            "-n",
            "kv",
            "--isInit",
            "-c",
            r#"{"Args":["init","seed","s0"]}"#,
        ])
        .ok();
    assert!(
        init.stderr
            .contains("Chaincode invoke successful. result: status:200 txid:"),
        "{}",
        init.stderr
    );
    let twice = peer
        .cli(&[
            "chaincode",
            "invoke",
            "-n",
            "kv",
            "--isInit",
            "-c",
            r#"{"Args":["init"]}"#,
        ])
        .failed();
    assert!(
        twice
            .stderr
            .contains("chaincode 'kv' is already initialized but called as init"),
        "{}",
        twice.stderr
    );
    invoke(&peer, "mychannel", "kv", r#"{"Args":["put","a","1"]}"#).ok();
    assert_eq!(
        query(&peer, "mychannel", "kv", r#"{"Args":["get","seed"]}"#),
        "s0\n"
    );

    // An upgrade: a new package, the next sequence, no Init needed. The old package, used
    // by no definition any more, is stopped; the state stays.
    let file2 = package(&peer, dir.path(), "kv_2", &kv_chaincode(), "binary");
    let id2 = install(&peer, &file2);
    approve_and_commit(&peer, "mychannel", "kv", "2.0", 2, &id2, &[]);
    eventually("the old package's stop", || {
        processes_with_env("CORE_CHAINCODE_ID_NAME", &id).is_empty()
    });
    eventually("the new package's launch", || {
        processes_with_env("CORE_CHAINCODE_ID_NAME", &id2).len() == 1
    });
    assert_eq!(
        query(&peer, "mychannel", "kv", r#"{"Args":["get","a"]}"#),
        "1\n"
    );
    let installed = peer
        .cli(&[
            "lifecycle",
            "chaincode",
            "queryinstalled",
            "--output",
            "json",
        ])
        .ok()
        .stdout;
    let installed: serde_json::Value = serde_json::from_str(&installed).unwrap();
    let references: Vec<&serde_json::Value> = installed["installed_chaincodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["references"])
        .collect();
    assert_eq!(
        references,
        [
            &serde_json::Value::Null,
            &serde_json::json!({"mychannel": {"chaincodes": [{"name": "kv", "version": "2.0"}]}})
        ],
        "{installed}"
    );

    // After a restart the definition holds and the custodian launches its chaincode.
    assert!(peer.terminate().success());
    peer.restart();
    eventually("the launch at start", || {
        processes_with_env("CORE_CHAINCODE_ID_NAME", &id2).len() == 1
    });
    let all = peer
        .cli(&[
            "lifecycle",
            "chaincode",
            "querycommitted",
            "-C",
            "mychannel",
        ])
        .ok()
        .stdout;
    assert_eq!(
        all,
        "Committed chaincode definitions on channel 'mychannel':\n\
         Name: kv, Version: 2.0, Sequence: 2, Endorsement Plugin: escc, Validation Plugin: vscc\n"
    );
    assert_eq!(
        query(&peer, "mychannel", "kv", r#"{"Args":["get","a"]}"#),
        "1\n"
    );
    let missing = peer
        .cli(&[
            "lifecycle",
            "chaincode",
            "querycommitted",
            "-C",
            "mychannel",
            "-n",
            "nosuch",
        ])
        .failed();
    assert!(
        missing
            .stderr
            .contains("query failed with status: 404 - namespace nosuch is not defined"),
        "{}",
        missing.stderr
    );
    assert!(peer.terminate().success());
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn one_process_per_package_serves_every_channel() {
    let dir = tempfile::tempdir().unwrap();
    let peer = PeerProcess::start(&dir.path().join("peer"), &[], &[]);
    let id = install(
        &peer,
        &package(&peer, dir.path(), "kv_channels", &kv_chaincode(), "binary"),
    );
    approve_and_commit(&peer, "mychannel", "kv", "1", 1, &id, &[]);
    approve_and_commit(&peer, "other", "assets", "1", 1, &id, &[]);
    invoke(
        &peer,
        "mychannel",
        "kv",
        r#"{"Args":["put","k","on mychannel"]}"#,
    )
    .ok();
    invoke(
        &peer,
        "other",
        "assets",
        r#"{"Args":["put","k","on other"]}"#,
    )
    .ok();
    assert_eq!(
        query(&peer, "mychannel", "kv", r#"{"Args":["get","k"]}"#),
        "on mychannel\n"
    );
    assert_eq!(
        query(&peer, "other", "assets", r#"{"Args":["get","k"]}"#),
        "on other\n"
    );
    assert_eq!(
        processes_with_env("CORE_CHAINCODE_ID_NAME", &id).len(),
        1,
        "one process for the package"
    );
}

#[test]
fn private_data_only_in_the_definitions_collections() {
    let dir = tempfile::tempdir().unwrap();
    let peer = PeerProcess::start(&dir.path().join("peer"), &[], &[]);
    let id = install(
        &peer,
        &package(&peer, dir.path(), "kv_private", &kv_chaincode(), "binary"),
    );
    let collections = dir.path().join("collections.json");
    std::fs::write(
        &collections,
        r#"[{"name":"secrets","policy":"OR('SampleOrg.member')","requiredPeerCount":0,
             "maxPeerCount":1,"blockToLive":0,"memberOnlyRead":true,"memberOnlyWrite":true}]"#,
    )
    .unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"[{"name":"x","policy":"NOPE("}]"#).unwrap();
    let out = peer
        .cli(&[
            "lifecycle",
            "chaincode",
            "approveformyorg",
            "-C",
            "mychannel",
            "-n",
            "kv",
            "-v",
            "1",
            "--sequence",
            "1",
            "--package-id",
            &id,
            "--collections-config",
            bad.to_str().unwrap(),
        ])
        .failed();
    assert!(
        out.stderr
            .contains("invalid collection configuration in file"),
        "{}",
        out.stderr
    );
    approve_and_commit(
        &peer,
        "mychannel",
        "kv",
        "1",
        1,
        &id,
        &["--collections-config", collections.to_str().unwrap()],
    );
    invoke(
        &peer,
        "mychannel",
        "kv",
        r#"{"Args":["pput","secrets","k","v"]}"#,
    )
    .ok();
    assert_eq!(
        query(
            &peer,
            "mychannel",
            "kv",
            r#"{"Args":["pget","secrets","k"]}"#
        ),
        "v\n"
    );
    let out = invoke(
        &peer,
        "mychannel",
        "kv",
        r#"{"Args":["pput","other","k","v"]}"#,
    )
    .failed();
    assert!(
        out.stderr.contains("other") && out.stderr.contains("could not be found"),
        "{}",
        out.stderr
    );
    let json = committed_json(&peer, "mychannel", "kv");
    assert_eq!(
        json["collections"]["config"][0]["Payload"]["StaticCollectionConfig"]["name"], "secrets",
        "{json}"
    );
}

#[test]
fn a_committed_definition_takes_over_from_a_1_4_instantiation() {
    let dir = tempfile::tempdir().unwrap();
    let peer = PeerProcess::start(&dir.path().join("peer"), &[], &[]);
    let kv = kv_chaincode();
    install_1_4(&peer, "kv", "1", kv.to_str().unwrap()).ok();
    instantiate_1_4(&peer, "kv", "1", r#"{"Args":["init","seed","1.4"]}"#).ok();
    assert!(query(&peer, "mychannel", "kv", r#"{"Args":["whoami"]}"#).contains("mspid"));
    let id = install(
        &peer,
        &package(&peer, dir.path(), "kv_migrated", &kv, "binary"),
    );
    approve_and_commit(&peer, "mychannel", "kv", "2", 1, &id, &[]);
    // The 2.x package serves the name now, over the same state.
    assert_eq!(
        query(&peer, "mychannel", "kv", r#"{"Args":["get","seed"]}"#),
        "1.4\n"
    );
    assert_eq!(processes_with_env("CORE_CHAINCODE_ID_NAME", &id).len(), 1);
    // A 1.4 instantiate of that name on that channel is refused from now on.
    let out = peer
        .cli(&[
            "chaincode",
            "instantiate",
            "-n",
            "kv",
            "-v",
            "1",
            "-c",
            r#"{"Args":[]}"#,
        ])
        .failed();
    assert!(
        out.stderr.contains("has a Fabric 2.x definition"),
        "{}",
        out.stderr
    );
}

/// A shell script chaincode that leaves a mark when run.
fn script(dir: &Path, mark: &Path) -> PathBuf {
    let path = dir.join("evil.sh");
    std::fs::write(
        &path,
        format!("#!/bin/sh\ntouch {}\nsleep 30\n", mark.display()),
    )
    .unwrap();
    let mut perms = std::fs::metadata(&path).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&path, perms).unwrap();
    path
}

#[test]
fn names_that_once_shared_a_folder_stay_apart_in_both_orders_and_across_a_restart() {
    for kv_first in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let mut peer = PeerProcess::start(&dir.path().join("peer"), &[], &[]);
        let mark = dir.path().join("script-ran");
        let evil = script(dir.path(), &mark);
        let kv = kv_chaincode();
        let install_kv = |peer: &PeerProcess| {
            install_1_4(peer, "a-b", "c", kv.to_str().unwrap()).ok();
        };
        let install_script = |peer: &PeerProcess| {
            install_1_4(peer, "a", "b-c", evil.to_str().unwrap()).ok();
        };
        if kv_first {
            install_kv(&peer);
            install_script(&peer);
        } else {
            install_script(&peer);
            install_kv(&peer);
        }
        instantiate_1_4(&peer, "a-b", "c", r#"{"Args":["init","x","kv"]}"#).ok();
        assert!(peer.terminate().success());
        peer.restart();
        assert_eq!(
            query(&peer, "mychannel", "a-b", r#"{"Args":["get","x"]}"#),
            "kv\n",
            "kv_first={kv_first}"
        );
        assert!(!mark.exists(), "the script never ran (kv_first={kv_first})");
        let list = peer.cli(&["chaincode", "list", "--installed"]).ok().stdout;
        let ids: Vec<&str> = list
            .lines()
            .filter_map(|l| l.split("Package ID: ").nth(1))
            .collect();
        assert_eq!(ids.len(), 2, "{list}");
        assert_ne!(ids[0], ids[1], "{list}");
        assert!(peer.terminate().success());
    }
}

#[test]
fn names_versions_and_labels_follow_fabrics_rules_at_the_peer_too() {
    let dir = tempfile::tempdir().unwrap();
    let peer = PeerProcess::start(&dir.path().join("peer"), &[], &[]);
    let kv = kv_chaincode();
    // The CLI checks first …
    let out = peer
        .cli(&[
            "chaincode",
            "install",
            "-n",
            "kv",
            "-v",
            "1\nFAKE LOG LINE",
            "-p",
            kv.to_str().unwrap(),
        ])
        .failed();
    assert!(out.stderr.contains("^[A-Za-z0-9_.+-]+$"), "{}", out.stderr);
    let out = peer
        .cli(&[
            "lifecycle",
            "chaincode",
            "package",
            "x.tgz",
            "-p",
            kv.to_str().unwrap(),
            "-l",
            "binary",
            "--label=-bad",
        ])
        .failed();
    assert!(
        out.stderr.contains("invalid label '-bad'"),
        "{}",
        out.stderr
    );
    // … and the peer checks what any client sends.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let identity = peer::identity::Identity::load(&peer.data.join("msp"), "SampleOrg").unwrap();
    let forged = runtime.block_on(async {
        let mut admin = peer::client::connect(&peer::cli::ClientOptions::to(peer.admin.clone()))
            .await
            .unwrap();
        let args = proto::admin::LegacyInstallArgs {
            name: "kv".into(),
            version: "1\nFAKE LOG LINE".into(),
            vm: String::new(),
            package: peer::client::package_path(&kv, "binary", "kv_1")
                .unwrap()
                .into(),
        };
        peer::client::admin_call(
            &mut admin,
            &identity,
            "",
            "InstallLegacy",
            prost::Message::encode_to_vec(&args),
        )
        .await
        .unwrap_err()
    });
    let text = format!("{forged:#}");
    assert!(
        text.contains("invalid version \"1\\nFAKE LOG LINE\""),
        "{text}"
    );
    let list = peer.cli(&["chaincode", "list", "--installed"]).ok();
    assert_eq!(list.stdout, "", "nothing installed, no forged line");
    for (args, rule) in [
        (
            vec![
                "chaincode",
                "install",
                "-n",
                "a--b",
                "-v",
                "1",
                "-p",
                kv.to_str().unwrap(),
            ],
            "^[a-zA-Z0-9]+([-_][a-zA-Z0-9]+)*$",
        ),
        (
            vec![
                "chaincode",
                "query",
                "-C",
                "Bad_Channel",
                "-n",
                "kv",
                "-c",
                r#"{"Args":[]}"#,
            ],
            "^[a-z][a-z0-9.-]*$",
        ),
        (
            vec![
                "chaincode",
                "install",
                "-n",
                "kvscc",
                "-v",
                "1",
                "-p",
                kv.to_str().unwrap(),
            ],
            "kvscc is the name of a system chaincode",
        ),
    ] {
        let out = peer.cli(&args).failed();
        assert!(out.stderr.contains(rule), "{args:?}: {}", out.stderr);
    }
}

#[test]
fn an_install_is_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let peer = PeerProcess::start(&dir.path().join("peer"), &[], &[]);
    // A folder holding no executable, as a binary chaincode: refused at install.
    let folder = dir.path().join("not-a-binary");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("README"), "text").unwrap();
    let out = peer
        .cli(&[
            "chaincode",
            "install",
            "-n",
            "kv",
            "-v",
            "1",
            "-l",
            "binary",
            "-p",
            folder.to_str().unwrap(),
        ])
        .failed();
    assert!(out.stderr.contains("is not executable"), "{}", out.stderr);
    assert_eq!(
        peer.cli(&["chaincode", "list", "--installed"]).ok().stdout,
        ""
    );
    assert_eq!(
        peer.cli(&["lifecycle", "chaincode", "queryinstalled"])
            .ok()
            .stdout,
        "Installed chaincodes on peer:\n",
        "nothing kept"
    );
    // A FIFO is read by nobody: the CLI refuses it on its own machine, the peer never sees it.
    let fifo = dir.path().join("fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let out = peer
        .cli(&[
            "chaincode",
            "install",
            "-n",
            "kv",
            "-v",
            "1",
            "-p",
            fifo.to_str().unwrap(),
        ])
        .failed();
    assert!(
        out.stderr.contains("is neither a file nor a folder"),
        "{}",
        out.stderr
    );
    // The same name and version install once fixed.
    let kv = kv_chaincode();
    install_1_4(&peer, "kv", "1", kv.to_str().unwrap()).ok();
    // A 2.x package that no backend builds is not kept either.
    let cobol = package(&peer, dir.path(), "legacy", &kv, "cobol");
    let out = peer
        .cli(&["lifecycle", "chaincode", "install", cobol.to_str().unwrap()])
        .failed();
    assert!(
        out.stderr.contains("chaincode install failed"),
        "{}",
        out.stderr
    );
    let installed = peer
        .cli(&["lifecycle", "chaincode", "queryinstalled"])
        .ok()
        .stdout;
    assert!(!installed.contains("legacy:"), "{installed}");
    let stored: Vec<_> = std::fs::read_dir(peer.data.join("lifecycle/chaincodes"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(stored.len(), 1, "only kv's package is kept: {stored:?}");
}

/// An external builder whose `build` waits until `flag` exists (for packages of type `slow`).
fn slow_builder(dir: &Path, flag: &Path) -> PathBuf {
    let root = dir.join("slow-builder");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    let scripts = [
        (
            "detect",
            "#!/bin/sh\ngrep -q '\"type\":\"slow\"' \"$2/metadata.json\"\n".to_owned(),
        ),
        (
            "build",
            format!(
                "#!/bin/sh\necho slow build waiting >&2\ni=0\nwhile [ ! -f {} ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done\ncp -r \"$1\"/. \"$3\"/\n",
                flag.display()
            ),
        ),
    ];
    for (name, text) in scripts {
        let path = root.join("bin").join(name);
        std::fs::write(&path, text).unwrap();
        let mut perms = std::fs::metadata(&path).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&path, perms).unwrap();
    }
    root
}

#[test]
fn installs_held_in_their_builds_never_stop_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("let-builds-finish");
    let builder = slow_builder(dir.path(), &flag);
    let builders = serde_json::json!([{"name": "slow", "path": builder}]).to_string();
    let peer = PeerProcess::start(
        &dir.path().join("peer"),
        &[("CORE_CHAINCODE_EXTERNALBUILDERS", &builders)],
        &[],
    );
    let kv = kv_chaincode();
    install_1_4(&peer, "kv", "1", kv.to_str().unwrap()).ok();
    instantiate_1_4(&peer, "kv", "1", r#"{"Args":[]}"#).ok();
    // Two installs held in their builds: more than the runtime's two workers would survive
    // if either blocked one.
    let packages: Vec<PathBuf> = (1..=2)
        .map(|i| {
            let src = dir.path().join(format!("src{i}"));
            std::fs::create_dir_all(&src).unwrap();
            std::fs::write(src.join("code"), format!("{i}")).unwrap();
            package(&peer, dir.path(), &format!("slow{i}"), &src, "slow")
        })
        .collect();
    let installs: Vec<_> = packages
        .into_iter()
        .map(|file| {
            let mut cmd = std::process::Command::new(tests::env::workspace_binary("peer"));
            cmd.env("CORE_PEER_FILESYSTEMPATH", &peer.data)
                .env("CORE_PEER_ADDRESS", &peer.admin)
                .args(["lifecycle", "chaincode", "install", file.to_str().unwrap()])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped());
            cmd.spawn().unwrap()
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while peer.log().matches("slow build waiting").count() < 2 {
        assert!(
            Instant::now() < deadline,
            "the builds did not start:\n{}",
            peer.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let started = Instant::now();
    invoke(&peer, "mychannel", "kv", r#"{"Args":["put","k","v"]}"#).ok();
    assert_eq!(
        query(&peer, "mychannel", "kv", r#"{"Args":["get","k"]}"#),
        "v\n"
    );
    assert!(
        peer.cli(&["chaincode", "list", "--installed"])
            .ok()
            .stdout
            .contains("Name: kv"),
        "list answers too"
    );
    let answered = started.elapsed();
    let mut installs = installs;
    for install in &mut installs {
        assert!(
            install.try_wait().unwrap().is_none(),
            "the installs are still held after the transactions were answered ({answered:?})"
        );
    }
    std::fs::write(&flag, "go").unwrap();
    for install in installs {
        let out = install.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(
            stderr.contains("Chaincode code package identifier: slow"),
            "{stderr}"
        );
    }
}

#[test]
fn init_is_required_of_chaincode_to_chaincode_calls_and_its_key_is_the_peers() {
    let dir = tempfile::tempdir().unwrap();
    let peer = PeerProcess::start(&dir.path().join("peer"), &[], &[]);
    // Two packages: a call into the same process within one transaction is refused, as in
    // Fabric.
    let caller = install(
        &peer,
        &package(&peer, dir.path(), "caller", &kv_chaincode(), "binary"),
    );
    let callee = install(
        &peer,
        &package(&peer, dir.path(), "callee", &kv_chaincode(), "binary"),
    );
    approve_and_commit(&peer, "mychannel", "caller", "1", 1, &caller, &[]);
    approve_and_commit(
        &peer,
        "mychannel",
        "callee",
        "1",
        1,
        &callee,
        &["--init-required"],
    );
    let out = invoke(
        &peer,
        "mychannel",
        "caller",
        r#"{"Args":["call","callee","get","k"]}"#,
    )
    .failed();
    assert!(
        out.stderr.contains(
            "chaincode 'callee' has not been initialized for this version, must call as init first"
        ),
        "{}",
        out.stderr
    );
    // A chaincode cannot forge (or reset) the peer's record of its Init.
    let out = invoke(
        &peer,
        "mychannel",
        "caller",
        r#"{"Args":["put","\u0000\udbff\udfffinitialized","1"]}"#,
    )
    .failed();
    assert!(
        out.stderr.contains("is reserved for the peer"),
        "{}",
        out.stderr
    );
    peer.cli(&[
        "chaincode",
        "invoke",
        "-n",
        "callee",
        "--isInit",
        "-c",
        r#"{"Args":["init","k","v"]}"#,
    ])
    .ok();
    let out = invoke(
        &peer,
        "mychannel",
        "caller",
        r#"{"Args":["call","callee","get","k"]}"#,
    )
    .ok();
    assert_eq!(out.stdout, "v\n");
}

#[test]
fn a_package_may_be_approved_before_it_is_installed_and_switched_by_approving_again() {
    let dir = tempfile::tempdir().unwrap();
    let peer = PeerProcess::start(&dir.path().join("peer"), &[], &[]);
    let first = package(&peer, dir.path(), "kv_a", &kv_chaincode(), "binary");
    let first_id = peer
        .cli(&[
            "lifecycle",
            "chaincode",
            "calculatepackageid",
            first.to_str().unwrap(),
        ])
        .ok()
        .stdout
        .trim()
        .to_owned();
    approve_and_commit(&peer, "mychannel", "kv", "1", 1, &first_id, &[]);
    let out = invoke(&peer, "mychannel", "kv", r#"{"Args":["put","k","v"]}"#).failed();
    assert!(
        out.stderr
            .contains("chaincode definition for 'kv' exists, but chaincode is not installed"),
        "{}",
        out.stderr
    );
    assert_eq!(install(&peer, &first), first_id);
    eventually("the launch at install", || {
        processes_with_env("CORE_CHAINCODE_ID_NAME", &first_id).len() == 1
    });
    invoke(&peer, "mychannel", "kv", r#"{"Args":["put","k","v"]}"#).ok();
    // The same definition approved again with another package: the chaincode switches.
    let second_id = install(
        &peer,
        &package(&peer, dir.path(), "kv_b", &kv_chaincode(), "binary"),
    );
    peer.cli(&[
        "lifecycle",
        "chaincode",
        "approveformyorg",
        "-C",
        "mychannel",
        "-n",
        "kv",
        "-v",
        "1",
        "--sequence",
        "1",
        "--package-id",
        &second_id,
    ])
    .ok();
    eventually("the old package's stop", || {
        processes_with_env("CORE_CHAINCODE_ID_NAME", &first_id).is_empty()
    });
    eventually("the new package's launch", || {
        processes_with_env("CORE_CHAINCODE_ID_NAME", &second_id).len() == 1
    });
    assert_eq!(
        query(&peer, "mychannel", "kv", r#"{"Args":["get","k"]}"#),
        "v\n"
    );
}

#[test]
fn a_signed_proposal_that_changes_something_is_used_once() {
    use bytes::Bytes;
    use futures::StreamExt;
    use peer_support::proposal::{ProposalSpec, build};
    use prost::Message;
    let dir = tempfile::tempdir().unwrap();
    let peer = PeerProcess::start(&dir.path().join("peer"), &[], &[]);
    let id = install(
        &peer,
        &package(&peer, dir.path(), "kv_replay", &kv_chaincode(), "binary"),
    );
    let identity = peer::identity::Identity::load(&peer.data.join("msp"), "SampleOrg").unwrap();
    let args = proto::lifecycle::ApproveChaincodeDefinitionForMyOrgArgs {
        sequence: 1,
        name: "kv".into(),
        version: "1".into(),
        source: Some(proto::lifecycle::ChaincodeSource {
            r#type: Some(proto::lifecycle::chaincode_source::Type::LocalPackage(
                proto::lifecycle::chaincode_source::Local { package_id: id },
            )),
        }),
        ..Default::default()
    };
    let built = build(&ProposalSpec {
        channel_id: "mychannel".into(),
        chaincode: "_lifecycle".into(),
        input: proto::protos::ChaincodeInput {
            args: vec![
                Bytes::from_static(b"ApproveChaincodeDefinitionForMyOrg"),
                args.encode_to_vec().into(),
            ],
            ..Default::default()
        },
        mspid: identity.mspid.clone(),
        certificate_pem: Bytes::from(identity.cert_pem.clone()),
        nonce: Bytes::from_static(b"a nonce of twenty four b"),
        ..ProposalSpec::default()
    });
    let signed = built.signed(identity.sign(&built.proposal_bytes).unwrap());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let outcomes: Vec<Result<(), tonic::Status>> = runtime.block_on(async {
        let mut admin = peer::client::connect(&peer::cli::ClientOptions::to(peer.admin.clone()))
            .await
            .unwrap();
        let mut outcomes = Vec::new();
        for _ in 0..2 {
            let mut events = admin.lifecycle(signed.clone()).await.unwrap().into_inner();
            let mut outcome = Ok(());
            while let Some(event) = events.next().await {
                if let Err(status) = event {
                    outcome = Err(status);
                }
            }
            outcomes.push(outcome);
        }
        outcomes
    });
    assert!(outcomes[0].is_ok(), "{:?}", outcomes[0]);
    let replay = outcomes[1].as_ref().unwrap_err();
    assert_eq!(replay.code(), tonic::Code::AlreadyExists);
    assert!(
        replay.message().contains("a signed proposal is used once"),
        "{replay:?}"
    );
}

#[test]
fn fabrics_node_chaincode_through_the_2x_lifecycle() {
    let Some(node) = tests::env::require_node("lifecycle::node_kv") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // Its node_modules is a link to the bundled shim: packed as what it points to.
    let source = node.kv_package(dir.path());
    let peer = PeerProcess::start(&dir.path().join("peer"), &[], &[]);
    let id = install(
        &peer,
        &package(&peer, dir.path(), "nodekv_1", &source, "node"),
    );
    approve_and_commit(&peer, "mychannel", "nodekv", "1.0", 1, &id, &[]);
    invoke(
        &peer,
        "mychannel",
        "nodekv",
        r#"{"Args":["put","greeting","hello"]}"#,
    )
    .ok();
    assert_eq!(
        query(
            &peer,
            "mychannel",
            "nodekv",
            r#"{"Args":["get","greeting"]}"#
        ),
        "hello\n"
    );
    // The package's `start` script and the node process it starts, both named by the ID.
    assert!(!processes_with_env("CORE_CHAINCODE_ID_NAME", &id).is_empty());
}
