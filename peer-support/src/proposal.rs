//! Builds the signed proposals clients send, so that shims find a creator, a timestamp and a
//! transient map where Fabric puts them.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use prost::Message;
use proto::Timestamp;
use proto::common::{ChannelHeader, Header, HeaderType, SignatureHeader};
use proto::msp::SerializedIdentity;
use proto::protos::{
    ChaincodeId, ChaincodeInput, ChaincodeInvocationSpec, ChaincodeProposalPayload, ChaincodeSpec,
    Proposal, SignedProposal,
};
use sha2::{Digest, Sha256};

/// The parts of a chaincode proposal.
#[derive(Debug, Clone, Default)]
pub struct ProposalSpec {
    /// The channel.
    pub channel_id: String,
    /// The chaincode called.
    pub chaincode: String,
    /// The chaincode's version, when the call names one (an instantiate does).
    pub chaincode_version: String,
    /// The invocation's input.
    pub input: ChaincodeInput,
    /// The client's MSP id.
    pub mspid: String,
    /// The client's certificate, PEM.
    pub certificate_pem: Bytes,
    /// Private inputs.
    pub transient: BTreeMap<String, Bytes>,
    /// A random nonce; the transaction id is derived from it and the creator.
    pub nonce: Bytes,
    /// When the proposal was made (now, when `None`).
    pub timestamp: Option<Timestamp>,
}

/// A built proposal.
#[derive(Debug, Clone)]
pub struct BuiltProposal {
    /// The transaction id: hex SHA-256 of nonce and creator, as Fabric computes it.
    pub tx_id: String,
    /// The encoded Proposal, which is what gets signed.
    pub proposal_bytes: Bytes,
    /// The timestamp in the channel header.
    pub timestamp: Timestamp,
}

impl BuiltProposal {
    /// The proposal with `signature` over [`proposal_bytes`](Self::proposal_bytes).
    pub fn signed(&self, signature: impl Into<Bytes>) -> SignedProposal {
        SignedProposal {
            proposal_bytes: self.proposal_bytes.clone(),
            signature: signature.into(),
        }
    }
}

/// The current time as a protobuf timestamp.
pub fn now() -> Timestamp {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

/// Builds the proposal of `spec` (Fabric's `CreateChaincodeProposal`).
pub fn build(spec: &ProposalSpec) -> BuiltProposal {
    let creator = SerializedIdentity {
        mspid: spec.mspid.clone(),
        id_bytes: spec.certificate_pem.clone(),
    }
    .encode_to_vec();
    let tx_id = hex::encode(
        Sha256::new()
            .chain_update(&spec.nonce)
            .chain_update(&creator)
            .finalize(),
    );
    let timestamp = spec.timestamp.unwrap_or_else(now);
    let channel_header = ChannelHeader {
        r#type: HeaderType::EndorserTransaction as i32,
        timestamp: Some(timestamp),
        channel_id: spec.channel_id.clone(),
        tx_id: tx_id.clone(),
        ..ChannelHeader::default()
    };
    let signature_header = SignatureHeader {
        creator: creator.into(),
        nonce: spec.nonce.clone(),
    };
    let header = Header {
        channel_header: channel_header.encode_to_vec().into(),
        signature_header: signature_header.encode_to_vec().into(),
    };
    let invocation = ChaincodeInvocationSpec {
        chaincode_spec: Some(ChaincodeSpec {
            chaincode_id: Some(ChaincodeId {
                name: spec.chaincode.clone(),
                version: spec.chaincode_version.clone(),
                ..ChaincodeId::default()
            }),
            input: Some(spec.input.clone()),
            ..ChaincodeSpec::default()
        }),
    };
    let payload = ChaincodeProposalPayload {
        input: invocation.encode_to_vec().into(),
        transient_map: spec.transient.clone(),
    };
    let proposal = Proposal {
        header: header.encode_to_vec().into(),
        payload: payload.encode_to_vec().into(),
        extension: Bytes::new(),
    };
    BuiltProposal {
        tx_id,
        proposal_bytes: proposal.encode_to_vec().into(),
        timestamp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txid_is_hash_of_nonce_and_creator_and_header_carries_it() {
        let built = build(&ProposalSpec {
            channel_id: "ch".into(),
            chaincode: "kv".into(),
            mspid: "Org1MSP".into(),
            certificate_pem: Bytes::from_static(b"PEM"),
            nonce: Bytes::from_static(b"nonce"),
            ..ProposalSpec::default()
        });
        let creator = SerializedIdentity {
            mspid: "Org1MSP".into(),
            id_bytes: Bytes::from_static(b"PEM"),
        }
        .encode_to_vec();
        let mut h = Sha256::new();
        h.update(b"nonce");
        h.update(&creator);
        assert_eq!(built.tx_id, hex::encode(h.finalize()));
        let proposal = Proposal::decode(built.proposal_bytes.clone()).unwrap();
        let header = Header::decode(proposal.header).unwrap();
        let ch = ChannelHeader::decode(header.channel_header).unwrap();
        assert_eq!(
            (ch.channel_id.as_str(), ch.tx_id.as_str(), ch.r#type),
            ("ch", built.tx_id.as_str(), 3)
        );
    }
}
