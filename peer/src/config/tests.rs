//! Unit tests of the configuration reader: files, the environment, defaults, checks.

use std::collections::HashMap;

use super::*;

fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    move |k| map.get(k).cloned()
}

#[test]
fn what_reaches_beyond_loopback_needs_tls() {
    let refused = |vars: &[(&str, &str)], dev: bool, key: &str| {
        let e = PeerConfig::from_settings(settings(None, env(vars)).unwrap(), dev).unwrap_err();
        assert!(e.to_string().contains(key), "{vars:?}: {e}");
    };
    refused(
        &[("CORE_PEER_LISTENADDRESS", "0.0.0.0:7051")],
        false,
        "peer.listenAddress",
    );
    refused(
        &[("CORE_PEER_CHAINCODELISTENADDRESS", "0.0.0.0:7052")],
        true,
        "peer.chaincodeListenAddress",
    );
    refused(
        &[
            ("CORE_PEER_TLS_ENABLED", "true"),
            ("CORE_PEER_TLS_CLIENTAUTHREQUIRED", "true"),
        ],
        false,
        "peer.tls.clientAuthRequired",
    );
    let tls = PeerConfig::from_settings(
        settings(
            None,
            env(&[
                ("CORE_PEER_TLS_ENABLED", "true"),
                ("CORE_PEER_LISTENADDRESS", "0.0.0.0:7051"),
                ("CORE_PEER_CHAINCODELISTENADDRESS", "0.0.0.0:7052"),
            ]),
        )
        .unwrap(),
        false,
    )
    .unwrap();
    assert!(tls.tls.is_some());
    assert_eq!(
        tls.support.peer_address, "127.0.0.1:7052",
        "chaincodes dial the listener on loopback when it listens everywhere"
    );
}

#[test]
fn defaults_work_without_a_file() {
    let c = PeerConfig::from_settings(settings(None, env(&[])).unwrap(), false).unwrap();
    assert_eq!(c.listen_address.to_string(), "127.0.0.1:7051");
    assert_eq!(c.chaincode_listen_address.to_string(), "127.0.0.1:7052");
    assert_eq!(c.support.peer_address, "127.0.0.1:7052");
    assert_eq!(c.support.peer_id, "peer0");
    assert!(!c.support.dev_mode);
    assert!(c.support.tls_enabled());
}

#[test]
fn file_values_and_environment_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("core.yaml");
    std::fs::write(
        &file,
        "peer:\n  id: peer7\n  networkId: net\n  chaincodeListenAddress: 127.0.0.2:9052\nchaincode:\n  executetimeout: 5s\nvm:\n  endpoint: unix:///var/run/docker.sock\n  docker:\n    hostConfig:\n      Dns:\n        - 1.1.1.1\n        - 8.8.8.8\n      LogConfig:\n        Config:\n          max-size: 50m\n",
    )
    .unwrap();
    let s = settings(
        Some(&file),
        env(&[("CORE_PEER_ID", "peer9"), ("CORE_CHAINCODE_MODE", "dev")]),
    )
    .unwrap();
    assert_eq!(s.list("vm.docker.hostConfig.Dns"), ["1.1.1.1", "8.8.8.8"]);
    assert_eq!(
        s.get("vm.docker.hostConfig.LogConfig.Config.max-size"),
        Some("50m")
    );
    let c = PeerConfig::from_settings(s, false).unwrap();
    assert_eq!(
        c.support.peer_id, "peer9",
        "the environment wins over the file"
    );
    assert_eq!(c.support.network_id, "net");
    assert!(c.support.dev_mode);
    assert!(
        !c.support.tls_enabled(),
        "TLS is off in dev mode unless set"
    );
    assert_eq!(c.support.execute_timeout, std::time::Duration::from_secs(5));
    assert_eq!(c.support.peer_address, "127.0.0.2:9052");
    assert_eq!(
        c.settings.get("vm.endpoint"),
        Some("unix:///var/run/docker.sock")
    );
    // A key only the file names can be overridden too.
    let s = settings(
        Some(&file),
        env(&[("CORE_VM_DOCKER_HOSTCONFIG_DNS", "9.9.9.9")]),
    )
    .unwrap();
    assert_eq!(s.list("vm.docker.hostConfig.Dns"), ["9.9.9.9"]);
}

#[test]
fn external_builders_keep_their_structure_from_the_file_and_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("core.yaml");
    std::fs::write(
        &file,
        "chaincode:\n  installTimeout: 7m\n  externalBuilders:\n    - name: ccaas\n      path: /opt/ccaas\n      propagateEnvironment:\n        - HOME\n        - CORE_X\n    - path: /opt/bin\n      name: binary\n",
    )
    .unwrap();
    let s = settings(Some(&file), env(&[])).unwrap();
    let builders = s.value("chaincode.externalBuilders").unwrap();
    assert_eq!(builders[0]["name"], "ccaas");
    assert_eq!(builders[0]["propagateEnvironment"][1], "CORE_X");
    assert_eq!(builders[1]["path"], "/opt/bin");
    let c = PeerConfig::from_settings(s, false).unwrap();
    assert_eq!(
        c.support.install_timeout,
        std::time::Duration::from_secs(420)
    );

    // JSON in the environment, as Fabric users set it, replaces the file's list.
    let json = r#"[{"name":"ext","path":"/opt/ext","propagateEnvironment":["A"]}]"#;
    let s = settings(
        Some(&file),
        env(&[("CORE_CHAINCODE_EXTERNALBUILDERS", json)]),
    )
    .unwrap();
    let builders = s.value("chaincode.externalBuilders").unwrap();
    assert_eq!(builders.as_array().unwrap().len(), 1);
    assert_eq!(builders[0]["name"], "ext");
    // With no file too, and YAML's flow style reads the same.
    let s = settings(
        None,
        env(&[("CORE_CHAINCODE_EXTERNALBUILDERS", "[{name: y, path: /y}]")]),
    )
    .unwrap();
    assert_eq!(
        s.value("chaincode.externalBuilders").unwrap()[0]["path"],
        "/y"
    );
    let e = settings(None, env(&[("CORE_CHAINCODE_EXTERNALBUILDERS", "[{")])).unwrap_err();
    assert!(
        format!("{e:#}").contains("chaincode.externalBuilders"),
        "{e:#}"
    );
}

#[test]
fn fabric_cfg_path_finds_the_file_and_its_relative_paths_mean_its_folder() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("cfg");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(
        cfg.join("core.yaml"),
        "peer:\n  id: from-file\n  mspConfigPath: msp\n  fileSystemPath: ./data\n  tls:\n    cert:\n      file: tls/server.crt\nchaincode:\n  externalBuilders:\n    - name: b\n      path: builders/b\n",
    )
    .unwrap();
    let cfg_path = cfg.display().to_string();
    let loaded = load(None, env(&[("FABRIC_CFG_PATH", &cfg_path)])).unwrap();
    assert_eq!(
        loaded.file.as_deref(),
        Some(cfg.join("core.yaml").as_path())
    );
    let s = &loaded.settings;
    assert_eq!(s.get("peer.id"), Some("from-file"));
    let under = |p: &str| cfg.join(p).display().to_string();
    assert_eq!(s.get("peer.mspConfigPath"), Some(under("msp").as_str()));
    assert_eq!(s.get("peer.fileSystemPath"), Some(under("data").as_str()));
    assert_eq!(
        s.get("peer.tls.cert.file"),
        Some(under("tls/server.crt").as_str())
    );
    assert_eq!(
        s.value("chaincode.externalBuilders").unwrap()[0]["path"],
        under("builders/b").as_str()
    );
    // As Fabric's config.GetPath: a relative value from the environment means the
    // file's folder too; an absolute one stays.
    let s = settings(
        None,
        env(&[
            ("FABRIC_CFG_PATH", &cfg_path),
            ("CORE_PEER_MSPCONFIGPATH", "org1/msp"),
            ("CORE_PEER_FILESYSTEMPATH", "/var/data"),
        ]),
    )
    .unwrap();
    assert_eq!(
        s.get("peer.mspConfigPath"),
        Some(under("org1/msp").as_str())
    );
    assert_eq!(s.get("peer.fileSystemPath"), Some("/var/data"));
    // Without a file a relative value is the working directory's, as before.
    let s = settings(None, env(&[("CORE_PEER_MSPCONFIGPATH", "msp")])).unwrap();
    assert_eq!(s.get("peer.mspConfigPath"), Some("msp"));
    // --config wins over FABRIC_CFG_PATH.
    let other = dir.path().join("other.yaml");
    std::fs::write(&other, "peer:\n  id: from-other\n").unwrap();
    let s = settings(Some(&other), env(&[("FABRIC_CFG_PATH", &cfg_path)])).unwrap();
    assert_eq!(s.get("peer.id"), Some("from-other"));
    // A folder without core.yaml is an error saying so.
    let empty = dir.path().display().to_string();
    let e = settings(None, env(&[("FABRIC_CFG_PATH", &empty)])).unwrap_err();
    assert!(e.to_string().contains("holds no core.yaml"), "{e}");
}

#[test]
fn image_placeholders_expand_from_the_file_and_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("core.yaml");
    std::fs::write(
        &file,
        "chaincode:\n  builder: $(DOCKER_NS)/fabric-ccenv:$(TWO_DIGIT_VERSION)\n  node:\n    runtime: $(DOCKER_NS)/fabric-nodeenv:$(TWO_DIGIT_VERSION)\n",
    )
    .unwrap();
    let s = settings(Some(&file), env(&[])).unwrap();
    assert_eq!(
        s.get("chaincode.builder"),
        Some("hyperledger/fabric-ccenv:2.5")
    );
    assert_eq!(
        s.get("chaincode.node.runtime"),
        Some("hyperledger/fabric-nodeenv:2.5")
    );
    let e = settings(
        None,
        env(&[("CORE_CHAINCODE_NODE_RUNTIME", "$(MY_REGISTRY)/node:20")]),
    )
    .unwrap_err();
    let text = format!("{e:#}");
    assert!(
        text.contains("chaincode.node.runtime") && text.contains("$(MY_REGISTRY)"),
        "{text}"
    );
}

#[test]
fn unknown_keys_are_reported_and_fabric_keys_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("core.yaml");
    std::fs::write(
        &file,
        "peer:\n  id: p\n  gossip:\n    bootstrap: 127.0.0.1:7051\n  BCCSP:\n    Default: SW\n  keepalive:\n    minInterval: 60s\nchaincode:\n  executeTimeout: 5s\n  executeTimout: 5s\n  runtimeParams:\n    useWriteBatch: true\nvm:\n  endpoint:\n  docker:\n    attachStdout: false\n    timeout: 60\n    hostConfig:\n      Ulimits: []\n  process:\n    outputLine: 5\nledger:\n  state:\n    couchDBConfig:\n      couchDBAddress: 127.0.0.1:5984\noperations:\n  listenAddress: 127.0.0.1:9443\nmetrics:\n  provider: prometheus\n  statsd:\n    prefix:\nlogging:\n  anything: at all\n",
    )
    .unwrap();
    let loaded = load(Some(&file), env(&[])).unwrap();
    assert_eq!(
        loaded.keys.unknown,
        ["chaincode.executeTimout", "vm.process.outputLine"]
    );
    for quiet in ["peer.gossip", "peer.BCCSP", "peer.keepalive.minInterval"] {
        assert!(
            loaded.keys.fabric_only.iter().any(|k| k == quiet),
            "{quiet}: {:?}",
            loaded.keys.fabric_only
        );
    }
    let c = PeerConfig::from_settings(loaded.settings, false).unwrap();
    assert_eq!(c.support.execute_timeout, std::time::Duration::from_secs(5));
}

#[test]
fn host_names_are_resolved_once_and_loopback_rules_hold() {
    let c = PeerConfig::from_settings(
        settings(
            None,
            env(&[
                ("CORE_PEER_LISTENADDRESS", "localhost:7051"),
                ("CORE_PEER_CHAINCODELISTENADDRESS", "localhost:7052"),
                ("CORE_OPERATIONS_LISTENADDRESS", "localhost:9443"),
            ]),
        )
        .unwrap(),
        false,
    )
    .unwrap();
    assert_eq!(c.listen_address.to_string(), "127.0.0.1:7051");
    assert_eq!(c.chaincode_listen_address.to_string(), "127.0.0.1:7052");
    assert_eq!(c.support.peer_address, "127.0.0.1:7052");
    assert_eq!(c.settings.get("peer.listenAddress"), Some("127.0.0.1:7051"));
    assert_eq!(
        c.settings.get("operations.listenAddress"),
        Some("127.0.0.1:9443")
    );
    for (var, value, key) in [
        (
            "CORE_PEER_LISTENADDRESS",
            "no-such-host.invalid:7051",
            "peer.listenAddress",
        ),
        (
            "CORE_OPERATIONS_LISTENADDRESS",
            "no-such-host.invalid:9443",
            "operations.listenAddress",
        ),
        (
            "CORE_PEER_CHAINCODELISTENADDRESS",
            "localhost:port",
            "peer.chaincodeListenAddress",
        ),
    ] {
        let e = PeerConfig::from_settings(settings(None, env(&[(var, value)])).unwrap(), false)
            .unwrap_err();
        assert!(format!("{e:#}").contains(key), "{var}={value}: {e:#}");
    }
    // Resolution does not get around the loopback rules.
    let e = PeerConfig::from_settings(
        settings(None, env(&[("CORE_PEER_LISTENADDRESS", "0.0.0.0:7051")])).unwrap(),
        false,
    )
    .unwrap_err();
    assert!(e.to_string().contains("needs TLS"), "{e}");
}

#[test]
fn bad_values_name_their_key() {
    for (var, value, key) in [
        (
            "CORE_CHAINCODE_EXECUTETIMEOUT",
            "soon",
            "chaincode.executetimeout",
        ),
        ("CORE_PEER_LISTENADDRESS", "localhost", "peer.listenAddress"),
        ("CORE_CHAINCODE_MODE", "prod", "chaincode.mode"),
        ("CORE_VM_ENDPOINT", "ftp://x", "vm.endpoint"),
        (
            "CORE_VM_DOCKER_HOSTCONFIG_MEMORY",
            "lots",
            "vm.docker.hostConfig.Memory",
        ),
        (
            "CORE_CHAINCODE_STARTUPTIMEOUT",
            "1s",
            "chaincode.startuptimeout",
        ),
    ] {
        let s = settings(None, env(&[(var, value)])).unwrap();
        let e = PeerConfig::from_settings(s, false).unwrap_err();
        assert!(format!("{e:#}").contains(key), "{var}={value}: {e:#}");
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("core.yaml");
    std::fs::write(&file, "peer: [unclosed").unwrap();
    assert!(
        format!("{:#}", settings(Some(&file), env(&[])).unwrap_err()).contains("not valid YAML")
    );
}
