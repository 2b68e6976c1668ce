//! Encodings of the lifecycle, policy and collection messages checked against bytes written by
//! hand from Fabric's field numbers (`tag = field << 3 | wire type`), so that a wrong field
//! number or type in our `.proto` files fails here.

#![allow(unused_crate_dependencies, clippy::unwrap_used, clippy::expect_used)]

use proto::common::signature_policy::{NOutOf, Type as Rule};
use proto::common::{MspPrincipal, MspRole, SignaturePolicy, SignaturePolicyEnvelope, msp_role};
use proto::lifecycle::{ApproveChaincodeDefinitionForMyOrgArgs, ChaincodeSource, chaincode_source};
use proto::prost::Message;
use proto::protos::{
    ApplicationPolicy, CollectionConfig, CollectionConfigPackage, CollectionPolicyConfig,
    StaticCollectionConfig, application_policy, collection_config, collection_policy_config,
};

/// Hex with spaces and comments (`# …` to the end of a line) removed.
fn hand(text: &str) -> Vec<u8> {
    let digits: String = text
        .lines()
        .map(|line| line.split('#').next().unwrap_or(""))
        .flat_map(|line| line.chars().filter(char::is_ascii_hexdigit))
        .collect();
    hex::decode(digits).expect("even number of hex digits")
}

fn principal(msp: &str, role: msp_role::MspRoleType) -> MspPrincipal {
    MspPrincipal {
        principal_classification: 0, // ROLE
        principal: MspRole {
            msp_identifier: msp.into(),
            role: role as i32,
        }
        .encode_to_vec()
        .into(),
    }
}

fn signed_by(index: i32) -> SignaturePolicy {
    SignaturePolicy {
        r#type: Some(Rule::SignedBy(index)),
    }
}

#[test]
fn signature_policy_envelope_matches_hand_encoding() {
    // AND('A.member', 'B.admin') as Fabric's policydsl builds it.
    let envelope = SignaturePolicyEnvelope {
        version: 0,
        rule: Some(SignaturePolicy {
            r#type: Some(Rule::NOutOf(NOutOf {
                n: 2,
                rules: vec![signed_by(0), signed_by(1)],
            })),
        }),
        identities: vec![
            principal("A", msp_role::MspRoleType::Member),
            principal("B", msp_role::MspRoleType::Admin),
        ],
    };
    let expected = hand(
        "
        12 0c                 # envelope.rule (2, LEN), 12 bytes
          12 0a               #   SignaturePolicy.n_out_of (2, LEN)
            08 02             #     NOutOf.n (1) = 2
            12 02 08 00       #     NOutOf.rules (2): signed_by (1) = 0, present though zero
            12 02 08 01       #     NOutOf.rules (2): signed_by (1) = 1
        1a 05                 # envelope.identities (3, LEN)
          12 03               #   MSPPrincipal.principal (2); classification ROLE = 0 omitted
            0a 01 41          #     MSPRole.msp_identifier (1) = A; role MEMBER = 0 omitted
        1a 07                 # envelope.identities (3, LEN)
          12 05               #   MSPPrincipal.principal (2)
            0a 01 42          #     MSPRole.msp_identifier (1) = B
            10 01             #     MSPRole.role (2) = ADMIN
        ",
    );
    assert_eq!(
        hex::encode(envelope.encode_to_vec()),
        hex::encode(&expected)
    );
    assert_eq!(
        SignaturePolicyEnvelope::decode(expected.as_slice()).unwrap(),
        envelope
    );

    // version is field 1 (varint).
    let versioned = SignaturePolicyEnvelope {
        version: 1,
        ..Default::default()
    };
    assert_eq!(versioned.encode_to_vec(), hand("08 01"));
}

#[test]
fn approve_for_my_org_args_match_hand_encoding() {
    let collection = StaticCollectionConfig {
        name: "p".into(),
        member_orgs_policy: Some(CollectionPolicyConfig {
            payload: Some(collection_policy_config::Payload::SignaturePolicy(
                SignaturePolicyEnvelope {
                    version: 0,
                    rule: Some(signed_by(0)),
                    identities: vec![principal("A", msp_role::MspRoleType::Member)],
                },
            )),
        }),
        required_peer_count: 1,
        maximum_peer_count: 2,
        block_to_live: 3,
        member_only_read: true,
        member_only_write: true,
        endorsement_policy: Some(ApplicationPolicy {
            r#type: Some(application_policy::Type::ChannelConfigPolicyReference(
                "/E".into(),
            )),
        }),
    };
    let validation = ApplicationPolicy {
        r#type: Some(application_policy::Type::ChannelConfigPolicyReference(
            "/C".into(),
        )),
    };
    let args = ApproveChaincodeDefinitionForMyOrgArgs {
        sequence: 1,
        name: "cc".into(),
        version: "1.0".into(),
        endorsement_plugin: "escc".into(),
        validation_plugin: "vscc".into(),
        validation_parameter: validation.encode_to_vec().into(),
        collections: Some(CollectionConfigPackage {
            config: vec![CollectionConfig {
                payload: Some(collection_config::Payload::StaticCollectionConfig(
                    collection,
                )),
            }],
        }),
        init_required: true,
        source: Some(ChaincodeSource {
            r#type: Some(chaincode_source::Type::LocalPackage(
                chaincode_source::Local {
                    package_id: "l:1".into(),
                },
            )),
        }),
    };
    let expected = hand(
        "
        08 01                 # sequence (1) = 1
        12 02 63 63           # name (2) = cc
        1a 03 31 2e 30        # version (3) = 1.0
        22 04 65 73 63 63     # endorsement_plugin (4) = escc
        2a 04 76 73 63 63     # validation_plugin (5) = vscc
        32 04                 # validation_parameter (6): an ApplicationPolicy
          12 02 2f 43         #   channel_config_policy_reference (2) = /C
        3a 26                 # collections (7): CollectionConfigPackage
          0a 24               #   config (1): CollectionConfig
            0a 22             #     static_collection_config (1)
              0a 01 70        #       name (1) = p
              12 0d           #       member_orgs_policy (2): CollectionPolicyConfig
                0a 0b         #         signature_policy (1): SignaturePolicyEnvelope
                  12 02 08 00 #           rule (2): signed_by (1) = 0
                  1a 05 12 03 0a 01 41 #  identities (3): A.member
              18 01           #       required_peer_count (3) = 1
              20 02           #       maximum_peer_count (4) = 2
              28 03           #       block_to_live (5) = 3
              30 01           #       member_only_read (6)
              38 01           #       member_only_write (7)
              42 04           #       endorsement_policy (8): ApplicationPolicy
                12 02 2f 45   #         channel_config_policy_reference (2) = /E
        40 01                 # init_required (8)
        4a 07                 # source (9): ChaincodeSource
          12 05               #   local_package (2): Local
            0a 03 6c 3a 31    #     package_id (1) = l:1
        ",
    );
    assert_eq!(hex::encode(args.encode_to_vec()), hex::encode(&expected));
    assert_eq!(
        ApproveChaincodeDefinitionForMyOrgArgs::decode(expected.as_slice()).unwrap(),
        args
    );

    // The other arm of ChaincodeSource is field 1, an empty message.
    let unavailable = ChaincodeSource {
        r#type: Some(chaincode_source::Type::Unavailable(
            chaincode_source::Unavailable {},
        )),
    };
    assert_eq!(unavailable.encode_to_vec(), hand("0a 00"));
}
