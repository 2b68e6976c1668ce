//! How long stopping takes: one registered Rust chaincode in a container (stop, kill, remove
//! through the DOCKER backend, with Fabric's 10 s stop timeout), and a peer shutdown with
//! several such chaincodes; against `docker stop -t 10` of a PID 1 that ignores SIGTERM, which
//! is what every stop cost while the shim had no handler.
//!
//! Needs Docker and the static release build of the chaincode (`scripts/bench` builds it).

#![allow(
    unused_crate_dependencies,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::time::{Duration, Instant};

use peer_support::ChaincodeDefinition;
use tests::TestPeer;
use tests::bench::{median_and_max, ms};
use vm_api::{Ccid, ChaincodePackage, Settings};
use vm_docker::testing::{Cleanup, docker, require_docker, shell_image, unique};

const STOPS: usize = 10;
const SHUTDOWNS: usize = 3;
const CHAINCODES: usize = 4;

fn peer(peer_id: &str) -> TestPeer {
    let peer_id = peer_id.to_owned();
    TestPeer::builder()
        .config(move |c| {
            c.peer_id = peer_id;
            c.network_id = "bench".into();
            c.settings = Settings::new();
            c.startup_timeout = Duration::from_secs(120);
        })
        .grpc(true)
        .build()
}

fn define(peer: &TestPeer, name: &str) -> ChaincodeDefinition {
    let ccid = Ccid::new(name, "1");
    let package = ChaincodePackage::legacy(&ccid, "binary", tests::env::static_kv_chaincode());
    let def = ChaincodeDefinition::user(ccid, "DOCKER", package);
    peer.definitions.define(def.clone());
    def
}

/// `docker stop -t 10` of a container whose PID 1 (`sleep`) has no SIGTERM handler.
fn stop_without_handler(image: &str) -> Duration {
    let id = docker(&["run", "-d", "--network", "host", image, "sleep", "600"]);
    let started = Instant::now();
    docker(&["stop", "-t", "10", &id]);
    let took = started.elapsed();
    docker(&["rm", "-f", &id]);
    took
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    if !require_docker("docker_stop") {
        return;
    }
    let rt = tests::bench::runtime();
    rt.block_on(async {
        let peer_id = unique("stopbench");
        let shell = format!("ccrt-bench-shell:{peer_id}");
        let _cleanup = Cleanup {
            peer_id: peer_id.clone(),
            images: vec![shell.clone()],
        };
        shell_image(&shell);

        let p = peer(&peer_id);
        let defs: Vec<ChaincodeDefinition> = (0..CHAINCODES)
            .map(|i| define(&p, &format!("stopkv{i}")))
            .collect();
        // The first launch builds the image; measured ones find it present.
        p.support.launch(&defs[0]).await.unwrap();
        let mut stops = Vec::new();
        for _ in 0..STOPS {
            p.support.launch(&defs[0]).await.unwrap();
            let t = Instant::now();
            p.support.stop(&defs[0]).await.unwrap();
            stops.push(t.elapsed());
        }
        p.shutdown().await;

        let mut shutdowns = Vec::new();
        for _ in 0..SHUTDOWNS {
            let p = peer(&peer_id);
            for i in 0..CHAINCODES {
                let def = define(&p, &format!("stopkv{i}"));
                p.support.launch(&def).await.unwrap();
            }
            let t = Instant::now();
            p.shutdown().await;
            shutdowns.push(t.elapsed());
        }
        let baseline = tokio::task::spawn_blocking(move || {
            (0..2).map(|_| stop_without_handler(&shell)).collect::<Vec<_>>()
        })
        .await
        .unwrap();

        let ((stop50, stop_max), (shut50, shut_max), (base50, base_max)) =
            (median_and_max(stops), median_and_max(shutdowns), median_and_max(baseline));
        println!("| benchmark | median | slowest |");
        println!("|---|---|---|");
        println!(
            "| stop of a registered Rust chaincode through DOCKER (stop, kill, remove; {STOPS} runs) | {} | {} |",
            ms(stop50),
            ms(stop_max)
        );
        println!(
            "| peer shutdown with {CHAINCODES} Docker chaincodes registered ({SHUTDOWNS} runs) | {} | {} |",
            ms(shut50),
            ms(shut_max)
        );
        println!(
            "| `docker stop -t 10` of a PID 1 without a SIGTERM handler (2 runs) | {} | {} |",
            ms(base50),
            ms(base_max)
        );
    });
}
