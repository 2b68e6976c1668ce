//! A user chaincode in Rust: the example key/value chaincode, run as its own process.
//!
//! It reads Fabric's settings (`--peer.address` or `CORE_PEER_ADDRESS`,
//! `CORE_CHAINCODE_ID_NAME`, the TLS variables), dials the peer, registers and serves
//! transactions until the peer closes the stream.
//!
//! ```text
//! CORE_CHAINCODE_ID_NAME=kv:1 kv-chaincode --peer.address 127.0.0.1:7052
//! ```

use std::process::ExitCode;

use scc_examples::KvChaincode;

// One thread: each transaction's messages stay on it, without cross-thread wake-ups.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let level = std::env::var("CORE_CHAINCODE_LOGGING_LEVEL").unwrap_or_else(|_| "info".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&level).unwrap_or_else(|_| "info".into()),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
    match shim::start(KvChaincode).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kv-chaincode: {e}");
            ExitCode::FAILURE
        }
    }
}
