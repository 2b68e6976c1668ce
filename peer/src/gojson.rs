//! Protobuf messages as Fabric's CLI prints them with `--output json`: Go's `encoding/json`
//! over the generated structs (not protojson). Keys are the fields' proto names; a field at its
//! default value is left out (`omitempty`), bytes are standard base64, enums numbers, maps
//! sorted by key; a oneof is an object under the oneof's Go name holding one key, the set
//! field's Go name (`"source":{"Type":{"LocalPackage":{"package_id":"…"}}}`). Indented with
//! tabs, as Fabric's `json.MarshalIndent(msg, "", "\t")`.
//!
//! ```
//! use prost::Message;
//! let result = proto::lifecycle::CheckCommitReadinessResult {
//!     approvals: [("Org1MSP".to_owned(), true), ("Org2MSP".to_owned(), false)].into(),
//!     ..Default::default()
//! };
//! let text = peer::gojson::render("lifecycle.CheckCommitReadinessResult", &result.encode_to_vec()).unwrap();
//! assert_eq!(text, "{\n\t\"approvals\": {\n\t\t\"Org1MSP\": true,\n\t\t\"Org2MSP\": false\n\t}\n}");
//! ```

use std::sync::OnceLock;

use anyhow::{Context, Result};
use base64::Engine;
use prost_reflect::{
    DescriptorPool, DynamicMessage, MapKey, MessageDescriptor, ReflectMessage, Value,
};
use serde_json::Value as Json;

/// A JSON value whose objects keep their keys in the order Go writes them (declaration
/// order for struct fields, sorted for maps).
enum Node {
    Object(Vec<(String, Node)>),
    Array(Vec<Node>),
    Leaf(Json),
}

fn pool() -> Result<&'static DescriptorPool> {
    static POOL: OnceLock<Option<DescriptorPool>> = OnceLock::new();
    POOL.get_or_init(|| DescriptorPool::decode(proto::FILE_DESCRIPTOR_SET).ok())
        .as_ref()
        .context("the protocol descriptors cannot be read")
}

/// `snake_case` → `SnakeCase`, as protoc-gen-go names fields.
fn go_name(proto_name: &str) -> String {
    let mut out = String::with_capacity(proto_name.len());
    let mut upper = true;
    for c in proto_name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn is_default(value: &Value) -> bool {
    match value {
        Value::Bool(b) => !b,
        Value::I32(n) | Value::EnumNumber(n) => *n == 0,
        Value::I64(n) => *n == 0,
        Value::U32(n) => *n == 0,
        Value::U64(n) => *n == 0,
        Value::F32(n) => *n == 0.0,
        Value::F64(n) => *n == 0.0,
        Value::String(s) => s.is_empty(),
        Value::Bytes(b) => b.is_empty(),
        Value::List(l) => l.is_empty(),
        Value::Map(m) => m.is_empty(),
        Value::Message(_) => false,
    }
}

fn value(v: &Value) -> Node {
    match v {
        Value::Bool(b) => Node::Leaf(Json::Bool(*b)),
        Value::I32(n) | Value::EnumNumber(n) => Node::Leaf(Json::from(*n)),
        Value::I64(n) => Node::Leaf(Json::from(*n)),
        Value::U32(n) => Node::Leaf(Json::from(*n)),
        Value::U64(n) => Node::Leaf(Json::from(*n)),
        Value::F32(n) => Node::Leaf(Json::from(f64::from(*n))),
        Value::F64(n) => Node::Leaf(Json::from(*n)),
        Value::String(s) => Node::Leaf(Json::String(s.clone())),
        Value::Bytes(b) => Node::Leaf(Json::String(
            base64::engine::general_purpose::STANDARD.encode(b),
        )),
        Value::List(items) => Node::Array(items.iter().map(value).collect()),
        Value::Map(map) => {
            let mut entries: Vec<(String, Node)> = map
                .iter()
                .map(|(k, v)| {
                    let key = match k {
                        MapKey::Bool(b) => b.to_string(),
                        MapKey::I32(n) => n.to_string(),
                        MapKey::I64(n) => n.to_string(),
                        MapKey::U32(n) => n.to_string(),
                        MapKey::U64(n) => n.to_string(),
                        MapKey::String(s) => s.clone(),
                    };
                    (key, value(v))
                })
                .collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Node::Object(entries)
        }
        Value::Message(m) => message(m),
    }
}

fn message(msg: &DynamicMessage) -> Node {
    let desc = msg.descriptor();
    let mut out = Vec::new();
    let mut oneofs_done = Vec::new();
    for field in desc.fields() {
        if let Some(oneof) = field.containing_oneof() {
            if oneofs_done.contains(&oneof.name().to_owned()) {
                continue;
            }
            oneofs_done.push(oneof.name().to_owned());
            let set = oneof.fields().find(|f| msg.has_field(f));
            if let Some(set) = set {
                let inner = vec![(go_name(set.name()), value(&msg.get_field(&set)))];
                out.push((go_name(oneof.name()), Node::Object(inner)));
            }
            continue;
        }
        let v = msg.get_field(&field);
        let present = match &*v {
            Value::Message(_) => msg.has_field(&field),
            other => !is_default(other),
        };
        if present {
            out.push((field.name().to_owned(), value(&v)));
        }
    }
    Node::Object(out)
}

/// Writes `node` as Go's `json.MarshalIndent(v, "", "\t")` does.
fn write(node: &Node, depth: usize, out: &mut String) {
    let indent = |out: &mut String, depth: usize| {
        out.push('\n');
        out.extend(std::iter::repeat_n('\t', depth));
    };
    match node {
        Node::Leaf(v) => out.push_str(&v.to_string()),
        Node::Array(items) if items.is_empty() => out.push_str("[]"),
        Node::Object(fields) if fields.is_empty() => out.push_str("{}"),
        Node::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                indent(out, depth + 1);
                write(item, depth + 1, out);
            }
            indent(out, depth);
            out.push(']');
        }
        Node::Object(fields) => {
            out.push('{');
            for (i, (key, item)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                indent(out, depth + 1);
                out.push_str(&Json::String(key.clone()).to_string());
                out.push_str(": ");
                write(item, depth + 1, out);
            }
            indent(out, depth);
            out.push('}');
        }
    }
}

/// The message `full_name` (`lifecycle.QueryInstalledChaincodesResult`) encoded in `bytes`,
/// as Fabric's CLI prints it with `--output json` (without the final newline).
pub fn render(full_name: &str, bytes: &[u8]) -> Result<String> {
    let desc: MessageDescriptor = pool()?
        .get_message_by_name(full_name)
        .with_context(|| format!("no message {full_name}"))?;
    let msg = DynamicMessage::decode(desc, bytes)
        .with_context(|| format!("the peer's answer is not a {full_name}"))?;
    let mut out = String::new();
    write(&message(&msg), 0, &mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use proto::lifecycle as lc;

    use super::*;

    #[test]
    fn shapes_as_go_encoding_json() {
        let approved = lc::QueryApprovedChaincodeDefinitionResult {
            sequence: 2,
            version: "1.0".into(),
            endorsement_plugin: "escc".into(),
            validation_plugin: "vscc".into(),
            validation_parameter: bytes::Bytes::from_static(b"\x12\x03abc"),
            init_required: false,
            source: Some(lc::ChaincodeSource {
                r#type: Some(lc::chaincode_source::Type::LocalPackage(
                    lc::chaincode_source::Local {
                        package_id: "kv_1:ab".into(),
                    },
                )),
            }),
            ..Default::default()
        };
        let text = render(
            "lifecycle.QueryApprovedChaincodeDefinitionResult",
            &approved.encode_to_vec(),
        )
        .unwrap();
        let json: Json = serde_json::from_str(&text).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "sequence": 2, "version": "1.0", "endorsement_plugin": "escc",
                "validation_plugin": "vscc", "validation_parameter": "EgNhYmM=",
                "source": {"Type": {"LocalPackage": {"package_id": "kv_1:ab"}}}
            })
        );
        assert!(text.starts_with("{\n\t\"sequence\": 2,"), "{text}");
        let none = render("lifecycle.QueryInstalledChaincodesResult", &[]).unwrap();
        assert_eq!(none, "{}");
        let unavailable = lc::ChaincodeSource {
            r#type: Some(lc::chaincode_source::Type::Unavailable(
                lc::chaincode_source::Unavailable::default(),
            )),
        };
        let text = render("lifecycle.ChaincodeSource", &unavailable.encode_to_vec()).unwrap();
        assert_eq!(
            serde_json::from_str::<Json>(&text).unwrap(),
            serde_json::json!({"Type": {"Unavailable": {}}})
        );
    }
}
