//! A `core.yaml` with the structure and values of Fabric 2.5's sample, read the way Fabric
//! reads it: found through `FABRIC_CFG_PATH` by the peer and by the CLI, its relative paths
//! meaning its own folder, image placeholders expanded, host names in addresses, Fabric's
//! keys the peer does not use accepted quietly and a misspelt key warned about by name.
//!
//! The peer runs directly here, not through `PeerProcess`, which sets `CORE_PEER_…`
//! variables that would win over the file.

#![allow(unused_crate_dependencies, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tests::env::{kv_chaincode, workspace_binary};
use tests::peer_process::free_port;

/// Fabric 2.5's `sampleconfig/core.yaml`, section by section and with its values, written
/// here from its keys; only the addresses (to loopback, on free ports, the admin one by host
/// name) and the paths (into the test's folder, relative to the file) differ, plus
/// `executetimeout` (2 s, so a test can outlast it) and one misspelt key.
fn fabric_sample(admin_port: u16, chaincode_port: u16, operations_port: u16) -> String {
    format!(
        r#"peer:
    id: core-yaml-peer
    networkId: dev
    listenAddress: localhost:{admin_port}
    chaincodeListenAddress: 127.0.0.1:{chaincode_port}
    address: localhost:{admin_port}
    addressAutoDetect: false
    gateway:
        enabled: true
        endorsementTimeout: 30s
        broadcastTimeout: 30s
        dialTimeout: 2m
    keepalive:
        interval: 7200s
        timeout: 20s
        minInterval: 60s
        client:
            interval: 60s
            timeout: 20s
        deliveryClient:
            interval: 60s
            timeout: 20s
    gossip:
        bootstrap: 127.0.0.1:7051
        useLeaderElection: false
        orgLeader: true
        membershipTrackerInterval: 5s
        endpoint:
        maxBlockCountToStore: 10
        maxPropagationBurstLatency: 10ms
        maxPropagationBurstSize: 10
        propagateIterations: 1
        propagatePeerNum: 3
        pullInterval: 4s
        pullPeerNum: 3
        requestStateInfoInterval: 4s
        publishStateInfoInterval: 4s
        stateInfoRetentionInterval:
        publishCertPeriod: 10s
        skipBlockVerification: false
        dialTimeout: 3s
        connTimeout: 2s
        recvBuffSize: 20
        sendBuffSize: 200
        digestWaitTime: 1s
        requestWaitTime: 1500ms
        responseWaitTime: 2s
        aliveTimeInterval: 5s
        aliveExpirationTimeout: 25s
        reconnectInterval: 25s
        maxConnectionAttempts: 120
        msgExpirationFactor: 20
        externalEndpoint:
        election:
            startupGracePeriod: 15s
            membershipSampleInterval: 1s
            leaderAliveThreshold: 10s
            leaderElectionDuration: 5s
        pvtData:
            pullRetryThreshold: 60s
            transientstoreMaxBlockRetention: 1000
            pushAckTimeout: 3s
            btlPullMargin: 10
            reconcileBatchSize: 10
            reconcileSleepInterval: 1m
            reconciliationEnabled: true
            skipPullingInvalidTransactionsDuringCommit: false
            implicitCollectionDisseminationPolicy:
                requiredPeerCount: 0
                maxPeerCount: 1
        state:
            enabled: false
            checkInterval: 10s
            responseTimeout: 3s
            batchSize: 10
            blockBufferSize: 20
            maxRetries: 3
    tls:
        enabled: false
        clientAuthRequired: false
        cert:
            file: tls/server.crt
        key:
            file: tls/server.key
        rootcert:
            file: tls/ca.crt
        clientRootCAs:
            files:
              - tls/ca.crt
        clientKey:
            file:
        clientCert:
            file:
    authentication:
        timewindow: 15m
    # Fabric's sample: /var/hyperledger/production; here beside the file, relative to it.
    fileSystemPath: ./data
    BCCSP:
        Default: SW
        SW:
            Hash: SHA2
            Security: 256
            FileKeyStore:
                KeyStore:
        PKCS11:
            Library:
            Label:
            Pin:
            Hash:
            Security:
    # Fabric's sample: msp (beside the file). The peer makes its development MSP only at
    # <fileSystemPath>/msp, so that is where this one points, still relative to the file.
    mspConfigPath: ./data/msp
    localMspId: SampleOrg
    client:
        connTimeout: 3s
    deliveryclient:
        blockGossipEnabled: true
        reconnectTotalTimeThreshold: 3600s
        connTimeout: 3s
        reConnectBackoffThreshold: 3600s
        addressOverrides:
    localMspType: bccsp
    profile:
        enabled: false
        listenAddress: 0.0.0.0:6060
    handlers:
        authFilters:
          - name: DefaultAuth
          - name: ExpirationCheck
        decorators:
          - name: DefaultDecorator
        endorsers:
          escc:
            name: DefaultEndorsement
            library:
        validators:
          vscc:
            name: DefaultValidation
            library:
    validatorPoolSize:
    discovery:
        enabled: true
        authCacheEnabled: true
        authCacheMaxSize: 1000
        authCachePurgeRetentionRatio: 0.75
        orgMembersAllowedAccess: false
    limits:
        concurrency:
            endorserService: 2500
            deliverService: 2500
            gatewayService: 500
    maxRecvMsgSize: 104857600
    maxSendMsgSize: 104857600

vm:
    # Fabric's sample: unix:///var/run/docker.sock. Emptied: this test runs chaincodes as
    # processes and must not depend on a Docker daemon (tests/tests/docker.rs covers Docker).
    endpoint: ""
    docker:
        tls:
            enabled: false
            ca:
                file: docker/ca.crt
            cert:
                file: docker/tls.crt
            key:
                file: docker/tls.key
        attachStdout: false
        hostConfig:
            NetworkMode: host
            Dns:
               # - 192.168.0.1
            LogConfig:
                Type: json-file
                Config:
                    max-size: "50m"
                    max-file: "5"
            Memory: 2147483648

chaincode:
    id:
        path:
        name:
    builder: $(DOCKER_NS)/fabric-ccenv:$(TWO_DIGIT_VERSION)
    pull: false
    golang:
        runtime: $(DOCKER_NS)/fabric-baseos:$(TWO_DIGIT_VERSION)
        dynamicLink: false
    java:
        runtime: $(DOCKER_NS)/fabric-javaenv:$(TWO_DIGIT_VERSION)
    node:
        runtime: $(DOCKER_NS)/fabric-nodeenv:$(TWO_DIGIT_VERSION)
    externalBuilders: []
    installTimeout: 300s
    startuptimeout: 300s
    # Fabric's sample: 30s.
    executetimeout: 2s
    # Misspelt on purpose: the peer warns about it by name.
    executeTimout: 9s
    mode: net
    keepalive: 0
    system:
        _lifecycle: enable
        cscc: enable
        lscc: enable
        qscc: enable
    logging:
      level:  info
      shim:   warning
      format: '%{{color}}%{{time:2006-01-02 15:04:05.000 MST}} [%{{module}}] %{{shortfunc}} -> %{{level:.4s}} %{{id:03x}}%{{color:reset}} %{{message}}'

ledger:
  blockchain:
  state:
    stateDatabase: goleveldb
    totalQueryLimit: 100000
    couchDBConfig:
       couchDBAddress: 127.0.0.1:5984
       username:
       password:
       maxRetries: 3
       maxRetriesOnStartup: 10
       requestTimeout: 35s
       internalQueryLimit: 1000
       maxBatchUpdateSize: 1000
       createGlobalChangesDB: false
       cacheSize: 64
  history:
    enableHistoryDatabase: true
  pvtdataStore:
    collElgProcMaxDbBatchSize: 5000
    collElgProcDbBatchesInterval: 1000
    deprioritizedDataReconcilerInterval: 60m
    purgeInterval: 100
  snapshots:
    rootDir: /var/hyperledger/production/snapshots

operations:
    listenAddress: 127.0.0.1:{operations_port}
    tls:
        enabled: false
        cert:
            file:
        key:
            file:
        clientAuthRequired: false
        clientRootCAs:
            files: []

metrics:
    provider: disabled
    statsd:
        network: udp
        address: 127.0.0.1:8125
        writeInterval: 10s
        prefix:
"#
    )
}

/// A `peer node start` run with `FABRIC_CFG_PATH` and nothing else configuring it.
struct Peer {
    child: Option<Child>,
    log: PathBuf,
}

impl Peer {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = kill(
                Pid::from_raw(i32::try_from(child.id()).unwrap()),
                Signal::SIGTERM,
            );
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- peer log ---\n{}", self.log());
        }
    }
}

/// The `peer` binary with only the environment given here: no `CORE_…` or `FABRIC_…`
/// variable of the test's own, `HOME` in the test's folder (so the default data folder is
/// empty), run from `cwd` (so a path resolved against the working directory would miss).
fn peer_command(home: &Path, cwd: &Path, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(workspace_binary("peer"));
    for (name, _) in std::env::vars() {
        if name.starts_with("CORE_") || name.starts_with("FABRIC_") || name == "RUST_LOG" {
            cmd.env_remove(name);
        }
    }
    cmd.env("HOME", home).current_dir(cwd);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Starts the peer and waits until `admin_port` answers.
fn start(home: &Path, cwd: &Path, env: &[(&str, &str)], admin_port: u16, log: PathBuf) -> Peer {
    let file = std::fs::File::create(&log).unwrap();
    let child = peer_command(home, cwd, env)
        .args(["node", "start"])
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .unwrap();
    let mut peer = Peer {
        child: Some(child),
        log,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", admin_port)).is_ok() {
            return peer;
        }
        if let Some(status) = peer.child.as_mut().unwrap().try_wait().unwrap() {
            panic!("the peer exited with {status} at start:\n{}", peer.log());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the peer did not listen within 20 s:\n{}", peer.log());
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn fabric_sample_core_yaml_through_fabric_cfg_path() {
    let dir = tempfile::tempdir().unwrap();
    let (home, cwd, config) = (
        dir.path().join("home"),
        dir.path().join("elsewhere"),
        dir.path().join("config"),
    );
    for d in [&home, &cwd, &config] {
        std::fs::create_dir_all(d).unwrap();
    }
    let (admin_port, chaincode_port, operations_port) = (free_port(), free_port(), free_port());
    std::fs::write(
        config.join("core.yaml"),
        fabric_sample(admin_port, chaincode_port, operations_port),
    )
    .unwrap();
    let cfg = config.display().to_string();
    let peer = start(
        &home,
        &cwd,
        &[("FABRIC_CFG_PATH", &cfg)],
        admin_port,
        dir.path().join("peer.log"),
    );

    // The file's values took effect: the peer's id, its data folder (relative to the file,
    // not to the working directory), its development MSP there.
    // The admin port answers as soon as it is bound, a moment before the start line.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut log = peer.log();
    while !log.contains("peer started") && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
        log = peer.log();
    }
    let started = log
        .lines()
        .find(|l| l.contains("peer started"))
        .unwrap_or_else(|| panic!("no start line:\n{log}"));
    assert!(started.contains("core-yaml-peer"), "{started}");
    assert!(
        started.contains(&format!("127.0.0.1:{admin_port}")),
        "localhost resolved: {started}"
    );
    assert!(config.join("data/msp/signcerts").is_dir(), "{log}");
    assert!(!cwd.join("data").exists());
    assert!(!home.join(".fabric-ccrt").exists());

    // The misspelt key is warned about by name; Fabric's keys the peer does not use are not.
    let unknown: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("unknown configuration key"))
        .collect();
    assert_eq!(unknown.len(), 1, "{log}");
    assert!(
        unknown[0].contains("WARN") && unknown[0].contains("chaincode.executeTimout"),
        "{}",
        unknown[0]
    );
    for line in log.lines().filter(|l| l.contains("WARN")) {
        assert!(
            !line.contains("gossip") && !line.contains("bootstrap") && !line.contains("BCCSP"),
            "{line}"
        );
    }

    // The CLI finds its identity (peer.mspConfigPath, peer.localMspId) through
    // FABRIC_CFG_PATH too; it reaches the peer by host name.
    let address = format!("localhost:{admin_port}");
    let cli = |args: &[&str]| {
        let out = peer_command(&home, &cwd, &[("FABRIC_CFG_PATH", &cfg)])
            .args(args)
            .args(["--peerAddresses", &address])
            .output()
            .unwrap();
        let (stdout, stderr) = text(&out);
        (out.status.success(), stdout, stderr)
    };
    let kv = kv_chaincode().display().to_string();
    let (ok, _, stderr) = cli(&[
        "chaincode",
        "install",
        "-n",
        "kv",
        "-v",
        "1",
        "-l",
        "binary",
        "-p",
        &kv,
    ]);
    assert!(ok, "{stderr}");
    let (ok, _, stderr) = cli(&[
        "chaincode",
        "instantiate",
        "-n",
        "kv",
        "-v",
        "1",
        "-c",
        r#"{"Args":[]}"#,
    ]);
    assert!(ok, "{stderr}");
    let (ok, stdout, stderr) = cli(&[
        "chaincode",
        "invoke",
        "-n",
        "kv",
        "-c",
        r#"{"Args":["put","k","v"]}"#,
    ]);
    assert!(ok && stdout == "ok\n", "{stdout}{stderr}");

    // chaincode.executetimeout: 2s from the file (not the misspelt 9s, not the default 30s).
    let began = Instant::now();
    let (ok, _, stderr) = cli(&[
        "chaincode",
        "invoke",
        "-n",
        "kv",
        "-c",
        r#"{"Args":["sleep","4000"]}"#,
    ]);
    assert!(!ok, "{stderr}");
    assert!(stderr.contains("timeout expired after 2s"), "{stderr}");
    assert!(began.elapsed() < Duration::from_millis(3900), "{stderr}");

    // Without FABRIC_CFG_PATH the CLI looks for its identity in the default data folder.
    let out = peer_command(&home, &cwd, &[])
        .args([
            "chaincode",
            "list",
            "--installed",
            "--peerAddresses",
            &address,
        ])
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains(".fabric-ccrt"), "{stderr}");
    drop(peer);
}

#[test]
fn a_missing_core_yaml_a_foreign_placeholder_or_an_unknown_host_stops_the_peer() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&empty).unwrap();
    let empty_cfg = empty.display().to_string();
    let run = |env: &[(&str, &str)], args: &[&str]| {
        let out = peer_command(&home, dir.path(), env)
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success());
        text(&out).1
    };

    // FABRIC_CFG_PATH naming a folder without core.yaml: the peer and the CLI say so.
    for args in [
        &["node", "start"][..],
        &["chaincode", "list", "--installed"][..],
    ] {
        let stderr = run(&[("FABRIC_CFG_PATH", &empty_cfg)], args);
        assert!(
            stderr.contains("FABRIC_CFG_PATH") && stderr.contains("holds no core.yaml"),
            "{args:?}: {stderr}"
        );
    }

    // A placeholder Fabric 2.x does not expand, named with its key; --config wins over
    // FABRIC_CFG_PATH (whose folder would be an error of its own).
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "peer:\n  fileSystemPath: ./data\nchaincode:\n  golang:\n    runtime: $(BASE_DOCKER_NS)/fabric-baseos:$(ARCH)-$(BASE_VERSION)\n",
    )
    .unwrap();
    let bad = bad.display().to_string();
    let stderr = run(
        &[("FABRIC_CFG_PATH", &empty_cfg)],
        &["node", "start", "--config", &bad],
    );
    assert!(
        stderr.contains("chaincode.golang.runtime") && stderr.contains("$(BASE_DOCKER_NS)"),
        "{stderr}"
    );

    // A host name that does not resolve, named with its key.
    let unresolvable = dir.path().join("core.yaml");
    std::fs::write(
        &unresolvable,
        "peer:\n  fileSystemPath: ./data\n  listenAddress: no-such-host.invalid:7051\n",
    )
    .unwrap();
    let cfg = dir.path().display().to_string();
    let stderr = run(&[("FABRIC_CFG_PATH", &cfg)], &["node", "start"]);
    assert!(
        stderr.contains("peer.listenAddress") && stderr.contains("no-such-host.invalid"),
        "{stderr}"
    );
}
