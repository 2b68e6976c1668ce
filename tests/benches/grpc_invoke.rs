//! The Rust chaincode over loopback gRPC, against a raw tonic bidi stream, in one run.
//!
//! - `invoke`: one `kv-chaincode incr` through `ChaincodeSupport::execute` (one GetState and
//!   one write: three round trips on the chaincode's stream, TRANSACTION/COMPLETED included),
//!   with and without mutual TLS.
//! - `raw`: three request/response round trips of `ChaincodeMessage`s over one tonic bidi
//!   stream to an echo server (the same generated service, TCP_NODELAY on both). The echo
//!   server runs in its own process, as the chaincode does (this binary started again with
//!   `GRPC_BENCH_ECHO=1`); an echo server inside this process is measured too, for reference.
//! - `launch`: starting the chaincode through the PROCESS backend with mutual TLS, until it
//!   registered and is ready.
//!
//! The variants are measured in interleaved rounds, so that drift on a busy machine affects
//! them alike. Needs the release build of the chaincode: `scripts/bench` (or
//! `cargo build --release -p kv-chaincode`) first.

#![allow(
    unused_crate_dependencies,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::pin::Pin;
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use proto::MessageType;
use proto::protos::ChaincodeMessage;
use proto::protos::chaincode_support_client::ChaincodeSupportClient;
use proto::protos::chaincode_support_server::{ChaincodeSupport, ChaincodeSupportServer};
use tests::TestPeer;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

const ROUNDS: usize = 10;
const PER_ROUND: usize = 500;
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

async fn serve_echo(listener: tokio::net::TcpListener) {
    tonic::transport::Server::builder()
        .add_service(ChaincodeSupportServer::new(Echo))
        .serve_with_incoming(
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
        )
        .await
        .unwrap();
}

/// Serves the echo service on an ephemeral port, printing the address, until killed. Like the
/// chaincode process, it runs on a current-thread runtime.
fn echo_server_process() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("{}", listener.local_addr().unwrap());
        serve_echo(listener).await;
    });
}

/// One bidi stream to an echo server.
struct Raw {
    tx: mpsc::Sender<ChaincodeMessage>,
    rx: Streaming<ChaincodeMessage>,
}

impl Raw {
    async fn connect(address: &str) -> Raw {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
            .unwrap()
            .tcp_nodelay(true)
            .connect()
            .await
            .unwrap();
        let (tx, rx) = mpsc::channel(16);
        let rx = ChaincodeSupportClient::new(channel)
            .register(ReceiverStream::new(rx))
            .await
            .unwrap()
            .into_inner();
        Raw { tx, rx }
    }

    async fn op(&mut self, n: usize) {
        for kind in [
            MessageType::Transaction,
            MessageType::GetState,
            MessageType::WriteBatchState,
        ] {
            self.tx
                .send(ChaincodeMessage::with_payload(
                    kind,
                    "bench",
                    format!("tx{n}"),
                    &b"counter"[..],
                ))
                .await
                .unwrap();
            self.rx.next().await.unwrap().unwrap();
        }
    }
}

/// A peer with the Rust chaincode launched.
struct Invoker {
    peer: TestPeer,
    template: peer_support::TxParams,
    input: proto::protos::ChaincodeInput,
    ledger: std::sync::Arc<peer_support::ledger::Ledger>,
}

impl Invoker {
    async fn new(tls: bool, chaincode: &std::path::Path) -> Invoker {
        let peer = TestPeer::builder().grpc(tls).build();
        peer.define_process("rustkv", "1", "binary", chaincode);
        let input = tests::input(&["incr", "counter"]);
        let (template, _) = peer.tx("bench", "rustkv", &input);
        let ledger = peer.ledgers.get_or_create("bench").unwrap();
        Invoker {
            peer,
            template,
            input,
            ledger,
        }
    }

    fn op(&self, n: usize) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut params = self.template.clone();
        params.tx_id = format!("tx{n}");
        params.simulator = Some(self.ledger.new_tx_simulator());
        let (support, input) = (self.peer.support.clone(), self.input.clone());
        async move {
            let r = support.execute(&params, "rustkv", input).await.unwrap();
            assert_eq!(r.response.status, 200);
        }
    }
}

async fn throughput<F, Fut>(make: F) -> f64
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = usize> + Send + 'static,
{
    let clients: Vec<_> = (0..CONCURRENCY).map(|c| tokio::spawn(make(c))).collect();
    let started = Instant::now();
    let mut total = 0;
    for c in clients {
        total += c.await.unwrap();
    }
    total as f64 / started.elapsed().as_secs_f64()
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

async fn run(chaincode: std::path::PathBuf) {
    // Echo servers: one in a process of its own, one here.
    let mut child = {
        use std::io::BufRead;
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .env("GRPC_BENCH_ECHO", "1")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        (child, line.trim().to_owned())
    };
    let remote_address = child.1.clone();
    let local = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let local_address = local.local_addr().unwrap().to_string();
    tokio::spawn(serve_echo(local));

    let mut raw_remote = Raw::connect(&remote_address).await;
    let mut raw_local = Raw::connect(&local_address).await;
    let plain = Invoker::new(false, &chaincode).await;
    let tls = Invoker::new(true, &chaincode).await;
    for n in 0..WARMUP {
        raw_remote.op(n).await;
        raw_local.op(n).await;
        plain.op(n).await;
        tls.op(n).await;
    }
    let mut samples: [Vec<Duration>; 4] = Default::default();
    let mut n = WARMUP;
    for _ in 0..ROUNDS {
        for (variant, out) in samples.iter_mut().enumerate() {
            for _ in 0..PER_ROUND {
                n += 1;
                let t = Instant::now();
                match variant {
                    0 => raw_remote.op(n).await,
                    1 => raw_local.op(n).await,
                    2 => plain.op(n).await,
                    _ => tls.op(n).await,
                }
                out.push(t.elapsed());
            }
        }
    }
    let [remote, local_s, plain_s, tls_s] = samples.map(stats);

    let deadline = Instant::now() + THROUGHPUT_WINDOW;
    let tp = |address: String| {
        throughput(move |_| {
            let address = address.clone();
            async move {
                let mut raw = Raw::connect(&address).await;
                let mut done = 0;
                while Instant::now() < deadline {
                    raw.op(done).await;
                    done += 1;
                }
                done
            }
        })
    };
    let remote_tp = tp(remote_address.clone()).await;
    let deadline = Instant::now() + THROUGHPUT_WINDOW;
    let local_tp = {
        let address = local_address.clone();
        throughput(move |_| {
            let address = address.clone();
            async move {
                let mut raw = Raw::connect(&address).await;
                let mut done = 0;
                while Instant::now() < deadline {
                    raw.op(done).await;
                    done += 1;
                }
                done
            }
        })
        .await
    };
    let invoke_tp = |inv: &Invoker| {
        let deadline = Instant::now() + THROUGHPUT_WINDOW;
        let ops: Vec<_> = (0..CONCURRENCY)
            .map(|c| {
                let template = (
                    inv.peer.support.clone(),
                    inv.template.clone(),
                    inv.input.clone(),
                    inv.ledger.clone(),
                );
                async move {
                    let (support, template, input, ledger) = template;
                    let mut done = 0usize;
                    while Instant::now() < deadline {
                        let mut params = template.clone();
                        params.tx_id = format!("tp{c}-{done}");
                        params.simulator = Some(ledger.new_tx_simulator());
                        support
                            .execute(&params, "rustkv", input.clone())
                            .await
                            .unwrap();
                        done += 1;
                    }
                    done
                }
            })
            .collect();
        async move {
            let started = Instant::now();
            let handles: Vec<_> = ops.into_iter().map(tokio::spawn).collect();
            let mut total = 0;
            for h in handles {
                total += h.await.unwrap();
            }
            total as f64 / started.elapsed().as_secs_f64()
        }
    };
    let plain_tp = invoke_tp(&plain).await;
    let tls_tp = invoke_tp(&tls).await;
    drop((raw_remote, raw_local));
    plain.peer.shutdown().await;
    tls.peer.shutdown().await;
    let _ = child.0.kill();
    let _ = child.0.wait();
    let launch = bench_launch(&chaincode).await;

    println!("| benchmark | p50 | p99 | sequential ops/s | ops/s, {CONCURRENCY} concurrent |");
    println!("|---|---|---|---|---|");
    let row = |name: &str, s: &Stats, tp: f64| {
        println!(
            "| {name} | {} | {} | {:.0} | {:.0} |",
            us(s.p50),
            us(s.p99),
            s.per_second,
            tp
        );
    };
    row(
        "raw tonic bidi, 3 round trips, echo in another process",
        &remote,
        remote_tp,
    );
    row(
        "raw tonic bidi, 3 round trips, echo in the same process",
        &local_s,
        local_tp,
    );
    row("invoke over gRPC, plain", &plain_s, plain_tp);
    row("invoke over gRPC, mutual TLS", &tls_s, tls_tp);
    println!();
    let ratio = |a: &Stats, b: &Stats| a.p50.as_secs_f64() / b.p50.as_secs_f64();
    println!(
        "p50 ratio, invoke / raw with the echo in another process: plain {:.2}x, TLS {:.2}x",
        ratio(&plain_s, &remote),
        ratio(&tls_s, &remote)
    );
    println!(
        "p50 ratio, invoke / raw with the echo in the same process: plain {:.2}x, TLS {:.2}x",
        ratio(&plain_s, &local_s),
        ratio(&tls_s, &local_s)
    );
    println!(
        "launch until READY (PROCESS, mutual TLS): p50 {}, p99 {} ({LAUNCHES} launches)",
        us(launch.p50),
        us(launch.p99)
    );
}

fn main() {
    if std::env::var_os("GRPC_BENCH_ECHO").is_some() {
        return echo_server_process();
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run only when benching.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let chaincode = tests::env::kv_chaincode();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async { tokio::spawn(run(chaincode)).await.unwrap() });
}
