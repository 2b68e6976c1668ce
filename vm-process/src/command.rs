//! The command line of a chaincode process, per platform, the way Fabric starts it.

use std::path::{Path, PathBuf};

use vm_api::{Error, Result, StartRequest};

/// What to execute, with which arguments, where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invocation {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub cwd: Option<PathBuf>,
    /// Prepended to `PATH` (a Node package's `node_modules/.bin`).
    pub path_prefix: Option<PathBuf>,
}

/// Builds the invocation of `req`'s package.
pub(crate) fn invocation(req: &StartRequest) -> Result<Invocation> {
    let bad = |message: String| Error::BadRequest {
        ccid: req.ccid.clone(),
        message,
    };
    let package = req
        .package
        .as_ref()
        .ok_or_else(|| bad("the PROCESS backend needs the chaincode's installed package".into()))?;
    match package.platform.as_str() {
        // One executable: Fabric's container command is `chaincode -peer.address=…`; here the
        // executable is the package itself, with the same arguments.
        "binary" | "golang" | "car" => {
            let args = match req.args.split_first() {
                Some((_, rest)) if !rest.is_empty() => rest.to_vec(),
                _ => vec![format!("-peer.address={}", req.peer_address)],
            };
            Ok(Invocation {
                program: package.path.clone(),
                args,
                cwd: package.path.parent().map(Path::to_path_buf),
                path_prefix: None,
            })
        }
        // `npm start -- --peer.address <addr>`, without npm: the package's start script run by
        // the shell with the arguments appended, `node_modules/.bin` on the PATH.
        "node" => {
            let script = start_script(&package.path).map_err(bad)?;
            Ok(Invocation {
                program: PathBuf::from("/bin/sh"),
                args: vec![
                    "-c".into(),
                    format!("{script} \"$@\""),
                    "npm-start".into(),
                    "--peer.address".into(),
                    req.peer_address.clone(),
                ],
                cwd: Some(package.path.clone()),
                path_prefix: Some(package.path.join("node_modules").join(".bin")),
            })
        }
        other => Err(bad(format!(
            "platform {other:?} cannot run as a process; use binary or node"
        ))),
    }
}

/// The `start` script of a Node package (npm's default `node server.js` when it has none
/// but has a `server.js`).
fn start_script(dir: &Path) -> std::result::Result<String, String> {
    let manifest = dir.join("package.json");
    let text = std::fs::read_to_string(&manifest)
        .map_err(|e| format!("cannot read {}: {e}", manifest.display()))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not JSON: {e}", manifest.display()))?;
    if let Some(script) = json.pointer("/scripts/start").and_then(|s| s.as_str()) {
        return Ok(script.to_owned());
    }
    if dir.join("server.js").is_file() {
        return Ok("node server.js".into());
    }
    Err(format!("{} has no start script", manifest.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_api::{Ccid, CodePackage};

    fn req(platform: &str, path: &Path, args: &[&str]) -> StartRequest {
        let mut r = StartRequest::new(Ccid::new("cc", "1"));
        r.peer_address = "127.0.0.1:7052".into();
        r.args = args.iter().map(|s| (*s).to_owned()).collect();
        r.package = Some(CodePackage {
            platform: platform.into(),
            path: path.to_path_buf(),
        });
        r
    }

    #[test]
    fn binaries_get_fabrics_arguments() {
        let inv = invocation(&req(
            "binary",
            Path::new("/opt/cc/run"),
            &["chaincode", "-peer.address=127.0.0.1:7052"],
        ))
        .unwrap();
        assert_eq!(inv.program, Path::new("/opt/cc/run"));
        assert_eq!(inv.args, ["-peer.address=127.0.0.1:7052"]);
        assert_eq!(inv.cwd.as_deref(), Some(Path::new("/opt/cc")));
    }

    #[test]
    fn node_runs_the_start_script_with_the_peer_address() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("package.json"),
            r#"{"scripts":{"start":"node index.js"}}"#,
        )
        .unwrap();
        let inv = invocation(&req("node", dir.path(), &[])).unwrap();
        assert_eq!(inv.program, Path::new("/bin/sh"));
        assert_eq!(
            inv.args,
            [
                "-c",
                "node index.js \"$@\"",
                "npm-start",
                "--peer.address",
                "127.0.0.1:7052"
            ]
        );
        assert_eq!(inv.cwd.as_deref(), Some(dir.path()));
        std::fs::write(dir.path().join("package.json"), "{}").unwrap();
        let e = invocation(&req("node", dir.path(), &[])).unwrap_err();
        assert!(e.to_string().contains("has no start script"), "{e}");
    }

    #[test]
    fn unknown_platforms_and_missing_packages_are_refused() {
        let e = invocation(&req("java", Path::new("/x"), &[])).unwrap_err();
        assert!(
            e.to_string()
                .contains("platform \"java\" cannot run as a process"),
            "{e}"
        );
        let mut r = req("binary", Path::new("/x"), &[]);
        r.package = None;
        assert!(invocation(&r).is_err());
    }
}
