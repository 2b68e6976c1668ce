//! Chaincode as a service: where a chaincode server listens and how to dial it, read from the
//! `connection.json` that external builders release (Fabric 2.x).

use std::time::Duration;

use serde::Deserialize;

use crate::{Error, Result, parse_duration};

/// How long dialing a chaincode server may take when `connection.json` does not say (Fabric's
/// default).
pub const DEFAULT_DIAL_TIMEOUT: Duration = Duration::from_secs(3);

/// A TLS certificate and its key, PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct TlsKeyPair {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The key, PEM.
    pub key_pem: String,
}

impl std::fmt::Debug for TlsKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsKeyPair").finish_non_exhaustive()
    }
}

/// TLS towards a chaincode server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTls {
    /// The CA the server's certificate must chain to, PEM.
    pub root_pem: String,
    /// The peer's client identity, when the server requires client authentication.
    pub client: Option<TlsKeyPair>,
    /// The name the server's certificate must carry, instead of the address's host (Fabric
    /// applies `domain` only with client authentication).
    pub domain: Option<String>,
}

/// A chaincode served as a service: the peer dials it (`protos.Chaincode/Connect`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChaincodeServer {
    /// Where it listens, `host:port`.
    pub address: String,
    /// How long dialing may take.
    pub dial_timeout: Duration,
    /// TLS, when the server requires it.
    pub tls: Option<ServerTls>,
}

/// Unknown fields are ignored, as Fabric ignores them.
#[derive(Deserialize)]
struct ConnectionJson {
    #[serde(default)]
    address: String,
    /// A Go duration string or a number of nanoseconds, read by [`dial_timeout`].
    #[serde(default)]
    dial_timeout: serde_json::Value,
    #[serde(default)]
    tls_required: bool,
    #[serde(default)]
    client_auth_required: bool,
    #[serde(default)]
    client_key: String,
    #[serde(default)]
    client_cert: String,
    #[serde(default)]
    root_cert: String,
    #[serde(default)]
    domain: String,
}

fn malformed(message: impl Into<String>) -> Error {
    Error::Malformed {
        what: "connection.json".into(),
        message: message.into(),
    }
}

/// `dial_timeout` as Fabric reads it: a Go duration string (units required: `"10s"`), or a
/// number of nanoseconds; absent, `null` or `""` mean none given.
fn dial_timeout(value: &serde_json::Value) -> Result<Duration> {
    use serde_json::Value;
    let bad = |why: String| malformed(format!("dial_timeout {value}: {why}"));
    match value {
        Value::Null => Ok(Duration::ZERO),
        Value::String(t) if t.trim().is_empty() => Ok(Duration::ZERO),
        Value::String(t) if t.trim().parse::<f64>().is_ok() => {
            Err(bad("a duration needs a unit, like \"10s\"".into()))
        }
        Value::String(t) => parse_duration(t).map_err(bad),
        Value::Number(n) => match n.as_f64() {
            Some(nanos) if nanos >= 0.0 && nanos.is_finite() => {
                Ok(Duration::from_nanos(nanos as u64))
            }
            _ => Err(bad("a number of nanoseconds must be zero or more".into())),
        },
        _ => Err(bad(
            "expected a duration like \"10s\" or a number of nanoseconds".into(),
        )),
    }
}

/// Checks `host:port`.
fn check_address(address: &str) -> Result<()> {
    let bad = || {
        malformed(format!(
            "address {address:?} is not host:port (a name or IP and a port number)"
        ))
    };
    let (host, port) = address.rsplit_once(':').ok_or_else(bad)?;
    if host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .is_empty()
        || host.contains(char::is_whitespace)
        || port.parse::<u16>().is_err()
    {
        return Err(bad());
    }
    Ok(())
}

impl ChaincodeServer {
    /// Reads a `connection.json` the way Fabric's peer reads it.
    ///
    /// - `address` is required;
    /// - `dial_timeout` is a Go duration (`"10s"`) or a number of nanoseconds; absent, empty
    ///   (what Fabric's own builder writes when the package has none) or zero means
    ///   [`DEFAULT_DIAL_TIMEOUT`];
    /// - with `tls_required`, `root_cert` is required, and with `client_auth_required` also
    ///   `client_key` and `client_cert`; without `tls_required` the TLS fields are ignored;
    ///   `domain` applies only with client authentication.
    ///
    /// ```
    /// let server = vm_api::ChaincodeServer::from_connection_json(
    ///     br#"{"address":"kv:9999","dial_timeout":"10s","tls_required":false}"#,
    /// ).unwrap();
    /// assert_eq!(server.address, "kv:9999");
    /// assert_eq!(server.dial_timeout, std::time::Duration::from_secs(10));
    /// assert!(server.tls.is_none());
    /// ```
    pub fn from_connection_json(bytes: &[u8]) -> Result<Self> {
        let raw: ConnectionJson =
            serde_json::from_slice(bytes).map_err(|e| malformed(e.to_string()))?;
        if raw.address.trim().is_empty() {
            return Err(malformed("address is empty"));
        }
        check_address(&raw.address)?;
        let dial_timeout = dial_timeout(&raw.dial_timeout)?;
        let dial_timeout = if dial_timeout.is_zero() {
            DEFAULT_DIAL_TIMEOUT
        } else {
            dial_timeout
        };
        let tls = if raw.tls_required {
            if raw.root_cert.trim().is_empty() {
                return Err(malformed("tls_required is true but root_cert is empty"));
            }
            let client = if raw.client_auth_required {
                if raw.client_cert.trim().is_empty() || raw.client_key.trim().is_empty() {
                    return Err(malformed(
                        "client_auth_required is true but client_cert or client_key is empty",
                    ));
                }
                Some(TlsKeyPair {
                    cert_pem: raw.client_cert,
                    key_pem: raw.client_key,
                })
            } else {
                None
            };
            let domain =
                (raw.client_auth_required && !raw.domain.trim().is_empty()).then_some(raw.domain);
            Some(ServerTls {
                root_pem: raw.root_cert,
                client,
                domain,
            })
        } else {
            None
        };
        Ok(Self {
            address: raw.address,
            dial_timeout,
            tls,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<ChaincodeServer> {
        ChaincodeServer::from_connection_json(json.as_bytes())
    }

    #[test]
    fn dial_timeouts_as_text_nanoseconds_empty_or_zero() {
        let t = |v: &str| {
            parse(&format!(r#"{{"address":"h:1","dial_timeout":{v}}}"#)).map(|s| s.dial_timeout)
        };
        assert_eq!(t(r#""10s""#).unwrap(), Duration::from_secs(10));
        assert_eq!(t("2500000000").unwrap(), Duration::from_millis(2500));
        assert_eq!(t(r#""""#).unwrap(), DEFAULT_DIAL_TIMEOUT);
        assert_eq!(t("0").unwrap(), DEFAULT_DIAL_TIMEOUT);
        assert_eq!(t(r#""0s""#).unwrap(), DEFAULT_DIAL_TIMEOUT);
        assert_eq!(
            parse(r#"{"address":"h:1"}"#).unwrap().dial_timeout,
            DEFAULT_DIAL_TIMEOUT
        );
        assert_eq!(
            t("2.5e9").unwrap(),
            Duration::from_millis(2500),
            "float nanoseconds"
        );
        assert_eq!(t("null").unwrap(), DEFAULT_DIAL_TIMEOUT);
        let e = t(r#""soon""#).unwrap_err();
        assert!(e.to_string().contains("dial_timeout \"soon\""), "{e}");
        let e = t(r#""10""#).unwrap_err();
        assert!(
            e.to_string().contains("needs a unit"),
            "as Go refuses it: {e}"
        );
        let e = t("-1").unwrap_err();
        assert!(e.to_string().contains("dial_timeout -1"), "{e}");
        let e = t("{}").unwrap_err();
        assert!(e.to_string().contains("dial_timeout {}"), "{e}");
        // Fields Fabric does not know are ignored, as Fabric ignores them.
        assert!(parse(r#"{"address":"h:1","surprise":1}"#).is_ok());
    }

    #[test]
    fn tls_fields_as_fabric_reads_them() {
        let off = parse(r#"{"address":"h:1","tls_required":false,"root_cert":"X","domain":"d"}"#)
            .unwrap();
        assert!(
            off.tls.is_none(),
            "TLS fields are ignored without tls_required"
        );
        let server_only =
            parse(r#"{"address":"h:1","tls_required":true,"root_cert":"ROOT","domain":"d"}"#)
                .unwrap();
        let tls = server_only.tls.unwrap();
        assert_eq!(tls.root_pem, "ROOT");
        assert!(tls.client.is_none());
        assert_eq!(tls.domain, None, "domain only with client authentication");
        let mutual = parse(
            r#"{"address":"h:1","tls_required":true,"client_auth_required":true,"root_cert":"R","client_cert":"C","client_key":"K","domain":"cc.example"}"#,
        )
        .unwrap()
        .tls
        .unwrap();
        assert_eq!(mutual.client.unwrap().cert_pem, "C");
        assert_eq!(mutual.domain.as_deref(), Some("cc.example"));
    }

    #[test]
    fn malformed_files_say_what_is_wrong() {
        for (json, needle) in [
            ("not json", "connection.json"),
            (r#"{"address":""}"#, "address is empty"),
            (r#"{"dial_timeout":"1s"}"#, "address is empty"),
            (r#"{"address":"nohost"}"#, "is not host:port"),
            (r#"{"address":"h:port"}"#, "is not host:port"),
            (
                r#"{"address":"h:1","tls_required":true}"#,
                "root_cert is empty",
            ),
            (
                r#"{"address":"h:1","tls_required":true,"client_auth_required":true,"root_cert":"R"}"#,
                "client_cert or client_key is empty",
            ),
            (
                r#"{"address":"h:1","tls_required":"yes"}"#,
                "connection.json",
            ),
        ] {
            let e = parse(json).unwrap_err();
            let text = e.to_string();
            assert!(text.contains(needle), "{json}: {text}");
            assert!(text.starts_with("malformed connection.json"), "{text}");
        }
    }
}
