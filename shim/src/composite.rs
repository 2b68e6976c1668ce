//! Composite keys: an object type and attributes packed into one key, so related keys can be
//! found by prefix. Fabric's layout: `U+0000 type U+0000 attr1 U+0000 attr2 U+0000 …`.

use crate::{Error, Result};

/// Starts every composite key and separates its parts.
pub const COMPOSITE_KEY_NAMESPACE: char = '\u{0000}';
/// The highest code point; ends the range of keys that share a composite prefix.
pub const MAX_UNICODE_RUNE: char = '\u{10FFFF}';
/// Start key of simple-key ranges from the beginning: skips the composite keys.
pub const EMPTY_KEY_SUBSTITUTE: &str = "\u{0001}";

fn check_part(part: &str) -> Result<()> {
    if part.contains(COMPOSITE_KEY_NAMESPACE) || part.contains(MAX_UNICODE_RUNE) {
        return Err(Error::InvalidArgument(format!(
            "composite key part {part:?} must not contain U+0000 or U+10FFFF"
        )));
    }
    Ok(())
}

/// Packs `object_type` and `attributes` into a composite key.
pub fn create_composite_key<S: AsRef<str>>(object_type: &str, attributes: &[S]) -> Result<String> {
    check_part(object_type)?;
    let mut key = String::with_capacity(
        2 + object_type.len()
            + attributes
                .iter()
                .map(|a| a.as_ref().len() + 1)
                .sum::<usize>(),
    );
    key.push(COMPOSITE_KEY_NAMESPACE);
    key.push_str(object_type);
    key.push(COMPOSITE_KEY_NAMESPACE);
    for attribute in attributes {
        let attribute = attribute.as_ref();
        check_part(attribute)?;
        key.push_str(attribute);
        key.push(COMPOSITE_KEY_NAMESPACE);
    }
    Ok(key)
}

/// Unpacks a composite key into its object type and attributes.
pub fn split_composite_key(key: &str) -> Result<(String, Vec<String>)> {
    let rest = key
        .strip_prefix(COMPOSITE_KEY_NAMESPACE)
        .ok_or_else(|| Error::InvalidArgument(format!("{key:?} is not a composite key")))?;
    let mut parts = rest.split(COMPOSITE_KEY_NAMESPACE);
    let object_type = parts.next().unwrap_or_default().to_owned();
    let mut attributes: Vec<String> = parts.map(str::to_owned).collect();
    // The key ends with a separator, which leaves one empty part.
    if attributes.pop().is_none_or(|last| !last.is_empty()) {
        return Err(Error::InvalidArgument(format!(
            "{key:?} is not a composite key: it must end with U+0000"
        )));
    }
    Ok((object_type, attributes))
}

/// Checks that keys used in a simple-key range are not composite keys.
pub(crate) fn check_simple_keys(keys: &[&str]) -> Result<()> {
    for key in keys {
        if key.starts_with(COMPOSITE_KEY_NAMESPACE) {
            return Err(Error::InvalidArgument(format!(
                "range key {key:?} starts with U+0000, which is reserved for composite keys"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_in_fabric_layout() {
        let key = create_composite_key("car", &["red", "1"]).unwrap();
        assert_eq!(key, "\u{0}car\u{0}red\u{0}1\u{0}");
        let (ty, attrs) = split_composite_key(&key).unwrap();
        assert_eq!(ty, "car");
        assert_eq!(attrs, vec!["red", "1"]);
        let prefix = create_composite_key::<&str>("car", &[]).unwrap();
        assert_eq!(prefix, "\u{0}car\u{0}");
        assert_eq!(
            split_composite_key(&prefix).unwrap(),
            ("car".into(), vec![])
        );
    }

    #[test]
    fn refuses_bad_parts_and_simple_keys() {
        assert!(create_composite_key("c\u{0}ar", &["x"]).is_err());
        assert!(create_composite_key("car", &["x\u{10FFFF}"]).is_err());
        assert!(split_composite_key("car").is_err());
        assert!(split_composite_key("\u{0}car").is_err());
        assert!(check_simple_keys(&["a", "\u{0}b"]).is_err());
        assert!(check_simple_keys(&["a", ""]).is_ok());
    }
}
