//! The command line, in the shape of Fabric 1.4's `peer` CLI.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// A Hyperledger Fabric peer's chaincode runtime, in Rust.
#[derive(Debug, Parser)]
#[command(name = "peer", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The command groups.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Operate the peer node.
    #[command(subcommand)]
    Node(NodeCommand),
    /// Operate chaincodes on a running peer.
    #[command(subcommand)]
    Chaincode(ChaincodeCommand),
}

/// `peer node …`
#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// Start the peer; it runs until SIGINT or SIGTERM.
    Start {
        /// Configuration file (core.yaml names); every key can also be set by `CORE_…`.
        #[arg(long, env = "FABRIC_CFG_FILE")]
        config: Option<PathBuf>,
        /// Dev mode: chaincodes are started by hand and register themselves.
        #[arg(long = "peer-chaincodedev")]
        peer_chaincodedev: bool,
    },
}

/// Where the client finds the peer and its identity.
#[derive(Debug, Clone, Args)]
pub struct ClientOptions {
    /// The peer's admin address.
    #[arg(
        long = "peerAddresses",
        env = "CORE_PEER_ADDRESS",
        default_value = "127.0.0.1:7051",
        global = true
    )]
    pub peer_address: String,
    /// Configuration file, for the identity's location (`peer.mspConfigPath`,
    /// `peer.fileSystemPath`) and MSP id.
    #[arg(long, env = "FABRIC_CFG_FILE", global = true)]
    pub config: Option<PathBuf>,
    /// The client's MSP folder (Fabric's layout: signcerts/, keystore/); a development
    /// identity is generated there if it holds none. Default: `<peer.fileSystemPath>/msp`.
    #[arg(long = "mspconfigpath", env = "CORE_PEER_MSPCONFIGPATH", global = true)]
    pub msp_dir: Option<PathBuf>,
    /// The client's MSP id.
    #[arg(long = "localMspId", env = "CORE_PEER_LOCALMSPID", global = true)]
    pub msp_id: Option<String>,
}

/// What a transaction invokes.
#[derive(Debug, Clone, Args)]
pub struct Invocation {
    /// The channel.
    #[arg(short = 'C', long = "channelID", default_value = "mychannel")]
    pub channel: String,
    /// The chaincode.
    #[arg(short = 'n', long = "name")]
    pub name: String,
    /// The arguments: `{"Args":["function","arg",…]}` or `{"function":"f","Args":[…]}`.
    #[arg(short = 'c', long = "ctor")]
    pub ctor: String,
    /// Private inputs, not recorded on the ledger: `{"key":"<base64>"}`.
    #[arg(long)]
    pub transient: Option<String>,
}

/// `peer chaincode …`
#[derive(Debug, Subcommand)]
pub enum ChaincodeCommand {
    /// Install a chaincode package on the peer.
    Install {
        /// Chaincode name.
        #[arg(short = 'n', long = "name")]
        name: String,
        /// Chaincode version.
        #[arg(short = 'v', long = "version")]
        version: String,
        /// Chaincode type: binary (an executable), node (a Node package folder with its
        /// node_modules), …
        #[arg(short = 'l', long = "lang", default_value = "binary")]
        lang: String,
        /// The executable or folder.
        #[arg(short = 'p', long = "path")]
        path: PathBuf,
        /// Run it with this backend (DOCKER, PROCESS, …) instead of the peer's default.
        #[arg(long)]
        vm: Option<String>,
        /// Peer and identity.
        #[command(flatten)]
        client: ClientOptions,
    },
    /// Instantiate an installed version on a channel, running its Init.
    Instantiate {
        /// The version to instantiate.
        #[arg(short = 'v', long = "version")]
        version: String,
        /// Channel, chaincode and Init arguments.
        #[command(flatten)]
        invocation: Invocation,
        /// Peer and identity.
        #[command(flatten)]
        client: ClientOptions,
    },
    /// Run a transaction and commit its writes.
    Invoke {
        /// Channel, chaincode and arguments.
        #[command(flatten)]
        invocation: Invocation,
        /// Peer and identity.
        #[command(flatten)]
        client: ClientOptions,
    },
    /// Run a transaction without committing anything; print its payload.
    Query {
        /// Channel, chaincode and arguments.
        #[command(flatten)]
        invocation: Invocation,
        /// Peer and identity.
        #[command(flatten)]
        client: ClientOptions,
    },
    /// List chaincodes.
    List {
        /// Installed chaincodes.
        #[arg(long, conflicts_with = "instantiated")]
        installed: bool,
        /// Chaincodes instantiated on the channel.
        #[arg(long)]
        instantiated: bool,
        /// The channel, with --instantiated.
        #[arg(short = 'C', long = "channelID", default_value = "mychannel")]
        channel: String,
        /// Peer and identity.
        #[command(flatten)]
        client: ClientOptions,
    },
    /// Stop a chaincode's running instances.
    Stop {
        /// Chaincode name.
        #[arg(short = 'n', long = "name")]
        name: String,
        /// Peer and identity.
        #[command(flatten)]
        client: ClientOptions,
    },
}
