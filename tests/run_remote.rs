//! `ebpf-pack run --via ssh` end to end against a real OpenSSH server on a loopback port (started by
//! the test with throwaway keys), on this kernel: the bundle is pushed once and found the second time,
//! execsnoop reports the test's own exec, Ctrl-C stops the board's loader with its summary shown, and a
//! killed ssh connection leaves nothing attached either.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

/// An sshd on 127.0.0.1, killed on drop.
struct Sshd {
    child: Child,
    port: u16,
    /// A wrapper for EBPF_PACK_SSH: ssh with the test's key and no known-hosts checks.
    ssh: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn start_sshd() -> Option<Sshd> {
    if !require(
        Path::new("/usr/sbin/sshd").is_file(),
        "sshd (apt-get install openssh-server; scripts/install-deps.sh)",
    ) {
        return None;
    }
    let dir = tempdir();
    let d = dir.path();
    for (key, kind) in [("host", "ed25519"), ("user", "ed25519")] {
        run_ok(
            Command::new("ssh-keygen")
                .args(["-q", "-t", kind, "-N", "", "-f"])
                .arg(d.join(key)),
        );
    }
    std::fs::copy(d.join("user.pub"), d.join("authorized_keys")).expect("authorized_keys");
    std::fs::create_dir_all("/run/sshd").expect("/run/sshd");
    let port = free_port();
    let child = Command::new("/usr/sbin/sshd")
        .args(["-D", "-e", "-f", "/dev/null", "-p", &port.to_string(), "-h"])
        .arg(d.join("host"))
        .arg("-o")
        .arg(format!(
            "AuthorizedKeysFile={}",
            d.join("authorized_keys").display()
        ))
        .args([
            "-o",
            "ListenAddress=127.0.0.1",
            "-o",
            "PermitRootLogin=prohibit-password",
            "-o",
            "StrictModes=no",
            "-o",
            "UsePAM=no",
            "-o",
            "PidFile=none",
        ])
        .stderr(Stdio::null())
        .spawn()
        .expect("start sshd");
    let ssh = d.join("ssh");
    std::fs::write(
        &ssh,
        format!(
            "#!/bin/sh\nexec ssh -F /dev/null -i {} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \"$@\"\n",
            d.join("user").display()
        ),
    )
    .expect("ssh wrapper");
    run_ok(Command::new("chmod").arg("+x").arg(&ssh));
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "sshd did not listen on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(Sshd {
        child,
        port,
        ssh,
        _dir: dir,
    })
}

/// `ebpf-pack run` of `probe` over the test's sshd, returned once the board's loader attached.
fn start_run(sshd: &Sshd, bundle: &Path, probe: &str) -> Attached {
    start_attached(
        ebpf_pack()
            .arg("run")
            .arg("--bundle")
            .arg(bundle)
            .arg("--via")
            .arg(format!("ssh://root@127.0.0.1:{}", sshd.port))
            .args(["--", probe, "--duration", "120"])
            .env("EBPF_PACK_SSH", &sshd.ssh),
    )
}

/// Names of the BPF programs loaded in the kernel now.
fn loaded_programs() -> String {
    text(&run_ok(Command::new("bpftool").args(["prog", "show"]))).0
}

fn wait_until_detached(name: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while loaded_programs().contains(name) {
        assert!(
            Instant::now() < deadline,
            "{name} still loaded:\n{}",
            loaded_programs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The tests share the board's cache folder and the kernel: one at a time.
static BOARD: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn run_over_ssh_pushes_once_shows_events_and_leaves_nothing_attached() {
    if !can_load_bpf() {
        return;
    }
    let _one_at_a_time = BOARD.lock().unwrap_or_else(|e| e.into_inner());
    ensure_tracefs();
    let Some(sshd) = start_sshd() else {
        return;
    };
    let bundle = bundle("x86_64");
    let sha = text(&run_ok(Command::new("sha256sum").arg(&bundle)))
        .0
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    let _ = std::fs::remove_dir_all(Path::new("/var/cache/ebpf-pack").join(&sha));

    // 1. Pushed, events of our own exec, Ctrl-C: the loader's summary arrives, exit 0, nothing left.
    let run = start_run(&sshd, &bundle, "execsnoop");
    let scratch = tempdir();
    let name = format!("epk{}", std::process::id() % 100_000);
    let program = scratch.path().join(&name);
    std::fs::copy("/bin/true", &program).expect("copy true");
    let exec_pid = Command::new(&program).spawn().expect("exec").id();
    std::thread::sleep(Duration::from_millis(800));
    run.signal(libc::SIGINT);
    let (status, out, err) = run.wait();
    assert!(status.success(), "run ended with {status}\n{out}\n{err}");
    assert!(err.contains("ebpf-pack: pushed"), "{err}");
    assert!(out.starts_with("PROBE "), "a header row first:\n{out}");
    let row = out.lines().find(|l| {
        l.starts_with("execsnoop") && l.contains(&format!(" {exec_pid} ")) && l.contains(&name)
    });
    assert!(row.is_some(), "no row for pid {exec_pid} ({name}):\n{out}");
    assert!(
        out.contains("execsnoop: ") && out.contains(" lost"),
        "summary: {out}"
    );
    wait_until_detached("enter_execve");

    // 2. Found on the board by its SHA-256; the ssh connection killed under the run: the board
    //    side stops its loader.
    let run = start_run(&sshd, &bundle, "execsnoop");
    let ssh_pid = text(&run_ok(
        Command::new("pgrep")
            .arg("-P")
            .arg(run.child.id().to_string()),
    ))
    .0
    .trim()
    .lines()
    .next()
    .unwrap_or_default()
    .parse::<i32>()
    .expect("the transport's pid");
    // SAFETY: kill(2) on our grandchild, the ssh client, still running.
    unsafe { libc::kill(ssh_pid, libc::SIGKILL) };
    let (status, _, err) = run.wait();
    assert!(err.contains("already holds"), "{err}");
    assert!(!status.success(), "a killed connection is a failure: {err}");
    wait_until_detached("enter_execve");
}

#[test]
fn run_local_passes_json_through_records_it_and_refuses_what_cannot_work() {
    if !can_load_bpf() {
        return;
    }
    let _one_at_a_time = BOARD.lock().unwrap_or_else(|e| e.into_inner());
    ensure_tracefs();
    let x86 = bundle("x86_64");
    let scratch = tempdir();
    let record = scratch.path().join("run.jsonl");
    let out = run_ok(
        ebpf_pack()
            .arg("run")
            .arg("--bundle")
            .arg(&x86)
            .args(["--via", "local", "--format", "json", "--output"])
            .arg(&record)
            .args(["--", "syscount", "--duration", "2"]),
    );
    let (stdout, _) = text(&out);
    assert_eq!(
        std::fs::read_to_string(&record).expect("recorded"),
        stdout,
        "--output records exactly the stream"
    );
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert!(
        lines.iter().any(|v| v["probe"] == "syscount"
            && v["key"].is_number()
            && v["value"]["count"].is_u64()),
        "{stdout}"
    );

    // Bad transports and a bundle of another arch: refused before anything runs on the board.
    let refuse = |args: &[&str], bundle: &Path, code: i32, wanted: &str| {
        let out = ebpf_pack()
            .arg("run")
            .arg("--bundle")
            .arg(bundle)
            .args(args)
            .output()
            .expect("run");
        let (o, e) = text(&out);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {o}{e}");
        assert!(e.contains(wanted), "{args:?}: wanted `{wanted}` in {e}");
    };
    refuse(&["--via", "telnet board"], &x86, 2, "is not a transport");
    refuse(
        &["--via", "serial:/dev/ttyUSB-no-such-device"],
        &x86,
        1,
        "cannot open serial:/dev/ttyUSB-no-such-device@115200",
    );
    refuse(&["--via", "serial:ttyUSB0"], &x86, 2, "names no device");
    let closed = free_port();
    refuse(
        &["--via", &format!("ssh://root@127.0.0.1:{closed}")],
        &x86,
        1,
        "cannot reach root@127.0.0.1",
    );
    refuse(
        &["--via", "local"],
        &bundle("rpi4"),
        2,
        "is a `x86_64` machine, but",
    );
}

/// `--interval`: plain dump rounds into a pipe; on a terminal (a pty of script(1)) the live view on
/// the alternate screen, left at the end with the final dump printed below.
#[test]
fn run_interval_is_a_live_view_on_a_terminal_and_plain_rounds_elsewhere() {
    if !can_load_bpf() {
        return;
    }
    let _one_at_a_time = BOARD.lock().unwrap_or_else(|e| e.into_inner());
    ensure_tracefs();
    let x86 = bundle("x86_64");
    let out = run_ok(
        ebpf_pack()
            .arg("run")
            .arg("--bundle")
            .arg(&x86)
            .args(["--via", "local", "--interval", "1"])
            .args(["--", "syscount", "--duration", "3"]),
    );
    let (stdout, _) = text(&out);
    let rounds = stdout.matches("syscount map counts:").count();
    assert!(
        rounds >= 3,
        "two interval rounds and the exit dump: {rounds}\n{stdout}"
    );
    assert!(
        !stdout.contains("\x1b["),
        "no escapes into a pipe: {stdout}"
    );

    let command = format!(
        "{} run --bundle {} --via local --interval 1 -- syscount --duration 3",
        env!("CARGO_BIN_EXE_ebpf-pack"),
        x86.display()
    );
    let out = run_ok(
        std::process::Command::new("script")
            .args(["-qfec", &command, "/dev/null"])
            .env("COLUMNS", "100")
            .env("LINES", "30"),
    );
    let (screen, _) = text(&out);
    let enter = screen.find("\x1b[?1049h").expect("the alternate screen");
    let leave = screen
        .rfind("\x1b[?1049l")
        .expect("the alternate screen left");
    assert!(enter < leave);
    let live = &screen[enter..leave];
    assert!(
        live.contains("maps every 1 s") && live.contains("refreshes"),
        "{live}"
    );
    assert!(live.contains("syscount map counts:"), "{live}");
    // After the view: the final dump, as plain lines in the scrollback.
    let after = &screen[leave..];
    assert!(after.contains("syscount map counts:"), "{after}");
    assert!(after.contains("SYSCALL"), "{after}");
}

/// Runs `ebpf-pack run --target x86_64 --via local ITEM --format json -- --duration 3` while this
/// process calls getpgid(2) in a loop; returns the count the board's map dump shows for this process.
fn getpgid_calls_seen(item: &Path) -> u64 {
    let _build = build_lock();
    let mut child = ebpf_pack()
        .arg("-C")
        .arg(repo())
        .args(["run", "--target", "x86_64", "--via", "local"])
        .arg(item)
        .args(["--format", "json", "--", "--duration", "3"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ebpf-pack run");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut calls = 0u64;
    while Instant::now() < deadline {
        // SAFETY: getpgid has no memory effects.
        unsafe { libc::getpgid(0) };
        calls += 1;
        if calls.is_multiple_of(1000) {
            if child.try_wait().expect("try_wait").is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let out = child.wait_with_output().expect("run");
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("1 program attached (pgidcount)"),
        "only the loose probe runs: {stderr}"
    );
    let me = u64::from(std::process::id());
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["probe"] == "pgidcount" && v["map"] == "calls" && v["key"] == me)
        .and_then(|v| v["value"].as_u64())
        .unwrap_or_else(|| panic!("no count for pid {me}:\n{stdout}\n{stderr}"))
}

/// A loose FILE.bpf.c is compiled for the board and bundled with the project's probes (a bundle of
/// its own); the object it became runs again as a loose FILE.bpf.o; an object of the wrong byte
/// order is refused naming the file.
#[test]
fn run_compiles_and_sends_loose_probes() {
    if !can_load_bpf() {
        return;
    }
    let _one_at_a_time = BOARD.lock().unwrap_or_else(|e| e.into_inner());
    ensure_tracefs();
    let source = repo().join("tests/fixtures/loose/pgidcount.bpf.c");
    assert!(getpgid_calls_seen(&source) >= 1000);
    let bundle = repo().join("dist/ebpf-pack-run-0.1.0-x86_64.tar.gz");
    let scratch = tempdir();
    let top = unpack(&bundle, scratch.path());
    for probe in ["execsnoop", "opensnoop", "pgidcount", "syscount"] {
        assert!(top.join(format!("bpf/{probe}.bpf.o")).is_file(), "{probe}");
    }
    let object = scratch.path().join("pgidcount.bpf.o");
    std::fs::copy(top.join("bpf/pgidcount.bpf.o"), &object).expect("copy");
    assert!(getpgid_calls_seen(&object) >= 1000);

    let out = ebpf_pack()
        .arg("-C")
        .arg(repo())
        .args(["run", "--target", "s390x", "--via", "local"])
        .arg(&object)
        .output()
        .expect("run");
    let (o, e) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{o}{e}");
    assert!(
        e.contains(&format!(
            "{}: object is little-endian BPF",
            object.display()
        )),
        "{e}"
    );
}
