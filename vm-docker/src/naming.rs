//! Container and image names, by Fabric's rules, so existing tooling recognises them.
//!
//! - pre-name: `<networkId>-<peerId>-<ccid>` with every `:` made `-`, an empty id left out
//!   with its dash; the ccid is a Fabric 2.x package ID (`label:hash`) or a Fabric 1.4
//!   `name:version`, which gives 1.4's `<name>-<version>`;
//! - container name: the pre-name with every character outside `[a-zA-Z0-9-_.]` replaced
//!   by `-` (case kept);
//! - image name: the lowercase container name, `-`, and the hex SHA-256 of the pre-name
//!   (before that replacement); it must be a valid Docker repository name.

use sha2::{Digest, Sha256};
use vm_api::{Ccid, Error, Result};

/// The names of one chaincode's container and image on one peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// The container name.
    pub container: String,
    /// The image name (a repository name; the tag is `latest`).
    pub image: String,
}

/// `<networkId>-<peerId>-<ccid>`, empty ids left out, every `:` made `-`.
fn pre_name(network_id: &str, peer_id: &str, ccid: &Ccid) -> String {
    let ccid = ccid.registered_name().replace(':', "-");
    [network_id, peer_id, &ccid]
        .iter()
        .filter(|part| !part.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("-")
}

fn container_name(pre: &str) -> String {
    pre.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Docker's repository name rule: `^[a-z0-9]+(([._-][a-z0-9]+)+)?$`.
fn is_valid_repository(name: &str) -> bool {
    let mut after_separator = true;
    for c in name.chars() {
        match c {
            'a'..='z' | '0'..='9' => after_separator = false,
            '.' | '_' | '-' if !after_separator => after_separator = true,
            _ => return false,
        }
    }
    !name.is_empty() && !after_separator
}

/// The container and image names of `ccid` on peer `peer_id` of network `network_id`.
pub fn names(network_id: &str, peer_id: &str, ccid: &Ccid) -> Result<Names> {
    let pre = pre_name(network_id, peer_id, ccid);
    let container = container_name(&pre);
    let image = format!(
        "{}-{}",
        container.to_lowercase(),
        hex::encode(Sha256::digest(pre.as_bytes()))
    );
    if !is_valid_repository(&image) {
        return Err(Error::InvalidName {
            name: image,
            rule: "breaks Docker's repository naming rules (^[a-z0-9]+(([._-][a-z0-9]+)+)?$)"
                .into(),
        });
    }
    Ok(Names { container, image })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(text: &str) -> String {
        hex::encode(Sha256::digest(text.as_bytes()))
    }

    #[test]
    fn network_and_peer() {
        let n = names("dev", "peer0", &Ccid::new("mycc", "1.0")).unwrap();
        assert_eq!(n.container, "dev-peer0-mycc-1.0");
        assert_eq!(
            n.image,
            format!("dev-peer0-mycc-1.0-{}", sha("dev-peer0-mycc-1.0"))
        );
    }

    #[test]
    fn peer_only() {
        let n = names("", "peer1", &Ccid::new("mycc", "1.0")).unwrap();
        assert_eq!(n.container, "peer1-mycc-1.0");
        assert_eq!(n.image, format!("peer1-mycc-1.0-{}", sha("peer1-mycc-1.0")));
    }

    #[test]
    fn case_is_kept_in_containers_and_lowered_in_images() {
        let n = names("Dev", "Peer0", &Ccid::new("myCC", "1.0")).unwrap();
        assert_eq!(n.container, "Dev-Peer0-myCC-1.0");
        assert_eq!(
            n.image,
            format!("dev-peer0-mycc-1.0-{}", sha("Dev-Peer0-myCC-1.0"))
        );
    }

    #[test]
    fn other_characters_become_dashes_but_the_hash_is_of_the_original() {
        let n = names("Dev$dev", "Peer*0", &Ccid::new("myCC", "1.0")).unwrap();
        assert_eq!(n.container, "Dev-dev-Peer-0-myCC-1.0");
        assert_eq!(
            n.image,
            format!("dev-dev-peer-0-mycc-1.0-{}", sha("Dev$dev-Peer*0-myCC-1.0"))
        );
    }

    /// Fabric 2.x names for package IDs; the expected names were computed outside this code
    /// from Fabric's rule.
    #[test]
    fn package_ids_as_fabric_2_names_them() {
        let hash = "5f3a8e7a0f2c1b4d9e6a7c8b0d1e2f3a4b5c6d7e8f9012345678901234567890";
        let n = names("dev", "peer0", &Ccid::parse(&format!("kv_1.0:{hash}"))).unwrap();
        assert_eq!(n.container, format!("dev-peer0-kv_1.0-{hash}"));
        assert_eq!(
            n.image,
            format!(
                "dev-peer0-kv_1.0-{hash}-5106a1f1ddc060aaf1c57ca25a5394ad437a79e3b57fbd0fd5adc25b70d8242f"
            )
        );
        let n = names("", "Org1Peer", &Ccid::parse(&format!("My+CC:{hash}"))).unwrap();
        assert_eq!(n.container, format!("Org1Peer-My-CC-{hash}"));
        assert_eq!(
            n.image,
            format!(
                "org1peer-my-cc-{hash}-9c26ede1e7f12b91d416dacf29c40f5f3bd7e8dae42ce737b51c0ebac1dc0edb"
            )
        );
    }

    #[test]
    fn names_breaking_dockers_rule_are_an_error() {
        let e = names("dev-", "peer0", &Ccid::new("mycc", "1.0")).unwrap_err();
        assert!(
            e.to_string()
                .contains("breaks Docker's repository naming rules"),
            "{e}"
        );
        assert!(names("", "", &Ccid::new("_cc", "1")).is_err());
        assert!(is_valid_repository("a.b_c-d"));
        assert!(!is_valid_repository("a..b"));
        assert!(!is_valid_repository("a-"));
    }
}
