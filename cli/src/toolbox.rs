//! The toolbox: the ready tools ebpf-pack carries (BCC's tools of the same names, as CO-RE probes),
//! their named sets (`@net`, `@disk`, ...), and what a tool needs of a board's kernel, read from its
//! compiled object: hooks, the lowest kernel its hooks, maps and helpers allow, the kernel options
//! behind them, BTF. [`verdict`] says whether a target can run it and why not. Pure: bytes, sources and
//! targets in; facts out.

use ebpf_pack_manifest::AttachKind;
use ebpf_pack_object::map_types;
use ebpf_pack_object::options::{ToolOption, tool_options};
use ebpf_pack_object::probe::ProbeObject;

use crate::arch::{Arch, KernelVersion};
use crate::target::{BtfSource, Target};

/// The named sets of tools, `@NAME` in a `probes:` or `tools:` list: what a person debugging one
/// part of a board reaches for. `@all` is every tool.
pub const TOOL_SETS: &[(&str, &[&str])] = &[
    (
        "process",
        &["execsnoop", "exitsnoop", "killsnoop", "oomkill", "capable"],
    ),
    (
        "files",
        &[
            "opensnoop",
            "statsnoop",
            "filelife",
            "vfsstat",
            "mountsnoop",
        ],
    ),
    ("disk", &["biolatency", "biosnoop"]),
    (
        "sched",
        &["runqlat", "cpudist", "softirqs", "hardirqs", "profile"],
    ),
    (
        "net",
        &[
            "tcpconnect",
            "tcpaccept",
            "tcplife",
            "tcpretrans",
            "bindsnoop",
        ],
    ),
    ("syscalls", &["syscount"]),
];

/// The tools of set `name` (without its `@`), among `available` for `all`; `None` for an unknown set.
pub fn tool_set<'a>(name: &str, available: &'a [String]) -> Option<Vec<&'a str>> {
    if name == "all" {
        return Some(available.iter().map(String::as_str).collect());
    }
    let (_, members) = TOOL_SETS.iter().find(|(n, _)| *n == name)?;
    Some(
        available
            .iter()
            .map(String::as_str)
            .filter(|t| members.contains(t))
            .collect(),
    )
}

/// The names of every set, `@`-prefixed, for help texts.
pub fn set_names() -> Vec<String> {
    std::iter::once("@all".to_string())
        .chain(TOOL_SETS.iter().map(|(n, _)| format!("@{n}")))
        .collect()
}

/// The one-line summary of a tool from its source's header comment: the text after `NAME — ` up to
/// the first `:`, `.` or `,` outside parentheses, on as many comment lines as it takes.
pub fn summary(source: &str, name: &str) -> Option<String> {
    let start = source.find(&format!("{name} — "))? + name.len() + " — ".len();
    let mut text = String::new();
    let mut depth = 0i32;
    'lines: for line in source[start..].lines() {
        let line = line.trim().trim_start_matches('*').trim();
        if line.is_empty() || line.starts_with('/') {
            break;
        }
        if !text.is_empty() {
            text.push(' ');
        }
        for c in line.chars() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                ':' | '.' | ',' if depth <= 0 => break 'lines,
                _ => {}
            }
            text.push(c);
        }
    }
    Some(text.trim().to_string()).filter(|t| !t.is_empty())
}

/// What one tool needs of a board, from its object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolNeeds {
    /// Tool (probe) name.
    pub name: String,
    /// Each attach kind with its attach points, in program order.
    pub hooks: Vec<(AttachKind, Vec<String>)>,
    /// The lowest kernel every hook, map and helper exists in, and what sets it.
    pub min_kernel: (KernelVersion, String),
    /// Kernel options it needs (`KPROBES`, `FTRACE_SYSCALLS`, ...), without `CONFIG_`.
    pub configs: Vec<&'static str>,
    /// Whether it needs the kernel's type information (CO-RE relocations).
    pub core: bool,
    /// Whether it attaches through BPF trampolines (fentry/fexit/tp_btf).
    pub trampolines: bool,
    /// Its options in the BCC spelling.
    pub options: Vec<ToolOption>,
}

/// Helpers by id (`enum bpf_func_id`) with the kernel that added them, for the ones the tools use
/// beyond the 4.x basics. A ring buffer helper counts only when the ring buffer has no perf fallback.
const HELPERS: &[(i32, u16, u16, &str)] = &[
    (27, 4, 6, "bpf_get_stackid"),
    (35, 4, 8, "bpf_get_current_task"),
    (67, 4, 18, "bpf_get_stack"),
    (112, 5, 5, "bpf_probe_read_user"),
    (113, 5, 5, "bpf_probe_read_kernel"),
    (114, 5, 5, "bpf_probe_read_user_str"),
    (115, 5, 5, "bpf_probe_read_kernel_str"),
    (173, 5, 15, "bpf_get_func_ip"),
    (174, 5, 15, "bpf_get_attach_cookie"),
    (181, 5, 17, "bpf_loop"),
];

/// Ring buffer helpers (bpf_ringbuf_output .. bpf_ringbuf_query): 5.8.
const RINGBUF_HELPERS: std::ops::RangeInclusive<i32> = 130..=134;

/// Tracepoint categories whose events need a kernel option beyond tracepoints themselves.
fn tracepoint_config(point: &str) -> Option<&'static str> {
    let category = point.split('/').next()?;
    match category {
        "syscalls" | "raw_syscalls" => Some("FTRACE_SYSCALLS"),
        "block" => Some("BLOCK"),
        _ => None,
    }
}

/// Tracepoints younger than BPF's tracepoint support (4.7): the kernel that added them.
fn tracepoint_since(point: &str) -> Option<(u16, u16)> {
    Some(match point {
        "sock/inet_sock_set_state" => (4, 16),
        "tcp/tcp_retransmit_skb" => (4, 15),
        _ => return None,
    })
}

/// Reads what the object `data` of tool `name` needs.
pub fn needs(name: &str, data: &[u8]) -> Result<ToolNeeds, String> {
    let obj = ProbeObject::parse(
        name.to_string(),
        format!("{name}.bpf.o").into(),
        data.to_vec(),
    )?;
    let mut min = (KernelVersion::new(4, 1), "BPF tracing".to_string());
    let mut raise = |v: KernelVersion, why: String| {
        if v > min.0 {
            min = (v, why);
        }
    };
    let mut hooks: Vec<(AttachKind, Vec<String>)> = Vec::new();
    let mut configs: Vec<&'static str> = Vec::new();
    let mut add_config = |c: &'static str| {
        if !configs.contains(&c) {
            configs.push(c);
        }
    };
    let mut trampolines = false;
    // `kprobe/{NAME}` with `uprobe/{NAME}` (funccount): the loader keeps one of them, as the setting
    // says; what the tool needs is what its kernel patterns need, user patterns need uprobes instead.
    let kernel_template = |name: &str| {
        obj.programs.iter().any(|q| {
            matches!(&q.attach, Some((AttachKind::Kprobe | AttachKind::Kretprobe, Some(pt))) if pt == name)
        })
    };
    for p in &obj.programs {
        let Some((kind, point)) = &p.attach else {
            continue;
        };
        if let (AttachKind::Uprobe | AttachKind::Uretprobe, Some(pt)) = (kind, point)
            && pt.starts_with('{')
            && kernel_template(pt)
        {
            continue;
        }
        let point = match kind {
            // The rate (`perf_event/{sample_freq}`: a setting) is not where it attaches.
            AttachKind::PerfEvent => "cpu-clock".to_owned(),
            _ => point.clone().unwrap_or_default(),
        };
        match kind {
            AttachKind::Tracepoint => {
                raise(KernelVersion::new(4, 7), "tracepoint programs".into());
                if let Some((a, b)) = tracepoint_since(&point) {
                    raise(KernelVersion::new(a, b), format!("tracepoint {point}"));
                }
                if let Some(c) = tracepoint_config(&point) {
                    add_config(c);
                }
            }
            AttachKind::RawTracepoint => raise(KernelVersion::new(4, 17), "raw tracepoints".into()),
            AttachKind::Kprobe | AttachKind::Kretprobe => {
                add_config("KPROBES");
                add_config("KPROBE_EVENTS");
            }
            AttachKind::Uprobe | AttachKind::Uretprobe => {
                add_config("UPROBES");
                add_config("UPROBE_EVENTS");
            }
            AttachKind::PerfEvent => {
                raise(KernelVersion::new(4, 9), "perf_event programs".into());
                add_config("PERF_EVENTS");
            }
            AttachKind::Fentry | AttachKind::Fexit | AttachKind::TpBtf => trampolines = true,
            _ => {}
        }
        match hooks.iter_mut().find(|(k, _)| k == kind) {
            Some((_, points)) if !point.is_empty() && !points.contains(&point) => {
                points.push(point)
            }
            Some(_) => {}
            None => hooks.push((
                *kind,
                if point.is_empty() {
                    vec![]
                } else {
                    vec![point]
                },
            )),
        }
    }
    let btf = obj.btf.as_ref();
    let mut all_rings_fall_back = true;
    for m in &obj.maps {
        let Some(t) = m.map_type else { continue };
        let fallback =
            t == map_types::RINGBUF && btf.is_some_and(|b| b.perf_fallback(&m.name).is_some());
        if t == map_types::RINGBUF && !fallback {
            all_rings_fall_back = false;
        }
        if let Some((a, b)) = map_types::since(t).filter(|_| !fallback) {
            raise(
                KernelVersion::new(a, b),
                format!("map {} ({})", m.name, map_types::name(t)),
            );
        }
    }
    for id in helper_calls(data, btf.is_some_and(|b| b.is_big_endian())) {
        if RINGBUF_HELPERS.contains(&id) && !all_rings_fall_back {
            raise(KernelVersion::new(5, 8), "the ring buffer helpers".into());
        }
        if let Some((_, a, b, helper)) = HELPERS.iter().find(|h| h.0 == id) {
            raise(KernelVersion::new(*a, *b), (*helper).to_string());
        }
    }
    Ok(ToolNeeds {
        name: name.to_string(),
        hooks,
        min_kernel: min,
        configs,
        core: obj.core,
        trampolines,
        options: btf.map(tool_options).unwrap_or_default(),
    })
}

/// The helper ids the code of the object `data` calls (BPF_JMP | BPF_CALL with src_reg 0).
fn helper_calls(data: &[u8], big: bool) -> Vec<i32> {
    use object::{Object, ObjectSection, SectionKind};
    let mut ids = Vec::new();
    let Ok(file) = object::File::parse(data) else {
        return ids;
    };
    for section in file.sections().filter(|s| s.kind() == SectionKind::Text) {
        let Ok(insns) = section.data() else { continue };
        for insn in insns.chunks_exact(8) {
            // The register byte: dst in the low nibble on little-endian, high on big-endian.
            let src = if big { insn[1] & 0x0f } else { insn[1] >> 4 };
            if insn[0] == 0x85 && src == 0 {
                let imm = [insn[4], insn[5], insn[6], insn[7]];
                let id = if big {
                    i32::from_be_bytes(imm)
                } else {
                    i32::from_le_bytes(imm)
                };
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
    }
    ids
}

/// Whether a target can run a tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Everything it needs is known to be there.
    Runs,
    /// Its kernel options could not be checked (the target names no `kernel.config`): it runs if
    /// these are set.
    RunsIf(Vec<&'static str>),
    /// It cannot: each reason names what is missing.
    Cannot(Vec<String>),
}

/// Whether `target` can run the tool with `needs`; `kconfig` is the text of the target's
/// `kernel.config`, when it names one.
pub fn verdict(needs: &ToolNeeds, target: &Target, kconfig: Option<&str>) -> Verdict {
    let board = Board {
        arch: target.arch,
        kernel: target.kernel.version,
        btf: target.kernel.btf != BtfSource::None,
    };
    verdict_on(needs, board, kconfig)
}

/// What a verdict needs to know of a board: its arch, lowest kernel, and whether its bundle has
/// kernel BTF to relocate against (its own or a shipped one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Board {
    /// The board's arch.
    pub arch: Arch,
    /// The lowest kernel the bundle must run on.
    pub kernel: KernelVersion,
    /// Whether CO-RE has kernel BTF there.
    pub btf: bool,
}

/// [`verdict`] from a board's facts (a bundle's manifest has them without the target file).
pub fn verdict_on(needs: &ToolNeeds, board: Board, kconfig: Option<&str>) -> Verdict {
    let mut why = Vec::new();
    let (min, reason) = &needs.min_kernel;
    if board.kernel < *min {
        why.push(format!(
            "kernel {min} ({reason}); the target's is {}",
            board.kernel
        ));
    }
    if needs.trampolines {
        match board.arch.facts().trampoline_since {
            None => why.push(format!(
                "BPF trampolines, which arch `{}` lacks",
                board.arch
            )),
            Some(since) if board.kernel < since => why.push(format!(
                "kernel {since} for BPF trampolines on `{}`",
                board.arch
            )),
            Some(_) => {}
        }
    }
    if needs.core && !board.btf {
        why.push("kernel BTF for CO-RE (the target has kernel.btf: none)".into());
    }
    let mut unknown = Vec::new();
    for c in &needs.configs {
        match kconfig {
            Some(text) if !crate::kconfig::enabled(text, c) => why.push(format!(
                "CONFIG_{c}, which the target's kernel.config lacks"
            )),
            Some(_) => {}
            None => unknown.push(*c),
        }
    }
    if !why.is_empty() {
        Verdict::Cannot(why)
    } else if !unknown.is_empty() {
        Verdict::RunsIf(unknown)
    } else {
        Verdict::Runs
    }
}

/// `-p PID, -x, ...`: a tool's options as one line.
pub fn options_line(options: &[ToolOption]) -> String {
    options
        .iter()
        .map(|o| match &o.value {
            Some(v) => format!("{} {v}", o.flag),
            None => o.flag.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `tracepoint syscalls/sys_enter_bind, syscalls/sys_exit_bind; kprobe vfs_read`: the hooks as one line.
pub fn hooks_line(hooks: &[(AttachKind, Vec<String>)]) -> String {
    hooks
        .iter()
        .map(|(k, points)| {
            if points.is_empty() {
                k.as_str().to_string()
            } else {
                format!("{} {}", k.as_str(), points.join(", "))
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// `kernel 5.8+ (...), CONFIG_KPROBES, kernel BTF`: what a tool needs as one line.
pub fn needs_line(n: &ToolNeeds) -> String {
    let mut parts = vec![format!("kernel {}+ ({})", n.min_kernel.0, n.min_kernel.1)];
    parts.extend(n.configs.iter().map(|c| format!("CONFIG_{c}")));
    if n.core {
        parts.push("kernel BTF (the board's or the bundle's)".into());
    }
    if n.trampolines {
        parts.push("BPF trampolines".into());
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_come_from_the_header_comment() {
        let src = "/*\n * biolatency — block I/O latency as a log2 histogram in microseconds, from the\n * moment a request is issued. More.\n */";
        assert_eq!(
            summary(src, "biolatency").as_deref(),
            Some("block I/O latency as a log2 histogram in microseconds")
        );
        assert_eq!(
            summary("/* opensnoop — every file open: who */", "opensnoop").as_deref(),
            Some("every file open")
        );
        assert_eq!(summary("/* nothing here */", "x"), None);
        assert_eq!(
            summary(
                "/* cpudist — how long (or, with -O, not) tasks run, per CPU */",
                "cpudist"
            )
            .as_deref(),
            Some("how long (or, with -O, not) tasks run")
        );
    }

    #[test]
    fn sets_pick_among_the_available_tools() {
        let available: Vec<String> = ["biolatency", "opensnoop", "tcplife"]
            .map(String::from)
            .to_vec();
        assert_eq!(tool_set("disk", &available), Some(vec!["biolatency"]));
        assert_eq!(tool_set("all", &available).map(|v| v.len()), Some(3));
        assert_eq!(tool_set("nope", &available), None);
        assert!(set_names().contains(&"@net".to_string()));
        // Every set member is a tool of probes/.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../probes");
        for (set, members) in TOOL_SETS {
            for m in *members {
                assert!(
                    dir.join(format!("{m}.bpf.c")).is_file(),
                    "@{set}: {m} is no tool"
                );
            }
        }
    }

    #[test]
    fn configs_decide_when_the_target_names_its_kernel_config() {
        let n = ToolNeeds {
            name: "capable".into(),
            hooks: vec![(AttachKind::Kprobe, vec!["cap_capable".into()])],
            min_kernel: (KernelVersion::new(5, 5), "bpf_probe_read_kernel".into()),
            configs: vec!["KPROBES"],
            core: true,
            trampolines: false,
            options: vec![],
        };
        let t = crate::target::builtin_target("rpi4")
            .expect("built-in rpi4")
            .expect("parses");
        assert_eq!(verdict(&n, &t, None), Verdict::RunsIf(vec!["KPROBES"]));
        assert_eq!(verdict(&n, &t, Some("CONFIG_KPROBES=y\n")), Verdict::Runs);
        let Verdict::Cannot(why) = verdict(&n, &t, Some("# CONFIG_KPROBES is not set\n")) else {
            panic!("expected a refusal");
        };
        assert_eq!(
            why,
            ["CONFIG_KPROBES, which the target's kernel.config lacks"]
        );
        let mut old = t.clone();
        old.kernel.version = KernelVersion::new(5, 4);
        assert!(
            matches!(verdict(&n, &old, None), Verdict::Cannot(w) if w[0].starts_with("kernel 5.5"))
        );
    }
}
