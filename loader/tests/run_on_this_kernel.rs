//! Runs the built `ebpf-run` against this host's kernel: CO-RE probes compiled by clang-19 from
//! `tests/fixtures/`, a real tracepoint, ring buffer and maps, and the failure paths (verifier rejection,
//! missing BTF, missing tracepoint, unsupported program kind) with their exit codes.
//!
//! Needs clang-19, bpftool and /sys/kernel/btf/vmlinux; the kernel part needs root. Without them the
//! tests say SKIPPED loudly — unless `CI=true`, where a missing requirement is a failure.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

const FIXTURES: [&str; 13] = [
    "ert_open",
    "ert_poison",
    "ert_kconfig",
    "ert_sizes",
    "ert_alt",
    "ert_bare",
    "ert_tc",
    "ert_reject",
    "ert_missing_tp",
    "ert_xdp",
    "ert_kinds",
    "ert_fentry",
    "ert_kprobe",
];

/// Held by the tests that load `ert_open`: one checks that none of its programs is left behind, which
/// another test's run of the same object must not be taken for.
static ERT_OPEN: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn ert_open_lock() -> std::sync::MutexGuard<'static, ()> {
    ERT_OPEN.lock().unwrap_or_else(|e| e.into_inner())
}

fn under_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// Reports a missing requirement: a failure under CI, a loud skip elsewhere.
fn skip(test: &str, why: &str) {
    assert!(!under_ci(), "{test}: {why} (required under CI=true)");
    // Straight to stderr, past the test harness's capture, so the skip is seen.
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
}

fn ebpf_run() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ebpf-run"))
}

fn target_arch_define() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "-D__TARGET_ARCH_x86",
        "aarch64" => "-D__TARGET_ARCH_arm64",
        "arm" => "-D__TARGET_ARCH_arm",
        "riscv64" => "-D__TARGET_ARCH_riscv",
        "s390x" => "-D__TARGET_ARCH_s390",
        _ => "-D__TARGET_ARCH_x86",
    }
}

fn run_ok(cmd: &mut Command) -> Result<Output, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(out)
}

/// Compiles every fixture once (with a vmlinux.h generated from this kernel's BTF).
fn build_fixtures() -> Result<PathBuf, String> {
    let kernel_btf = Path::new("/sys/kernel/btf/vmlinux");
    if !kernel_btf.exists() {
        return Err("this kernel has no /sys/kernel/btf/vmlinux".into());
    }
    let dir = std::env::temp_dir().join(format!("ebpf-run-it-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let header = run_ok(
        Command::new("bpftool")
            .args(["btf", "dump", "file"])
            .arg(kernel_btf)
            .args(["format", "c"]),
    )?;
    std::fs::write(dir.join("vmlinux.h"), header.stdout).map_err(|e| e.to_string())?;
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let target = if cfg!(target_endian = "big") {
        "bpfeb"
    } else {
        "bpfel"
    };
    for name in FIXTURES {
        run_ok(
            Command::new("clang-19")
                .args(["-g", "-O2", "-target", target, target_arch_define()])
                .arg("-I")
                .arg(&dir)
                .arg("-c")
                .arg(src.join(format!("{name}.bpf.c")))
                .arg("-o")
                .arg(dir.join(format!("{name}.bpf.o"))),
        )?;
    }
    // The user-space target of the uprobe test.
    run_ok(
        Command::new("clang-19")
            .args(["-O1", "-g0", "-o"])
            .arg(dir.join("ert_uprobe_target"))
            .arg(src.join("ert_uprobe_target.c")),
    )?;
    // A shipped probe with a `const volatile` setting, compiled like the fixtures.
    let probes = Path::new(env!("CARGO_MANIFEST_DIR")).join("../probes");
    run_ok(
        Command::new("clang-19")
            .args(["-g", "-O2", "-target", target, target_arch_define()])
            .arg("-I")
            .arg(&dir)
            .arg("-I")
            .arg(probes.join("include"))
            .arg("-c")
            .arg(probes.join("syscount.bpf.c"))
            .arg("-o")
            .arg(dir.join("syscount.bpf.o")),
    )?;
    Ok(dir)
}

/// The compiled fixtures, or `None` after reporting why they cannot be built.
fn fixtures(test: &str) -> Option<&'static Path> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match BUILT.get_or_init(build_fixtures) {
        Ok(dir) => Some(dir),
        Err(why) => {
            skip(test, &format!("cannot build BPF fixtures: {why}"));
            None
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Waits for `child` to exit, killing it and failing after `limit`.
fn wait_for(child: &mut Child, limit: Duration) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait for ebpf-run") {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("ebpf-run did not exit within {limit:?}");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// A running `ebpf-run` whose output is collected in the background.
struct Running {
    child: Child,
    attached: mpsc::Receiver<()>,
    stdout: thread::JoinHandle<String>,
    stderr: Option<thread::JoinHandle<String>>,
}

fn spawn(args: &[&std::ffi::OsStr]) -> Running {
    spawn_command(ebpf_run().args(args))
}

fn spawn_command(cmd: &mut Command) -> Running {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ebpf-run");
    let mut out = child.stdout.take().expect("stdout pipe");
    let err = child.stderr.take().expect("stderr pipe");
    let (tx, attached) = mpsc::channel();
    let stdout = thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        text(&s)
    });
    let stderr = thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if line.contains("attached") {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    Running {
        child,
        attached,
        stdout,
        stderr: Some(stderr),
    }
}

impl Running {
    fn wait_attached(&mut self) {
        if self.attached.recv_timeout(Duration::from_secs(60)).is_err() {
            let _ = self.child.kill();
            let _ = self.child.wait();
            panic!("ebpf-run never attached; stderr:\n{}", self.take_stderr());
        }
    }

    fn take_stderr(&mut self) -> String {
        self.stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
    }

    fn finish(mut self, limit: Duration) -> (ExitStatus, String, String) {
        let status = wait_for(&mut self.child, limit);
        let err = self.take_stderr();
        let out = self.stdout.join().unwrap_or_default();
        (status, out, err)
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn ensure_tracefs() {
    if !Path::new("/sys/kernel/tracing/events").exists() {
        let _ = Command::new("mount")
            .args(["-t", "tracefs", "tracefs", "/sys/kernel/tracing"])
            .status();
    }
}

/// Opens `path` `times` times through openat(2) (glibc's `open` is openat).
fn open_repeatedly(path: &Path, times: usize) {
    for _ in 0..times {
        drop(std::fs::File::open(path).expect("open test file"));
    }
}

fn bpftool_show(what: &str) -> String {
    text(
        &run_ok(Command::new("bpftool").args([what, "show"]))
            .expect("bpftool show")
            .stdout,
    )
}

#[test]
fn refuses_unsupported_programs_and_lists_objects_without_the_kernel() {
    const TEST: &str = "refuses_unsupported_programs_and_lists_objects_without_the_kernel";
    let Some(dir) = fixtures(TEST) else {
        return;
    };

    let out = ebpf_run()
        .arg(dir.join("ert_xdp.bpf.o"))
        .output()
        .expect("run");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("program `ert_xdp` (section `xdp`): needs --iface IFACE"),
        "{err}"
    );
    assert!(!err.contains("attached"), "nothing may attach: {err}");

    let out = ebpf_run()
        .arg("--list")
        .arg(dir.join("ert_open.bpf.o"))
        .output()
        .expect("run");
    let listing = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for want in [
        "(CO-RE: needs kernel BTF)",
        "  program ert_on_openat  tracepoint/syscalls/sys_enter_openat  -> tracepoint syscalls/sys_enter_openat",
        "  map ert_events  ringbuf  record: struct ert_event",
        "  map ert_counts  hash  key: u32  value: u64",
        "  map ert_total  percpu_array  key: u32  value: u64",
    ] {
        assert!(listing.contains(want), "missing {want:?} in:\n{listing}");
    }

    // A bundle layout: probes are found by name under bpf/.
    let bundle = dir.join("bundle");
    std::fs::create_dir_all(bundle.join("bpf")).expect("mkdir");
    std::fs::copy(
        dir.join("ert_open.bpf.o"),
        bundle.join("bpf/ert_open.bpf.o"),
    )
    .expect("copy");
    let out = ebpf_run()
        .arg("--bundle")
        .arg(&bundle)
        .arg("nope")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("unknown probe `nope`; available: ert_open"));
    let out = ebpf_run()
        .arg("--bundle")
        .arg(&bundle)
        .arg("--list")
        .output()
        .expect("run");
    assert!(
        text(&out.stdout).starts_with("ert_open  "),
        "{}",
        text(&out.stdout)
    );

    let out = ebpf_run().arg("--frobnicate").output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    let out = ebpf_run().arg("--help").output().expect("run");
    assert!(out.status.success() && text(&out.stdout).contains("exit codes:"));
}

#[test]
fn runs_probes_on_this_kernel() {
    let _ert_open = ert_open_lock();
    const TEST: &str = "runs_probes_on_this_kernel";
    if !is_root() {
        return skip(TEST, "needs root for BPF (run the tests as root)");
    }
    let Some(dir) = fixtures(TEST) else {
        return;
    };
    ensure_tracefs();
    let obj = |name: &str| dir.join(format!("{name}.bpf.o"));
    let me = std::process::id();

    // 1. Events and maps: a uniquely named file opened by this process shows up with our pid.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let target = dir.join(format!("opened-by-{me}-{nanos}.txt"));
    std::fs::write(&target, b"x").expect("create test file");
    let open_obj = obj("ert_open");
    let mut run = spawn(&[open_obj.as_os_str(), "--duration".as_ref(), "3".as_ref()]);
    run.wait_attached();
    open_repeatedly(&target, 200);
    let (status, out, err) = run.finish(Duration::from_secs(60));
    assert!(status.success(), "exit {status}; stderr:\n{err}");
    assert!(
        err.contains("ebpf-run: 1 program attached (ert_open); stop with Ctrl-C"),
        "{err}"
    );
    let path = target.display().to_string();
    let event = out
        .lines()
        .find(|l| l.contains(&format!(" path={path}")))
        .unwrap_or_else(|| {
            panic!(
                "no event for {path}; stdout starts:\n{}",
                &out[..out.len().min(2000)]
            )
        });
    // Text lines are aligned in columns: compare with single spaces.
    let words = event.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words.starts_with(&format!("ert_open pid={me} tid=")),
        "{event}"
    );
    assert!(
        event.contains(" dfd=-100 "),
        "AT_FDCWD decodes as signed: {event}"
    );
    let dump = out
        .split("ert_open map ert_counts:\n")
        .nth(1)
        .expect("ert_counts dump");
    let row = dump
        .lines()
        .find(|l| l.starts_with(&format!("  key={me}  value=")))
        .unwrap_or_else(|| panic!("no ert_counts row for pid {me}:\n{dump}"));
    let count: u64 = row
        .rsplit('=')
        .next()
        .and_then(|v| v.parse().ok())
        .expect("count");
    assert!(count >= 200, "{row}");
    assert!(
        out.contains("ert_open map ert_total:\n  key=0  value="),
        "{out}"
    );
    assert!(
        !out.contains("map ert_events"),
        "ring buffers are not dumped"
    );

    // 1b. The log2 histogram of pids: our own pid's slot holds our opens.
    let hist = out
        .split("ert_open map ert_pid_hist:\n")
        .nth(1)
        .expect("ert_pid_hist dump");
    let mine = hist
        .split(&format!("  key={me}\n"))
        .nth(1)
        .unwrap_or_else(|| panic!("no histogram for pid {me}:\n{hist}"));
    assert!(
        mine.starts_with("     value               : count    distribution\n"),
        "{mine}"
    );
    let slot = 31 - me.leading_zeros();
    let (low, high) = (
        if slot == 0 { 0 } else { 1u64 << slot },
        (1u64 << (slot + 1)) - 1,
    );
    let row = mine
        .lines()
        .find(|l| l.starts_with(&format!("{low:>10} -> {high:<10} : ")))
        .unwrap_or_else(|| panic!("no slot {low} -> {high}:\n{mine}"));
    let count: u64 = row[26..]
        .split_whitespace()
        .next()
        .and_then(|c| c.parse().ok())
        .expect("slot count");
    assert!(count >= 200 && row.ends_with("****|"), "{row}");

    // 1c. JSON lines, with the maps printed every second as well as at exit.
    let mut run = spawn(&[
        open_obj.as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
        "--interval".as_ref(),
        "1".as_ref(),
        "--duration".as_ref(),
        "3".as_ref(),
    ]);
    run.wait_attached();
    open_repeatedly(&target, 200);
    let (status, out, err) = run.finish(Duration::from_secs(60));
    assert!(status.success(), "exit {status}; stderr:\n{err}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let event = lines
        .iter()
        .find(|v| v["map"] == "ert_events" && v["path"] == path.as_str())
        .unwrap_or_else(|| panic!("no JSON event for {path}"));
    assert_eq!(event["probe"], "ert_open");
    assert_eq!(event["pid"], me);
    assert_eq!(event["dfd"], -100, "{event}");
    assert!(event["tid"].is_u64() && event["uid"].is_u64() && event["flags"].is_u64());
    assert!(event["comm"].is_string(), "{event}");
    let counts: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|v| v["map"] == "ert_counts" && v["key"] == me)
        .collect();
    assert!(
        counts.len() >= 2,
        "--interval 1 for 3 s prints the maps more than once: {counts:?}"
    );
    assert!(
        counts
            .last()
            .is_some_and(|v| v["value"].as_u64() >= Some(200))
    );
    let hist = lines
        .iter()
        .rfind(|v| v["map"] == "ert_pid_hist" && v["key"] == me)
        .expect("histogram map row");
    assert!(
        hist["value"]["slots"][slot as usize].as_u64() >= Some(200),
        "{hist}"
    );

    // 2. SIGINT stops it cleanly: exit 0, maps still printed.
    let mut run = spawn(&[open_obj.as_os_str()]);
    run.wait_attached();
    open_repeatedly(&target, 1);
    // SAFETY: kill(2) on our own child's pid with a valid signal number.
    assert_eq!(
        unsafe { libc::kill(run.child.id() as libc::pid_t, libc::SIGINT) },
        0
    );
    let (status, out, err) = run.finish(Duration::from_secs(10));
    assert!(
        status.success(),
        "exit {status} after SIGINT; stderr:\n{err}"
    );
    assert!(out.contains("ert_open map ert_counts:"), "{out}");

    // 3. A verifier rejection: exit 3 with the tail of the verifier log.
    let out = ebpf_run().arg(obj("ert_reject")).output().expect("run");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("program `ert_reject`"), "{err}");
    assert!(err.contains("verifier log (last"), "{err}");
    assert!(err.contains("invalid mem access"), "{err}");
    // ... and the whole log in a file it names.
    let saved = err
        .lines()
        .find_map(|l| l.trim().strip_prefix("whole verifier log ("))
        .and_then(|l| l.split_once(" lines): "))
        .unwrap_or_else(|| panic!("no saved verifier log named:\n{err}"));
    let log = std::fs::read_to_string(saved.1).expect("read the saved verifier log");
    assert_eq!(log.lines().count().to_string(), saved.0);
    assert!(log.contains("invalid mem access"), "{log}");
    assert!(
        log.starts_with("func#0") || log.lines().count() > 3,
        "{log}"
    );
    let _ = std::fs::remove_file(saved.1);

    // 4. CO-RE object with an unreadable --btf: exit 2, clear message.
    let out = ebpf_run()
        .arg(&open_obj)
        .args(["--btf", "/nonexistent"])
        .output()
        .expect("run");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("cannot read BTF file /nonexistent"), "{err}");

    // 5. A tracepoint this kernel lacks: exit 4.
    let out = ebpf_run().arg(obj("ert_missing_tp")).output().expect("run");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(
        err.contains("this kernel has no tracepoint ert_nonexistent/ert_no_such_event"),
        "{err}"
    );

    // 6. No kernel BTF at all (hidden in a private mount namespace): CO-RE objects are refused.
    let hide_btf = "mount -t tmpfs none /sys/kernel/btf && exec \"$0\" \"$@\"";
    match Command::new("unshare")
        .args(["-m", "--", "sh", "-c", hide_btf])
        .arg(env!("CARGO_BIN_EXE_ebpf-run"))
        .arg(&open_obj)
        .output()
    {
        Ok(out) => {
            let err = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{err}");
            assert!(
                err.contains("uses CO-RE relocations, but this kernel has no BTF"),
                "{err}"
            );
            assert!(
                err.contains("CONFIG_DEBUG_INFO_BTF") && err.contains("--btf"),
                "{err}"
            );
        }
        Err(e) => skip(TEST, &format!("no-BTF case needs unshare(1): {e}")),
    }

    // Nothing this test loaded may outlive it.
    // (Only this test's names: the other tests of this file run in parallel.)
    let left = |listing: &str, names: &[&str]| {
        names
            .iter()
            .filter(|n| {
                listing.contains(&format!("name {n} ")) || listing.contains(&format!("name {n}\n"))
            })
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
    };
    let progs = left(
        &bpftool_show("prog"),
        &["ert_on_openat", "ert_reject", "ert_missing_tp"],
    );
    assert!(progs.is_empty(), "programs left behind: {progs:?}");
    let maps = left(
        &bpftool_show("map"),
        &[
            "ert_counts",
            "ert_total",
            "ert_pid_hist",
            "ert_events",
            "ert_arr",
        ],
    );
    assert!(maps.is_empty(), "maps left behind: {maps:?}");
    let _ = std::fs::remove_file(&target);
}

#[test]
fn set_changes_a_probes_behaviour() {
    const TEST: &str = "set_changes_a_probes_behaviour";
    if !is_root() {
        return skip(TEST, "needs root for BPF (run the tests as root)");
    }
    let Some(dir) = fixtures(TEST) else {
        return;
    };
    ensure_tracefs();
    let syscount = dir.join("syscount.bpf.o");
    let me = std::process::id();
    let getppid = libc::SYS_getppid;
    let counts_of = |out: &str| -> Vec<(i64, u64)> {
        let dump = out
            .split("syscount map counts:\n")
            .nth(1)
            .unwrap_or_else(|| panic!("no counts dump:\n{out}"));
        dump.lines()
            .filter_map(|l| {
                let (k, rest) = l.trim().strip_prefix("key=")?.split_once("  count=")?;
                let v = rest.split_whitespace().next()?;
                Some((k.parse().ok()?, v.parse().ok()?))
            })
            .collect()
    };

    // filter_pid = this test process: its getppid(2) calls are counted.
    let filter = format!("filter_pid={me}");
    let mut run = spawn(&[
        syscount.as_os_str(),
        "--set".as_ref(),
        filter.as_ref(),
        "--duration".as_ref(),
        "2".as_ref(),
    ]);
    run.wait_attached();
    for _ in 0..500 {
        // SAFETY: getppid takes no arguments and cannot fail.
        unsafe { libc::syscall(getppid) };
    }
    let (status, out, err) = run.finish(Duration::from_secs(60));
    assert!(status.success(), "exit {status}; stderr:\n{err}");
    let counts = counts_of(&out);
    let ours = counts.iter().find(|(k, _)| *k == getppid);
    assert!(
        ours.is_some_and(|(_, n)| *n >= 500),
        "getppid count for pid {me}: {counts:?}"
    );

    // filter_pid = a pid that cannot exist: nothing is counted at all.
    let out = ebpf_run()
        .arg(&syscount)
        .args(["--set", "filter_pid=0xffffffff", "--duration", "1"])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("syscount map counts:\n  (no entries)"),
        "{stdout}"
    );

    // Unknown names and bad values: exit 1 with the settable globals and their types.
    for (set, want) in [
        (
            "nope=1",
            "no selected probe has a `const volatile` global `nope`",
        ),
        (
            "filter_pid=-1",
            "filter_pid needs an integer from 0 to 4294967295 (__u32)",
        ),
    ] {
        let out = ebpf_run()
            .arg(&syscount)
            .args(["--set", set])
            .output()
            .expect("run");
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(want), "{err}");
        assert!(
            err.contains("settable globals:\n") && err.contains("syscount: filter_pid (__u32)"),
            "{err}"
        );
        assert!(!err.contains("attached"), "{err}");
    }
    let out = ebpf_run()
        .arg("--list")
        .arg(&syscount)
        .output()
        .expect("run");
    assert!(
        text(&out.stdout).contains(
            "  setting filter_pid  __u32  (--set filter_pid=VALUE, or syscount -p PID: trace this process id only)"
        ),
        "{}",
        text(&out.stdout)
    );
}

/// Two network namespaces joined by a veth pair `ert-a` (10.251.0.1) — `ert-b` (10.251.0.2); removed
/// on drop.
struct VethPair {
    ns: [String; 2],
}

impl VethPair {
    fn new() -> Result<VethPair, String> {
        // Unique per pair: tests of this binary run in parallel threads of one process.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let me = std::process::id();
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let pair = VethPair {
            ns: [format!("ert1-{me}-{n}"), format!("ert2-{me}-{n}")],
        };
        let [a, b] = &pair.ns;
        let ip = |args: &[&str]| run_ok(Command::new("ip").args(args)).map(drop);
        ip(&["netns", "add", a])?;
        ip(&["netns", "add", b])?;
        ip(&[
            "link", "add", "ert-a", "netns", a, "type", "veth", "peer", "name", "ert-b", "netns", b,
        ])?;
        ip(&["-n", a, "addr", "add", "10.251.0.1/24", "dev", "ert-a"])?;
        ip(&["-n", b, "addr", "add", "10.251.0.2/24", "dev", "ert-b"])?;
        for (ns, dev) in [(a, "ert-a"), (b, "ert-b"), (a, "lo"), (b, "lo")] {
            ip(&["-n", ns, "link", "set", dev, "up"])?;
        }
        Ok(pair)
    }

    /// A pair, or a loud skip of `test` (a failure under CI) when the host cannot make one.
    fn new_or_skip(test: &str) -> Option<VethPair> {
        match VethPair::new() {
            Ok(v) => Some(v),
            Err(e) => {
                skip(
                    test,
                    &format!("cannot make a veth pair in network namespaces: {e}"),
                );
                None
            }
        }
    }

    /// Packets out of and back into ert-a: ARP, UDP to a closed port, its ICMP unreachable.
    fn traffic(&self) {
        for _ in 0..3 {
            let _ = self
                .enter()
                .args([
                    "bash",
                    "-c",
                    "for i in 1 2 3 4 5; do echo x >/dev/udp/10.251.0.2/9; done",
                ])
                .status();
        }
    }

    /// `nsenter` into the first namespace (network only: /sys and the cgroup mounts stay visible).
    fn enter(&self) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net=/run/netns/{}", self.ns[0]));
        cmd
    }
}

impl Drop for VethPair {
    fn drop(&mut self) {
        for ns in &self.ns {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

#[test]
fn attaches_every_kind_this_kernel_supports() {
    const TEST: &str = "attaches_every_kind_this_kernel_supports";
    if !is_root() {
        return skip(TEST, "needs root for BPF (run the tests as root)");
    }
    let Some(dir) = fixtures(TEST) else {
        return;
    };
    let Some(veth) = VethPair::new_or_skip(TEST) else {
        return;
    };
    let target = dir.join("ert_uprobe_target");
    let kinds = dir.join("ert_kinds.bpf.o");

    let list = ebpf_run()
        .arg("--list")
        .arg(&kinds)
        .args(["--iface", "ert-a", "--uprobe-path"])
        .arg(&target)
        .args(["--uprobe-func", "ert_target", "--freq", "199"])
        .output()
        .expect("run");
    let listing = text(&list.stdout);
    for want in [
        "-> tp_btf sched_switch",
        "-> uretprobe libc.so.6:getppid",
        "-> perf_event cpu-clock at 199 Hz",
        "-> xdp ert-a",
        "-> tc ert-a ingress",
        "-> socket on ert-a",
        " egress",
    ] {
        assert!(listing.contains(want), "missing {want:?} in:\n{listing}");
    }
    assert!(
        listing.contains(&format!("-> uprobe {}:ert_target", target.display())),
        "{listing}"
    );

    let mut run = spawn_command(
        veth.enter()
            .arg(env!("CARGO_BIN_EXE_ebpf-run"))
            .arg(&kinds)
            .args(["--iface", "ert-a", "--uprobe-path"])
            .arg(&target)
            .args(["--uprobe-func", "ert_target"]),
    );
    run.wait_attached();
    veth.traffic();
    assert!(
        Command::new(&target)
            .status()
            .expect("run uprobe target")
            .success()
    );
    for _ in 0..50 {
        // SAFETY: getppid has no preconditions.
        unsafe { libc::getppid() };
    }
    open_repeatedly(Path::new("/etc/hostname"), 20);
    // Let the sampler tick, then stop with SIGTERM (nsenter exec'd ebpf-run: same pid): the maps are
    // still printed and everything is detached.
    thread::sleep(Duration::from_millis(500));
    // SAFETY: kill(2) on our own child's pid with a valid signal number.
    assert_eq!(
        unsafe { libc::kill(run.child.id() as libc::pid_t, libc::SIGTERM) },
        0
    );
    let (status, out, err) = run.finish(Duration::from_secs(60));
    assert!(
        status.success(),
        "exit {status} after SIGTERM; stderr:\n{err}"
    );
    assert!(err.contains("8 programs attached"), "{err}");
    let dump = out
        .split("ert_kinds map ert_hits:\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no ert_hits dump:\n{out}"));
    let names = [
        "tp_btf",
        "uprobe",
        "uretprobe",
        "perf_event",
        "xdp",
        "tc",
        "socket",
        "cgroup_skb",
    ];
    for (kind, name) in names.iter().enumerate() {
        let hits = dump
            .lines()
            .find_map(|l| l.strip_prefix(&format!("  key={kind}  value=")))
            .and_then(|v| v.parse::<u64>().ok());
        assert!(hits.is_some_and(|n| n > 0), "{name} never ran:\n{dump}");
    }
    let uprobe_hits = dump
        .lines()
        .find_map(|l| l.strip_prefix("  key=1  value="))
        .and_then(|v| v.parse::<u64>().ok());
    assert!(uprobe_hits >= Some(100), "uprobe: {dump}");

    // Everything is gone after SIGTERM: programs, and the interface's XDP and tc attachments.
    let progs = bpftool_show("prog");
    for name in [
        "ert_tp_btf",
        "ert_uprobe",
        "ert_uretprobe",
        "ert_perf",
        "ert_xdp_pass",
        "ert_tc",
        "ert_socket",
        "ert_cgroup",
    ] {
        assert!(
            !progs.contains(&format!("name {name} ")),
            "{name} left behind:\n{progs}"
        );
    }
    let link = veth
        .enter()
        .args(["ip", "link", "show", "ert-a"])
        .output()
        .expect("ip link");
    assert!(
        !text(&link.stdout).contains("xdp"),
        "{}",
        text(&link.stdout)
    );
}

/// `--tc-netlink` (the attach path of kernels before 6.6): a netlink filter on a clsact qdisc that
/// ebpf-run adds, counts packets, and at SIGTERM both the filter and the qdisc are gone.
#[test]
fn tc_netlink_filter_counts_and_leaves_no_qdisc() {
    const TEST: &str = "tc_netlink_filter_counts_and_leaves_no_qdisc";
    if !is_root() {
        return skip(TEST, "needs root for BPF (run the tests as root)");
    }
    let Some(dir) = fixtures(TEST) else {
        return;
    };
    let Some(veth) = VethPair::new_or_skip(TEST) else {
        return;
    };
    let tc = |args: &[&str]| {
        let out = veth.enter().arg("tc").args(args).output().expect("run tc");
        text(&out.stdout)
    };
    assert!(!tc(&["qdisc", "show", "dev", "ert-a"]).contains("clsact"));
    let mut run = spawn_command(
        veth.enter()
            .arg(env!("CARGO_BIN_EXE_ebpf-run"))
            .arg(dir.join("ert_tc.bpf.o"))
            .args(["--iface", "ert-a", "--tc-netlink"]),
    );
    run.wait_attached();
    let qdiscs = tc(&["qdisc", "show", "dev", "ert-a"]);
    let filters = tc(&["filter", "show", "dev", "ert-a", "ingress"]);
    veth.traffic();
    thread::sleep(Duration::from_millis(300));
    // SAFETY: kill(2) on our own child's pid with a valid signal number.
    assert_eq!(
        unsafe { libc::kill(run.child.id() as libc::pid_t, libc::SIGTERM) },
        0
    );
    let (status, out, err) = run.finish(Duration::from_secs(60));
    assert!(status.success(), "exit {status}; stderr:\n{err}");
    assert!(qdiscs.contains("clsact"), "clsact added:\n{qdiscs}");
    assert!(
        filters.contains("ert_tc_count") && filters.contains("direct-action"),
        "netlink filter attached:\n{filters}"
    );
    let hits = out
        .lines()
        .find_map(|l| l.strip_prefix("  key=0  value="))
        .and_then(|v| v.trim().parse::<u64>().ok());
    assert!(hits.is_some_and(|n| n > 0), "no packets counted:\n{out}");
    let after = tc(&["qdisc", "show", "dev", "ert-a"]);
    assert!(!after.contains("clsact"), "qdisc left behind:\n{after}");
    // The kernel frees a program after its last reference, the filter, went away: deferred work, so
    // give it a moment.
    let mut progs = bpftool_show("prog");
    for _ in 0..40 {
        if !progs.contains("name ert_tc_count ") {
            break;
        }
        thread::sleep(Duration::from_millis(50));
        progs = bpftool_show("prog");
    }
    assert!(
        !progs.contains("name ert_tc_count "),
        "program left behind:\n{progs}"
    );
}

#[test]
fn fentry_and_fexit_run_or_are_refused_with_the_reason() {
    const TEST: &str = "fentry_and_fexit_run_or_are_refused_with_the_reason";
    if !is_root() {
        return skip(TEST, "needs root for BPF (run the tests as root)");
    }
    let Some(dir) = fixtures(TEST) else {
        return;
    };
    let obj = dir.join("ert_fentry.bpf.o");
    let run = spawn(&[obj.as_os_str(), "--duration".as_ref(), "2".as_ref()]);
    // Some kernels (this host's among them) refuse BPF trampolines: then the refusal must say so.
    let started = run.attached.recv_timeout(Duration::from_secs(30)).is_ok();
    if started {
        open_repeatedly(Path::new("/etc/hostname"), 20);
    }
    let (status, out, err) = run.finish(Duration::from_secs(60));
    if started {
        assert!(status.success(), "exit {status}; stderr:\n{err}");
        for kind in 0..2 {
            assert!(
                out.lines()
                    .any(|l| l.starts_with(&format!("  key={kind}  value="))),
                "fentry/fexit never ran:\n{out}"
            );
        }
    } else {
        assert_eq!(status.code(), Some(3), "{err}");
        assert!(
            err.contains("program `ert_fentry` (fentry/do_sys_openat2)")
                && err.contains("BPF trampolines"),
            "{err}"
        );
        let _ = writeln!(
            std::io::stderr(),
            "NOTE {TEST}: this kernel refuses fentry/fexit; checked the diagnostic only"
        );
    }
}

#[test]
fn check_reports_readiness_with_a_verdict() {
    let _ert_open = ert_open_lock();
    const TEST: &str = "check_reports_readiness_with_a_verdict";
    if !is_root() {
        return skip(TEST, "needs root for BPF (run the tests as root)");
    }
    let Some(dir) = fixtures(TEST) else {
        return;
    };
    ensure_tracefs();
    let obj = |name: &str| dir.join(format!("{name}.bpf.o"));

    let out = ebpf_run()
        .arg("--check")
        .arg(obj("ert_open"))
        .arg(obj("ert_kinds"))
        .output()
        .expect("run");
    let report = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{report}{}", text(&out.stderr));
    for want in [
        "  ok    bpf(2): maps can be created (euid 0)\n",
        "  ok    BTF: /sys/kernel/btf/vmlinux (",
        "  ok    program type tracepoint: loads (ert_open)\n",
        "  ok    program type xdp: loads (ert_kinds)\n",
        "  ok    program type cgroup_skb: loads (ert_kinds)\n",
        "  ok    map type ringbuf: created (ert_open)\n",
        "  ok    map type percpu_array: created (ert_open)\n",
        "  ok    uprobes: /sys/bus/event_source/devices/uprobe\n",
        "  ok    tracefs: mounted at ",
        "    JIT: ",
    ] {
        assert!(report.contains(want), "missing {want:?} in:\n{report}");
    }
    assert!(
        report.ends_with("verdict: ready: this kernel can run ert_open, ert_kinds\n"),
        "{report}"
    );

    // kprobes: present or not, the report must say which, and the verdict follow.
    let out = ebpf_run()
        .arg("--check")
        .arg(obj("ert_kprobe"))
        .output()
        .expect("run");
    let report = text(&out.stdout);
    if Path::new("/sys/bus/event_source/devices/kprobe").exists() {
        assert_eq!(out.status.code(), Some(0), "{report}");
        assert!(report.contains("  ok    kprobes: "), "{report}");
    } else {
        assert_eq!(out.status.code(), Some(5), "{report}");
        assert!(
            report.contains("  FAIL  kprobes: no /sys/bus/event_source/devices/kprobe: the kernel lacks CONFIG_KPROBES\n"),
            "{report}"
        );
        assert!(
            report.ends_with("verdict: NOT READY: 1 problem(s): kprobes\n"),
            "{report}"
        );
    }

    // No kernel BTF (hidden in a private mount namespace): CO-RE probes cannot run.
    let hide_btf = "mount -t tmpfs none /sys/kernel/btf && exec \"$0\" \"$@\"";
    match Command::new("unshare")
        .args(["-m", "--", "sh", "-c", hide_btf])
        .arg(env!("CARGO_BIN_EXE_ebpf-run"))
        .arg("--check")
        .arg(obj("ert_open"))
        .output()
    {
        Ok(out) => {
            let report = text(&out.stdout);
            assert_eq!(out.status.code(), Some(5), "{report}{}", text(&out.stderr));
            assert!(
                report.contains("  FAIL  BTF: none (/sys/kernel/btf/vmlinux is missing"),
                "{report}"
            );
            assert!(
                report.contains("but CO-RE probes need it: ert_open\n"),
                "{report}"
            );
            assert!(
                report.ends_with("verdict: NOT READY: 1 problem(s): BTF\n"),
                "{report}"
            );
            assert!(text(&out.stderr).contains("cannot run the selected probes"));
        }
        Err(e) => skip(TEST, &format!("no-BTF case needs unshare(1): {e}")),
    }
}

#[test]
fn bare_sections_attach_where_attach_says_or_are_refused_naming_it() {
    const TEST: &str = "bare_sections_attach_where_attach_says_or_are_refused_naming_it";
    if !is_root() {
        return skip(TEST, "needs root for BPF (run the tests as root)");
    }
    let Some(dir) = fixtures(TEST) else {
        return;
    };
    ensure_tracefs();
    let obj = dir.join("ert_bare.bpf.o");
    // No target: refused before anything loads, with the option to give.
    let out = ebpf_run()
        .arg(&obj)
        .args(["--duration", "1"])
        .output()
        .expect("ebpf-run");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("a bare `tracepoint` section names no target")
            && err.contains("give it: --attach count_calls=CATEGORY/NAME"),
        "{err}"
    );
    // bpftrace's CATEGORY:NAME spelling; 25 getpriority calls of this process (a syscall no other
    // test here makes), counted exactly.
    let run = spawn(&[
        obj.as_os_str(),
        "--attach".as_ref(),
        "count_calls=syscalls:sys_enter_getpriority".as_ref(),
        "--duration".as_ref(),
        "3".as_ref(),
    ]);
    run.attached
        .recv_timeout(Duration::from_secs(30))
        .expect("attached");
    for _ in 0..25 {
        // SAFETY: getpriority of this process has no preconditions.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
    }
    let (status, out, err) = run.finish(Duration::from_secs(60));
    assert!(status.success(), "exit {status}; stderr:\n{err}");
    let me = format!("  key={}  value=25", std::process::id());
    assert!(out.lines().any(|l| l == me), "want `{me}`:\n{out}");
    // A malformed --attach is a usage error.
    let out = ebpf_run()
        .arg(&obj)
        .args(["--attach", "count_calls"])
        .output()
        .expect("ebpf-run");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("expected PROG=TARGET"));
}

#[test]
fn programs_that_cannot_run_here_are_skipped_while_the_others_run() {
    const TEST: &str = "programs_that_cannot_run_here_are_skipped_while_the_others_run";
    if !is_root() {
        return skip(TEST, "needs root for BPF (run the tests as root)");
    }
    let Some(dir) = fixtures(TEST) else {
        return;
    };
    ensure_tracefs();
    let obj = dir.join("ert_alt.bpf.o");
    let kprobes = Path::new("/sys/bus/event_source/devices/kprobe").exists();
    let run = spawn(&[obj.as_os_str(), "--duration".as_ref(), "3".as_ref()]);
    run.attached
        .recv_timeout(Duration::from_secs(30))
        .expect("attached");
    open_repeatedly(Path::new("/etc/hostname"), 20);
    let (status, out, err) = run.finish(Duration::from_secs(60));
    assert!(status.success(), "exit {status}; stderr:\n{err}");
    let slot = |k: u32| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("  key={k}  value=")))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    // The tracepoint runs everywhere; the placeholder never attaches.
    assert!(slot(3) >= 20, "tracepoint: {}\n{out}", slot(3));
    assert_eq!(slot(2), 0, "{out}");
    assert!(
        err.contains("skipped: probe ert_alt: program `placeholder`: cannot attach to kprobe ert_placeholder_replaced_at_run_time"),
        "{err}"
    );
    // Exactly one of the fentry/kprobe pair counts, or neither where this kernel has neither.
    let (fentry, kprobe) = (slot(0), slot(1));
    assert!(fentry == 0 || kprobe == 0, "both variants ran: {out}");
    if fentry == 0 {
        assert!(
            err.contains("skipped: probe ert_alt: program `BPF_PROG_open_fentry`"),
            "{err}"
        );
    }
    if !kprobes {
        assert_eq!(kprobe, 0);
        assert!(
            err.contains("skipped: probe ert_alt: program `open_kprobe`"),
            "{err}"
        );
    } else if fentry == 0 {
        assert!(kprobe >= 20, "the kprobe variant stands in: {out}");
    }
    assert!(
        err.contains("1 program attached") || err.contains("2 programs attached"),
        "{err}"
    );
    // --strict: any program left out fails the run, before it starts.
    let out = ebpf_run()
        .arg(&obj)
        .args(["--strict", "--duration", "1"])
        .output()
        .expect("ebpf-run");
    let err = text(&out.stderr);
    assert!(matches!(out.status.code(), Some(3 | 4)), "{err}");
    assert!(
        err.contains("without --strict, the object's other programs run"),
        "{err}"
    );
}

#[test]
fn maps_declaring_no_size_get_a_default_or_the_size_given() {
    const TEST: &str = "maps_declaring_no_size_get_a_default_or_the_size_given";
    if !is_root() {
        return skip(TEST, "needs root for BPF (run the tests as root)");
    }
    let Some(dir) = fixtures(TEST) else {
        return;
    };
    ensure_tracefs();
    let obj = dir.join("ert_sizes.bpf.o");
    // Entries of `slots` after a getpgid call (a syscall no other test here makes): as many of keys 0..7 as the map holds.
    let entries = |extra: &[&str]| {
        let mut args: Vec<&std::ffi::OsStr> = vec![obj.as_os_str()];
        args.extend(extra.iter().map(std::ffi::OsStr::new));
        args.extend([
            std::ffi::OsStr::new("--duration"),
            std::ffi::OsStr::new("2"),
        ]);
        let run = spawn(&args);
        run.attached
            .recv_timeout(Duration::from_secs(30))
            .expect("attached");
        // SAFETY: getpgid of this process has no preconditions.
        unsafe { libc::getpgid(0) };
        let (status, out, err) = run.finish(Duration::from_secs(60));
        assert!(status.success(), "exit {status}; stderr:\n{err}");
        // `slots` is dumped first; its entries are the `key=` lines up to the next map.
        let n = out
            .split("ert_sizes map ")
            .find(|m| m.starts_with("slots"))
            .map_or(0, |m| m.lines().filter(|l| l.starts_with("  key=")).count());
        (n, format!("{err}\n{out}"))
    };
    let (n, err) = entries(&[]);
    assert_eq!(n, 8, "the default holds all 8 keys");
    // The stack map got room for 127 frames and 10240 stacks: the call's kernel stack is in it.
    assert!(
        err.contains("ert_sizes: map stacks declares no value size: 127 frames (1016 bytes)"),
        "{err}"
    );
    let stack_id = err
        .split("ert_sizes map stack_id:")
        .nth(1)
        .expect("stack_id dumped");
    assert!(
        stack_id
            .lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("  key=0  value=")),
        "the stack landed (slot 0 holds its id, not slot 1 an error):\n{stack_id}"
    );
    assert!(
        err.contains(
            "ert_sizes: map slots declares no size: 10240 entries (--map-size slots=N to choose)"
        ),
        "{err}"
    );
    let (n, err) = entries(&["--map-size", "slots=3"]);
    assert_eq!(n, 3, "--map-size slots=3 holds 3 keys");
    assert!(
        err.contains("ert_sizes: map slots sized 3 (--map-size)"),
        "{err}"
    );
    let out = ebpf_run()
        .arg(&obj)
        .args(["--map-size", "slots=0"])
        .output()
        .expect("ebpf-run");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("expected NAME=N, N a positive number"));
}

/// The one record `ert_kconfig` writes for a getsid(2) call, run with `extra` arguments; or the
/// failed run's exit code and stderr.
fn kconfig_record(
    obj: &Path,
    extra: &[&str],
) -> Result<(serde_json::Value, String), (i32, String)> {
    let mut args: Vec<&std::ffi::OsStr> = vec![obj.as_os_str()];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    args.extend(["--duration", "2", "--format", "json"].map(std::ffi::OsStr::new));
    let run = spawn(&args);
    if run.attached.recv_timeout(Duration::from_secs(30)).is_err() {
        let (status, _, err) = run.finish(Duration::from_secs(60));
        return Err((status.code().unwrap_or(-1), err));
    }
    // SAFETY: getsid of this process has no preconditions (a syscall no other test here makes).
    unsafe { libc::getsid(0) };
    let (status, out, err) = run.finish(Duration::from_secs(60));
    assert!(status.success(), "exit {status}; stderr:\n{err}");
    let records: Vec<serde_json::Value> = out
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("kernel_version").is_some())
        .collect();
    assert_eq!(records.len(), 1, "one getsid, one record:\n{out}");
    Ok((records[0].clone(), err))
}

/// `KERNEL_VERSION(a, b, c)` of this kernel as libbpf computes LINUX_KERNEL_VERSION: Ubuntu's
/// version signature, Debian's `uname -v`, else the release.
fn this_kernel_version() -> u64 {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").expect("osrelease");
    let uname_v = std::fs::read_to_string("/proc/sys/kernel/version").unwrap_or_default();
    let version = match std::fs::read_to_string("/proc/version_signature") {
        Ok(sig) => sig.split_whitespace().nth(2).unwrap_or_default().to_owned(),
        Err(_) => match uname_v.split_once(" Debian ") {
            Some((_, v)) => v.split_whitespace().next().unwrap_or_default().to_owned(),
            None => release,
        },
    };
    let nums: Vec<u64> = version
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .take(3)
        .map(|n| n.parse().unwrap_or(0))
        .collect();
    nums[0] << 16 | nums[1] << 8 | nums[2].min(255)
}

#[test]
fn kconfig_externs_get_the_values_libbpf_gives_them() {
    const TEST: &str = "kconfig_externs_get_the_values_libbpf_gives_them";
    if !is_root() {
        return skip(TEST, "needs root for BPF (run the tests as root)");
    }
    let Some(dir) = fixtures(TEST) else {
        return;
    };
    ensure_tracefs();
    let obj = dir.join("ert_kconfig.bpf.o");
    let config = dir.join("kconfig-every-type");
    std::fs::write(
        &config,
        "CONFIG_BPF_SYSCALL=y\nCONFIG_HZ=1000\nCONFIG_EP_TRISTATE_M=m\nCONFIG_EP_CHAR=y\n\
         CONFIG_EP_U8=200\nCONFIG_EP_S16=-300\nCONFIG_EP_HEX=0x123456789\n\
         CONFIG_EP_STRING=\"embedded-linux\"\n# CONFIG_EP_MISSING_BOOL is not set\n",
    )
    .expect("write config");
    let kallsyms = std::fs::read_to_string("/proc/kallsyms").unwrap_or_default();
    let wrapper = kallsyms.lines().any(|l| {
        l.rsplit(' ')
            .next()
            .is_some_and(|s| s.starts_with("__") && s.ends_with("_sys_bpf") && s != "__sys_bpf")
    });
    let (v, _) = kconfig_record(&obj, &["--kconfig", &config.to_string_lossy()])
        .expect("runs with the given config");
    let expect = serde_json::json!({
        "probe": "ert_kconfig",
        "map": "ert_kconfig_events",
        "kernel_version": this_kernel_version(),
        // The kernel has bpf_get_attach_cookie from 5.15; this host's is newer.
        "has_cookie": 1,
        "has_wrapper": u8::from(wrapper),
        "bpf_syscall": 1,
        "ch": u32::from(b'y'),
        "tristate": 2,
        "hz": 1000,
        "u8_value": 200,
        "missing_bool": 0,
        "s16_value": -300,
        "hex": 0x1_2345_6789u64,
        "missing_u64": 0,
        // Cut to the 8-byte array, NUL-terminated, as libbpf cuts it.
        "string": "embedde",
    });
    assert_eq!(v, expect);

    // By default the kernel's own config, as libbpf reads it: /boot/config-$(uname -r), else
    // /proc/config.gz.
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").expect("osrelease");
    let boot = PathBuf::from(format!("/boot/config-{}", release.trim()));
    let own = if boot.exists() {
        std::fs::read_to_string(&boot).ok()
    } else {
        Command::new("gzip")
            .args(["-dc", "/proc/config.gz"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| text(&o.stdout))
    };
    match own {
        Some(own) => {
            let hz: i64 = own
                .lines()
                .find_map(|l| l.strip_prefix("CONFIG_HZ="))
                .and_then(|v| v.parse().ok())
                .expect("the kernel's config has CONFIG_HZ");
            let (v, _) = kconfig_record(&obj, &[]).expect("runs with the kernel's config");
            assert_eq!(v["hz"], hz, "{v}");
            assert_eq!(v["bpf_syscall"], 1, "{v}");
            assert_eq!(v["kernel_version"], this_kernel_version(), "{v}");
            // Not in any kernel's config: 0 for these __weak externs.
            assert_eq!(
                (&v["missing_bool"], &v["missing_u64"]),
                (&0.into(), &0.into())
            );
        }
        None => skip(TEST, "this kernel has no /boot/config-R or /proc/config.gz"),
    }

    // A strong extern the config lacks fails before anything loads, naming it.
    let lacking = dir.join("kconfig-lacking");
    std::fs::write(&lacking, "CONFIG_HZ=100\n").expect("write config");
    let err = kconfig_record(&obj, &["--kconfig", &lacking.to_string_lossy()])
        .expect_err("CONFIG_BPF_SYSCALL is missing");
    assert_eq!(err.0, 3, "{}", err.1);
    assert!(
        err.1
            .contains("CONFIG_BPF_SYSCALL is not set in the kernel's config")
            && err.1.contains("not __weak"),
        "{}",
        err.1
    );
    let out = ebpf_run()
        .arg("--check")
        .arg(&obj)
        .arg("--kconfig")
        .arg(&lacking)
        .output()
        .expect("ebpf-run --check");
    let report = text(&out.stdout);
    assert!(
        report.contains("FAIL  kconfig ert_kconfig: CONFIG_BPF_SYSCALL is not set"),
        "{report}"
    );
    let out = ebpf_run()
        .arg("--check")
        .arg(&obj)
        .arg("--kconfig")
        .arg(&config)
        .output()
        .expect("ebpf-run --check");
    let report = text(&out.stdout);
    assert!(
        report.contains("ok    kconfig ert_kconfig: 13 .kconfig extern(s) have values"),
        "{report}"
    );
    // A --kconfig that cannot be read is bad input, whatever the probe.
    let out = ebpf_run()
        .arg(&obj)
        .args(["--kconfig", "/nonexistent/config"])
        .output()
        .expect("ebpf-run");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--kconfig /nonexistent/config: cannot read"));
}

#[test]
fn a_field_no_kernel_has_is_named_as_a_core_mismatch() {
    const TEST: &str = "a_field_no_kernel_has_is_named_as_a_core_mismatch";
    if !is_root() {
        return skip(TEST, "needs root for BPF (run the tests as root)");
    }
    let Some(dir) = fixtures(TEST) else {
        return;
    };
    let out = ebpf_run()
        .arg(dir.join("ert_poison.bpf.o"))
        .args(["--duration", "1"])
        .output()
        .expect("ebpf-run");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("the verifier rejected it"), "{err}");
    assert!(
        err.contains("the object reads a kernel type or field this kernel does not have"),
        "{err}"
    );
}

/// Byte-mutated copies of a real object (1 to 8 random bytes each, a fixed seed) handed to ebpf-run
/// as root, as someone else's damaged file would be: each is refused with a message (exit 2, 3 or 4)
/// or runs and exits 0 — never a panic, an abort or a signal. (aya 0.14 panicked on some before the
/// loader vetted objects; scripts/fuzz.sh's object_load target covers the same path at scale.)
#[test]
fn mutated_objects_are_refused_or_run_never_crash() {
    let _ert_open = ert_open_lock();
    let test = "mutated_objects_are_refused_or_run_never_crash";
    let Some(dir) = fixtures(test) else { return };
    if !is_root() {
        skip(test, "loading BPF programs needs root");
        return;
    }
    ensure_tracefs();
    let original = std::fs::read(dir.join("ert_open.bpf.o")).expect("fixture");
    let work = std::env::temp_dir().join(format!("ert-mutants-{}", std::process::id()));
    std::fs::create_dir_all(&work).expect("temp dir");
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut outcomes = std::collections::BTreeMap::<i32, usize>::new();
    for n in 0..80 {
        let mut data = original.clone();
        for _ in 0..1 + next() % 8 {
            let at = (next() % data.len() as u64) as usize;
            data[at] = next() as u8;
        }
        let path = work.join(format!("m{n}.bpf.o"));
        std::fs::write(&path, &data).expect("write mutant");
        let mut child = ebpf_run()
            .arg(&path)
            .args(["--duration", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ebpf-run");
        let mut stderr = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut stderr);
        }
        let status = wait_for(&mut child, Duration::from_secs(30));
        let code = status
            .code()
            .unwrap_or_else(|| panic!("mutant {n}: killed by a signal: {status:?}\n{stderr}"));
        assert!(
            matches!(code, 0 | 2 | 3 | 4),
            "mutant {n} (kept at {}): exit {code}\n{stderr}",
            path.display()
        );
        assert!(!stderr.contains("panicked"), "mutant {n}: {stderr}");
        if code != 0 {
            assert!(
                stderr.lines().any(|l| l.starts_with("ebpf-run: error: ")),
                "mutant {n}: {stderr}"
            );
        }
        *outcomes.entry(code).or_default() += 1;
        let _ = std::fs::remove_file(&path);
    }
    let _ = writeln!(
        std::io::stderr(),
        "{test}: exit codes of 80 mutants: {outcomes:?}"
    );
    let _ = std::fs::remove_dir_all(&work);
}

/// Without privilege, and with CAP_BPF + CAP_PERFMON but no CAP_SYS_ADMIN (as user `nobody`): each
/// is named for what it is — not taken for a kernel without ring buffers, not for tracefs missing.
#[test]
fn missing_and_partial_privilege_are_named() {
    let _ert_open = ert_open_lock();
    let test = "missing_and_partial_privilege_are_named";
    let Some(dir) = fixtures(test) else { return };
    if !is_root() {
        skip(test, "dropping privilege to `nobody` needs root");
        return;
    }
    ensure_tracefs();
    // A copy `nobody` may read, and the loader from a path it may execute.
    let work = std::env::temp_dir().join(format!("ert-nopriv-{}", std::process::id()));
    std::fs::create_dir_all(&work).expect("temp dir");
    let obj = work.join("ert_open.bpf.o");
    let exe = work.join("ebpf-run");
    std::fs::copy(dir.join("ert_open.bpf.o"), &obj).expect("copy object");
    std::fs::copy(env!("CARGO_BIN_EXE_ebpf-run"), &exe).expect("copy loader");
    let _ = Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(&work)
        .status();
    let _ = Command::new("chmod")
        .arg("a+x")
        .arg(std::env::temp_dir())
        .status();
    let as_nobody = |caps: &[&str]| {
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"]);
        if !caps.is_empty() {
            let list = caps.join(",");
            cmd.arg(format!("--inh-caps={list}"))
                .arg(format!("--ambient-caps={list}"));
        }
        let out = cmd
            .arg(&exe)
            .arg(&obj)
            .args(["--duration", "1"])
            .output()
            .expect("setpriv runs");
        (out.status.code(), text(&out.stderr))
    };
    let (code, stderr) = as_nobody(&[]);
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("no privilege to use BPF"), "{stderr}");
    assert!(stderr.contains("CAP_BPF plus CAP_PERFMON"), "{stderr}");
    let tracefs_private = std::fs::metadata("/sys/kernel/tracing")
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o005 == 0)
        .unwrap_or(true);
    let (code, stderr) = as_nobody(&["+bpf", "+perfmon"]);
    if tracefs_private {
        // The program loads (CAP_BPF); attaching a tracepoint needs its id from tracefs.
        assert_eq!(code, Some(4), "{stderr}");
        assert!(stderr.contains("is not readable by this user"), "{stderr}");
    } else {
        assert_eq!(code, Some(0), "{stderr}");
    }
    let _ = std::fs::remove_dir_all(&work);
}

/// A bundle folder's object is loaded only as its manifest lists it, and exactly the bytes checked:
/// changed before the run it is refused (exit 2); swapped after the check (another user writing into
/// a bundle in /tmp, done here by the test builds' after-check hook, not by a timed race) the run
/// loads what was checked and never reads the file again.
#[test]
fn bundle_files_are_loaded_as_checked() {
    let _ert_open = ert_open_lock();
    let test = "bundle_files_are_loaded_as_checked";
    let Some(dir) = fixtures(test) else { return };
    if !is_root() {
        skip(test, "loading BPF programs needs root");
        return;
    }
    ensure_tracefs();
    let bundle = std::env::temp_dir().join(format!("ert-toctou-{}", std::process::id()));
    std::fs::create_dir_all(bundle.join("bpf")).expect("bundle dir");
    let object = bundle.join("bpf/ert_open.bpf.o");
    let original = std::fs::read(dir.join("ert_open.bpf.o")).expect("fixture");
    let sum = ebpf_pack_manifest::embedded::sha256_hex(&original);
    let manifest = format!(
        r#"{{"schema":1,"files":[{{"path":"bpf/ert_open.bpf.o","size":{},"sha256":"{sum}"}}]}}"#,
        original.len()
    );
    std::fs::write(bundle.join("manifest.json"), manifest).expect("manifest");
    let run = |hook: Option<&Path>| {
        let mut cmd = ebpf_run();
        cmd.arg("--bundle")
            .arg(&bundle)
            .args(["ert_open", "--duration", "1"]);
        if let Some(hook) = hook {
            cmd.env("EBPF_RUN_TEST_AFTER_CHECK", hook);
        }
        let out = cmd.output().expect("ebpf-run runs");
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };

    // Changed before the run: one byte more than the manifest lists.
    let mut changed = original.clone();
    changed.push(0);
    std::fs::write(&object, &changed).expect("write");
    let (code, _, stderr) = run(None);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("checksum mismatch with manifest.json"),
        "{stderr}"
    );

    // Swapped for zeros once checked: the checked bytes load and run; the file really changed.
    std::fs::write(&object, &original).expect("write");
    let hook = bundle.join("swap.sh");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\nhead -c 4096 /dev/zero > '{}'\n",
            object.display()
        ),
    )
    .expect("hook");
    let _ = Command::new("chmod").arg("+x").arg(&hook).status();
    let (code, stdout, stderr) = run(Some(&hook));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("ert_counts"),
        "the probe ran and dumped its maps: {stdout}"
    );
    assert_eq!(std::fs::read(&object).expect("read"), vec![0u8; 4096]);
    let _ = std::fs::remove_dir_all(&bundle);
}

/// SIGKILL gives ebpf-run no chance to detach: the kernel does it, since every attachment of a
/// tracepoint program is held by a file descriptor of the process (docs/RELIABILITY.md: only tc
/// filters attached through netlink outlive it).
#[test]
fn sigkill_leaves_nothing_attached() {
    let test = "sigkill_leaves_nothing_attached";
    let _ert_open = ert_open_lock();
    let Some(dir) = fixtures(test) else { return };
    if !is_root() {
        skip(test, "loading BPF programs needs root");
        return;
    }
    ensure_tracefs();
    let mut running = spawn(&[
        dir.join("ert_open.bpf.o").as_os_str(),
        "--duration".as_ref(),
        "60".as_ref(),
    ]);
    running.wait_attached();
    assert!(bpftool_show("prog").contains("name ert_on_openat "));
    let _ = running.child.kill();
    let _ = running.child.wait();
    // Freed once the last reference goes: deferred work in the kernel, so give it a moment.
    let mut progs = bpftool_show("prog");
    for _ in 0..60 {
        if !progs.contains("name ert_on_openat ") {
            break;
        }
        thread::sleep(Duration::from_millis(50));
        progs = bpftool_show("prog");
    }
    assert!(
        !progs.contains("name ert_on_openat "),
        "left after SIGKILL:\n{progs}"
    );
}

/// tracefs unmounted (in a private mount namespace): a tracepoint probe is refused at attach with the
/// mount command, `--check` says tracefs is missing; nothing stays attached.
#[test]
fn tracefs_not_mounted_is_named_with_the_mount_command() {
    let test = "tracefs_not_mounted_is_named_with_the_mount_command";
    let _ert_open = ert_open_lock();
    let Some(dir) = fixtures(test) else { return };
    if !is_root() {
        skip(test, "a private mount namespace needs root");
        return;
    }
    let no_tracefs = "umount /sys/kernel/tracing 2>/dev/null; umount /sys/kernel/debug/tracing \
                      2>/dev/null; exec \"$0\" \"$@\"";
    let run = |extra: &[&str]| {
        let out = Command::new("unshare")
            .args(["-m", "--", "sh", "-c", no_tracefs])
            .arg(env!("CARGO_BIN_EXE_ebpf-run"))
            .arg(dir.join("ert_open.bpf.o"))
            .args(extra)
            .output()
            .expect("unshare runs");
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };
    let (code, _, stderr) = run(&["--duration", "1"]);
    assert_eq!(code, Some(4), "{stderr}");
    assert!(stderr.contains("tracefs not found"), "{stderr}");
    assert!(
        stderr.contains("mount -t tracefs tracefs /sys/kernel/tracing"),
        "{stderr}"
    );
    let (code, stdout, stderr) = run(&["--check"]);
    assert_eq!(code, Some(5), "{stdout}{stderr}");
    assert!(stdout.contains("tracefs"), "{stdout}");
    assert!(!bpftool_show("prog").contains("name ert_on_openat "));
}
