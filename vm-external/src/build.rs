//! Building a package with external builders (Fabric's `externalbuilder.Detector`): a scratch
//! context, `detect` with each builder in order, `build` and `release` with the first that
//! takes it, then the durable build folder; a durable build is reused without `detect`.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use vm_api::{BuildOutcome, BuildRequest, ChaincodePackage, Error, Result};

use crate::ExternalVm;
use crate::config::BuilderConfig;

/// `build-info.json`: which builder built a package.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct BuildInfo {
    pub builder_name: String,
}

/// The most `build-info.json` (or any file a builder leaves for the peer) may hold.
pub(crate) const MAX_BUILDER_FILE: u64 = 1 << 20;

/// Fabric's folder name for a package ID: each of `< > : " / \ | ? * &` made `-`.
pub(crate) fn sanitise(id: &str) -> String {
    id.chars()
        .map(|c| {
            if matches!(
                c,
                '<' | '>' | ':' | '"' | '/' | '\\' | '|' | '?' | '*' | '&'
            ) {
                '-'
            } else {
                c
            }
        })
        .collect()
}

/// Reads at most [`MAX_BUILDER_FILE`] bytes of `path`; `None` when it does not exist.
pub(crate) fn read_bounded(path: &Path) -> Result<Option<Vec<u8>>> {
    use std::io::Read;
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("cannot read {}", path.display()), e)),
    };
    let mut bytes = Vec::new();
    file.take(MAX_BUILDER_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
    if bytes.len() as u64 > MAX_BUILDER_FILE {
        return Err(Error::Malformed {
            what: path.display().to_string(),
            message: format!("larger than the limit of {MAX_BUILDER_FILE} bytes"),
        });
    }
    Ok(Some(bytes))
}

/// The builder named in a durable build folder's `build-info.json`, if the folder exists.
pub(crate) fn read_build_info(durable: &Path) -> Result<Option<BuildInfo>> {
    if !durable.exists() {
        return Ok(None);
    }
    let path = durable.join("build-info.json");
    let bytes = read_bounded(&path)?.ok_or_else(|| Error::Malformed {
        what: durable.display().to_string(),
        message: "a durable build folder without build-info.json".into(),
    })?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| Error::Malformed {
            what: path.display().to_string(),
            message: e.to_string(),
        })
}

/// Fabric's scratch build context: `src/` (the package's code), `metadata/metadata.json`,
/// `bld/`, `release/`; removed when dropped.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new(package: &ChaincodePackage) -> Result<Self> {
        let io = |what: &str, e| Error::io(format!("external builders: cannot {what}"), e);
        let dir = tempfile::Builder::new()
            .prefix(&format!("fabric-{}-", sanitise(&package.id)))
            .tempdir()
            .map_err(|e| io("make a scratch folder", e))?;
        let scratch = Self { dir };
        for sub in ["src", "metadata", "bld", "release"] {
            std::fs::create_dir(scratch.path(sub))
                .map_err(|e| io("make the scratch folders", e))?;
        }
        std::fs::write(
            scratch.path("metadata").join("metadata.json"),
            &package.metadata_json,
        )
        .map_err(|e| io("write metadata.json", e))?;
        copy_code(&package.code, &scratch.path("src")).map_err(|e| {
            io(
                &format!("copy {} into the scratch folder", package.code.display()),
                e,
            )
        })?;
        Ok(scratch)
    }

    fn path(&self, sub: &str) -> PathBuf {
        self.dir.path().join(sub)
    }
}

/// Copies the package's code into `src`: a folder's contents (links kept as links), or a
/// single file (a Fabric 1.4 executable) under its own name.
fn copy_code(code: &Path, src: &Path) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(code)?;
    if meta.is_file() {
        let name = code.file_name().unwrap_or(code.as_os_str());
        std::fs::copy(code, src.join(name)).map(|_| ())
    } else {
        copy_tree(code, src)
    }
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type()?;
        if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
        } else if kind.is_dir() {
            copy_tree(&src, &dst)?;
        } else if kind.is_file() {
            std::fs::copy(&src, &dst)?;
        }
    }
    Ok(())
}

/// Moves `from` to `to`, copying when they are on different file systems.
fn move_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    match std::fs::rename(from, to) {
        Ok(()) => Ok(()),
        Err(_) => copy_tree(from, to),
    }
}

/// Makes `durable` from the scratch context: `build-info.json` first (mode 0600), then `bld/`
/// and `release/`, assembled beside it (in a folder of mode 0700) and renamed into place, so
/// a folder that exists is whole.
fn persist(scratch: &Scratch, durable: &Path, builder: &str) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let root = durable.parent().unwrap_or(Path::new("/"));
    let io = |what: String, e| Error::io(format!("external builders: cannot {what}"), e);
    std::fs::create_dir_all(root).map_err(|e| io(format!("create {}", root.display()), e))?;
    let name = durable
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("build");
    let partial = tempfile::Builder::new()
        .prefix(&format!(".partial-{name}-"))
        .tempdir_in(root)
        .map_err(|e| io(format!("create a folder in {}", root.display()), e))?;
    let info = serde_json::to_vec(&BuildInfo {
        builder_name: builder.to_owned(),
    })
    .map_err(|e| Error::Malformed {
        what: "build-info.json".into(),
        message: e.to_string(),
    })?;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(partial.path().join("build-info.json"))
        .and_then(|mut f| f.write_all(&info))
        .map_err(|e| io("write build-info.json".into(), e))?;
    for sub in ["bld", "release"] {
        move_dir(&scratch.path(sub), &partial.path().join(sub))
            .map_err(|e| io(format!("keep {sub}/"), e))?;
    }
    let partial = partial.keep();
    if let Err(e) = std::fs::rename(&partial, durable) {
        let _ = std::fs::remove_dir_all(&partial);
        // Another build of the same package won the race: its folder is as good.
        if !durable.join("build-info.json").exists() {
            return Err(io(format!("move the build to {}", durable.display()), e));
        }
    }
    Ok(())
}

impl ExternalVm {
    /// The durable build folder of `package_id`, when builds can be kept.
    pub(crate) fn durable(&self, package_id: &str) -> Option<PathBuf> {
        let root = self.config.builds_dir.as_ref()?;
        Some(root.join(sanitise(package_id)))
    }

    /// The builder that built `package_id` (read from its durable folder), if any; an error
    /// when that builder is no longer configured.
    pub(crate) async fn built_by(
        &self,
        req_ccid: &vm_api::Ccid,
        package_id: &str,
    ) -> Result<Option<BuilderConfig>> {
        let Some(durable) = self.durable(package_id) else {
            return Ok(None);
        };
        let info = blocking(move || read_build_info(&durable)).await?;
        let Some(info) = info else {
            return Ok(None);
        };
        match self.config.builder(&info.builder_name) {
            Some(builder) => Ok(Some(builder.clone())),
            None => Err(Error::Build {
                ccid: req_ccid.clone(),
                message: format!(
                    "it was built by external builder {:?}, which is no longer configured \
                     (chaincode.externalBuilders)",
                    info.builder_name
                ),
                output: Vec::new(),
            }),
        }
    }

    pub(crate) async fn build_package(&self, req: &BuildRequest) -> Result<BuildOutcome> {
        if let Some(builder) = self.built_by(&req.ccid, &req.package.id).await? {
            return Ok(BuildOutcome::Built {
                detail: format!("external builder {} (built before)", builder.name),
            });
        }
        let Some(durable) = self.durable(&req.package.id) else {
            return Ok(BuildOutcome::Declined {
                reason: "external builders keep builds under peer.fileSystemPath, which is not set"
                    .into(),
            });
        };
        if self.config.builders.is_empty() {
            return Ok(BuildOutcome::Declined {
                reason: "no external builders are configured (chaincode.externalBuilders)".into(),
            });
        }
        let package = req.package.clone();
        let scratch = blocking(move || Scratch::new(&package)).await?;
        let (src, meta, bld, release) = (
            scratch.path("src"),
            scratch.path("metadata"),
            scratch.path("bld"),
            scratch.path("release"),
        );
        let keep = self.config.output_lines;
        let mut chosen = None;
        for builder in &self.config.builders {
            if !builder.has("detect").await {
                tracing::warn!(builder = %builder.name, path = %builder.program("detect").display(), "external builder has no detect program");
                continue;
            }
            let ran = builder
                .run_to_end("detect", &[&src, &meta], &req.ccid, keep)
                .await?;
            if ran.code == 0 {
                chosen = Some(builder);
                break;
            }
        }
        let Some(builder) = chosen else {
            let names: Vec<&str> = self
                .config
                .builders
                .iter()
                .map(|b| b.name.as_str())
                .collect();
            return Ok(BuildOutcome::Declined {
                reason: format!(
                    "no external builder detected it (tried {})",
                    names.join(", ")
                ),
            });
        };
        tracing::info!(chaincode = %req.ccid, builder = %builder.name, "external builder detected the package");
        let failed = |program: &str, ran: Ran| Error::Build {
            ccid: req.ccid.clone(),
            message: format!(
                "external builder {}: {program} exited with {}",
                builder.name, ran.code
            ),
            output: ran.stderr,
        };
        let ran = builder
            .run_to_end("build", &[&src, &meta, &bld], &req.ccid, keep)
            .await?;
        if ran.code != 0 {
            return Err(failed("build", ran));
        }
        if builder.has("release").await {
            let ran = builder
                .run_to_end("release", &[&bld, &release], &req.ccid, keep)
                .await?;
            if ran.code != 0 {
                return Err(failed("release", ran));
            }
        }
        let name = builder.name.clone();
        blocking(move || persist(&scratch, &durable, &name)).await?;
        Ok(BuildOutcome::Built {
            detail: format!("external builder {}", builder.name),
        })
    }
}

use crate::program::Ran;

/// Runs file system work off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::Backend {
            backend: "external",
            message: format!("file system work failed: {e}"),
            source: None,
        })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_ids_become_folder_names_as_fabric_makes_them() {
        assert_eq!(sanitise("kv_1.0:abc"), "kv_1.0-abc");
        assert_eq!(
            sanitise(r#"a<b>c:d"e/f\g|h?i*j&k"#),
            "a-b-c-d-e-f-g-h-i-j-k"
        );
    }

    #[test]
    fn a_durable_build_is_whole_with_its_build_info() {
        let root = tempfile::tempdir().unwrap();
        let code = tempfile::tempdir().unwrap();
        std::fs::write(code.path().join("connection.json"), "{}").unwrap();
        let package = ChaincodePackage {
            id: "kv:abc".into(),
            kind: "ccaas".into(),
            code: code.path().to_path_buf(),
            metadata_json: bytes::Bytes::from_static(br#"{"type":"ccaas"}"#),
        };
        let scratch = Scratch::new(&package).unwrap();
        let scratch_dir = scratch.dir.path().to_path_buf();
        assert!(scratch.path("src").join("connection.json").is_file());
        assert_eq!(
            std::fs::read(scratch.path("metadata").join("metadata.json")).unwrap(),
            br#"{"type":"ccaas"}"#
        );
        std::fs::write(scratch.path("bld").join("out"), "built").unwrap();
        let durable = root.path().join("builds").join(sanitise(&package.id));
        persist(&scratch, &durable, "ccaas").unwrap();
        drop(scratch);
        assert!(!scratch_dir.exists(), "the scratch folder goes");
        assert_eq!(
            std::fs::read_to_string(durable.join("build-info.json")).unwrap(),
            r#"{"builder_name":"ccaas"}"#
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(durable.join("build-info.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            std::fs::read_to_string(durable.join("bld/out")).unwrap(),
            "built"
        );
        assert!(durable.join("release").is_dir());
        assert_eq!(
            read_build_info(&durable).unwrap(),
            Some(BuildInfo {
                builder_name: "ccaas".into()
            })
        );
        let leftovers: Vec<_> = std::fs::read_dir(root.path().join("builds"))
            .unwrap()
            .collect();
        assert_eq!(leftovers.len(), 1, "no partial folder left");
    }

    #[test]
    fn broken_build_info_is_an_error_not_a_rebuild() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_build_info(&dir.path().join("absent")).unwrap(), None);
        let e = read_build_info(dir.path()).unwrap_err();
        assert!(e.to_string().contains("without build-info.json"), "{e}");
        std::fs::write(dir.path().join("build-info.json"), "{").unwrap();
        assert!(
            read_build_info(dir.path())
                .unwrap_err()
                .to_string()
                .contains("malformed")
        );
        std::fs::write(
            dir.path().join("build-info.json"),
            vec![b' '; (MAX_BUILDER_FILE + 1) as usize],
        )
        .unwrap();
        assert!(
            read_build_info(dir.path())
                .unwrap_err()
                .to_string()
                .contains("limit")
        );
    }
}
