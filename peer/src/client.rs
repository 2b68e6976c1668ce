//! The CLI's client side: builds and signs proposals, calls the admin API, shows progress,
//! prints results and turns failures into a non-zero exit.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use futures::StreamExt;
use peer_support::proposal::{ProposalSpec, build};
use proto::admin::admin_client::AdminClient;
use proto::admin::execute_request::Kind;
use proto::admin::{
    ExecuteRequest, ExecuteResult, InstallRequest, ListRequest, StopRequest, execute_event,
    install_event,
};
use proto::protos::ChaincodeInput;
use tonic::transport::Channel;

use crate::cli::{ChaincodeCommand, ClientOptions, Invocation};
use crate::identity::Identity;

/// The chaincode arguments of `-c`: `{"Args":[…]}` or `{"function":"f","Args":[…]}`, field
/// names in any case as Fabric's CLI accepts them.
pub fn parse_ctor(text: &str) -> Result<Vec<String>> {
    let usage = || {
        format!(
            "invalid -c/--ctor {text:?}: expected JSON like {{\"Args\":[\"function\",\"arg\"]}}"
        )
    };
    let value: serde_json::Value = serde_json::from_str(text).with_context(usage)?;
    let object = value.as_object().with_context(usage)?;
    let field = |name: &str| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    };
    let mut args = Vec::new();
    if let Some(function) = field("function") {
        args.push(function.as_str().with_context(usage)?.to_owned());
    }
    match field("args") {
        Some(serde_json::Value::Array(items)) => {
            for item in items {
                args.push(
                    item.as_str()
                        .map(str::to_owned)
                        .with_context(|| format!("{}: every argument must be a string", usage()))?,
                );
            }
        }
        Some(_) => bail!("{}: Args must be a list of strings", usage()),
        None if args.is_empty() => bail!("{}", usage()),
        None => {}
    }
    Ok(args)
}

/// The transient map of `--transient`: `{"key":"<base64>"}`.
pub fn parse_transient(text: &str) -> Result<BTreeMap<String, Bytes>> {
    use base64::Engine;
    let usage =
        || format!("invalid --transient {text:?}: expected JSON like {{\"key\":\"<base64>\"}}");
    let value: serde_json::Value = serde_json::from_str(text).with_context(usage)?;
    let object = value.as_object().with_context(usage)?;
    object
        .iter()
        .map(|(k, v)| {
            let encoded = v.as_str().with_context(usage)?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .with_context(|| format!("{}: the value of {k:?} is not base64", usage()))?;
            Ok((k.clone(), Bytes::from(bytes)))
        })
        .collect()
}

/// Connects to the admin API at `address`.
pub async fn connect(address: &str) -> Result<AdminClient<Channel>> {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .with_context(|| format!("invalid peer address {address:?}"))?
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(5));
    let channel = endpoint.connect().await.map_err(|e| {
        anyhow!(
            "cannot reach the peer at {address}: {:#}",
            anyhow::Error::from(e)
        )
    })?;
    Ok(AdminClient::new(channel))
}

fn status_error(status: tonic::Status) -> anyhow::Error {
    anyhow!("{}", status.message())
}

/// Shows what is under way: a spinner on a terminal, plain lines otherwise.
struct ProgressView {
    spinner: Option<indicatif::ProgressBar>,
}

impl ProgressView {
    fn new() -> Self {
        let spinner = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        Self { spinner }
    }

    fn show(&self, message: String) {
        match &self.spinner {
            Some(bar) => bar.set_message(message),
            None => eprintln!("… {message}"),
        }
    }
}

impl Drop for ProgressView {
    fn drop(&mut self) {
        if let Some(bar) = &self.spinner {
            bar.finish_and_clear();
        }
    }
}

/// The identity the client signs with: `CORE_PEER_MSPCONFIGPATH` / `peer.mspConfigPath`,
/// or the development identity in the peer's data folder.
fn identity(client: &ClientOptions) -> Result<Identity> {
    let settings = crate::config::settings(client.config.as_deref(), |k| std::env::var(k).ok())?;
    let config = crate::config::PeerConfig::from_settings(settings, false)?;
    let dir = client.msp_dir.clone().unwrap_or(config.msp_dir);
    let mspid = client.msp_id.clone().unwrap_or(config.local_msp_id);
    Identity::load_or_create(&dir, &mspid)
        .with_context(|| format!("cannot load the client identity from {}", dir.display()))
}

/// Builds, signs and sends one transaction; returns its result.
pub async fn execute(
    admin: &mut AdminClient<Channel>,
    identity: &Identity,
    kind: Kind,
    invocation: &Invocation,
    version: &str,
    nonce: Bytes,
) -> Result<ExecuteResult> {
    let args = parse_ctor(&invocation.ctor)?;
    let transient = match &invocation.transient {
        Some(t) => parse_transient(t)?,
        None => BTreeMap::new(),
    };
    let built = build(&ProposalSpec {
        channel_id: invocation.channel.clone(),
        chaincode: invocation.name.clone(),
        chaincode_version: version.to_owned(),
        input: ChaincodeInput {
            args: args.into_iter().map(Bytes::from).collect(),
            ..ChaincodeInput::default()
        },
        mspid: identity.mspid.clone(),
        certificate_pem: Bytes::from(identity.cert_pem.clone()),
        transient,
        nonce,
        timestamp: None,
    });
    let signed = built.signed(identity.sign(&built.proposal_bytes)?);
    let request = ExecuteRequest {
        kind: kind as i32,
        signed_proposal: Some(signed),
    };
    let mut events = admin
        .execute(request)
        .await
        .map_err(status_error)?
        .into_inner();
    let progress = ProgressView::new();
    while let Some(event) = events.next().await {
        match event.map_err(status_error)?.event {
            Some(execute_event::Event::Progress(p)) => progress.show(p.message),
            Some(execute_event::Event::Result(result)) => return Ok(result),
            None => {}
        }
    }
    bail!("the peer ended the transaction without a result")
}

/// A random nonce for a proposal.
pub fn nonce() -> Bytes {
    let mut bytes = [0u8; 24];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .unwrap_or_default();
    Bytes::copy_from_slice(&bytes)
}

fn print_payload(payload: &[u8]) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(payload);
    let _ = out.write_all(b"\n");
}

/// Runs a `peer chaincode` command.
pub async fn run(command: ChaincodeCommand) -> Result<ExitCode> {
    match command {
        ChaincodeCommand::Install {
            name,
            version,
            lang,
            path,
            vm,
            client,
        } => {
            let path = std::fs::canonicalize(&path)
                .with_context(|| format!("cannot find the package {}", path.display()))?;
            let mut admin = connect(&client.peer_address).await?;
            let request = InstallRequest {
                name,
                version,
                platform: lang,
                path: path.display().to_string(),
                vm: vm.unwrap_or_default(),
            };
            let mut events = admin
                .install(request)
                .await
                .map_err(status_error)?
                .into_inner();
            let progress = ProgressView::new();
            while let Some(event) = events.next().await {
                match event.map_err(status_error)?.event {
                    Some(install_event::Event::Progress(p)) => progress.show(p.message),
                    Some(install_event::Event::Installed(cc)) => {
                        drop(progress);
                        eprintln!(
                            "Installed {}:{} (type {}, runs on {})",
                            cc.name, cc.version, cc.platform, cc.vm
                        );
                        return Ok(ExitCode::SUCCESS);
                    }
                    None => {}
                }
            }
            bail!("the peer ended the install without a result")
        }
        ChaincodeCommand::Instantiate {
            version,
            invocation,
            client,
        } => {
            let identity = identity(&client)?;
            let mut admin = connect(&client.peer_address).await?;
            let result = execute(
                &mut admin,
                &identity,
                Kind::Instantiate,
                &invocation,
                &version,
                nonce(),
            )
            .await?;
            let response = result.response.unwrap_or_default();
            if response.is_error() {
                bail!(
                    "Init of {}:{version} returned status {}: {}",
                    invocation.name,
                    response.status,
                    response.message
                );
            }
            eprintln!(
                "Instantiated {}:{version} on channel {} (tx {})",
                invocation.name, invocation.channel, result.tx_id
            );
            Ok(ExitCode::SUCCESS)
        }
        ChaincodeCommand::Invoke { invocation, client } => {
            transact(Kind::Invoke, invocation, client).await
        }
        ChaincodeCommand::Query { invocation, client } => {
            transact(Kind::Query, invocation, client).await
        }
        ChaincodeCommand::List {
            installed,
            instantiated,
            channel,
            client,
        } => {
            if !installed && !instantiated {
                bail!("say which chaincodes: --installed, or --instantiated -C <channel>");
            }
            let mut admin = connect(&client.peer_address).await?;
            let list = admin
                .list(ListRequest {
                    installed,
                    channel: channel.clone(),
                })
                .await
                .map_err(status_error)?
                .into_inner();
            if installed {
                eprintln!("Installed chaincodes on peer:");
            } else {
                eprintln!("Instantiated chaincodes on channel {channel}:");
            }
            for cc in list.chaincodes {
                println!(
                    "Name: {}, Version: {}, Type: {}, VM: {}, Channels: {}, Running: {}, Path: {}",
                    cc.name,
                    cc.version,
                    cc.platform,
                    cc.vm,
                    if cc.channels.is_empty() {
                        "-".to_owned()
                    } else {
                        cc.channels.join(",")
                    },
                    if cc.running { "yes" } else { "no" },
                    cc.path
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        ChaincodeCommand::Stop { name, client } => {
            let mut admin = connect(&client.peer_address).await?;
            let stopped = admin
                .stop(StopRequest { name: name.clone() })
                .await
                .map_err(status_error)?
                .into_inner()
                .stopped;
            if stopped.is_empty() {
                eprintln!("{name} was not running");
            }
            for id in stopped {
                eprintln!("Stopped {id}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn transact(kind: Kind, invocation: Invocation, client: ClientOptions) -> Result<ExitCode> {
    // Check the arguments before reaching for the peer.
    parse_ctor(&invocation.ctor)?;
    if let Some(t) = &invocation.transient {
        parse_transient(t)?;
    }
    let identity = identity(&client)?;
    let mut admin = connect(&client.peer_address).await?;
    let result = execute(&mut admin, &identity, kind, &invocation, "", nonce()).await?;
    let response = result.response.unwrap_or_default();
    if response.is_error() {
        bail!(
            "chaincode {} returned status {}: {}",
            invocation.name,
            response.status,
            response.message
        );
    }
    print_payload(&response.payload);
    if kind == Kind::Invoke {
        eprintln!(
            "Chaincode invoke successful. result: status:{} txid:{} height:{}",
            response.status, result.tx_id, result.height
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctor_in_fabrics_forms() {
        assert_eq!(
            parse_ctor(r#"{"Args":["put","k","v"]}"#).unwrap(),
            ["put", "k", "v"]
        );
        assert_eq!(
            parse_ctor(r#"{"function":"put","Args":["k","v"]}"#).unwrap(),
            ["put", "k", "v"]
        );
        assert_eq!(parse_ctor(r#"{"args":["get","k"]}"#).unwrap(), ["get", "k"]);
        for bad in [
            r#"{"Args":["put""#,
            r#"["put"]"#,
            r#"{"Args":[1]}"#,
            "{}",
            r#"{"Args":"put"}"#,
        ] {
            let e = parse_ctor(bad).unwrap_err();
            assert!(
                format!("{e:#}").contains("invalid -c/--ctor"),
                "{bad}: {e:#}"
            );
        }
    }

    #[test]
    fn transient_values_are_base64() {
        let t = parse_transient(r#"{"secret":"czM="}"#).unwrap();
        assert_eq!(t["secret"], Bytes::from_static(b"s3"));
        assert!(parse_transient(r#"{"secret":"%%%"}"#).is_err());
        assert!(parse_transient(r#"{"secret":1}"#).is_err());
    }
}
