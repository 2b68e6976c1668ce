//! Fabric's rules for the names a client gives: channels, chaincode names, versions, labels.
//! Everything a client names is checked here before it reaches a record, a folder or a log
//! line; a refusal states the rule.
//!
//! ```
//! use peer::names;
//! assert!(names::chaincode("asset-transfer_basic").is_ok());
//! assert!(names::chaincode("a--b").is_err());
//! assert!(names::version("1.0+build.7").is_ok());
//! assert!(names::version("1\nFAKE LOG LINE").is_err());
//! assert!(names::channel("mychannel").is_ok());
//! assert!(names::channel("MyChannel").is_err());
//! ```

/// Why a name is refused: what it names, the text (quoted, escaped) and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {text:?}: {rule}")]
pub struct Invalid {
    /// `chaincode name`, `version`, `channel name`, `label`.
    pub what: &'static str,
    /// The text refused.
    pub text: String,
    /// The rule it breaks.
    pub rule: &'static str,
}

fn refuse(what: &'static str, text: &str, rule: &'static str) -> Invalid {
    // Bounded, so a megabyte of name does not become a megabyte of error.
    let text: String = text.chars().take(128).collect();
    Invalid { what, text, rule }
}

/// The longest name or version accepted (Fabric bounds neither; we do, at 128 bytes).
pub const MAX_LEN: usize = 128;

/// A chaincode name: `^[a-zA-Z0-9]+([-_][a-zA-Z0-9]+)*$`.
pub fn chaincode(name: &str) -> Result<(), Invalid> {
    const RULE: &str = "a chaincode name is letters and digits, in groups joined by single '-' or '_' \
                        (^[a-zA-Z0-9]+([-_][a-zA-Z0-9]+)*$), at most 128 characters";
    let mut previous_separator = true;
    for b in name.bytes() {
        let separator = matches!(b, b'-' | b'_');
        if !(b.is_ascii_alphanumeric() || separator) || (separator && previous_separator) {
            return Err(refuse("chaincode name", name, RULE));
        }
        previous_separator = separator;
    }
    if name.is_empty() || previous_separator || name.len() > MAX_LEN {
        return Err(refuse("chaincode name", name, RULE));
    }
    Ok(())
}

/// A chaincode version: `^[A-Za-z0-9_.+-]+$`.
pub fn version(version: &str) -> Result<(), Invalid> {
    const RULE: &str = "a version is letters, digits and '_' '.' '+' '-' (^[A-Za-z0-9_.+-]+$), \
                        at most 128 characters";
    let ok = !version.is_empty()
        && version.len() <= MAX_LEN
        && version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'+' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(refuse("version", version, RULE))
    }
}

/// A channel name: `^[a-z][a-z0-9.-]*$`, shorter than 250 characters.
pub fn channel(channel: &str) -> Result<(), Invalid> {
    const RULE: &str = "a channel name starts with a lowercase letter and holds lowercase letters, \
                        digits, '.' and '-' (^[a-z][a-z0-9.-]*$), fewer than 250 characters";
    let mut bytes = channel.bytes();
    let ok = bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-'))
        && channel.len() < 250;
    if ok {
        Ok(())
    } else {
        Err(refuse("channel name", channel, RULE))
    }
}

/// A package label: `^[[:alnum:]][[:alnum:]_.+-]*$`.
pub fn label(label: &str) -> Result<(), Invalid> {
    const RULE: &str = "a label starts with a letter or digit and holds letters, digits and \
                        '_' '.' '+' '-' (^[[:alnum:]][[:alnum:]_.+-]*$)";
    chaincode_package::validate_label(label).map_err(|_| refuse("label", label, RULE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fabrics_rules() {
        for good in ["a", "kv", "a-b", "a_b-c", "A1", "basic"] {
            assert!(chaincode(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "a--b",
            "a_-b",
            "a:b",
            "a/b",
            "a b",
            "é",
            &"a".repeat(129),
        ] {
            let e = chaincode(bad).unwrap_err();
            assert!(
                e.to_string().contains("^[a-zA-Z0-9]+([-_][a-zA-Z0-9]+)*$"),
                "{e}"
            );
        }
        for good in ["1", "1.0", "v2+b-c_d", "b-c"] {
            assert!(version(good).is_ok(), "{good}");
        }
        for bad in ["", "1\nFAKE", "1/2", "1:2", "1 2"] {
            assert!(version(bad).is_err(), "{bad:?}");
        }
        for good in ["mychannel", "a", "ch-1.x"] {
            assert!(channel(good).is_ok(), "{good}");
        }
        for bad in ["", "1ch", "Ch", "ch_1", "ch/x", &"a".repeat(250)] {
            assert!(channel(bad).is_err(), "{bad}");
        }
        assert!(label("kv_1").is_ok());
        assert!(label("_kv").is_err());
        let long = "x\n".repeat(1000);
        let e = version(&long).unwrap_err().to_string();
        assert!(e.len() < 600 && !e.contains('\n'), "{e}");
    }
}
