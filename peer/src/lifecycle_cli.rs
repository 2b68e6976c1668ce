//! `peer lifecycle chaincode …`: Fabric 2.x's commands, their flags and their output as
//! Fabric's CLI prints them (query results on stdout; what Fabric logs, on stderr).

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use prost::Message;
use proto::lifecycle as lc;

use crate::cli::{ClientOptions, DefinitionArgs, LifecycleChaincode};
use crate::client::{admin_call, connect, identity, package_path};
use crate::gojson;

fn required(value: &str, name: &str, flag: &str) -> Result<()> {
    if value.is_empty() {
        bail!("The required parameter '{name}' is empty. Rerun the command with {flag} flag");
    }
    Ok(())
}

/// What a definition's flags say, checked and encoded as Fabric's CLI sends it.
struct Definition {
    sequence: i64,
    name: String,
    version: String,
    endorsement_plugin: String,
    validation_plugin: String,
    validation_parameter: Bytes,
    collections: Option<proto::protos::CollectionConfigPackage>,
    init_required: bool,
}

impl Definition {
    fn from_args(d: &DefinitionArgs) -> Result<Self> {
        required(&d.channel, "channelID", "-C")?;
        required(&d.name, "name", "-n")?;
        required(&d.version, "version", "-v")?;
        if d.sequence == 0 {
            bail!(
                "The required parameter 'sequence' is empty. Rerun the command with --sequence flag"
            );
        }
        let signature = (!d.signature_policy.is_empty()).then_some(d.signature_policy.as_str());
        let reference =
            (!d.channel_config_policy.is_empty()).then_some(d.channel_config_policy.as_str());
        if signature.is_some() && reference.is_some() {
            bail!(r#"cannot specify both "--signature-policy" and "--channel-config-policy""#);
        }
        let validation_parameter = if signature.is_none() && reference.is_none() {
            Bytes::new()
        } else {
            peer_support::policy::application_policy(signature, reference)
                .map_err(|e| anyhow::anyhow!("invalid signature policy: {e}"))?
                .encode_to_vec()
                .into()
        };
        let collections = match &d.collections_config {
            None => None,
            Some(path) => {
                let meta = std::fs::metadata(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                if !meta.is_file() || meta.len() > 1024 * 1024 {
                    bail!(
                        "invalid collection configuration in file {}: not a file of at most 1 MiB",
                        path.display()
                    );
                }
                let bytes = std::fs::read(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                Some(peer_support::collections::parse(&bytes).map_err(|e| {
                    anyhow::anyhow!(
                        "invalid collection configuration in file {}: {e}",
                        path.display()
                    )
                })?)
            }
        };
        Ok(Self {
            sequence: d.sequence,
            name: d.name.clone(),
            version: d.version.clone(),
            endorsement_plugin: d.endorsement_plugin.clone(),
            validation_plugin: d.validation_plugin.clone(),
            validation_parameter,
            collections,
            init_required: d.init_required,
        })
    }
}

/// One of Fabric's definition messages (approve, readiness, commit: the same fields 1 to 8)
/// from a [`Definition`], plus the message's own fields (the approval's `source`).
macro_rules! definition_args {
    ($message:path, $d:expr $(, $field:ident: $value:expr)*) => {{
        let d = $d;
        $message {
            sequence: d.sequence,
            name: d.name,
            version: d.version,
            endorsement_plugin: d.endorsement_plugin,
            validation_plugin: d.validation_plugin,
            validation_parameter: d.validation_parameter,
            collections: d.collections,
            init_required: d.init_required,
            $($field: $value,)*
        }
    }};
}

fn print_json(full_name: &str, bytes: &[u8]) -> Result<()> {
    let text = gojson::render(full_name, bytes)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    Ok(())
}

/// The client's connection and identity.
async fn session(
    client: &ClientOptions,
) -> Result<(
    proto::admin::admin_client::AdminClient<tonic::transport::Channel>,
    crate::identity::Identity,
)> {
    let identity = identity(client)?;
    let admin = connect(client).await?;
    Ok((admin, identity))
}

/// Runs a `peer lifecycle chaincode` command.
pub async fn run(command: LifecycleChaincode) -> Result<ExitCode> {
    match command {
        LifecycleChaincode::Package {
            output,
            path,
            lang,
            label,
        } => {
            required(&label, "label", "--label")
                .map_err(|_| anyhow::anyhow!("package label must be specified"))?;
            crate::names::label(&label).map_err(|_| {
                anyhow::anyhow!(
                    "invalid label '{label}'. Label must be non-empty, can only consist of alphanumerics, symbols from '.+-_', and can only begin with alphanumerics"
                )
            })?;
            if lang.is_empty() {
                bail!("chaincode language must be specified");
            }
            let bytes = tokio::task::spawn_blocking(move || -> Result<()> {
                let bytes = package_path(&path, &lang, &label)?;
                let dir = output
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(std::path::Path::new("."));
                let mut file = tempfile::NamedTempFile::new_in(dir)
                    .with_context(|| format!("cannot write in {}", dir.display()))?;
                file.write_all(&bytes)?;
                file.persist(&output).with_context(|| {
                    format!("error writing chaincode package to {}", output.display())
                })?;
                Ok(())
            });
            bytes.await??;
            Ok(ExitCode::SUCCESS)
        }
        LifecycleChaincode::Calculatepackageid { package, format } => {
            let id = tokio::task::spawn_blocking(move || -> Result<String> {
                let bytes = std::fs::read(&package).with_context(|| {
                    format!(
                        "failed to read chaincode package at '{}'",
                        package.display()
                    )
                })?;
                let parsed = chaincode_package::Package::parse(
                    &bytes,
                    &chaincode_package::Limits::default(),
                )
                .context("could not parse as a chaincode install package")?;
                Ok(chaincode_package::PackageId::of(&parsed.metadata.label, &bytes)?.to_string())
            })
            .await??;
            if format.json() {
                let text = format!("{{\n\t\"package_id\": {}\n}}", serde_json::to_string(&id)?);
                println!("{text}");
            } else {
                println!("{id}");
            }
            Ok(ExitCode::SUCCESS)
        }
        LifecycleChaincode::Install { package, client } => {
            let bytes = {
                let package = package.clone();
                tokio::task::spawn_blocking(move || {
                    std::fs::read(&package).with_context(|| {
                        format!(
                            "failed to read chaincode package at '{}'",
                            package.display()
                        )
                    })
                })
                .await??
            };
            let (mut admin, identity) = session(&client).await?;
            let args = lc::InstallChaincodeArgs {
                chaincode_install_package: bytes.into(),
            };
            let result: lc::InstallChaincodeResult = decode(
                admin_call(
                    &mut admin,
                    &identity,
                    "",
                    "InstallChaincode",
                    args.encode_to_vec(),
                )
                .await
                .map_err(|e| anyhow::anyhow!("chaincode install failed: {e:#}"))?,
            )?;
            eprintln!("Chaincode code package identifier: {}", result.package_id);
            Ok(ExitCode::SUCCESS)
        }
        LifecycleChaincode::Queryinstalled { format, client } => {
            let (mut admin, identity) = session(&client).await?;
            let args = lc::QueryInstalledChaincodesArgs::default();
            let result = admin_call(
                &mut admin,
                &identity,
                "",
                "QueryInstalledChaincodes",
                args.encode_to_vec(),
            )
            .await?;
            if format.json() {
                print_json("lifecycle.QueryInstalledChaincodesResult", &result)?;
            } else {
                let result: lc::QueryInstalledChaincodesResult = decode(result)?;
                let mut out = std::io::stdout().lock();
                writeln!(out, "Installed chaincodes on peer:")?;
                for cc in result.installed_chaincodes {
                    writeln!(out, "Package ID: {}, Label: {}", cc.package_id, cc.label)?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        LifecycleChaincode::Getinstalledpackage {
            package_id,
            output_directory,
            client,
        } => {
            required(&package_id, "package-id", "--package-id")?;
            let id: chaincode_package::PackageId = package_id.parse()?;
            let (mut admin, identity) = session(&client).await?;
            let args = lc::GetInstalledChaincodePackageArgs {
                package_id: package_id.clone(),
            };
            let result: lc::GetInstalledChaincodePackageResult = decode(
                admin_call(
                    &mut admin,
                    &identity,
                    "",
                    "GetInstalledChaincodePackage",
                    args.encode_to_vec(),
                )
                .await?,
            )?;
            let dir = output_directory.unwrap_or_else(|| std::path::PathBuf::from("."));
            let path = dir.join(format!("{id}.tar.gz"));
            tokio::task::spawn_blocking(move || {
                std::fs::write(&path, &result.chaincode_install_package).with_context(|| {
                    format!("failed to write chaincode package to {}", path.display())
                })
            })
            .await??;
            Ok(ExitCode::SUCCESS)
        }
        LifecycleChaincode::Approveformyorg {
            definition,
            package_id,
            client,
        } => {
            let d = Definition::from_args(&definition)?;
            let source = lc::ChaincodeSource {
                r#type: Some(if package_id.is_empty() {
                    lc::chaincode_source::Type::Unavailable(Default::default())
                } else {
                    lc::chaincode_source::Type::LocalPackage(lc::chaincode_source::Local {
                        package_id,
                    })
                }),
            };
            let args = definition_args!(
                lc::ApproveChaincodeDefinitionForMyOrgArgs,
                d,
                source: Some(source)
            );
            let (mut admin, identity) = session(&client).await?;
            call_proposal(
                &mut admin,
                &identity,
                &definition.channel,
                "ApproveChaincodeDefinitionForMyOrg",
                args.encode_to_vec(),
            )
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        LifecycleChaincode::Queryapproved {
            channel,
            name,
            sequence,
            format,
            client,
        } => {
            required(&channel, "channelID", "-C")?;
            required(&name, "name", "-n")?;
            let (mut admin, identity) = session(&client).await?;
            let args = lc::QueryApprovedChaincodeDefinitionArgs {
                name: name.clone(),
                sequence,
            };
            let result = query(
                &mut admin,
                &identity,
                &channel,
                "QueryApprovedChaincodeDefinition",
                args.encode_to_vec(),
            )
            .await?;
            if format.json() {
                print_json("lifecycle.QueryApprovedChaincodeDefinitionResult", &result)?;
            } else {
                let r: lc::QueryApprovedChaincodeDefinitionResult = decode(result)?;
                let package_id = match r.source.and_then(|s| s.r#type) {
                    Some(lc::chaincode_source::Type::LocalPackage(l)) => l.package_id,
                    _ => String::new(),
                };
                println!(
                    "Approved chaincode definition for chaincode '{name}' on channel '{channel}':"
                );
                println!(
                    "sequence: {}, version: {}, init-required: {}, package-id: {package_id}, endorsement plugin: {}, validation plugin: {}",
                    r.sequence,
                    r.version,
                    r.init_required,
                    r.endorsement_plugin,
                    r.validation_plugin
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        LifecycleChaincode::Checkcommitreadiness {
            definition,
            format,
            client,
        } => {
            let d = Definition::from_args(&definition)?;
            let (name, version, sequence) = (d.name.clone(), d.version.clone(), d.sequence);
            let args = definition_args!(lc::CheckCommitReadinessArgs, d);
            let (mut admin, identity) = session(&client).await?;
            let result = query(
                &mut admin,
                &identity,
                &definition.channel,
                "CheckCommitReadiness",
                args.encode_to_vec(),
            )
            .await?;
            if format.json() {
                print_json("lifecycle.CheckCommitReadinessResult", &result)?;
            } else {
                let r: lc::CheckCommitReadinessResult = decode(result)?;
                println!(
                    "Chaincode definition for chaincode '{name}', version '{version}', sequence '{sequence}' on channel '{}' approval status by org:",
                    definition.channel
                );
                for (org, approved) in r.approvals {
                    println!("{org}: {approved}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        LifecycleChaincode::Commit { definition, client } => {
            let d = Definition::from_args(&definition)?;
            let args = definition_args!(lc::CommitChaincodeDefinitionArgs, d);
            let (mut admin, identity) = session(&client).await?;
            call_proposal(
                &mut admin,
                &identity,
                &definition.channel,
                "CommitChaincodeDefinition",
                args.encode_to_vec(),
            )
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        LifecycleChaincode::Querycommitted {
            channel,
            name,
            format,
            client,
        } => {
            if channel.is_empty() {
                bail!("channel name must be specified");
            }
            let (mut admin, identity) = session(&client).await?;
            if name.is_empty() {
                let args = lc::QueryChaincodeDefinitionsArgs::default();
                let result = query(
                    &mut admin,
                    &identity,
                    &channel,
                    "QueryChaincodeDefinitions",
                    args.encode_to_vec(),
                )
                .await?;
                if format.json() {
                    return print_json("lifecycle.QueryChaincodeDefinitionsResult", &result)
                        .map(|()| ExitCode::SUCCESS);
                }
                let r: lc::QueryChaincodeDefinitionsResult = decode(result)?;
                println!("Committed chaincode definitions on channel '{channel}':");
                for d in r.chaincode_definitions {
                    println!(
                        "Name: {}, Version: {}, Sequence: {}, Endorsement Plugin: {}, Validation Plugin: {}",
                        d.name, d.version, d.sequence, d.endorsement_plugin, d.validation_plugin
                    );
                }
            } else {
                let args = lc::QueryChaincodeDefinitionArgs { name: name.clone() };
                let result = query(
                    &mut admin,
                    &identity,
                    &channel,
                    "QueryChaincodeDefinition",
                    args.encode_to_vec(),
                )
                .await?;
                if format.json() {
                    return print_json("lifecycle.QueryChaincodeDefinitionResult", &result)
                        .map(|()| ExitCode::SUCCESS);
                }
                let r: lc::QueryChaincodeDefinitionResult = decode(result)?;
                let approvals: Vec<String> = r
                    .approvals
                    .iter()
                    .map(|(org, ok)| format!("{org}: {ok}"))
                    .collect();
                println!(
                    "Committed chaincode definition for chaincode '{name}' on channel '{channel}':"
                );
                println!(
                    "Version: {}, Sequence: {}, Endorsement Plugin: {}, Validation Plugin: {}, Approvals: [{}]",
                    r.version,
                    r.sequence,
                    r.endorsement_plugin,
                    r.validation_plugin,
                    approvals.join(", ")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn decode<M: Message + Default>(bytes: Bytes) -> Result<M> {
    M::decode(bytes).context("the peer's answer cannot be decoded")
}

/// A function that changes something: its failure reads as Fabric's
/// (`proposal failed with status: 500 - failed to invoke backing implementation of '…': …`),
/// except refusals of the caller, which name gRPC's code.
async fn call_proposal(
    admin: &mut proto::admin::admin_client::AdminClient<tonic::transport::Channel>,
    identity: &crate::identity::Identity,
    channel: &str,
    function: &str,
    args: Vec<u8>,
) -> Result<Bytes> {
    fabric_error(
        admin_call(admin, identity, channel, function, args).await,
        "proposal",
        function,
    )
}

/// A function that reads: `query failed with status: …` on failure.
async fn query(
    admin: &mut proto::admin::admin_client::AdminClient<tonic::transport::Channel>,
    identity: &crate::identity::Identity,
    channel: &str,
    function: &str,
    args: Vec<u8>,
) -> Result<Bytes> {
    fabric_error(
        admin_call(admin, identity, channel, function, args).await,
        "query",
        function,
    )
}

fn fabric_error(result: Result<Bytes>, what: &str, function: &str) -> Result<Bytes> {
    result.map_err(|e| {
        let text = format!("{e:#}");
        if text.starts_with("UNAUTHENTICATED") || text.starts_with("PERMISSION_DENIED") {
            e
        } else if text.starts_with("namespace ") && text.ends_with(" is not defined") {
            anyhow::anyhow!("{what} failed with status: 404 - {text}")
        } else if text.starts_with("cannot reach the peer") {
            e
        } else {
            anyhow::anyhow!(
                "{what} failed with status: 500 - failed to invoke backing implementation of '{function}': {text}"
            )
        }
    })
}
