//! The table of one-liners every board compiles (`compile_for_boards.rs`, with clang alone) and
//! every kind of board verifies (the CLI's `tests/oneliners.rs`, through ebpf-pack's own build).

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
    "profile:hz:99 { @[kstack] = count(); }",
    "profile:hz:49 /pid > 0/ { @[ustack(5), comm] = count(); @cpu[cpu] = count(); }",
    "kprobe:vfs_read { @[kstack(4)] = count(); }",
    "kprobe:vfs_* { @[func] = count(); }",
    "kretprobe:vfs_read* /retval > 0/ { @[probe] = sum(retval); }",
    "tracepoint:syscalls:sys_enter_openat { @[ustack, kstack] = count(); }",
    "tracepoint:timer:hrtimer_start { @[ksym(args->function)] = count(); }",
    "tracepoint:syscalls:sys_enter_openat { @[curtask->real_parent->tgid, comm] = count(); }",
    "kprobe:vfs_open { @[str(((struct path *)arg0)->dentry->d_name.name)] = count(); }",
    "tracepoint:sched:sched_switch /curtask->mm == 0/ { @kthreads = count(); }",
    "tracepoint:syscalls:sys_enter_openat { printf(\"%s opened first\\n\", comm); exit(); }",
];
