//! Tar archives assembled in memory: build contexts, and files uploaded into containers.

use std::collections::BTreeSet;
use std::path::Path;

use bytes::Bytes;

/// A tar archive being assembled in memory, with reproducible headers (owner 0, time 0).
///
/// ```
/// let mut a = vm_api::archive::Archive::new();
/// a.file("/etc/hyperledger/fabric/client.key", b"k", 0o600).unwrap();
/// let bytes = a.finish().unwrap();
/// let names: Vec<String> = tar::Archive::new(bytes.as_ref())
///     .entries().unwrap()
///     .map(|e| e.unwrap().path().unwrap().display().to_string())
///     .collect();
/// assert_eq!(names, ["etc/", "etc/hyperledger/", "etc/hyperledger/fabric/", "etc/hyperledger/fabric/client.key"]);
/// ```
pub struct Archive {
    builder: tar::Builder<Vec<u8>>,
    dirs: BTreeSet<String>,
}

impl std::fmt::Debug for Archive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Archive").finish_non_exhaustive()
    }
}

impl Default for Archive {
    fn default() -> Self {
        Self::new()
    }
}

impl Archive {
    /// An empty archive. Folders added with [`dir`](Self::dir) are copied with their links
    /// followed (a Node package's `node_modules` is often a link).
    pub fn new() -> Self {
        let mut builder = tar::Builder::new(Vec::new());
        builder.follow_symlinks(true);
        Self {
            builder,
            dirs: BTreeSet::new(),
        }
    }

    fn header(size: u64, mode: u32, kind: tar::EntryType) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_size(size);
        header.set_mode(mode);
        header.set_entry_type(kind);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header
    }

    /// Adds the folders leading to `path` (relative), once each.
    fn parents(&mut self, path: &str) -> std::io::Result<()> {
        let mut prefix = String::new();
        let parts: Vec<&str> = path.split('/').collect();
        for part in &parts[..parts.len().saturating_sub(1)] {
            prefix.push_str(part);
            prefix.push('/');
            if self.dirs.insert(prefix.clone()) {
                let mut header = Self::header(0, 0o755, tar::EntryType::Directory);
                self.builder
                    .append_data(&mut header, &prefix, std::io::empty())?;
            }
        }
        Ok(())
    }

    /// Adds a file with `contents` at `path` (a leading `/` is removed), with the folders
    /// leading to it.
    pub fn file(&mut self, path: &str, contents: &[u8], mode: u32) -> std::io::Result<()> {
        let path = path.trim_start_matches('/');
        self.parents(path)?;
        let mut header = Self::header(contents.len() as u64, mode, tar::EntryType::Regular);
        self.builder.append_data(&mut header, path, contents)
    }

    /// Adds the folder `dir` of the file system under `name`, following links.
    pub fn dir(&mut self, name: &str, dir: &Path) -> std::io::Result<()> {
        self.builder.append_dir_all(name, dir)
    }

    /// The archive's bytes.
    pub fn finish(self) -> std::io::Result<Bytes> {
        Ok(Bytes::from(self.builder.into_inner()?))
    }
}
