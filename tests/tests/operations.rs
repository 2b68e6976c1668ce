//! The operations service of the `peer` binary, as an operator uses it: `/metrics` scraped
//! after real invokes, a launch that fails and an execute timeout; `/healthz` healthy and
//! failing; `/version`; `/logspec` flipped at run time and seen in the log; HTTPS with client
//! certificates; `metrics.provider`.

#![allow(unused_crate_dependencies, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tests::env::{kv_chaincode, workspace_binary};
use tests::peer_process::PeerProcess;

/// An HTTP client that hands back every status (4xx and 5xx included).
fn agent(tls: Option<ureq::tls::TlsConfig>) -> ureq::Agent {
    let mut config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)));
    if let Some(tls) = tls {
        config = config.tls_config(tls);
    }
    config.build().into()
}

/// `GET url`: (status, body).
fn get(agent: &ureq::Agent, url: &str) -> (u16, String) {
    let mut response = agent.get(url).call().expect("GET");
    let body = response.body_mut().read_to_string().expect("body");
    (response.status().as_u16(), body)
}

/// `PUT url` with `body`: (status, body).
fn put(agent: &ureq::Agent, url: &str, body: &str) -> (u16, String) {
    let mut response = agent
        .put(url)
        .header("Content-Type", "application/json")
        .send(body)
        .expect("PUT");
    let body = response.body_mut().read_to_string().expect("body");
    (response.status().as_u16(), body)
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// The value of the series `name{labels}` (exactly those labels) in Prometheus text.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let wanted: BTreeMap<&str, &str> = labels.iter().copied().collect();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (series_name, rest) = series.split_once('{').unwrap_or((series, "}"));
            if series_name != name {
                return None;
            }
            let found: BTreeMap<&str, &str> = rest
                .trim_end_matches('}')
                .split("\",")
                .filter(|p| !p.is_empty())
                .filter_map(|pair| {
                    let (k, v) = pair.split_once("=\"")?;
                    Some((k, v.trim_end_matches('"')))
                })
                .collect();
            (found == wanted).then(|| value.parse().expect("a number"))
        })
}

fn assert_sample(text: &str, name: &str, labels: &[(&str, &str)], expected: f64) {
    assert_eq!(
        sample(text, name, labels),
        Some(expected),
        "{name}{labels:?} in:\n{text}"
    );
}

fn install(peer: &PeerProcess, name: &str, path: &Path) {
    peer.cli(&[
        "chaincode",
        "install",
        "-n",
        name,
        "-v",
        "1",
        "-l",
        "binary",
        "-p",
        path.to_str().unwrap(),
    ])
    .ok();
}

fn instantiate(peer: &PeerProcess, name: &str) -> tests::peer_process::CliOutput {
    peer.cli(&[
        "chaincode",
        "instantiate",
        "-n",
        name,
        "-v",
        "1",
        "-c",
        r#"{"Args":[]}"#,
    ])
}

fn invoke(peer: &PeerProcess, ctor: &str) -> tests::peer_process::CliOutput {
    peer.cli(&["chaincode", "invoke", "-n", "kv", "-c", ctor])
}

/// Lines of the peer's log at DEBUG.
fn debug_lines(peer: &PeerProcess) -> Vec<String> {
    peer.log()
        .lines()
        .filter(|l| l.contains(" DEBUG "))
        .map(str::to_owned)
        .collect()
}

#[test]
fn metrics_health_version_and_log_levels_of_a_running_peer() {
    let dir = tempfile::tempdir().unwrap();
    // The shim sends PUT_STATE one by one when the peer does not offer write batches.
    let peer = PeerProcess::start(
        &dir.path().join("peer"),
        &[
            ("CORE_CHAINCODE_EXECUTETIMEOUT", "2s"),
            ("CORE_CHAINCODE_RUNTIMEPARAMS_USEWRITEBATCH", "false"),
        ],
        &[],
    );
    let http = agent(None);
    let base = format!("http://{}", peer.operations);

    let (status, body) = get(&http, &format!("{base}/healthz"));
    assert_eq!(status, 200, "{body}");
    let health = json(&body);
    assert_eq!(health["status"], "OK", "{body}");
    assert!(health["time"].as_str().unwrap().contains('T'), "{body}");
    assert!(health.get("failed_checks").is_none(), "{body}");

    let (status, body) = get(&http, &format!("{base}/version"));
    assert_eq!(status, 200);
    let version = json(&body);
    assert_eq!(version["Version"], env!("CARGO_PKG_VERSION"), "{body}");
    assert!(!version["CommitSHA"].as_str().unwrap().is_empty(), "{body}");

    // Real transactions: two puts and a query.
    install(&peer, "kv", &kv_chaincode());
    instantiate(&peer, "kv").ok();
    invoke(&peer, r#"{"Args":["put","a","1"]}"#).ok();
    invoke(&peer, r#"{"Args":["put","b","2"]}"#).ok();
    let out = peer
        .cli(&[
            "chaincode",
            "query",
            "-n",
            "kv",
            "-c",
            r#"{"Args":["get","a"]}"#,
        ])
        .ok();
    assert_eq!(out.stdout, "1\n");
    // Two calls that read the same counter, wait and write it: one commits, the other is an
    // MVCC conflict.
    let both = std::thread::scope(|s| {
        let calls: Vec<_> = (0..2)
            .map(|_| s.spawn(|| invoke(&peer, r#"{"Args":["incr","counter","700"]}"#)))
            .collect();
        calls
            .into_iter()
            .map(|c| c.join().unwrap())
            .collect::<Vec<_>>()
    });
    assert_eq!(
        both.iter().filter(|o| o.status.success()).count(),
        1,
        "{both:?}"
    );

    // Log levels: info until changed; a bad spec changes nothing.
    let logspec = format!("{base}/logspec");
    let (status, body) = get(&http, &logspec);
    assert_eq!(
        (status, json(&body)),
        (200, serde_json::json!({"spec": "info"}))
    );
    assert_eq!(debug_lines(&peer), Vec::<String>::new());
    let (status, body) = put(&http, &logspec, r#"{"spec":"chaincode=loud"}"#);
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        json(&body)["Error"],
        "invalid logging specification 'chaincode=loud': bad segment 'chaincode=loud'"
    );
    let (status, body) = put(&http, &logspec, "not json");
    assert_eq!(status, 400, "{body}");
    let (_, body) = get(&http, &logspec);
    assert_eq!(json(&body)["spec"], "info");
    // Fabric's `chaincode` logger is our chaincode support (peer_support).
    let (status, body) = put(&http, &logspec, r#"{"spec":"chaincode=debug:info"}"#);
    assert_eq!(status, 204, "{body}");
    let (_, body) = get(&http, &logspec);
    assert_eq!(json(&body)["spec"], "chaincode=debug:info");

    // A chaincode whose process exits at once: its launch fails. Installing it routes it
    // past the external builders, which the chaincode support now logs at DEBUG.
    let script = dir.path().join("broken");
    std::fs::write(&script, "#!/bin/sh\nexit 3\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    install(&peer, "broken", &script);
    let debug = debug_lines(&peer);
    assert!(
        debug.iter().any(|l| l.contains("DEBUG peer_support::")),
        "no DEBUG line of the chaincode support after PUT /logspec:\n{}",
        peer.log()
    );
    assert!(
        !debug.iter().any(|l| l.contains("DEBUG peer::")),
        "the rest of the peer stays at INFO: {debug:#?}"
    );
    let out = instantiate(&peer, "broken").failed();
    assert!(out.stderr.contains("exit"), "{}", out.stderr);

    // A transaction that outlives the execute timeout.
    let out = invoke(&peer, r#"{"Args":["sleep","4000"]}"#).failed();
    assert!(
        out.stderr.contains("timed out") || out.stderr.contains("timeout"),
        "{}",
        out.stderr
    );

    let (status, text) = get(&http, &format!("{base}/metrics"));
    assert_eq!(status, 200, "{text}");
    let kv = [("chaincode", "kv:1"), ("channel", "mychannel")];
    let with = |extra: &[(&'static str, &'static str)]| -> Vec<(&str, &str)> {
        kv.iter().chain(extra).copied().collect()
    };
    // Two puts and two increments write; a get and two increments read.
    for (kind, count) in [("PUT_STATE", 4.0), ("GET_STATE", 3.0)] {
        assert_sample(
            &text,
            "chaincode_shim_requests_received",
            &with(&[("type", kind)]),
            count,
        );
        assert_sample(
            &text,
            "chaincode_shim_requests_completed",
            &with(&[("type", kind), ("success", "true")]),
            count,
        );
        assert_sample(
            &text,
            "chaincode_shim_request_duration_count",
            &with(&[("type", kind), ("success", "true")]),
            count,
        );
    }
    assert_sample(
        &text,
        "chaincode_launch_duration_count",
        &[("chaincode", "kv:1"), ("success", "true")],
        1.0,
    );
    assert_sample(
        &text,
        "chaincode_launch_duration_count",
        &[("chaincode", "broken:1"), ("success", "false")],
        1.0,
    );
    assert_sample(
        &text,
        "chaincode_launch_failures",
        &[("chaincode", "broken:1")],
        1.0,
    );
    assert_eq!(
        sample(&text, "chaincode_launch_failures", &[("chaincode", "kv:1")]),
        None
    );
    assert_eq!(
        sample(
            &text,
            "chaincode_launch_timeouts",
            &[("chaincode", "broken:1")]
        ),
        None
    );
    assert_sample(
        &text,
        "chaincode_execute_timeouts",
        &[("chaincode", "kv:1")],
        1.0,
    );
    assert_sample(&text, "chaincode_running", &[("backend", "PROCESS")], 1.0);
    assert!(
        sample(
            &text,
            "chaincode_build_duration_count",
            &[
                ("backend", "PROCESS"),
                ("chaincode", "kv:1"),
                ("success", "true")
            ]
        )
        .is_some_and(|n| n >= 1.0),
        "{text}"
    );
    // The instantiate, the two puts and one increment committed; the other increment
    // conflicted; the query and the timed-out call committed nothing.
    for (code, count) in [("VALID", 4.0), ("MVCC_READ_CONFLICT", 1.0)] {
        assert_sample(
            &text,
            "ledger_transaction_count",
            &[
                ("channel", "mychannel"),
                ("chaincode", "kv:1"),
                ("transaction_type", "ENDORSER_TRANSACTION"),
                ("validation_code", code),
            ],
            count,
        );
    }
    assert!(
        text.contains("# TYPE chaincode_launch_duration histogram"),
        "{text}"
    );
    assert!(
        text.contains("# TYPE chaincode_shim_requests_received counter"),
        "{text}"
    );
    assert!(
        !text.contains("_total"),
        "Fabric's names carry no _total suffix:\n{text}"
    );
}

#[test]
fn healthz_names_a_backend_that_fails_and_metrics_can_be_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let peer = PeerProcess::start(
        dir.path(),
        &[
            ("CORE_VM_ENDPOINT", "unix:///nonexistent/docker.sock"),
            ("CORE_METRICS_PROVIDER", "disabled"),
        ],
        &[],
    );
    let http = agent(None);
    let (status, body) = get(&http, &format!("http://{}/healthz", peer.operations));
    assert_eq!(status, 503, "{body}");
    let health = json(&body);
    assert_eq!(health["status"], "Service Unavailable");
    let failed = health["failed_checks"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{body}");
    assert_eq!(failed[0]["component"], "docker");
    assert!(
        failed[0]["reason"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/docker.sock"),
        "{body}"
    );
    let (status, _) = get(&http, &format!("http://{}/metrics", peer.operations));
    assert_eq!(status, 404);
    let (status, _) = get(&http, &format!("http://{}/version", peer.operations));
    assert_eq!(status, 200);
}

#[test]
fn statsd_is_refused_at_start_with_the_alternatives() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(workspace_binary("peer"))
        .args(["node", "start"])
        .env_remove("RUST_LOG")
        .env("CORE_PEER_FILESYSTEMPATH", dir.path())
        .env("CORE_METRICS_PROVIDER", "statsd")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("metrics.provider"), "{stderr}");
    assert!(stderr.contains("statsd is not supported"), "{stderr}");
    assert!(stderr.contains("prometheus"), "{stderr}");
}

/// A CA: (certificate PEM, issuer).
fn ca(cn: &str) -> (String, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let pem = params.self_signed(&key).unwrap().pem();
    (pem, Issuer::new(params, key))
}

/// A leaf certificate issued by `issuer`: (certificate PEM, key PEM).
fn leaf(
    issuer: &Issuer<'_, KeyPair>,
    sans: &[&str],
    usage: ExtendedKeyUsagePurpose,
) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(sans.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()).unwrap();
    params.extended_key_usages = vec![usage];
    params.use_authority_key_identifier_extension = true;
    (
        params.signed_by(&key, issuer).unwrap().pem(),
        key.serialize_pem(),
    )
}

#[test]
fn https_with_client_certificates_for_metrics_and_logspec_only() {
    let dir = tempfile::tempdir().unwrap();
    let tls = dir.path().join("tls");
    std::fs::create_dir_all(&tls).unwrap();
    let (server_ca, server_issuer) = ca("ops server CA");
    let (client_ca, client_issuer) = ca("ops client CA");
    let (server_cert, server_key) = leaf(
        &server_issuer,
        &["localhost", "127.0.0.1"],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let (client_cert, client_key) = leaf(
        &client_issuer,
        &["operator"],
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    let (stranger_ca, stranger_issuer) = ca("someone else");
    let (stranger_cert, stranger_key) = leaf(
        &stranger_issuer,
        &["stranger"],
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    let _ = stranger_ca;
    let write = |name: &str, text: &str| {
        let path = tls.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let (cert_file, key_file, client_ca_file) = (
        write("server.pem", &server_cert),
        write("server.key", &server_key),
        write("client-ca.pem", &client_ca),
    );
    let peer = PeerProcess::start(
        &dir.path().join("peer"),
        &[
            ("CORE_OPERATIONS_TLS_ENABLED", "true"),
            ("CORE_OPERATIONS_TLS_CERT_FILE", &cert_file),
            ("CORE_OPERATIONS_TLS_KEY_FILE", &key_file),
            ("CORE_OPERATIONS_TLS_CLIENTAUTHREQUIRED", "true"),
            ("CORE_OPERATIONS_TLS_CLIENTROOTCAS_FILES", &client_ca_file),
        ],
        &[],
    );
    let base = format!("https://{}", peer.operations);
    let trust = ureq::tls::RootCerts::new_with_certs(&[ureq::tls::Certificate::from_pem(
        server_ca.as_bytes(),
    )
    .unwrap()]);
    let client = |cert: Option<(&str, &str)>| {
        let mut config = ureq::tls::TlsConfig::builder().root_certs(trust.clone());
        if let Some((cert, key)) = cert {
            config = config.client_cert(Some(ureq::tls::ClientCert::new_with_certs(
                &[ureq::tls::Certificate::from_pem(cert.as_bytes()).unwrap()],
                ureq::tls::PrivateKey::from_pem(key.as_bytes()).unwrap(),
            )));
        }
        agent(Some(config.build()))
    };

    // Without a certificate: health and version answer, metrics and logspec do not.
    let anonymous = client(None);
    assert_eq!(get(&anonymous, &format!("{base}/healthz")).0, 200);
    assert_eq!(get(&anonymous, &format!("{base}/version")).0, 200);
    assert_eq!(get(&anonymous, &format!("{base}/metrics")).0, 401);
    assert_eq!(get(&anonymous, &format!("{base}/logspec")).0, 401);
    assert_eq!(
        put(
            &anonymous,
            &format!("{base}/logspec"),
            r#"{"spec":"debug"}"#
        )
        .0,
        401
    );

    // With one from the configured CA: everything.
    let operator = client(Some((&client_cert, &client_key)));
    let (status, body) = get(&operator, &format!("{base}/logspec"));
    assert_eq!((status, json(&body)["spec"].clone()), (200, "info".into()));
    assert_eq!(get(&operator, &format!("{base}/metrics")).0, 200);

    // One from another CA does not get through the handshake.
    let stranger = client(Some((&stranger_cert, &stranger_key)));
    assert!(stranger.get(&format!("{base}/metrics")).call().is_err());

    // Plain HTTP gets no answer from an HTTPS port.
    let plain = agent(None);
    let refused = plain
        .get(&format!("http://{}/healthz", peer.operations))
        .call();
    assert!(refused.is_err() || refused.unwrap().status().as_u16() >= 400);
}
