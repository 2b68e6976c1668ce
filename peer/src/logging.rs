//! Logging with `tracing`: `RUST_LOG`-style filters, or Fabric's `FABRIC_LOGGING_SPEC`, with
//! the levels changeable while the peer runs ([`set_spec`], behind `PUT /logspec`).
//! Chaincode output is logged under target `chaincode`, with the chaincode's name.
//!
//! Fabric's spec syntax: segments separated by `:`, each a level (the default) or
//! `logger[,logger…]=level`, as in `peer,chaincode=debug:warn`. Fabric's logger names map to
//! our targets ([`LOGGERS`]); any other name is taken as a target of ours, written with `.`
//! for `::` (`peer_support.handler=debug`). Levels are Fabric's (`debug`, `info`, `warn` or
//! `warning`, `error`, `dpanic`, `panic`, `fatal`: the last three log as `error`) and `trace`.

use std::sync::{Mutex, OnceLock};

use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, reload};

/// Fabric's logger names and the targets of ours each one sets. A name also covers its
/// targets' submodules, as a Fabric logger covers its children (`chaincode.platform`).
pub const LOGGERS: &[(&str, &[&str])] = &[
    ("peer", &["peer::"]),
    (
        "chaincode",
        &[
            "peer_support",
            "vm_api",
            "vm_process",
            "vm_inproc",
            "vm_external",
            "external_builder",
            "chaincode",
            "shim",
        ],
    ),
    ("peer.chaincode", &["chaincode"]),
    ("shim", &["shim"]),
    ("externalbuilder", &["vm_external", "external_builder"]),
    (
        "chaincode.externalbuilder",
        &["vm_external", "external_builder"],
    ),
    ("dockercontroller", &["vm_docker"]),
    (
        "container",
        &[
            "peer_support::container_runtime",
            "peer_support::router",
            "peer_support::vm_controller",
            "vm_docker",
            "vm_process",
            "vm_external",
            "vm_inproc",
        ],
    ),
    ("ledger", &["peer_support::ledger", "peer::store"]),
    ("kvledger", &["peer_support::ledger", "peer::store"]),
    ("statedb", &["peer_support::ledger", "peer::store"]),
    ("msp", &["peer::msp", "peer::identity"]),
    (
        "lifecycle",
        &[
            "peer::lifecycle",
            "peer::lifecycle_cli",
            "chaincode_package",
        ],
    ),
    (
        "_lifecycle",
        &[
            "peer::lifecycle",
            "peer::lifecycle_cli",
            "chaincode_package",
        ],
    ),
    ("endorser", &["peer::admin", "peer::transaction"]),
    (
        "grpc",
        &["tonic", "h2", "peer_support::server", "peer_support::caas"],
    ),
    (
        "comm.grpc.server",
        &["tonic", "h2", "peer_support::server", "peer_support::caas"],
    ),
    ("operations", &["peer::operations"]),
    ("flogging", &["peer::logging"]),
];

/// What `PUT /logspec` refuses, in Fabric's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid logging specification '{spec}': {problem}")]
pub struct SpecError {
    /// The specification as given.
    pub spec: String,
    /// What is wrong with it (`bad segment 'x'`, `bad logger name 'x'`, …).
    pub problem: String,
}

fn level(name: &str) -> Option<&'static str> {
    Some(match name.trim().to_ascii_lowercase().as_str() {
        "fatal" | "panic" | "dpanic" | "error" => "error",
        "warning" | "warn" => "warn",
        "info" => "info",
        "debug" => "debug",
        "trace" => "trace",
        _ => return None,
    })
}

/// Fabric's rule for logger names: dot-separated parts of letters, digits, `_`, `#`, `-`.
fn valid_logger(name: &str) -> bool {
    !name.is_empty()
        && name.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '#' | '-'))
        })
}

/// The targets of ours that Fabric's logger `name` stands for.
fn targets(name: &str) -> Vec<String> {
    match LOGGERS.iter().find(|(fabric, _)| *fabric == name) {
        Some((_, ours)) => ours.iter().map(|t| (*t).to_owned()).collect(),
        None => vec![name.replace('.', "::")],
    }
}

/// Translates Fabric's logging spec (`info`, `warning:chaincode=debug:msp,gossip=error`) into
/// `EnvFilter` directives, or says what is wrong with it, as Fabric does.
pub fn parse_spec(spec: &str) -> Result<String, SpecError> {
    let spec = spec.trim();
    let bad = |problem: String| SpecError {
        spec: spec.to_owned(),
        problem,
    };
    let mut default = "info";
    let mut directives = Vec::new();
    for segment in spec.split(':') {
        let parts: Vec<&str> = segment.split('=').collect();
        match parts.as_slice() {
            [l] if l.trim().is_empty() => {}
            [l] => default = level(l).ok_or_else(|| bad(format!("bad segment '{segment}'")))?,
            [loggers, l] => {
                if loggers.trim().is_empty() {
                    return Err(bad(format!("no logger specified in segment '{segment}'")));
                }
                let l = level(l).ok_or_else(|| bad(format!("bad segment '{segment}'")))?;
                for logger in loggers.split(',').map(str::trim) {
                    // A trailing `.` names the logger itself, not its children: targets
                    // cover their submodules either way.
                    let name = logger.strip_suffix('.').unwrap_or(logger);
                    if !valid_logger(name) {
                        return Err(bad(format!("bad logger name '{logger}'")));
                    }
                    directives.extend(targets(name).into_iter().map(|t| format!("{t}={l}")));
                }
            }
            _ => return Err(bad(format!("bad segment '{segment}'"))),
        }
    }
    directives.insert(0, default.to_owned());
    Ok(directives.join(","))
}

/// Translates Fabric's logging spec into `EnvFilter` directives; a spec Fabric would refuse
/// gives `info`.
pub fn fabric_spec_to_filter(spec: &str) -> String {
    parse_spec(spec).unwrap_or_else(|_| "info".to_owned())
}

/// The subscriber's filter, which [`set_spec`] replaces, and the spec it came from.
struct Levels {
    handle: reload::Handle<EnvFilter, Registry>,
    spec: Mutex<String>,
}

static LEVELS: OnceLock<Levels> = OnceLock::new();

/// Installs the log subscriber (to stderr): `RUST_LOG` if set, else `FABRIC_LOGGING_SPEC`,
/// else `default`. The levels can be changed later with [`set_spec`].
pub fn init(default: &str) {
    let (spec, directives, refused) = match std::env::var("RUST_LOG") {
        Ok(rust_log) => (rust_log.clone(), rust_log, None),
        Err(_) => match std::env::var("FABRIC_LOGGING_SPEC") {
            Ok(spec) => match parse_spec(&spec) {
                Ok(directives) => (spec, directives, None),
                Err(e) => (default.to_owned(), default.to_owned(), Some(e)),
            },
            Err(_) => (default.to_owned(), default.to_owned(), None),
        },
    };
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new(default));
    let (filter, handle) = reload::Layer::new(filter);
    // `FABRIC_LOGGING_FORMAT=json`: one JSON object per line, as Fabric's json format; any
    // other value (Fabric's format templates) keeps the text format.
    let json = std::env::var("FABRIC_LOGGING_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let output = if json {
        tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(std::io::stderr)
            .boxed()
    };
    if tracing_subscriber::registry()
        .with(filter)
        .with(output)
        .try_init()
        .is_ok()
    {
        let _ = LEVELS.set(Levels {
            handle,
            spec: Mutex::new(spec),
        });
    }
    if let Some(e) = refused {
        tracing::warn!("FABRIC_LOGGING_SPEC ignored: {e}");
    }
}

/// The spec in force: as last set, or as read at start (`RUST_LOG`'s directives, if set).
pub fn spec() -> String {
    LEVELS.get().map_or_else(String::new, |levels| {
        levels
            .spec
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    })
}

/// Changes the levels to Fabric's `spec` now; a spec Fabric would refuse changes nothing.
pub fn set_spec(spec: &str) -> Result<(), SpecError> {
    let directives = parse_spec(spec)?;
    let filter = EnvFilter::try_new(&directives).map_err(|e| SpecError {
        spec: spec.to_owned(),
        problem: e.to_string(),
    })?;
    let levels = LEVELS.get().ok_or_else(|| SpecError {
        spec: spec.to_owned(),
        problem: "logging was not set up by this program".into(),
    })?;
    let mut current = levels.spec.lock().unwrap_or_else(|e| e.into_inner());
    levels.handle.reload(filter).map_err(|e| SpecError {
        spec: spec.to_owned(),
        problem: e.to_string(),
    })?;
    *current = spec.trim().to_owned();
    drop(current);
    tracing::info!(spec = spec.trim(), "logging levels changed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fabric_specs_translate() {
        assert_eq!(fabric_spec_to_filter("info"), "info");
        assert_eq!(fabric_spec_to_filter("WARNING"), "warn");
        assert_eq!(
            fabric_spec_to_filter("warning:msp,gossip=error"),
            "warn,peer::msp=error,peer::identity=error,gossip=error"
        );
        assert_eq!(
            fabric_spec_to_filter("peer=debug:info"),
            "info,peer::=debug"
        );
        assert_eq!(
            fabric_spec_to_filter("dockercontroller,peer_support.handler=debug:warn"),
            "warn,vm_docker=debug,peer_support::handler=debug"
        );
        assert_eq!(fabric_spec_to_filter(""), "info");
    }

    #[test]
    fn every_translation_is_a_valid_filter() {
        for (name, _) in LOGGERS {
            let directives = parse_spec(&format!("{name}=debug:warn")).unwrap();
            EnvFilter::try_new(&directives).unwrap();
        }
    }

    #[test]
    fn bad_specs_are_refused_with_fabric_reasons() {
        let e = parse_spec("chaincode=loud").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid logging specification 'chaincode=loud': bad segment 'chaincode=loud'"
        );
        assert!(
            parse_spec("=debug")
                .unwrap_err()
                .problem
                .contains("no logger")
        );
        assert!(
            parse_spec("a=b=c")
                .unwrap_err()
                .problem
                .contains("bad segment")
        );
        assert!(
            parse_spec("bad!name=debug")
                .unwrap_err()
                .problem
                .contains("bad logger name")
        );
        assert!(parse_spec("verbose").is_err());
        assert_eq!(fabric_spec_to_filter("verbose"), "info");
    }
}
