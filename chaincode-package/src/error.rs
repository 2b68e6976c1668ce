//! The one error type of the crate.

use std::io;
use std::path::PathBuf;

use crate::PackageId;

/// Result of package operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which archive an entry came from, for messages.
pub(crate) const PACKAGE: &str = "package";
/// The code archive (`code.tar.gz`) inside a package, for messages.
pub(crate) const CODE: &str = "code archive";

/// What can go wrong writing, reading, unpacking or storing a chaincode package.
///
/// Every message names what was wrong: the entry, the limit and its value, the label, the path.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The package file is larger than [`Limits::max_package_bytes`](crate::Limits).
    #[error("package is {size} bytes, more than the limit of {limit} bytes")]
    PackageTooLarge {
        /// The size of the package file.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// An archive decompresses to more bytes than allowed (a gzip bomb, or far too much padding).
    #[error("{archive} decompresses to more than the limit of {limit} bytes")]
    DecompressedTooLarge {
        /// `package` or `code archive`.
        archive: &'static str,
        /// The limit on the decompressed tar stream.
        limit: u64,
    },
    /// The tar headers in front of one entry (with PAX or GNU long-name records), or the padding
    /// between or after entries, are too long.
    #[error(
        "{archive} has a stretch of tar headers or padding longer than the limit of {limit} bytes"
    )]
    HeaderTooLarge {
        /// `package` or `code archive`.
        archive: &'static str,
        /// The limit.
        limit: u64,
    },
    /// One entry of the package is larger than allowed.
    #[error("package entry {name:?} is larger than the limit of {limit} bytes")]
    EntryTooLarge {
        /// The entry name.
        name: String,
        /// The limit.
        limit: u64,
    },
    /// The files of the code archive add up to more than [`Limits::max_unpacked_bytes`](crate::Limits).
    #[error("package code unpacks to more than the limit of {limit} bytes")]
    CodeTooLarge {
        /// The limit.
        limit: u64,
    },
    /// An archive has more entries than [`Limits::max_entries`](crate::Limits).
    #[error("{archive} has more than the limit of {limit} entries")]
    TooManyEntries {
        /// `package` or `code archive`.
        archive: &'static str,
        /// The limit.
        limit: u64,
    },
    /// An entry is of a kind that is not allowed (a link, a device, a fifo, …).
    #[error("{archive} entry {name:?} is a {kind}; only {allowed} are allowed")]
    EntryKind {
        /// `package` or `code archive`.
        archive: &'static str,
        /// The entry name.
        name: String,
        /// What the entry is (`symbolic link`, `hard link`, `directory`, …).
        kind: String,
        /// What is allowed (`regular files`, `regular files and directories`).
        allowed: &'static str,
    },
    /// An entry name is absolute, has a `..` component, or is otherwise unusable.
    #[error("{archive} entry {name:?} is refused: {reason}")]
    EntryName {
        /// `package` or `code archive`.
        archive: &'static str,
        /// The entry name.
        name: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// An entry of the package appears twice.
    #[error("package has more than one {name}")]
    DuplicateEntry {
        /// `metadata.json` or `code.tar.gz`.
        name: &'static str,
    },
    /// A required entry of the package is missing.
    #[error("package has no {name}")]
    MissingEntry {
        /// `metadata.json` or `code.tar.gz`.
        name: &'static str,
    },
    /// `metadata.json` is not JSON or lacks `type` or `label`.
    #[error(
        "package metadata.json is not valid package metadata (a JSON object with string fields \
         \"type\" and \"label\", and optionally \"path\")"
    )]
    Metadata {
        /// The JSON error.
        source: serde_json::Error,
    },
    /// A label breaks the rule `^[[:alnum:]][[:alnum:]_.+-]*$`.
    #[error(
        "invalid package label {label:?}: a label starts with an ASCII letter or digit and holds \
         only ASCII letters, digits and `_`, `.`, `+`, `-`"
    )]
    InvalidLabel {
        /// The label.
        label: String,
    },
    /// A package ID is not `<label>:<64 lowercase hex digits>`.
    #[error("invalid package id {id:?}: {reason}")]
    InvalidPackageId {
        /// The text given as ID.
        id: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An archive is not a readable gzip-compressed tar.
    #[error("{archive} is not a readable tar.gz archive")]
    Archive {
        /// `package` or `code archive`.
        archive: &'static str,
        /// What the gzip or tar reader said.
        source: io::Error,
    },
    /// Writing an archive in memory failed.
    #[error("cannot write the {archive}")]
    Write {
        /// `package` or `code archive`.
        archive: &'static str,
        /// What the gzip or tar writer said.
        source: io::Error,
    },
    /// [`code_archive`](crate::code_archive) met a symbolic link.
    #[error("{} is a symbolic link; a chaincode package holds no links", path.display())]
    SymlinkInSource {
        /// The link.
        path: PathBuf,
    },
    /// [`code_archive_following_links`](crate::code_archive_following_links) reached a folder
    /// inside itself through a link.
    #[error("{} leads back into a folder that holds it: a link cycle", path.display())]
    LinkCycle {
        /// The folder reached again.
        path: PathBuf,
    },
    /// [`code_archive`](crate::code_archive) met something that is neither a file nor a folder.
    #[error("{} is not a regular file or folder", path.display())]
    SpecialFileInSource {
        /// The fifo, socket or device.
        path: PathBuf,
    },
    /// A file changed size while [`code_archive`](crate::code_archive) read it.
    #[error("{} changed while it was being packed", path.display())]
    SourceChanged {
        /// The file.
        path: PathBuf,
    },
    /// The prefix given to [`code_archive`](crate::code_archive) is absolute or has `..`.
    #[error("invalid code archive prefix {prefix:?}: {reason}")]
    InvalidPrefix {
        /// The prefix.
        prefix: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The folder given to [`unpack_code`](crate::unpack_code) exists and is not empty.
    #[error("cannot unpack into {}: it exists and is not an empty folder", path.display())]
    DestinationNotEmpty {
        /// The destination.
        path: PathBuf,
    },
    /// No package with this ID is installed.
    #[error("chaincode package {id} is not installed")]
    NotInstalled {
        /// The ID asked for.
        id: PackageId,
    },
    /// A stored package file cannot be read as a package.
    #[error("stored package file {} of {id} cannot be read", path.display())]
    StoredPackageUnreadable {
        /// The ID from the file name.
        id: PackageId,
        /// The file.
        path: PathBuf,
        /// What reading it gave.
        source: Box<Error>,
    },
    /// A stored package file does not hold the package its name says.
    #[error("stored package file {} does not hold package {id}: {reason}", path.display())]
    StoredPackageMismatch {
        /// The ID from the file name.
        id: PackageId,
        /// The file.
        path: PathBuf,
        /// What does not match.
        reason: String,
    },
    /// A file system operation failed.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// What was being done (`create folder`, `write file`, …).
        action: &'static str,
        /// The path it was done on.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
}

impl Error {
    /// An [`Error::Io`] for `action` on `path`.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    }
}
