//! Helpers shared by the integration tests: hand-made tar headers and archives, and a store in
//! a temporary folder.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::Path;

use chaincode_package::{Limits, Metadata, PackageStore};
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;

/// `data` gzip'd with default compression.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

/// `data` gunzip'd.
pub fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    GzDecoder::new(data).read_to_end(&mut out).unwrap();
    out
}

/// A USTAR header of type `typeflag` whose name field is `name` as is (no checks at all).
pub fn header(name: &[u8], typeflag: u8, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::new(typeflag));
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.as_mut_bytes()[156] = typeflag;
    h.set_cksum();
    h
}

/// A link header (`typeflag` `1` or `2`) named `name` pointing to `target`.
pub fn link_header(name: &[u8], typeflag: u8, target: &str) -> tar::Header {
    let mut h = header(name, typeflag, 0, 0o777);
    h.set_link_name(target).unwrap();
    h.set_cksum();
    h
}

/// A tar of these headers and their data.
pub fn tar_of(entries: Vec<(tar::Header, Vec<u8>)>) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (h, data) in entries {
        tar.append(&h, &data[..]).unwrap();
    }
    tar.into_inner().unwrap()
}

/// A regular-file entry.
pub fn file(name: &str, data: &[u8]) -> (tar::Header, Vec<u8>) {
    file_mode(name, data, 0o644)
}

/// A regular-file entry with `mode`.
pub fn file_mode(name: &str, data: &[u8], mode: u32) -> (tar::Header, Vec<u8>) {
    (
        header(name.as_bytes(), b'0', data.len() as u64, mode),
        data.to_vec(),
    )
}

/// A `code.tar.gz` of these entries.
pub fn code_of(entries: Vec<(tar::Header, Vec<u8>)>) -> Vec<u8> {
    gzip(&tar_of(entries))
}

/// A small ccaas code archive.
pub fn ccaas_code() -> Vec<u8> {
    code_of(vec![
        file("connection.json", br#"{"address":"kv:9999"}"#),
        file("META-INF/statedb/couchdb/indexes/i.json", b"{}"),
    ])
}

/// Metadata of type `ccaas` with this label.
pub fn meta(label: &str) -> Metadata {
    Metadata::new("", "ccaas", label)
}

/// A package of `metadata.json` and `code.tar.gz` entries, hand-made.
pub fn package_of(metadata_json: &[u8], code: &[u8]) -> Vec<u8> {
    gzip(&tar_of(vec![
        file("metadata.json", metadata_json),
        file("code.tar.gz", code),
    ]))
}

/// A package holding a valid metadata.json for `label` and this code archive.
pub fn package_with_code(label: &str, code: &[u8]) -> Vec<u8> {
    package_of(&meta(label).to_json(), code)
}

/// Small limits for refusal tests: 1 MiB package, 1 MiB unpacked, 100 entries.
pub fn small_limits() -> Limits {
    Limits {
        max_package_bytes: 1 << 20,
        max_unpacked_bytes: 1 << 20,
        max_entries: 100,
    }
}

/// A store in a fresh temporary folder.
pub fn store(limits: Limits) -> (tempfile::TempDir, PackageStore) {
    let root = tempfile::tempdir().unwrap();
    let store = PackageStore::open(root.path(), limits).unwrap();
    (root, store)
}

/// Everything under `dir`, relative, sorted.
pub fn contents(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        out.push(path.strip_prefix(root).unwrap().display().to_string());
        if path.symlink_metadata().unwrap().is_dir() {
            walk(root, &path, out);
        }
    }
}

/// Asserts that the store under `root` holds nothing but its two empty folders.
pub fn assert_store_empty(root: &Path) {
    assert_eq!(contents(root), ["chaincodes", "code"], "store is not empty");
}

/// The permission bits of `path`.
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    path.symlink_metadata().unwrap().permissions().mode() & 0o7777
}
