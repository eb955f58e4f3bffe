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
    wait_until_detached("handle_exec");

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
    wait_until_detached("handle_exec");
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
        lines
            .iter()
            .any(|v| v["probe"] == "syscount" && v["key"].is_number() && v["value"].is_u64()),
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
