//! Helpers for tests that need the Docker daemon (feature `testing`): the daemon or a skip,
//! images assembled from the host's own files with `docker import` (no registry needed), and
//! cleanup of everything a test created. They call the `docker` CLI and panic on failure, as
//! test helpers do.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Whether Docker answers; otherwise prints `SKIPPED: <test>: …` (a failure with
/// `REQUIRE_DOCKER=1`).
pub fn require_docker(test: &str) -> bool {
    let reason = match Command::new("docker")
        .args(["version", "--format", "{{.Server.APIVersion}}"])
        .output()
    {
        Ok(out) if out.status.success() => return true,
        Ok(out) => format!(
            "docker does not answer: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => format!("the docker CLI is missing: {e}"),
    };
    let required =
        std::env::var("REQUIRE_DOCKER").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    assert!(!required, "{test}: REQUIRE_DOCKER=1 but {reason}");
    println!("SKIPPED: {test}: {reason}");
    false
}

/// Runs the docker CLI, returning stdout; panics with stderr on failure.
pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker CLI");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Whether the container or image `name` exists.
pub fn exists(name: &str) -> bool {
    Command::new("docker")
        .args(["inspect", name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The shared libraries `binary` links, with the dynamic loader.
fn linked_libraries(binary: &Path) -> Vec<PathBuf> {
    let out = Command::new("ldd").arg(binary).output().expect("ldd");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let path = match line.split_once("=>") {
                Some((_, rest)) => rest.split_whitespace().next(),
                None => line.split_whitespace().next(),
            }?;
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

/// A root file system for `docker import`: host files kept at their paths (links followed)
/// with the libraries they link, folders, and symbolic links.
#[derive(Debug, Default)]
pub struct Rootfs<'a> {
    /// Host files, with the shared libraries they need.
    pub files: Vec<PathBuf>,
    /// Host folders, copied whole under the given paths.
    pub dirs: Vec<(&'a str, &'a Path)>,
    /// Symbolic links: (path in the image, target).
    pub links: Vec<(&'a str, &'a str)>,
    /// Dockerfile instructions applied by `docker import --change`.
    pub changes: Vec<&'a str>,
}

/// Imports `rootfs` as image `tag`.
pub fn import_rootfs(tag: &str, rootfs: &Rootfs<'_>) {
    let Rootfs {
        files,
        dirs: extra_dirs,
        links,
        changes,
    } = rootfs;
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(true);
    let mut all: Vec<PathBuf> = files.to_vec();
    for f in files {
        all.extend(linked_libraries(f));
    }
    all.sort();
    all.dedup();
    for f in &all {
        let name = f.strip_prefix("/").unwrap();
        builder
            .append_path_with_name(f, name)
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
    }
    for (name, dir) in extra_dirs {
        builder.append_dir_all(name, dir).unwrap();
    }
    for (name, target) in links {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_mode(0o777);
        header.set_size(0);
        builder.append_link(&mut header, name, target).unwrap();
    }
    for dir in ["tmp", "root"] {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(0o1777);
        header.set_size(0);
        builder
            .append_data(&mut header, format!("{dir}/"), std::io::empty())
            .unwrap();
    }
    let tar = builder.into_inner().unwrap();
    let mut args = vec!["import".to_owned()];
    for c in changes.iter() {
        args.push("--change".into());
        args.push((*c).into());
    }
    args.push("-".into());
    args.push(tag.into());
    let mut child = Command::new("docker")
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("docker import");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&tar).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "docker import: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `/usr/bin/<name>` or `/bin/<name>`; links are followed when packed.
pub fn which(name: &str) -> PathBuf {
    ["/usr/bin", "/bin"]
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("{name} not found on this machine"))
}

/// An image with `/bin/sh`, `sleep` and `cat` from this machine.
pub fn shell_image(tag: &str) {
    // /bin/sh is a link to dash: packed as the program it points to.
    let files = [PathBuf::from("/bin/sh"), which("sleep"), which("cat")];
    import_rootfs(
        tag,
        &Rootfs {
            files: files.to_vec(),
            changes: vec!["ENV PATH=/usr/local/bin:/usr/bin:/bin"],
            ..Rootfs::default()
        },
    );
}

/// An image with Node (`node`, `npm`, `/usr/bin/env`, `/bin/sh`) from this machine: a Node
/// runtime image for the `node` platform, as Fabric's `fabric-nodeenv` is.
pub fn node_image(tag: &str) {
    let npm = Path::new("/usr/lib/node_modules/npm");
    assert!(npm.is_dir(), "npm is not installed at {}", npm.display());
    import_rootfs(
        tag,
        &Rootfs {
            // Where scripts look for them: `#!/usr/bin/env node`, `#!/bin/sh`.
            files: vec![
                which("node"),
                PathBuf::from("/usr/bin/env"),
                PathBuf::from("/bin/sh"),
            ],
            dirs: vec![("usr/lib/node_modules/npm", npm)],
            links: vec![("usr/bin/npm", "../lib/node_modules/npm/bin/npm-cli.js")],
            changes: vec!["ENV PATH=/usr/local/bin:/usr/bin:/bin", "ENV HOME=/root"],
        },
    );
}

/// Removes, when dropped, every container and image labelled with a peer id, and the listed
/// images: nothing a test creates outlives it.
#[derive(Debug)]
pub struct Cleanup {
    /// The peer id whose containers and images go.
    pub peer_id: String,
    /// More images to remove, by name.
    pub images: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let label = format!("label=io.fabric-ccrt.peer.id={}", self.peer_id);
        let run = |args: &[&str]| {
            Command::new("docker")
                .args(args)
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .output()
        };
        if let Ok(out) = run(&["ps", "-aq", "--filter", &label]) {
            for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = run(&["rm", "-f", id]);
            }
        }
        if let Ok(out) = run(&["images", "-q", "--filter", &label]) {
            for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = run(&["rmi", "-f", id]);
            }
        }
        for image in &self.images {
            let _ = run(&["rmi", "-f", image]);
        }
    }
}

/// A name unique to this test run.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}{}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
