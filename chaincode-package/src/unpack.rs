//! Unpacking a code archive safely.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use tar::EntryType;

use crate::error::CODE;
use crate::limited::{Meter, Metered};
use crate::names::{self, EntryName};
use crate::{Error, Limits, Result};

/// What [`unpack_code`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Unpacked {
    /// Regular files written.
    pub files: u64,
    /// Bytes written to them, in all.
    pub bytes: u64,
}

/// Unpacks the code archive `code_tar_gz` into `dest`, which must not exist (it is created,
/// with any missing parents) or be an empty folder.
///
/// Only regular files and directories are accepted: symbolic and hard links, devices, fifos and
/// sparse files are refused, as are names that are absolute or have a `..` component (a leading
/// `./` is fine) and a name that appears twice. PAX and GNU long names are read; PAX global
/// headers are skipped. Files get mode 0o755 if their header has any execute bit and 0o644
/// otherwise (never setuid, setgid or sticky); folders get 0o755. Bytes are counted as they are
/// written, against [`Limits::max_unpacked_bytes`], and entries against
/// [`Limits::max_entries`]; a file whose header already says it would pass the limit is refused
/// before anything of it is written.
///
/// On any error everything this call wrote is removed: `dest` and the parents it created, or,
/// if `dest` was an existing empty folder, its contents.
pub fn unpack_code(code_tar_gz: &[u8], dest: &Path, limits: &Limits) -> Result<Unpacked> {
    let created = prepare(dest)?;
    extract(code_tar_gz, dest, limits).inspect_err(|_| clean_up(dest, created.as_deref()))
}

/// Makes sure `dest` is an empty folder; returns the topmost folder this created, if any.
fn prepare(dest: &Path) -> Result<Option<PathBuf>> {
    match fs::symlink_metadata(dest) {
        Ok(meta) if meta.is_dir() => {
            let mut contents = fs::read_dir(dest).map_err(Error::io("read folder", dest))?;
            if contents.next().is_some() {
                return Err(Error::DestinationNotEmpty {
                    path: dest.to_owned(),
                });
            }
            Ok(None)
        }
        Ok(_) => Err(Error::DestinationNotEmpty {
            path: dest.to_owned(),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let mut top = dest;
            while let Some(parent) = top.parent() {
                if parent.as_os_str().is_empty() || fs::symlink_metadata(parent).is_ok() {
                    break;
                }
                top = parent;
            }
            let made = fs::create_dir_all(dest)
                .and_then(|()| fs::set_permissions(dest, Permissions::from_mode(0o755)));
            if let Err(source) = made {
                clean_up(dest, Some(top));
                return Err(Error::Io {
                    action: "create folder",
                    path: dest.to_owned(),
                    source,
                });
            }
            Ok(Some(top.to_owned()))
        }
        Err(source) => Err(Error::Io {
            action: "read metadata of",
            path: dest.to_owned(),
            source,
        }),
    }
}

/// Removes what an unpack wrote: `created` (the topmost folder it made), or the contents of
/// `dest` if it made none.
fn clean_up(dest: &Path, created: Option<&Path>) {
    let result = match created {
        Some(top) => fs::remove_dir_all(top),
        None => fs::read_dir(dest).and_then(|contents| {
            contents.into_iter().try_for_each(|entry| {
                let entry = entry?;
                if entry.file_type()?.is_dir() {
                    fs::remove_dir_all(entry.path())
                } else {
                    fs::remove_file(entry.path())
                }
            })
        }),
    };
    if let Err(e) = result
        && e.kind() != io::ErrorKind::NotFound
    {
        tracing::warn!(dest = %dest.display(), error = %e, "cannot remove a refused code archive");
    }
}

/// Unpacks into the empty folder `dest`.
fn extract(code: &[u8], dest: &Path, limits: &Limits) -> Result<Unpacked> {
    let meter = Meter::new(CODE, limits.max_code_tar_bytes());
    let mut archive = tar::Archive::new(Metered::new(MultiGzDecoder::new(code), &meter));
    let mut entries = archive.entries().map_err(|e| meter.error(e))?;
    let mut folders = Folders::new(dest);
    let mut done = Unpacked::default();
    let mut count = 0u64;
    let mut unread = 0;
    while let Some(mut entry) =
        meter.next_entry(&mut entries, unread, &mut count, limits.max_entries)?
    {
        unread = entry.size();
        let raw_name = entry.path_bytes().into_owned();
        let name = names::split(CODE, &raw_name)?;
        let typeflag = entry.header().as_bytes()[156];
        let kind = entry.header().entry_type();
        let refuse = |reason| Error::EntryName {
            archive: CODE,
            name: name.shown.clone(),
            reason,
        };
        if kind == EntryType::XGlobalHeader {
            continue;
        }
        if kind == EntryType::Directory
            || (kind == EntryType::Regular && typeflag == 0 && name.trailing_slash)
        {
            if entry.size() != 0 {
                return Err(refuse("a directory entry carries data"));
            }
            folders.make(&name, &name.components)?;
            continue;
        }
        if !names::is_regular(kind, typeflag, &name) {
            return Err(Error::EntryKind {
                archive: CODE,
                name: name.shown.clone(),
                kind: names::kind_name(kind, typeflag).into_owned(),
                allowed: "regular files and directories",
            });
        }
        if name.trailing_slash {
            return Err(names::file_name_ends_with_slash(CODE, &name));
        }
        let Some((_, parents)) = name.components.split_last() else {
            return Err(refuse("the name has no file name"));
        };
        if done.bytes.saturating_add(entry.size()) > limits.max_unpacked_bytes {
            return Err(Error::CodeTooLarge {
                limit: limits.max_unpacked_bytes,
            });
        }
        let mode = entry.header().mode().map_err(|e| meter.error(e))?;
        folders.make(&name, parents)?;
        let path = dest.join(relative(&name.components));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| match e.kind() {
                io::ErrorKind::AlreadyExists => refuse("the name appears twice in the archive"),
                _ => Error::io("create file", &path)(e),
            })?;
        let written = copy(&mut entry, file, &path, &meter, done.bytes, limits)?;
        if written != entry.size() {
            return Err(meter.error(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("entry {:?} is cut short", name.shown),
            )));
        }
        let mode = if mode & 0o111 != 0 { 0o755 } else { 0o644 };
        fs::set_permissions(&path, Permissions::from_mode(mode))
            .map_err(Error::io("set permissions of", &path))?;
        done.files += 1;
        done.bytes += written;
        unread = 0;
    }
    // Read to the end, so that the gzip checksum is checked.
    meter.before_header(0);
    io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(|e| meter.error(e))?;
    Ok(done)
}

/// Copies the data of `entry` into `file` at `path`, counting it against the limit on top of
/// the `before` bytes already written; returns the bytes written.
fn copy(
    entry: &mut impl Read,
    mut file: File,
    path: &Path,
    meter: &Meter,
    before: u64,
    limits: &Limits,
) -> Result<u64> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut written = 0u64;
    loop {
        let n = match entry.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(meter.error(e)),
        };
        if before + written + n as u64 > limits.max_unpacked_bytes {
            return Err(Error::CodeTooLarge {
                limit: limits.max_unpacked_bytes,
            });
        }
        file.write_all(&buf[..n])
            .map_err(Error::io("write file", path))?;
        written += n as u64;
    }
    Ok(written)
}

/// `components` as a relative path.
fn relative(components: &[&[u8]]) -> PathBuf {
    components.iter().map(|c| OsStr::from_bytes(c)).collect()
}

/// The folders made so far under the destination.
struct Folders<'d> {
    /// The destination.
    dest: &'d Path,
    /// Relative paths of the folders known to exist.
    made: HashSet<PathBuf>,
}

impl<'d> Folders<'d> {
    /// None made yet under `dest`.
    fn new(dest: &'d Path) -> Self {
        Folders {
            dest,
            made: HashSet::new(),
        }
    }

    /// Makes the folder `components` (for the entry `name`) and its parents, mode 0o755.
    fn make(&mut self, name: &EntryName<'_>, components: &[&[u8]]) -> Result<()> {
        for depth in 1..=components.len() {
            let rel = relative(&components[..depth]);
            if self.made.contains(&rel) {
                continue;
            }
            let path = self.dest.join(&rel);
            match fs::create_dir(&path) {
                Ok(()) => fs::set_permissions(&path, Permissions::from_mode(0o755))
                    .map_err(Error::io("set permissions of", &path))?,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    return Err(Error::EntryName {
                        archive: CODE,
                        name: name.shown.clone(),
                        reason: "the name passes through a file unpacked before",
                    });
                }
                Err(e) => return Err(Error::io("create folder", &path)(e)),
            }
            self.made.insert(rel);
        }
        Ok(())
    }
}
