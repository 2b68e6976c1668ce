//! The package store: install, get, list, remove, reopen, concurrent installs.
#![allow(unused_crate_dependencies, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::sync::Arc;

use chaincode_package::{Error, Limits, PackageId, PackageStore, write};
use common::{code_of, contents, file, file_mode, meta, mode};
use sha2::{Digest, Sha256};

fn package(label: &str) -> Vec<u8> {
    let code = code_of(vec![
        file("connection.json", b"{}"),
        file_mode("bin/run", b"#!/bin/sh\n", 0o4755),
        file_mode("bin/conf", b"c", 0o640),
    ]);
    write(&meta(label), &code).unwrap()
}

#[test]
fn install_puts_the_file_and_the_code_in_place() {
    let (root, store) = common::store(Limits::default());
    let bytes = package("kv_1");
    let installed = store.install(&bytes).unwrap();
    let hash = hex::encode(Sha256::digest(&bytes));
    assert_eq!(installed.id.to_string(), format!("kv_1:{hash}"));
    assert!(!installed.already);
    assert_eq!(installed.metadata, meta("kv_1"));
    assert_eq!(&installed.metadata_json[..], &meta("kv_1").to_json()[..]);
    let file = root.path().join(format!("chaincodes/kv_1.{hash}.tar.gz"));
    assert_eq!(installed.file, file);
    assert_eq!(fs::read(&file).unwrap(), bytes);
    let code_dir = root.path().join(format!("code/kv_1.{hash}"));
    assert_eq!(installed.code_dir, code_dir);
    assert_eq!(
        contents(&code_dir),
        ["bin", "bin/conf", "bin/run", "connection.json"]
    );
    assert_eq!(
        mode(&code_dir.join("bin/run")),
        0o755,
        "exec kept, setuid dropped"
    );
    assert_eq!(mode(&code_dir.join("bin/conf")), 0o644);
    assert_eq!(mode(&code_dir.join("connection.json")), 0o644);
    assert_eq!(
        contents(root.path()).len(),
        2 + 1 + 1 + 4,
        "no temporary files left: {:?}",
        contents(root.path())
    );
}

#[test]
fn installing_again_is_not_an_error_and_writes_nothing() {
    let (root, store) = common::store(Limits::default());
    let bytes = package("kv");
    let first = store.install(&bytes).unwrap();
    let before = contents(root.path());
    let modified = fs::metadata(&first.file).unwrap().modified().unwrap();
    let again = store.install(&bytes).unwrap();
    assert!(again.already);
    assert_eq!(again.id, first.id);
    assert_eq!(contents(root.path()), before);
    assert_eq!(
        fs::metadata(&first.file).unwrap().modified().unwrap(),
        modified
    );
}

#[test]
fn a_missing_code_folder_is_put_back() {
    let (_root, store) = common::store(Limits::default());
    let bytes = package("kv");
    let first = store.install(&bytes).unwrap();
    fs::remove_dir_all(&first.code_dir).unwrap();
    let again = store.install(&bytes).unwrap();
    assert!(again.already);
    assert!(again.code_dir.join("connection.json").is_file());
}

#[test]
fn get_list_package_bytes_and_remove() {
    let (root, store) = common::store(Limits::default());
    let b = store.install(&package("b")).unwrap();
    let a = store.install(&package("a")).unwrap();
    let a2 = store.install(&package("a.2")).unwrap();

    let got = store.get(&a.id).unwrap();
    assert_eq!(got.metadata, a.metadata);
    assert_eq!(got.metadata_json, a.metadata_json);
    assert_eq!(
        (got.file.clone(), got.code_dir.clone()),
        (a.file.clone(), a.code_dir.clone())
    );
    assert!(!got.already);

    let ids: Vec<_> = store.list().unwrap().into_iter().map(|i| i.id).collect();
    let mut expected = vec![a.id.clone(), a2.id.clone(), b.id.clone()];
    expected.sort_by_key(|id| id.to_string());
    assert_eq!(ids, expected);

    assert_eq!(store.package_bytes(&b.id).unwrap(), package("b"));

    store.remove(&a.id).unwrap();
    assert!(!a.file.exists());
    assert!(!a.code_dir.exists());
    let err = store.get(&a.id).unwrap_err();
    assert!(matches!(err, Error::NotInstalled { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        format!("chaincode package {} is not installed", a.id)
    );
    assert!(matches!(
        store.remove(&a.id),
        Err(Error::NotInstalled { .. })
    ));
    assert!(matches!(
        store.package_bytes(&a.id),
        Err(Error::NotInstalled { .. })
    ));
    assert_eq!(store.list().unwrap().len(), 2);

    // Reopened, the store finds what is installed.
    let reopened = PackageStore::open(root.path(), Limits::default()).unwrap();
    let got = reopened.get(&b.id).unwrap();
    assert_eq!(got.metadata, meta("b"));
    assert_eq!(reopened.list().unwrap().len(), 2);
}

#[test]
fn list_ignores_other_files_and_leaves_out_broken_packages() {
    let (root, store) = common::store(Limits::default());
    let ok = store.install(&package("ok")).unwrap();
    let chaincodes = root.path().join("chaincodes");
    fs::write(chaincodes.join("notes.txt"), "x").unwrap();
    fs::write(chaincodes.join(".tmp-kv-1"), "x").unwrap();
    let broken: PackageId = format!("broken:{}", "0".repeat(64)).parse().unwrap();
    fs::write(chaincodes.join(broken.file_name()), "not a package").unwrap();
    let ids: Vec<_> = store.list().unwrap().into_iter().map(|i| i.id).collect();
    assert_eq!(ids, [ok.id]);
    let err = store.get(&broken).unwrap_err();
    assert!(
        matches!(err, Error::StoredPackageUnreadable { .. }),
        "{err}"
    );
    assert!(err.to_string().contains(&broken.to_string()), "{err}");
}

#[test]
fn concurrent_installs_of_the_same_bytes() {
    let (root, store) = common::store(Limits::default());
    let store = Arc::new(store);
    let bytes = Arc::new(package("kv"));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (store, bytes) = (store.clone(), bytes.clone());
            std::thread::spawn(move || store.install(&bytes).unwrap())
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(results.iter().all(|r| r.id == results[0].id));
    assert_eq!(fs::read(&results[0].file).unwrap(), *bytes);
    assert_eq!(
        contents(&root.path().join("chaincodes")),
        [results[0].id.file_name()]
    );
    let code = root.path().join("code");
    assert_eq!(contents(&code).len(), 1 + 4, "{:?}", contents(&code));
    assert_eq!(
        fs::read(results[0].code_dir.join("connection.json")).unwrap(),
        b"{}"
    );
}
