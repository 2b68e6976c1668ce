//! The `peer` binary, started as a subprocess on free ports, driven through its CLI as a Fabric
//! user would: install, instantiate, invoke, query, list, stop; restarts, crashes, conflicts,
//! dev mode, Docker mode and bad input.

#![allow(unused_crate_dependencies, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use tests::env::{
    kv_chaincode, process_alive, require_node, run_node_chaincode, static_kv_chaincode,
};
use tests::peer_process::{PeerProcess, children_of};

fn kv_path() -> String {
    kv_chaincode().display().to_string()
}

fn install_and_instantiate(peer: &PeerProcess, name: &str, lang: &str, path: &str) {
    let out = peer
        .cli(&[
            "chaincode",
            "install",
            "-n",
            name,
            "-v",
            "1",
            "-l",
            lang,
            "-p",
            path,
        ])
        .ok();
    assert!(
        out.stderr.contains(&format!("Installed {name}:1")),
        "{}",
        out.stderr
    );
    let out = peer
        .cli(&[
            "chaincode",
            "instantiate",
            "-n",
            name,
            "-v",
            "1",
            "-c",
            r#"{"Args":["init","seed","s0"]}"#,
        ])
        .ok();
    assert!(
        out.stderr
            .contains(&format!("Instantiated {name}:1 on channel mychannel")),
        "{}",
        out.stderr
    );
}

fn query(peer: &PeerProcess, name: &str, ctor: &str) -> String {
    peer.cli(&["chaincode", "query", "-n", name, "-c", ctor])
        .ok()
        .stdout
}

/// The kv scenario through the CLI, for any kv chaincode.
fn kv_through_the_cli(peer: &PeerProcess, name: &str) {
    let out = peer
        .cli(&[
            "chaincode",
            "invoke",
            "-n",
            name,
            "-c",
            r#"{"Args":["put","greeting","hello"]}"#,
        ])
        .ok();
    assert_eq!(out.stdout, "ok\n");
    assert!(
        out.stderr
            .contains("Chaincode invoke successful. result: status:200"),
        "{}",
        out.stderr
    );
    assert_eq!(
        query(peer, name, r#"{"Args":["get","greeting"]}"#),
        "hello\n"
    );
    assert_eq!(
        query(peer, name, r#"{"function":"get","Args":["greeting"]}"#),
        "hello\n"
    );
    assert_eq!(
        query(peer, name, r#"{"Args":["get","seed"]}"#),
        "s0\n",
        "instantiate ran Init"
    );
    // A query never changes state, even one that writes.
    assert_eq!(
        query(peer, name, r#"{"Args":["put","greeting","changed"]}"#),
        "ok\n"
    );
    assert_eq!(
        query(peer, name, r#"{"Args":["get","greeting"]}"#),
        "hello\n"
    );
    // The chaincode's own error: non-zero, its message on stderr, nothing on stdout.
    let out = peer
        .cli(&[
            "chaincode",
            "query",
            "-n",
            name,
            "-c",
            r#"{"Args":["get","missing"]}"#,
        ])
        .failed();
    assert!(
        out.stderr.contains("no such key: missing"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stdout, "");
    let out = peer
        .cli(&[
            "chaincode",
            "invoke",
            "-n",
            name,
            "-c",
            r#"{"Args":["fail","on purpose"]}"#,
        ])
        .failed();
    assert!(
        out.stderr.contains("returned status 500: on purpose"),
        "{}",
        out.stderr
    );
    // Other channels are separate.
    let out = peer
        .cli(&[
            "chaincode",
            "query",
            "-C",
            "otherchannel",
            "-n",
            name,
            "-c",
            r#"{"Args":["get","greeting"]}"#,
        ])
        .failed();
    assert!(
        out.stderr
            .contains("is not defined on channel \"otherchannel\""),
        "{}",
        out.stderr
    );
}

#[test]
fn the_rust_chaincode_through_the_cli_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut peer = PeerProcess::start(dir.path(), &[], &[]);
    install_and_instantiate(&peer, "kv", "binary", &kv_path());
    kv_through_the_cli(&peer, "kv");
    let list = peer.cli(&["chaincode", "list", "--installed"]).ok().stdout;
    assert!(
        list.contains(
            "Name: kv, Version: 1, Type: binary, VM: PROCESS, Channels: mychannel, Running: yes"
        ),
        "{list}"
    );
    let out = peer
        .cli(&["chaincode", "list", "--instantiated", "-C", "mychannel"])
        .ok();
    assert!(out.stdout.contains("Name: kv"), "{}", out.stdout);
    let out = peer.cli(&["chaincode", "stop", "-n", "kv"]).ok();
    assert!(out.stderr.contains("Stopped kv:1"), "{}", out.stderr);
    assert!(
        peer.cli(&["chaincode", "list", "--installed"])
            .ok()
            .stdout
            .contains("Running: no")
    );
    // A stop is an INFO line, not a warning.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !peer.log().contains("chaincode stopped") && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = peer.log();
    assert!(
        log.lines()
            .any(|l| l.contains(" INFO ") && l.contains("chaincode stopped")),
        "{log}"
    );
    assert!(!log.contains("ended on its own"), "{log}");
    // The transient map reaches the chaincode; another MSP folder, given by flag, signs.
    let secret = peer
        .cli(&[
            "chaincode",
            "invoke",
            "-n",
            "kv",
            "-c",
            r#"{"Args":["transient","secret"]}"#,
            "--transient",
            r#"{"secret":"czM="}"#,
        ])
        .ok();
    assert_eq!(secret.stdout, "s3\n");
    // A member of the peer's organisation, issued by its development CA, signs with the
    // folder given by flag.
    let member = dir.path().join("member-msp");
    peer.cli(&[
        "identity",
        "issue",
        "--name",
        "user1",
        "--output",
        member.to_str().unwrap(),
    ])
    .ok();
    let me = peer
        .cli(&[
            "chaincode",
            "query",
            "-n",
            "kv",
            "-c",
            r#"{"Args":["whoami"]}"#,
            "--mspconfigpath",
            member.to_str().unwrap(),
        ])
        .ok();
    let me: serde_json::Value = serde_json::from_str(me.stdout.trim()).unwrap();
    assert_eq!(me["mspid"], "SampleOrg");
    // The chaincode's output is in the peer's log, under its name.
    let log = peer.log();
    assert!(
        log.lines()
            .any(|l| l.contains(" chaincode: ") && l.contains("chaincode=kv:1")),
        "{log}"
    );
    // A clean stop exits 0; the state, the chaincode and its instantiation survive the restart.
    assert!(peer.terminate().success());
    peer.restart();
    assert_eq!(
        query(&peer, "kv", r#"{"Args":["get","greeting"]}"#),
        "hello\n"
    );
    let history: serde_json::Value =
        serde_json::from_str(&query(&peer, "kv", r#"{"Args":["history","greeting"]}"#)).unwrap();
    assert_eq!(
        history.as_array().unwrap().len(),
        1,
        "one committed write: {history}"
    );
    assert!(peer.terminate().success());
}

#[test]
fn the_node_kv_chaincode_through_the_cli() {
    let Some(node) = require_node("peer_cli::node_kv") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let package = node.kv_package(dir.path());
    let peer = PeerProcess::start(&dir.path().join("peer"), &[], &[]);
    install_and_instantiate(&peer, "nodekv", "node", &package.display().to_string());
    kv_through_the_cli(&peer, "nodekv");
    // The Node chaincode calls a system chaincode.
    peer.cli(&[
        "chaincode",
        "invoke",
        "-n",
        "kvscc",
        "-c",
        r#"{"Args":["put","x","from-scc"]}"#,
    ])
    .ok();
    assert_eq!(
        query(&peer, "nodekv", r#"{"Args":["call","kvscc","get","x"]}"#),
        "from-scc\n"
    );
}

#[test]
fn dev_mode_with_node_chaincodes_started_by_hand() {
    let Some(node) = require_node("peer_cli::dev_mode") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let package = node.kv_package(dir.path());
    let contract = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/contract");
    let peer = PeerProcess::start(&dir.path().join("peer"), &[], &["--peer-chaincodedev"]);
    // Installed for its definition; the peer launches nothing in dev mode.
    for (name, path) in [
        ("kv", package.display().to_string()),
        ("assets", contract.display().to_string()),
    ] {
        peer.cli(&[
            "chaincode",
            "install",
            "-n",
            name,
            "-v",
            "1",
            "-l",
            "node",
            "-p",
            &path,
        ])
        .ok();
    }
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
        out.stderr
            .contains("not running; in dev mode start it yourself"),
        "{}",
        out.stderr
    );
    // Started by hand as the issue says: CORE_CHAINCODE_ID_NAME=… CORE_PEER_ADDRESS=… run-node-chaincode DIR.
    // fabric-shim 2.5.8's shim.start() does not read CORE_PEER_ADDRESS (it looks for
    // argv.CORE_PEER_ADDRESS, which yargs-parser never sets), and run-node-chaincode adds
    // --peer.address only for contract packages; so the plain kv chaincode gets the flag too.
    let start = |name: &str, dir: &std::path::Path, flag: bool| {
        let mut cmd = std::process::Command::new(run_node_chaincode());
        cmd.arg(dir);
        if flag {
            cmd.args(["--peer.address", &peer.chaincode_address]);
        }
        cmd.env("CORE_CHAINCODE_ID_NAME", format!("{name}:1"))
            .env("CORE_PEER_ADDRESS", &peer.chaincode_address)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut kv = start("kv", &package, true);
    let mut assets = start("assets", &contract, false);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        let list = peer.cli(&["chaincode", "list", "--installed"]).ok().stdout;
        if list.matches("Running: yes").count() == 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let list = peer.cli(&["chaincode", "list", "--installed"]).ok().stdout;
    assert_eq!(
        list.matches("Running: yes").count(),
        2,
        "both registered by themselves: {list}"
    );
    instantiate_with(&peer, "kv", r#"{"Args":["init","seed","s0"]}"#);
    kv_through_the_cli(&peer, "kv");
    // A fabric-contract-api chaincode: it reads the creator's certificate and the timestamp.
    instantiate_with(&peer, "assets", r#"{"Args":[]}"#);
    let created = peer
        .cli(&[
            "chaincode",
            "invoke",
            "-n",
            "assets",
            "-c",
            r#"{"Args":["CreateAsset","a1","blue"]}"#,
        ])
        .ok()
        .stdout;
    let asset: serde_json::Value = serde_json::from_str(created.trim()).unwrap();
    assert_eq!(asset["mspid"], "SampleOrg");
    assert!(
        asset["owner"]
            .as_str()
            .unwrap()
            .contains("CN=Admin@sampleorg.dev"),
        "{asset}"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let created_at = asset["created"].as_u64().unwrap();
    assert!(
        created_at + 300 > now && created_at <= now,
        "timestamp {created_at} near {now}"
    );
    let read: serde_json::Value =
        serde_json::from_str(query(&peer, "assets", r#"{"Args":["ReadAsset","a1"]}"#).trim())
            .unwrap();
    assert_eq!(read, asset);
    let out = peer
        .cli(&[
            "chaincode",
            "query",
            "-n",
            "assets",
            "-c",
            r#"{"Args":["ReadAsset","nope"]}"#,
        ])
        .failed();
    assert!(
        out.stderr.contains("asset nope does not exist"),
        "{}",
        out.stderr
    );
    for child in [&mut kv, &mut assets] {
        let _ = child.kill();
        let _ = child.wait();
    }
}

fn instantiate_with(peer: &PeerProcess, name: &str, init: &str) {
    peer.cli(&[
        "chaincode",
        "instantiate",
        "-n",
        name,
        "-v",
        "1",
        "-c",
        init,
    ])
    .ok();
}

#[test]
fn docker_mode_where_a_daemon_is_present() {
    if !vm_docker::testing::require_docker("peer_cli::docker_mode") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let peer_id = vm_docker::testing::unique("cli");
    let _cleanup = vm_docker::testing::Cleanup {
        peer_id: peer_id.clone(),
        images: vec![],
    };
    // Docker configured in a file, as core.yaml would.
    let config = dir.path().join("core.yaml");
    std::fs::write(&config, format!("peer:\n  id: {peer_id}\n  networkId: clitest\nvm:\n  endpoint: unix:///var/run/docker.sock\n")).unwrap();
    let config = config.display().to_string();
    let peer = PeerProcess::start(&dir.path().join("peer"), &[], &["--config", &config]);
    let static_kv = static_kv_chaincode().display().to_string();
    // A Docker install that fails (a dynamic executable cannot run on an empty image) leaves
    // nothing: the same name and version install once the package is right.
    let failed = peer
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
            &kv_path(),
            "--vm",
            "DOCKER",
        ])
        .failed();
    assert!(failed.stderr.contains("static"), "{}", failed.stderr);
    assert_eq!(
        peer.cli(&["chaincode", "list", "--installed"]).ok().stdout,
        "",
        "no record of the failed install"
    );
    assert_eq!(
        std::fs::read_dir(peer.data.join("lifecycle/chaincodes"))
            .unwrap()
            .count(),
        0,
        "no package kept"
    );
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
            &static_kv,
        ])
        .ok();
    assert!(out.stderr.contains("runs on DOCKER"), "{}", out.stderr);
    assert!(
        out.stderr.contains("building kv:1"),
        "progress shown: {}",
        out.stderr
    );
    instantiate_with(&peer, "kv", r#"{"Args":["init","seed","s0"]}"#);
    kv_through_the_cli(&peer, "kv");
    let containers = vm_docker::testing::docker(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=io.fabric-ccrt.peer.id={peer_id}"),
    ]);
    assert_eq!(containers.lines().count(), 1);
    peer.cli(&["chaincode", "stop", "-n", "kv"]).ok();
    let containers = vm_docker::testing::docker(&[
        "ps",
        "-aq",
        "--filter",
        &format!("label=io.fabric-ccrt.peer.id={peer_id}"),
    ]);
    assert!(containers.is_empty(), "stop removes the container");
    // --vm overrides the default.
    let out = peer
        .cli(&[
            "chaincode",
            "install",
            "-n",
            "kvp",
            "-v",
            "1",
            "-l",
            "binary",
            "-p",
            &kv_path(),
            "--vm",
            "process",
        ])
        .ok();
    assert!(out.stderr.contains("runs on PROCESS"), "{}", out.stderr);
}

#[test]
fn two_concurrent_conflicting_invokes_never_both_commit() {
    let dir = tempfile::tempdir().unwrap();
    let peer = PeerProcess::start(dir.path(), &[], &[]);
    install_and_instantiate(&peer, "kv", "binary", &kv_path());
    // Both read the counter, wait, and write it plus one.
    let outputs = std::thread::scope(|s| {
        let runs: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    peer.cli(&[
                        "chaincode",
                        "invoke",
                        "-n",
                        "kv",
                        "-c",
                        r#"{"Args":["incr","counter","700"]}"#,
                    ])
                })
            })
            .collect();
        runs.into_iter()
            .map(|r| r.join().unwrap())
            .collect::<Vec<_>>()
    });
    let committed: Vec<_> = outputs.iter().filter(|o| o.status.success()).collect();
    let refused: Vec<_> = outputs.iter().filter(|o| !o.status.success()).collect();
    assert_eq!(committed.len(), 1, "{outputs:?}");
    assert_eq!(refused.len(), 1, "{outputs:?}");
    assert!(
        refused[0].stderr.contains("conflicts with a newer commit"),
        "{}",
        refused[0].stderr
    );
    assert_eq!(query(&peer, "kv", r#"{"Args":["get","counter"]}"#), "1\n");
    // Retrying the refused one works.
    peer.cli(&[
        "chaincode",
        "invoke",
        "-n",
        "kv",
        "-c",
        r#"{"Args":["incr","counter"]}"#,
    ])
    .ok();
    assert_eq!(query(&peer, "kv", r#"{"Args":["get","counter"]}"#), "2\n");
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let peer = PeerProcess::start(dir.path(), &[], &[]);
    install_and_instantiate(&peer, "kv", "binary", &kv_path());
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "chaincode",
                "invoke",
                "-n",
                "nosuch",
                "-c",
                r#"{"Args":["get","k"]}"#,
            ],
            "chaincode nosuch is not defined on channel \"mychannel\"",
        ),
        (
            &["chaincode", "invoke", "-n", "kv", "-c", r#"{"Args":["put""#],
            "invalid -c/--ctor",
        ),
        (
            &["chaincode", "query", "-n", "kv", "-c", r#"{"Args":[1,2]}"#],
            "every argument must be a string",
        ),
        (
            &[
                "chaincode",
                "invoke",
                "-n",
                "kv",
                "-c",
                r#"{"Args":["get","k"]}"#,
                "--transient",
                "{oops",
            ],
            "invalid --transient",
        ),
        (
            &[
                "chaincode",
                "install",
                "-n",
                "x",
                "-v",
                "1",
                "-l",
                "cobol",
                "-p",
                &kv_path(),
            ],
            "PROCESS: no platform runs packages of type \"cobol\"",
        ),
        (
            &[
                "chaincode",
                "install",
                "-n",
                "x",
                "-v",
                "1",
                "-l",
                "binary",
                "-p",
                &kv_path(),
                "--vm",
                "mainframe",
            ],
            "unknown container type \"MAINFRAME\"",
        ),
        (
            &[
                "chaincode",
                "install",
                "-n",
                "x",
                "-v",
                "1",
                "-p",
                "/no/such/file",
            ],
            "cannot read the chaincode at /no/such/file",
        ),
        (
            &[
                "chaincode",
                "install",
                "-n",
                "kv",
                "-v",
                "1",
                "-p",
                &kv_path(),
            ],
            "chaincode kv:1 is installed already",
        ),
        (
            &[
                "chaincode",
                "instantiate",
                "-n",
                "kv",
                "-v",
                "9",
                "-c",
                r#"{"Args":[]}"#,
            ],
            "chaincode kv:9 is not installed",
        ),
        (
            &["chaincode", "stop", "-n", "ghost"],
            "chaincode ghost is not installed",
        ),
        (&["chaincode", "list"], "--installed, or --instantiated"),
    ];
    for (args, expected) in cases {
        let out = peer.cli(args).failed();
        assert!(
            out.stderr.contains(expected),
            "{args:?}: expected {expected:?} in {}",
            out.stderr
        );
    }
    let elsewhere = format!("127.0.0.1:{}", tests::peer_process::free_port());
    let out = peer
        .cli(&[
            "chaincode",
            "query",
            "-n",
            "kv",
            "-c",
            r#"{"Args":["get","k"]}"#,
            "--peerAddresses",
            &elsewhere,
        ])
        .failed();
    assert!(
        out.stderr
            .contains(&format!("cannot reach the peer at {elsewhere}")),
        "{}",
        out.stderr
    );
    // The peer keeps serving.
    assert_eq!(query(&peer, "kv", r#"{"Args":["get","seed"]}"#), "s0\n");
}

#[test]
fn a_bad_configuration_value_stops_the_peer_with_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(tests::env::workspace_binary("peer"))
        .args(["node", "start"])
        .env("CORE_PEER_FILESYSTEMPATH", dir.path())
        .env("CORE_CHAINCODE_EXECUTETIMEOUT", "soon")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("chaincode.executetimeout"), "{stderr}");
}

#[test]
fn sigterm_and_sigkill_leave_no_chaincode_process() {
    let dir = tempfile::tempdir().unwrap();
    let mut peer = PeerProcess::start(dir.path(), &[], &[]);
    install_and_instantiate(&peer, "kv", "binary", &kv_path());
    let children = children_of(peer.pid());
    assert_eq!(children.len(), 1, "the chaincode runs as the peer's child");
    assert!(peer.terminate().success(), "SIGTERM: a clean exit");
    assert!(!process_alive(children[0]), "stopped with the peer");
    peer.restart();
    assert_eq!(query(&peer, "kv", r#"{"Args":["get","seed"]}"#), "s0\n");
    let children = children_of(peer.pid());
    assert_eq!(children.len(), 1);
    peer.kill9();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while process_alive(children[0]) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !process_alive(children[0]),
        "a chaincode dies with its peer, even on SIGKILL"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_dash_nine_never_leaves_half_a_transaction() {
    use peer::client::{connect, execute, nonce};
    use peer::identity::Identity;
    use proto::admin::execute_request::Kind;
    let dir = tempfile::tempdir().unwrap();
    let mut peer = PeerProcess::start(dir.path(), &[], &[]);
    install_and_instantiate(&peer, "kv", "binary", &kv_path());
    let identity =
        std::sync::Arc::new(Identity::load(&dir.path().join("msp"), "SampleOrg").unwrap());
    const KEYS: usize = 20;
    // Writers put 20 keys per transaction, each transaction's keys holding its number.
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (admin, identity) = (peer.admin.clone(), identity.clone());
            tokio::spawn(async move {
                let Ok(mut client) = connect(&peer::cli::ClientOptions::to(admin)).await else {
                    return 0;
                };
                let mut done = 0;
                for i in 0.. {
                    let id = w * 100_000 + i;
                    let mut args = vec!["putmany".to_owned()];
                    for k in 0..KEYS {
                        args.push(format!("t{id:06}-k{k:02}"));
                        args.push(id.to_string());
                    }
                    let invocation = peer::cli::Invocation {
                        channel: "mychannel".into(),
                        name: "kv".into(),
                        ctor: serde_json::json!({ "Args": args }).to_string(),
                        transient: None,
                        is_init: false,
                    };
                    match execute(
                        &mut client,
                        &identity,
                        Kind::Invoke,
                        &invocation,
                        "",
                        nonce(),
                    )
                    .await
                    {
                        Ok(_) => done += 1,
                        Err(_) => return done,
                    }
                }
                done
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    peer.kill9();
    let mut committed = 0;
    for w in writers {
        committed += w.await.unwrap();
    }
    assert!(
        committed > 0,
        "transactions were committed before the crash"
    );
    peer.restart();
    let range = query(&peer, "kv", r#"{"Args":["range","t","u"]}"#);
    let records: Vec<serde_json::Value> = serde_json::from_str(range.trim()).unwrap();
    let mut per_tx: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in &records {
        let key = r["key"].as_str().unwrap();
        let tx = key.split('-').next().unwrap().to_owned();
        let number: u64 = tx[1..].parse().unwrap();
        assert_eq!(
            r["value"].as_str().unwrap(),
            number.to_string(),
            "{key} holds its transaction's number"
        );
        per_tx.entry(tx).or_default().push(key.to_owned());
    }
    assert!(
        per_tx.len() >= committed,
        "every acknowledged transaction survived: {} < {committed}",
        per_tx.len()
    );
    for (tx, keys) in &per_tx {
        assert_eq!(
            keys.len(),
            KEYS,
            "transaction {tx} is whole after the crash"
        );
    }
}

#[test]
fn external_builders_from_core_yaml_and_from_json_in_the_environment() {
    if !tests::builders::require_jq(
        "peer_cli::external_builders_from_core_yaml_and_from_json_in_the_environment",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The sample binary builder takes an executable named `chaincode`.
    let exe = dir.path().join("bin/chaincode");
    std::fs::create_dir_all(exe.parent().unwrap()).unwrap();
    std::fs::copy(kv_chaincode(), &exe).unwrap();
    let exe = exe.display().to_string();
    let builder = tests::builders::fixture("binary").display().to_string();

    // core.yaml as Fabric's own writes it: a list of maps, camel-case keys.
    let config = dir.path().join("core.yaml");
    std::fs::write(
        &config,
        format!(
            "chaincode:\n  installTimeout: 2m\n  externalBuilders:\n    - name: sample-binary\n      path: {builder}\n      propagateEnvironment:\n        - HOME\n"
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    // The same list from the environment, as JSON.
    let json = format!(r#"[{{"name":"from-env","path":"{builder}"}}]"#);
    let from_file: (&[(&str, &str)], &[&str]) = (&[], &["--config", &config]);
    let from_env: (&[(&str, &str)], &[&str]) = (&[("CORE_CHAINCODE_EXTERNALBUILDERS", &json)], &[]);
    for (data, (env, args), builder_name) in [
        ("one", from_file, "sample-binary"),
        ("two", from_env, "from-env"),
    ] {
        let mut peer = PeerProcess::start(&dir.path().join(data), env, args);
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
                &exe,
            ])
            .ok();
        assert!(out.stderr.contains("runs on EXTERNAL"), "{}", out.stderr);
        instantiate_with(&peer, "kv", r#"{"Args":["init","seed","s0"]}"#);
        kv_through_the_cli(&peer, "kv");
        assert_eq!(
            std::fs::read_to_string(
                peer.data
                    .join("externalbuilder/builds/kv-1/build-info.json")
            )
            .unwrap(),
            format!(r#"{{"builder_name":"{builder_name}"}}"#)
        );
        // After a restart the chaincode (a `name:version`, not a content-addressed package
        // ID) is built again, then runs.
        assert!(peer.terminate().success());
        peer.restart();
        assert_eq!(
            query(&peer, "kv", r#"{"Args":["get","greeting"]}"#),
            "hello\n"
        );
    }

    // A failing build: its stderr in the CLI's error and in the peer's log, under the
    // builder's name.
    let broken = dir.path().join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::copy(kv_chaincode(), broken.join("chaincode")).unwrap();
    std::fs::write(
        broken.join("FAIL_BUILD"),
        "error: out of coffee
",
    )
    .unwrap();
    let peer = PeerProcess::start(&dir.path().join("four"), &[], &["--config", &config]);
    let out = peer
        .cli(&[
            "chaincode",
            "install",
            "-n",
            "broken",
            "-v",
            "1",
            "-l",
            "binary",
            "-p",
            &broken.display().to_string(),
        ])
        .failed();
    assert!(
        out.stderr
            .contains("external builder sample-binary: build exited with 3"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("error: out of coffee"),
        "{}",
        out.stderr
    );
    let log = peer.log();
    assert!(
        log.lines().any(|l| l.contains("external_builder")
            && l.contains("builder=sample-binary")
            && l.contains("error: out of coffee")),
        "{log}"
    );
    // Nothing is left installed: the same install can be tried again.
    let out = peer.cli(&["chaincode", "list", "--installed"]).ok();
    assert!(!out.stdout.contains("broken"), "{}", out.stdout);

    // A builder list the peer cannot use stops it at start, naming the key.
    let mut bad = std::process::Command::new(tests::env::workspace_binary("peer"))
        .args(["node", "start"])
        .env("CORE_PEER_FILESYSTEMPATH", dir.path().join("three"))
        .env(
            "CORE_CHAINCODE_EXTERNALBUILDERS",
            r#"[{"name":"x","path":"relative"}]"#,
        )
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&std::mem::take(&mut bad.stderr)).into_owned();
    assert!(stderr.contains("chaincode.externalBuilders[0]"), "{stderr}");
    assert!(stderr.contains("needs an absolute path"), "{stderr}");
}

#[test]
fn transactions_and_a_killed_chaincode_in_the_log_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let peer = PeerProcess::start(dir.path(), &[("FABRIC_LOGGING_FORMAT", "json")], &[]);
    install_and_instantiate(&peer, "kv", "binary", &kv_path());
    let ok = peer
        .cli(&[
            "chaincode",
            "invoke",
            "-n",
            "kv",
            "-c",
            r#"{"Args":["put","k","v"]}"#,
        ])
        .ok();
    let txid = ok
        .stderr
        .split("txid:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_owned();
    peer.cli(&[
        "chaincode",
        "invoke",
        "-n",
        "kv",
        "-c",
        r#"{"Args":["fail","on purpose"]}"#,
    ])
    .failed();
    let lines = |log: &str| -> Vec<serde_json::Value> {
        log.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    };
    // One INFO line per transaction: channel, short tx id, chaincode, duration, outcome.
    let transactions: Vec<serde_json::Value> = lines(&peer.log())
        .into_iter()
        .filter(|l| l["fields"]["message"] == "transaction")
        .collect();
    let committed = transactions
        .iter()
        .find(|l| l["fields"]["txid"] == txid[..8])
        .unwrap_or_else(|| panic!("no line for {txid}: {transactions:?}"));
    assert_eq!(committed["level"], "INFO");
    assert_eq!(committed["fields"]["channel"], "\"mychannel\"");
    assert_eq!(committed["fields"]["chaincode"], "\"kv\"");
    assert!(committed["fields"]["duration_ms"].is_u64(), "{committed}");
    assert!(
        committed["fields"]["outcome"]
            .as_str()
            .unwrap()
            .starts_with("committed at height"),
        "{committed}"
    );
    assert!(
        transactions
            .iter()
            .any(|l| l["fields"]["outcome"] == "chaincode error 500: on purpose"),
        "{transactions:?}"
    );
    // A chaincode killed from outside: a WARN with its exit code.
    // This peer's kv (other tests run kv:1 too).
    let children = children_of(peer.pid());
    let pids: Vec<u32> = tests::env::processes_with_env("CORE_CHAINCODE_ID_NAME", "kv:1")
        .into_iter()
        .filter(|pid| children.contains(pid))
        .collect();
    assert_eq!(pids.len(), 1);
    std::process::Command::new("kill")
        .args(["-9", &pids[0].to_string()])
        .status()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let warned = loop {
        let found = lines(&peer.log()).into_iter().find(|l| {
            l["level"] == "WARN" && l["fields"]["message"] == "chaincode ended on its own"
        });
        if let Some(line) = found {
            break line;
        }
        assert!(std::time::Instant::now() < deadline, "{}", peer.log());
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        warned["fields"]["reason"]
            .as_str()
            .unwrap()
            .contains("exited with 137"),
        "{warned}"
    );
}
