//! Entry names and kinds, checked the same way for the package and its code archive.

use std::borrow::Cow;

use tar::EntryType;

use crate::{Error, Result};

/// An entry name split into its components, with `.` and empty components dropped.
#[derive(Debug)]
pub(crate) struct EntryName<'a> {
    /// The name as written, for messages.
    pub(crate) shown: String,
    /// The normal components, in order.
    pub(crate) components: Vec<&'a [u8]>,
    /// Whether the name ends with `/`.
    pub(crate) trailing_slash: bool,
}

/// Splits `raw` into components, refusing absolute names and `..` components.
pub(crate) fn split<'a>(archive: &'static str, raw: &'a [u8]) -> Result<EntryName<'a>> {
    let shown = String::from_utf8_lossy(raw).into_owned();
    let refuse = |reason| Error::EntryName {
        archive,
        name: shown.clone(),
        reason,
    };
    if raw.is_empty() {
        return Err(refuse("the name is empty"));
    }
    if raw.first() == Some(&b'/') {
        return Err(refuse("the name is an absolute path"));
    }
    let mut components = Vec::new();
    for part in raw.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err(refuse("the name has a `..` component")),
            part => components.push(part),
        }
    }
    let trailing_slash = raw.last() == Some(&b'/');
    Ok(EntryName {
        shown,
        components,
        trailing_slash,
    })
}

/// What an entry of `kind` is, for messages; `typeflag` is the raw header byte.
pub(crate) fn kind_name(kind: EntryType, typeflag: u8) -> Cow<'static, str> {
    Cow::Borrowed(match kind {
        EntryType::Regular => "regular file",
        EntryType::Directory => "directory",
        EntryType::Symlink => "symbolic link",
        EntryType::Link => "hard link",
        EntryType::Char => "character device",
        EntryType::Block => "block device",
        EntryType::Fifo => "fifo",
        EntryType::Continuous => "contiguous file",
        EntryType::GNUSparse => "GNU sparse file",
        EntryType::XGlobalHeader => "PAX global header",
        _ => return Cow::Owned(format!("entry of tar type {:?}", char::from(typeflag))),
    })
}

/// Whether a header of `kind` with raw `typeflag` and this name is a plain regular file.
///
/// An old-style header (type byte 0) whose name ends with `/` is a directory, as tar readers
/// have always taken it.
pub(crate) fn is_regular(kind: EntryType, typeflag: u8, name: &EntryName<'_>) -> bool {
    kind == EntryType::Regular && !(typeflag == 0 && name.trailing_slash)
}

/// The error for a regular file whose name ends with `/`.
pub(crate) fn file_name_ends_with_slash(archive: &'static str, name: &EntryName<'_>) -> Error {
    Error::EntryName {
        archive,
        name: name.shown.clone(),
        reason: "it is a regular file but its name ends with `/`",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_and_empty_components_are_dropped() {
        let name = split("package", b"./a//b/./c/").unwrap();
        assert_eq!(name.components, [&b"a"[..], b"b", b"c"]);
        assert!(name.trailing_slash);
        assert!(split("package", b"./").unwrap().components.is_empty());
    }

    #[test]
    fn unsafe_names_are_refused() {
        for (raw, reason) in [
            (&b"/abs"[..], "absolute"),
            (b"../evil", "`..`"),
            (b"a/../../b", "`..`"),
            (b"", "empty"),
        ] {
            let err = split("code archive", raw).unwrap_err().to_string();
            assert!(err.contains(reason), "{err}");
            assert!(err.contains("code archive entry"), "{err}");
        }
    }

    #[test]
    fn kinds_are_named() {
        assert_eq!(kind_name(EntryType::Symlink, b'2'), "symbolic link");
        assert_eq!(
            kind_name(EntryType::new(b'Z'), b'Z'),
            "entry of tar type 'Z'"
        );
    }
}
