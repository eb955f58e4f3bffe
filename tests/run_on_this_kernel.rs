//! End to end on this machine's kernel: unpack the x86_64 bundle, run `ebpf-run` with each probe while
//! the test opens a uniquely named file or execs a uniquely named program, and find those exact names
//! and pids in the output. Also the `kernel.btf: <path>` route: a bundle that ships its own tailored BTF.

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use support::*;

/// Starts `ebpf-run ARGS` in `dir` and returns once it reports its programs attached. `--duration` is
/// only a safety net: the test stops it with SIGTERM.
fn start(dir: &Path, args: &[&str]) -> Attached {
    start_for(dir, args, 120)
}

/// [`start`] with a safety net of `secs` seconds, for runs longer than two minutes.
fn start_for(dir: &Path, args: &[&str], secs: u64) -> Attached {
    start_attached(
        Command::new(dir.join("ebpf-run"))
            .args(args)
            .args(["--duration", &secs.to_string()])
            .current_dir(dir),
    )
}

/// Stops the loader with SIGTERM (it must drain, dump maps, detach and exit 0) and returns its output.
fn finish(running: Attached) -> (String, String) {
    // Let the last events reach the ring buffer before asking it to stop.
    std::thread::sleep(Duration::from_millis(500));
    running.signal(libc::SIGTERM);
    let (status, stdout, stderr) = running.wait();
    assert!(
        status.success(),
        "ebpf-run failed with {status} after SIGTERM\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    (stdout, stderr)
}

fn unpacked(target: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempdir();
    let top = unpack(&bundle(target), dir.path());
    (dir, top)
}

/// The event lines of `probe` that contain every one of `needles`.
fn matching<'a>(stdout: &'a str, probe: &str, needles: &[String]) -> Vec<&'a str> {
    stdout
        .lines()
        .filter(|l| {
            l.starts_with(&format!("{probe} ")) && needles.iter().all(|n| l.contains(n.as_str()))
        })
        .collect()
}

fn opensnoop_sees_our_open(top: &Path) {
    opensnoop_sees_our_open_with(top, &[]);
}

/// opensnoop, run with `extra` arguments, reports this process's opens of a uniquely named file.
fn opensnoop_sees_our_open_with(top: &Path, extra: &[&str]) {
    let scratch = tempdir();
    let path = scratch.path().join(unique("open"));
    std::fs::write(&path, b"x").expect("create");
    let args: Vec<&str> = std::iter::once("opensnoop")
        .chain(extra.iter().copied())
        .collect();
    let child = start(top, &args);
    for _ in 0..3 {
        std::fs::File::open(&path).expect("open"); // openat(2) in glibc
    }
    let (stdout, _) = finish(child);
    let me = std::process::id();
    let hits = matching(
        &stdout,
        "opensnoop",
        &[format!(" pid={me} "), format!("path={}", path.display())],
    );
    assert!(
        hits.len() >= 3,
        "expected 3 opens of {} by pid {me}, got {hits:?}\nfull output:\n{stdout}",
        path.display()
    );
    assert!(
        hits.iter()
            .all(|l| l.contains(" fd=") && !l.contains(" fd=-") && l.contains(" err=0 ")),
        "successful opens have an fd and no errno: {hits:?}"
    );
}

fn execsnoop_sees_our_exec(top: &Path) {
    let scratch = tempdir();
    let name = unique("exec");
    let program = scratch.path().join(&name);
    std::fs::copy("/bin/true", &program).expect("copy /bin/true");
    let child = start(top, &["execsnoop"]);
    let mut run = Command::new(&program).spawn().expect("exec");
    let pid = run.id();
    run.wait().expect("wait");
    let (stdout, _) = finish(child);
    let comm: String = name.chars().take(15).collect();
    let hits = matching(
        &stdout,
        "execsnoop",
        &[
            format!(" pid={pid} "),
            format!("args={}", program.display()),
            format!("pcomm={comm}"),
            " ret=0 ".to_string(),
        ],
    );
    assert_eq!(
        hits.len(),
        1,
        "expected one exec of {} as pid {pid}\nfull output:\n{stdout}",
        program.display()
    );
    assert!(
        hits[0].contains(&format!("ppid={} ", std::process::id())),
        "the test is the parent: {hits:?}"
    );
}

fn syscount_counts_our_calls(top: &Path) {
    const CALLS: u64 = 500;
    let child = start(top, &["syscount", "-T", "0"]);
    let nul = std::ffi::CString::new("/dev/null").expect("cstr");
    for _ in 0..CALLS {
        // SAFETY: a valid NUL-terminated path; the fd is closed right away.
        unsafe {
            let fd = libc::openat(libc::AT_FDCWD, nul.as_ptr(), libc::O_RDONLY);
            if fd >= 0 {
                libc::close(fd);
            }
        }
    }
    let (stdout, _) = finish(child);
    // openat is syscall 257 on x86_64; the map dump prints `key=257  count=N total_ns=0`.
    let count = stdout
        .lines()
        .filter(|l| l.contains("key=257 "))
        .find_map(|l| {
            l.split("count=")
                .nth(1)
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
        })
        .unwrap_or_else(|| panic!("no count for syscall 257 (openat)\nfull output:\n{stdout}"));
    assert!(
        count >= CALLS,
        "openat counted {count} times, the test alone made {CALLS} calls\n{stdout}"
    );
}

#[test]
fn opensnoop_execsnoop_and_syscount_of_the_x86_64_bundle_trace_this_kernel() {
    let Some(_one_at_a_time) = kernel_test() else {
        return;
    };
    let (_dir, top) = unpacked("x86_64");
    opensnoop_sees_our_open(&top);
    // CO-RE against the kernel's whole BTF, as aya parses it (the default keeps only what the
    // relocations match): the same records.
    opensnoop_sees_our_open_with(&top, &["--full-btf"]);
    execsnoop_sees_our_exec(&top);
    syscount_counts_our_calls(&top);
    // Nothing stays loaded after the loader exits: no program of the bundle is left in the kernel.
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(top.join("manifest.json")).expect("manifest"))
            .expect("json");
    let out = run_ok(Command::new("bpftool").args(["prog", "show"]));
    let progs = String::from_utf8_lossy(&out.stdout);
    for probe in manifest["probes"].as_array().expect("probes") {
        for program in probe["programs"].as_array().expect("programs") {
            let name: String = program["name"]
                .as_str()
                .expect("name")
                .chars()
                .take(15)
                .collect();
            assert!(
                !progs.lines().any(|l| l.contains(&format!(" name {name} "))),
                "program {name} still loaded:\n{progs}"
            );
        }
    }
}

/// Tests of this file load programs; one at a time keeps "nothing left loaded" meaningful.
static KERNEL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The start of a test that loads programs: `None` (after saying why) when this host cannot; else the
/// kernel, held until the guard drops, with tracefs mounted.
fn kernel_test() -> Option<std::sync::MutexGuard<'static, ()>> {
    if !can_load_bpf() {
        return None;
    }
    let guard = KERNEL.lock().unwrap_or_else(|e| e.into_inner());
    ensure_tracefs();
    Some(guard)
}

#[test]
fn bundle_with_its_own_tailored_btf_runs_here() {
    let Some(_one_at_a_time) = kernel_test() else {
        return;
    };
    // A board file whose kernel.btf is a raw BTF file: this kernel's own.
    let dir = tempdir();
    let file = write_target(
        dir.path(),
        "x86-own-btf",
        "schema: 1\nname: x86-own-btf\ndescription: x86_64 with the bundle's own BTF\narch: x86_64\nkernel:\n  version: \"5.15\"\n  btf: /sys/kernel/btf/vmlinux\nprobes: [opensnoop]\n",
    );
    let (bundle, _) = built_bundle(&file, &[]);
    let unpack_dir = tempdir();
    let top = unpack(&bundle, unpack_dir.path());
    let btf = std::fs::metadata(top.join("btf/vmlinux.btf")).expect("tailored BTF shipped");
    assert!(
        btf.len() < 64 * 1024,
        "tailored BTF should be small, is {} bytes",
        btf.len()
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(top.join("manifest.json")).expect("manifest"))
            .expect("json");
    assert_eq!(manifest["target"]["btf"], "bundled");
    assert_eq!(manifest["btf"], "btf/vmlinux.btf");
    let (listing, _) = text(&run_ok(Command::new(top.join("ebpf-run")).arg("--list")));
    assert!(
        listing.contains("\n  kernel 5.15 or newer; BTF: the bundle's btf/vmlinux.btf\n"),
        "{listing}"
    );
    opensnoop_sees_our_open(&top);
}

/// `--check` compares the running kernel with the manifest's lowest kernel (a hint: the probes that
/// follow decide the verdict).
#[test]
fn check_compares_the_kernel_with_the_manifest() {
    let (_dir, top) = unpacked("x86_64");
    let check = |top: &Path| {
        let out = Command::new(top.join("ebpf-run"))
            .arg("--check")
            .output()
            .expect("run");
        text(&out).0
    };
    let report = check(&top);
    assert!(
        report.contains("  ok    kernel: ")
            && report.contains(" meets the bundle's 5.15 or newer\n"),
        "{report}"
    );
    let manifest_path = top.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).expect("manifest")).expect("json");
    manifest["target"]["kernel_version"] = "99.0".into();
    std::fs::write(&manifest_path, serde_json::to_vec(&manifest).expect("json")).expect("write");
    let report = check(&top);
    assert!(
        report.contains("  warn  kernel: ")
            && report.contains(" is older than the 99.0 the bundle was built for;"),
        "{report}"
    );
}

/// `--list` starts with what the manifest says the bundle is for, and flags a manifest that no longer
/// matches the objects (or cannot be read) while still listing them. Needs no privilege.
#[test]
fn list_shows_the_manifest_and_flags_a_changed_bundle() {
    let (_dir, top) = unpacked("x86_64");
    let list = |top: &Path| {
        let out = Command::new(top.join("ebpf-run"))
            .arg("--list")
            .output()
            .expect("run");
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{stdout}{stderr}");
        stdout
    };
    let manifest_path = top.join("manifest.json");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).expect("manifest")).expect("json");
    let listing = list(&top);
    let target = &manifest["target"];
    let header = format!(
        "bundle ebpf-pack {} for x86_64: arch x86_64, 64-bit little-endian, loader {}\n  kernel {} or newer; BTF: the running kernel's (/sys/kernel/btf/vmlinux)\n  built with clang: {}; rustc: {}\n",
        manifest["version"].as_str().expect("version"),
        target["triple"].as_str().expect("triple"),
        target["kernel_version"].as_str().expect("kernel_version"),
        manifest["tools"]["clang"].as_str().expect("clang"),
        manifest["tools"]["rustc"].as_str().expect("rustc"),
    );
    assert!(listing.starts_with(&header), "want\n{header}in\n{listing}");
    assert!(!listing.contains("warning"), "{listing}");
    // Every probe of the manifest is listed, each with its programs.
    for probe in manifest["probes"].as_array().expect("probes") {
        let name = probe["name"].as_str().expect("name");
        assert!(
            listing.contains(&format!("\n{name}  ")),
            "{name}: {listing}"
        );
        for program in probe["programs"].as_array().expect("programs") {
            let line = format!(
                "  program {}  {}  -> ",
                program["name"].as_str().expect("program name"),
                program["section"].as_str().expect("section")
            );
            assert!(listing.contains(&line), "{line}: {listing}");
        }
    }

    // A map dropped from opensnoop's entry: the listing says where the bundle changed.
    let mut changed = manifest.clone();
    let opensnoop = changed["probes"]
        .as_array_mut()
        .expect("probes")
        .iter_mut()
        .find(|p| p["name"] == "opensnoop")
        .expect("opensnoop entry");
    opensnoop["maps"]
        .as_array_mut()
        .expect("maps")
        .retain(|m| m["name"] != "start");
    std::fs::write(&manifest_path, serde_json::to_vec(&changed).expect("json")).expect("write");
    let listing = list(&top);
    assert!(
        listing.contains("  warning: the object has map start (hash), manifest.json does not list it: the bundle changed after `ebpf-pack build`; rebuild it\n"),
        "{listing}"
    );
    assert_eq!(listing.matches("warning").count(), 1, "{listing}");

    // A manifest cut short: said once, and the objects are listed alone.
    let bytes = serde_json::to_vec(&manifest).expect("json");
    std::fs::write(&manifest_path, &bytes[..bytes.len() / 2]).expect("write");
    let listing = list(&top);
    let first = listing.lines().next().unwrap_or_default();
    let path = manifest_path.display();
    assert!(
        first.starts_with(&format!("warning: {path}: ")) && first.contains(" at byte "),
        "{listing}"
    );
    assert!(first.ends_with("; listing the objects alone"), "{listing}");
    assert!(listing.contains("\nopensnoop  "), "{listing}");
}

/// The single-file executable of `ebpf-pack build --single`, copied alone into an empty folder, runs its
/// embedded probe against its embedded tailored BTF; damaged copies are refused before anything loads.
#[test]
fn single_file_executable_runs_alone_and_refuses_damage() {
    let Some(_one_at_a_time) = kernel_test() else {
        return;
    };
    let dir = tempdir();
    let file = write_target(
        dir.path(),
        "x86-single",
        "schema: 1\nname: x86-single\ndescription: x86_64 single file with its own BTF\narch: x86_64\nkernel:\n  version: \"5.15\"\n  btf: /sys/kernel/btf/vmlinux\nprobes: [opensnoop]\n",
    );
    let out = run_ok(
        ebpf_pack()
            .arg("-C")
            .arg(repo())
            .args(["build", "--single", "--target-file"])
            .arg(&file),
    );
    let (stdout, _) = text(&out);
    let paths: Vec<PathBuf> = stdout
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .map(|p| repo().join(p))
        .collect();
    let [bundle, single] = paths.as_slice() else {
        panic!("build --single prints the bundle and the .run: {stdout}");
    };
    assert!(single.to_string_lossy().ends_with(".run"), "{stdout}");
    let good = std::fs::read(single).expect("read .run");
    let sums = std::fs::read_to_string(format!("{}.sha256", single.display())).expect(".sha256");
    assert!(sums.starts_with(&ebpf_pack_manifest::embedded::sha256_hex(&good)));
    run_ok(
        ebpf_pack()
            .arg("verify")
            .arg(single)
            .args(["--target", "x86-single"]),
    );

    // Alone in a folder (no bpf/, no btf/ beside it), under another name: everything comes from inside.
    let alone = tempdir();
    let exe = alone.path().join("ebpf-run");
    std::fs::write(&exe, &good).expect("copy");
    std::fs::set_permissions(&exe, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let list = run_ok(Command::new(&exe).arg("--list"));
    let (listing, _) = text(&list);
    assert!(
        listing.starts_with("bundle ebpf-pack 0.1.0 for x86-single: "),
        "{listing}"
    );
    assert!(listing.contains("\nopensnoop  "), "{listing}");
    opensnoop_sees_our_open(alone.path());

    // Damage: a flipped bit in the embedded object, and a copy cut short.
    let loader_len = ebpf_pack_manifest::embedded::split(&good)
        .expect("trailer")
        .expect("embedded bundle")
        .loader
        .len();
    let object_at = loader_len
        + good[loader_len..]
            .windows(4)
            .position(|w| w == b"\x7fELF")
            .expect("the embedded object");
    let mut flipped = good.clone();
    flipped[object_at + 300] ^= 0x10;
    let mut cut = good.clone();
    cut.truncate(good.len() - 700);
    for (damaged, problem) in [
        (flipped, "bpf/opensnoop.bpf.o: checksum mismatch"),
        (cut, "truncated"),
    ] {
        std::fs::write(&exe, &damaged).expect("write damaged copy");
        for args in [&["--list"][..], &["opensnoop", "--duration", "1"]] {
            let out = Command::new(&exe).args(args).output().expect("run damaged");
            let (o, e) = text(&out);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{args:?}\nstdout:\n{o}\nstderr:\n{e}"
            );
            assert!(
                e.contains("embedded bundle") && e.contains(problem) && o.is_empty(),
                "{args:?}: expected `{problem}`:\n{e}"
            );
        }
        let out = ebpf_pack()
            .arg("verify")
            .arg(&exe)
            .output()
            .expect("verify");
        let (_, e) = text(&out);
        assert!(!out.status.success() && e.contains(problem), "verify: {e}");
    }
    remove_bundle(bundle);
    remove_bundle(single);
}

/// Overflows opensnoop's events buffer while the loader is stopped (SIGSTOP): a shell filtered by pid
/// opens a file `OPENS` times. Returns the printed and lost counts the loader reported at exit, after
/// checking its JSON count line, its stderr summary and its warning.
fn overflow(top: &Path, extra: &[&str]) -> (usize, usize) {
    // On one CPU: a perf buffer is per CPU, so one buffer overflows.
    let mut shell = Command::new("taskset")
        .args(["-c", "0", "sh", "-c"])
        .arg(format!(
            "echo ready; read go; i=0; while [ $i -lt {OPENS} ]; do : < /etc/hostname; i=$((i+1)); done"
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start sh");
    // Started (exec'd, libraries opened) before the loader attaches: only the loop's opens count.
    let mut ready = String::new();
    BufReader::new(shell.stdout.take().expect("stdout"))
        .read_line(&mut ready)
        .expect("sh says ready");
    assert_eq!(ready, "ready\n");
    let filter = format!("filter_pid={}", shell.id());
    let mut args = vec!["opensnoop", "--set", &filter, "--format", "json"];
    args.extend_from_slice(extra);
    let loader = start(top, &args);
    let pid = i32::try_from(loader.child.id()).expect("pid");
    let mut stdin = shell.stdin.take().expect("stdin");
    // SAFETY: kill(2) on our own, not yet waited-for child.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    {
        use std::io::Write;
        stdin.write_all(b"go\n").expect("tell sh to go");
        stdin.flush().expect("flush");
        // The buffer (256 KiB, about 880 records) fills and overflows while nobody reads it.
        std::thread::sleep(Duration::from_millis(1500));
        // SAFETY: as above.
        unsafe { libc::kill(pid, libc::SIGCONT) };
        // The loader drains and checks its counters (each second). No record follows the overflow:
        // the count at exit must hold every loss already (the kernel's own note of a perf buffer's
        // losses would only come with a next record).
        std::thread::sleep(Duration::from_millis(1300));
    }
    drop(stdin);
    assert!(shell.wait().expect("wait sh").success());
    let (stdout, stderr) = finish(loader);
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let opens: Vec<&serde_json::Value> =
        events.iter().filter(|e| e.get("path").is_some()).collect();
    assert!(
        opens.iter().all(|e| e["path"] == "/etc/hostname"),
        "only the shell's opens pass filter_pid:\n{stdout}"
    );
    let counts: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e.get("printed").is_some())
        .collect();
    let [count] = counts.as_slice() else {
        panic!("one count line for the one events buffer:\n{stdout}");
    };
    let lost = count["lost"].as_u64().expect("lost is counted") as usize;
    assert_eq!(
        count["printed"].as_u64(),
        Some(opens.len() as u64),
        "{count}"
    );
    assert!(
        stderr.contains(&format!(
            "opensnoop events: {} records printed, {lost} lost",
            opens.len()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("records lost (buffer full"),
        "a warning while running:\n{stderr}"
    );
    (opens.len(), lost)
}

const OPENS: usize = 5000;

/// A ring buffer that overflows, and its perf-buffer fallback (`--perf-buffer`, what kernels before
/// 5.8 get) that overflows: every record is printed or counted as lost by the probe
/// (`EP_RINGBUF_RESERVE`, `EP_EVENT_SUBMIT`) and reported. None is lost silently: printed + lost is
/// exactly the number of opens.
#[test]
fn lost_records_are_counted_and_reported() {
    let Some(_one_at_a_time) = kernel_test() else {
        return;
    };
    let (_dir, top) = unpacked("x86_64");
    for extra in [&[][..], &["--perf-buffer"]] {
        let (printed, lost) = overflow(&top, extra);
        assert!(lost > 0, "{extra:?}: the buffer must have overflowed");
        assert_eq!(
            printed + lost,
            OPENS,
            "{extra:?}: printed {printed}, lost {lost}"
        );
    }
}

/// `--perf-buffer` really loads opensnoop's events map as a perf event array, and the records decode
/// the same as from the ring buffer.
#[test]
fn perf_buffer_fallback_carries_the_same_records() {
    let Some(_one_at_a_time) = kernel_test() else {
        return;
    };
    let (_dir, top) = unpacked("x86_64");
    let scratch = tempdir();
    let path = scratch.path().join(unique("perf"));
    std::fs::write(&path, b"x").expect("create");
    let loader = start(&top, &["opensnoop", "--perf-buffer"]);
    let maps = run_ok(Command::new("bpftool").args(["map", "show"]));
    let maps = String::from_utf8_lossy(&maps.stdout).into_owned();
    std::fs::File::open(&path).expect("open");
    let (stdout, stderr) = finish(loader);
    assert!(
        maps.lines()
            .any(|l| l.contains("perf_event_array") && l.contains(" name events ")),
        "events is a perf event array:\n{maps}"
    );
    assert!(
        stderr.contains("opensnoop/events: using its perf-buffer fallback"),
        "{stderr}"
    );
    let me = std::process::id();
    let hits = matching(
        &stdout,
        "opensnoop",
        &[format!(" pid={me} "), format!("path={}", path.display())],
    );
    assert_eq!(hits.len(), 1, "one open of {}:\n{stdout}", path.display());
    let words = hits[0].split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words.contains(" fd=") && words.contains(" err=0 ") && words.contains(" comm="),
        "{words}"
    );
}

/// Resident memory (KiB) and open file descriptors of process `pid`.
fn rss_and_fds(pid: u32) -> Option<(u64, usize)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count();
    Some((rss, fds))
}

/// Kills process `pid` when dropped: a workload never outlives a test that failed.
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.0) {
            // SAFETY: kill(2) of a child of this test; at worst it has already exited.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// Soak: opensnoop's ring buffer overflowing again and again for `EBPF_PACK_SOAK_SECONDS` (30 here;
/// scripts/bench-soak.sh runs 600), the loader stopped 700 ms of every second while a shell opens a
/// file as fast as it can, with `--interval 1` map dumps throughout. Every open is printed or counted
/// lost (printed + lost = opens, exactly), resident memory stays flat after the first seconds, and no
/// file descriptor leaks.
#[test]
fn soak_an_overflowing_ring_buffer_stays_exact_and_flat() {
    let Some(_one_at_a_time) = kernel_test() else {
        return;
    };
    let seconds: u64 = std::env::var("EBPF_PACK_SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let (dir, top) = unpacked("x86_64");
    let stop = dir.path().join("stop");
    let mut shell = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "echo ready; read go; i=0; while [ ! -e '{}' ]; do : < /etc/hostname; i=$((i+1)); done; echo $i",
            stop.display()
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start sh");
    let shell_guard = KillOnDrop(shell.id());
    let mut shell_out = BufReader::new(shell.stdout.take().expect("stdout"));
    let mut line = String::new();
    shell_out.read_line(&mut line).expect("sh says ready");
    let filter = format!("filter_pid={}", shell.id());
    let loader = start_for(
        &top,
        &[
            "opensnoop",
            "--set",
            &filter,
            "--format",
            "json",
            "--interval",
            "1",
        ],
        seconds + 120,
    );
    let pid = loader.child.id();
    {
        use std::io::Write;
        let mut stdin = shell.stdin.take().expect("stdin");
        stdin.write_all(b"go\n").expect("go");
    }
    let mut samples = Vec::new();
    for second in 0..seconds {
        loader.signal(libc::SIGSTOP);
        std::thread::sleep(Duration::from_millis(700));
        loader.signal(libc::SIGCONT);
        std::thread::sleep(Duration::from_millis(300));
        let Some(sample) = rss_and_fds(pid) else {
            let (stdout, stderr) = finish(loader);
            let tail: Vec<&str> = stdout.lines().rev().take(5).collect();
            panic!("ebpf-run ended after {second} s\nstderr:\n{stderr}\nlast lines: {tail:?}");
        };
        samples.push(sample);
    }
    std::fs::write(&stop, b"").expect("stop the shell");
    line.clear();
    shell_out.read_line(&mut line).expect("the shell's count");
    let opens: u64 = line.trim().parse().expect("a count");
    assert!(shell.wait().expect("wait sh").success());
    // Waited for: its pid is no longer ours to kill.
    std::mem::forget(shell_guard);
    // The loader drains the rest and reads the lost counter (each second) before it is stopped.
    std::thread::sleep(Duration::from_millis(1300));
    let (stdout, stderr) = finish(loader);
    let printed = stdout.lines().filter(|l| l.contains("\"path\":")).count() as u64;
    let dumps = stdout
        .lines()
        .filter(|l| *l == r#"{"dump":"interval"}"#)
        .count();
    let count: serde_json::Value = stdout
        .lines()
        .find(|l| l.contains("\"printed\":"))
        .map(|l| serde_json::from_str(l).expect("count line"))
        .unwrap_or_else(|| panic!("no count line:\n{stderr}"));
    let lost = count["lost"].as_u64().expect("lost");
    assert_eq!(count["printed"].as_u64(), Some(printed), "{count}");
    assert!(lost > 0, "the buffer must have overflowed");
    assert_eq!(
        printed + lost,
        opens,
        "printed {printed} + lost {lost} != opens {opens}"
    );
    assert!(
        dumps as u64 >= seconds / 2,
        "{dumps} interval dumps in {seconds} s"
    );
    // Flat: after the first seconds' growth (buffers, decoder tables) no more than 2 MiB more.
    let settled = samples[samples.len().min(3) - 1].0;
    let peak = samples.iter().map(|s| s.0).max().unwrap_or(0);
    assert!(
        peak <= settled + 2048,
        "resident memory grew from {settled} KiB to {peak} KiB: {samples:?}"
    );
    let fds: Vec<usize> = samples.iter().map(|s| s.1).collect();
    assert!(
        fds.iter().all(|&n| n == fds[0]),
        "file descriptors changed: {fds:?}"
    );
    eprintln!(
        "soak {seconds} s: {opens} opens, {printed} printed, {lost} lost, {dumps} dumps, RSS {settled}..{peak} KiB, {} fds",
        fds[0]
    );
}
