//! `node`: a Node package with its own `node_modules`, started as `npm start` starts it.

use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::{Platform, ProcessCommand, invalid};
use crate::archive::Archive;
use crate::{Error, Result, Settings};

/// The Node runtime image when `chaincode.node.runtime` is not set (Fabric's default).
pub const DEFAULT_NODE_RUNTIME: &str = "hyperledger/fabric-nodeenv:2.5";

/// A Node package folder holding `package.json` and its own `node_modules` (nothing is fetched
/// from a registry). Fabric's packages keep the files under `src/`; both layouts work.
///
/// In an image it sits in `/usr/local/src` on the runtime image `chaincode.node.runtime`, run
/// as Fabric runs Node chaincodes: `cd /usr/local/src; npm start -- --peer.address <addr>`.
/// In place its `start` script runs with the same arguments, `node_modules/.bin` first on the
/// `PATH` (npm's behaviour, without npm).
#[derive(Debug, Clone, Copy, Default)]
pub struct NodePlatform;

impl NodePlatform {
    /// The folder holding `package.json`: `code/src` in Fabric's layout, else `code`.
    pub fn package_root(code: &Path) -> PathBuf {
        let src = code.join("src");
        if src.join("package.json").is_file() {
            src
        } else {
            code.to_path_buf()
        }
    }
}

/// The `start` script of a Node package (npm's default `node server.js` when it has none
/// but has a `server.js`).
fn start_script(dir: &Path) -> Result<String> {
    let manifest = dir.join("package.json");
    let text = std::fs::read_to_string(&manifest)
        .map_err(|e| Error::io(format!("cannot read {}", manifest.display()), e))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| invalid(format!("{} is not JSON: {e}", manifest.display())))?;
    if let Some(script) = json.pointer("/scripts/start").and_then(|s| s.as_str()) {
        return Ok(script.to_owned());
    }
    if dir.join("server.js").is_file() {
        return Ok("node server.js".into());
    }
    Err(invalid(format!(
        "{} has no start script",
        manifest.display()
    )))
}

impl Platform for NodePlatform {
    fn name(&self) -> &'static str {
        "node"
    }

    fn description(&self) -> &'static str {
        "a Node package with its node_modules, on the Node runtime image"
    }

    fn validate(&self, code: &Path) -> Result<()> {
        start_script(&Self::package_root(code)).map(|_| ())
    }

    fn build_context(&self, code: &Path, settings: &Settings) -> Result<Bytes> {
        let root = Self::package_root(code);
        if !root.join("package.json").is_file() {
            return Err(invalid(format!("{} holds no package.json", root.display())));
        }
        let runtime = settings
            .get("chaincode.node.runtime")
            .filter(|r| !r.trim().is_empty())
            .unwrap_or(DEFAULT_NODE_RUNTIME);
        let io = |e| Error::io(format!("cannot pack {}", root.display()), e);
        let mut context = Archive::new();
        let dockerfile =
            format!("FROM {runtime}\nCOPY src /usr/local/src\nWORKDIR /usr/local/src\n");
        context
            .file("Dockerfile", dockerfile.as_bytes(), 0o644)
            .map_err(io)?;
        context.dir("src", &root).map_err(io)?;
        context.finish().map_err(io)
    }

    fn image_command(&self, peer_address: &str) -> Vec<String> {
        vec![
            "/bin/sh".into(),
            "-c".into(),
            format!("cd /usr/local/src; npm start -- --peer.address {peer_address}"),
        ]
    }

    fn process_command(&self, code: &Path, peer_address: &str) -> Result<ProcessCommand> {
        let root = Self::package_root(code);
        let script = start_script(&root)?;
        Ok(ProcessCommand {
            program: PathBuf::from("/bin/sh"),
            args: vec![
                "-c".into(),
                format!("{script} \"$@\""),
                "npm-start".into(),
                "--peer.address".into(),
                peer_address.to_owned(),
            ],
            path_prefix: Some(root.join("node_modules").join(".bin")),
            cwd: root,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(tar: &Bytes) -> Vec<(String, Vec<u8>)> {
        use std::io::Read;
        tar::Archive::new(tar.as_ref())
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                (e.path().unwrap().display().to_string(), data)
            })
            .collect()
    }

    #[test]
    fn context_copies_the_package_and_follows_links() {
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
        std::os::unix::fs::symlink(&modules, pkg.join("node_modules")).unwrap();
        let settings = Settings::new().with("chaincode.node.runtime", "my/node:20");
        let files = names(&NodePlatform.build_context(&pkg, &settings).unwrap());
        assert_eq!(
            files[0].1,
            b"FROM my/node:20\nCOPY src /usr/local/src\nWORKDIR /usr/local/src\n"
        );
        let paths: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert!(paths.contains(&"src/package.json"), "{paths:?}");
        assert!(
            paths.contains(&"src/node_modules/shim/index.js"),
            "the link is followed: {paths:?}"
        );
        let default = names(&NodePlatform.build_context(&pkg, &Settings::new()).unwrap());
        assert!(
            String::from_utf8_lossy(&default[0].1)
                .starts_with("FROM hyperledger/fabric-nodeenv:2.5\n")
        );
        let e = NodePlatform
            .build_context(&dir.path().join("none"), &Settings::new())
            .unwrap_err();
        assert!(e.to_string().contains("holds no package.json"), "{e}");
    }

    #[test]
    fn in_place_the_start_script_runs_with_the_peer_address() {
        let dir = tempfile::tempdir().unwrap();
        // Fabric's layout: the package under src/.
        let root = dir.path().join("src");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(
            root.join("package.json"),
            r#"{"scripts":{"start":"node index.js"}}"#,
        )
        .unwrap();
        NodePlatform.validate(dir.path()).unwrap();
        let cmd = NodePlatform
            .process_command(dir.path(), "127.0.0.1:7052")
            .unwrap();
        assert_eq!(cmd.program, Path::new("/bin/sh"));
        assert_eq!(
            cmd.args,
            [
                "-c",
                "node index.js \"$@\"",
                "npm-start",
                "--peer.address",
                "127.0.0.1:7052"
            ]
        );
        assert_eq!(cmd.cwd, root);
        assert_eq!(cmd.path_prefix, Some(root.join("node_modules/.bin")));
        std::fs::write(root.join("package.json"), "{}").unwrap();
        let e = NodePlatform.validate(dir.path()).unwrap_err();
        assert!(e.to_string().contains("has no start script"), "{e}");
        std::fs::write(root.join("server.js"), "").unwrap();
        NodePlatform.validate(dir.path()).unwrap();
    }
}
