//! Golden encodings made by Fabric's own JavaScript bindings (`../shared/interop/wire-vectors.json`):
//! every vector must decode into our generated type, show the listed field values, and encode
//! back to the identical bytes.

#![allow(unused_crate_dependencies, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use prost::Message;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MapKey, ReflectMessage, Value,
};
use serde_json::Value as Json;

fn vectors_path() -> PathBuf {
    match std::env::var_os("CCRT_SHARED_DIR") {
        Some(dir) => PathBuf::from(dir).join("interop/wire-vectors.json"),
        None => {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/interop/wire-vectors.json")
        }
    }
}

struct Vector {
    proto: String,
    fields: serde_json::Map<String, Json>,
    bytes: Vec<u8>,
}

fn load() -> BTreeMap<String, Vector> {
    let path = vectors_path();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let json: Json = serde_json::from_str(&text).expect("wire-vectors.json is JSON");
    let mut out = BTreeMap::new();
    for v in json["vectors"].as_array().expect("vectors array") {
        let name = v["name"].as_str().expect("name").to_owned();
        let vector = Vector {
            proto: v["proto"].as_str().expect("proto").to_owned(),
            fields: v["fields"].as_object().expect("fields").clone(),
            bytes: hex::decode(v["hex"].as_str().expect("hex")).expect("hex decodes"),
        };
        assert!(
            out.insert(name.clone(), vector).is_none(),
            "duplicate vector {name}"
        );
    }
    out
}

/// Decodes `bytes` as our generated type for `proto` and encodes it again.
fn typed_round_trip(proto: &str, bytes: &[u8]) -> Vec<u8> {
    macro_rules! round_trip {
        ($($name:literal => $ty:ty),* $(,)?) => {
            match proto {
                $($name => <$ty>::decode(bytes).expect(concat!("decodes as ", $name)).encode_to_vec(),)*
                other => panic!("no generated type mapped for {other}: add it to this test"),
            }
        };
    }
    use proto::{common, msp, protos, queryresult};
    round_trip! {
        "protos.ChaincodeID" => protos::ChaincodeId,
        "protos.ChaincodeInput" => protos::ChaincodeInput,
        "protos.ChaincodeSpec" => protos::ChaincodeSpec,
        "protos.ChaincodeEvent" => protos::ChaincodeEvent,
        "protos.Response" => protos::Response,
        "protos.ChaincodeMessage" => protos::ChaincodeMessage,
        "protos.GetState" => protos::GetState,
        "protos.PutState" => protos::PutState,
        "protos.DelState" => protos::DelState,
        "protos.QueryMetadata" => protos::QueryMetadata,
        "protos.GetStateByRange" => protos::GetStateByRange,
        "protos.GetQueryResult" => protos::GetQueryResult,
        "protos.GetHistoryForKey" => protos::GetHistoryForKey,
        "protos.QueryStateNext" => protos::QueryStateNext,
        "protos.QueryResponse" => protos::QueryResponse,
        "protos.PutStateMetadata" => protos::PutStateMetadata,
        "protos.StateMetadataResult" => protos::StateMetadataResult,
        "protos.ChaincodeProposalPayload" => protos::ChaincodeProposalPayload,
        "protos.Proposal" => protos::Proposal,
        "queryresult.KV" => queryresult::Kv,
        "queryresult.KeyModification" => queryresult::KeyModification,
        "common.ChannelHeader" => common::ChannelHeader,
        "common.SignatureHeader" => common::SignatureHeader,
        "common.Header" => common::Header,
        "msp.SerializedIdentity" => msp::SerializedIdentity,
    }
}

/// Bytes fields that hold an encoded message, for vectors that list them as objects.
fn embedded_type(message: &str, field: &str) -> Option<&'static str> {
    match (message, field) {
        ("protos.QueryResponse", "metadata") => Some("protos.QueryResponseMetadata"),
        ("protos.GetStateByRange" | "protos.GetQueryResult", "metadata") => {
            Some("protos.QueryMetadata")
        }
        _ => None,
    }
}

struct Checker<'a> {
    pool: DescriptorPool,
    vectors: &'a BTreeMap<String, Vector>,
}

impl Checker<'_> {
    fn decode(&self, proto: &str, bytes: &[u8]) -> DynamicMessage {
        let desc = self
            .pool
            .get_message_by_name(proto)
            .unwrap_or_else(|| panic!("our .proto files define no {proto}"));
        DynamicMessage::decode(desc, bytes).unwrap_or_else(|e| panic!("{proto} decodes: {e}"))
    }

    /// "the kv vector bytes", "the chaincode_event vector", "header vector bytes" name another vector.
    fn reference<'v>(&'v self, text: &str) -> Option<&'v Vector> {
        let t = text.strip_prefix("the ").unwrap_or(text);
        let t = t
            .strip_suffix(" vector bytes")
            .or_else(|| t.strip_suffix(" vector"))?;
        self.vectors.get(t)
    }

    fn expected_bytes(&self, text: &str) -> Vec<u8> {
        if let Some(v) = self.reference(text) {
            return v.bytes.clone();
        }
        if let Some(h) = text.strip_prefix("hex:") {
            return hex::decode(h).expect("hex: value");
        }
        // The file writes a newline inside a value as the two characters `\n`.
        text.replace("\\n", "\n").into_bytes()
    }

    fn check_message(
        &self,
        path: &str,
        msg: &DynamicMessage,
        fields: &serde_json::Map<String, Json>,
    ) {
        for (name, expected) in fields {
            let field_name = if name == "args_utf8_or_hex" {
                "args"
            } else {
                name
            };
            let fd = msg
                .descriptor()
                .get_field_by_name(field_name)
                .unwrap_or_else(|| {
                    panic!(
                        "{path}: {} has no field {field_name}",
                        msg.descriptor().full_name()
                    )
                });
            let path = format!("{path}.{field_name}");
            assert!(msg.has_field(&fd), "{path}: field is not set");
            let actual = msg.get_field(&fd);
            self.check_field(&path, msg, &fd, &actual, expected);
        }
    }

    fn check_field(
        &self,
        path: &str,
        owner: &DynamicMessage,
        fd: &FieldDescriptor,
        actual: &Value,
        expected: &Json,
    ) {
        match (actual, expected) {
            (Value::List(items), Json::Array(exp)) => {
                assert_eq!(items.len(), exp.len(), "{path}: element count");
                for (i, (a, e)) in items.iter().zip(exp).enumerate() {
                    self.check_value(&format!("{path}[{i}]"), owner, fd, a, e);
                }
            }
            (Value::Map(map), Json::Object(exp)) => {
                assert_eq!(map.len(), exp.len(), "{path}: entry count");
                for (k, e) in exp {
                    let a = map
                        .get(&MapKey::String(k.clone()))
                        .unwrap_or_else(|| panic!("{path}: no entry {k}"));
                    self.check_value(&format!("{path}[{k}]"), owner, fd, a, e);
                }
            }
            _ => self.check_value(path, owner, fd, actual, expected),
        }
    }

    fn check_value(
        &self,
        path: &str,
        owner: &DynamicMessage,
        fd: &FieldDescriptor,
        actual: &Value,
        expected: &Json,
    ) {
        match (actual, expected) {
            (Value::String(a), Json::String(e)) => assert_eq!(a, &e.replace("\\n", "\n"), "{path}"),
            (Value::Bytes(a), Json::String(e)) => {
                assert_eq!(a.as_ref(), self.expected_bytes(e).as_slice(), "{path}")
            }
            (Value::Bytes(a), Json::Object(e)) => {
                let ty = embedded_type(owner.descriptor().full_name(), fd.name())
                    .unwrap_or_else(|| panic!("{path}: which message do these bytes hold?"));
                self.check_message(path, &self.decode(ty, a), e);
            }
            (Value::EnumNumber(a), Json::String(e)) => {
                // Listed as NAME(number).
                let (name, num) = e.trim_end_matches(')').split_once('(').expect("NAME(n)");
                assert_eq!(*a, num.parse::<i32>().expect("enum number"), "{path}");
                let Kind::Enum(en) = fd.kind() else {
                    panic!("{path}: not an enum")
                };
                assert_eq!(
                    en.get_value(*a).map(|v| v.name().to_owned()).as_deref(),
                    Some(name),
                    "{path}"
                );
            }
            (Value::I32(a), Json::Number(e)) => {
                assert_eq!(Some(i64::from(*a)), e.as_i64(), "{path}")
            }
            (Value::I64(a), Json::Number(e)) => assert_eq!(Some(*a), e.as_i64(), "{path}"),
            (Value::U32(a), Json::Number(e)) => {
                assert_eq!(Some(u64::from(*a)), e.as_u64(), "{path}")
            }
            (Value::U64(a), Json::Number(e)) => assert_eq!(Some(*a), e.as_u64(), "{path}"),
            (Value::Bool(a), Json::Bool(e)) => assert_eq!(a, e, "{path}"),
            (Value::Message(m), Json::Object(e)) => self.check_message(path, m, e),
            (Value::Message(m), Json::String(e)) => {
                let desc = m.descriptor();
                if let Some(v) = self.reference(e).filter(|v| v.proto == desc.full_name()) {
                    // "the chaincode_event vector": the whole message equals that vector.
                    assert_eq!(m, &self.decode(&v.proto, &v.bytes), "{path}");
                } else {
                    // A wrapper of one bytes field (QueryResultBytes) listed by its content.
                    let mut fields = desc.fields();
                    let only = fields.next().expect("a field");
                    assert!(
                        fields.next().is_none(),
                        "{path}: listed as text but has several fields"
                    );
                    self.check_value(path, m, &only, &m.get_field(&only), expected);
                }
            }
            (a, e) => panic!("{path}: cannot compare {a:?} with {e}"),
        }
    }
}

#[test]
fn every_vector_decodes_to_its_listed_fields_and_reencodes_identically() {
    let vectors = load();
    assert!(
        vectors.len() >= 25,
        "expected the full vector set, found {}",
        vectors.len()
    );
    let checker = Checker {
        pool: DescriptorPool::decode(proto::FILE_DESCRIPTOR_SET).expect("descriptor set"),
        vectors: &vectors,
    };
    for (name, v) in &vectors {
        let msg = checker.decode(&v.proto, &v.bytes);
        checker.check_message(name, &msg, &v.fields);
        assert_eq!(
            hex::encode(typed_round_trip(&v.proto, &v.bytes)),
            hex::encode(&v.bytes),
            "{name}: re-encoding differs"
        );
    }
}

#[test]
fn checker_notices_a_wrong_value() {
    // The check above must be able to fail: a changed field value is caught.
    let vectors = load();
    let checker = Checker {
        pool: DescriptorPool::decode(proto::FILE_DESCRIPTOR_SET).expect("descriptor set"),
        vectors: &vectors,
    };
    let v = &vectors["response"];
    let msg = checker.decode(&v.proto, &v.bytes);
    let mut wrong = v.fields.clone();
    wrong.insert("status".into(), Json::from(200));
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        checker.check_message("response", &msg, &wrong)
    }));
    assert!(caught.is_err(), "a wrong status must fail the check");
}
