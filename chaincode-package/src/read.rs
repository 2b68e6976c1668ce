//! Reading a package file safely.

use std::io::{self, Read};

use bytes::Bytes;
use flate2::read::MultiGzDecoder;

use crate::error::PACKAGE;
use crate::limited::{Meter, Metered};
use crate::limits::MAX_METADATA_BYTES;
use crate::names::{self, EntryName};
use crate::{Error, Limits, Metadata, PackageId, Result, validate_label};

/// The name of the metadata entry.
const METADATA_JSON: &str = "metadata.json";
/// The name of the code entry.
const CODE_TAR_GZ: &str = "code.tar.gz";

/// A parsed package: its ID, its metadata and its code archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// `<label>:<sha256 of the package file>`.
    pub id: PackageId,
    /// The parsed `metadata.json`.
    pub metadata: Metadata,
    /// The bytes of `metadata.json` as they are in the package.
    pub metadata_json: Bytes,
    /// The bytes of `code.tar.gz` (not checked here: see [`unpack_code`](crate::unpack_code)).
    pub code: Bytes,
}

impl Package {
    /// Parses and checks a package file.
    ///
    /// Refused: a file over [`Limits::max_package_bytes`], an outer tar that decompresses to
    /// more than the bounds of [`Limits`], an entry that is not a regular file (directories such
    /// as the `./` that `tar -C dir -czf pkg .` adds included, as Fabric does), a name that is
    /// absolute or has a `..` component, a second `metadata.json` or `code.tar.gz`, a missing
    /// one, metadata that is not JSON or lacks `type` or `label`, and a label that breaks the
    /// label rule. Names may start with `./`. Other regular files are ignored with a warning.
    /// The ustar, GNU and PAX tar formats are read.
    pub fn parse(bytes: &[u8], limits: &Limits) -> Result<Package> {
        let size = bytes.len() as u64;
        if size > limits.max_package_bytes {
            return Err(Error::PackageTooLarge {
                size,
                limit: limits.max_package_bytes,
            });
        }
        let found = scan(bytes, limits, false)?;
        let metadata_json = found.metadata.ok_or(Error::MissingEntry {
            name: METADATA_JSON,
        })?;
        let code = found
            .code
            .ok_or(Error::MissingEntry { name: CODE_TAR_GZ })?;
        let metadata = parse_metadata(&metadata_json)?;
        let id = PackageId::of(&metadata.label, bytes)?;
        Ok(Package {
            id,
            metadata,
            metadata_json: Bytes::from(metadata_json),
            code: Bytes::from(code),
        })
    }
}

/// Reads only the metadata of a package (for the store, whose files were checked when
/// installed): stops at `metadata.json`.
pub(crate) fn read_metadata(package: impl Read, limits: &Limits) -> Result<(Metadata, Bytes)> {
    let found = scan(package, limits, true)?;
    let json = found.metadata.ok_or(Error::MissingEntry {
        name: METADATA_JSON,
    })?;
    Ok((parse_metadata(&json)?, Bytes::from(json)))
}

/// `metadata.json` parsed, its label checked.
fn parse_metadata(json: &[u8]) -> Result<Metadata> {
    let metadata = Metadata::from_json(json)?;
    validate_label(&metadata.label)?;
    Ok(metadata)
}

/// What a scan of the outer tar found.
#[derive(Default)]
struct Found {
    /// The bytes of `metadata.json`.
    metadata: Option<Vec<u8>>,
    /// The bytes of `code.tar.gz` (not kept by a metadata-only scan).
    code: Option<Vec<u8>>,
}

/// Reads the outer tar of a package, checking every entry; with `metadata_only`, stops at
/// `metadata.json` and keeps no code.
fn scan(compressed: impl Read, limits: &Limits, metadata_only: bool) -> Result<Found> {
    let meter = Meter::new(PACKAGE, limits.max_package_tar_bytes());
    let mut archive = tar::Archive::new(Metered::new(MultiGzDecoder::new(compressed), &meter));
    let mut entries = archive.entries().map_err(|e| meter.error(e))?;
    let mut found = Found::default();
    let mut seen_code = false;
    let mut unread = 0;
    let mut count = 0u64;
    while let Some(mut entry) =
        meter.next_entry(&mut entries, unread, &mut count, limits.max_entries)?
    {
        let raw_name = entry.path_bytes().into_owned();
        let name = names::split(PACKAGE, &raw_name)?;
        check_regular(entry.header(), &name)?;
        let size = entry.size();
        if size > limits.max_package_bytes {
            return Err(Error::EntryTooLarge {
                name: name.shown,
                limit: limits.max_package_bytes,
            });
        }
        unread = size;
        match name.components.as_slice() {
            [only] if *only == METADATA_JSON.as_bytes() => {
                if found.metadata.is_some() {
                    return Err(Error::DuplicateEntry {
                        name: METADATA_JSON,
                    });
                }
                if size > MAX_METADATA_BYTES {
                    return Err(Error::EntryTooLarge {
                        name: name.shown,
                        limit: MAX_METADATA_BYTES,
                    });
                }
                found.metadata = Some(read_entry(&mut entry, size, &name, &meter)?);
                unread = 0;
                if metadata_only {
                    return Ok(found);
                }
            }
            [only] if *only == CODE_TAR_GZ.as_bytes() => {
                if seen_code {
                    return Err(Error::DuplicateEntry { name: CODE_TAR_GZ });
                }
                seen_code = true;
                if !metadata_only {
                    found.code = Some(read_entry(&mut entry, size, &name, &meter)?);
                    unread = 0;
                }
            }
            _ => tracing::warn!(
                entry = %name.shown,
                "ignoring unexpected file in the top level of a chaincode package"
            ),
        }
    }
    // Read to the end, so that the gzip checksum is checked.
    meter.before_header(0);
    io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(|e| meter.error(e))?;
    Ok(found)
}

/// Refuses anything but a plain regular file, naming the entry and what it is.
fn check_regular(header: &tar::Header, name: &EntryName<'_>) -> Result<()> {
    let typeflag = header.as_bytes()[156];
    let kind = header.entry_type();
    if !names::is_regular(kind, typeflag, name) {
        let kind = if kind == tar::EntryType::Regular {
            "directory".into()
        } else {
            names::kind_name(kind, typeflag)
        };
        return Err(Error::EntryKind {
            archive: PACKAGE,
            name: name.shown.clone(),
            kind: kind.into_owned(),
            allowed: "regular files",
        });
    }
    if name.trailing_slash {
        return Err(names::file_name_ends_with_slash(PACKAGE, name));
    }
    Ok(())
}

/// All `size` bytes of `entry`.
fn read_entry(
    entry: &mut impl Read,
    size: u64,
    name: &EntryName<'_>,
    meter: &Meter,
) -> Result<Vec<u8>> {
    let mut data = Vec::with_capacity(usize::try_from(size.min(1 << 20)).unwrap_or(0));
    entry.read_to_end(&mut data).map_err(|e| meter.error(e))?;
    if data.len() as u64 != size {
        return Err(meter.error(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("entry {:?} is cut short", name.shown),
        )));
    }
    Ok(data)
}
