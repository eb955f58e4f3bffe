//! One-liners on this kernel: bpftrace programs given to `ebpf-pack run --target x86_64 --via local
//! -e`, compiled on the host, built into the repository's x86_64 bundle as a loose probe, run by
//! ebpf-run, and their maps printed here in bpftrace's layout — against workloads whose effect is
//! known (exact counts), beside Debian's bpftrace on the same workload, and the bad-input table:
//! each a located error, exit code 2, nothing built.
//!
//! Needs root, BTF and tracefs (and bpftrace for the comparison); under CI=true a missing one fails.

mod support;
#[path = "../oneliner/tests/support/table.rs"]
mod table;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use support::*;

/// A copy of `bin` named `name` in `dir`: its processes have that comm.
fn renamed(bin: &str, dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::copy(bin, &path).unwrap_or_else(|e| panic!("copy {bin}: {e}"));
    path
}

/// Starts `ebpf-pack run -e PROGRAM` on this machine and waits until its probe is attached.
fn start_oneliner(program: &str) -> Attached {
    start_attached(
        ebpf_pack()
            .arg("-C")
            .arg(repo())
            .args(["run", "--target", "x86_64", "--via", "local", "-e", program]),
    )
}

/// Stops a run with SIGINT (its maps print then) and returns its stdout, checking it succeeded.
fn stop(run: Attached) -> String {
    run.signal(libc::SIGINT);
    let (status, out, err) = run.wait();
    assert!(
        status.success(),
        "exit {status}\nstdout:\n{out}\nstderr:\n{err}"
    );
    out
}

/// What a run on this kernel needs: BPF (else a loud skip), tracefs, the build lock (runs rebuild
/// the repository's x86_64 run bundle) and a scratch folder.
fn prepared() -> Option<(std::sync::MutexGuard<'static, ()>, tempfile::TempDir)> {
    if !can_load_bpf() {
        return None;
    }
    ensure_tracefs();
    Some((build_lock(), tempdir()))
}

/// The program of the read/open workload, in the spelling both bpftrace 0.17 and ebpf-pack take.
const READS: &str = "tracepoint:syscalls:sys_enter_read /comm == \"oltest_cat\" && args->fd == 0/ \
     { @reads = count(); @fds = hist(args->fd); @r[tid] = 1; @sz = lhist(args->count, 0, 262144, 65536); @mnc = min(args->count); } \
     tracepoint:syscalls:sys_exit_read /@r[tid]/ { @bytes = sum(args->ret); @avg = avg(args->ret); @st = stats(args->ret); \
     @mn = min(args->ret); @mx = max(args->ret); delete(@r[tid]); } \
     tracepoint:syscalls:sys_enter_openat /comm == \"oltest_cat\"/ { @opens[str(args->filename)] = count(); }";

/// Runs the workload of [`READS`]: `oltest_cat < input` 5 times (two reads of fd 0 each: the 5000
/// bytes, then end of file) and `oltest_cat unique` 3 times.
fn reads_workload(dir: &Path) -> PathBuf {
    let cat = renamed("/usr/bin/cat", dir, "oltest_cat");
    let input = dir.join("input");
    std::fs::write(&input, vec![b'x'; 5000]).expect("input");
    let unique = dir.join(format!("opened-{}", std::process::id()));
    std::fs::write(&unique, "u\n").expect("unique file");
    for _ in 0..5 {
        let status = Command::new(&cat)
            .stdin(std::fs::File::open(&input).expect("input"))
            .stdout(Stdio::null())
            .status()
            .expect("run oltest_cat");
        assert!(status.success());
    }
    for _ in 0..3 {
        let status = Command::new(&cat)
            .arg(&unique)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .expect("run oltest_cat");
        assert!(status.success());
    }
    unique
}

/// The lines of the map `@name` in bpftrace's text: its scalar line, or its block of hist lines.
fn map_block<'t>(text: &'t str, name: &str) -> Vec<&'t str> {
    let mut lines = text
        .lines()
        .skip_while(|l| !l.starts_with(&format!("{name}:")));
    let Some(first) = lines.next() else {
        return Vec::new();
    };
    let mut out = vec![first];
    if first.ends_with(": ") {
        out.extend(lines.take_while(|l| !l.is_empty()));
    }
    out
}

fn bar(n: usize) -> String {
    format!("|{:<52}|", "@".repeat(n))
}

#[test]
fn one_liners_count_exactly_what_the_workload_did() {
    let Some((_guard, dir)) = prepared() else {
        return;
    };
    let run = start_oneliner(READS);
    let unique = reads_workload(dir.path());
    let out = stop(run);
    assert_eq!(map_block(&out, "@reads"), ["@reads: 10"], "{out}");
    assert_eq!(map_block(&out, "@bytes"), ["@bytes: 25000"], "{out}");
    assert_eq!(map_block(&out, "@avg"), ["@avg: 2500"], "{out}");
    assert_eq!(
        map_block(&out, "@st"),
        ["@st: count 10, average 2500, total 25000"],
        "{out}"
    );
    assert_eq!(
        map_block(&out, "@fds"),
        ["@fds: ".to_owned(), format!("[0]{:>21} {}", 10, bar(52))],
        "{out}"
    );
    // cat reads 128 KiB at a time: every read falls in [128K, 192K).
    assert_eq!(
        map_block(&out, "@sz"),
        [
            "@sz: ".to_owned(),
            format!("[128K, 192K){:>12} {}", 10, bar(52))
        ],
        "{out}"
    );
    let opened = format!("@opens[{}]: 3", unique.display());
    assert!(out.lines().any(|l| l == opened), "{opened} in:\n{out}");
    // Each cat read 5000 bytes, then 0 at the end; every read asked for 128 KiB (a CPU that never
    // ran cat holds no 0 for min()).
    assert_eq!(map_block(&out, "@mn"), ["@mn: 0"], "{out}");
    assert_eq!(map_block(&out, "@mx"), ["@mx: 5000"], "{out}");
    assert_eq!(map_block(&out, "@mnc"), ["@mnc: 131072"], "{out}");

    // A known sleep lands in its bucket; if/else, scratch variables, ++ and a wildcard with
    // `probe` count what the three sleeps did.
    let sleep = renamed("/usr/bin/sleep", dir.path(), "oltest_sleep");
    let run = start_oneliner(
        "tracepoint:syscalls:sys_enter_clock_nanosleep /comm == \"oltest_sleep\"/ { @s[tid] = nsecs; } \
         tracepoint:syscalls:sys_exit_clock_nanosleep /@s[tid]/ { $d = nsecs - @s[tid]; \
         @ms = hist($d / 1000000); delete(@s[tid]); if ($d > 50000000) { @long++; } else { @short++; } } \
         tracepoint:syscalls:sys_enter_exit_g* /comm == \"oltest_sleep\"/ { @[probe] = count(); } \
         tracepoint:timer:hrtimer_start /comm == \"oltest_sleep\"/ { @t[ksym(args->function)] = count(); }",
    );
    for _ in 0..3 {
        let status = Command::new(&sleep).arg("0.1").status().expect("sleep");
        assert!(status.success());
    }
    let out = stop(run);
    assert_eq!(
        map_block(&out, "@ms"),
        [
            "@ms: ".to_owned(),
            format!("[64, 128){:>15} {}", 3, bar(52))
        ],
        "a 100 ms sleep is in [64, 128) ms:\n{out}"
    );
    assert_eq!(map_block(&out, "@long"), ["@long: 3"], "{out}");
    // Each sleep armed its hrtimer to wake it: the callback's address named on the board.
    let wakeups: u64 = out
        .lines()
        .find_map(|l| l.strip_prefix("@t[hrtimer_wakeup]: ")?.parse().ok())
        .unwrap_or_else(|| panic!("@t[hrtimer_wakeup] in:\n{out}"));
    assert!(wakeups >= 3, "{out}");
    assert!(map_block(&out, "@short").is_empty(), "{out}");
    assert_eq!(
        map_block(&out, "@[tracepoint:syscalls:sys_enter_exit_group]"),
        ["@[tracepoint:syscalls:sys_enter_exit_group]: 3"],
        "{out}"
    );
}

/// A program of this machine, built with frame pointers (-O0: in its leaf function too) and symbols,
/// that spins in `spin_here` (called from `main`) for `secs` seconds: what a profile probe's user
/// stacks must name.
fn spinner(dir: &Path, secs: u32) -> PathBuf {
    let src = dir.join("spin.c");
    std::fs::write(
        &src,
        format!(
            "#include <unistd.h>\n\
             __attribute__((noinline)) void spin_here(volatile unsigned long *n) {{ while (*n != ~0UL) (*n)++; }}\n\
             int main(void) {{ volatile unsigned long n = 0; alarm({secs}); spin_here(&n); return (int)n; }}\n"
        ),
    )
    .expect("spinner source");
    let bin = dir.join("oltest_spin");
    let out = Command::new("cc")
        .args(["-O0", "-g", "-fno-omit-frame-pointer", "-o"])
        .arg(&bin)
        .arg(&src)
        .output()
        .expect("cc runs");
    assert!(
        out.status.success(),
        "cc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    bin
}

#[test]
fn profile_samples_count_stacks_named_on_the_host() {
    let Some((_guard, dir)) = prepared() else {
        return;
    };
    // Its alarm is a safety net: it is killed once the maps are printed (user frames are named
    // from the mappings of processes alive at the dump, as bpftrace names them).
    let spin = spinner(dir.path(), 60);
    let run = start_oneliner(
        "profile:hz:99 /comm == \"oltest_spin\"/ { @n = count(); @[ustack] = count(); @k[kstack(3)] = count(); @cpus[cpu] = count(); }",
    );
    let mut spinning = Command::new(&spin).spawn().expect("run the spinner");
    std::thread::sleep(Duration::from_secs(3));
    let out = stop(run);
    let _ = spinning.kill();
    let _ = spinning.wait();
    let samples: u64 = map_block(&out, "@n")
        .first()
        .and_then(|l| l.strip_prefix("@n: ")?.parse().ok())
        .unwrap_or_else(|| panic!("@n in:\n{out}"));
    // 99 Hz for 3 s is ~300 samples of a process that has a CPU; a busy host gives it less.
    assert!(samples > 30, "{samples} samples:\n{out}");
    // The user stacks are named from the binary's own symbols, innermost first, as bpftrace
    // prints them: `@[` then `    spin_here+N`, `    main+M`, ... `]: count`.
    let lines: Vec<&str> = out.lines().collect();
    let stack_at = lines
        .iter()
        .position(|l| l.starts_with("    spin_here+"))
        .unwrap_or_else(|| panic!("a user stack in spin_here:\n{out}"));
    assert_eq!(lines[stack_at - 1], "@[", "{out}");
    assert!(lines[stack_at + 1].starts_with("    main+"), "{out}");
    // Maps print in name order: `@` first, then `@cpus`.
    let ustacks: u64 = lines
        .iter()
        .take_while(|l| !l.starts_with("@cpus["))
        .filter(|l| l.starts_with("]: ") || l.starts_with("@[]: "))
        .filter_map(|l| l.rsplit(": ").next()?.parse::<u64>().ok())
        .sum();
    assert!(
        ustacks >= samples,
        "every sample has its user stack:\n{out}"
    );
    // Spinning in user mode, the kernel stack is mostly empty: `@k[]: N` (and the timer
    // interrupt's frames when the sample lands in the kernel).
    assert!(
        lines.iter().any(|l| l.starts_with("@k[]: ")),
        "empty kernel stacks:\n{out}"
    );
    assert!(lines.iter().any(|l| l.starts_with("@cpus[")), "{out}");
}

#[test]
fn tracepoint_records_are_read_by_field_name() {
    let Some((_guard, dir)) = prepared() else {
        return;
    };
    // sched_process_exec's filename is a __data_loc string, its pid a number: the 8 execs of the
    // workload's oltest_cat, by path, and each pid once.
    let run = start_oneliner(
        "tracepoint:sched:sched_process_exec /args->pid > 0/ { @execs[args->filename] = count(); @pids[args.pid] = count(); }",
    );
    reads_workload(dir.path());
    let out = stop(run);
    let path = dir.path().join("oltest_cat");
    let want = format!("@execs[{}]: 8", path.display());
    assert!(out.lines().any(|l| l == want), "{want} in:\n{out}");
    assert!(
        out.lines().filter(|l| l.starts_with("@pids[")).count() >= 8,
        "a pid per exec:\n{out}"
    );
}

#[test]
fn printf_lines_come_as_written_between_begin_and_end() {
    let Some((_guard, dir)) = prepared() else {
        return;
    };
    let run = start_oneliner(
        "BEGIN { printf(\"Tracing opens of oltest_cat... Hit Ctrl-C to end.\\n\"); } \
         tracepoint:syscalls:sys_enter_openat /comm == \"oltest_cat\"/ \
         { printf(\"%-12s opens %s (flags %d)\\n\", comm, str(args->filename), args->flags); @opens = count(); } \
         END { printf(\"%s %d\\n\", \"bye\", 42); }",
    );
    let unique = reads_workload(dir.path());
    let out = stop(run);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some("Tracing opens of oltest_cat... Hit Ctrl-C to end."),
        "{out}"
    );
    let opened = format!("oltest_cat   opens {} (flags 0)", unique.display());
    assert_eq!(
        lines.iter().filter(|l| **l == opened).count(),
        3,
        "{opened} in:\n{out}"
    );
    // END's line, then the maps: as many opens as lines.
    let end = lines
        .iter()
        .position(|l| *l == "bye 42")
        .expect("END's line");
    let total: usize = lines[end + 1]
        .strip_prefix("@opens: ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("@opens after END:\n{out}"));
    let printed = lines
        .iter()
        .filter(|l| l.starts_with("oltest_cat   opens "))
        .count();
    assert_eq!(total, printed, "{out}");
}

#[test]
fn an_interval_probe_prints_clears_and_exits() {
    let Some((_guard, dir)) = prepared() else {
        return;
    };
    // The workload's 10 reads of fd 0 all happen in the first second; the interval prints them,
    // clears the map and ends the run, whose exit dump then has nothing of @reads.
    let run = start_oneliner(
        "tracepoint:syscalls:sys_enter_read /comm == \"oltest_cat\" && args->fd == 0/ { @reads = count(); } \
         interval:s:1 { printf(\"tick\\n\"); print(@reads); clear(@reads); exit(); }",
    );
    reads_workload(dir.path());
    let (status, out, err) = run.wait();
    assert!(
        status.success(),
        "exit {status}\nstdout:\n{out}\nstderr:\n{err}"
    );
    assert_eq!(
        out, "tick\n@reads: 10\n",
        "the run ended by itself after one interval"
    );
}

#[test]
fn kernel_structs_are_read_through_pointers() {
    let Some((_guard, dir)) = prepared() else {
        return;
    };
    // curtask's parent (this test), its own tgid (pid), and the name of its working directory's
    // dentry through fs->pwd (an embedded struct path) — each read with CO-RE in this kernel's
    // layout, the last through a cast pointer and str().
    let run = start_oneliner(
        "tracepoint:syscalls:sys_enter_openat /comm == \"oltest_cat\"/ { \
         @parent[curtask->real_parent->tgid] = count(); @own[curtask->tgid == pid] = count(); \
         @cwd[str(((struct fs_struct *)curtask->fs)->pwd.dentry->d_name.name)] = count(); }",
    );
    let cat = renamed("/usr/bin/cat", dir.path(), "oltest_cat");
    let status = Command::new(&cat)
        .arg("/dev/null")
        .current_dir(dir.path())
        .status()
        .expect("run oltest_cat");
    assert!(status.success());
    let out = stop(run);
    let parent = format!("@parent[{}]: ", std::process::id());
    assert!(
        out.lines().any(|l| l.starts_with(&parent)),
        "{parent} in:\n{out}"
    );
    assert!(out.lines().any(|l| l.starts_with("@own[1]: ")), "{out}");
    assert!(!out.lines().any(|l| l.starts_with("@own[0]: ")), "{out}");
    let name = dir
        .path()
        .file_name()
        .and_then(|n| n.to_str())
        .expect("dir name");
    let cwd = format!("@cwd[{name}]: ");
    assert!(out.lines().any(|l| l.starts_with(&cwd)), "{cwd} in:\n{out}");
}

#[test]
fn exit_in_a_probe_ends_the_run_with_its_maps() {
    let Some((_guard, dir)) = prepared() else {
        return;
    };
    // The first open of the workload ends the run by itself: its printf line, then the maps.
    let run = start_oneliner(
        "tracepoint:syscalls:sys_enter_openat /comm == \"oltest_cat\"/ \
         { @opens = count(); printf(\"first open by %s\\n\", comm); exit(); }",
    );
    reads_workload(dir.path());
    let (status, out, err) = run.wait();
    assert!(
        status.success(),
        "exit {status}\nstdout:\n{out}\nstderr:\n{err}"
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some("first open by oltest_cat"),
        "{out}"
    );
    // Opens already on their way when the run stops are counted too (bpftrace's exit() is no
    // barrier either): at least the first.
    let opens: u64 = lines
        .iter()
        .find_map(|l| l.strip_prefix("@opens: ")?.parse().ok())
        .unwrap_or_else(|| panic!("@opens in:\n{out}"));
    assert!(opens >= 1, "{out}");
}

#[test]
fn format_json_prints_bpftrace_json_lines() {
    let Some((_guard, dir)) = prepared() else {
        return;
    };
    let run = start_attached(ebpf_pack().arg("-C").arg(repo()).args([
        "run",
        "--target",
        "x86_64",
        "--via",
        "local",
        "--format",
        "json",
        "-e",
        &format!("BEGIN {{ printf(\"go\\n\"); }} {READS}"),
    ]));
    reads_workload(dir.path());
    let out = stop(run);
    let lines: Vec<&str> = out.lines().collect();
    // As bpftrace -f json: attached probes (BEGIN counted), BEGIN's printf, then the maps.
    assert_eq!(
        lines.first().copied(),
        Some("{\"type\": \"attached_probes\", \"data\": {\"probes\": 4}}"),
        "{out}"
    );
    assert_eq!(
        lines.get(1).copied(),
        Some("{\"type\": \"printf\", \"data\": \"go\\n\"}"),
        "{out}"
    );
    for want in [
        "{\"type\": \"map\", \"data\": {\"@reads\": 10}}",
        "{\"type\": \"map\", \"data\": {\"@bytes\": 25000}}",
        "{\"type\": \"stats\", \"data\": {\"@avg\": 2500}}",
        "{\"type\": \"hist\", \"data\": {\"@fds\": [{\"min\": 0, \"max\": 0, \"count\": 10}]}}",
        "{\"type\": \"hist\", \"data\": {\"@sz\": [{\"min\": 131072, \"max\": 196607, \"count\": 10}]}}",
    ] {
        assert!(lines.contains(&want), "{want} in:\n{out}");
    }
    for l in &lines {
        serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| panic!("{l}: {e}"));
    }
}

/// Starts bpftrace on `program` (with a BEGIN that says when every probe is attached) and waits
/// for it; its stdout so far is kept by the reader thread.
fn start_bpftrace(program: &str) -> (std::process::Child, std::thread::JoinHandle<String>) {
    let mut child = Command::new("bpftrace")
        .arg("-e")
        .arg(format!("BEGIN {{ printf(\"ready\\n\"); }} {program}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start bpftrace");
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        // Bytes, not lines: a map key may hold bytes that are not UTF-8.
        let mut all = Vec::new();
        let mut out = BufReader::new(out);
        let mut line = Vec::new();
        while out.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
            if line == b"ready\n" {
                let _ = tx.send(());
            }
            all.append(&mut line);
        }
        String::from_utf8_lossy(&all).into_owned()
    });
    if rx.recv_timeout(Duration::from_secs(60)).is_err() {
        let _ = child.kill();
        panic!(
            "bpftrace did not start: {}",
            reader.join().unwrap_or_default()
        );
    }
    (child, reader)
}

#[test]
fn one_liners_hold_what_bpftrace_holds_on_the_same_workload() {
    if !can_load_bpf() {
        return;
    }
    if !require(
        Command::new("bpftrace").arg("--version").output().is_ok(),
        "bpftrace (Debian's package; scripts/install-deps.sh installs it)",
    ) {
        return;
    }
    ensure_tracefs();
    let _guard = build_lock();
    let dir = tempdir();
    // Both attached to the same workload at once.
    let ours = start_oneliner(READS);
    let (mut theirs, reader) = start_bpftrace(READS);
    reads_workload(dir.path());
    let pid = i32::try_from(theirs.id()).expect("pid");
    // SAFETY: kill(2) on our own child, not yet waited for.
    unsafe { libc::kill(pid, libc::SIGINT) };
    let status = theirs.wait().expect("wait bpftrace");
    assert!(status.success(), "bpftrace: {status}");
    let bpftrace = reader.join().unwrap_or_default();
    let out = stop(ours);
    // The same maps with the same contents (entries of equal value may come in either order).
    for map in [
        "@reads", "@bytes", "@avg", "@st", "@fds", "@sz", "@mn", "@mx", "@mnc",
    ] {
        assert_eq!(
            map_block(&out, map),
            map_block(&bpftrace, map),
            "{map}\nebpf-pack:\n{out}\nbpftrace:\n{bpftrace}"
        );
    }
    let opens = |text: &str| {
        let mut lines: Vec<String> = text
            .lines()
            .filter(|l| l.starts_with("@opens["))
            .map(str::to_owned)
            .collect();
        lines.sort();
        lines
    };
    assert_eq!(
        opens(&out),
        opens(&bpftrace),
        "ebpf-pack:\n{out}\nbpftrace:\n{bpftrace}"
    );
}

#[test]
fn bad_programs_are_located_errors_and_nothing_is_built() {
    let cases: &[(&str, &str, &str)] = &[
        // (program, the message, where the error points)
        (
            "tracepoint:syscalls:sys_enter_openat { @[comm] = count() ",
            "this block is never closed",
            "-e:1:38",
        ),
        (
            "tracepoint:syscalls:sys_enter_nosuch { @ = count(); }",
            "the target has no syscall matching `nosuch`",
            "-e:1:1",
        ),
        (
            "tracepoint:syscalls:sys_enter_openat { @[str(args.filenme)] = count(); }",
            "has no argument `filenme`",
            "-e:1:46",
        ),
        (
            "tracepoint:syscalls:sys_enter_openat { @[pidd] = count(); }",
            "unknown builtin `pidd`",
            "-e:1:42",
        ),
        (
            "tracepoint:syscalls:sys_enter_openat { @x = frob(1); }",
            "unknown function `frob()`",
            "-e:1:45",
        ),
        (
            "tracepoint:syscalls:sys_enter_openat { @x = count(); @x = sum(1); }",
            "@x is sum() here but count() before",
            "-e:1:59",
        ),
        (
            "tracepoint:syscalls:sys_enter_openat { @x[1] = count(); @x[1, 2] = count(); }",
            "@x has 2 key(s) here but 1",
            "-e:1:57",
        ),
        (
            "tracepoint:syscalls:sys_enter_openat { @x[1,2,3,4,5,6,7,8,9] = count(); }",
            "@x has 9 keys; at most 8",
            "-e:1:40",
        ),
        (
            "tracepoint:syscalls:sys_enter_openat { @x = sum(comm); }",
            "sum() needs a number here, not a string",
            "-e:1:49",
        ),
        (
            "tracepoint:syscalls:sys_enter_openat /comm == 1/ { @x = count(); }",
            "`==` between a string and a number",
            "-e:1:39",
        ),
        (
            "software:cpu-clock:1000 { @ = count(); }",
            "the `software` probe is outside the supported subset",
            "-e:1:1",
        ),
        (
            "kprobe:vfs_* { printf(\"%s\\n\", func); }",
            "`func` of a wildcard kprobe is supported as a map key only",
            "-e:1:31",
        ),
        (
            "profile:hz:99 { @[kstack] = count(); } profile:hz:99 { @[ustack] = count(); }",
            "key 1 of @ is a user stack here but a kernel stack before",
            "-e:1:58",
        ),
        (
            "tracepoint:sched:sched_switch { @[args->prev_cmm] = count(); }",
            "tracepoint:sched:sched_switch has no field `prev_cmm`",
            "-e:1:35",
        ),
        (
            "tracepoint:syscalls:sys_enter_read { @ = count(); } interval:s:1 { print(@x); }",
            "@x is never assigned",
            "-e:1:68",
        ),
        (
            "tracepoint:syscalls:sys_enter_read { @ = count(); } interval:ms:500 { exit(); }",
            "`interval:ms:500` is no interval this compiler supports",
            "-e:1:53",
        ),
        (
            "tracepoint:nosuch:ev* { @ = count(); }",
            "no known tracepoint matches `nosuch:ev*`",
            "-e:1:1",
        ),
        (
            "BEGIN { @ = count(); }",
            "BEGIN may only printf() here: it runs on the host",
            "-e:1:9",
        ),
        (
            "END { printf(\"x\"); }",
            "the program has no probe that runs on the board",
            "-e:1:1",
        ),
        (
            "tracepoint:syscalls:sys_enter_openat { printf(\"%d\\n\", comm); }",
            "`%d` wants a number, and this is a string",
            "-e:1:55",
        ),
        (
            "tracepoint:syscalls:sys_enter_openat { printf(\"%d %d\\n\", pid); }",
            "the format has 2 conversion(s) for 1 argument(s)",
            "-e:1:47",
        ),
        (
            "tracepoint:syscalls:sys_enter_openat { printf(\"%q\", pid); }",
            "printf() cannot print `%q`",
            "-e:1:48",
        ),
        (
            "BEGIN { printf(\"%d\", pid); } tracepoint:syscalls:sys_enter_openat { @ = count(); }",
            "BEGIN runs on the host: its printf() takes literals only",
            "-e:1:22",
        ),
        (
            "tracepoint:syscalls:sys_enter_openat { print(@x); }",
            "`print()` is outside the supported subset",
            "-e:1:40",
        ),
    ];
    let dir = tempdir();
    let mut wrong = Vec::new();
    for (program, message, place) in cases {
        let out = ebpf_pack()
            .arg("-C")
            .arg(repo())
            .args(["run", "--target", "x86_64", "--via", "local", "-e", program])
            .current_dir(dir.path())
            .output()
            .expect("run ebpf-pack");
        let (_, err) = text(&out);
        let ok = out.status.code() == Some(2)
            && err.contains(message)
            && err.contains(&format!("--> {place}\n"))
            && err.contains('^')
            && !err.contains("[x86_64]")
            && !err.contains("error: error:");
        if !ok {
            wrong.push(format!(
                "{program}: want exit 2, `{message}` at {place}, nothing built; got {:?}:\n{err}",
                out.status.code()
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The table of one-liners (`oneliner/tests/support/table.rs`) as probes of a project of its own
/// (`probes/*.bt`), compiled by ebpf-pack's own build for x86_64, arm64 (rpi4), 32-bit ARM
/// (beaglebone) and big-endian s390x, every object then verified against its board as any probe is
/// (`ebpf-pack tools`: machine, byte order, BTF, license, attach kinds, map types, no atomics where
/// the JIT lacks them, `.kconfig` values) and its hooks read from it.
#[test]
fn the_table_builds_and_verifies_for_every_kind_of_board() {
    let dir = tempdir();
    let project = dir.path().join("tbl");
    run_ok(
        ebpf_pack()
            .arg("init")
            .arg(&project)
            .args(["--name", "tbl", "--ci", "none"]),
    );
    let file = project.join("ebpf-pack.yaml");
    let yaml = std::fs::read_to_string(&file).expect("project file");
    std::fs::write(
        &file,
        yaml.replace(
            "  - probes/*.bpf.c\n",
            "  - probes/*.bpf.c\n  - probes/*.bt\n",
        ),
    )
    .expect("write project file");
    for (i, program) in table::ONE_LINERS.iter().enumerate() {
        std::fs::write(project.join(format!("probes/bt{i:02}.bt")), program).expect("write .bt");
    }
    for target in ["x86_64", "rpi4", "beaglebone", "s390x"] {
        let out = run_ok(
            ebpf_pack()
                .arg("-C")
                .arg(&project)
                .args(["tools", "--target", target, "--json"]),
        );
        let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect();
        // Each one-liner is a tool with its hooks, plus init's hello.
        assert_eq!(
            rows.len(),
            table::ONE_LINERS.len() + 1,
            "{target}: {rows:?}"
        );
        for (i, program) in table::ONE_LINERS.iter().enumerate() {
            let name = format!("bt{i:02}");
            let row = rows
                .iter()
                .find(|r| r["tool"] == name.as_str())
                .unwrap_or_else(|| panic!("{target}: {name} ({program}) in {rows:?}"));
            let hooks = row["hooks"].as_array().map_or(0, Vec::len);
            assert!(
                hooks > 0,
                "{target}: {name} ({program}) attaches nowhere: {row}"
            );
        }
    }
}
