//! The command line, in the shape of Fabric's `peer` CLI: Fabric 2.x's `peer lifecycle
//! chaincode …`, Fabric 1.4's `peer chaincode …`, and `peer identity issue` for the
//! development MSP.

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
    /// Operate chaincodes on a running peer (Fabric 1.4's commands).
    #[command(subcommand)]
    Chaincode(ChaincodeCommand),
    /// Fabric 2.x's chaincode lifecycle.
    #[command(subcommand)]
    Lifecycle(LifecycleCommand),
    /// Identities of the development MSP the peer makes in its data folder.
    #[command(subcommand)]
    Identity(IdentityCommand),
}

/// `peer lifecycle …`
#[derive(Debug, Subcommand)]
pub enum LifecycleCommand {
    /// Package, install, approve and commit chaincodes.
    #[command(subcommand)]
    Chaincode(LifecycleChaincode),
}

/// `--output`: `json` for Fabric's JSON; anything else is text, as in Fabric.
#[derive(Debug, Clone, Args)]
pub struct OutputFormat {
    /// `json` prints Fabric's JSON.
    #[arg(short = 'O', long = "output", default_value = "")]
    pub output: String,
}

impl OutputFormat {
    /// Whether JSON was asked for.
    pub fn json(&self) -> bool {
        self.output.eq_ignore_ascii_case("json")
    }
}

/// What a chaincode definition holds (approve, checkcommitreadiness, commit).
#[derive(Debug, Clone, Args)]
pub struct DefinitionArgs {
    /// The channel.
    #[arg(short = 'C', long = "channelID", default_value = "")]
    pub channel: String,
    /// The chaincode's name.
    #[arg(short = 'n', long = "name", default_value = "")]
    pub name: String,
    /// The chaincode's version.
    #[arg(short = 'v', long = "version", default_value = "")]
    pub version: String,
    /// The definition's sequence: 1 for the first, one more for each upgrade.
    #[arg(long = "sequence", default_value_t = 0)]
    pub sequence: i64,
    /// The first transaction must be `peer chaincode invoke --isInit`, which runs Init.
    #[arg(long = "init-required")]
    pub init_required: bool,
    /// The endorsement policy, in Fabric's signature policy language
    /// (`OR('Org1MSP.member')`).
    #[arg(long = "signature-policy", default_value = "")]
    pub signature_policy: String,
    /// The endorsement policy as a reference to a channel configuration policy.
    #[arg(long = "channel-config-policy", default_value = "")]
    pub channel_config_policy: String,
    /// Private data collections: a JSON file in Fabric's format.
    #[arg(long = "collections-config")]
    pub collections_config: Option<PathBuf>,
    /// The endorsement plugin (default escc).
    #[arg(short = 'E', long = "endorsement-plugin", default_value = "")]
    pub endorsement_plugin: String,
    /// The validation plugin (default vscc).
    #[arg(short = 'V', long = "validation-plugin", default_value = "")]
    pub validation_plugin: String,
}

/// `peer lifecycle chaincode …`
#[derive(Debug, Subcommand)]
pub enum LifecycleChaincode {
    /// Write a chaincode package (Fabric's format) from an executable or a folder.
    Package {
        /// The package file to write.
        output: PathBuf,
        /// The executable (binary) or folder (node, …).
        #[arg(short = 'p', long = "path")]
        path: PathBuf,
        /// The chaincode's language: binary (an executable), node, or a type an external
        /// builder takes (ccaas, golang, …).
        #[arg(short = 'l', long = "lang", default_value = "golang")]
        lang: String,
        /// The package's label.
        #[arg(long = "label", default_value = "")]
        label: String,
    },
    /// Print a package's ID (`label:hash`) without a peer.
    Calculatepackageid {
        /// The package file.
        package: PathBuf,
        /// Output format.
        #[command(flatten)]
        format: OutputFormat,
    },
    /// Install a package on the peer: its bytes are uploaded and built now.
    Install {
        /// The package file.
        package: PathBuf,
        /// Peer and identity.
        #[command(flatten)]
        client: ClientOptions,
    },
    /// List the packages installed on the peer.
    Queryinstalled {
        /// Output format.
        #[command(flatten)]
        format: OutputFormat,
        /// Peer and identity.
        #[command(flatten)]
        client: ClientOptions,
    },
    /// Download an installed package.
    Getinstalledpackage {
        /// The package ID.
        #[arg(long = "package-id", default_value = "")]
        package_id: String,
        /// Where to write `<package ID>.tar.gz` (default: the current folder).
        #[arg(long = "output-directory")]
        output_directory: Option<PathBuf>,
        /// Peer and identity.
        #[command(flatten)]
        client: ClientOptions,
    },
    /// Approve a chaincode definition for the peer's organisation.
    Approveformyorg {
        /// The definition.
        #[command(flatten)]
        definition: DefinitionArgs,
        /// The installed package this organisation runs for it.
        #[arg(long = "package-id", default_value = "")]
        package_id: String,
        /// Peer and identity.
        #[command(flatten)]
        client: ClientOptions,
    },
    /// Show the definition approved for the peer's organisation.
    Queryapproved {
        /// The channel.
        #[arg(short = 'C', long = "channelID", default_value = "")]
        channel: String,
        /// The chaincode's name.
        #[arg(short = 'n', long = "name", default_value = "")]
        name: String,
        /// The sequence (0: the latest).
        #[arg(long = "sequence", default_value_t = 0)]
        sequence: i64,
        /// Output format.
        #[command(flatten)]
        format: OutputFormat,
        /// Peer and identity.
        #[command(flatten)]
        client: ClientOptions,
    },
    /// Show which organisations approved a definition.
    Checkcommitreadiness {
        /// The definition.
        #[command(flatten)]
        definition: DefinitionArgs,
        /// Output format.
        #[command(flatten)]
        format: OutputFormat,
        /// Peer and identity.
        #[command(flatten)]
        client: ClientOptions,
    },
    /// Commit a definition on a channel; its chaincode is launched.
    Commit {
        /// The definition.
        #[command(flatten)]
        definition: DefinitionArgs,
        /// Peer and identity.
        #[command(flatten)]
        client: ClientOptions,
    },
    /// Show committed definitions.
    Querycommitted {
        /// The channel.
        #[arg(short = 'C', long = "channelID", default_value = "")]
        channel: String,
        /// One chaincode (otherwise every one on the channel).
        #[arg(short = 'n', long = "name", default_value = "")]
        name: String,
        /// Output format.
        #[command(flatten)]
        format: OutputFormat,
        /// Peer and identity.
        #[command(flatten)]
        client: ClientOptions,
    },
}

/// `peer identity …`
#[derive(Debug, Subcommand)]
pub enum IdentityCommand {
    /// Issue an identity of the peer's development MSP (its CA is in the peer's data
    /// folder), written as an MSP folder the CLI signs with through `--mspconfigpath`.
    Issue {
        /// The identity's common name.
        #[arg(long)]
        name: String,
        /// The MSP folder to write.
        #[arg(long)]
        output: PathBuf,
        /// An administrator (otherwise a member: may invoke and query, not install).
        #[arg(long)]
        admin: bool,
        /// Configuration file, for `peer.fileSystemPath` and `peer.localMspId` (default:
        /// `$FABRIC_CFG_PATH/core.yaml` when `FABRIC_CFG_PATH` is set).
        #[arg(long, env = "FABRIC_CFG_FILE")]
        config: Option<PathBuf>,
    },
}

/// `peer node …`
#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// Start the peer; it runs until SIGINT or SIGTERM.
    Start {
        /// Configuration file (core.yaml names; default: `$FABRIC_CFG_PATH/core.yaml` when
        /// `FABRIC_CFG_PATH` is set); every key can also be set by `CORE_…`.
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
    /// `peer.fileSystemPath`) and MSP id (default: `$FABRIC_CFG_PATH/core.yaml` when
    /// `FABRIC_CFG_PATH` is set).
    #[arg(long, env = "FABRIC_CFG_FILE", global = true)]
    pub config: Option<PathBuf>,
    /// The client's MSP folder (Fabric's layout: signcerts/, keystore/). Default:
    /// `peer.mspConfigPath`, `<peer.fileSystemPath>/msp`: the administrator of the development
    /// MSP the peer makes on first start.
    #[arg(long = "mspconfigpath", env = "CORE_PEER_MSPCONFIGPATH", global = true)]
    pub msp_dir: Option<PathBuf>,
    /// The client's MSP id.
    #[arg(long = "localMspId", env = "CORE_PEER_LOCALMSPID", global = true)]
    pub msp_id: Option<String>,
    /// Use TLS to reach the peer.
    #[arg(long = "tls", env = "CORE_PEER_TLS_ENABLED", global = true)]
    pub tls: bool,
    /// The CA certificate (PEM) the peer's TLS certificate must chain to.
    #[arg(
        long = "cafile",
        visible_alias = "tlsRootCertFiles",
        env = "CORE_PEER_TLS_ROOTCERT_FILE",
        global = true
    )]
    pub cafile: Option<PathBuf>,
    /// A TLS client certificate (PEM), for a peer that requires client authentication.
    #[arg(
        long = "certfile",
        env = "CORE_PEER_TLS_CLIENTCERT_FILE",
        global = true
    )]
    pub certfile: Option<PathBuf>,
    /// The TLS client certificate's key (PEM).
    #[arg(long = "keyfile", env = "CORE_PEER_TLS_CLIENTKEY_FILE", global = true)]
    pub keyfile: Option<PathBuf>,
    /// The peer's name in its TLS certificate, when the address does not carry it.
    #[arg(long = "serverHostOverride", global = true)]
    pub server_name: Option<String>,
}

impl ClientOptions {
    /// Options for the peer at `address`, without TLS, the identity from the defaults.
    pub fn to(address: impl Into<String>) -> Self {
        Self {
            peer_address: address.into(),
            config: None,
            msp_dir: None,
            msp_id: None,
            tls: false,
            cafile: None,
            certfile: None,
            keyfile: None,
            server_name: None,
        }
    }
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
    /// Run the chaincode's Init (Fabric 2.x, for a definition with `--init-required`).
    #[arg(short = 'I', long = "isInit")]
    pub is_init: bool,
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
        /// The executable or folder, on this machine: it is packed and uploaded.
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
