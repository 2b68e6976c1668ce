//! Logging with `tracing`: `RUST_LOG`-style filters, or Fabric's `FABRIC_LOGGING_SPEC`.
//! Chaincode output is logged under target `chaincode`, with the chaincode's name.

use tracing_subscriber::EnvFilter;

/// Translates Fabric's logging spec (`info`, `warning:chaincode=debug:msp,gossip=error`) into
/// an `EnvFilter` directive (`warn,chaincode=debug,msp=error,gossip=error`).
pub fn fabric_spec_to_filter(spec: &str) -> String {
    fn level(l: &str) -> &'static str {
        match l.trim().to_ascii_lowercase().as_str() {
            "fatal" | "panic" | "error" | "critical" => "error",
            "warning" | "warn" => "warn",
            "debug" => "debug",
            "trace" => "trace",
            _ => "info",
        }
    }
    let mut directives = Vec::new();
    for segment in spec.split(':').map(str::trim).filter(|s| !s.is_empty()) {
        match segment.split_once('=') {
            Some((loggers, l)) => {
                for logger in loggers.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    directives.push(format!("{logger}={}", level(l)));
                }
            }
            None => directives.insert(0, level(segment).to_owned()),
        }
    }
    directives.join(",")
}

/// Installs the log subscriber (to stderr): `RUST_LOG` if set, else `FABRIC_LOGGING_SPEC`,
/// else `default`.
pub fn init(default: &str) {
    let directives = std::env::var("RUST_LOG")
        .ok()
        .or_else(|| {
            std::env::var("FABRIC_LOGGING_SPEC")
                .ok()
                .map(|s| fabric_spec_to_filter(&s))
        })
        .unwrap_or_else(|| default.to_owned());
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fabric_specs_translate() {
        assert_eq!(fabric_spec_to_filter("info"), "info");
        assert_eq!(fabric_spec_to_filter("WARNING"), "warn");
        assert_eq!(
            fabric_spec_to_filter("warning:chaincode=debug:msp,gossip=error"),
            "warn,chaincode=debug,msp=error,gossip=error"
        );
        assert_eq!(fabric_spec_to_filter("peer=debug:info"), "info,peer=debug");
    }
}
