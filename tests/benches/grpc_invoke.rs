//! The Rust chaincode over loopback gRPC, against a raw tonic bidi stream, in one run.
//!
//! - `invoke`: one `kv-chaincode incr` through `ChaincodeSupport::execute` (one GetState and
//!   one write: three round trips on the chaincode's stream, TRANSACTION/COMPLETED included).
//! - `raw`: three request/response round trips of `ChaincodeMessage`s over one tonic
//!   bidi stream to an echo server (the same generated service, TCP_NODELAY on both). The
//!   echo server runs in its own process, as the chaincode does (this binary started again
//!   with `GRPC_BENCH_ECHO=1`); an in-process echo server is measured too, for reference.
//! - `launch`: starting the chaincode through the PROCESS backend with mutual TLS, until it
//!   registered and is ready.
//!
//! Needs the release build of the chaincode: `scripts/bench` (or
//! `cargo build --release -p kv-chaincode`) first.

#![allow(
    unused_crate_dependencies,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use proto::MessageType;
use proto::protos::ChaincodeMessage;
use proto::protos::chaincode_support_client::ChaincodeSupportClient;
use proto::protos::chaincode_support_server::{ChaincodeSupport, ChaincodeSupportServer};
use tests::TestPeer;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

const SAMPLES: usize = 5000;
const WARMUP: usize = 500;
const CONCURRENCY: usize = 16;
const THROUGHPUT_WINDOW: Duration = Duration::from_secs(3);
const LAUNCHES: usize = 30;

struct Stats {
    p50: Duration,
    p99: Duration,
    per_second: f64,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    let total: Duration = samples.iter().sum();
    Stats {
        p50: samples[samples.len() / 2],
        p99: samples[samples.len() * 99 / 100],
        per_second: samples.len() as f64 / total.as_secs_f64(),
    }
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

/// Echoes every message back as a RESPONSE.
struct Echo;

type Out = Pin<Box<dyn Stream<Item = Result<ChaincodeMessage, Status>> + Send>>;

#[tonic::async_trait]
impl ChaincodeSupport for Echo {
    type RegisterStream = Out;
    async fn register(
        &self,
        request: Request<Streaming<ChaincodeMessage>>,
    ) -> Result<Response<Out>, Status> {
        let out = request.into_inner().map(|m| {
            m.map(|m| {
                ChaincodeMessage::with_payload(
                    MessageType::Response,
                    m.channel_id,
                    m.txid,
                    m.payload,
                )
            })
        });
        Ok(Response::new(Box::pin(out)))
    }
}

async fn raw_stream(
    address: &str,
) -> (
    tokio::sync::mpsc::Sender<ChaincodeMessage>,
    Streaming<ChaincodeMessage>,
) {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .unwrap()
        .tcp_nodelay(true)
        .connect()
        .await
        .unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let inbound = ChaincodeSupportClient::new(channel)
        .register(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    (tx, inbound)
}

async fn raw_op(
    tx: &tokio::sync::mpsc::Sender<ChaincodeMessage>,
    rx: &mut Streaming<ChaincodeMessage>,
    n: usize,
) {
    for kind in [
        MessageType::Transaction,
        MessageType::GetState,
        MessageType::WriteBatchState,
    ] {
        tx.send(ChaincodeMessage::with_payload(
            kind,
            "bench",
            format!("tx{n}"),
            &b"counter"[..],
        ))
        .await
        .unwrap();
        rx.next().await.unwrap().unwrap();
    }
}

/// Serves the echo service on an ephemeral port, printing the address, until stdin closes.
fn echo_server_process() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("{}", listener.local_addr().unwrap());
        let stdin_closed = async {
            let _ = tokio::task::spawn_blocking(|| {
                use std::io::Read;
                let _ = std::io::stdin().read(&mut [0u8; 1]);
            })
            .await;
        };
        tonic::transport::Server::builder()
            .add_service(ChaincodeSupportServer::new(Echo))
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
                stdin_closed,
            )
            .await
            .unwrap();
    });
}

/// Starts the echo server: in another process, or in this one.
async fn echo_server(separate_process: bool) -> (String, Option<std::process::Child>) {
    if separate_process {
        use std::io::BufRead;
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .env("GRPC_BENCH_ECHO", "1")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        return (line.trim().to_owned(), Some(child));
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(ChaincodeSupportServer::new(Echo))
            .serve_with_incoming(
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            ),
    );
    (address, None)
}

async fn bench_raw(separate_process: bool) -> (Stats, f64) {
    let (address, server) = echo_server(separate_process).await;
    let (tx, mut rx) = raw_stream(&address).await;
    for n in 0..WARMUP {
        raw_op(&tx, &mut rx, n).await;
    }
    let mut samples = Vec::with_capacity(SAMPLES);
    for n in 0..SAMPLES {
        let t = Instant::now();
        raw_op(&tx, &mut rx, n).await;
        samples.push(t.elapsed());
    }
    // Throughput: CONCURRENCY clients, each on its own stream.
    let deadline = Instant::now() + THROUGHPUT_WINDOW;
    let mut clients = Vec::new();
    for _ in 0..CONCURRENCY {
        let address = address.clone();
        clients.push(tokio::spawn(async move {
            let (tx, mut rx) = raw_stream(&address).await;
            let mut done = 0usize;
            while Instant::now() < deadline {
                raw_op(&tx, &mut rx, done).await;
                done += 1;
            }
            done
        }));
    }
    let started = Instant::now();
    let mut total = 0;
    for c in clients {
        total += c.await.unwrap();
    }
    let throughput = total as f64 / started.elapsed().as_secs_f64();
    drop((tx, rx));
    if let Some(mut child) = server {
        let _ = child.kill();
        let _ = child.wait();
    }
    (stats(samples), throughput)
}

async fn bench_invoke(tls: bool, chaincode: &std::path::Path) -> (Stats, f64) {
    let peer = Arc::new(TestPeer::builder().grpc(tls).build());
    peer.define_process("rustkv", "1", "binary", chaincode);
    let input = tests::input(&["incr", "counter"]);
    let (template, _) = peer.tx("bench", "rustkv", &input);
    let ledger = peer.ledgers.get_or_create("bench").unwrap();
    let invoke = {
        let peer = peer.clone();
        let ledger = ledger.clone();
        move |n: usize| {
            let mut params = template.clone();
            params.tx_id = format!("tx{n}");
            params.simulator = Some(ledger.new_tx_simulator());
            let (peer, input) = (peer.clone(), input.clone());
            async move {
                let r = peer
                    .support
                    .execute(&params, "rustkv", input)
                    .await
                    .unwrap();
                assert_eq!(r.response.status, 200);
            }
        }
    };
    for n in 0..WARMUP {
        invoke(n).await;
    }
    let mut samples = Vec::with_capacity(SAMPLES);
    for n in 0..SAMPLES {
        let t = Instant::now();
        invoke(WARMUP + n).await;
        samples.push(t.elapsed());
    }
    let deadline = Instant::now() + THROUGHPUT_WINDOW;
    let mut clients = Vec::new();
    for c in 0..CONCURRENCY {
        let invoke = invoke.clone();
        clients.push(tokio::spawn(async move {
            let mut done = 0usize;
            while Instant::now() < deadline {
                invoke(1_000_000 * (c + 1) + done).await;
                done += 1;
            }
            done
        }));
    }
    let started = Instant::now();
    let mut total = 0;
    for c in clients {
        total += c.await.unwrap();
    }
    let throughput = total as f64 / started.elapsed().as_secs_f64();
    drop(invoke);
    Arc::try_unwrap(peer)
        .ok()
        .expect("sole owner")
        .shutdown()
        .await;
    (stats(samples), throughput)
}

async fn bench_launch(chaincode: &std::path::Path) -> Stats {
    let peer = TestPeer::builder().grpc(true).build();
    let def = peer.define_process("rustkv", "1", "binary", chaincode);
    let mut samples = Vec::with_capacity(LAUNCHES);
    for i in 0..LAUNCHES + 3 {
        let t = Instant::now();
        peer.support.launch(&def).await.unwrap();
        let took = t.elapsed();
        if i >= 3 {
            samples.push(took);
        }
        peer.support.stop(&def).await.unwrap();
    }
    peer.shutdown().await;
    stats(samples)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run only when benching.
    if std::env::var_os("GRPC_BENCH_ECHO").is_some() {
        return echo_server_process();
    }
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let chaincode = tests::env::kv_chaincode();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let run = tokio::spawn(async move {
            let (raw, raw_tp) = bench_raw(true).await;
            let (raw_in, raw_in_tp) = bench_raw(false).await;
            let (plain, plain_tp) = bench_invoke(false, &chaincode).await;
            let (tls, tls_tp) = bench_invoke(true, &chaincode).await;
            let launch = bench_launch(&chaincode).await;
            println!("| benchmark | p50 | p99 | sequential ops/s | ops/s, {CONCURRENCY} concurrent |");
            println!("|---|---|---|---|---|");
            println!("| raw tonic bidi, 3 round trips, echo in another process | {} | {} | {:.0} | {:.0} |", us(raw.p50), us(raw.p99), raw.per_second, raw_tp);
            println!("| raw tonic bidi, 3 round trips, echo in the same process | {} | {} | {:.0} | {:.0} |", us(raw_in.p50), us(raw_in.p99), raw_in.per_second, raw_in_tp);
            println!("| invoke over gRPC (plain) | {} | {} | {:.0} | {:.0} |", us(plain.p50), us(plain.p99), plain.per_second, plain_tp);
            println!("| invoke over gRPC (mutual TLS) | {} | {} | {:.0} | {:.0} |", us(tls.p50), us(tls.p99), tls.per_second, tls_tp);
            println!();
            println!("p50 ratio invoke/raw: plain {:.2}x, TLS {:.2}x", plain.p50.as_secs_f64() / raw.p50.as_secs_f64(), tls.p50.as_secs_f64() / raw.p50.as_secs_f64());
            println!("launch until READY (PROCESS, mutual TLS): p50 {}, p99 {} ({LAUNCHES} launches)", us(launch.p50), us(launch.p99));
        });
        run.await.unwrap();
    });
}
