//! Reproducibility: the same inputs give a byte-identical bundle, also from a copy of the project at a
//! different path (clang's debug info and rustc's output have their build paths remapped).

mod support;

use std::path::Path;
use std::process::Command;

use support::*;

/// Copies the project's files (tracked and untracked-but-not-ignored) to `dest`.
fn copy_project(dest: &Path) {
    let out = run_ok(Command::new("git").current_dir(repo()).args([
        "ls-files",
        "-z",
        "--cached",
        "--others",
        "--exclude-standard",
    ]));
    for rel in out.stdout.split(|&b| b == 0).filter(|p| !p.is_empty()) {
        let rel = Path::new(std::str::from_utf8(rel).expect("utf-8 path"));
        let from = repo().join(rel);
        if !from.is_file() {
            continue; // deleted but still in the index
        }
        let to = dest.join(rel);
        std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
        std::fs::copy(&from, &to).expect("copy");
    }
}

#[test]
fn clone_at_another_path_builds_identical_bytes() {
    let original = bundle("x86_64");
    let dir = tempdir();
    let copy = dir.path().join("some/other/place/ebpf-pack");
    copy_project(&copy);
    // Share the registry but not the target folder: the copy compiles everything itself.
    let out = run_ok(
        ebpf_pack()
            .arg("-C")
            .arg(&copy)
            .args(["build", "--target", "x86_64"])
            .env_remove("CARGO_TARGET_DIR"),
    );
    let (stdout, _) = text(&out);
    let rel = stdout.split_whitespace().nth(1).expect("bundle path");
    let copied = std::fs::read(copy.join(rel)).expect("copy's bundle");
    let first = std::fs::read(&original).expect("bundle");
    if copied != first {
        let a = tempdir();
        let b = tempdir();
        let ta = unpack(&original, a.path());
        let tb = unpack(&copy.join(rel), b.path());
        let diff = Command::new("diff")
            .arg("-r")
            .arg(&ta)
            .arg(&tb)
            .output()
            .expect("diff");
        panic!(
            "bundles differ between {} and {}:\n{}",
            repo().display(),
            copy.display(),
            String::from_utf8_lossy(&diff.stdout)
        );
    }
}

#[test]
fn source_date_epoch_sets_entry_times_and_nothing_else() {
    let dir = tempdir();
    let original = std::fs::read(bundle("x86_64")).expect("bundle");
    let _rebuilding = build_lock();
    let out = run_ok(
        ebpf_pack()
            .arg("-C")
            .arg(repo())
            .args([
                "build",
                "--target",
                "x86_64",
                "--bundle-version",
                "0.0.0-sde",
            ])
            .env("SOURCE_DATE_EPOCH", "1700000000"),
    );
    let (stdout, _) = text(&out);
    let path = repo().join(stdout.split_whitespace().nth(1).expect("path"));
    let top = unpack(&path, dir.path());
    let meta = std::fs::metadata(top.join("manifest.json")).expect("manifest");
    let mtime = meta
        .modified()
        .expect("mtime")
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after epoch")
        .as_secs();
    assert_eq!(mtime, 1_700_000_000);
    assert_ne!(std::fs::read(&path).expect("bundle"), original);
    std::fs::remove_file(&path).expect("clean up");
    std::fs::remove_file(format!("{}.sha256", path.display())).expect("clean up");
}
