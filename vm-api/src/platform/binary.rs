//! `binary`: one executable, run as it is.

use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::{Platform, ProcessCommand, invalid};
use crate::archive::Archive;
use crate::{Error, Result, Settings};

/// A single executable. In an image it is a static executable on `FROM scratch` at
/// `/usr/local/bin/chaincode`, run as `chaincode -peer.address=<addr>` (Fabric's command for
/// compiled chaincodes); in place it is run with the same argument.
///
/// Its code is the executable itself, or a folder holding it: the file `chaincode` at the top,
/// or else the only file there.
#[derive(Debug, Clone, Copy, Default)]
pub struct BinaryPlatform;

impl BinaryPlatform {
    /// The executable of a package whose code is at `code`.
    pub fn executable(code: &Path) -> Result<PathBuf> {
        let meta = std::fs::metadata(code)
            .map_err(|e| Error::io(format!("cannot read the package {}", code.display()), e))?;
        if meta.is_file() {
            return Ok(code.to_path_buf());
        }
        let named = code.join("chaincode");
        if named.is_file() {
            return Ok(named);
        }
        let entries = std::fs::read_dir(code)
            .map_err(|e| Error::io(format!("cannot list {}", code.display()), e))?;
        let mut files = Vec::new();
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_file()) {
                files.push(entry.path());
            }
        }
        match files.as_slice() {
            [only] => Ok(only.clone()),
            _ => Err(invalid(format!(
                "{} holds no executable: a binary package is one executable, or a folder holding \
                 one named chaincode",
                code.display()
            ))),
        }
    }
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
        let Some(at) = i.checked_mul(entry_size).and_then(|o| o.checked_add(phoff)) else {
            break;
        };
        let Some(kind) = at.checked_add(4).and_then(|end| bytes.get(at..end)) else {
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

impl Platform for BinaryPlatform {
    fn name(&self) -> &'static str {
        "binary"
    }

    fn description(&self) -> &'static str {
        "one executable (static, for images on FROM scratch)"
    }

    fn validate(&self, code: &Path) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let exe = Self::executable(code)?;
        let meta = std::fs::metadata(&exe)
            .map_err(|e| Error::io(format!("cannot read {}", exe.display()), e))?;
        if meta.permissions().mode() & 0o111 == 0 {
            return Err(invalid(format!("{} is not executable", exe.display())));
        }
        Ok(())
    }

    fn build_context(&self, code: &Path, _: &Settings) -> Result<Bytes> {
        let exe = Self::executable(code)?;
        let bytes = std::fs::read(&exe)
            .map_err(|e| Error::io(format!("cannot read chaincode {}", exe.display()), e))?;
        if let Some(problem) = static_executable_problem(&bytes) {
            return Err(invalid(format!("{} {problem}", exe.display())));
        }
        let io = |e| Error::io("cannot assemble the build context", e);
        let mut context = Archive::new();
        let dockerfile =
            "FROM scratch\nCOPY chaincode /usr/local/bin/chaincode\nENV PATH=/usr/local/bin\n";
        context
            .file("Dockerfile", dockerfile.as_bytes(), 0o644)
            .map_err(io)?;
        context.file("chaincode", &bytes, 0o755).map_err(io)?;
        context.finish().map_err(io)
    }

    fn image_command(&self, peer_address: &str) -> Vec<String> {
        vec!["chaincode".into(), format!("-peer.address={peer_address}")]
    }

    fn process_command(&self, code: &Path, peer_address: &str) -> Result<ProcessCommand> {
        let program = Self::executable(code)?;
        let cwd = program
            .parent()
            .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
        Ok(ProcessCommand {
            program,
            args: vec![format!("-peer.address={peer_address}")],
            cwd,
            path_prefix: None,
        })
    }
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

    #[test]
    fn context_holds_the_executable_on_scratch_or_says_to_build_it_static() {
        let exe = std::env::current_exe().unwrap();
        let bytes = std::fs::read(&exe).unwrap();
        match static_executable_problem(&bytes) {
            // The test binary itself may be static (crt-static builds) or not.
            None => {
                let context = BinaryPlatform
                    .build_context(&exe, &Settings::new())
                    .unwrap();
                let files = entries(&context);
                assert_eq!(files[0].0, "Dockerfile");
                assert!(String::from_utf8_lossy(&files[0].1).starts_with("FROM scratch\n"));
                assert_eq!(files[1], ("chaincode".to_owned(), bytes));
            }
            Some(problem) => {
                assert!(problem.contains("dynamically linked"), "{problem}");
                let e = BinaryPlatform
                    .build_context(&exe, &Settings::new())
                    .unwrap_err();
                assert!(e.to_string().contains("build it static"), "{e}");
            }
        }
    }

    #[test]
    fn scripts_are_refused_for_empty_images_but_run_in_place() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("run.sh");
        std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
        let e = BinaryPlatform
            .build_context(&script, &Settings::new())
            .unwrap_err();
        assert!(e.to_string().contains("is not an ELF executable"), "{e}");
        let e = BinaryPlatform.validate(&script).unwrap_err();
        assert!(e.to_string().contains("is not executable"), "{e}");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        BinaryPlatform.validate(&script).unwrap();
        let cmd = BinaryPlatform
            .process_command(&script, "127.0.0.1:7052")
            .unwrap();
        assert_eq!(cmd.program, script);
        assert_eq!(cmd.args, ["-peer.address=127.0.0.1:7052"]);
        assert_eq!(cmd.cwd, dir.path());
    }

    #[test]
    fn a_folder_holds_the_executable_named_chaincode_or_only_one_file() {
        let dir = tempfile::tempdir().unwrap();
        let e = BinaryPlatform::executable(dir.path()).unwrap_err();
        assert!(e.to_string().contains("holds no executable"), "{e}");
        std::fs::write(dir.path().join("kv"), b"x").unwrap();
        assert_eq!(
            BinaryPlatform::executable(dir.path()).unwrap(),
            dir.path().join("kv")
        );
        std::fs::write(dir.path().join("README"), b"x").unwrap();
        assert!(BinaryPlatform::executable(dir.path()).is_err(), "two files");
        std::fs::write(dir.path().join("chaincode"), b"x").unwrap();
        assert_eq!(
            BinaryPlatform::executable(dir.path()).unwrap(),
            dir.path().join("chaincode")
        );
        assert_eq!(
            BinaryPlatform.image_command("1.2.3.4:7052"),
            ["chaincode", "-peer.address=1.2.3.4:7052"]
        );
    }
}
