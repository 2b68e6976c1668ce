//! Gzip bombs are refused early, with little written.
//!
//! One test only: it measures the bytes this process writes (`wchar` in `/proc/self/io`), which
//! other tests running in parallel would disturb.
#![allow(unused_crate_dependencies, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::time::Instant;

use chaincode_package::{Error, unpack_code};
use common::{assert_store_empty, contents, header, package_of, small_limits};
use flate2::Compression;
use flate2::write::GzEncoder;

const MIB: u64 = 1 << 20;

/// Bytes this process has written so far.
fn written() -> u64 {
    let io = std::fs::read_to_string("/proc/self/io").unwrap();
    let line = io.lines().find(|l| l.starts_with("wchar:")).unwrap();
    line["wchar:".len()..].trim().parse().unwrap()
}

/// A tar.gz of `files` files named `f<i>`, each `size` zero bytes, built without holding the
/// tar in memory.
fn zeros_tgz(files: u64, size: u64) -> Vec<u8> {
    zeros_tgz_named(files, size, |i| format!("f{i}"))
}

/// [`zeros_tgz`] with names from `name_of`.
fn zeros_tgz_named(files: u64, size: u64, name_of: impl Fn(u64) -> String) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    let chunk = vec![0u8; MIB as usize];
    for i in 0..files {
        gz.write_all(header(name_of(i).as_bytes(), b'0', size, 0o644).as_bytes())
            .unwrap();
        let mut left = size.div_ceil(512) * 512;
        while left > 0 {
            let n = left.min(MIB);
            gz.write_all(&chunk[..n as usize]).unwrap();
            left -= n;
        }
    }
    gz.write_all(&[0u8; 1024]).unwrap();
    gz.finish().unwrap()
}

#[test]
fn gzip_bombs_are_refused_early() {
    let limits = small_limits();

    // One file of 64 MiB of zeros: refused before a byte of it is written.
    let bomb = zeros_tgz(1, 64 * MIB);
    assert!(
        (bomb.len() as u64) < MIB,
        "the bomb is small: {}",
        bomb.len()
    );
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("code");
    let (before, started) = (written(), Instant::now());
    let err = unpack_code(&bomb, &dest, &limits).unwrap_err();
    let cost = written() - before;
    assert!(matches!(err, Error::CodeTooLarge { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "package code unpacks to more than the limit of 1048576 bytes"
    );
    assert!(cost < 64 * 1024, "wrote {cost} bytes");
    assert!(started.elapsed().as_secs() < 5);
    assert!(!dest.exists());

    // 64 files of 256 KiB: the first four fit, the fifth is refused, all is removed.
    let bomb = zeros_tgz(64, MIB / 4);
    let before = written();
    let err = unpack_code(&bomb, &dest, &limits).unwrap_err();
    let cost = written() - before;
    assert!(matches!(err, Error::CodeTooLarge { .. }), "{err}");
    assert!(
        (MIB..=MIB + 64 * 1024).contains(&cost),
        "wrote {cost} bytes"
    );
    assert!(!dest.exists());

    // Through the store: refused, nothing left.
    let package = package_of(&common::meta("kv").to_json(), &zeros_tgz(1, 64 * MIB));
    let (root, store) = common::store(limits);
    let before = written();
    let err = store.install(&package).unwrap_err();
    assert!(matches!(err, Error::CodeTooLarge { .. }), "{err}");
    assert!(written() - before < 64 * 1024);
    assert_store_empty(root.path());

    // An outer layer of 64 MiB of zeros in code.tar.gz: refused before it is read.
    let outer = zeros_tgz_named(1, 64 * MIB, |_| "code.tar.gz".to_owned());
    let before = written();
    let err = store.install(&outer).unwrap_err();
    assert!(matches!(err, Error::EntryTooLarge { .. }), "{err}");
    assert!(err.to_string().contains("limit of 1048576 bytes"), "{err}");
    assert!(written() - before < 64 * 1024);
    assert_eq!(contents(root.path()), ["chaincodes", "code"]);
}
