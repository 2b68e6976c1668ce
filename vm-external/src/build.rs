//! Building a package with external builders (Fabric's `externalbuilder.Detector`): a scratch
//! context, `detect` with each builder in order, `build` and `release` with the first that
//! takes it, then the durable build folder; a durable build is reused without `detect`.

use std::path::{Path, PathBuf};

use vm_api::{BuildOutcome, BuildRequest, ChaincodePackage, Error, Result};

use crate::ExternalVm;
use crate::config::BuilderConfig;
use crate::durable::{content_addressed, copy_tree, persist, read_build_info, sanitise};
use crate::program::Ran;

/// Fabric's scratch build context: `src/` (the package's code), `metadata/metadata.json`,
/// `bld/`, `release/`; removed when dropped, on a blocking thread (it holds a copy of the
/// package's code).
struct Scratch {
    dir: Option<tempfile::TempDir>,
}

impl Scratch {
    /// Removes the scratch folder, off the async workers, and waits until it is gone.
    async fn remove(mut self) {
        if let Some(dir) = self.dir.take() {
            let _ = tokio::task::spawn_blocking(move || drop(dir)).await;
        }
    }
}

/// A build given up (the install timeout) drops its scratch context without awaiting:
/// removed on a blocking thread then.
impl Drop for Scratch {
    fn drop(&mut self) {
        if let (Some(dir), Ok(runtime)) = (self.dir.take(), tokio::runtime::Handle::try_current()) {
            runtime.spawn_blocking(move || drop(dir));
        }
    }
}

impl Scratch {
    fn new(package: &ChaincodePackage) -> Result<Self> {
        let io = |what: &str, e| Error::io(format!("external builders: cannot {what}"), e);
        let dir = tempfile::Builder::new()
            .prefix(&format!("fabric-{}-", sanitise(&package.id)))
            .tempdir()
            .map_err(|e| io("make a scratch folder", e))?;
        let scratch = Self { dir: Some(dir) };
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
        self.dir
            .as_ref()
            .map_or_else(PathBuf::new, |d| d.path().join(sub))
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
        // A build is reused without detect when its package ID names its content (Fabric
        // 2.x); a Fabric 1.4 `name:version` may name other code now, so it is built again.
        if content_addressed(&req.package.id)
            && let Some(builder) = self.built_by(&req.ccid, &req.package.id).await?
        {
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
        let stale = durable.clone();
        let scratch = blocking(move || {
            // A build of a Fabric 1.4 `name:version` from an earlier run is not reused.
            if stale.exists() {
                std::fs::remove_dir_all(&stale)
                    .map_err(|e| Error::io(format!("cannot remove {}", stale.display()), e))?;
            }
            Scratch::new(&package)
        })
        .await?;
        let outcome = self.detect_build_release(req, &scratch, durable).await;
        // The scratch context goes before the build returns, whatever happened (off the
        // workers: it holds a copy of the code).
        scratch.remove().await;
        outcome
    }

    /// Fabric's `detect`, `build` and `release` in `scratch`; keeps the result in `durable`.
    async fn detect_build_release(
        &self,
        req: &BuildRequest,
        scratch: &Scratch,
        durable: PathBuf,
    ) -> Result<BuildOutcome> {
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
            // As in Fabric, a detect that cannot even run has not detected the package.
            match builder
                .run_to_end("detect", &[&src, &meta], &req.ccid, keep)
                .await
            {
                Ok(ran) if ran.code == 0 => {
                    chosen = Some(builder);
                    break;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(builder = %builder.name, error = %e, "cannot run detect"),
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
        blocking(move || persist(&bld, &release, &durable, &name)).await?;
        Ok(BuildOutcome::Built {
            detail: format!("external builder {}", builder.name),
        })
    }
}

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

    #[tokio::test]
    async fn the_scratch_context_holds_the_code_and_metadata_and_goes_away() {
        let code = tempfile::tempdir().unwrap();
        std::fs::write(code.path().join("connection.json"), "{}").unwrap();
        let package = ChaincodePackage {
            id: "kv:abc".into(),
            kind: "ccaas".into(),
            code: code.path().to_path_buf(),
            metadata_json: bytes::Bytes::from_static(br#"{"type":"ccaas"}"#),
        };
        let scratch = Scratch::new(&package).unwrap();
        let root = scratch.path("src").parent().unwrap().to_path_buf();
        assert!(scratch.path("src").join("connection.json").is_file());
        assert_eq!(
            std::fs::read(scratch.path("metadata").join("metadata.json")).unwrap(),
            br#"{"type":"ccaas"}"#
        );
        assert!(scratch.path("bld").is_dir() && scratch.path("release").is_dir());
        scratch.remove().await;
        assert!(!root.exists(), "removed before remove returns");
    }
}
