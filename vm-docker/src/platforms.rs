//! Chaincode platforms: each turns an installed package into a Docker build context.
//!
//! - `binary`: a static executable on an empty image (`FROM scratch`), run as `chaincode`.
//! - `node`: a Node package folder, holding its own `node_modules`, on a Node runtime image
//!   (`chaincode.node.runtime`, Fabric's default `hyperledger/fabric-nodeenv:2.5`), in
//!   `/usr/local/src`, started with `npm start` as Fabric starts Node chaincodes.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use vm_api::{Builder, CodePackage, Error, Platform, Result, Settings};

use crate::config::LABEL_CC_TYPE;
use crate::context::Archive;

/// The Node runtime image when `chaincode.node.runtime` is not set.
pub const DEFAULT_NODE_RUNTIME: &str = "hyperledger/fabric-nodeenv:2.5";

fn failed(message: String) -> Error {
    Error::Backend {
        backend: "docker",
        message,
        source: None,
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| failed(format!("building the context failed: {e}")))?
}

/// What keeps an executable off an empty image: `None` for a static ELF executable.
fn static_executable_problem(bytes: &[u8]) -> Option<String> {
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" {
        return Some(
            "is not an ELF executable (an empty image has no shell or interpreter)".into(),
        );
    }
    if bytes[4] != 2 || bytes[5] != 1 {
        // Not 64-bit little-endian: leave the judgement to the kernel.
        return None;
    }
    let u16_at = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]) as usize;
    let phoff = u64::from_le_bytes(bytes[0x20..0x28].try_into().unwrap_or_default()) as usize;
    let (entry_size, count) = (u16_at(0x36), u16_at(0x38));
    for i in 0..count {
        let at = phoff + i * entry_size;
        let Some(kind) = bytes.get(at..at + 4) else {
            break;
        };
        if kind == [3, 0, 0, 0] {
            return Some(
                "is dynamically linked (it needs an interpreter), but the binary platform runs it on an \
                 empty image: build it static, e.g. RUSTFLAGS=\"-C target-feature=+crt-static\""
                    .into(),
            );
        }
    }
    None
}

/// Builds `FROM scratch` images around one static executable.
struct BinaryBuilder {
    path: PathBuf,
}

#[async_trait]
impl Builder for BinaryBuilder {
    async fn build(&self) -> Result<Bytes> {
        let path = self.path.clone();
        blocking(move || {
            let bytes = std::fs::read(&path)
                .map_err(|e| Error::io(format!("cannot read chaincode {}", path.display()), e))?;
            if let Some(problem) = static_executable_problem(&bytes) {
                return Err(failed(format!("{} {problem}", path.display())));
            }
            let mut context = Archive::new();
            let dockerfile =
                "FROM scratch\nCOPY chaincode /usr/local/bin/chaincode\nENV PATH=/usr/local/bin\n";
            let io = |e| Error::io("cannot assemble the build context", e);
            context
                .file("Dockerfile", dockerfile.as_bytes(), 0o644)
                .map_err(io)?;
            context.file("chaincode", &bytes, 0o755).map_err(io)?;
            context.finish().map_err(io)
        })
        .await
    }

    fn labels(&self) -> Vec<(String, String)> {
        vec![(LABEL_CC_TYPE.into(), "binary".into())]
    }
}

/// Builds Node chaincode images on the configured runtime image.
struct NodeBuilder {
    path: PathBuf,
    runtime: String,
}

#[async_trait]
impl Builder for NodeBuilder {
    async fn build(&self) -> Result<Bytes> {
        let (path, runtime) = (self.path.clone(), self.runtime.clone());
        blocking(move || {
            if !path.join("package.json").is_file() {
                return Err(failed(format!("{} holds no package.json", path.display())));
            }
            let io = |e| Error::io(format!("cannot pack {}", path.display()), e);
            let mut context = Archive::new();
            let dockerfile =
                format!("FROM {runtime}\nCOPY src /usr/local/src\nWORKDIR /usr/local/src\n");
            context
                .file("Dockerfile", dockerfile.as_bytes(), 0o644)
                .map_err(io)?;
            context.dir("src", &path).map_err(io)?;
            context.finish().map_err(io)
        })
        .await
    }

    fn labels(&self) -> Vec<(String, String)> {
        vec![(LABEL_CC_TYPE.into(), "node".into())]
    }
}

fn binary(package: &CodePackage, _: &Settings) -> Result<Arc<dyn Builder>> {
    Ok(Arc::new(BinaryBuilder {
        path: package.path.clone(),
    }))
}

fn node(package: &CodePackage, settings: &Settings) -> Result<Arc<dyn Builder>> {
    Ok(Arc::new(NodeBuilder {
        path: package.path.clone(),
        runtime: settings
            .get("chaincode.node.runtime")
            .unwrap_or(DEFAULT_NODE_RUNTIME)
            .to_owned(),
    }))
}

inventory::submit! {
    Platform { platform: "binary", description: "a static executable on an empty image", create_builder: binary }
}

inventory::submit! {
    Platform { platform: "node", description: "a Node package with its node_modules, on the Node runtime image", create_builder: node }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(tar: &Bytes) -> Vec<(String, Vec<u8>)> {
        use std::io::Read;
        let mut archive = tar::Archive::new(tar.as_ref());
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let name = e.path().unwrap().display().to_string();
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                (name, data)
            })
            .collect()
    }

    #[tokio::test]
    async fn binary_context_holds_the_executable_on_scratch() {
        let exe = std::env::current_exe().unwrap();
        let bytes = std::fs::read(&exe).unwrap();
        let builder = BinaryBuilder { path: exe };
        match static_executable_problem(&bytes) {
            // The test binary itself may be static (crt-static builds) or not.
            None => {
                let context = builder.build().await.unwrap();
                let files = entries(&context);
                assert_eq!(files[0].0, "Dockerfile");
                assert!(String::from_utf8_lossy(&files[0].1).starts_with("FROM scratch\n"));
                assert_eq!(files[1], ("chaincode".to_owned(), bytes));
            }
            Some(problem) => {
                assert!(problem.contains("dynamically linked"), "{problem}");
                let e = builder.build().await.unwrap_err();
                assert!(e.to_string().contains("build it static"), "{e}");
            }
        }
    }

    #[tokio::test]
    async fn scripts_are_refused_for_empty_images() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("run.sh");
        std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
        let e = BinaryBuilder { path: script }.build().await.unwrap_err();
        assert!(e.to_string().contains("is not an ELF executable"), "{e}");
    }

    #[tokio::test]
    async fn node_context_copies_the_package_and_follows_links() {
        let dir = tempfile::tempdir().unwrap();
        let pkg = dir.path().join("kv");
        let modules = dir.path().join("modules");
        std::fs::create_dir_all(modules.join("shim")).unwrap();
        std::fs::write(modules.join("shim/index.js"), "module.exports = 1").unwrap();
        std::fs::create_dir_all(&pkg).unwrap();
        std::fs::write(
            pkg.join("package.json"),
            r#"{"scripts":{"start":"node index.js"}}"#,
        )
        .unwrap();
        std::fs::write(pkg.join("index.js"), "require('shim')").unwrap();
        std::os::unix::fs::symlink(&modules, pkg.join("node_modules")).unwrap();
        let builder = NodeBuilder {
            path: pkg.clone(),
            runtime: "my/node:20".into(),
        };
        let files = entries(&builder.build().await.unwrap());
        assert_eq!(
            files[0].1,
            b"FROM my/node:20\nCOPY src /usr/local/src\nWORKDIR /usr/local/src\n"
        );
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert!(names.contains(&"src/package.json"), "{names:?}");
        assert!(
            names.contains(&"src/node_modules/shim/index.js"),
            "the link is followed: {names:?}"
        );
        let e = NodeBuilder {
            path: dir.path().join("none"),
            runtime: "x".into(),
        }
        .build()
        .await
        .unwrap_err();
        assert!(e.to_string().contains("holds no package.json"), "{e}");
    }
}
