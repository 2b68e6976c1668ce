//! The durable build folders: `<peer.fileSystemPath>/externalbuilder/builds/<sanitised package
//! ID>/` with `build-info.json`, `bld/` and `release/`, and the files builders leave there.

use std::io::{Read, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use vm_api::{Error, Result};

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
        .map(|c| match c {
            '<' | '>' | ':' | '"' | '/' | '\\' | '|' | '?' | '*' | '&' => '-',
            c => c,
        })
        .collect()
}

/// Whether `id` names its content: a Fabric 2.x package ID (`label:` + 64 lowercase hex
/// digits of SHA-256). Only such a build may be reused across runs of the peer; a Fabric 1.4
/// `name:version` may name other code after a reinstall.
pub(crate) fn content_addressed(id: &str) -> bool {
    id.split_once(':').is_some_and(|(_, hash)| {
        hash.len() == 64 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// Reads at most [`MAX_BUILDER_FILE`] bytes of the regular file `path`; `None` when it does
/// not exist. Anything else a builder may have left there (a FIFO, a device, a link) is
/// refused without blocking.
pub(crate) fn read_bounded(path: &Path) -> Result<Option<Vec<u8>>> {
    use std::os::unix::fs::OpenOptionsExt;
    let malformed = |message: String| Error::Malformed {
        what: path.display().to_string(),
        message,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_NOFOLLOW).bits())
        .open(path);
    let file = match file {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => {
            return Err(malformed("a link, not a file".into()));
        }
        Err(e) => return Err(Error::io(format!("cannot read {}", path.display()), e)),
    };
    let meta = file
        .metadata()
        .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
    if !meta.is_file() {
        return Err(malformed("not a regular file".into()));
    }
    let mut bytes = Vec::new();
    file.take(MAX_BUILDER_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
    if bytes.len() as u64 > MAX_BUILDER_FILE {
        return Err(malformed(format!(
            "larger than the limit of {MAX_BUILDER_FILE} bytes"
        )));
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

/// Copies the folder `from` to `to`, links kept as links.
pub(crate) fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
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

/// Makes `durable` from a build's `bld` and `release` folders: `build-info.json` first (mode
/// 0600), then `bld/` and `release/`, assembled beside it (in a folder of mode 0700) and
/// renamed into place, so a folder that exists is whole.
pub(crate) fn persist(bld: &Path, release: &Path, durable: &Path, builder: &str) -> Result<()> {
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
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(partial.path(), std::fs::Permissions::from_mode(0o700))
            .map_err(|e| io("make the build folder private".into(), e))?;
    }
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
    for (sub, from) in [("bld", bld), ("release", release)] {
        move_dir(from, &partial.path().join(sub)).map_err(|e| io(format!("keep {sub}/"), e))?;
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

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn package_ids_become_folder_names_as_fabric_makes_them() {
        assert_eq!(sanitise("kv_1.0:abc"), "kv_1.0-abc");
        assert_eq!(
            sanitise(r#"a<b>c:d"e/f\g|h?i*j&k"#),
            "a-b-c-d-e-f-g-h-i-j-k"
        );
        let hash = "0123456789abcdef".repeat(4);
        assert!(content_addressed(&format!("kv_1:{hash}")));
        assert!(!content_addressed("kv:1"));
        assert!(!content_addressed(&format!("kv:{}", hash.to_uppercase())));
    }

    #[test]
    fn a_durable_build_is_whole_with_its_build_info() {
        let root = tempfile::tempdir().unwrap();
        let work = tempfile::tempdir().unwrap();
        let (bld, release) = (work.path().join("bld"), work.path().join("release"));
        std::fs::create_dir_all(&bld).unwrap();
        std::fs::create_dir_all(&release).unwrap();
        std::fs::write(bld.join("out"), "built").unwrap();
        let durable = root.path().join("builds").join(sanitise("kv:abc"));
        persist(&bld, &release, &durable, "ccaas").unwrap();
        assert_eq!(
            std::fs::read_to_string(durable.join("build-info.json")).unwrap(),
            r#"{"builder_name":"ccaas"}"#
        );
        let mode = std::fs::metadata(durable.join("build-info.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = std::fs::metadata(&durable).unwrap().permissions().mode();
        assert_eq!(dir_mode & 0o777, 0o700);
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
    fn what_a_builder_leaves_is_bounded_and_must_be_a_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_build_info(&dir.path().join("absent")).unwrap(), None);
        let e = read_build_info(dir.path()).unwrap_err();
        assert!(e.to_string().contains("without build-info.json"), "{e}");
        let info = dir.path().join("build-info.json");
        std::fs::write(&info, "{").unwrap();
        assert!(
            read_build_info(dir.path())
                .unwrap_err()
                .to_string()
                .contains("malformed")
        );
        std::fs::write(&info, vec![b' '; (MAX_BUILDER_FILE + 1) as usize]).unwrap();
        assert!(
            read_build_info(dir.path())
                .unwrap_err()
                .to_string()
                .contains("limit")
        );
        // A FIFO nobody writes would block a reader forever: refused at once.
        let fifo = dir.path().join("connection.json");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let e = read_bounded(&fifo).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink("/etc/passwd", &link).unwrap();
        let e = read_bounded(&link).unwrap_err();
        assert!(e.to_string().contains("a link"), "{e}");
    }
}
