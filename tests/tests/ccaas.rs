//! Chaincode as a service through a `ccaas` package and a builder that behaves as Fabric's
//! `ccaas_builder` (the fixture, with its templates rendered from
//! `CHAINCODE_AS_A_SERVICE_BUILDER_CONFIG` in the peer's environment): the peer dials the
//! chaincode's server. Served by Fabric's Node shim (`shim.server`, the unchanged interop kv
//! chaincode) and by our Rust kv chaincode reading the environment Fabric's samples use; TLS
//! off and on (with client authentication).
//!
//! One test in this binary: it sets the builder's configuration in the process environment
//! before any other thread exists.

#![allow(unused_crate_dependencies, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use peer_support::ClientCertIssuer;
use peer_support::tls::ChaincodeCa;
use serde_json::{Value, json};
use tests::builders::{calls, ccaas_package, require_jq, traced};
use tests::env::{NodeKit, kv_chaincode, require_node, shared_dir};
use tests::scenarios::{Callees, kv_scenarios};
use tests::{TestPeer, ok_text};

const CONFIG: &str = r#"{"host":"127.0.0.1","timeout":"10s"}"#;

const CALLEES: Callees<'static> = Callees {
    system: "kvscc",
    user: "rustproc",
};

/// A chaincode server process, killed when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something listens on `port`.
fn wait_listening(port: u16, server: &mut Server) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = server.0.try_wait() {
            panic!("the chaincode server exited: {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on {port}");
}

/// TLS of one chaincode server: its files for the server's environment, and what
/// `connection.json` tells the peer.
struct ServerTls {
    env: Vec<(&'static str, String)>,
    connection: Value,
}

fn server_tls(dir: &Path) -> ServerTls {
    let ca = ChaincodeCa::new().unwrap();
    let server = ca.server_tls(&[]).unwrap();
    let peer = ca.issue("the peer").unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    ServerTls {
        env: vec![
            ("CHAINCODE_TLS_DISABLED", "false".into()),
            ("CHAINCODE_TLS_KEY", write("server.key", &server.key_pem)),
            ("CHAINCODE_TLS_CERT", write("server.crt", &server.cert_pem)),
            ("CHAINCODE_CLIENT_CA_CERT", write("ca.crt", ca.ca_pem())),
        ],
        connection: json!({
            "tls_required": true,
            "client_auth_required": true,
            "root_cert": ca.ca_pem(),
            "client_cert": peer.cert_pem,
            "client_key": peer.key_pem,
        }),
    }
}

/// `connection.json` for a server on `port`: address and dial timeout as templates.
fn connection(port: u16, tls: Option<&ServerTls>) -> Value {
    let mut c = json!({"address": format!("{{{{.host}}}}:{port}"), "dial_timeout": "{{.timeout}}"});
    if let Some(tls) = tls {
        for (k, v) in tls.connection.as_object().unwrap() {
            c[k] = v.clone();
        }
    }
    c
}

/// The unchanged interop kv chaincode served by Fabric's Node shim: `shim.start` is replaced
/// by `shim.server` with the samples' environment, then `index.js` is loaded as it is.
fn node_server(kit: &NodeKit, dir: &Path, id: &str, port: u16, tls: Option<&ServerTls>) -> Server {
    let kv = shared_dir().join("interop/chaincodes/kv");
    let code = dir.join("node-kv");
    std::fs::create_dir_all(&code).unwrap();
    for file in ["index.js", "package.json"] {
        std::fs::copy(kv.join(file), code.join(file)).unwrap();
    }
    std::fs::write(
        code.join("server.js"),
        r#"'use strict';
const fs = require('fs');
const shim = require('fabric-shim');
shim.start = (chaincode) => {
    const env = process.env;
    const tlsProps = env.CHAINCODE_TLS_DISABLED === 'false' ? {
        key: fs.readFileSync(env.CHAINCODE_TLS_KEY),
        cert: fs.readFileSync(env.CHAINCODE_TLS_CERT),
        clientCACerts: env.CHAINCODE_CLIENT_CA_CERT ? fs.readFileSync(env.CHAINCODE_CLIENT_CA_CERT) : undefined,
    } : undefined;
    shim.server(chaincode, { ccid: env.CHAINCODE_ID, address: env.CHAINCODE_SERVER_ADDRESS, tlsProps })
        .start()
        .catch((e) => { console.error(e); process.exit(1); });
};
require('./index.js');
"#,
    )
    .unwrap();
    let mut cmd = Command::new("node");
    cmd.arg(code.join("server.js"))
        .env("NODE_PATH", &kit.node_modules);
    spawn_server(cmd, id, port, tls)
}

/// Our Rust kv chaincode, the same binary that dials peers, serving because the samples'
/// environment says so.
fn rust_server(id: &str, port: u16, tls: Option<&ServerTls>) -> Server {
    spawn_server(Command::new(kv_chaincode()), id, port, tls)
}

fn spawn_server(mut cmd: Command, id: &str, port: u16, tls: Option<&ServerTls>) -> Server {
    cmd.env("CHAINCODE_SERVER_ADDRESS", format!("127.0.0.1:{port}"))
        .env("CHAINCODE_ID", id)
        .env_remove("CORE_PEER_ADDRESS")
        .stdin(Stdio::null());
    for (k, v) in tls.map(|t| t.env.as_slice()).unwrap_or_default() {
        cmd.env(k, v);
    }
    let mut server = Server(cmd.spawn().unwrap());
    wait_listening(port, &mut server);
    server
}

struct Setup {
    dir: tempfile::TempDir,
    builder: PathBuf,
    peer: TestPeer,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let builder = traced(dir.path(), "ccaas", "ccaas");
    let peer = TestPeer::builder()
        .fabric2(
            &dir.path().join("peer"),
            json!([{
                "name": "ccaas",
                "path": builder,
                "propagateEnvironment": ["CHAINCODE_AS_A_SERVICE_BUILDER_CONFIG"]
            }]),
        )
        .grpc(true)
        .build();
    peer.define_process("rustproc", "1", "binary", kv_chaincode());
    Setup { dir, builder, peer }
}

/// Installs a ccaas package for a server on `port`, starts the server with `serve` (given the
/// package ID), runs the kv scenarios as `name`, and checks what the builder released.
async fn served_scenarios(
    name: &str,
    tls: bool,
    ends_on_sigterm: bool,
    serve: impl FnOnce(&Path, &str, u16, Option<&ServerTls>) -> Server,
) {
    let s = setup();
    let port = free_port();
    let tls_files = tls.then(|| server_tls(s.dir.path()));
    let package = ccaas_package(&format!("{name}_1"), &connection(port, tls_files.as_ref()));
    let (def, installed) = s.peer.install_and_define(name, package).await.unwrap();
    assert_eq!(installed.container_type, "EXTERNAL");
    let mut server = serve(
        s.dir.path(),
        &installed.package.id,
        port,
        tls_files.as_ref(),
    );
    kv_scenarios(&s.peer, name, CALLEES).await;

    // The builder rendered the templates and released connection.json where Fabric's does.
    let released: Value = serde_json::from_slice(
        &std::fs::read(
            s.dir
                .path()
                .join("peer/externalbuilder/builds")
                .join(installed.package.id.replace(':', "-"))
                .join("release/chaincode/server/connection.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(released["address"], format!("127.0.0.1:{port}"));
    assert_eq!(released["dial_timeout"], "10s");
    assert_eq!(released["tls_required"], tls);
    let log = calls(&s.builder);
    assert!(
        !log.iter().any(|l| l.starts_with("run ")),
        "no run for a served chaincode: {log:?}"
    );

    // Stopping closes the peer's connection; the next invoke dials again.
    s.peer.support.stop(&def).await.unwrap();
    assert!(
        !s.peer
            .support
            .registry()
            .registered()
            .contains(&installed.package.id)
    );
    ok_text(
        &s.peer
            .invoke("ch", name, &["put", "again", "yes"])
            .await
            .unwrap(),
    );
    if ends_on_sigterm {
        // Told to stop while the peer holds its stream open, the server still ends, by
        // itself and cleanly.
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(server.0.id()).unwrap()),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = server.0.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not end on SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(status.code(), Some(0), "{status}");
    }
    s.peer.shutdown().await;
}

/// A server that is down is a launch error naming its address; once it is up, the next invoke
/// works. A connection.json the peer cannot use fails the launch, saying why.
async fn a_server_that_is_down_and_a_bad_connection_json() {
    let s = setup();
    let port = free_port();
    // No dial_timeout: Fabric's builder writes "", which means the default.
    let (_, installed) = s
        .peer
        .install_and_define(
            "later",
            ccaas_package(
                "later_1",
                &json!({"address": format!("{{{{.host}}}}:{port}")}),
            ),
        )
        .await
        .unwrap();
    let e = s
        .peer
        .invoke("ch", "later", &["put", "k", "v"])
        .await
        .unwrap_err()
        .report();
    assert!(
        e.contains(&format!(
            "cannot connect to chaincode server 127.0.0.1:{port}"
        )),
        "{e}"
    );
    let _server = rust_server(&installed.package.id, port, None);
    ok_text(
        &s.peer
            .invoke("ch", "later", &["put", "k", "v"])
            .await
            .unwrap(),
    );

    // No port: Fabric's builder passes it on; the peer refuses it at launch.
    let (_, _) = s
        .peer
        .install_and_define(
            "noport",
            ccaas_package("noport_1", &json!({"address": "{{.host}}"})),
        )
        .await
        .unwrap();
    let e = s
        .peer
        .invoke("ch", "noport", &["get", "k"])
        .await
        .unwrap_err()
        .report();
    assert!(e.contains("malformed connection.json"), "{e}");
    assert!(e.contains("address \"127.0.0.1\" is not host:port"), "{e}");

    // A template key the configuration lacks fails the build, with the builder's words.
    let e = s
        .peer
        .support
        .install_package(ccaas_package("nokey_1", &json!({"address": "{{.peername}}:1"})).into())
        .await
        .unwrap_err()
        .report();
    assert!(
        e.contains("external builder ccaas: build exited with 1"),
        "{e}"
    );
    assert!(e.contains("template key \"peername\""), "{e}");
    s.peer.shutdown().await;
}

#[test]
fn chaincodes_served_as_services_through_the_ccaas_builder() {
    if !require_jq("ccaas::chaincodes_served_as_services_through_the_ccaas_builder") {
        return;
    }
    // SAFETY: this is the only test in this binary and no other thread exists yet: the
    // environment is set before the runtime starts.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("CHAINCODE_AS_A_SERVICE_BUILDER_CONFIG", CONFIG);
    }
    let node = require_node("ccaas::node_shim_server");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for tls in [false, true] {
            served_scenarios("rustsvc", tls, true, |_, id, port, tls| {
                rust_server(id, port, tls)
            })
            .await;
            if let Some(kit) = &node {
                // (fabric-shim's server has no SIGTERM handler of its own.)
                served_scenarios("nodesvc", tls, false, |dir, id, port, tls| {
                    node_server(kit, dir, id, port, tls)
                })
                .await;
            }
        }
        a_server_that_is_down_and_a_bad_connection_json().await;
    });
}
