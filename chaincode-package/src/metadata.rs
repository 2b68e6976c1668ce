//! `metadata.json`, the package's description of its code.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The contents of a package's `metadata.json`.
///
/// In JSON the fields are `path`, `type` and `label`, in that order. Reading, `path` may be
/// missing (it is then empty), `type` and `label` must be there, unknown fields are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Metadata {
    /// The chaincode's source path (for Go, the import path); may be empty.
    #[serde(default)]
    pub path: String,
    /// The chaincode type: `golang`, `node`, `java`, `ccaas`, `binary`, or any other string an
    /// external builder knows.
    #[serde(rename = "type")]
    pub kind: String,
    /// The package label, the first part of the package ID.
    pub label: String,
}

impl Metadata {
    /// Metadata from its three fields.
    pub fn new(path: impl Into<String>, kind: impl Into<String>, label: impl Into<String>) -> Self {
        Metadata {
            path: path.into(),
            kind: kind.into(),
            label: label.into(),
        }
    }

    /// Compact JSON as Fabric's CLI writes it, fields in the order `path`, `type`, `label`:
    /// `{"path":"x","type":"binary","label":"kv_1"}`.
    ///
    /// Strings are escaped as Go's `encoding/json` does, `<`, `>` and `&` included, so the
    /// bytes match those of Fabric's CLI.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out =
            String::with_capacity(40 + self.path.len() + self.kind.len() + self.label.len());
        out.push_str("{\"path\":");
        push_json_string(&mut out, &self.path);
        out.push_str(",\"type\":");
        push_json_string(&mut out, &self.kind);
        out.push_str(",\"label\":");
        push_json_string(&mut out, &self.label);
        out.push('}');
        out.into_bytes()
    }

    /// Parses `metadata.json` (the label is not checked here).
    pub(crate) fn from_json(bytes: &[u8]) -> Result<Self> {
        serde_json::from_slice(bytes).map_err(|source| Error::Metadata { source })
    }
}

/// Appends `s` as a JSON string escaped the way Go's `json.Marshal` does.
fn push_json_string(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c if c < ' ' || matches!(c, '<' | '>' | '&') => {
                let b = c as usize;
                out.push_str("\\u00");
                out.push(char::from(HEX[b >> 4]));
                out.push(char::from(HEX[b & 0xf]));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_compact_and_ordered() {
        let m = Metadata::new("x", "binary", "kv_1");
        assert_eq!(
            m.to_json(),
            br#"{"path":"x","type":"binary","label":"kv_1"}"#
        );
        assert_eq!(serde_json::to_vec(&m).unwrap(), m.to_json());
    }

    #[test]
    fn json_escapes_like_go() {
        let m = Metadata::new("a\"b\\c\n<&>\u{1}\u{2028}é", "t", "l");
        assert_eq!(
            String::from_utf8(m.to_json()).unwrap(),
            r#"{"path":"a\"b\\c\n\u003c\u0026\u003e\u0001\u2028é","type":"t","label":"l"}"#
        );
        assert_eq!(Metadata::from_json(&m.to_json()).unwrap(), m);
    }

    #[test]
    fn reading_needs_type_and_label_but_not_path() {
        let m = Metadata::from_json(br#"{"type":"ccaas","label":"x","extra":1}"#).unwrap();
        assert_eq!(m, Metadata::new("", "ccaas", "x"));
        for bad in [
            &br#"{"path":"p","label":"x"}"#[..],
            br#"{"path":"p","type":"golang"}"#,
            br#"{"type":"golang","label":"x","label":"y"}"#,
            b"not json",
            b"[]",
        ] {
            let err = Metadata::from_json(bad).unwrap_err();
            assert!(matches!(err, Error::Metadata { .. }), "{err}");
        }
    }
}
