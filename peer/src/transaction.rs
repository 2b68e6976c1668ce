//! Checks a client's signed proposal and reads what it asks for, as Fabric's endorser does:
//! a well-formed header, a transaction id derived from nonce and creator, and a signature by
//! the creator's certificate.

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
    /// The creator's MSP id.
    pub mspid: String,
}

/// Why a proposal is refused.
#[derive(Debug, thiserror::Error)]
#[error("invalid proposal: {0}")]
pub struct Invalid(pub String);

fn invalid(what: impl std::fmt::Display) -> Invalid {
    Invalid(what.to_string())
}

/// Checks `signed` and reads its transaction.
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
    if channel.channel_id.is_empty() {
        return Err(invalid("no channel"));
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
    let identity = crate::identity::verify(
        &signature.creator,
        &signed.proposal_bytes,
        &signed.signature,
    )
    .map_err(|e| invalid(format!("{e:#}")))?;
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
        mspid: identity.mspid,
    })
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use peer_support::proposal::{ProposalSpec, build};

    use super::*;
    use crate::identity::Identity;

    fn signed(id: &Identity, tamper: impl FnOnce(&mut ProposalSpec)) -> SignedProposal {
        let mut spec = ProposalSpec {
            channel_id: "ch".into(),
            chaincode: "kv".into(),
            mspid: id.mspid.clone(),
            certificate_pem: Bytes::from(id.cert_pem.clone()),
            nonce: Bytes::from_static(b"0123456789abcdef0123"),
            input: ChaincodeInput {
                args: vec![Bytes::from_static(b"get")],
                ..Default::default()
            },
            ..ProposalSpec::default()
        };
        tamper(&mut spec);
        let built = build(&spec);
        built.signed(id.sign(&built.proposal_bytes).unwrap())
    }

    #[test]
    fn a_signed_proposal_is_read_and_a_tampered_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let id = Identity::load_or_create(dir.path(), "SampleOrg").unwrap();
        let tx = check(&signed(&id, |_| {})).unwrap();
        assert_eq!(
            (
                tx.channel.as_str(),
                tx.chaincode.as_str(),
                tx.mspid.as_str()
            ),
            ("ch", "kv", "SampleOrg")
        );
        assert_eq!(tx.input.args[0], Bytes::from_static(b"get"));
        let mut bad = signed(&id, |_| {});
        bad.signature = Bytes::from_static(b"\x30\x06\x02\x01\x01\x02\x01\x01");
        assert!(check(&bad).unwrap_err().to_string().contains("signature"));
        let mut flipped = signed(&id, |_| {});
        let mut bytes = flipped.proposal_bytes.to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        flipped.proposal_bytes = bytes.into();
        assert!(check(&flipped).is_err());
        assert!(
            check(&signed(&id, |s| s.channel_id.clear()))
                .unwrap_err()
                .to_string()
                .contains("no channel")
        );
    }
}
