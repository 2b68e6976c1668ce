//! Package labels and package IDs.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// Checks a package label against Fabric's rule `^[[:alnum:]][[:alnum:]_.+-]*$`
/// (ASCII letters and digits only). The empty label is refused.
///
/// ```
/// assert!(chaincode_package::validate_label("kv_1.0+beta-2").is_ok());
/// assert!(chaincode_package::validate_label("-x").is_err());
/// assert!(chaincode_package::validate_label("a:b").is_err());
/// ```
pub fn validate_label(label: &str) -> Result<()> {
    let mut bytes = label.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphanumeric());
    let rest_ok =
        bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'+' | b'-'));
    if first_ok && rest_ok {
        Ok(())
    } else {
        Err(Error::InvalidLabel {
            label: label.to_owned(),
        })
    }
}

/// The ID of a chaincode package: `<label>:<hex sha256 of the package file>`.
///
/// IDs order as their text does.
/// In serde it is the text `label:hash`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PackageId {
    /// `label:hash`.
    text: String,
    /// Where the `:` is in `text`.
    colon: usize,
}

impl PackageId {
    /// An ID from a label and the hex sha256 of the package, both checked:
    /// the label follows [`validate_label`], the hash is 64 lowercase hex digits.
    pub fn new(label: impl Into<String>, hash_hex: impl AsRef<str>) -> Result<Self> {
        let mut text = label.into();
        validate_label(&text)?;
        let hash = hash_hex.as_ref();
        let colon = text.len();
        text.push(':');
        text.push_str(hash);
        if !is_hash(hash) {
            return Err(Error::InvalidPackageId {
                id: text,
                reason: "the hash is not 64 lowercase hex digits",
            });
        }
        Ok(PackageId { text, colon })
    }

    /// The ID of the package file `package` whose metadata has this label.
    pub fn of(label: &str, package: &[u8]) -> Result<Self> {
        validate_label(label)?;
        Self::new(label, hex::encode(Sha256::digest(package)))
    }

    /// Parses `label:hash` (the same as [`str::parse`]).
    pub fn parse(text: &str) -> Result<Self> {
        let Some((label, hash)) = text.split_once(':') else {
            return Err(Error::InvalidPackageId {
                id: text.to_owned(),
                reason: "there is no `:` between label and hash",
            });
        };
        if let Err(Error::InvalidLabel { .. }) = validate_label(label) {
            return Err(Error::InvalidPackageId {
                id: text.to_owned(),
                reason: "the label before `:` breaks the label rule ^[[:alnum:]][[:alnum:]_.+-]*$",
            });
        }
        Self::new(label, hash)
    }

    /// The label.
    pub fn label(&self) -> &str {
        &self.text[..self.colon]
    }

    /// The hex sha256 of the package file.
    pub fn hash(&self) -> &str {
        &self.text[self.colon + 1..]
    }

    /// The ID as text, `label:hash`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The name of the installed package file: `<label>.<hash>.tar.gz`.
    pub fn file_name(&self) -> String {
        format!("{}.tar.gz", self.to_stem())
    }

    /// `<label>.<hash>`: the ID with its first `:` replaced by `.`, as installed files and code
    /// folders are named.
    pub(crate) fn to_stem(&self) -> String {
        format!("{}.{}", self.label(), self.hash())
    }

    /// The ID with each of `< > : " / \ | ? * &` replaced by `-`, as external builders name
    /// folders after it (for a valid ID: `<label>-<hash>`).
    pub fn sanitised(&self) -> String {
        self.text
            .chars()
            .map(|c| match c {
                '<' | '>' | ':' | '"' | '/' | '\\' | '|' | '?' | '*' | '&' => '-',
                c => c,
            })
            .collect()
    }

    /// The ID named by an installed file name `<label>.<hash>.tar.gz`, if it is one.
    pub(crate) fn from_file_name(name: &str) -> Option<Self> {
        let stem = name.strip_suffix(".tar.gz")?;
        let split = stem.len().checked_sub(65)?;
        let (label, dot_hash) = (stem.get(..split)?, stem.get(split..)?);
        let hash = dot_hash.strip_prefix('.')?;
        Self::new(label, hash).ok()
    }
}

/// Whether `hash` is 64 lowercase hex digits.
fn is_hash(hash: &str) -> bool {
    hash.len() == 64 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl FromStr for PackageId {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        Self::parse(text)
    }
}

impl fmt::Display for PackageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for PackageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PackageId({:?})", self.text)
    }
}

impl TryFrom<String> for PackageId {
    type Error = Error;

    fn try_from(text: String) -> Result<Self> {
        Self::parse(&text)
    }
}

impl From<PackageId> for String {
    fn from(id: PackageId) -> String {
        id.text
    }
}

impl AsRef<str> for PackageId {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn labels_follow_the_rule() {
        for good in ["a", "0", "kv_1", "A.b+c-d_e", "9-"] {
            assert!(validate_label(good).is_ok(), "{good}");
        }
        for bad in ["", "-x", "_x", ".x", "a b", "a:b", "é", "a/b", "a\n"] {
            let err = validate_label(bad).unwrap_err();
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn parse_display_and_names() {
        let id: PackageId = format!("kv_1:{HASH}").parse().unwrap();
        assert_eq!(id.label(), "kv_1");
        assert_eq!(id.hash(), HASH);
        assert_eq!(id.to_string(), format!("kv_1:{HASH}"));
        assert_eq!(id.file_name(), format!("kv_1.{HASH}.tar.gz"));
        assert_eq!(id.sanitised(), format!("kv_1-{HASH}"));
        assert_eq!(PackageId::from_file_name(&id.file_name()), Some(id.clone()));
        assert_eq!(PackageId::new("kv_1", HASH).unwrap(), id);
    }

    #[test]
    fn bad_ids_are_refused_with_a_reason() {
        let upper = HASH.to_uppercase();
        for bad in [
            "nocolon".to_owned(),
            format!("a:b:{HASH}"),
            format!(":{HASH}"),
            format!("-x:{HASH}"),
            "kv:abc".to_owned(),
            format!("kv:{upper}"),
        ] {
            let err = PackageId::parse(&bad).unwrap_err();
            assert!(
                matches!(err, Error::InvalidPackageId { .. }),
                "{bad}: {err}"
            );
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn of_hashes_the_bytes() {
        let id = PackageId::of("x", b"abc").unwrap();
        assert_eq!(
            id.hash(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(PackageId::of("a b", b"abc").is_err());
    }

    #[test]
    fn sanitised_replaces_each_listed_character() {
        let id = PackageId {
            text: r#"a<b>c:d"e/f\g|h?i*j&k"#.to_owned(),
            colon: 5,
        };
        assert_eq!(id.sanitised(), "a-b-c-d-e-f-g-h-i-j-k");
    }

    #[test]
    fn serde_uses_the_text() {
        let id: PackageId = format!("kv:{HASH}").parse().unwrap();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"kv:{HASH}\""));
        assert_eq!(serde_json::from_str::<PackageId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<PackageId>("\"kv:x\"").is_err());
    }

    #[test]
    fn ids_order_as_text() {
        let a: PackageId = format!("a.b:{HASH}").parse().unwrap();
        let b: PackageId = format!("a:{HASH}").parse().unwrap();
        assert!(a < b);
        assert_eq!(a.as_str().cmp(b.as_str()), a.cmp(&b));
    }
}
