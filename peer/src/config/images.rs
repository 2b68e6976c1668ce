//! Fabric's placeholders in image names: `chaincode.builder: $(DOCKER_NS)/fabric-ccenv:$(TWO_DIGIT_VERSION)`.
//!
//! Fabric 2.5 expands four of them in the image keys (`GetDockerImageFromConfig`), with the
//! values its build stamps into the binary: `$(DOCKER_NS)` (`hyperledger`),
//! `$(TWO_DIGIT_VERSION)` (`2.5`), `$(PROJECT_VERSION)` (the release, `2.5.0` here) and
//! `$(ARCH)` (Go's name of the machine: `amd64`, `arm64`, …). Any other `$(…)` would reach
//! Docker as written and fail there; this peer refuses it at start, naming the key.

use anyhow::{Result, bail};
use vm_api::Settings;

/// The keys whose values are image names with placeholders.
pub const IMAGE_KEYS: &[&str] = &[
    "chaincode.builder",
    "chaincode.golang.runtime",
    "chaincode.java.runtime",
    "chaincode.node.runtime",
];

/// `$(DOCKER_NS)`: the namespace of Fabric's images.
pub const DOCKER_NS: &str = "hyperledger";
/// `$(TWO_DIGIT_VERSION)`: the Fabric release line whose images the peer uses.
pub const TWO_DIGIT_VERSION: &str = "2.5";
/// `$(PROJECT_VERSION)`: a Fabric release of that line.
pub const PROJECT_VERSION: &str = "2.5.0";

/// `$(ARCH)`: the machine as Go (and so Fabric's image tags) names it.
pub fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "loongarch64" => "loong64",
        other => other,
    }
}

/// The value of placeholder `name`, if Fabric expands it.
fn placeholder(name: &str) -> Option<&'static str> {
    match name {
        "DOCKER_NS" => Some(DOCKER_NS),
        "TWO_DIGIT_VERSION" => Some(TWO_DIGIT_VERSION),
        "PROJECT_VERSION" => Some(PROJECT_VERSION),
        "ARCH" => Some(arch()),
        _ => None,
    }
}

/// `value` of `key` with its placeholders expanded; an unknown or unclosed one is an error
/// naming the key.
pub fn expand(key: &str, value: &str) -> Result<String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("$(") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find(')') else {
            bail!("invalid configuration {key}: {value:?} has an unclosed $(");
        };
        let name = &after[..end];
        let Some(expansion) = placeholder(name) else {
            let hint = if name.starts_with("BASE_") {
                " ($(BASE_VERSION) and $(BASE_DOCKER_NS) are Fabric 1.x's; 2.x images are \
                 named like $(DOCKER_NS)/fabric-baseos:$(TWO_DIGIT_VERSION))"
            } else {
                ""
            };
            bail!(
                "invalid configuration {key}: $({name}) in {value:?} is not one of Fabric's \
                 placeholders $(DOCKER_NS), $(TWO_DIGIT_VERSION), $(PROJECT_VERSION), $(ARCH){hint}"
            );
        };
        out.push_str(expansion);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Expands the placeholders of every image key in `settings`.
pub fn expand_all(settings: &mut Settings) -> Result<()> {
    for key in IMAGE_KEYS {
        if let Some(value) = settings.get(key).filter(|v| v.contains("$(")) {
            let expanded = expand(key, value)?;
            settings.set(key, expanded);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fabric_placeholders_expand() {
        assert_eq!(
            expand(
                "chaincode.builder",
                "$(DOCKER_NS)/fabric-ccenv:$(TWO_DIGIT_VERSION)"
            )
            .unwrap(),
            "hyperledger/fabric-ccenv:2.5"
        );
        assert_eq!(
            expand("chaincode.golang.runtime", "x/y:$(ARCH)-$(PROJECT_VERSION)").unwrap(),
            format!("x/y:{}-2.5.0", arch())
        );
        assert_eq!(expand("k", "plain:1").unwrap(), "plain:1");
        let mut s = Settings::new().with(
            "chaincode.node.runtime",
            "$(DOCKER_NS)/fabric-nodeenv:$(TWO_DIGIT_VERSION)",
        );
        expand_all(&mut s).unwrap();
        assert_eq!(
            s.get("chaincode.node.runtime"),
            Some("hyperledger/fabric-nodeenv:2.5")
        );
    }

    #[test]
    fn other_placeholders_are_refused_with_their_key() {
        let e = expand("chaincode.node.runtime", "$(REGISTRY)/node:1").unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("chaincode.node.runtime") && text.contains("$(REGISTRY)"),
            "{text}"
        );
        let e = expand(
            "chaincode.golang.runtime",
            "$(BASE_DOCKER_NS)/fabric-baseos:$(ARCH)-$(BASE_VERSION)",
        )
        .unwrap_err();
        assert!(e.to_string().contains("Fabric 1.x"), "{e}");
        assert!(
            expand("chaincode.builder", "x:$(DOCKER_NS")
                .unwrap_err()
                .to_string()
                .contains("unclosed")
        );
        let mut s = Settings::new().with("chaincode.java.runtime", "$(NOPE)");
        assert!(
            expand_all(&mut s)
                .unwrap_err()
                .to_string()
                .contains("chaincode.java.runtime")
        );
    }
}
