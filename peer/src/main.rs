//! `peer`: start a node, or operate chaincodes on one.

// The library uses the dependencies; the binary only calls it.
#![allow(unused_crate_dependencies)]

use std::process::ExitCode;

use clap::Parser;
use peer::cli::{Cli, Command, IdentityCommand, LifecycleCommand, NodeCommand};

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
                let loaded = peer::config::load(config.as_deref(), |k| std::env::var(k).ok())?;
                loaded.log();
                let config =
                    peer::config::PeerConfig::from_settings(loaded.settings, peer_chaincodedev)?;
                peer::node::start(config).await.map(|()| ExitCode::SUCCESS)
            }
            Command::Chaincode(command) => {
                peer::logging::init("warn");
                peer::client::run(command).await
            }
            Command::Lifecycle(LifecycleCommand::Chaincode(command)) => {
                peer::logging::init("warn");
                peer::lifecycle_cli::run(command).await
            }
            Command::Identity(IdentityCommand::Issue {
                name,
                output,
                admin,
                config,
            }) => {
                let settings =
                    peer::config::settings(config.as_deref(), |k| std::env::var(k).ok())?;
                let config = peer::config::PeerConfig::from_settings(settings, false)?;
                let role = if admin {
                    peer::msp::Role::Admin
                } else {
                    peer::msp::Role::Member
                };
                peer::msp::dev::issue(&config.file_system_path, &name, &output, role)?;
                eprintln!(
                    "Issued {} identity {name} of {} in {}",
                    if admin {
                        "an administrator"
                    } else {
                        "a member"
                    },
                    config.local_msp_id,
                    output.display()
                );
                Ok(ExitCode::SUCCESS)
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
