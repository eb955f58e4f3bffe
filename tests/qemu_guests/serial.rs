//! `ebpf-pack run` over a real serial console: QEMU guests (arm64, armv7) booted by `ebpf-pack try
//! --serve` with a busybox shell on their UART, served on a Unix socket. The bundle is pushed over the
//! console in checked base64 chunks (one damaged on the way by a proxy, and sent again), the probes'
//! events of the guest's workload come back framed while the kernel prints into the same console, the
//! loader's exit status is carried back, Ctrl-C stops it, and a host that vanishes leaves nothing
//! running. `run --via qemu` boots its own guest through the same code.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ebpf_pack::arch::Arch;
use ebpf_pack::console::{BOARD_SILENCE_SECS, Console, Login, SerialSpec};

use super::support::*;
use super::{GuestEnv, env_path, has_qemu, provisioned, target_file, tier_dir};

const MARK: &str = "/tmp/ebpf-pack-serial-mark";

/// A guest served by `ebpf-pack try --serve`, killed (with its QEMU) when dropped.
struct Served {
    child: Child,
    socket: PathBuf,
}

impl Drop for Served {
    fn drop(&mut self) {
        // SIGTERM: try exits and its guest's QEMU goes with it (ShellGuest's drop).
        // SAFETY: signalling our own child.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

fn serve(name: &str, env: &GuestEnv, target: &[&str]) -> Served {
    let socket = tier_dir().join(format!("{name}.sock"));
    let _ = std::fs::remove_file(&socket);
    let child = ebpf_pack()
        .arg("-C")
        .arg(repo())
        .arg("try")
        .args(target)
        .arg("--kernel")
        .arg(env_path(env, "kernel"))
        .arg("--busybox")
        .arg(env_path(env, "busybox"))
        .arg("--workload")
        .arg(repo().join("tests/fixtures/serial-workload.sh"))
        .arg("--serve")
        .arg(&socket)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("ebpf-pack try --serve");
    let start = Instant::now();
    while !socket.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "try --serve made no socket {}",
            socket.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Served { child, socket }
}

/// A TCP port in front of the guest's console socket that damages one byte of the first line the
/// host sends starting with `prefix` (line noise on a UART), once.
fn noisy_proxy(socket: &Path, prefix: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let socket = socket.to_path_buf();
    std::thread::spawn(move || {
        let mut damaged = false;
        for conn in listener.incoming() {
            let Ok(host) = conn else { return };
            let Ok(guest) = UnixStream::connect(&socket) else {
                return;
            };
            let (mut host_r, mut guest_w) = (
                host.try_clone().expect("clone"),
                guest.try_clone().expect("clone"),
            );
            let (mut guest_r, mut host_w) = (guest, host);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut guest_r, &mut host_w);
            });
            let mut line = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = match host_r.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let mut out = Vec::with_capacity(n);
                for &b in &buf[..n] {
                    line.push(b);
                    if b == b'\n' {
                        if !damaged && line.starts_with(prefix.as_bytes()) {
                            damaged = true;
                            let at = line.len() - 30;
                            line[at] = if line[at] == b'A' { b'B' } else { b'A' };
                        }
                        out.append(&mut line);
                    }
                }
                if guest_w.write_all(&out).is_err() {
                    break;
                }
            }
            let _ = guest_w.write_all(&line);
        }
    });
    port
}

fn run(via: &str, bundle: &Path, loader_args: &[&str]) -> (bool, Option<i32>, String, String) {
    let out = ebpf_pack()
        .arg("-C")
        .arg(repo())
        .args(["run", "--bundle"])
        .arg(bundle)
        .args(["--via", via, "--format", "json", "--"])
        .args(loader_args)
        .output()
        .expect("ebpf-pack run");
    let (stdout, stderr) = text(&out);
    (out.status.success(), out.status.code(), stdout, stderr)
}

/// `ebpf-pack run` of opensnoop with no --duration: it runs until it is stopped.
fn open_ended_run(bundle: &Path, via: &str) -> Command {
    let mut cmd = ebpf_pack();
    cmd.arg("-C")
        .arg(repo())
        .args(["run", "--bundle"])
        .arg(bundle)
        .args(["--via", via, "--", "opensnoop"]);
    cmd
}

/// The end of a console transcript (`EBPF_PACK_CONSOLE_LOG`), for a failure message.
fn transcript_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(60);
    format!(
        "console transcript {} (last {} of {} records):\n{}",
        path.display(),
        lines.len() - from,
        lines.len(),
        lines[from..].join("\n")
    )
}

/// Asks the guest's shell whether an ebpf-run is still running, over a console of its own.
fn loaders_running(socket: &Path) -> String {
    let spec = SerialSpec::parse(&format!("unix:{}", socket.display())).expect("spec");
    let mut console = Console::open(&spec).expect("console");
    console
        .attach_shell(&Login::from_env(), Duration::from_secs(60))
        .expect("the guest's shell");
    let (_, lines) = console
        .script("pidof ebpf-run || true", Duration::from_secs(30), "pidof")
        .expect("pidof");
    lines.join(" ").trim().to_string()
}

/// One guest's whole serial story; returns a list of problems.
fn serial_story(name: &str, served: &Served, bundle: &Path, proxy: Option<u16>) -> Vec<String> {
    let mut problems = Vec::new();
    let unix = format!("serial:unix:{}", served.socket.display());
    let first_via = match proxy {
        Some(port) => format!("serial:tcp:127.0.0.1:{port}"),
        None => unix.clone(),
    };
    // 1. First run: the push (through the noisy proxy where there is one), then the events.
    let (ok, _, stdout, stderr) = run(&first_via, bundle, &["opensnoop", "--duration", "6"]);
    if !ok {
        problems.push(format!("{name}: first run failed:\n{stderr}"));
        return problems;
    }
    if !stderr.contains("ebpf-pack: pushed ") {
        problems.push(format!("{name}: no push reported:\n{stderr}"));
    }
    if proxy.is_some() && !stderr.contains("sent again") {
        problems.push(format!(
            "{name}: the damaged chunk was not sent again:\n{stderr}"
        ));
    }
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{name}: not JSON ({e}): {l}")))
        .collect();
    let opens = events
        .iter()
        .filter(|e| e["probe"] == "opensnoop" && e["path"].as_str() == Some(MARK))
        .count();
    if opens < 2 {
        problems.push(format!(
            "{name}: {opens} opens of {MARK} seen in 6 s (the workload opens it every second):\n{stdout}"
        ));
    }
    if !events.iter().any(|e| e.get("printed").is_some()) {
        problems.push(format!("{name}: no final summary line:\n{stdout}"));
    }
    if !stderr.contains("ebpf-pack-noise") {
        problems.push(format!(
            "{name}: the kernel's console messages did not show (the test meant them to interleave):\n{stderr}"
        ));
    }
    // 2. The same bundle again: found by its SHA-256, nothing pushed; the loader's status comes back.
    let (ok, code, _, stderr) = run(&unix, bundle, &["no-such-probe"]);
    if ok
        || code != Some(1)
        || !stderr.contains("already holds")
        || !stderr.contains("exited with 1")
    {
        problems.push(format!(
            "{name}: second run (unknown probe) should find the bundle and exit 1, got {code:?}:\n{stderr}"
        ));
    }
    // 3. Ctrl-C mid-stream: the loader stops there, its summary still arrives, exit 0.
    let attached = start_attached(&mut open_ended_run(bundle, &unix));
    std::thread::sleep(Duration::from_secs(2));
    attached.signal(libc::SIGINT);
    let (status, stdout, stderr) = attached.wait();
    if !status.success() || !stdout.contains("printed") {
        problems.push(format!(
            "{name}: Ctrl-C run ended {status} without the summary:\n{stdout}\n{stderr}"
        ));
    }
    let running = loaders_running(&served.socket);
    if !running.is_empty() {
        problems.push(format!(
            "{name}: ebpf-run still running after Ctrl-C: pid {running}"
        ));
    }
    // 4. The host vanishes (SIGKILL): the board notices the silence and stops the loader.
    let attached = start_attached(&mut open_ended_run(bundle, &unix));
    attached.signal(libc::SIGKILL);
    let _ = attached.wait();
    std::thread::sleep(Duration::from_secs(u64::from(BOARD_SILENCE_SECS) + 5));
    let running = loaders_running(&served.socket);
    if !running.is_empty() {
        problems.push(format!(
            "{name}: ebpf-run still running {} s after the host was killed: pid {running}",
            BOARD_SILENCE_SECS + 5
        ));
    }
    problems
}

#[test]
fn run_over_the_serial_console_of_arm64_and_armv7_guests() {
    let Some(envs) = provisioned() else {
        return;
    };
    if ![Arch::Arm64, Arch::Arm].into_iter().all(has_qemu) {
        return;
    }
    let (arm64, arm) = (&envs["arm64"], &envs["arm"]);
    let armv7_file = target_file(
        "guest-armv7",
        Arch::Arm,
        &env_path(arm, "vmlinux").display().to_string(),
    );
    // bundle() takes the build lock itself.
    let arm64_bundle = bundle("qemuarm64");
    let armv7_bundle = {
        let _lock = build_lock();
        built_bundle(&armv7_file, &[]).0
    };
    let arm64_guest = serve("serial-arm64", arm64, &["--target", "qemuarm64"]);
    let armv7_file_arg = armv7_file.display().to_string();
    let armv7_guest = serve("serial-armv7", arm, &["--target-file", &armv7_file_arg]);
    let port = noisy_proxy(&arm64_guest.socket, "C 2 ");
    let problems: Vec<String> = std::thread::scope(|s| {
        let a = s.spawn(|| serial_story("arm64", &arm64_guest, &arm64_bundle, Some(port)));
        let b = s.spawn(|| serial_story("armv7", &armv7_guest, &armv7_bundle, None));
        [a, b]
            .into_iter()
            .flat_map(|h| h.join().expect("story thread"))
            .collect()
    });
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

#[test]
fn run_via_qemu_boots_its_own_guest() {
    let Some(envs) = provisioned() else {
        return;
    };
    if !has_qemu(Arch::Arm64) {
        return;
    }
    let arm64 = &envs["arm64"];
    let transcript = tier_dir().join("run-via-qemu.console.log");
    let _ = std::fs::remove_file(&transcript);
    let out = Command::new(env!("CARGO_BIN_EXE_ebpf-pack"))
        .env("EBPF_PACK_CONSOLE_LOG", &transcript)
        .arg("-C")
        .arg(repo())
        .args(["run", "--target", "qemuarm64", "--via", "qemu", "--kernel"])
        .arg(env_path(arm64, "kernel"))
        .arg("--busybox")
        .arg(env_path(arm64, "busybox"))
        .arg("--workload")
        .arg(repo().join("tests/fixtures/serial-workload.sh"))
        .args(["--", "opensnoop", "--duration", "4"])
        .output()
        .expect("ebpf-pack run --via qemu");
    let (stdout, stderr) = text(&out);
    assert!(
        out.status.success(),
        "{stdout}\n{stderr}\n{}",
        transcript_tail(&transcript)
    );
    assert!(
        stdout.contains(MARK),
        "no open of {MARK}:\n{stdout}\n{stderr}"
    );
    assert!(stderr.contains("pushed "), "{stderr}");
}

/// `ebpf-pack try -e`: a bpftrace program with kprobes (which this host lacks) compiled for the
/// arm64 target, run in its guest by `run --via qemu` with the serial workload (two opens a second),
/// and printed here as bpftrace prints it: the count, the kprobe's kernel stacks named from the
/// guest's kallsyms, a kprobe glob's functions named by the guest's ebpf-run, and clone's flags
/// read in arm64's own argument order.
#[test]
fn try_runs_a_kprobe_one_liner_in_its_guest() {
    let Some(envs) = provisioned() else {
        return;
    };
    if !has_qemu(Arch::Arm64) {
        return;
    }
    let arm64 = &envs["arm64"];
    let transcript = tier_dir().join("try-oneliner.console.log");
    let _ = std::fs::remove_file(&transcript);
    let out = Command::new(env!("CARGO_BIN_EXE_ebpf-pack"))
        .env("EBPF_PACK_CONSOLE_LOG", &transcript)
        .arg("-C")
        .arg(repo())
        .args(["try", "--target", "qemuarm64", "--kernel"])
        .arg(env_path(arm64, "kernel"))
        .arg("--busybox")
        .arg(env_path(arm64, "busybox"))
        .arg("--workload")
        .arg(repo().join("tests/fixtures/serial-workload.sh"))
        .args(["--duration", "5", "-e"])
        .arg(
            "kprobe:do_sys_openat2 { @opens = count(); @k[kstack(2)] = count(); } \
             kprobe:do_sys_open* { @f[func] = count(); } \
             tracepoint:syscalls:sys_enter_clone { @cf[args.clone_flags & 0xff, args.child_tidptr != 0, args.tls != 0] = count(); }",
        )
        .output()
        .expect("ebpf-pack try -e");
    let (stdout, stderr) = text(&out);
    let shown = format!("{stdout}\n{stderr}\n{}", transcript_tail(&transcript));
    assert!(out.status.success(), "{shown}");
    let opens: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("@opens: ")?.parse().ok())
        .unwrap_or_else(|| panic!("@opens in:\n{shown}"));
    assert!(opens >= 2, "{opens} opens in 5 s of the workload:\n{shown}");
    // The kprobe's own function is the innermost frame of its stacks.
    let lines: Vec<&str> = stdout.lines().collect();
    let frame = lines
        .iter()
        .position(|l| l.starts_with("    do_sys_openat2+"))
        .unwrap_or_else(|| panic!("a kernel stack in do_sys_openat2:\n{shown}"));
    assert_eq!(lines[frame - 1], "@k[", "{shown}");
    // arm64's clone takes tls before child_tidptr (CONFIG_CLONE_BACKWARDS): read in the guest
    // kernel's order, the shell's forks (glibc's fork: SIGCHLD, a child tid pointer, no TLS) show
    // as such; read in x86_64's order they would have a TLS and no child tid pointer.
    assert!(
        stdout.lines().any(|l| l.starts_with("@cf[17, 1, 0]: ")),
        "forks with SIGCHLD, a child tid pointer and no TLS:\n{shown}"
    );
    let by_name: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("@f[do_sys_openat2]: ")?.parse().ok())
        .unwrap_or_else(|| panic!("@f[do_sys_openat2] in:\n{shown}"));
    // The glob attaches after the plain kprobe (it reads the kernel's function list first), and
    // the maps are read one after the other while the workload goes on: about as many, not equal.
    assert!(
        by_name > 0 && by_name.abs_diff(opens) <= opens / 4 + 4,
        "{by_name} by name, {opens} counted:\n{shown}"
    );
    // kstack(2) keeps two frames: stacks that differ deeper print once, their counts added.
    let stacks = stdout.matches("@k[\n    do_sys_openat2+").count();
    assert_eq!(stacks, 1, "{shown}");
}
