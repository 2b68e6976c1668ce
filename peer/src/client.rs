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
use prost::Message;
use proto::admin::admin_client::AdminClient;
use proto::admin::execute_request::Kind;
use proto::admin::{
    ChaincodeInfo, ExecuteRequest, ExecuteResult, LegacyInstallArgs, ListRequest, ListResponse,
    StopRequest, StopResponse, execute_event, lifecycle_event,
};
use proto::protos::ChaincodeInput;
use tonic::transport::Channel;

use crate::cli::{ChaincodeCommand, ClientOptions, Invocation};
use crate::identity::Identity;

/// The largest message the CLI sends or takes (Fabric's default, 100 MiB).
pub const MAX_MESSAGE: usize = 100 * 1024 * 1024;

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

/// Connects to the admin API of the peer `client` names, with TLS when asked for.
pub async fn connect(client: &ClientOptions) -> Result<AdminClient<Channel>> {
    let address = &client.peer_address;
    let scheme = if client.tls { "https" } else { "http" };
    let mut endpoint = tonic::transport::Endpoint::from_shared(format!("{scheme}://{address}"))
        .with_context(|| format!("invalid peer address {address:?}"))?
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(5));
    if client.tls {
        let mut tls = tonic::transport::ClientTlsConfig::new();
        let ca = client.cafile.as_ref().context(
            "TLS needs the CA certificate of the peer: --cafile or CORE_PEER_TLS_ROOTCERT_FILE",
        )?;
        let pem = std::fs::read(ca).with_context(|| format!("cannot read {}", ca.display()))?;
        tls = tls.ca_certificate(tonic::transport::Certificate::from_pem(pem));
        if let Some(name) = &client.server_name {
            tls = tls.domain_name(name.clone());
        } else if let Some((host, _)) = address.rsplit_once(':') {
            tls = tls.domain_name(host.trim_matches(['[', ']']).to_owned());
        }
        match (&client.certfile, &client.keyfile) {
            (Some(cert), Some(key)) => {
                let cert = std::fs::read(cert)
                    .with_context(|| format!("cannot read {}", cert.display()))?;
                let key =
                    std::fs::read(key).with_context(|| format!("cannot read {}", key.display()))?;
                tls = tls.identity(tonic::transport::Identity::from_pem(cert, key));
            }
            (None, None) => {}
            _ => bail!("a TLS client certificate needs both --certfile and --keyfile"),
        }
        endpoint = endpoint
            .tls_config(tls)
            .context("invalid TLS configuration")?;
    }
    let channel = endpoint.connect().await.map_err(|e| {
        anyhow!(
            "cannot reach the peer at {address}: {:#}",
            anyhow::Error::from(e)
        )
    })?;
    Ok(AdminClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE))
}

/// gRPC's name of `code`, as other gRPC tools print it.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code as C;
    match code {
        C::Ok => "OK",
        C::Cancelled => "CANCELLED",
        C::Unknown => "UNKNOWN",
        C::InvalidArgument => "INVALID_ARGUMENT",
        C::DeadlineExceeded => "DEADLINE_EXCEEDED",
        C::NotFound => "NOT_FOUND",
        C::AlreadyExists => "ALREADY_EXISTS",
        C::PermissionDenied => "PERMISSION_DENIED",
        C::ResourceExhausted => "RESOURCE_EXHAUSTED",
        C::FailedPrecondition => "FAILED_PRECONDITION",
        C::Aborted => "ABORTED",
        C::OutOfRange => "OUT_OF_RANGE",
        C::Unimplemented => "UNIMPLEMENTED",
        C::Internal => "INTERNAL",
        C::Unavailable => "UNAVAILABLE",
        C::DataLoss => "DATA_LOSS",
        C::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// A refusal by the peer: the code's name for authentication and authorization failures
/// (`UNAUTHENTICATED: …`, `PERMISSION_DENIED: …`), the message otherwise.
fn status_error(status: tonic::Status) -> anyhow::Error {
    match status.code() {
        tonic::Code::Unauthenticated | tonic::Code::PermissionDenied => {
            anyhow!("{}: {}", code_name(status.code()), status.message())
        }
        tonic::Code::Unavailable => {
            anyhow!("{} ({})", status.message(), code_name(status.code()))
        }
        tonic::Code::Unknown | tonic::Code::Internal | tonic::Code::Cancelled => anyhow!(
            "{} ({}); if the peer's admin API uses TLS, give --tls and --cafile, and \
             --certfile/--keyfile if it requires client certificates",
            status.message(),
            code_name(status.code())
        ),
        _ => anyhow!("{}", status.message()),
    }
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

/// The identity the client signs with: `--mspconfigpath` / `CORE_PEER_MSPCONFIGPATH` /
/// `peer.mspConfigPath`, by default the administrator of the development MSP the peer made in
/// its data folder.
pub fn identity(client: &ClientOptions) -> Result<Identity> {
    let settings = crate::config::settings(client.config.as_deref(), |k| std::env::var(k).ok())?;
    let config = crate::config::PeerConfig::from_settings(settings, false)?;
    let dir = client.msp_dir.clone().unwrap_or(config.msp_dir);
    let mspid = client.msp_id.clone().unwrap_or(config.local_msp_id);
    if !dir.join("signcerts").is_dir() {
        bail!(
            "no identity in {}: the peer makes its development MSP there when it first starts \
             (peer node start), or give --mspconfigpath",
            dir.display()
        );
    }
    Identity::load(&dir, &mspid)
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
            is_init: invocation.is_init,
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

/// Calls the administrative function `function` of the peer with `args` (encoded), on
/// `channel` (empty for calls that concern none); returns the encoded result.
pub async fn admin_call(
    admin: &mut AdminClient<Channel>,
    identity: &Identity,
    channel: &str,
    function: &str,
    args: Vec<u8>,
) -> Result<Bytes> {
    let built = build(&ProposalSpec {
        channel_id: channel.to_owned(),
        chaincode: crate::admin::LIFECYCLE.to_owned(),
        input: ChaincodeInput {
            args: vec![
                Bytes::copy_from_slice(function.as_bytes()),
                Bytes::from(args),
            ],
            ..ChaincodeInput::default()
        },
        mspid: identity.mspid.clone(),
        certificate_pem: Bytes::from(identity.cert_pem.clone()),
        nonce: nonce(),
        ..ProposalSpec::default()
    });
    let signed = built.signed(identity.sign(&built.proposal_bytes)?);
    let mut events = admin
        .lifecycle(signed)
        .await
        .map_err(status_error)?
        .into_inner();
    let progress = ProgressView::new();
    while let Some(event) = events.next().await {
        match event.map_err(status_error)?.event {
            Some(lifecycle_event::Event::Progress(p)) => progress.show(p.message),
            Some(lifecycle_event::Event::Result(result)) => return Ok(result),
            None => {}
        }
    }
    bail!("the peer ended the call without a result")
}

/// A package of the executable or folder at `path` (on this machine), of type `lang`: the
/// folder's files (links followed: a Node package's `node_modules` may be one), or the
/// executable alone.
pub fn package_path(path: &std::path::Path, lang: &str, label: &str) -> Result<Vec<u8>> {
    use chaincode_package::{Metadata, code_archive_following_links, write};
    let meta = std::fs::metadata(path)
        .with_context(|| format!("cannot read the chaincode at {}", path.display()))?;
    let code = if meta.is_dir() {
        code_archive_following_links(path, "")?
    } else if meta.is_file() {
        let dir = tempfile::tempdir().context("cannot make a temporary folder")?;
        let name = path.file_name().context("the chaincode has no file name")?;
        std::fs::copy(path, dir.path().join(name))
            .with_context(|| format!("cannot read {}", path.display()))?;
        chaincode_package::code_archive(dir.path(), "")?
    } else {
        bail!(
            "{} is neither a file nor a folder: a chaincode is an executable or a folder",
            path.display()
        );
    };
    let metadata = Metadata::new(path.display().to_string(), lang, label);
    Ok(write(&metadata, &code)?)
}

fn decode<M: Message + Default>(bytes: Bytes) -> Result<M> {
    M::decode(bytes).context("the peer's answer cannot be decoded")
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
            crate::names::chaincode(&name)?;
            crate::names::version(&version)?;
            let package = {
                let (path, lang, label) = (path.clone(), lang.clone(), format!("{name}_{version}"));
                tokio::task::spawn_blocking(move || package_path(&path, &lang, &label)).await??
            };
            let identity = identity(&client)?;
            let mut admin = connect(&client).await?;
            let args = LegacyInstallArgs {
                name,
                version,
                vm: vm.unwrap_or_default(),
                package: package.into(),
            };
            let result = admin_call(
                &mut admin,
                &identity,
                "",
                "InstallLegacy",
                args.encode_to_vec(),
            )
            .await?;
            let cc: ChaincodeInfo = decode(result)?;
            eprintln!(
                "Installed {}:{} (type {}, runs on {})",
                cc.name, cc.version, cc.platform, cc.vm
            );
            Ok(ExitCode::SUCCESS)
        }
        ChaincodeCommand::Instantiate {
            version,
            invocation,
            client,
        } => {
            let identity = identity(&client)?;
            let mut admin = connect(&client).await?;
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
            let identity = identity(&client)?;
            let mut admin = connect(&client).await?;
            let request = ListRequest {
                installed,
                channel: channel.clone(),
            };
            let list: ListResponse = decode(
                admin_call(
                    &mut admin,
                    &identity,
                    "",
                    "ListChaincodes",
                    request.encode_to_vec(),
                )
                .await?,
            )?;
            if installed {
                eprintln!("Installed chaincodes on peer:");
            } else {
                eprintln!("Instantiated chaincodes on channel {channel}:");
            }
            for cc in list.chaincodes {
                println!(
                    "Name: {}, Version: {}, Type: {}, VM: {}, Channels: {}, Running: {}, Package ID: {}",
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
                    cc.package_id
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        ChaincodeCommand::Stop { name, client } => {
            let identity = identity(&client)?;
            let mut admin = connect(&client).await?;
            let request = StopRequest { name: name.clone() };
            let stopped: StopResponse = decode(
                admin_call(
                    &mut admin,
                    &identity,
                    "",
                    "StopChaincode",
                    request.encode_to_vec(),
                )
                .await?,
            )?;
            if stopped.stopped.is_empty() {
                eprintln!("{name} was not running");
            }
            for id in stopped.stopped {
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
    let mut admin = connect(&client).await?;
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
