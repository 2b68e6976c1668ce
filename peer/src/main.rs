//! `peer`: start a node, or operate chaincodes on one.

// The library uses the dependencies; the binary only calls it.
#![allow(unused_crate_dependencies)]

use std::process::ExitCode;

use clap::Parser;
use peer::cli::{Cli, Command, NodeCommand};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Node(NodeCommand::Start {
                config,
                peer_chaincodedev,
            }) => {
                peer::logging::init("info");
                let settings =
                    peer::config::settings(config.as_deref(), |k| std::env::var(k).ok())?;
                let config = peer::config::PeerConfig::from_settings(settings, peer_chaincodedev)?;
                peer::node::start(config).await.map(|()| ExitCode::SUCCESS)
            }
            Command::Chaincode(command) => {
                peer::logging::init("warn");
                peer::client::run(command).await
            }
        }
    });
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
