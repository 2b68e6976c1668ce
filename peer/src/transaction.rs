//! Reads a client's signed proposal, as Fabric's endorser does: a well-formed header and a
//! transaction id derived from nonce and creator. Who the creator is, and whether the
//! signature is theirs, the caller checks against its MSPs ([`crate::msp::MspManager`]).

use prost::Message;
use proto::Timestamp;
use proto::common::{ChannelHeader, Header, HeaderType, SignatureHeader};
use proto::protos::{
    ChaincodeInput, ChaincodeInvocationSpec, ChaincodeProposalPayload, Proposal, SignedProposal,
};
use sha2::{Digest, Sha256};

/// What a signed proposal asks for.
#[derive(Debug, Clone)]
pub struct Transaction {
    /// The channel.
    pub channel: String,
    /// The transaction id.
    pub tx_id: String,
    /// The chaincode's name.
    pub chaincode: String,
    /// The chaincode's version, when named (instantiate names one).
    pub version: String,
    /// The chaincode's input.
    pub input: ChaincodeInput,
    /// When the client made the proposal.
    pub timestamp: Option<Timestamp>,
    /// The creator: an encoded `msp.SerializedIdentity`.
    pub creator: bytes::Bytes,
}

/// Why a proposal is refused.
#[derive(Debug, thiserror::Error)]
#[error("invalid proposal: {0}")]
pub struct Invalid(pub String);

fn invalid(what: impl std::fmt::Display) -> Invalid {
    Invalid(what.to_string())
}

/// Reads the transaction of `signed`, checking its form (not its signature). The channel is
/// empty for calls that concern no channel (installs).
pub fn check(signed: &SignedProposal) -> Result<Transaction, Invalid> {
    let proposal = Proposal::decode(signed.proposal_bytes.clone())
        .map_err(|e| invalid(format!("cannot decode the proposal: {e}")))?;
    let header = Header::decode(proposal.header.clone())
        .map_err(|e| invalid(format!("cannot decode the header: {e}")))?;
    let channel = ChannelHeader::decode(header.channel_header.clone())
        .map_err(|e| invalid(format!("cannot decode the channel header: {e}")))?;
    let signature = SignatureHeader::decode(header.signature_header.clone())
        .map_err(|e| invalid(format!("cannot decode the signature header: {e}")))?;
    if channel.r#type != HeaderType::EndorserTransaction as i32 {
        return Err(invalid(format!(
            "header type {} is not ENDORSER_TRANSACTION (3)",
            channel.r#type
        )));
    }
    if signature.nonce.is_empty() {
        return Err(invalid("no nonce"));
    }
    let expected = hex::encode(
        Sha256::new()
            .chain_update(&signature.nonce)
            .chain_update(&signature.creator)
            .finalize(),
    );
    if channel.tx_id != expected {
        return Err(invalid(format!(
            "transaction id {:?} is not the hash of nonce and creator",
            channel.tx_id
        )));
    }
    let payload = ChaincodeProposalPayload::decode(proposal.payload.clone())
        .map_err(|e| invalid(format!("cannot decode the payload: {e}")))?;
    let invocation = ChaincodeInvocationSpec::decode(payload.input.clone())
        .map_err(|e| invalid(format!("cannot decode the invocation: {e}")))?;
    let spec = invocation
        .chaincode_spec
        .ok_or_else(|| invalid("no chaincode spec"))?;
    let id = spec
        .chaincode_id
        .ok_or_else(|| invalid("no chaincode id"))?;
    if id.name.is_empty() {
        return Err(invalid("no chaincode name"));
    }
    Ok(Transaction {
        channel: channel.channel_id,
        tx_id: channel.tx_id,
        chaincode: id.name,
        version: id.version,
        input: spec.input.unwrap_or_default(),
        timestamp: channel.timestamp,
        creator: signature.creator,
    })
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use peer_support::proposal::{ProposalSpec, build};

    use super::*;

    fn signed(tamper: impl FnOnce(&mut ProposalSpec)) -> SignedProposal {
        let mut spec = ProposalSpec {
            channel_id: "ch".into(),
            chaincode: "kv".into(),
            mspid: "SampleOrg".into(),
            certificate_pem: Bytes::from_static(b"-----BEGIN CERTIFICATE-----"),
            nonce: Bytes::from_static(b"0123456789abcdef0123"),
            input: ChaincodeInput {
                args: vec![Bytes::from_static(b"get")],
                ..Default::default()
            },
            ..ProposalSpec::default()
        };
        tamper(&mut spec);
        build(&spec).signed(Bytes::from_static(b"signature"))
    }

    #[test]
    fn a_proposal_is_read_and_a_malformed_one_refused() {
        let tx = check(&signed(|_| {})).unwrap();
        assert_eq!((tx.channel.as_str(), tx.chaincode.as_str()), ("ch", "kv"));
        assert_eq!(tx.input.args[0], Bytes::from_static(b"get"));
        let identity = proto::msp::SerializedIdentity::decode(tx.creator).unwrap();
        assert_eq!(identity.mspid, "SampleOrg");
        let mut flipped = signed(|_| {});
        let mut bytes = flipped.proposal_bytes.to_vec();
        bytes.truncate(bytes.len() / 2);
        flipped.proposal_bytes = bytes.into();
        assert!(check(&flipped).is_err());
        assert!(
            check(&signed(|s| s.nonce = Bytes::new()))
                .unwrap_err()
                .to_string()
                .contains("no nonce")
        );
        assert!(
            check(&signed(|s| s.chaincode.clear()))
                .unwrap_err()
                .to_string()
                .contains("no chaincode name")
        );
    }
}
