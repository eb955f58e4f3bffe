//! The bundle manifest: what `ebpf-pack build` writes as `manifest.json` and `ebpf-run` reads.
//!
//! Serde types only, plus the one table that maps an ELF program section name to its attach kind, so the
//! host (which verifies sections) and the loader (which attaches by them) can never disagree.
//! The manifest carries no timestamps: a rebuild of the same inputs yields the same bytes.
//! [`embedded`] is the single-file executable's layout, written by the host and read by the loader;
//! [`json`] the loader's small reader of `manifest.json`.

// The readers here take outside input (manifest.json, the single file's trailer and tar) and run as
// root inside ebpf-run: an index, `expect` or `panic!` that input can reach is a crash, so each is an
// error outside tests (as in `bpfobj` and `ebpf-run`).
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::expect_used,
        clippy::unwrap_used,
        clippy::panic,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]

pub mod embedded;
pub mod json;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Version of the manifest layout; bumped on any incompatible change.
pub const SCHEMA: u32 = 1;
/// File name of the manifest inside a bundle's top folder.
pub const MANIFEST_FILE: &str = "manifest.json";
/// File name of the checksum list (`sha256sum -c` format) inside a bundle's top folder.
pub const SUMS_FILE: &str = "SHA256SUMS";
/// File name of the loader executable inside a bundle's top folder.
pub const LOADER_FILE: &str = "ebpf-run";

/// Everything a bundle holds and how it was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Layout version, [`SCHEMA`].
    pub schema: u32,
    /// Project that built the bundle (the tarball's first name part).
    pub project: String,
    /// Project version (the tarball's second name part).
    pub version: String,
    /// Facts about the board the bundle is for.
    pub target: TargetFacts,
    /// Bundle-relative path of the tailored BTF, when the target kernel has none of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub btf: Option<String>,
    /// The probes, each one object file.
    pub probes: Vec<Probe>,
    /// Every file of the bundle except the manifest and SHA256SUMS, sorted by path.
    pub files: Vec<FileEntry>,
    /// Versions of the tools that made the bundle (`clang`, `rustc`, `bpftool`, ...).
    pub tools: BTreeMap<String, String>,
}

/// Facts of the target board that the loader and `ebpf-pack verify` rely on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetFacts {
    /// Target name (`beaglebone`, `rpi4`, ...).
    pub name: String,
    /// Architecture name as in target files (`arm`, `arm64`, `x86_64`, ...).
    pub arch: String,
    /// Byte order of the board and of every BPF object in the bundle.
    pub endian: Endian,
    /// Pointer width of the board in bits (32 or 64).
    pub bits: u8,
    /// Rust target triple the loader was built for.
    pub triple: String,
    /// Lowest kernel version the bundle must run on (`"6.1"`).
    pub kernel_version: String,
    /// Where CO-RE type information comes from at run time.
    pub btf: BtfMode,
}

/// Byte order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Endian {
    /// Little-endian (`bpfel`).
    Little,
    /// Big-endian (`bpfeb`).
    Big,
}

/// Where the loader finds the kernel's type information for CO-RE relocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BtfMode {
    /// The running kernel's `/sys/kernel/btf/vmlinux`.
    Kernel,
    /// The tailored BTF file shipped in the bundle ([`Manifest::btf`]).
    Bundled,
    /// No CO-RE: objects must not need relocation.
    None,
}

/// One probe: one BPF object and what it contains.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Probe {
    /// Probe name (the object's file stem: `opensnoop`).
    pub name: String,
    /// Bundle-relative path of the object (`bpf/opensnoop.bpf.o`).
    pub object: String,
    /// The object's license string.
    pub license: String,
    /// Whether the object carries CO-RE relocations (needs kernel or bundled BTF).
    pub core: bool,
    /// Programs, sorted by name.
    pub programs: Vec<ProgramInfo>,
    /// Maps, sorted by name.
    pub maps: Vec<MapInfo>,
}

/// One BPF program of a probe and where it attaches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgramInfo {
    /// Function name in the object.
    pub name: String,
    /// ELF section name (`tracepoint/syscalls/sys_enter_openat`).
    pub section: String,
    /// Attach kind derived from the section name.
    pub kind: AttachKind,
    /// Attach point named by the section (`syscalls/sys_enter_openat`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attach: Option<String>,
}

/// One BPF map of a probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MapInfo {
    /// Map name in the object.
    pub name: String,
    /// Map type, libbpf's spelling without prefix (`ringbuf`, `hash`, `percpu_array`, ...).
    #[serde(rename = "type")]
    pub map_type: String,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Maximum number of entries (bytes for ring buffers).
    pub max_entries: u32,
}

/// A file of the bundle with its size and checksum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Path relative to the bundle's top folder, `/`-separated.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Lower-case hex SHA-256 of the content.
    pub sha256: String,
}

/// How a program attaches, from its section name (libbpf's conventions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttachKind {
    /// `tracepoint/CATEGORY/NAME` or `tp/CATEGORY/NAME`.
    Tracepoint,
    /// `raw_tracepoint/NAME` or `raw_tp/NAME`.
    RawTracepoint,
    /// `tp_btf/NAME`: BTF-typed raw tracepoint.
    TpBtf,
    /// `kprobe/FUNCTION`.
    Kprobe,
    /// `kretprobe/FUNCTION`.
    Kretprobe,
    /// `uprobe[/PATH:FUNCTION]`.
    Uprobe,
    /// `uretprobe[/PATH:FUNCTION]`.
    Uretprobe,
    /// `fentry/FUNCTION`.
    Fentry,
    /// `fexit/FUNCTION`.
    Fexit,
    /// `perf_event`: CPU sampling.
    PerfEvent,
    /// `xdp`: an interface's receive path.
    Xdp,
    /// `tc` or `classifier`: traffic control.
    Tc,
    /// `socket`: socket filter.
    Socket,
    /// `cgroup_skb/ingress|egress`.
    CgroupSkb,
}

/// Section-name prefixes and the attach kind each one means: the single table both sides use.
const SECTION_KINDS: &[(&str, AttachKind)] = &[
    ("tracepoint", AttachKind::Tracepoint),
    ("tp", AttachKind::Tracepoint),
    ("raw_tracepoint", AttachKind::RawTracepoint),
    ("raw_tp", AttachKind::RawTracepoint),
    ("tp_btf", AttachKind::TpBtf),
    ("kprobe", AttachKind::Kprobe),
    ("kretprobe", AttachKind::Kretprobe),
    ("uprobe", AttachKind::Uprobe),
    ("uretprobe", AttachKind::Uretprobe),
    ("fentry", AttachKind::Fentry),
    ("fexit", AttachKind::Fexit),
    ("perf_event", AttachKind::PerfEvent),
    ("xdp", AttachKind::Xdp),
    ("tc", AttachKind::Tc),
    ("classifier", AttachKind::Tc),
    ("socket", AttachKind::Socket),
    ("cgroup_skb", AttachKind::CgroupSkb),
];

impl AttachKind {
    /// Parses a program section name into its attach kind and attach point.
    ///
    /// Returns `None` for a section that is no known program kind. A kind that needs an attach point
    /// (`tracepoint/` needs `CATEGORY/NAME`, `kprobe/` a function) and lacks it after its `/` is also
    /// `None`; written bare (`kprobe`, `tracepoint`) its point is `None`, named at run time.
    pub fn from_section(section: &str) -> Option<(AttachKind, Option<String>)> {
        let (prefix, rest) = match section.split_once('/') {
            Some((p, r)) => (p, Some(r)),
            None => (section, None),
        };
        let kind = SECTION_KINDS.iter().find(|(p, _)| *p == prefix)?.1;
        // A bare `kprobe` (no `/`) is a program whose target its loader names at run time
        // (libbpf's bpf_program__attach_kprobe; ebpf-run's --attach); `kprobe/` names none.
        let bare = rest.is_none();
        let rest = rest.filter(|r| !r.is_empty()).map(str::to_owned);
        let ok = match kind {
            AttachKind::Tracepoint => {
                bare || rest.as_deref().is_some_and(|r| {
                    r.split_once('/')
                        .is_some_and(|(c, n)| !c.is_empty() && !n.is_empty() && !n.contains('/'))
                })
            }
            AttachKind::RawTracepoint
            | AttachKind::TpBtf
            | AttachKind::Kprobe
            | AttachKind::Kretprobe
            | AttachKind::Fentry
            | AttachKind::Fexit => bare || rest.is_some(),
            AttachKind::CgroupSkb => matches!(rest.as_deref(), Some("ingress" | "egress")),
            AttachKind::Uprobe
            | AttachKind::Uretprobe
            | AttachKind::PerfEvent
            | AttachKind::Xdp
            | AttachKind::Tc
            | AttachKind::Socket => true,
        };
        ok.then_some((kind, rest))
    }

    /// The kind's name as used in manifests and messages (`tracepoint`, `kprobe`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            AttachKind::Tracepoint => "tracepoint",
            AttachKind::RawTracepoint => "raw_tracepoint",
            AttachKind::TpBtf => "tp_btf",
            AttachKind::Kprobe => "kprobe",
            AttachKind::Kretprobe => "kretprobe",
            AttachKind::Uprobe => "uprobe",
            AttachKind::Uretprobe => "uretprobe",
            AttachKind::Fentry => "fentry",
            AttachKind::Fexit => "fexit",
            AttachKind::PerfEvent => "perf_event",
            AttachKind::Xdp => "xdp",
            AttachKind::Tc => "tc",
            AttachKind::Socket => "socket",
            AttachKind::CgroupSkb => "cgroup_skb",
        }
    }

    /// Every section prefix this project understands, for error messages.
    pub fn known_prefixes() -> impl Iterator<Item = &'static str> {
        SECTION_KINDS.iter().map(|(p, _)| *p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_map_to_kinds_and_points() {
        let cases = [
            (
                "tracepoint/syscalls/sys_enter_openat",
                AttachKind::Tracepoint,
                Some("syscalls/sys_enter_openat"),
            ),
            (
                "tp/sched/sched_process_exec",
                AttachKind::Tracepoint,
                Some("sched/sched_process_exec"),
            ),
            (
                "raw_tp/sys_enter",
                AttachKind::RawTracepoint,
                Some("sys_enter"),
            ),
            (
                "raw_tracepoint/sys_exit",
                AttachKind::RawTracepoint,
                Some("sys_exit"),
            ),
            (
                "kprobe/do_sys_openat2",
                AttachKind::Kprobe,
                Some("do_sys_openat2"),
            ),
            (
                "kretprobe/do_sys_openat2",
                AttachKind::Kretprobe,
                Some("do_sys_openat2"),
            ),
            ("uprobe", AttachKind::Uprobe, None),
            ("kprobe", AttachKind::Kprobe, None),
            ("tracepoint", AttachKind::Tracepoint, None),
            ("fentry", AttachKind::Fentry, None),
            ("xdp", AttachKind::Xdp, None),
            ("classifier", AttachKind::Tc, None),
            ("cgroup_skb/egress", AttachKind::CgroupSkb, Some("egress")),
        ];
        for (section, kind, point) in cases {
            assert_eq!(
                AttachKind::from_section(section),
                Some((kind, point.map(str::to_owned))),
                "{section}"
            );
        }
    }

    #[test]
    fn malformed_or_unknown_sections_are_rejected() {
        for section in [
            "tracepoint/syscalls",
            "tracepoint/",
            "tracepoint/a/b/c",
            "kprobe/",
            "cgroup_skb/sideways",
            "lsm/file_open",
            ".text",
            "license",
        ] {
            assert_eq!(AttachKind::from_section(section), None, "{section}");
        }
    }

    /// A manifest with every kind of member, for the serde and [`crate::json`] tests.
    pub(crate) fn sample() -> Manifest {
        Manifest {
            schema: SCHEMA,
            project: "ebpf-pack".into(),
            version: "0.1.0".into(),
            target: TargetFacts {
                name: "beaglebone".into(),
                arch: "arm".into(),
                endian: Endian::Little,
                bits: 32,
                triple: "armv7-unknown-linux-gnueabihf".into(),
                kernel_version: "6.1".into(),
                btf: BtfMode::Bundled,
            },
            btf: Some("btf/vmlinux.btf".into()),
            probes: vec![Probe {
                name: "opensnoop".into(),
                object: "bpf/opensnoop.bpf.o".into(),
                license: "GPL".into(),
                core: true,
                programs: vec![ProgramInfo {
                    name: "enter_openat".into(),
                    section: "tracepoint/syscalls/sys_enter_openat".into(),
                    kind: AttachKind::Tracepoint,
                    attach: Some("syscalls/sys_enter_openat".into()),
                }],
                maps: vec![MapInfo {
                    name: "events".into(),
                    map_type: "ringbuf".into(),
                    key_size: 0,
                    value_size: 0,
                    max_entries: 262144,
                }],
            }],
            files: vec![FileEntry {
                path: "ebpf-run".into(),
                size: 3,
                sha256: "ab".into(),
            }],
            tools: BTreeMap::from([(
                "clang".into(),
                "Debian clang version 19.1.7 (\"3~deb12u1\")\t\u{e9}".into(),
            )]),
        }
    }

    #[test]
    fn manifest_round_trips_through_json() {
        let m = sample();
        let text = serde_json::to_string(&m).expect("serialize");
        let back: Manifest = serde_json::from_str(&text).expect("parse");
        assert_eq!(back, m);
    }
}
