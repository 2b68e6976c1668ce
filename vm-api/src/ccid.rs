//! The chaincode container id.

use std::fmt;

/// Names one chaincode instance a backend runs: a chaincode name and version.
///
/// Fabric writes it two ways and so do we: `name:version` is how a chaincode registers
/// (`CORE_CHAINCODE_ID_NAME`, the REGISTER payload) and how the handler registry knows it;
/// `name-version` is the part of a container or image name it contributes. A Fabric 2.x
/// package id (`label:hash`) parses the same way, with the hash as the version.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ccid {
    name: String,
    version: String,
}

impl Ccid {
    /// The id of chaincode `name` at `version` (which may be empty).
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
        }
    }

    /// Parses the registered form `name:version` (or a bare `name`). The version is what
    /// follows the first `:`.
    pub fn parse(registered: &str) -> Self {
        match registered.split_once(':') {
            Some((name, version)) => Self::new(name, version),
            None => Self::new(registered, ""),
        }
    }

    /// The chaincode name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The chaincode version (may be empty).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// `name:version` (or `name` without a version): how the chaincode registers.
    pub fn registered_name(&self) -> String {
        self.to_string()
    }

    /// `name-version` (or `name`): the chaincode's part of container and image names.
    pub fn dashed(&self) -> String {
        if self.version.is_empty() {
            self.name.clone()
        } else {
            format!("{}-{}", self.name, self.version)
        }
    }
}

impl fmt::Display for Ccid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.version.is_empty() {
            f.write_str(&self.name)
        } else {
            write!(f, "{}:{}", self.name, self.version)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_and_dashed_forms() {
        let id = Ccid::new("mycc", "1.0");
        assert_eq!(id.registered_name(), "mycc:1.0");
        assert_eq!(id.dashed(), "mycc-1.0");
        assert_eq!(Ccid::parse("mycc:1.0"), id);
        let bare = Ccid::parse("lscc");
        assert_eq!(bare.version(), "");
        assert_eq!(bare.to_string(), "lscc");
        assert_eq!(bare.dashed(), "lscc");
    }

    #[test]
    fn package_id_keeps_hash_as_version() {
        let id = Ccid::parse("kv_1:ab12:cd");
        assert_eq!(id.name(), "kv_1");
        assert_eq!(id.version(), "ab12:cd");
        assert_eq!(id.registered_name(), "kv_1:ab12:cd");
    }
}
