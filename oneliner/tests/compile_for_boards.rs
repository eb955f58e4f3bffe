//! Every one-liner of the table compiles, through the BPF C the compiler writes, with clang-19 for
//! the four kinds of board (x86_64, arm64, 32-bit arm, big-endian s390x) against the probe header
//! and each arch's vmlinux.h, the way ebpf-pack's compile step builds probes.

use std::path::{Path, PathBuf};
use std::process::Command;

use ebpf_pack_oneliner::{Target, compile, parse};

/// The one-liners: bpftrace's classics and more, within the supported subset.
pub const ONE_LINERS: &[&str] = &[
    "tracepoint:raw_syscalls:sys_enter { @[comm] = count(); }",
    "tracepoint:syscalls:sys_enter_openat { @[comm, str(args.filename)] = count(); }",
    "tracepoint:syscalls:sys_exit_read /args->ret > 0/ { @bytes[comm] = sum(args->ret); }",
    "tracepoint:syscalls:sys_exit_read { @sizes = hist(args.ret); }",
    "tracepoint:syscalls:sys_exit_read { @l[pid] = lhist(args.ret, 0, 4096, 512); }",
    "tracepoint:syscalls:sys_enter_read { @avg[tid] = avg(args.count); }",
    "tracepoint:syscalls:sys_exit_read { @lo[comm] = min(args.ret); @hi[comm] = max(args.ret); }",
    "tracepoint:syscalls:sys_enter_open* { @[probe] = count(); }",
    "tracepoint:syscalls:sys_enter_read { @start[tid] = nsecs; } \
     tracepoint:syscalls:sys_exit_read /@start[tid]/ { @ns[comm] = hist(nsecs - @start[tid]); delete(@start[tid]); }",
    "tracepoint:syscalls:sys_enter_openat /comm == \"cat\"/ { $f = str(args.filename); @files[$f] = count(); }",
    "tracepoint:syscalls:sys_enter_kill { if (args.sig == 9) { @kills[comm] = count(); } else { @other = count(); } }",
    "tracepoint:syscalls:sys_enter_getpid { unroll (3) { @n++; } @x = pid > 1 ? 1 : 2; }",
    "kprobe:vfs_read { @reads[comm] = count(); }",
    "kretprobe:vfs_read /retval >= 0/ { @ret = hist(retval); }",
    "kprobe:do_sys_openat2 { @[str(arg1)] = count(); }",
    "uprobe:/bin/bash:readline { @[uid] = count(); }",
    "BEGIN { printf(\"Tracing... Hit Ctrl-C to end.\\n\"); } \
     tracepoint:syscalls:sys_enter_openat { printf(\"%-6d %-16s %s\\n\", pid, comm, str(args.filename)); } \
     END { printf(\"bye\\n\"); }",
    "kretprobe:vfs_read { printf(\"%s read %d bytes\\n\", comm, retval); }",
    "tracepoint:sched:sched_switch { @[args->prev_comm] = count(); @prio = lhist(args->next_prio, 0, 140, 10); }",
    "tracepoint:sched:sched_process_exec { printf(\"%d %s\\n\", args.pid, args.filename); }",
    "tracepoint:block:block_rq_issue { @bytes[args->rwbs] = hist(args->bytes); }",
    "tracepoint:sched:sched_wakeup* { @[probe] = count(); }",
];

/// What a board's syscall table offers (the compile test needs these few).
fn target() -> Target {
    Target {
        syscalls: [
            "openat",
            "open",
            "read",
            "kill",
            "getpid",
            "open_by_handle_at",
            "open_tree",
        ]
        .map(String::from)
        .to_vec(),
    }
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn clang() -> Option<&'static str> {
    ["clang-19", "clang"]
        .into_iter()
        .find(|c| Command::new(c).arg("--version").output().is_ok())
}

#[test]
fn the_table_compiles_for_every_kind_of_board() {
    let Some(clang) = clang() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "clang is required under CI"
        );
        eprintln!("SKIPPED the_table_compiles_for_every_kind_of_board: no clang");
        return;
    };
    let dir = std::env::temp_dir().join(format!("oneliner-compile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let mut failures = Vec::new();
    for (i, src) in ONE_LINERS.iter().enumerate() {
        let program = parse(src).unwrap_or_else(|d| panic!("{}", d.render("-e", src)));
        let compiled =
            compile(&program, &target()).unwrap_or_else(|d| panic!("{}", d.render("-e", src)));
        let c = dir.join(format!("bt{i}.bpf.c"));
        std::fs::write(&c, &compiled.c).expect("write C");
        for (arch, bpf, define) in [
            ("x86_64", "bpfel", "x86"),
            ("arm64", "bpfel", "arm64"),
            ("arm", "bpfel", "arm"),
            ("s390x", "bpfeb", "s390"),
        ] {
            let out = Command::new(clang)
                // The flags of ebpf-pack's compile step that decide what compiles.
                .args(["-g", "-O2", "-Wall", "-Werror", "-mcpu=v3", "-target", bpf])
                .arg(format!("-D__TARGET_ARCH_{define}"))
                .arg("-I")
                .arg(repo().join(format!("probes/include/{arch}")))
                .arg("-I")
                .arg(repo().join("probes/include"))
                .arg("-c")
                .arg(&c)
                .arg("-o")
                .arg(dir.join(format!("bt{i}-{arch}.bpf.o")))
                .output()
                .expect("clang runs");
            if !out.status.success() {
                failures.push(format!(
                    "{src}\n  for {arch}: {}\n--- C ---\n{}",
                    String::from_utf8_lossy(&out.stderr),
                    compiled.c
                ));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
