//! A custom peer, as a program embedding the runtime would write one: `peer-support` with the
//! backends it chooses (`SYSTEM` and `PROCESS`) and one system chaincode of its own linked
//! in, serving `Register` on a port, with in-memory ledgers.
//!
//! ```text
//! embed-peer [--listen 127.0.0.1:7052] [--chaincode NAME:VERSION=EXECUTABLE]...
//! ```
//!
//! It reads commands on stdin, one per line, and answers each with one line on stdout:
//! `invoke NAME ARG...` runs a transaction (launching the chaincode if needed) and commits its
//! writes: `200 <payload>`, or `error: <why>`. End of input stops it and its chaincodes.

use std::sync::Arc;

use peer_support::ledger::Ledgers;
use peer_support::{ChaincodeDefinition, ChaincodeSupport, DefinitionMap, SupportConfig, TxParams};
use shim::{Chaincode, ChaincodeStub, Response};
use tokio::io::{AsyncBufReadExt, BufReader};
use vm_api::{Ccid, ChaincodePackage};

// The backends this peer runs chaincodes with: linked for their registrations.
use vm_inproc as _;
use vm_process as _;

/// This peer's own system chaincode: linking it (here, defining it) is all it takes.
struct Hello;

#[shim::async_trait]
impl Chaincode for Hello {
    async fn invoke(&self, stub: &ChaincodeStub) -> Response {
        shim::success(format!("hello from an embedded peer, {}", stub.tx_id()))
    }
}

fn hello() -> Arc<dyn Chaincode> {
    Arc::new(Hello)
}

shim::inventory::submit! {
    shim::SystemChaincode { name: "hello", version: "1.0", description: "says hello", create: hello }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut listen = "127.0.0.1:7052".to_owned();
    let definitions = Arc::new(DefinitionMap::new());
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .ok_or_else(|| anyhow::anyhow!("{flag} needs a value"))?;
        match flag.as_str() {
            "--listen" => listen = value,
            "--chaincode" => {
                let (id, exe) = value
                    .split_once('=')
                    .ok_or_else(|| anyhow::anyhow!("--chaincode NAME:VERSION=EXECUTABLE"))?;
                let ccid = Ccid::parse(id);
                let package = ChaincodePackage::legacy(&ccid, "binary", exe);
                definitions.define(ChaincodeDefinition::user(ccid, "PROCESS", package));
            }
            other => anyhow::bail!("unknown flag {other}"),
        }
    }
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    let address = listener.local_addr()?;
    let config = SupportConfig {
        peer_address: address.to_string(), // what launched chaincodes dial
        ..SupportConfig::default()
    };
    let ledgers = Arc::new(Ledgers::in_memory());
    let support = ChaincodeSupport::builder(config)
        .definitions(definitions)
        .ledgers(ledgers.clone())
        .build()
        .map_err(|e| anyhow::anyhow!(e.report()))?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(peer_support::server::serve(
        support.clone(),
        listener,
        Default::default(),
        async {
            let _ = stopped.await;
        },
    ));
    println!("listening on {address}");

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut n = 0;
    while let Some(line) = lines.next_line().await? {
        let words: Vec<&str> = line.split_whitespace().collect();
        let answer = match words.as_slice() {
            ["invoke", name, args @ ..] => {
                n += 1;
                let ledger = ledgers.get_or_create("mychannel")?;
                let simulator = ledger.new_tx_simulator();
                let params = TxParams {
                    tx_id: format!("tx{n}"),
                    channel_id: "mychannel".into(),
                    simulator: Some(simulator.clone()),
                    ..TxParams::default()
                };
                let input = proto::protos::ChaincodeInput {
                    args: args.iter().map(|a| a.as_bytes().to_vec().into()).collect(),
                    ..Default::default()
                };
                match support.execute(&params, name, input).await {
                    Ok(r) if !r.response.is_error() => {
                        ledger.commit(&params.tx_id, None, &simulator.rwset())?;
                        format!("200 {}", String::from_utf8_lossy(&r.response.payload))
                    }
                    Ok(r) => format!("error: {} {}", r.response.status, r.response.message),
                    Err(e) => format!("error: {}", e.report()),
                }
            }
            _ => format!("error: unknown command {line:?}; try: invoke NAME ARG..."),
        };
        println!("{answer}");
    }
    support.shutdown().await;
    let _ = stop.send(());
    server.await??;
    Ok(())
}
