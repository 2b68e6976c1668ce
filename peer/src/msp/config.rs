//! An MSP folder's `config.yaml`, in Fabric's format: `NodeOUs` and
//! `OrganizationalUnitIdentifiers`.
//!
//! ```yaml
//! NodeOUs:
//!   Enable: true
//!   ClientOUIdentifier: { Certificate: cacerts/ca.pem, OrganizationalUnitIdentifier: client }
//!   PeerOUIdentifier: { Certificate: cacerts/ca.pem, OrganizationalUnitIdentifier: peer }
//!   AdminOUIdentifier: { Certificate: cacerts/ca.pem, OrganizationalUnitIdentifier: admin }
//!   OrdererOUIdentifier: { Certificate: cacerts/ca.pem, OrganizationalUnitIdentifier: orderer }
//! ```
//!
//! As in Fabric, `ClientOUIdentifier` and `PeerOUIdentifier` are required when NodeOUs are
//! enabled, the other two are optional, and a `Certificate` (a CA or intermediate CA of the MSP,
//! relative to the MSP folder) limits the OU to identities that certificate issued directly.

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use yaml_rust2::{Yaml, YamlLoader};

/// An organisational unit, optionally tied to the CA that must have issued the identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OuIdentifier {
    /// The `OU` value (`OrganizationalUnitIdentifier`).
    pub ou: String,
    /// The certifier's certificate, DER (`Certificate`), if one is named.
    pub certifier: Option<Vec<u8>>,
}

/// The node OUs of an MSP whose `config.yaml` enables them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeOus {
    /// The OU of client identities.
    pub client: OuIdentifier,
    /// The OU of peers.
    pub peer: OuIdentifier,
    /// The OU of administrators, if configured.
    pub admin: Option<OuIdentifier>,
    /// The OU of orderers, if configured.
    pub orderer: Option<OuIdentifier>,
}

impl NodeOus {
    /// The configured OUs with their Fabric names.
    pub fn all(&self) -> impl Iterator<Item = (&'static str, &OuIdentifier)> {
        [
            ("client", Some(&self.client)),
            ("peer", Some(&self.peer)),
            ("admin", self.admin.as_ref()),
            ("orderer", self.orderer.as_ref()),
        ]
        .into_iter()
        .filter_map(|(name, ou)| ou.map(|ou| (name, ou)))
    }
}

/// What an MSP's `config.yaml` says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MspConfig {
    /// The node OUs, when enabled.
    pub node_ous: Option<NodeOus>,
    /// `OrganizationalUnitIdentifiers`: when not empty, an identity must carry one of them.
    pub ou_identifiers: Vec<OuIdentifier>,
}

impl MspConfig {
    /// Reads `<dir>/config.yaml`; no file means no NodeOUs and no OU identifiers.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join("config.yaml");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        Self::parse(dir, &text).with_context(|| format!("{} is not valid", path.display()))
    }

    /// Parses the text of a `config.yaml` whose certificates are relative to `dir`.
    pub fn parse(dir: &Path, text: &str) -> Result<Self> {
        let docs = YamlLoader::load_from_str(text).map_err(|e| anyhow!("not YAML: {e}"))?;
        let Some(doc) = docs.first() else {
            return Ok(Self::default());
        };
        let mut config = Self::default();
        if let Yaml::Array(items) = &doc["OrganizationalUnitIdentifiers"] {
            for item in items {
                config.ou_identifiers.push(
                    ou_identifier(dir, item)?
                        .context("OrganizationalUnitIdentifiers: an entry has no identifier")?,
                );
            }
        }
        let node_ous = &doc["NodeOUs"];
        if node_ous["Enable"].as_bool() == Some(true) {
            let required = |key: &str| -> Result<OuIdentifier> {
                ou_identifier(dir, &node_ous[key])?
                    .with_context(|| format!("NodeOUs are enabled but {key} is not set"))
            };
            config.node_ous = Some(NodeOus {
                client: required("ClientOUIdentifier")?,
                peer: required("PeerOUIdentifier")?,
                admin: ou_identifier(dir, &node_ous["AdminOUIdentifier"])?,
                orderer: ou_identifier(dir, &node_ous["OrdererOUIdentifier"])?,
            });
        }
        Ok(config)
    }
}

/// `{Certificate, OrganizationalUnitIdentifier}`; `None` when absent or without identifier.
fn ou_identifier(dir: &Path, yaml: &Yaml) -> Result<Option<OuIdentifier>> {
    let Some(ou) = yaml["OrganizationalUnitIdentifier"]
        .as_str()
        .filter(|s| !s.is_empty())
    else {
        return Ok(None);
    };
    let certifier = match &yaml["Certificate"] {
        Yaml::BadValue | Yaml::Null => None,
        Yaml::String(file) if file.is_empty() => None,
        Yaml::String(file) => {
            let path = dir.join(file);
            let pem =
                std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            let der = CertificateDer::from_pem_slice(&pem)
                .map_err(|_| anyhow!("{} (OU {ou}) holds no PEM certificate", path.display()))?;
            Some(der.to_vec())
        }
        _ => bail!("OU {ou}: Certificate must be a file name"),
    };
    Ok(Some(OuIdentifier {
        ou: ou.to_owned(),
        certifier,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ous_and_ou_identifiers_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let text = "
NodeOUs:
  Enable: true
  ClientOUIdentifier:
    OrganizationalUnitIdentifier: client
  PeerOUIdentifier: {OrganizationalUnitIdentifier: peer}
  AdminOUIdentifier: {OrganizationalUnitIdentifier: admin}
OrganizationalUnitIdentifiers:
  - OrganizationalUnitIdentifier: COP
";
        let config = MspConfig::parse(dir.path(), text).unwrap();
        let node_ous = config.node_ous.unwrap();
        assert_eq!(node_ous.client.ou, "client");
        assert_eq!(node_ous.admin.unwrap().ou, "admin");
        assert!(node_ous.orderer.is_none());
        assert_eq!(config.ou_identifiers[0].ou, "COP");
    }

    #[test]
    fn disabled_or_incomplete_node_ous() {
        let dir = tempfile::tempdir().unwrap();
        let off = "NodeOUs:\n  Enable: false\n";
        assert_eq!(MspConfig::parse(dir.path(), off).unwrap().node_ous, None);
        let no_peer = "
NodeOUs:
  Enable: true
  ClientOUIdentifier: {OrganizationalUnitIdentifier: client}
";
        let err = MspConfig::parse(dir.path(), no_peer).unwrap_err();
        assert!(err.to_string().contains("PeerOUIdentifier"), "{err}");
        let missing = "
NodeOUs:
  Enable: true
  ClientOUIdentifier:
    Certificate: cacerts/nope.pem
    OrganizationalUnitIdentifier: client
";
        let err = MspConfig::parse(dir.path(), missing).unwrap_err();
        assert!(format!("{err:#}").contains("nope.pem"), "{err:#}");
        assert_eq!(MspConfig::load(dir.path()).unwrap(), MspConfig::default());
    }
}
