//! Installed packages, kept on disk by package ID.

use std::fs::{self, File};
use std::io::{self, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::read::read_metadata;
use crate::{Error, Limits, Metadata, Package, PackageId, Result, unpack_code};

/// A package in a [`PackageStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// The package ID.
    pub id: PackageId,
    /// The package's metadata.
    pub metadata: Metadata,
    /// The bytes of the package's `metadata.json`.
    pub metadata_json: Bytes,
    /// The package file, `<root>/chaincodes/<label>.<hash>.tar.gz`.
    pub file: PathBuf,
    /// The unpacked code, `<root>/code/<label>.<hash>/`.
    pub code_dir: PathBuf,
    /// Whether [`PackageStore::install`] found the package already installed (always false
    /// from [`get`](PackageStore::get) and [`list`](PackageStore::list)).
    pub already: bool,
}

/// Installed packages under a root folder: the package files in `<root>/chaincodes/`, named
/// `<label>.<hash>.tar.gz`, and their unpacked code in `<root>/code/<label>.<hash>/`.
///
/// Blocking: call it from a blocking thread. Several installs may run at once, in one process
/// or several: everything is written under a unique temporary name, then renamed into place.
#[derive(Debug, Clone)]
pub struct PackageStore {
    /// `<root>/chaincodes`.
    packages: PathBuf,
    /// `<root>/code`.
    code: PathBuf,
    /// What a package may cost.
    limits: Limits,
}

/// Temporary names start with this, which no label does, so they are never taken for packages.
const TEMP_PREFIX: &str = ".tmp-";

impl PackageStore {
    /// Opens the store under `root`, creating `root/chaincodes/` and `root/code/` if needed.
    pub fn open(root: &Path, limits: Limits) -> Result<Self> {
        let packages = root.join("chaincodes");
        let code = root.join("code");
        for dir in [&packages, &code] {
            fs::create_dir_all(dir).map_err(Error::io("create folder", dir))?;
        }
        Ok(PackageStore {
            packages,
            code,
            limits,
        })
    }

    /// The limits packages are checked against.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Installs a package file: parses and checks it ([`Package::parse`]), unpacks its code
    /// ([`unpack_code`]) into a temporary folder renamed into place, then writes the package file
    /// (temporary file, fsync, rename). A refused package leaves nothing behind.
    ///
    /// Installing a package that is already installed writes nothing and returns it with
    /// [`Installed::already`] set.
    pub fn install(&self, bytes: &[u8]) -> Result<Installed> {
        let package = Package::parse(bytes, &self.limits)?;
        let file = self.file(&package.id);
        let code_dir = self.code_dir(&package.id);
        let installed = |already| Installed {
            id: package.id.clone(),
            metadata: package.metadata.clone(),
            metadata_json: package.metadata_json.clone(),
            file: file.clone(),
            code_dir: code_dir.clone(),
            already,
        };
        let has_file = exists(&file)?;
        if has_file && exists(&code_dir)? {
            return Ok(installed(true));
        }
        let placed = self.place_code(&package, &code_dir)?;
        if has_file {
            // The code folder had gone missing: put back, the file is as it was.
            return Ok(installed(true));
        }
        if let Err(e) = write_atomically(&self.packages, &file, bytes) {
            if placed {
                remove_folder(&self.code, &code_dir);
            }
            return Err(e);
        }
        Ok(installed(false))
    }

    /// An installed package, its metadata read from its file.
    pub fn get(&self, id: &PackageId) -> Result<Installed> {
        let file = self.file(id);
        let opened = match File::open(&file) {
            Ok(opened) => opened,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::NotInstalled { id: id.clone() });
            }
            Err(e) => return Err(Error::io("open file", &file)(e)),
        };
        let (metadata, metadata_json) = read_metadata(BufReader::new(opened), &self.limits)
            .map_err(|e| Error::StoredPackageUnreadable {
                id: id.clone(),
                path: file.clone(),
                source: Box::new(e),
            })?;
        if metadata.label != id.label() {
            return Err(Error::StoredPackageMismatch {
                id: id.clone(),
                path: file,
                reason: format!("its metadata has the label {:?}", metadata.label),
            });
        }
        Ok(Installed {
            id: id.clone(),
            metadata,
            metadata_json,
            file,
            code_dir: self.code_dir(id),
            already: false,
        })
    }

    /// Every installed package, sorted by ID. A package file that cannot be read is left out
    /// with a warning.
    pub fn list(&self) -> Result<Vec<Installed>> {
        let entries =
            fs::read_dir(&self.packages).map_err(Error::io("read folder", &self.packages))?;
        let mut ids = Vec::new();
        for entry in entries {
            let entry = entry.map_err(Error::io("read folder", &self.packages))?;
            if let Some(id) = entry
                .file_name()
                .to_str()
                .and_then(PackageId::from_file_name)
            {
                ids.push(id);
            }
        }
        ids.sort();
        let mut installed = Vec::with_capacity(ids.len());
        for id in ids {
            match self.get(&id) {
                Ok(one) => installed.push(one),
                Err(Error::NotInstalled { .. }) => {} // removed meanwhile
                Err(e) => {
                    tracing::warn!(%id, error = %e, "leaving out an unreadable installed package")
                }
            }
        }
        Ok(installed)
    }

    /// The bytes of an installed package file.
    pub fn package_bytes(&self, id: &PackageId) -> Result<Vec<u8>> {
        let file = self.file(id);
        fs::read(&file).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Error::NotInstalled { id: id.clone() },
            _ => Error::io("read file", &file)(e),
        })
    }

    /// Removes an installed package: its file, then its code folder.
    pub fn remove(&self, id: &PackageId) -> Result<()> {
        let file = self.file(id);
        let code_dir = self.code_dir(id);
        let had_file = match fs::remove_file(&file) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => return Err(Error::io("remove file", &file)(e)),
        };
        // Rename first so that a half-removed folder is never seen under its name.
        let doomed = self.code.join(temp_name(&id.to_stem()));
        match fs::rename(&code_dir, &doomed) {
            Ok(()) => fs::remove_dir_all(&doomed).map_err(Error::io("remove folder", &doomed)),
            Err(e) if e.kind() == io::ErrorKind::NotFound && had_file => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(Error::NotInstalled { id: id.clone() })
            }
            Err(e) => Err(Error::io("remove folder", &code_dir)(e)),
        }
    }

    /// Where the package file of `id` is.
    fn file(&self, id: &PackageId) -> PathBuf {
        self.packages.join(id.file_name())
    }

    /// Where the code of `id` is unpacked.
    fn code_dir(&self, id: &PackageId) -> PathBuf {
        self.code.join(id.to_stem())
    }

    /// Unpacks the code of `package` into a temporary folder and renames it to `code_dir`;
    /// returns whether this call put it there (false: another install did first).
    fn place_code(&self, package: &Package, code_dir: &Path) -> Result<bool> {
        let temp = self.code.join(temp_name(&package.id.to_stem()));
        unpack_code(&package.code, &temp, &self.limits)?;
        match fs::rename(&temp, code_dir) {
            Ok(()) => Ok(true),
            Err(e) => {
                remove_folder(&self.code, &temp);
                if exists(code_dir)? {
                    Ok(false)
                } else {
                    Err(Error::io("rename folder into place", code_dir)(e))
                }
            }
        }
    }
}

/// Whether `path` exists (without following a last link).
fn exists(path: &Path) -> Result<bool> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io("read metadata of", path)(e)),
    }
}

/// Removes the folder `path`, warning if that fails.
fn remove_folder(parent: &Path, path: &Path) {
    if let Err(e) = fs::remove_dir_all(path)
        && e.kind() != io::ErrorKind::NotFound
    {
        tracing::warn!(store = %parent.display(), folder = %path.display(), error = %e, "cannot remove a folder");
    }
}

/// Writes `bytes` to `file` in `dir`: a temporary file, fsync, rename, fsync of `dir`.
fn write_atomically(dir: &Path, file: &Path, bytes: &[u8]) -> Result<()> {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(temp_name(&name));
    let written = File::create_new(&temp)
        .and_then(|mut out| {
            out.write_all(bytes)?;
            out.sync_all()
        })
        .map_err(Error::io("write file", &temp))
        .and_then(|()| fs::rename(&temp, file).map_err(Error::io("rename file into place", file)));
    if let Err(e) = written {
        let _ = fs::remove_file(&temp);
        return Err(e);
    }
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io("sync folder", dir))
}

/// A name for a temporary sibling of `name`, unique across threads and processes.
fn temp_name(name: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{TEMP_PREFIX}{name}-{}-{}-{nanos}",
        process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
