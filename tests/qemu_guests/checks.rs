//! What a guest must show: the markers its workload printed, checked against the probes' events and
//! map dumps; and the failure report (console tail, commands to rerun).

use super::{ARM64, Case, Outcome, TcPath};

/// `key=value` of the first marker line `@@ebpf-pack: <what> ...` holding `key=`.
pub fn marker(output: &str, what: &str, key: &str) -> Option<String> {
    output
        .lines()
        .filter_map(|l| l.trim_end_matches('\r').split_once("@@ebpf-pack: "))
        .filter(|(_, rest)| rest.starts_with(what))
        .find_map(|(_, rest)| {
            rest.split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{key}=")).map(str::to_string))
        })
}

/// The `value=` of `key=K` in the map dump that follows `header`.
pub fn map_value(output: &str, header: &str, key: u32) -> Option<u64> {
    let mut lines = output.lines().map(|l| l.trim_end_matches('\r'));
    lines.find(|l| l.starts_with(header))?;
    lines.take_while(|l| l.starts_with("  ")).find_map(|l| {
        let mut words = l.split_whitespace();
        (words.next()? == format!("key={key}"))
            .then(|| {
                let v = words.next()?;
                // A plain counter prints `value=N`; syscount's struct value starts `count=N`.
                v.strip_prefix("value=")
                    .or_else(|| v.strip_prefix("count="))?
                    .parse()
                    .ok()
            })
            .flatten()
    })
}

/// The value of the entry whose key mentions `name` in the map dump under `header`.
fn named_value(output: &str, header: &str, name: &str) -> Option<u64> {
    let mut lines = output.lines().map(|l| l.trim_end_matches('\r'));
    lines.find(|l| l.starts_with(header))?;
    lines
        .take_while(|l| l.starts_with("  "))
        .filter(|l| l.contains(name))
        .find_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("value="))?
                .parse()
                .ok()
        })
}

/// `KERNEL_VERSION(a, b, c)` of a version `a.b.c...`, the patch level capped at 255.
fn version_code(version: &str) -> Option<u64> {
    let mut n = version
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u64>().ok());
    Some(n.next()?? << 16 | n.next()?? << 8 | n.next()??.min(255))
}

/// Every problem with one guest's results (empty: all good).
pub fn problems(case: &Case, out: &Outcome) -> Vec<String> {
    let o = &out.output;
    let mut bad = Vec::new();
    let mut check = |ok: bool, what: String| {
        if !ok {
            bad.push(what);
        }
    };
    check(out.ok, "ebpf-pack try failed".into());
    let g = case.guest;
    check(
        marker(o, "guest", "machine").as_deref() == Some(g.machine),
        format!("guest machine is not {}", g.machine),
    );
    check(
        marker(o, "guest", "btf").as_deref() == Some(case.btf),
        format!("guest kernel BTF is not {}", case.btf),
    );
    check(
        marker(o, "jit", "jit").as_deref() == Some(case.jit),
        format!("net.core.bpf_jit_enable is not {}", case.jit),
    );
    // opensnoop: the workload shell opened its uniquely named file `count` times itself (creating it,
    // then reading it); only it opens that path, so exactly that many events with its pid.
    let pid = marker(o, "workload open", "pid").unwrap_or_default();
    let path = marker(o, "workload open", "path").unwrap_or_default();
    let opens: usize = marker(o, "workload open", "count")
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let seen = o
        .lines()
        .filter(|l| {
            l.starts_with("opensnoop ")
                && l.contains(&format!(" pid={pid} "))
                && l.trim_end().ends_with(&format!(" path={path}"))
                && !l.contains(" fd=-")
        })
        .count();
    check(
        opens > 0 && seen == opens,
        format!(
            "opensnoop: {seen} successful opens of {path} by pid {pid}, the workload made {opens}"
        ),
    );
    // execsnoop: the child that printed its pid exec'd the unique program; its parent is the workload.
    let exec_pid = marker(o, "workload exec", "pid").unwrap_or_default();
    let filename = marker(o, "workload exec", "filename").unwrap_or_default();
    let execs = o
        .lines()
        .filter(|l| {
            l.starts_with("execsnoop ")
                && l.contains(&format!(" pid={exec_pid} ppid={pid} ret=0 "))
                && l.contains(" pcomm=true ")
                && l.trim_end().ends_with(&format!(" args={filename}"))
        })
        .count();
    check(
        !exec_pid.is_empty() && execs == 1,
        format!("execsnoop: {execs} execs of {filename} as pid {exec_pid} (parent {pid}), want 1"),
    );
    // syscount: nothing but the workload calls sync(2) in the guest (the init and the loader never do,
    // and kernel threads make no syscalls), and per-CPU slots need no sampling or atomics: the sum is
    // exact, so the tolerance is zero.
    let syncs: u64 = marker(o, "workload syscall", "count")
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let counted = map_value(o, "syscount map counts:", g.sync_nr);
    check(
        syncs > 0 && counted == Some(syncs),
        format!(
            "syscount: sync (nr {}) counted {counted:?}, the workload made {syncs}",
            g.sync_nr
        ),
    );
    // kprobe: every open above went through do_sys_openat2, so at least `opens` calls. And no more than
    // the open-family syscalls syscount saw: syscount is attached before kcount and its map is read
    // before kcount's, with nothing opening files in between but, at worst, a stray task of the idle
    // guest in the few milliseconds between the two reads: 2 calls of slack.
    let calls = map_value(o, "kcount map calls:", 0);
    let open_syscalls: u64 = g
        .open_nrs
        .iter()
        .filter_map(|nr| map_value(o, "syscount map counts:", *nr))
        .sum();
    check(
        calls.is_some_and(|c| c >= opens as u64 && c <= open_syscalls + 2),
        format!(
            "kprobe do_sys_openat2: {calls:?} calls, want between the workload's {opens} opens and the {open_syscalls} open-family syscalls (+2)"
        ),
    );
    // tc on lo: each echo request and each reply entered lo once as IPv4 ICMP (nothing else in the
    // guest sends ICMP over lo; the toolbox's TCP connection is counted in slot 0 only), so the count
    // is exact; the fallback notice appears exactly on kernels before
    // 6.6.
    if let Some(path) = case.tc {
        let count = |key| -> u64 {
            marker(o, "workload ping", key)
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        let (sent, received) = (count("sent"), count("received"));
        let ipv4 = map_value(o, "tcount map packets:", 1);
        check(
            sent > 0 && ipv4 == Some(sent + received),
            format!(
                "tc on lo: {ipv4:?} IPv4 ICMP packets counted, the workload's ping sent {sent} and received {received}"
            ),
        );
        let notice = o.contains("count_ingress: this kernel has no tcx links (before 6.6)");
        check(
            notice == (path == TcPath::Netlink),
            format!(
                "tc on lo: want a {} attach, the netlink fallback notice is {}",
                if path == TcPath::Netlink {
                    "netlink"
                } else {
                    "tcx"
                },
                if notice { "there" } else { "missing" }
            ),
        );
    }
    // fentry/fexit, same bounds: the fixture's map is read after kcount's, so up to 2 more calls of
    // slack; every open of the workload succeeded, so at least `opens` returns with a descriptor, and no
    // more returns than entries (+2: the two slots are read one after the other).
    if case.fentry {
        let entries = map_value(o, "fcount map calls:", 0);
        let returns = map_value(o, "fcount map calls:", 1);
        check(
            entries.is_some_and(|c| c >= opens as u64 && c <= open_syscalls + 4),
            format!(
                "fentry do_sys_openat2: {entries:?} calls, want between the workload's {opens} opens and the {open_syscalls} open-family syscalls (+4)"
            ),
        );
        check(
            returns.is_some_and(|r| r >= opens as u64 && entries.is_some_and(|c| r <= c + 2)),
            format!(
                "fexit do_sys_openat2: {returns:?} returns with a descriptor, want at least the workload's {opens} opens and at most the {entries:?} entries (+2)"
            ),
        );
    }
    // Alternatives: of acount's fentry/kprobe pair exactly one ran, the fentry where trampolines
    // exist (the 6.12 guest), else the kprobe, with the fentry's skip said.
    let (by_fentry, by_kprobe) = (
        map_value(o, "acount map calls:", 0),
        map_value(o, "acount map calls:", 1),
    );
    let (ran, idle) = if case.fentry {
        (by_fentry, by_kprobe)
    } else {
        (by_kprobe, by_fentry)
    };
    check(
        ran.is_some_and(|n| n >= opens as u64) && idle.is_none(),
        format!(
            "acount: fentry counted {by_fentry:?}, kprobe {by_kprobe:?}; want only the {} with at least the workload's {opens} opens",
            if case.fentry { "fentry" } else { "kprobe" }
        ),
    );
    check(
        case.fentry || o.contains("skipped: probe acount: program `enter_fentry`"),
        "acount: the skipped fentry is not said".into(),
    );
    // btopens, the one-liner: its kprobe counted every call of the workload's opens, its kretprobe
    // the ones that returned a descriptor (no more than the calls).
    let (bt_calls, bt_fds) = (
        map_value(o, "btopens map at_calls:", 0),
        map_value(o, "btopens map at_fds:", 0),
    );
    check(
        bt_fds.is_some_and(|f| f >= opens as u64 && bt_calls.is_some_and(|c| c >= f)),
        format!(
            "one-liner btopens: {bt_calls:?} calls and {bt_fds:?} descriptors, want at least the workload's {opens} opens, calls >= descriptors"
        ),
    );
    // Its wildcard kprobe: every call above under the function's own name.
    let by_name = named_value(o, "btopens map at_:", "do_sys_openat2");
    check(
        by_name.is_some_and(|n| n >= opens as u64),
        format!(
            "one-liner btopens: kprobe:do_sys_open* counted {by_name:?} under do_sys_openat2, want at least the workload's {opens} opens"
        ),
    );
    // acount's .kconfig externs: the guest kernel's own version (Debian's, which its release
    // hides), its syscall wrappers (none on 32-bit ARM), bpf_get_attach_cookie (every guest
    // kernel is 5.15+), 0 for the absent __weak one.
    let version = version_code(&case.kernel_version);
    // The dump leaves out array slots that hold 0.
    let kconfig: Vec<u64> = (0..4)
        .map(|k| map_value(o, "acount map kconfig:", k).unwrap_or(0))
        .collect();
    let wrapper = u64::from(g.machine != "armv7l");
    check(
        version.is_some_and(|v| kconfig == [v, wrapper, 1, 0]),
        format!(
            "acount kconfig: {kconfig:?}, want [{version:?} (the guest's kernel), {wrapper} (syscall wrappers), 1 (cookie), 0 (absent __weak)]"
        ),
    );
    // The toolbox: one event per tool for its part of the workload.
    bad.extend(super::toolbox::problems(o, g.machine != "s390x"));
    bad
}

pub fn report(case: &Case, out: &Outcome, bad: &[String]) -> String {
    let lines: Vec<&str> = out.output.lines().collect();
    let tail = lines[lines.len().saturating_sub(60)..].join("\n");
    let guest_cmd = out
        .output
        .lines()
        .find_map(|l| l.strip_prefix("ebpf-pack: guest command: "))
        .unwrap_or("(not booted)");
    format!(
        "guest {} failed after {:.1} s:\n  - {}\n--- console tail ---\n{tail}\n--- rerun ---\n  {}\n  guest only: {guest_cmd}\n",
        case.name,
        out.secs,
        bad.join("\n  - "),
        out.command
    )
}

/// The checks themselves, on a canned console: a good one passes, and a wrong count fails with a report
/// that holds the console tail and both rerun commands.
#[test]
fn guest_checks_catch_wrong_results_and_report_how_to_rerun() {
    let good = "\
ebpf-pack: guest command: timeout 300 qemu-system-aarch64 -M virt
@@ebpf-pack: guest machine=aarch64 kernel=6.1.0-56-arm64 btf=yes uptime=2.27
@@ebpf-pack: jit=1
opensnoop uid=0 pid=136 comm=workload fd=3 err=0 flags=577 path=/tmp/t-open
opensnoop uid=0 pid=136 comm=workload fd=3 err=0 flags=0 path=/tmp/t-open
@@ebpf-pack: workload open pid=136 path=/tmp/t-open count=2
@@ebpf-pack: workload exec pid=142 comm=true filename=/tmp/t.d/true
execsnoop uid=0 pcomm=true pid=142 ppid=136 ret=0 args=/tmp/t.d/true
@@ebpf-pack: workload syscall name=sync count=3
syscount map counts:
  key=56  count=9 total_ns=0
  key=81  count=3 total_ns=0
kcount map calls:
  key=0  value=7
fcount map calls:
  key=0  value=8
  key=1  value=8
acount map calls:
  key=0  value=8
btopens map at_calls:
  key=0  value=9
btopens map at_fds:
  key=0  value=8
btopens map at_:
  k0=do_sys_openat2  value=9
acount map kconfig:
  key=0  value=393630
  key=1  value=1
  key=2  value=1
@@ebpf-pack: workload ping sent=6 received=6
tcount map packets:
  key=0  value=12
  key=1  value=12
exitsnoop pcomm=sh pid=150 ppid=136 tid=150 age_ms=3 exit_code=7 sig=0
@@ebpf-pack: workload exit pid=150 code=7
killsnoop pid=136 comm=workload sig=10 tpid=151 result=0
exitsnoop pcomm=sleep pid=151 ppid=136 tid=151 age_ms=20 exit_code=0 sig=10
@@ebpf-pack: workload kill pid=136 target=151 sig=10
statsnoop pid=152 comm=stat ret=-1 err=2 path=/tmp/t-nostat
@@ebpf-pack: workload stat path=/tmp/t-nostat
capable uid=0 pid=153 comm=mount cap=21 name=CAP_SYS_ADMIN audit=1
mountsnoop comm=mount pid=153 tid=153 mnt_ns=4026531840 op=MOUNT flags=0 ret=0 source=t-src target=/tmp/t.mnt fstype=tmpfs data=\"size=1m\"
mountsnoop comm=umount pid=154 tid=154 mnt_ns=4026531840 op=UMOUNT flags=0 ret=0 source=\"\" target=/tmp/t.mnt fstype=\"\" data=\"\"
@@ebpf-pack: workload mount source=t-src target=/tmp/t.mnt
filelife pid=155 comm=rm age_ms=1 file=t-life
@@ebpf-pack: workload life file=t-life
bindsnoop pid=156 comm=nc ret=0 proto=TCP port=4711 addr=0.0.0.0
tcpconnect uid=0 pid=157 comm=nc ip=4 saddr=127.0.0.1 daddr=127.0.0.1 dport=4711
tcpaccept pid=156 comm=nc ip=4 raddr=127.0.0.1 rport=40000 laddr=127.0.0.1 lport=4711
tcplife pid=157 comm=nc laddr=127.0.0.1 lport=40000 raddr=127.0.0.1 rport=4711 tx_kb=0 rx_kb=0 ms=5
tcplife pid=156 comm=nc laddr=127.0.0.1 lport=4711 raddr=127.0.0.1 rport=40000 tx_kb=0 rx_kb=0 ms=5
@@ebpf-pack: workload tcp port=4711
@@ebpf-pack: workload sleeps pid=136 count=10
funccount map counts:
  func=vfs_read  value=64
  func=vfs_write  value=12
vfsstat map vfs:
  key=0  read=64 write=12 fsync=0 open=40 create=1
cpudist map hist_us:
  pid=0
     usecs               : count    distribution
     32768 -> 65535      : 10       |****************************************|
runqlat map hist_us:
  pid=0
     usecs               : count    distribution
        16 -> 31         : 12       |****************************************|
softirqs map softirqs:
  key=timer  total_ns=12000 count=9
biosnoop comm=dd pid=177 disk=7:0 t=RS sector=0 bytes=4096 lat_us=2185
biosnoop comm=dd pid=177 disk=7:0 t=RS sector=8 bytes=4096 lat_us=222
@@ebpf-pack: workload bio disk=7:0 count=2
oomkill tpid=183 tcomm=dd kpid=183 kcomm=dd pages=67624
@@ebpf-pack: workload oom pid=183 comm=dd status=137
tcpretrans pid=0 ip=4 laddr=127.0.0.1 lport=33450 raddr=127.0.0.1 rport=4712 state=SYN_SENT
@@ebpf-pack: workload retrans raddr=127.0.0.1 rport=4712
@@ebpf-pack: workload profile comm=dd
verdict: ready: this kernel can run bindsnoop, biolatency, biosnoop, capable, cpudist, execsnoop, exitsnoop, filelife, funccount, hardirqs, killsnoop, mountsnoop, oomkill, opensnoop, profile, runqlat, softirqs, statsnoop, syscount, tcpaccept, tcpconnect, tcplife, tcpretrans, vfsstat
hardirqs map hardirqs:
  name=arch_timer  total_ns=9000 count=30
profile map counts:
dd;[unknown];el0_svc_[k];ksys_read_[k];vfs_read_[k];read_iter_zero_[k] 12
sh;[unknown] 1
biolatency map hist_us:
  disk=7:0
     usecs               : count    distribution
        64 -> 127        : 1        |****************************************|
      1024 -> 2047       : 1        |****************************************|
@@ebpf-pack: ebpf-run exit=0 uptime=9.64
ebpf-pack: ebpf-run exited 0 in the guest (10.4 s boot to result)
";
    let case = Case {
        name: "canned",
        guest: &ARM64,
        args: vec!["--bundle".into(), "b.tar.gz".into()],
        jit: "1",
        btf: "yes",
        fentry: true,
        tc: Some(TcPath::Tcx),
        kernel_version: "6.1.158-1".into(),
    };
    let outcome = |output: &str| Outcome {
        ok: true,
        output: output.to_string(),
        command: "ebpf-pack try --bundle b.tar.gz".into(),
        secs: 1.0,
    };
    assert_eq!(problems(&case, &outcome(good)), Vec::<String>::new());
    // Each tool's event missing is named.
    for (drop, named) in [
        ("exit_code=7", "exitsnoop: no exit of pid 150 with code 7"),
        (
            "k0=do_sys_openat2",
            "one-liner btopens: kprobe:do_sys_open* counted None under do_sys_openat2, want at least the workload's 2 opens",
        ),
        ("tpid=151", "killsnoop: no SIGUSR1 from 136 to 151"),
        (
            "name=CAP_SYS_ADMIN",
            "capable: no CAP_SYS_ADMIN check by mount",
        ),
        ("lport=4711\n", "tcpaccept: no accept on port 4711"),
        ("  key=timer", "softirqs: no timer softirq"),
        ("tcomm=dd", "oomkill: no OOM kill of dd 183"),
        (
            "state=SYN_SENT",
            "tcpretrans: no retransmitted SYN to 127.0.0.1:4712",
        ),
        (
            "vfs_read_[k]",
            "profile: no stack of dd through vfs_read_[k] or vfs_write_[k] among 2 stacks",
        ),
        (
            "sector=8 bytes=4096",
            "biosnoop: 1 reads of 4096 bytes by dd on 7:0, the workload made 2",
        ),
        (
            "1024 -> 2047       : 1 ",
            "biolatency -D: 1 requests of disk 7:0, the workload made 2",
        ),
        (
            "oomkill, opensnoop",
            "ebpf-run --check: not ready for [\"opensnoop\", \"oomkill\"] (verdict: \"bindsnoop, biolatency, biosnoop, capable, cpudist, execsnoop, exitsnoop, filelife, funccount, hardirqs, killsnoop, mountsnoop, x=y, profile, runqlat, softirqs, statsnoop, syscount, tcpaccept, tcpconnect, tcplife, tcpretrans, vfsstat\")",
        ),
    ] {
        let bad = problems(&case, &outcome(&good.replacen(drop, "x=y", 1)));
        assert!(bad.iter().any(|b| b == named), "{drop}: {bad:?}");
    }
    let wrong = good.replace("key=81  count=3", "key=81  count=4");
    let bad = problems(&case, &outcome(&wrong));
    assert_eq!(bad.len(), 1, "{bad:?}");
    assert!(
        bad[0].starts_with("syscount: sync (nr 81) counted Some(4)"),
        "{bad:?}"
    );
    let report = report(&case, &outcome(&wrong), &bad);
    // The console's last 60 lines, up to the guest's last one.
    let tail = report
        .split("--- console tail ---\n")
        .nth(1)
        .and_then(|t| t.split("\n--- rerun ---").next())
        .expect("a console tail");
    assert_eq!(tail.lines().count(), 60, "{report}");
    assert!(
        tail.ends_with("ebpf-pack: ebpf-run exited 0 in the guest (10.4 s boot to result)"),
        "{report}"
    );
    assert!(
        report.contains("  ebpf-pack try --bundle b.tar.gz\n"),
        "{report}"
    );
    assert!(
        report.contains("guest only: timeout 300 qemu-system-aarch64 -M virt"),
        "{report}"
    );
    let no_kprobe = good.replace("  key=0  value=7", "  key=0  value=12");
    assert!(problems(&case, &outcome(&no_kprobe))[0].starts_with("kprobe do_sys_openat2"));
    let no_fexit = good.replace("  key=1  value=8", "  key=1  value=1");
    assert!(problems(&case, &outcome(&no_fexit))[0].starts_with("fexit do_sys_openat2"));
    let both = good.replace(
        "acount map calls:\n  key=0  value=8\n",
        "acount map calls:\n  key=0  value=8\n  key=1  value=8\n",
    );
    assert!(
        problems(&case, &outcome(&both))[0]
            .starts_with("acount: fentry counted Some(8), kprobe Some(8)")
    );
    let old_kernel = good.replace("  key=0  value=393630", "  key=0  value=331520");
    assert!(
        problems(&case, &outcome(&old_kernel))[0]
            .starts_with("acount kconfig: [331520, 1, 1, 0], want [Some(393630)")
    );
    let no_oneliner = good.replace(
        "btopens map at_fds:\n  key=0  value=8",
        "btopens map at_fds:\n  key=0  value=1",
    );
    assert!(
        problems(&case, &outcome(&no_oneliner))[0]
            .starts_with("one-liner btopens: Some(9) calls and Some(1)")
    );
    let lost_ping = good.replace("  key=1  value=12", "  key=1  value=11");
    assert!(problems(&case, &outcome(&lost_ping))[0].starts_with("tc on lo: Some(11)"));
    let netlink = good.replace(
        "@@ebpf-pack: jit=1\n",
        "@@ebpf-pack: jit=1\nebpf-run: tcount: count_ingress: this kernel has no tcx links (before 6.6): attached as a netlink filter on the clsact qdisc of lo\n",
    );
    assert!(problems(&case, &outcome(&netlink))[0].contains("want a tcx attach"));
}
