//! Private data collection configurations as Fabric's CLI reads them
//! (`peer lifecycle chaincode approveformyorg --collections-config FILE`): a JSON array of
//!
//! ```json
//! [{ "name": "prices", "policy": "OR('Org1MSP.member', 'Org2MSP.member')",
//!    "requiredPeerCount": 0, "maxPeerCount": 3, "blockToLive": 0,
//!    "memberOnlyRead": true, "memberOnlyWrite": true,
//!    "endorsementPolicy": { "signaturePolicy": "OR('Org1MSP.member')" } }]
//! ```
//!
//! read as Go's `encoding/json` reads it into Fabric's struct (keys match case-insensitively,
//! unknown keys are ignored, `null` leaves a field unset; `requiredPeerCount` defaults to 0 and
//! `maxPeerCount` to 1), then checked as the peer's `_lifecycle` checks a definition's
//! collections, with its messages: the name pattern, no duplicates, counts, and a member policy
//! that is an OR of principals. (Whether the member organisations are on the channel is the
//! channel's business, not checked here.)
//!
//! ```
//! use peer_support::collections;
//!
//! let json = br#"[{"name": "prices", "policy": "OR('Org1MSP.member')", "maxPeerCount": 2}]"#;
//! let package = collections::parse(json).unwrap();
//! assert_eq!(collections::names(&package), ["prices"]);
//! ```

use std::collections::HashSet;

use proto::common::SignaturePolicy;
use proto::common::signature_policy::Type as Rule;
use proto::protos::{
    ApplicationPolicy, CollectionConfig, CollectionConfigPackage, CollectionPolicyConfig,
    StaticCollectionConfig, collection_config, collection_policy_config,
};
use serde_json::{Map, Value};

use crate::policy::{self, PolicyError};

/// Largest configuration file taken.
pub const MAX_CONFIG_BYTES: usize = 1 << 20;

/// Most collections in one configuration.
pub const MAX_COLLECTIONS: usize = 1000;

/// Why a collection configuration was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CollectionsError {
    /// The file is larger than [`MAX_CONFIG_BYTES`].
    #[error("the collection configuration is {size} bytes; at most {limit} are taken")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The file holds more than [`MAX_COLLECTIONS`] collections.
    #[error("the collection configuration has {count} collections; at most {limit} are taken")]
    TooMany {
        /// How many it has.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// The file is not JSON (Fabric's words).
    #[error("could not parse the collection configuration")]
    Json {
        /// The JSON error, with its line and column.
        #[source]
        source: serde_json::Error,
    },
    /// The JSON does not have the configuration's shape.
    #[error("could not parse the collection configuration: {message}")]
    Shape {
        /// What is wrong, and where.
        message: String,
    },
    /// A collection's member policy does not parse (Fabric's words).
    #[error("invalid policy {policy}")]
    Policy {
        /// The policy text.
        policy: String,
        /// Why.
        #[source]
        source: PolicyError,
    },
    /// A collection's endorsement policy is wrong (Fabric's words, which quote the JSON).
    #[error(
        "invalid endorsement policy [&chaincode.endorsementPolicy{{ChannelConfigPolicy:{channel_config_policy:?}, SignaturePolicy:{signature_policy:?}}}]"
    )]
    EndorsementPolicy {
        /// The signature policy given.
        signature_policy: String,
        /// The channel configuration policy given.
        channel_config_policy: String,
        /// Why.
        #[source]
        source: PolicyError,
    },
    /// A name breaks Fabric's pattern `^[A-Za-z0-9-]+([A-Za-z0-9_-]+)*$`.
    #[error(
        "invalid collection name '{name}'. Names can only consist of alphanumerics, '_', and '-' and cannot begin with '_'"
    )]
    InvalidName {
        /// The name.
        name: String,
    },
    /// Two collections have the same name.
    #[error("collection-name: {name} -- found duplicate in collection configuration")]
    Duplicate {
        /// The name.
        name: String,
    },
    /// `maxPeerCount` is below `requiredPeerCount`.
    #[error(
        "collection-name: {name} -- maximum peer count ({maximum}) cannot be less than the required peer count ({required})"
    )]
    PeerCounts {
        /// The collection.
        name: String,
        /// `maxPeerCount`.
        maximum: i32,
        /// `requiredPeerCount`.
        required: i32,
    },
    /// `requiredPeerCount` is negative.
    #[error("collection-name: {name} -- requiredPeerCount ({required}) cannot be less than zero")]
    NegativeRequired {
        /// The collection.
        name: String,
        /// `requiredPeerCount`.
        required: i32,
    },
    /// The member policy requires more than one signature somewhere: Fabric takes only ORs of
    /// principals as membership.
    #[error(
        "collection-name: {name} -- error in member org policy: signature policy is not an OR concatenation, NOutOf {n}"
    )]
    MemberPolicy {
        /// The collection.
        name: String,
        /// The threshold found.
        n: i32,
    },
}

/// Parses and checks a collection configuration file.
pub fn parse(json: &[u8]) -> Result<CollectionConfigPackage, CollectionsError> {
    if json.len() > MAX_CONFIG_BYTES {
        return Err(CollectionsError::TooLarge {
            size: json.len(),
            limit: MAX_CONFIG_BYTES,
        });
    }
    let value: Value =
        serde_json::from_slice(json).map_err(|source| CollectionsError::Json { source })?;
    let items = match value {
        // Go reads `null` into an empty list.
        Value::Null => Vec::new(),
        Value::Array(items) => items,
        other => {
            return Err(shape(format!(
                "expected an array of collections, found {}",
                kind(&other)
            )));
        }
    };
    if items.len() > MAX_COLLECTIONS {
        return Err(CollectionsError::TooMany {
            count: items.len(),
            limit: MAX_COLLECTIONS,
        });
    }
    let collections = items
        .iter()
        .enumerate()
        .map(|(i, item)| collection(i, item))
        .collect::<Result<Vec<_>, _>>()?;
    validate(&collections)?;
    Ok(CollectionConfigPackage {
        config: collections
            .into_iter()
            .map(|c| CollectionConfig {
                payload: Some(collection_config::Payload::StaticCollectionConfig(c)),
            })
            .collect(),
    })
}

/// Checks a collection configuration a client sent already encoded, by the rules
/// [`parse`] applies (names, counts, policies, bounds): a peer checks what reaches it, whoever
/// wrote it. An entry without a static collection is refused.
pub fn check(package: &CollectionConfigPackage) -> Result<(), CollectionsError> {
    if package.config.len() > MAX_COLLECTIONS {
        return Err(CollectionsError::TooMany {
            count: package.config.len(),
            limit: MAX_COLLECTIONS,
        });
    }
    let collections = package
        .config
        .iter()
        .enumerate()
        .map(|(i, c)| match &c.payload {
            Some(collection_config::Payload::StaticCollectionConfig(s)) => Ok(s.clone()),
            None => Err(shape(format!("collection {i} holds no static collection"))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    validate(&collections)
}

/// The names of the static collections in `package`, in order.
pub fn names(package: &CollectionConfigPackage) -> Vec<String> {
    package
        .config
        .iter()
        .filter_map(|c| {
            // Static collections are the only kind; a config without one has no name.
            let collection_config::Payload::StaticCollectionConfig(s) = c.payload.as_ref()?;
            Some(s.name.clone())
        })
        .collect()
}

fn shape(message: String) -> CollectionsError {
    CollectionsError::Shape { message }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The fields of one JSON object, looked up as Go does: case-insensitively. A key given twice
/// in different cases is refused rather than resolved by order.
struct Fields<'a> {
    map: &'a Map<String, Value>,
    at: String,
}

impl<'a> Fields<'a> {
    fn get(&self, field: &str) -> Result<Option<&'a Value>, CollectionsError> {
        let mut found = self
            .map
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(field));
        let first = found.next();
        if let Some((other, _)) = found.next() {
            return Err(shape(format!(
                "{}: {field} is given twice (as {:?} and {other:?}; keys match case-insensitively)",
                self.at,
                first.map_or("", |(k, _)| k.as_str())
            )));
        }
        Ok(first.map(|(_, v)| v).filter(|v| !v.is_null()))
    }

    fn wrong(&self, field: &str, expected: &str, value: &Value) -> CollectionsError {
        shape(format!(
            "{}: {field} must be {expected}, found {value}",
            self.at
        ))
    }

    fn string(&self, field: &str) -> Result<String, CollectionsError> {
        match self.get(field)? {
            None => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(self.wrong(field, "a string", other)),
        }
    }

    fn bool(&self, field: &str) -> Result<bool, CollectionsError> {
        match self.get(field)? {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(self.wrong(field, "true or false", other)),
        }
    }

    fn int32(&self, field: &str) -> Result<Option<i32>, CollectionsError> {
        self.get(field)?
            .map(|v| {
                v.as_i64()
                    .and_then(|n| i32::try_from(n).ok())
                    .ok_or_else(|| self.wrong(field, "a whole number that fits in int32", v))
            })
            .transpose()
    }

    fn uint64(&self, field: &str) -> Result<u64, CollectionsError> {
        self.get(field)?.map_or(Ok(0), |v| {
            v.as_u64()
                .ok_or_else(|| self.wrong(field, "a whole number, not negative", v))
        })
    }
}

fn collection(index: usize, item: &Value) -> Result<StaticCollectionConfig, CollectionsError> {
    let empty = Map::new();
    let map = match item {
        Value::Object(map) => map,
        // Go leaves a `null` element at its zero value.
        Value::Null => &empty,
        other => {
            return Err(shape(format!(
                "collection {index}: expected an object, found {}",
                kind(other)
            )));
        }
    };
    let fields = Fields {
        map,
        at: format!("collection {index}"),
    };
    let name = fields.string("name")?;
    let fields = Fields {
        at: format!("collection {index} ({name:?})"),
        ..fields
    };
    let policy_text = fields.string("policy")?;
    let member_policy = policy::parse(&policy_text).map_err(|source| CollectionsError::Policy {
        policy: policy_text.clone(),
        source,
    })?;
    let endorsement_policy = endorsement(&fields)?;
    Ok(StaticCollectionConfig {
        required_peer_count: fields.int32("requiredPeerCount")?.unwrap_or(0),
        maximum_peer_count: fields.int32("maxPeerCount")?.unwrap_or(1),
        block_to_live: fields.uint64("blockToLive")?,
        member_only_read: fields.bool("memberOnlyRead")?,
        member_only_write: fields.bool("memberOnlyWrite")?,
        member_orgs_policy: Some(CollectionPolicyConfig {
            payload: Some(collection_policy_config::Payload::SignaturePolicy(
                member_policy,
            )),
        }),
        endorsement_policy,
        name,
    })
}

/// The optional `endorsementPolicy`: an empty object (or none) sets no policy.
fn endorsement(fields: &Fields<'_>) -> Result<Option<ApplicationPolicy>, CollectionsError> {
    let map = match fields.get("endorsementPolicy")? {
        None => return Ok(None),
        Some(Value::Object(map)) => map,
        Some(other) => return Err(fields.wrong("endorsementPolicy", "an object", other)),
    };
    let inner = Fields {
        map,
        at: format!("{}: endorsementPolicy", fields.at),
    };
    let signature_policy = inner.string("signaturePolicy")?;
    let channel_config_policy = inner.string("channelConfigPolicy")?;
    if signature_policy.is_empty() && channel_config_policy.is_empty() {
        return Ok(None);
    }
    policy::application_policy(Some(&signature_policy), Some(&channel_config_policy))
        .map(Some)
        .map_err(|source| CollectionsError::EndorsementPolicy {
            signature_policy,
            channel_config_policy,
            source,
        })
}

/// Fabric's collection name pattern, `^[A-Za-z0-9-]+([A-Za-z0-9_-]+)*$`.
fn valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'-')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The peer's checks of a definition's collections, in its order.
fn validate(collections: &[StaticCollectionConfig]) -> Result<(), CollectionsError> {
    let mut seen = HashSet::new();
    for c in collections {
        if !valid_name(&c.name) {
            return Err(CollectionsError::InvalidName {
                name: c.name.clone(),
            });
        }
        if !seen.insert(c.name.as_str()) {
            return Err(CollectionsError::Duplicate {
                name: c.name.clone(),
            });
        }
        if c.maximum_peer_count < c.required_peer_count {
            return Err(CollectionsError::PeerCounts {
                name: c.name.clone(),
                maximum: c.maximum_peer_count,
                required: c.required_peer_count,
            });
        }
        if c.required_peer_count < 0 {
            return Err(CollectionsError::NegativeRequired {
                name: c.name.clone(),
                required: c.required_peer_count,
            });
        }
        let rule = match &c.member_orgs_policy {
            Some(CollectionPolicyConfig {
                payload: Some(collection_policy_config::Payload::SignaturePolicy(envelope)),
            }) => envelope.rule.as_ref(),
            _ => None,
        };
        if let Some(n) = rule.and_then(first_non_or) {
            return Err(CollectionsError::MemberPolicy {
                name: c.name.clone(),
                n,
            });
        }
    }
    Ok(())
}

/// The threshold of the first gate (depth first) that is not an OR, if any.
fn first_non_or(rule: &SignaturePolicy) -> Option<i32> {
    match &rule.r#type {
        Some(Rule::NOutOf(gate)) if gate.n != 1 => Some(gate.n),
        Some(Rule::NOutOf(gate)) => gate.rules.iter().find_map(first_non_or),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::protos::application_policy;

    fn only(package: &CollectionConfigPackage) -> &StaticCollectionConfig {
        match &package.config[..] {
            [
                CollectionConfig {
                    payload: Some(collection_config::Payload::StaticCollectionConfig(c)),
                },
            ] => c,
            other => panic!("expected one collection, got {other:?}"),
        }
    }

    fn error(json: &str) -> String {
        proto::error_chain(&parse(json.as_bytes()).expect_err(json))
    }

    #[test]
    fn a_full_configuration_becomes_fabrics_package() {
        let json = r#"[
            {
                "name": "prices",
                "policy": "OR('Org1MSP.member', 'Org2MSP.member')",
                "requiredPeerCount": 1,
                "maxPeerCount": 3,
                "blockToLive": 1000000,
                "memberOnlyRead": true,
                "memberOnlyWrite": false,
                "endorsementPolicy": { "signaturePolicy": "AND('Org1MSP.peer', 'Org2MSP.peer')" },
                "comment": "ignored, as Go ignores unknown keys"
            },
            { "Name": "shipping-2_b", "POLICY": "OR('Org1MSP.member')",
              "endorsementPolicy": { "channelConfigPolicy": "/Channel/Application/Writers" } },
            { "name": "defaults", "policy": "OR('Org1MSP.member')",
              "requiredPeerCount": null, "endorsementPolicy": {} }
        ]"#;
        let package = parse(json.as_bytes()).unwrap();
        assert_eq!(names(&package), ["prices", "shipping-2_b", "defaults"]);
        let statics: Vec<&StaticCollectionConfig> = package
            .config
            .iter()
            .map(|c| match &c.payload {
                Some(collection_config::Payload::StaticCollectionConfig(s)) => s,
                None => panic!("no payload"),
            })
            .collect();
        let prices = statics[0];
        assert_eq!(
            (
                prices.required_peer_count,
                prices.maximum_peer_count,
                prices.block_to_live,
                prices.member_only_read,
                prices.member_only_write
            ),
            (1, 3, 1_000_000, true, false)
        );
        assert_eq!(
            prices.member_orgs_policy,
            Some(CollectionPolicyConfig {
                payload: Some(collection_policy_config::Payload::SignaturePolicy(
                    policy::parse("OR('Org1MSP.member', 'Org2MSP.member')").unwrap()
                )),
            })
        );
        assert_eq!(
            prices.endorsement_policy,
            Some(
                policy::application_policy(Some("AND('Org1MSP.peer', 'Org2MSP.peer')"), None)
                    .unwrap()
            )
        );
        assert_eq!(
            statics[1]
                .endorsement_policy
                .as_ref()
                .and_then(|p| p.r#type.clone()),
            Some(application_policy::Type::ChannelConfigPolicyReference(
                "/Channel/Application/Writers".into()
            ))
        );
        // Fabric's defaults: requiredPeerCount 0, maxPeerCount 1, no endorsement policy.
        for c in &statics[1..] {
            assert_eq!(
                (c.required_peer_count, c.maximum_peer_count, c.block_to_live),
                (0, 1, 0)
            );
        }
        assert_eq!(statics[2].endorsement_policy, None);
        // Nothing at all is an empty package, as in Go.
        assert!(parse(b"[]").unwrap().config.is_empty());
        assert!(parse(b"null").unwrap().config.is_empty());
    }

    #[test]
    fn the_peers_checks_with_fabrics_messages() {
        let one = |fields: &str| format!(r#"[{{"policy": "OR('A.member')", {fields}}}]"#);
        assert_eq!(
            error(&one(r#""name": "_private""#)),
            "invalid collection name '_private'. Names can only consist of alphanumerics, '_', and '-' and cannot begin with '_'"
        );
        assert!(
            error(&one(r#""name": "has space""#))
                .starts_with("invalid collection name 'has space'")
        );
        assert!(error(&one(r#""name": """#)).starts_with("invalid collection name ''"));
        assert!(error(&one(r#""name": "dot.ted""#)).starts_with("invalid collection name"));
        let leading_dash = parse(one(r#""name": "-ok_1""#).as_bytes()).unwrap();
        assert_eq!(only(&leading_dash).name, "-ok_1");
        assert_eq!(
            error(
                r#"[{"name": "a", "policy": "OR('A.member')"}, {"name": "a", "policy": "OR('B.member')"}]"#
            ),
            "collection-name: a -- found duplicate in collection configuration"
        );
        assert_eq!(
            error(&one(
                r#""name": "a", "requiredPeerCount": 3, "maxPeerCount": 2"#
            )),
            "collection-name: a -- maximum peer count (2) cannot be less than the required peer count (3)"
        );
        assert_eq!(
            error(&one(
                r#""name": "a", "requiredPeerCount": -1, "maxPeerCount": 2"#
            )),
            "collection-name: a -- requiredPeerCount (-1) cannot be less than zero"
        );
        assert_eq!(
            error(r#"[{"name": "a", "policy": "OR('A.member', AND('B.member', 'C.member'))"}]"#),
            "collection-name: a -- error in member org policy: signature policy is not an OR concatenation, NOutOf 2"
        );
    }

    #[test]
    fn bad_policies_and_bad_json_are_explained() {
        let e = error(r#"[{"name": "a", "policy": "barf"}]"#);
        assert!(e.starts_with("invalid policy barf: "), "{e}");
        assert!(e.contains("unrecognized token 'barf'"), "{e}");
        assert!(error(r#"[{"name": "a"}]"#).starts_with("invalid policy : Unexpected end"));
        let e = error(
            r#"[{"name": "a", "policy": "OR('A.member')", "endorsementPolicy":
                {"signaturePolicy": "OR('A.member')", "channelConfigPolicy": "/Channel/Application/Endorsement"}}]"#,
        );
        assert_eq!(
            e,
            "invalid endorsement policy [&chaincode.endorsementPolicy{ChannelConfigPolicy:\"/Channel/Application/Endorsement\", SignaturePolicy:\"OR('A.member')\"}]: cannot specify both \"--signature-policy\" and \"--channel-config-policy\""
        );
        let e = error(
            r#"[{"name": "a", "policy": "OR('A.member')", "endorsementPolicy": {"signaturePolicy": "invalid"}}]"#,
        );
        assert!(e.contains("invalid signature policy: invalid"), "{e}");
        let e = error("[{\"name\": \"a\",}]");
        assert!(
            e.starts_with("could not parse the collection configuration: "),
            "{e}"
        );
        assert!(e.contains("line 1"), "{e}");
        for (json, says) in [
            (
                r#"{"name": "a"}"#,
                "expected an array of collections, found an object",
            ),
            (
                r#"["a"]"#,
                "collection 0: expected an object, found a string",
            ),
            (
                r#"[{"name": 7}]"#,
                "collection 0: name must be a string, found 7",
            ),
            (
                r#"[{"name": "a", "policy": "OR('A.member')", "requiredPeerCount": 1.5}]"#,
                "requiredPeerCount must be a whole number that fits in int32, found 1.5",
            ),
            (
                r#"[{"name": "a", "policy": "OR('A.member')", "maxPeerCount": 2147483648}]"#,
                "maxPeerCount must be a whole number that fits in int32",
            ),
            (
                r#"[{"name": "a", "policy": "OR('A.member')", "blockToLive": -1}]"#,
                "blockToLive must be a whole number, not negative, found -1",
            ),
            (
                r#"[{"name": "a", "policy": "OR('A.member')", "memberOnlyRead": "yes"}]"#,
                "memberOnlyRead must be true or false",
            ),
            (
                r#"[{"name": "a", "NAME": "b", "policy": "OR('A.member')"}]"#,
                "name is given twice",
            ),
        ] {
            let e = error(json);
            assert!(e.contains(says), "{json}: {e}");
        }
    }

    #[test]
    fn input_is_bounded() {
        let big = vec![b' '; MAX_CONFIG_BYTES + 1];
        assert!(matches!(
            parse(&big),
            Err(CollectionsError::TooLarge { size, .. }) if size == MAX_CONFIG_BYTES + 1
        ));
        let item = r#"{"name": "c", "policy": "OR('A.member')"}"#;
        let many = format!("[{}]", vec![item; MAX_COLLECTIONS + 1].join(","));
        assert_eq!(
            error(&many),
            format!(
                "the collection configuration has {} collections; at most {MAX_COLLECTIONS} are taken",
                MAX_COLLECTIONS + 1
            )
        );
        // Deeply nested JSON is refused by the JSON reader, not by a stack overflow.
        let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(error(&nested).starts_with("could not parse the collection configuration"));
    }
}
