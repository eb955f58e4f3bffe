//! Shared helpers of the integration tests: the repository, the built CLI, bundles built once per test
//! binary, and loud skips (failures under CI=true) for host features a test needs.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// The repository root (holds probes/, targets/, loader/).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("cli/ has a parent")
        .to_path_buf()
}

/// The `ebpf-pack` binary under test.
pub fn ebpf_pack() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ebpf-pack"))
}

/// Whether this run is CI, where a missing host feature is a failure, never a skip.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Skips (returns false) with a loud message when `ok` is false, or panics under CI.
pub fn require(ok: bool, what: &str) -> bool {
    if !ok {
        if in_ci() {
            panic!("CI=true and this host lacks {what}: the test must run here");
        }
        eprintln!("\n*** SKIPPED: this host lacks {what} ***\n");
    }
    ok
}

/// True when running as root on a kernel with BTF (what loading probes here needs).
pub fn can_load_bpf() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    require(root, "root (loading BPF programs)")
        && require(
            Path::new("/sys/kernel/btf/vmlinux").exists(),
            "kernel BTF (/sys/kernel/btf/vmlinux)",
        )
}

/// Mounts tracefs at /sys/kernel/tracing unless it is there (tracepoint attachment needs it).
pub fn ensure_tracefs() {
    if !Path::new("/sys/kernel/tracing/events").exists() {
        let _ = Command::new("mount")
            .args(["-t", "tracefs", "tracefs", "/sys/kernel/tracing"])
            .status();
    }
}

/// A running program whose BPF programs are attached (an ebpf-run, or an `ebpf-pack run` of one):
/// its output is read while it runs, so a full pipe never blocks it.
pub struct Attached {
    /// The process.
    pub child: Child,
    stdout: std::thread::JoinHandle<String>,
    stderr: std::thread::JoinHandle<String>,
}

/// Starts `cmd` with piped output and returns once a line of its stderr says `attached` (ebpf-run's
/// `N programs attached`), however long loading takes on a busy machine; panics with its stderr
/// after two minutes.
pub fn start_attached(cmd: &mut Command) -> Attached {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let mut out = child.stdout.take().expect("stdout");
    let stdout = std::thread::spawn(move || {
        let mut all = String::new();
        let _ = std::io::Read::read_to_string(&mut out, &mut all);
        all
    });
    let err = child.stderr.take().expect("stderr");
    let (attached_tx, attached_rx) = std::sync::mpsc::channel();
    let stderr = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if line.contains("attached") {
                let _ = attached_tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    if attached_rx.recv_timeout(Duration::from_secs(120)).is_err() {
        let _ = child.kill();
        let status = child.wait().expect("wait");
        let out = stdout.join().unwrap_or_default();
        let err = stderr.join().unwrap_or_default();
        panic!("{cmd:?} did not attach ({status}): stdout {out:?}\nstderr:\n{err}");
    }
    Attached {
        child,
        stdout,
        stderr,
    }
}

impl Attached {
    /// Sends `signal` to the process.
    pub fn signal(&self, signal: libc::c_int) {
        let pid = i32::try_from(self.child.id()).expect("pid");
        // SAFETY: kill(2) on our own child; it has not been waited for, so the pid is still ours.
        unsafe { libc::kill(pid, signal) };
    }

    /// Waits for the process to end: its status, stdout and stderr.
    pub fn wait(self) -> (ExitStatus, String, String) {
        let Attached {
            mut child,
            stdout,
            stderr,
        } = self;
        let status = child.wait().expect("wait");
        (
            status,
            stdout.join().unwrap_or_default(),
            stderr.join().unwrap_or_default(),
        )
    }
}

/// Output as text, with both streams for failure messages.
pub fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs a command and panics with its output unless it succeeds.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let (o, e) = text(&out);
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}\nstdout:\n{o}\nstderr:\n{e}",
        out.status
    );
    out
}

static BUILD_LOCK: Mutex<()> = Mutex::new(());

/// Held by every test that (re)builds a built-in target in the repository, so that no test reads a
/// bundle while another rewrites it.
pub fn build_lock() -> std::sync::MutexGuard<'static, ()> {
    BUILD_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Builds (once per test binary) the bundle of a built-in target in the repository and returns its path.
pub fn bundle(target: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<Vec<(String, PathBuf)>>> = OnceLock::new();
    let built = BUILT.get_or_init(|| Mutex::new(Vec::new()));
    let _guard = build_lock();
    if let Some((_, p)) = built
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .find(|(t, _)| t == target)
    {
        return p.clone();
    }
    let out = run_ok(
        ebpf_pack()
            .arg("-C")
            .arg(repo())
            .args(["build", "--target", target]),
    );
    let (stdout, _) = text(&out);
    let rel = stdout
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("build printed no bundle: {stdout}"));
    let path = repo().join(rel);
    built
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((target.to_string(), path.clone()));
    path
}

/// Builds built-in `target` with `ebpf-pack build --full-std` (rustup's prebuilt std; the default
/// rebuilds it) as bundle `full-std-<version>-<target>` (beside the default bundle, which stays) and
/// returns its path.
pub fn full_std_bundle(target: &str) -> PathBuf {
    let _guard = build_lock();
    let out = run_ok(ebpf_pack().arg("-C").arg(repo()).args([
        "build",
        "--target",
        target,
        "--full-std",
        "--bundle-name",
        "full-std",
    ]));
    let (stdout, _) = text(&out);
    let rel = stdout
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("build printed no bundle: {stdout}"));
    repo().join(rel)
}

/// A name no other process (or earlier run) uses: `ebpfpack-TAG-PID-NANOS`.
pub fn unique(tag: &str) -> String {
    format!(
        "ebpfpack-{tag}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    )
}

/// A fresh temporary directory.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("ebpf-pack-test-")
        .tempdir()
        .expect("temp dir")
}

/// Unpacks a bundle into `dir` with the system tar (as a user would) and returns its top folder.
pub fn unpack(bundle: &Path, dir: &Path) -> PathBuf {
    run_ok(
        Command::new("tar")
            .arg("-xzf")
            .arg(bundle)
            .arg("-C")
            .arg(dir),
    );
    std::fs::read_dir(dir)
        .expect("read")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_dir())
        .expect("bundle has a top folder")
}

/// Writes a target file `NAME.yaml` with `body` into `dir` and returns its path.
pub fn write_target(dir: &Path, name: &str, body: &str) -> PathBuf {
    let file = dir.join(format!("{name}.yaml"));
    std::fs::write(&file, body).expect("write target file");
    file
}

/// Runs `ebpf-pack build --target-file FILE` in the repository (plus `extra` arguments first).
pub fn build_target_file(file: &Path, extra: &[&str]) -> Output {
    ebpf_pack()
        .arg("-C")
        .arg(repo())
        .args(extra)
        .args(["build", "--target-file"])
        .arg(file)
        .output()
        .expect("run ebpf-pack")
}

/// Builds a target file that must succeed; returns the bundle's path and the command's stderr.
pub fn built_bundle(file: &Path, extra: &[&str]) -> (PathBuf, String) {
    let out = build_target_file(file, extra);
    let (stdout, stderr) = text(&out);
    assert!(
        out.status.success(),
        "build of {} failed:\n{stdout}\n{stderr}",
        file.display()
    );
    let rel = stdout
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("build printed no bundle: {stdout}"));
    (repo().join(rel), stderr)
}

/// Removes a bundle and its .sha256 (bundles of test-only targets).
pub fn remove_bundle(path: &Path) {
    std::fs::remove_file(path).expect("remove bundle");
    std::fs::remove_file(format!("{}.sha256", path.display())).expect("remove .sha256");
}
