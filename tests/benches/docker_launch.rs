//! Warm launch (image present) of the static Rust chaincode in a container until it is READY,
//! against `docker run` of the same image until its first output, in the same run.
//!
//! Needs Docker and the static release build of the chaincode (`scripts/bench` builds it).

#![allow(
    unused_crate_dependencies,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use peer_support::ChaincodeDefinition;
use tests::TestPeer;
use tests::bench::{median_and_max, ms};
use vm_api::{Ccid, ChaincodePackage, Settings};
use vm_docker::testing::{Cleanup, require_docker, unique};

const RUNS: usize = 30;

/// `docker run` of `image` until the first byte it prints (it prints and exits at once: no
/// chaincode name is set).
fn docker_run_first_output(image: &str) -> Duration {
    let started = Instant::now();
    let mut child = Command::new("docker")
        .args([
            "run",
            "--rm",
            "--network",
            "host",
            image,
            "chaincode",
            "-peer.address=127.0.0.1:1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 1];
    child
        .stderr
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    let took = started.elapsed();
    child.wait().unwrap();
    took
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    if !require_docker("docker_launch") {
        return;
    }
    let chaincode = tests::env::static_kv_chaincode();
    let rt = tests::bench::runtime();
    rt.block_on(async {
        let peer_id = unique("bench");
        let _cleanup = Cleanup {
            peer_id: peer_id.clone(),
            images: vec![],
        };
        let peer = {
            let peer_id = peer_id.clone();
            TestPeer::builder()
                .config(move |c| {
                    c.peer_id = peer_id;
                    c.network_id = "bench".into();
                    c.settings = Settings::new();
                })
                .grpc(true)
                .build()
        };
        let ccid = Ccid::new("rustkv", "1");
        let package = ChaincodePackage::legacy(&ccid, "binary", chaincode);
        let def = ChaincodeDefinition::user(ccid, "DOCKER", package);
        peer.definitions.define(def.clone());
        let image = vm_docker::names("bench", &peer_id, &def.ccid)
            .unwrap()
            .image;
        // The first launch builds the image; the measured ones find it present.
        peer.support.launch(&def).await.unwrap();
        peer.support.stop(&def).await.unwrap();
        docker_run_first_output(&image);

        let (mut ours, mut raw) = (Vec::new(), Vec::new());
        for _ in 0..RUNS {
            let t = Instant::now();
            peer.support.launch(&def).await.unwrap();
            ours.push(t.elapsed());
            peer.support.stop(&def).await.unwrap();
            let image = image.clone();
            raw.push(
                tokio::task::spawn_blocking(move || docker_run_first_output(&image))
                    .await
                    .unwrap(),
            );
        }
        peer.shutdown().await;
        let ((ours50, ours_max), (raw50, raw_max)) = (median_and_max(ours), median_and_max(raw));
        println!("| benchmark | median | slowest |");
        println!("|---|---|---|");
        println!(
            "| warm launch through DOCKER until READY (mutual TLS) | {} | {} |",
            ms(ours50),
            ms(ours_max)
        );
        println!(
            "| `docker run` of the same image until first output | {} | {} |",
            ms(raw50),
            ms(raw_max)
        );
        println!();
        println!(
            "ratio launch / docker run (medians, {RUNS} runs): {:.2}x",
            ours50.as_secs_f64() / raw50.as_secs_f64()
        );
    });
}
