//! An in-process system chaincode invoke that does one GetState and one PutState (three
//! message round trips: TRANSACTION/COMPLETED, GET_STATE/RESPONSE, the write/RESPONSE),
//! against the same three round trips of bare `ChaincodeMessage`s over tokio channels.
//!
//! Both measured bodies run as a task on the runtime (and are awaited from the benchmark
//! thread), so both pay the same spawn and cross-thread completion.

#![allow(
    unused_crate_dependencies,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use proto::MessageType;
use proto::protos::ChaincodeMessage;
use tests::{TestPeer, input};
use tokio::sync::mpsc;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn inproc_invoke(c: &mut Criterion) {
    let rt = runtime();
    let peer = TestPeer::new();
    let args = input(&["incr", "counter"]);
    // Launch once, outside the measurement.
    rt.block_on(peer.invoke("bench", "kvscc", &["incr", "counter"]))
        .expect("warm-up");
    let (template, _) = peer.tx("bench", "kvscc", &args);
    let ledger = peer.ledgers.get_or_create("bench").expect("ledger");
    let n = Arc::new(AtomicU64::new(0));
    let support = peer.support.clone();

    let mut group = c.benchmark_group("inproc");
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("scc_invoke_get_put", |b| {
        b.to_async(&rt).iter(|| {
            let mut params = template.clone();
            params.tx_id = format!("tx{}", n.fetch_add(1, Ordering::Relaxed));
            params.simulator = Some(ledger.new_tx_simulator());
            let (support, args) = (support.clone(), args.clone());
            async move {
                let task =
                    tokio::spawn(async move { support.execute(&params, "kvscc", args).await });
                let result = task.await.expect("task").expect("invoke");
                assert_eq!(result.response.status, 200);
            }
        });
    });

    // The baseline: two tasks exchanging the same number of messages over tokio channels.
    let (to_cc, mut cc_rx) = mpsc::channel::<ChaincodeMessage>(128);
    let (to_peer, peer_rx) = mpsc::channel::<ChaincodeMessage>(128);
    rt.spawn(async move {
        while let Some(msg) = cc_rx.recv().await {
            let reply = ChaincodeMessage::with_payload(
                MessageType::Response,
                msg.channel_id,
                msg.txid,
                msg.payload,
            );
            if to_peer.send(reply).await.is_err() {
                break;
            }
        }
    });
    let peer_rx = Arc::new(tokio::sync::Mutex::new(peer_rx));
    group.bench_function("raw_channel_3_round_trips", |b| {
        b.to_async(&rt).iter(|| {
            let (peer_rx, to_cc, n) = (peer_rx.clone(), to_cc.clone(), n.clone());
            async move {
                let task = tokio::spawn(async move {
                    let mut rx = peer_rx.lock().await;
                    for kind in [
                        MessageType::Transaction,
                        MessageType::GetState,
                        MessageType::PutState,
                    ] {
                        let txid = format!("tx{}", n.fetch_add(1, Ordering::Relaxed));
                        to_cc
                            .send(ChaincodeMessage::with_payload(
                                kind,
                                "bench",
                                txid,
                                &b"counter"[..],
                            ))
                            .await
                            .expect("send");
                        rx.recv().await.expect("reply");
                    }
                });
                task.await.expect("task");
            }
        });
    });
    group.finish();
}

criterion_group!(benches, inproc_invoke);
criterion_main!(benches);
