//! Builds interrupted or starved as they happen in the field (docs/RELIABILITY.md): `ebpf-pack build`
//! killed with SIGINT, SIGTERM or SIGKILL at points spread over its run, a dist/ on a full disk, a
//! read-only dist/. dist/ never holds part of a bundle under its name, a bundle is never without its
//! matching `.sha256`, and the next build recovers. A project of one probe with a tiny static loader
//! (`--loader`) keeps each build about a second.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::*;

/// A project from `ebpf-pack init` and a tiny static x86_64 executable to stand in for ebpf-run.
fn project() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempdir();
    let proj = dir.path().join("proj");
    run_ok(ebpf_pack().arg("init").arg(&proj).args(["--name", "fault"]));
    let src = dir.path().join("tiny.c");
    std::fs::write(&src, "void _start(void) { for (;;); }\n").expect("write");
    let tiny = dir.path().join("tiny");
    run_ok(
        Command::new("gcc")
            .args(["-static", "-nostdlib", "-Os", "-s", "-o"])
            .arg(&tiny)
            .arg(&src),
    );
    (dir, proj, tiny)
}

fn build(proj: &Path, tiny: &Path) -> Command {
    let mut cmd = ebpf_pack();
    cmd.arg("-C")
        .arg(proj)
        .args(["build", "--target", "x86_64", "--single", "--loader"])
        .arg(tiny);
    cmd
}

/// What dist/ may hold at any moment: whole bundles and single files that verify, each with the
/// `.sha256` of exactly its bytes, or neither; `.partial` files only when a kill left one.
fn check_dist(proj: &Path, after: &str) {
    let dist = proj.join("dist");
    let Ok(entries) = std::fs::read_dir(&dist) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_owned();
        if name.ends_with(".partial") {
            continue;
        }
        if let Some(artifact) = name.strip_suffix(".sha256") {
            let sums = std::fs::read_to_string(&path).expect("read .sha256");
            let bytes = std::fs::read(dist.join(artifact))
                .unwrap_or_else(|e| panic!("{after}: {name} without {artifact}: {e}"));
            let want = ebpf_pack_manifest::embedded::sha256_hex(&bytes);
            assert_eq!(sums, format!("{want}  {artifact}\n"), "{after}: {name}");
            continue;
        }
        let out = ebpf_pack()
            .arg("verify")
            .arg(&path)
            .output()
            .expect("verify runs");
        let (stdout, stderr) = text(&out);
        assert!(
            out.status.success(),
            "{after}: {name} does not verify: {stdout}{stderr}"
        );
        assert!(
            dist.join(format!("{name}.sha256")).exists(),
            "{after}: {name} without its .sha256"
        );
    }
}

#[test]
fn builds_killed_at_any_point_leave_no_partial_bundle() {
    let (_dir, proj, tiny) = project();
    run_ok(&mut build(&proj, &tiny));
    check_dist(&proj, "a whole build");
    let probe = proj.join("probes/hello.bpf.c");
    let source = std::fs::read_to_string(&probe).expect("probe source");
    let signals = [libc::SIGKILL, libc::SIGTERM, libc::SIGINT];
    for (i, delay_ms) in [0u64, 40, 80, 150, 250, 350, 500, 700, 900, 1200, 1600]
        .into_iter()
        .enumerate()
    {
        // A changed probe, so the build really compiles, stages and bundles again.
        std::fs::write(&probe, format!("{source}\n/* build {i} */\n")).expect("edit probe");
        let mut child = build(&proj, &tiny)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn build");
        std::thread::sleep(Duration::from_millis(delay_ms));
        let signal = signals[i % signals.len()];
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as libc::pid_t, signal) };
        let _ = child.wait();
        check_dist(&proj, &format!("signal {signal} after {delay_ms} ms"));
    }
    // The next build recovers: whole bundle and single file, nothing partial left.
    run_ok(&mut build(&proj, &tiny));
    check_dist(&proj, "the build after the kills");
    let left: Vec<_> = std::fs::read_dir(proj.join("dist"))
        .expect("dist")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".partial"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// Mounts a tmpfs with `options` over `dir` for the test's lifetime (root only).
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(dir: &Path, options: &str) -> Mount {
        std::fs::create_dir_all(dir).expect("mount point");
        run_ok(
            Command::new("mount")
                .args(["-t", "tmpfs", "-o", options, "tmpfs"])
                .arg(dir),
        );
        Mount(dir.to_path_buf())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn full_disk_and_read_only_dist_fail_naming_the_file_and_leave_nothing_partial() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if !require(
        unsafe { libc::geteuid() } == 0,
        "root (mounting a small tmpfs as dist/)",
    ) {
        return;
    }
    let (_dir, proj, tiny) = project();
    let dist = proj.join("dist");
    // One page: the bundle may fit, its single file and checksums do not.
    for size in ["4k", "16k"] {
        let _mount = Mount::tmpfs(&dist, &format!("size={size}"));
        let out = build(&proj, &tiny).output().expect("build runs");
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "size {size}: {stdout}{stderr}");
        assert!(
            stderr.contains("No space left on device"),
            "size {size}: {stderr}"
        );
        assert!(
            stderr.contains("dist/fault-0.1.0-x86_64."),
            "names the file: {stderr}"
        );
        check_dist(&proj, &format!("a full {size} disk"));
        let partial = std::fs::read_dir(&dist)
            .expect("dist")
            .flatten()
            .any(|e| e.file_name().to_string_lossy().ends_with(".partial"));
        assert!(!partial, "size {size}: a .partial left in dist/");
    }
    let _mount = Mount::tmpfs(&dist, "ro");
    let out = build(&proj, &tiny).output().expect("build runs");
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stderr.contains("Read-only file system"), "{stderr}");
    assert!(
        stderr.contains("dist/fault-0.1.0-x86_64."),
        "names the file: {stderr}"
    );
}
