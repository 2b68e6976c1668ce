//! Packing a source folder into a `code.tar.gz`.

use std::fs::{self, File};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;

use crate::error::CODE;
use crate::write::append_file;
use crate::{Error, Metadata, Result, validate_label, write};

/// One file to pack.
struct SourceFile {
    /// The name in the archive, prefix included.
    name: Vec<u8>,
    /// The file on disk.
    path: PathBuf,
    /// 0o755 or 0o644.
    mode: u32,
    /// The size seen when the folder was walked.
    size: u64,
}

/// A `code.tar.gz` of every regular file under `dir`, found recursively.
///
/// Entries are sorted by name so the same files give the same bytes. Each name is `prefix`
/// followed by the file's path relative to `dir` (`/`-separated); `prefix` is a relative folder
/// such as `"src/"` (Fabric's node platform) or `""` for none, with or without its trailing `/`.
/// Files with any execute bit get mode 0o755, the others 0o644; uid, gid and mtime are 0.
/// Folders get no entries of their own. `dir` itself may be a link to a folder, but a symbolic
/// link inside it is refused ([`Error::SymlinkInSource`]), as is anything that is not a file or
/// folder. Blocking: call it from a blocking thread.
pub fn code_archive(dir: &Path, prefix: &str) -> Result<Vec<u8>> {
    archive(dir, prefix, Links::Refuse)
}

/// [`code_archive`], except that a symbolic link inside `dir` is packed as what it points to
/// (a file's contents, a folder's files), as a Node chaincode's `node_modules` linked from
/// elsewhere must be. A link that points outside `dir` is followed too: the caller packs its
/// own files. A folder reached twice on one path (a link cycle) is refused.
pub fn code_archive_following_links(dir: &Path, prefix: &str) -> Result<Vec<u8>> {
    archive(dir, prefix, Links::Follow(Vec::new()))
}

/// What [`walk`] does with a symbolic link.
enum Links {
    /// Refuses it.
    Refuse,
    /// Follows it; holds the (device, inode) of the folders on the current path.
    Follow(Vec<(u64, u64)>),
}

fn archive(dir: &Path, prefix: &str, mut links: Links) -> Result<Vec<u8>> {
    let prefix = normalise_prefix(prefix)?;
    let root = fs::metadata(dir).map_err(Error::io("read folder", dir))?;
    if !root.is_dir() {
        return Err(Error::Io {
            action: "pack folder",
            path: dir.to_owned(),
            source: std::io::ErrorKind::NotADirectory.into(),
        });
    }
    let mut files = Vec::new();
    walk(dir, prefix.as_bytes(), &mut files, &mut links)?;
    files.sort_by(|a, b| a.name.cmp(&b.name));

    let write_error = |source| Error::Write {
        archive: CODE,
        source,
    };
    let mut tar = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
    for file in &files {
        let data = read_exactly(&file.path, file.size)?;
        append_file(&mut tar, &file.name, file.mode, &data).map_err(write_error)?;
    }
    tar.into_inner()
        .and_then(GzEncoder::finish)
        .map_err(write_error)
}

/// Convenience: [`write()`]`(metadata, &`[`code_archive`]`(dir, prefix)?)`, the label checked
/// before any file is read.
pub fn package_dir(dir: &Path, metadata: &Metadata, prefix: &str) -> Result<Vec<u8>> {
    validate_label(&metadata.label)?;
    write(metadata, &code_archive(dir, prefix)?)
}

/// `prefix` without `.` or empty components, ending with `/` unless empty.
fn normalise_prefix(prefix: &str) -> Result<String> {
    let refuse = |reason| Error::InvalidPrefix {
        prefix: prefix.to_owned(),
        reason,
    };
    if prefix.starts_with('/') {
        return Err(refuse("it is an absolute path"));
    }
    let mut out = String::new();
    for part in prefix.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(refuse("it has a `..` component")),
            part => {
                out.push_str(part);
                out.push('/');
            }
        }
    }
    Ok(out)
}

/// Adds the files under `dir` to `files`, names starting with `name` (the prefix so far).
fn walk(dir: &Path, name: &[u8], files: &mut Vec<SourceFile>, links: &mut Links) -> Result<()> {
    if let Links::Follow(path) = links {
        let meta = fs::metadata(dir).map_err(Error::io("read metadata of", dir))?;
        let id = (meta.dev(), meta.ino());
        if path.contains(&id) {
            return Err(Error::LinkCycle {
                path: dir.to_owned(),
            });
        }
        path.push(id);
    }
    walk_entries(dir, name, files, links)?;
    if let Links::Follow(path) = links {
        path.pop();
    }
    Ok(())
}

fn walk_entries(
    dir: &Path,
    name: &[u8],
    files: &mut Vec<SourceFile>,
    links: &mut Links,
) -> Result<()> {
    let entries = fs::read_dir(dir).map_err(Error::io("read folder", dir))?;
    for entry in entries {
        let entry = entry.map_err(Error::io("read folder", dir))?;
        let path = entry.path();
        let mut meta = fs::symlink_metadata(&path).map_err(Error::io("read metadata of", &path))?;
        if meta.file_type().is_symlink() && matches!(links, Links::Follow(_)) {
            meta = fs::metadata(&path).map_err(Error::io("follow the link", &path))?;
        }
        let mut entry_name = name.to_vec();
        entry_name.extend_from_slice(entry.file_name().as_bytes());
        let kind = meta.file_type();
        if kind.is_symlink() {
            return Err(Error::SymlinkInSource { path });
        } else if kind.is_dir() {
            entry_name.push(b'/');
            walk(&path, &entry_name, files, links)?;
        } else if kind.is_file() {
            let mode = if meta.permissions().mode() & 0o111 != 0 {
                0o755
            } else {
                0o644
            };
            files.push(SourceFile {
                name: entry_name,
                path,
                mode,
                size: meta.len(),
            });
        } else {
            return Err(Error::SpecialFileInSource { path });
        }
    }
    Ok(())
}

/// The contents of `path`, which must still be `size` bytes long.
fn read_exactly(path: &Path, size: u64) -> Result<Vec<u8>> {
    let file = File::open(path).map_err(Error::io("open file", path))?;
    let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(size.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(Error::io("read file", path))?;
    if data.len() as u64 != size {
        return Err(Error::SourceChanged {
            path: path.to_owned(),
        });
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_normalised() {
        assert_eq!(normalise_prefix("").unwrap(), "");
        assert_eq!(normalise_prefix("src").unwrap(), "src/");
        assert_eq!(normalise_prefix("./src//a/").unwrap(), "src/a/");
        for bad in ["/src", "../x", "a/../b"] {
            let err = normalise_prefix(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
    }
}
