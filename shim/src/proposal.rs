//! The parts of a signed proposal a chaincode may ask for, decoded on first use.

use std::collections::BTreeMap;

use bytes::Bytes;
use prost::Message;
use proto::Timestamp;
use proto::common::{ChannelHeader, Header, SignatureHeader};
use proto::protos::{ChaincodeProposalPayload, Proposal, SignedProposal};
use sha2::{Digest, Sha256};

/// Creator, timestamp, transient map and binding of one proposal.
#[derive(Debug)]
pub(crate) struct ProposalParts {
    pub creator: Bytes,
    pub timestamp: Option<Timestamp>,
    pub transient: BTreeMap<String, Bytes>,
    pub binding: Vec<u8>,
}

impl ProposalParts {
    pub(crate) fn decode(signed: Option<&SignedProposal>) -> Result<Self, String> {
        let signed = signed.ok_or("the peer sent no signed proposal")?;
        let proposal = Proposal::decode(signed.proposal_bytes.clone())
            .map_err(|e| format!("cannot decode the proposal: {e}"))?;
        let header = Header::decode(proposal.header.clone())
            .map_err(|e| format!("cannot decode the proposal header: {e}"))?;
        let channel = ChannelHeader::decode(header.channel_header.clone())
            .map_err(|e| format!("cannot decode the channel header: {e}"))?;
        let signature = SignatureHeader::decode(header.signature_header.clone())
            .map_err(|e| format!("cannot decode the signature header: {e}"))?;
        let payload = ChaincodeProposalPayload::decode(proposal.payload.clone())
            .map_err(|e| format!("cannot decode the proposal payload: {e}"))?;
        let mut hash = Sha256::new();
        hash.update(&signature.nonce);
        hash.update(&signature.creator);
        hash.update(channel.epoch.to_le_bytes());
        Ok(Self {
            creator: signature.creator,
            timestamp: channel.timestamp,
            transient: payload.transient_map,
            binding: hash.finalize().to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_every_part_and_reports_the_broken_one() {
        let channel = ChannelHeader {
            r#type: 3,
            timestamp: Some(Timestamp {
                seconds: 7,
                nanos: 1,
            }),
            channel_id: "ch".into(),
            tx_id: "tx".into(),
            ..ChannelHeader::default()
        };
        let signature = SignatureHeader {
            creator: Bytes::from_static(b"me"),
            nonce: Bytes::from_static(b"n"),
        };
        let header = Header {
            channel_header: channel.encode_to_vec().into(),
            signature_header: signature.encode_to_vec().into(),
        };
        let payload = ChaincodeProposalPayload {
            input: Bytes::new(),
            transient_map: [("k".to_owned(), Bytes::from_static(b"v"))].into(),
        };
        let proposal = Proposal {
            header: header.encode_to_vec().into(),
            payload: payload.encode_to_vec().into(),
            extension: Bytes::new(),
        };
        let signed = SignedProposal {
            proposal_bytes: proposal.encode_to_vec().into(),
            signature: Bytes::new(),
        };
        let parts = ProposalParts::decode(Some(&signed)).unwrap();
        assert_eq!(parts.creator, Bytes::from_static(b"me"));
        assert_eq!(parts.timestamp.unwrap().seconds, 7);
        assert_eq!(parts.transient["k"], Bytes::from_static(b"v"));
        let mut expected = Sha256::new();
        expected.update(b"n");
        expected.update(b"me");
        expected.update(0u64.to_le_bytes());
        assert_eq!(parts.binding, expected.finalize().to_vec());

        assert_eq!(
            ProposalParts::decode(None).unwrap_err(),
            "the peer sent no signed proposal"
        );
        let broken = SignedProposal {
            proposal_bytes: Bytes::from_static(b"\xff\xff"),
            signature: Bytes::new(),
        };
        assert!(
            ProposalParts::decode(Some(&broken))
                .unwrap_err()
                .starts_with("cannot decode the proposal:")
        );
    }
}
