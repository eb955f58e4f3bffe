//! What the toolbox must show in a guest: each tool's event for its part of the workload
//! (tests/fixtures/guest-workload.sh, after the `toolbox` comment), found by the marker it printed.

use super::checks::marker;

/// The tools the guests run besides opensnoop, execsnoop and syscount, with their arguments.
pub const TOOLS: &[&str] = &[
    "funccount",
    "vfs_*",
    "exitsnoop",
    "killsnoop",
    "statsnoop",
    "mountsnoop",
    "capable",
    "filelife",
    "vfsstat",
    "bindsnoop",
    "tcpaccept",
    "tcpconnect",
    "tcplife",
    "cpudist",
    "runqlat",
    "softirqs",
    "hardirqs",
    "profile",
    "biolatency",
    "-D",
    "biosnoop",
    "oomkill",
    "tcpretrans",
];

/// The value of `name=` in an ebpf-run text line (quoted values unquoted, without escapes).
pub fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let at = line.find(&format!(" {name}="))? + name.len() + 2;
    let rest = &line[at..];
    if let Some(quoted) = rest.strip_prefix('"') {
        return quoted.split('"').next();
    }
    rest.split_whitespace().next()
}

/// The event lines of `tool` (its text rows, `tool field=value ...`).
fn events<'a>(o: &'a str, tool: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    o.lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(move |l| l.starts_with(&format!("{tool} ")) && l.contains('='))
}

/// Whether some event of `tool` has every `(field, value)` of `want`.
fn seen(o: &str, tool: &str, want: &[(&str, &str)]) -> bool {
    events(o, tool).any(|l| want.iter().all(|(f, v)| field(l, f) == Some(*v)))
}

/// The lines of `tool`'s dump of `map` (after `tool map MAP:`, the indented ones).
fn dump<'a>(o: &'a str, tool: &str, map: &str) -> Vec<&'a str> {
    let title = format!("{tool} map {map}:");
    let mut lines = o.lines().map(|l| l.trim_end_matches('\r'));
    if lines.by_ref().find(|l| *l == title).is_none() {
        return Vec::new();
    }
    lines.take_while(|l| l.starts_with("  ")).collect()
}

/// The folded stacks of `tool`'s dump of `map` (the `STACK COUNT` lines after `tool map MAP:`).
fn folded<'a>(o: &'a str, tool: &str, map: &str) -> Vec<&'a str> {
    let title = format!("{tool} map {map}:");
    let mut lines = o.lines().map(|l| l.trim_end_matches('\r'));
    if lines.by_ref().find(|l| *l == title).is_none() {
        return Vec::new();
    }
    lines
        .take_while(|l| {
            l.rsplit_once(' ')
                .is_some_and(|(s, n)| !s.is_empty() && n.parse::<u64>().is_ok())
        })
        .collect()
}

/// The sum of every histogram row's count in `lines` (`low -> high : count |***|`).
fn hist_total(lines: &[&str]) -> u64 {
    lines
        .iter()
        .filter(|l| l.contains(" -> "))
        .filter_map(|l| {
            l.split(':')
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

/// Every problem of the toolbox's part of one guest's output. `hardirqs` is checked where the guest
/// has interrupt handlers that trace (not on s390x, whose interrupts are not irq handlers).
pub fn problems(o: &str, with_hardirqs: bool) -> Vec<String> {
    let mut bad = Vec::new();
    let mut check = |ok: bool, what: String| {
        if !ok {
            bad.push(what);
        }
    };
    let m = |what: &str, key: &str| marker(o, what, key).unwrap_or_default();

    let (pid, code) = (m("workload exit", "pid"), m("workload exit", "code"));
    check(
        seen(
            o,
            "exitsnoop",
            &[("pid", &pid), ("exit_code", &code), ("sig", "0")],
        ),
        format!("exitsnoop: no exit of pid {pid} with code {code}"),
    );
    let (sender, target) = (m("workload kill", "pid"), m("workload kill", "target"));
    check(
        seen(
            o,
            "killsnoop",
            &[
                ("pid", &sender),
                ("sig", "10"),
                ("tpid", &target),
                ("result", "0"),
            ],
        ),
        format!("killsnoop: no SIGUSR1 from {sender} to {target}"),
    );
    check(
        seen(o, "exitsnoop", &[("pid", &target), ("sig", "10")]),
        format!("exitsnoop: the sleep {target} did not end by signal 10"),
    );
    let path = m("workload stat", "path");
    check(
        seen(
            o,
            "statsnoop",
            &[("path", &path), ("ret", "-1"), ("err", "2")],
        ),
        format!("statsnoop: no failed stat of {path}"),
    );
    let (source, target) = (m("workload mount", "source"), m("workload mount", "target"));
    check(
        seen(
            o,
            "mountsnoop",
            &[
                ("op", "MOUNT"),
                ("source", &source),
                ("target", &target),
                ("fstype", "tmpfs"),
                ("data", "size=1m"),
                ("ret", "0"),
            ],
        ),
        format!("mountsnoop: no mount of {source} on {target}"),
    );
    check(
        seen(
            o,
            "mountsnoop",
            &[("op", "UMOUNT"), ("target", &target), ("ret", "0")],
        ),
        format!("mountsnoop: no umount of {target}"),
    );
    check(
        seen(
            o,
            "capable",
            &[("comm", "mount"), ("name", "CAP_SYS_ADMIN"), ("cap", "21")],
        ),
        "capable: no CAP_SYS_ADMIN check by mount".into(),
    );
    let file = m("workload life", "file");
    check(
        seen(o, "filelife", &[("file", &file), ("comm", "rm")]),
        format!("filelife: no life of {file} ended by rm"),
    );
    let port = m("workload tcp", "port");
    check(
        seen(
            o,
            "bindsnoop",
            &[("port", &port), ("proto", "TCP"), ("ret", "0")],
        ),
        format!("bindsnoop: no bind of TCP port {port}"),
    );
    check(
        seen(
            o,
            "tcpaccept",
            &[
                ("lport", &port),
                ("laddr", "127.0.0.1"),
                ("raddr", "127.0.0.1"),
            ],
        ),
        format!("tcpaccept: no accept on port {port}"),
    );
    check(
        seen(
            o,
            "tcpconnect",
            &[("dport", &port), ("daddr", "127.0.0.1"), ("ip", "4")],
        ),
        format!("tcpconnect: no connect to port {port}"),
    );
    check(
        seen(o, "tcplife", &[("rport", &port), ("raddr", "127.0.0.1")])
            && seen(o, "tcplife", &[("lport", &port), ("laddr", "127.0.0.1")]),
        format!("tcplife: not both ends of the connection to port {port}"),
    );
    let calls = dump(o, "funccount", "counts")
        .iter()
        .find(|l| field(&format!(" {}", l.trim()), "func") == Some("vfs_read"))
        .and_then(|l| field(l, "value").and_then(|v| v.parse::<u64>().ok()))
        .unwrap_or(0);
    check(
        calls >= 30,
        format!(
            "funccount 'vfs_*': vfs_read called {calls} times, the workload read its file 30 times"
        ),
    );
    let vfs = dump(o, "vfsstat", "vfs");
    let count = |name: &str| {
        vfs.iter()
            .find_map(|l| field(l, name)?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    check(
        count("read") >= 30 && count("open") >= 30,
        format!(
            "vfsstat: read {} and open {} calls, the workload made 30 reads of one file",
            count("read"),
            count("open")
        ),
    );
    let sleeps: u64 = m("workload sleeps", "count").parse().unwrap_or(0);
    for tool in ["cpudist", "runqlat"] {
        let total = hist_total(&dump(o, tool, "hist_us"));
        check(
            sleeps > 0 && total >= sleeps,
            format!("{tool}: {total} in its histogram, the workload slept {sleeps} times"),
        );
    }
    check(
        dump(o, "softirqs", "softirqs")
            .iter()
            .any(|l| l.trim_start().starts_with("key=timer ")),
        "softirqs: no timer softirq".into(),
    );
    // profile: dd's reads and writes sampled with their kernel stacks, named from the guest's
    // /proc/kallsyms (vfs_read/vfs_write are on every arch's path, never inlined).
    let comm = m("workload profile", "comm");
    let stacks = folded(o, "profile", "counts");
    check(
        stacks.iter().any(|l| {
            l.starts_with(&format!("{comm};"))
                && (l.contains(";vfs_read_[k]") || l.contains(";vfs_write_[k]"))
        }),
        format!(
            "profile: no stack of {comm} through vfs_read_[k] or vfs_write_[k] among {} stacks",
            stacks.len()
        ),
    );
    // biolatency -D and biosnoop: the 16 direct reads of the loop device, each one request.
    let (disk, reads) = (m("workload bio", "disk"), m("workload bio", "count"));
    let lines = dump(o, "biolatency", "hist_us");
    let at = lines
        .iter()
        .position(|l| field(&format!(" {}", l.trim()), "disk") == Some(&disk));
    let total = at.map_or(0, |i| {
        let rest: Vec<&str> = lines[i + 1..]
            .iter()
            .take_while(|l| !l.trim_start().starts_with("disk="))
            .copied()
            .collect();
        hist_total(&rest)
    });
    check(
        total.to_string() == reads,
        format!("biolatency -D: {total} requests of disk {disk}, the workload made {reads}"),
    );
    let snooped = events(o, "biosnoop")
        .filter(|l| field(l, "disk") == Some(&disk) && field(l, "comm") == Some("dd"))
        .filter(|l| field(l, "bytes") == Some("4096"))
        .count();
    check(
        snooped.to_string() == reads,
        format!(
            "biosnoop: {snooped} reads of 4096 bytes by dd on {disk}, the workload made {reads}"
        ),
    );
    // oomkill: the OOM killer chose dd in its 16 MiB cgroup.
    let (victim, comm) = (m("workload oom", "pid"), m("workload oom", "comm"));
    check(
        seen(o, "oomkill", &[("tpid", &victim), ("tcomm", &comm)]),
        format!("oomkill: no OOM kill of {comm} {victim}"),
    );
    // tcpretrans: the SYN the kernel sent again.
    let (raddr, rport) = (
        m("workload retrans", "raddr"),
        m("workload retrans", "rport"),
    );
    check(
        seen(
            o,
            "tcpretrans",
            &[("raddr", &raddr), ("rport", &rport), ("state", "SYN_SENT")],
        ),
        format!("tcpretrans: no retransmitted SYN to {raddr}:{rport}"),
    );
    // --check agrees: every tool of the bundle can run on this kernel.
    let verdict = o
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .find_map(|l| l.strip_prefix("verdict: ready: this kernel can run "))
        .unwrap_or_default();
    let ready: Vec<&str> = verdict.split(", ").collect();
    let missing: Vec<&str> = ["opensnoop", "execsnoop", "syscount"]
        .into_iter()
        .chain(
            TOOLS
                .iter()
                .copied()
                .filter(|t| t.chars().all(|c| c.is_ascii_lowercase())),
        )
        .filter(|t| !ready.contains(t))
        .collect();
    check(
        missing.is_empty(),
        format!("ebpf-run --check: not ready for {missing:?} (verdict: {verdict:?})"),
    );
    if with_hardirqs {
        check(
            dump(o, "hardirqs", "hardirqs")
                .iter()
                .any(|l| field(l, "count").is_some_and(|c| c != "0")),
            "hardirqs: no interrupt handler ran".into(),
        );
    }
    bad
}

#[test]
fn fields_are_read_from_text_lines() {
    let l = r#"execsnoop uid=0 pcomm=true pid=142 ppid=136 ret=0 args="/tmp/t.d/true a b""#;
    assert_eq!(field(l, "pid"), Some("142"));
    assert_eq!(field(l, "ppid"), Some("136"));
    assert_eq!(field(l, "args"), Some("/tmp/t.d/true a b"));
    assert_eq!(field(l, "nope"), None);
    let o = "x\ncpudist map hist_us:\n  pid=0\n     usecs : count distribution\n        0 -> 1          : 2        |**|\n    16384 -> 32767      : 9        |****|\nnext\n";
    assert_eq!(hist_total(&dump(o, "cpudist", "hist_us")), 11);
    let o =
        "profile map counts:\ndd;[unknown];vfs_read_[k];read_zero_[k] 12\nsh;x 1\nprofile: done\n";
    assert_eq!(
        folded(o, "profile", "counts"),
        ["dd;[unknown];vfs_read_[k];read_zero_[k] 12", "sh;x 1"]
    );
}
