//! Deciding where each program attaches (from its section, before touching the kernel), then loading the
//! object through aya and attaching every program, with one clear diagnostic per failure.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use aya::programs::tc::{NlOptions, TcAttachOptions};
use aya::programs::{
    PerfEvent, Program, ProgramError, ProgramFd, SchedClassifier, TcAttachType, UProbe,
};
use aya::{Btf, Ebpf, EbpfLoader};
use ebpf_pack_manifest::AttachKind;
use object::read::elf::ElfFile64;
use object::{Endianness, Object, ObjectSection};

use crate::args::AttachOptions;
use crate::diagnose::{attach_failure, load_failure, object_failure};
use crate::failure::{Exit, Failure};
use crate::probe::{ProbeObject, ProgramSpec};
use crate::{sys, uprobe};

/// Where aya pins maps that ask for `LIBBPF_PIN_BY_NAME`.
const PIN_DIR: &str = "/sys/fs/bpf";

/// Where one program attaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachPoint {
    /// A tracepoint: `/sys/kernel/tracing/events/CATEGORY/NAME`.
    Tracepoint {
        /// Event category (`syscalls`).
        category: String,
        /// Event name (`sys_enter_openat`).
        name: String,
    },
    /// A raw tracepoint by name.
    RawTracepoint(String),
    /// A BTF-typed raw tracepoint by name (`sched_switch`).
    TpBtf(String),
    /// Entry of a kernel function through a BPF trampoline.
    Fentry(String),
    /// Return of a kernel function through a BPF trampoline.
    Fexit(String),
    /// Entry of a kernel function.
    Kprobe(String),
    /// Return of a kernel function.
    Kretprobe(String),
    /// Entry (or return, `ret`) of a function in a user-space binary or library.
    Uprobe {
        /// Binary or library (a bare library name is looked up like the dynamic linker does).
        path: PathBuf,
        /// Function symbol.
        func: String,
        /// A uretprobe.
        ret: bool,
    },
    /// Entry (or return) of every function of a binary or library matching a glob (funccount's
    /// `PATH:PATTERN`), each attach point with its BPF cookie (1, 2, ...) naming the function.
    UprobePattern {
        /// Binary or library.
        path: PathBuf,
        /// Glob over its function symbols, or one function name.
        pattern: String,
        /// Uretprobes.
        ret: bool,
    },
    /// CPU sampling: the software cpu-clock event on every online CPU.
    PerfEvent {
        /// Samples per second per CPU.
        freq: u64,
        /// `perf_event/{NAME}` without `--freq`: the rate is the integer setting NAME (profile's
        /// `-F HZ`), read when the plan is resolved.
        setting: Option<String>,
    },
    /// The receive path of a network interface.
    Xdp(String),
    /// Traffic control on an interface (clsact ingress or egress).
    Tc {
        /// Interface.
        iface: String,
        /// Egress instead of ingress.
        egress: bool,
        /// `--tc-netlink`: a netlink filter on a clsact qdisc even where tcx links exist.
        netlink: bool,
    },
    /// A packet socket bound to an interface: the filter sees every packet of it.
    Socket(String),
    /// Packets entering or leaving a cgroup v2.
    CgroupSkb {
        /// Cgroup directory.
        cgroup: PathBuf,
        /// Egress instead of ingress.
        egress: bool,
    },
}

impl AttachPoint {
    /// `tracepoint syscalls/sys_enter_openat`, `kprobe do_sys_openat2`, `xdp eth0`, …
    pub fn describe(&self) -> String {
        let dir = |egress: bool| if egress { "egress" } else { "ingress" };
        match self {
            AttachPoint::Tracepoint { category, name } => format!("tracepoint {category}/{name}"),
            AttachPoint::RawTracepoint(n) => format!("raw_tracepoint {n}"),
            AttachPoint::TpBtf(n) => format!("tp_btf {n}"),
            AttachPoint::Fentry(f) => format!("fentry {f}"),
            AttachPoint::Fexit(f) => format!("fexit {f}"),
            AttachPoint::Kprobe(f) => format!("kprobe {f}"),
            AttachPoint::Kretprobe(f) => format!("kretprobe {f}"),
            AttachPoint::Uprobe { path, func, ret } => format!(
                "{} {}:{func}",
                if *ret { "uretprobe" } else { "uprobe" },
                path.display()
            ),
            AttachPoint::UprobePattern { path, pattern, ret } => format!(
                "{} {}:{pattern} (each function matching)",
                if *ret { "uretprobe" } else { "uprobe" },
                path.display()
            ),
            AttachPoint::PerfEvent { freq, .. } => format!("perf_event cpu-clock at {freq} Hz"),
            AttachPoint::Xdp(i) => format!("xdp {i}"),
            AttachPoint::Tc {
                iface,
                egress,
                netlink,
            } => format!(
                "tc {iface} {}{}",
                dir(*egress),
                if *netlink { " (netlink)" } else { "" }
            ),
            AttachPoint::Socket(i) => format!("socket on {i}"),
            AttachPoint::CgroupSkb { cgroup, egress } => {
                format!("cgroup_skb {} {}", cgroup.display(), dir(*egress))
            }
        }
    }

    /// Whether loading needs the running kernel's own BTF (the attach target is a BTF id).
    pub fn needs_kernel_btf(&self) -> bool {
        matches!(
            self,
            AttachPoint::TpBtf(_) | AttachPoint::Fentry(_) | AttachPoint::Fexit(_)
        )
    }
}

/// Default `--freq` of perf_event programs: 99 Hz, off the beat of periodic kernel work (as bcc).
pub const DEFAULT_FREQ: u64 = 99;

/// A program of a probe together with where it will attach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedProgram {
    /// Function name (aya's key).
    pub function: String,
    /// ELF section name.
    pub section: String,
    /// Attach point.
    pub point: AttachPoint,
}

/// Decides where a program attaches, or why this loader cannot attach it (missing options included).
pub fn plan_program(
    probe: &str,
    p: &ProgramSpec,
    opts: &AttachOptions,
) -> Result<AttachPoint, Failure> {
    let subject = format!(
        "probe {probe}: program `{}` (section `{}`)",
        p.function, p.section
    );
    let Some((kind, point)) = &p.attach else {
        if p.section == "usdt" || p.section.starts_with("usdt/") {
            return Err(Failure::new(
                Exit::Attach,
                format!(
                    "{subject}: USDT probes are not supported by this ebpf-run: it does not read the \
                     target's .note.stapsdt notes, nor set up libbpf's USDT argument specs"
                ),
            )
            .hint("trace the same spot with a uprobe on the function (uprobe/PATH:FUNC)"));
        }
        let known: Vec<&str> = AttachKind::known_prefixes().collect();
        return Err(Failure::new(
            Exit::BadInput,
            format!("{subject}: the section names no known program kind"),
        )
        .hint(format!(
            "name the section after an attach kind: {}/...",
            known.join("/, ")
        )));
    };
    let needs = |what: &str| Failure::new(Exit::Usage, format!("{subject}: needs {what}"));
    let iface = || opts.iface.clone().ok_or_else(|| needs("--iface IFACE"));
    // A bare section's target comes from --attach PROG=TARGET, as libbpf user code would name it.
    let given = opts
        .targets
        .iter()
        .rev()
        .find(|(prog, _)| *prog == p.function)
        .map(|(_, target)| target.clone());
    let runtime = matches!(
        kind,
        AttachKind::Tracepoint
            | AttachKind::RawTracepoint
            | AttachKind::TpBtf
            | AttachKind::Kprobe
            | AttachKind::Kretprobe
            | AttachKind::Fentry
            | AttachKind::Fexit
    );
    let point = match (point, given) {
        (_, Some(target)) => target,
        (Some(point), None) => point.clone(),
        (None, None) if runtime => {
            let example = match kind {
                AttachKind::Tracepoint => "CATEGORY/NAME",
                AttachKind::RawTracepoint | AttachKind::TpBtf => "TRACEPOINT",
                _ => "FUNCTION",
            };
            return Err(Failure::new(
                Exit::Usage,
                format!(
                    "{subject}: a bare `{}` section names no target: its loader chooses one at run time",
                    p.section
                ),
            )
            .hint(format!("give it: --attach {}={example}", p.function)));
        }
        (None, None) => String::new(),
    };
    let point = match kind {
        // bpftrace's spelling of a tracepoint works too.
        AttachKind::Tracepoint if !point.contains('/') => point.replacen(':', "/", 1),
        _ => point,
    };
    Ok(match kind {
        AttachKind::Tracepoint => match point.split_once('/') {
            Some((category, name)) => AttachPoint::Tracepoint {
                category: category.to_owned(),
                name: name.to_owned(),
            },
            None => {
                return Err(Failure::new(
                    Exit::BadInput,
                    format!("{subject}: expected tracepoint/CATEGORY/NAME"),
                ));
            }
        },
        AttachKind::RawTracepoint => AttachPoint::RawTracepoint(point),
        AttachKind::TpBtf => AttachPoint::TpBtf(point),
        AttachKind::Fentry => AttachPoint::Fentry(point),
        AttachKind::Fexit => AttachPoint::Fexit(point),
        AttachKind::Kprobe => AttachPoint::Kprobe(point),
        AttachKind::Kretprobe => AttachPoint::Kretprobe(point),
        AttachKind::Uprobe | AttachKind::Uretprobe => {
            // `uprobe/PATH:FUNC` names both; a bare section takes --uprobe-path/--uprobe-func;
            // `uprobe/{NAME}` waits for the string setting NAME (resolve_templates).
            let (path, func) = match point.rsplit_once(':') {
                _ if point.starts_with('{') && point.ends_with('}') => {
                    (PathBuf::new(), point.clone())
                }
                Some((path, func)) if !path.is_empty() && !func.is_empty() => {
                    (PathBuf::from(path), func.to_owned())
                }
                // `uretprobe/readline`: the function, the binary chosen at run time.
                _ if !point.is_empty() && !point.contains(':') => match &opts.uprobe_path {
                    Some(path) => (path.clone(), point.clone()),
                    None => {
                        return Err(Failure::new(
                            Exit::Usage,
                            format!(
                                "{subject}: names the function `{point}` but not the binary: its loader chooses it at run time"
                            ),
                        )
                        .hint(format!(
                            "give it: --attach {}=PATH:{point} (or --uprobe-path PATH)",
                            p.function
                        )));
                    }
                },
                _ if !point.is_empty() => {
                    return Err(Failure::new(
                        Exit::BadInput,
                        format!("{subject}: expected {}/PATH:FUNCTION", kind.as_str()),
                    ));
                }
                _ => match (&opts.uprobe_path, &opts.uprobe_func) {
                    (Some(path), Some(func)) => (path.clone(), func.clone()),
                    _ => return Err(needs("--uprobe-path PATH and --uprobe-func FUNCTION")),
                },
            };
            AttachPoint::Uprobe {
                path,
                func,
                ret: *kind == AttachKind::Uretprobe,
            }
        }
        AttachKind::PerfEvent => AttachPoint::PerfEvent {
            freq: opts.freq.unwrap_or(DEFAULT_FREQ),
            setting: point
                .strip_prefix('{')
                .and_then(|r| r.strip_suffix('}'))
                .filter(|_| opts.freq.is_none())
                .map(str::to_owned),
        },
        AttachKind::Xdp => AttachPoint::Xdp(iface()?),
        AttachKind::Tc if p.section.starts_with("tc") => {
            return Err(Failure::new(
                Exit::Attach,
                format!(
                    "{subject}: the aya 0.14 in this ebpf-run reads tc programs only from \
                     `classifier` sections"
                ),
            )
            .hint("name the section SEC(\"classifier\") or SEC(\"classifier/egress\")"));
        }
        AttachKind::Tc => AttachPoint::Tc {
            iface: iface()?,
            netlink: opts.tc_netlink,
            egress: match point.as_str() {
                "" | "ingress" => false,
                "egress" => true,
                _ => {
                    return Err(Failure::new(
                        Exit::BadInput,
                        format!("{subject}: expected classifier[/ingress|/egress]"),
                    ));
                }
            },
        },
        AttachKind::Socket => AttachPoint::Socket(iface()?),
        AttachKind::CgroupSkb => AttachPoint::CgroupSkb {
            cgroup: match &opts.cgroup {
                Some(dir) => dir.clone(),
                None => sys::cgroup2_mount()
                    .ok_or_else(|| needs("--cgroup DIR (no cgroup2 file system is mounted)"))?,
            },
            egress: point == "egress",
        },
    })
}

/// Plans every program of a probe; the first problem wins.
pub fn plan(probe: &ProbeObject, opts: &AttachOptions) -> Result<Vec<PlannedProgram>, Failure> {
    if probe.programs.is_empty() {
        return Err(Failure::new(
            Exit::BadInput,
            format!(
                "probe {}: {} contains no BPF programs",
                probe.name,
                probe.path.display()
            ),
        ));
    }
    probe
        .programs
        .iter()
        .map(|p| {
            Ok(PlannedProgram {
                function: p.function.clone(),
                section: p.section.clone(),
                point: plan_program(&probe.name, p, opts)?,
            })
        })
        .collect()
}

/// Kernel type information handed to aya for CO-RE.
pub enum KernelBtf {
    /// A parsed BTF file (`--btf` or the bundle's).
    Parsed(Btf),
    /// aya's own default: the kernel's `/sys/kernel/btf/vmlinux` (vetted by us when CO-RE needs it).
    AyaDefault,
    /// No BTF at all.
    None,
}

/// The one aya loader of a run, with the kernel BTF for CO-RE: `btf`, or `full` (the kernel's whole
/// BTF, already parsed for fentry/fexit/tp_btf) where `btf` is aya's default. aya 0.14 parses the running
/// kernel's whole BTF each time a loader is made (megabytes, tens of milliseconds): unless aya's default
/// is what is wanted, the loader is made where it cannot see that file ([`sys::without_kernel_btf`]);
/// call it before anything starts a thread.
pub fn loader<'b>(btf: &'b KernelBtf, full: Option<&'b Btf>) -> EbpfLoader<'b> {
    let btf = match (btf, full) {
        (KernelBtf::AyaDefault, None) => return EbpfLoader::new(),
        (KernelBtf::Parsed(b), _) | (KernelBtf::AyaDefault, Some(b)) => Some(b),
        (KernelBtf::None, _) => None,
    };
    let mut loader = sys::without_kernel_btf(EbpfLoader::new).unwrap_or_default();
    loader.btf(btf);
    loader
}

/// `max_entries` of a map that declares 0 (its user code sizes it at run time, as libbpf-tools'
/// `bpf_map__set_max_entries`) and that `--map-size` does not size: libbpf-tools' usual MAX_ENTRIES.
pub const DEFAULT_MAX_ENTRIES: u32 = 10240;
/// Size of a ring buffer that declares 0: 256 KiB.
pub const DEFAULT_RINGBUF_BYTES: u32 = 256 << 10;

/// Sets the sizes of `probe`'s maps on `loader` before it loads them: `--map-size NAME=N` first, then
/// the defaults for maps that declare none (a perf event array is left to aya, which gives it one
/// slot per CPU as libbpf does). Every map of the probe is set (to its own declared size if nothing
/// else), so one probe's sizes never carry over to the next object the shared loader loads.
/// Returns the notes to print, one line per map sized here.
pub fn size_maps<'a>(
    loader: &mut EbpfLoader<'a>,
    probe: &'a ProbeObject,
    sizes: &'a [(String, u32)],
) -> Vec<String> {
    let mut notes = Vec::new();
    for decl in &probe.maps {
        let given = sizes
            .iter()
            .rev()
            .find(|(n, _)| *n == decl.name)
            .map(|(_, n)| *n);
        // A BTF-defined map without `__uint(max_entries, ...)` declares 0 too.
        let declared = decl.max_entries.or(decl.map_type.map(|_| 0));
        let size = match (given, declared, decl.map_type) {
            (Some(n), ..) => {
                notes.push(format!(
                    "{}: map {} sized {n} (--map-size)",
                    probe.name, decl.name
                ));
                n
            }
            (None, Some(0), Some(crate::map_types::PERF_EVENT_ARRAY)) => continue,
            (None, Some(0), Some(crate::map_types::RINGBUF)) => {
                notes.push(format!(
                    "{}: map {} declares no size: {DEFAULT_RINGBUF_BYTES} bytes (--map-size {}=N to choose)",
                    probe.name, decl.name, decl.name
                ));
                DEFAULT_RINGBUF_BYTES
            }
            (None, Some(0), _) => {
                notes.push(format!(
                    "{}: map {} declares no size: {DEFAULT_MAX_ENTRIES} entries (--map-size {}=N to choose)",
                    probe.name, decl.name, decl.name
                ));
                DEFAULT_MAX_ENTRIES
            }
            (None, Some(n), _) => n,
            (None, None, _) => continue,
        };
        loader.map_max_entries(&decl.name, size);
    }
    notes
}

/// Frames a stack-trace map holds when it declares no value size: libbpf-tools' default
/// `perf_max_stack_depth`, 8 bytes an address (the kernel stores 64-bit addresses on every arch).
pub const DEFAULT_STACK_FRAMES: u32 = 127;

/// Gives each stack-trace map of `probe` that declares neither a value type nor a value size (its
/// user code sets one, `bpf_map__set_value_size`) room for [`DEFAULT_STACK_FRAMES`] frames, written
/// into the object's BTF before aya, which cannot set a value size, creates it. Returns the notes
/// to print, one line per map.
pub fn size_stack_values(probe: &mut ProbeObject) -> Result<Vec<String>, Failure> {
    let mut notes = Vec::new();
    let unsized_maps: Vec<String> = probe
        .maps
        .iter()
        .filter(|m| m.map_type == Some(crate::map_types::STACK_TRACE))
        .filter(|m| m.value.is_none() && m.value_size.unwrap_or(0) == 0)
        .map(|m| m.name.clone())
        .collect();
    let bytes = DEFAULT_STACK_FRAMES * 8;
    for name in unsized_maps {
        let grown = ElfFile64::<Endianness>::parse(&*probe.data)
            .map_err(|e| e.to_string())
            .and_then(|elf| {
                let btf = elf.section_by_name(".BTF").ok_or("no .BTF section")?;
                let blob = btf.data().map_err(|e| e.to_string())?;
                crate::btf::add_map_value_size(blob, &name, bytes).map_err(|e| e.to_string())
            })
            .and_then(|btf| crate::elf_edit::replace_section(&probe.data, ".BTF", &btf));
        probe.data = grown.map_err(|e| {
            Failure::new(
                Exit::BadInput,
                format!(
                    "probe {}: cannot give stack-trace map `{name}` a value size: {e}",
                    probe.name
                ),
            )
            .hint("declare it with __uint(value_size, FRAMES * 8)")
        })?;
        if let Some(decl) = probe.maps.iter_mut().find(|m| m.name == name) {
            decl.value_size = Some(bytes);
        }
        notes.push(format!(
            "{}: map {name} declares no value size: {DEFAULT_STACK_FRAMES} frames ({bytes} bytes)",
            probe.name
        ));
    }
    Ok(notes)
}

/// Creates the object's maps and prepares its programs (nothing is attached yet).
///
/// Maps that ask to be pinned by name are unpinned right away when this run created the pin, so
/// nothing outlives the process.
pub fn load(loader: &mut EbpfLoader<'_>, probe: &ProbeObject) -> Result<Ebpf, Failure> {
    let new_pins: Vec<PathBuf> = probe
        .maps
        .iter()
        .filter(|m| m.pinning != 0)
        .map(|m| Path::new(PIN_DIR).join(&m.name))
        .filter(|p| !p.exists())
        .collect();
    crate::loadable::check_loadable(&probe.data, cfg!(target_endian = "big")).map_err(|e| {
        Failure::new(
            Exit::BadInput,
            format!("probe {}: {}: {e}", probe.name, probe.path.display()),
        )
        .hint("the object is damaged or was not built for this board: rebuild it with ebpf-pack build")
    })?;
    let result = loader.load(&probe.data);
    for pin in new_pins {
        let _ = std::fs::remove_file(pin);
    }
    result.map_err(|e| object_failure(&probe.name, &e))
}

/// A program of an object left out of the run, and why.
#[derive(Debug, Clone)]
pub struct Skipped {
    /// What stopped it (its message names the probe and the program).
    pub why: Failure,
}

/// The fallback of each planned program, as libbpf-tools pair them: a kprobe (kretprobe) on the
/// function an fentry (fexit) of the same object traces runs only when that fentry cannot, and a
/// raw_tp on the tracepoint a tp_btf of the object takes only when that tp_btf cannot.
/// `result[i] = Some(j)`: program `i` is the fallback of program `j`.
pub fn fallbacks(plan: &[PlannedProgram]) -> Vec<Option<usize>> {
    plan.iter()
        .map(|p| {
            plan.iter().position(|q| match (&p.point, &q.point) {
                (AttachPoint::Kprobe(a), AttachPoint::Fentry(b))
                | (AttachPoint::Kretprobe(a), AttachPoint::Fexit(b))
                | (AttachPoint::RawTracepoint(a), AttachPoint::TpBtf(b)) => a == b,
                _ => false,
            })
        })
        .collect()
}

/// Loads the planned programs into the kernel (the verifier runs here); nothing is attached yet.
/// `kernel` is the running kernel's own BTF, needed by fentry, fexit and tp_btf programs (`missing`
/// says why it cannot be read). A program that does not load is taken out of `plan` and returned;
/// an object none of whose programs loads fails with the first reason.
pub fn load_programs(
    probe: &str,
    ebpf: &mut Ebpf,
    plan: &mut Vec<PlannedProgram>,
    kernel: Option<&Btf>,
    missing: Option<&str>,
) -> Result<Vec<Skipped>, Failure> {
    let mut skipped = Vec::new();
    let mut kept = Vec::with_capacity(plan.len());
    for p in plan.drain(..) {
        match load_program(probe, ebpf, &p, kernel, missing) {
            Ok(()) => kept.push(p),
            Err(why) => skipped.push(Skipped { why }),
        }
    }
    *plan = kept;
    if plan.is_empty() {
        if let Some(first) = skipped.into_iter().next() {
            return Err(first.why);
        }
        return Ok(Vec::new());
    }
    Ok(skipped)
}

/// Loads one planned program.
fn load_program(
    probe: &str,
    ebpf: &mut Ebpf,
    p: &PlannedProgram,
    kernel: Option<&Btf>,
    missing: Option<&str>,
) -> Result<(), Failure> {
    if p.point.needs_kernel_btf()
        && kernel.is_none()
        && let Some(why) = missing
    {
        return Err(Failure::new(
            Exit::Attach,
            format!(
                "probe {probe}: program `{}` ({}) attaches by the running kernel's own BTF, and \
                 {} cannot be used: {why}",
                p.function,
                p.section,
                crate::bundle::KERNEL_BTF
            ),
        )
        .hint("fentry, fexit and tp_btf need CONFIG_DEBUG_INFO_BTF in the running kernel"));
    }
    {
        let name = match &p.point {
            AttachPoint::TpBtf(n) | AttachPoint::Fentry(n) | AttachPoint::Fexit(n) => n.as_str(),
            _ => "",
        };
        let loaded = match (find(probe, ebpf, p)?, kernel) {
            (Program::TracePoint(t), _) => t.load(),
            (Program::RawTracePoint(t), _) => t.load(),
            (Program::KProbe(k), _) => k.load(),
            (Program::UProbe(u), _) => u.load(),
            (Program::PerfEvent(e), _) => e.load(),
            (Program::Xdp(x), _) => x.load(),
            (Program::SchedClassifier(c), _) => c.load(),
            (Program::SocketFilter(s), _) => s.load(),
            (Program::CgroupSkb(c), _) => c.load(),
            (Program::BtfTracePoint(t), Some(btf)) => t.load(name, btf),
            (Program::FEntry(f), Some(btf)) => f.load(name, btf),
            (Program::FExit(f), Some(btf)) => f.load(name, btf),
            _ => Err(ProgramError::UnexpectedProgramType),
        };
        loaded.map_err(|e| load_failure(probe, p, e))?;
    }
    Ok(())
}

/// Attaches the loaded programs of `plan`, each fallback only when its fentry twin did not attach.
/// Programs that do not attach are taken out of `plan` and returned; an object none of whose
/// programs attaches fails with the first reason.
pub fn attach_programs(
    probe: &str,
    ebpf: &mut Ebpf,
    plan: &mut Vec<PlannedProgram>,
    keep: &mut Keep,
) -> Result<Vec<Skipped>, Failure> {
    let twins = fallbacks(plan);
    let mut attached = vec![false; plan.len()];
    let mut skipped = Vec::new();
    // Primaries first, so each fallback knows whether it is needed.
    let (primaries, fallbacks): (Vec<_>, Vec<_>) =
        twins.iter().enumerate().partition(|(_, t)| t.is_none());
    for (i, twin) in primaries.into_iter().chain(fallbacks) {
        let (Some(program), false) = (
            plan.get(i),
            twin.is_some_and(|p| attached.get(p) == Some(&true)),
        ) else {
            continue;
        };
        match attach_program(probe, ebpf, program, keep) {
            Ok(()) => {
                if let Some(done) = attached.get_mut(i) {
                    *done = true;
                }
            }
            Err(why) => skipped.push(Skipped { why }),
        }
    }
    let mut still = attached.into_iter();
    plan.retain(|_| still.next().unwrap_or(false));
    if plan.is_empty() {
        if let Some(first) = skipped.into_iter().next() {
            return Err(first.why);
        }
        return Ok(Vec::new());
    }
    Ok(skipped)
}

/// What must stay open while programs are attached: the links and perf events ebpf-run made itself
/// (XDP, tc, uprobes) and the packet sockets carrying socket filters. Closing them detaches.
/// What ebpf-run attached through itself and must hold until the run ends.
#[derive(Default)]
pub struct Keep {
    /// Links, perf events and sockets, detached when closed.
    pub fds: Vec<OwnedFd>,
    /// clsact qdiscs added for netlink tc filters, deleted when dropped (after `fds`).
    pub qdiscs: Vec<sys::Clsact>,
    /// What each BPF cookie names: cookie `i + 1` is the function `names[i]` (uprobe patterns).
    pub names: Vec<String>,
}

impl Keep {
    /// Nothing kept yet.
    pub fn new() -> Keep {
        Keep::default()
    }

    /// Keeps `fd` open until the run ends.
    pub fn push(&mut self, fd: OwnedFd) {
        self.fds.push(fd);
    }
}

/// Attaches one loaded program at its planned point. aya's links live as long as `ebpf`; the fds
/// ebpf-run attaches through itself are pushed to `keep`.
fn attach_program(
    probe: &str,
    ebpf: &mut Ebpf,
    p: &PlannedProgram,
    keep: &mut Keep,
) -> Result<(), Failure> {
    {
        let attached = match (find(probe, ebpf, p)?, &p.point) {
            (Program::TracePoint(t), AttachPoint::Tracepoint { category, name }) => {
                t.attach(category, name).map(drop)
            }
            (Program::RawTracePoint(t), AttachPoint::RawTracepoint(name)) => {
                t.attach(name).map(drop)
            }
            (Program::KProbe(k), AttachPoint::Kprobe(f) | AttachPoint::Kretprobe(f))
                if is_pattern(f) =>
            {
                attach_kprobe_pattern(probe, p, k, f)?;
                Ok(())
            }
            (Program::KProbe(k), AttachPoint::Kprobe(f) | AttachPoint::Kretprobe(f)) => {
                k.attach(f, 0).map(drop)
            }
            (Program::BtfTracePoint(t), _) => t.attach().map(drop),
            (Program::FEntry(f), _) => f.attach().map(drop),
            (Program::FExit(f), _) => f.attach().map(drop),
            (Program::UProbe(u), AttachPoint::Uprobe { path, func, ret }) => {
                attach_uprobe(u, path, func, *ret).map(|fd| keep.push(fd))
            }
            (Program::UProbe(u), AttachPoint::UprobePattern { path, pattern, ret }) => {
                attach_uprobe_pattern(probe, p, u, (path, pattern, *ret), keep)?;
                Ok(())
            }
            (Program::PerfEvent(e), AttachPoint::PerfEvent { freq, .. }) => {
                attach_perf(e, *freq, keep)
            }
            (Program::Xdp(x), AttachPoint::Xdp(iface)) => {
                link(x.fd(), iface, sys::ATTACH_XDP).map(|fd| keep.push(fd))
            }
            (
                Program::SchedClassifier(c),
                AttachPoint::Tc {
                    iface,
                    egress,
                    netlink,
                },
            ) => {
                let at = sys::ATTACH_TCX_INGRESS + u32::from(*egress);
                if *netlink {
                    attach_tc_netlink(c, iface, *egress, keep)
                } else {
                    match link(c.fd(), iface, at) {
                        Ok(fd) => {
                            keep.push(fd);
                            Ok(())
                        }
                        // Kernels before 6.6 have no tcx: EINVAL for the unknown attach type.
                        Err(ProgramError::IOError(e)) if e.raw_os_error() == Some(libc::EINVAL) => {
                            eprintln!(
                                "ebpf-run: {probe}: {}: this kernel has no tcx links (before 6.6): \
                                 attached as a netlink filter on the clsact qdisc of {iface}",
                                p.function
                            );
                            attach_tc_netlink(c, iface, *egress, keep)
                        }
                        Err(e) => Err(e),
                    }
                }
            }
            (Program::SocketFilter(s), AttachPoint::Socket(iface)) => {
                match sys::packet_socket(iface) {
                    Ok(sock) => s.attach(&sock).map(|()| keep.push(sock)),
                    Err(e) => Err(ProgramError::IOError(e)),
                }
            }
            (Program::CgroupSkb(c), AttachPoint::CgroupSkb { cgroup, egress }) => {
                let at = sys::ATTACH_CGROUP_INET_INGRESS + u32::from(*egress);
                std::fs::File::open(cgroup)
                    .and_then(|dir| sys::link_create(fd(c.fd())?, dir.as_raw_fd() as u32, at))
                    .map(|link| keep.push(link))
                    .map_err(ProgramError::IOError)
            }
            _ => Err(ProgramError::UnexpectedProgramType),
        };
        attached.map_err(|e| attach_failure(probe, p, &e))?;
    }
    Ok(())
}

/// Most functions one pattern may attach to (BCC's funccount has the same limit).
const MAX_PATTERN_PROBES: usize = 1000;

/// Whether a kprobe target is a glob (`vfs_*`) rather than one function.
fn is_pattern(target: &str) -> bool {
    target.contains(['*', '?'])
}

/// Attaches one kprobe program to every function matching `pattern` among those the kernel lets
/// kprobes attach to (tracefs `available_filter_functions`); functions that refuse are skipped and
/// counted, and none attached is an attach failure.
fn attach_kprobe_pattern(
    probe: &str,
    p: &PlannedProgram,
    k: &mut aya::programs::KProbe,
    pattern: &str,
) -> Result<(), Failure> {
    let mut problem = String::from("tracefs is not mounted");
    let list = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
        .iter()
        .map(|d| format!("{d}/available_filter_functions"))
        .find_map(|file| match std::fs::read_to_string(&file) {
            Ok(text) => Some(text),
            Err(e) => {
                if std::path::Path::new(&file).exists() {
                    problem = format!("cannot read {file}: {e}");
                }
                None
            }
        })
        .ok_or_else(|| {
            Failure::new(
                Exit::Attach,
                format!(
                    "probe {probe}: program `{}`: cannot expand `{pattern}`: {problem}",
                    p.function
                ),
            )
            .hint("run as root with tracefs mounted: mount -t tracefs tracefs /sys/kernel/tracing")
        })?;
    let mut names: Vec<&str> = list
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| ebpf_pack_object::glob::wildcard_match(pattern, n))
        .collect();
    names.sort_unstable();
    names.dedup();
    if names.len() > MAX_PATTERN_PROBES {
        return Err(Failure::new(
            Exit::Usage,
            format!(
                "probe {probe}: `{pattern}` matches {} functions, more than {MAX_PATTERN_PROBES}",
                names.len()
            ),
        )
        .hint("narrow the pattern"));
    }
    let (mut attached, mut refused) = (0, 0);
    for name in &names {
        match k.attach(*name, 0) {
            Ok(_) => attached += 1,
            Err(_) => refused += 1,
        }
    }
    if attached == 0 {
        return Err(Failure::new(
            Exit::Attach,
            format!(
                "probe {probe}: program `{}`: `{pattern}` matches {} attachable functions and none took the kprobe",
                p.function,
                names.len()
            ),
        )
        .hint("check the pattern against /sys/kernel/tracing/available_filter_functions"));
    }
    eprintln!(
        "ebpf-run: {probe}: {}: {attached} functions match `{pattern}`{}",
        p.function,
        if refused > 0 {
            format!(" ({refused} refused the kprobe)")
        } else {
            String::new()
        }
    );
    Ok(())
}

/// Fills attach points written `{NAME}` (funccount's `kprobe/{pattern}`) with the string global NAME
/// of the probe, as the tool's options set it.
pub fn resolve_templates(
    probe: &ProbeObject,
    plan: &mut Vec<PlannedProgram>,
) -> Result<(), Failure> {
    // A probe with both `kprobe/{NAME}` and `uprobe/{NAME}` (funccount) keeps the one the value is
    // for: `PATH:PATTERN` (or `LIB:PATTERN`, `p:LIB:PATTERN`) is user space, anything else the kernel.
    let user_spec =
        |name: &str| crate::globals::read_string(probe, name).is_some_and(|v| v.contains(':'));
    plan.retain(|p| match &p.point {
        AttachPoint::Kprobe(f) | AttachPoint::Kretprobe(f) => {
            template_name(f).is_none_or(|n| !user_spec(n))
        }
        AttachPoint::Uprobe { func, .. } => template_name(func).is_none_or(user_spec),
        _ => true,
    });
    for p in plan.iter_mut() {
        if let AttachPoint::Uprobe { func, ret, .. } = &p.point
            && let Some(name) = template_name(func)
        {
            let value = crate::globals::read_string(probe, name).unwrap_or_default();
            let spec = value.strip_prefix("p:").unwrap_or(&value);
            let Some((path, pattern)) = spec
                .rsplit_once(':')
                .filter(|(a, b)| !a.is_empty() && !b.is_empty())
            else {
                return Err(Failure::new(
                    Exit::Usage,
                    format!(
                        "probe {}: `{value}` is not LIBRARY:PATTERN or PATH:PATTERN",
                        probe.name
                    ),
                )
                .hint(format!(
                    "as BCC's: ebpf-run {} 'c:malloc*' or '/usr/bin/app:handle_*'",
                    probe.name
                )));
            };
            p.point = AttachPoint::UprobePattern {
                path: PathBuf::from(path),
                pattern: pattern.to_owned(),
                ret: *ret,
            };
        }
    }
    for p in plan.iter_mut() {
        if let AttachPoint::PerfEvent { freq, setting } = &mut p.point {
            if let Some(hz) = setting
                .take()
                .and_then(|name| crate::globals::read_uint(probe, &name))
            {
                if hz == 0 {
                    return Err(Failure::new(
                        Exit::Usage,
                        format!(
                            "probe {}: a sampling rate of 0 Hz samples nothing",
                            probe.name
                        ),
                    )
                    .hint("give a rate of at least 1 (-F HZ)"));
                }
                *freq = hz;
            }
            continue;
        }
        let (AttachPoint::Kprobe(f) | AttachPoint::Kretprobe(f)) = &mut p.point else {
            continue;
        };
        let Some(name) = template_name(f) else {
            continue;
        };
        let value = crate::globals::read_string(probe, name).unwrap_or_default();
        if value.is_empty() {
            return Err(Failure::new(
                Exit::Usage,
                format!(
                    "probe {}: program `{}` attaches where `{name}` says, and it is empty",
                    probe.name, p.function
                ),
            )
            .hint(format!(
                "give it: ebpf-run {} '<pattern>' (ebpf-run {} -h), or --set {name}=...",
                probe.name, probe.name
            )));
        }
        *f = value;
    }
    Ok(())
}

/// `NAME` of an attach point written `{NAME}`.
fn template_name(point: &str) -> Option<&str> {
    point.strip_prefix('{').and_then(|r| r.strip_suffix('}'))
}

/// Attaches one uprobe program to every function of `path` matching `pattern` (a glob, or one name),
/// each through a BPF link whose cookie numbers it; the names go to `keep.names` for the dump.
fn attach_uprobe_pattern(
    probe: &str,
    p: &PlannedProgram,
    u: &UProbe,
    (path, pattern, ret): (&Path, &str, bool),
    keep: &mut Keep,
) -> Result<(), Failure> {
    let fail = |what: String| {
        Failure::new(
            Exit::Attach,
            format!("probe {probe}: program `{}`: {what}", p.function),
        )
    };
    let file = uprobe::find_library(path).map_err(&fail)?;
    let data = std::fs::read(&file).map_err(|e| fail(format!("{}: {e}", file.display())))?;
    let functions =
        uprobe::functions(&data).map_err(|e| fail(format!("{}: {e}", file.display())))?;
    let matching: Vec<&(String, u64)> = functions
        .iter()
        .filter(|(name, _)| ebpf_pack_object::glob::wildcard_match(pattern, name))
        .collect();
    if matching.is_empty() {
        return Err(fail(format!(
            "no function of {} matches `{pattern}`",
            file.display()
        ))
        .hint("list them with: nm -D --defined-only FILE (or nm FILE for an unstripped one)"));
    }
    if matching.len() > MAX_PATTERN_PROBES {
        return Err(Failure::new(
            Exit::Usage,
            format!(
                "probe {probe}: `{pattern}` matches {} functions of {}, more than {MAX_PATTERN_PROBES}",
                matching.len(),
                file.display()
            ),
        )
        .hint("narrow the pattern"));
    }
    let prog = fd(u.fd()).map_err(|e| fail(e.to_string()))?;
    for (name, offset) in matching.iter().map(|m| (&m.0, m.1)) {
        let cookie = keep.names.len() as u64 + 1;
        let (event, link) = sys::attach_uprobe_with_cookie(prog, &file, offset, ret, cookie)
            .map_err(|e| {
                let why = if e.raw_os_error() == Some(libc::EINVAL) {
                    format!("{e} (BPF cookies on uprobes need Linux 5.15)")
                } else {
                    e.to_string()
                };
                fail(format!("cannot attach to {}:{name}: {why}", file.display()))
            })?;
        keep.push(event);
        keep.push(link);
        keep.names.push(name.clone());
    }
    eprintln!(
        "ebpf-run: {probe}: {}: {} functions of {} match `{pattern}`",
        p.function,
        matching.len(),
        file.display()
    );
    Ok(())
}

/// Samples every CPU with the software cpu-clock event (works in VMs without a PMU); CPUs that are
/// possible but offline are skipped.
fn attach_perf(e: &PerfEvent, freq: u64, keep: &mut Keep) -> Result<(), ProgramError> {
    let prog = fd(e.fd())?;
    let cpus = crate::dump::read_possible_cpu_slots().unwrap_or(1) as u32;
    let mut last = None;
    let before = keep.fds.len();
    for cpu in 0..cpus {
        match sys::attach_cpu_clock(prog, cpu, freq) {
            Ok(event) => keep.push(event),
            Err(e) => last = Some(e),
        }
    }
    match last {
        Some(e) if keep.fds.len() == before => Err(ProgramError::IOError(e)),
        _ => Ok(()),
    }
}

/// The fd of a loaded program, as an I/O result.
fn fd(fd: Result<&ProgramFd, ProgramError>) -> std::io::Result<BorrowedFd<'_>> {
    fd.map(|f| f.as_fd())
        .map_err(|e| std::io::Error::other(e.to_string()))
}

/// Links a loaded program to a network interface with a BPF link (XDP: kernel 5.9, tcx: 6.6).
fn link(
    fd: Result<&ProgramFd, ProgramError>,
    iface: &str,
    at: u32,
) -> Result<OwnedFd, ProgramError> {
    let index = sys::if_index(iface).map_err(ProgramError::IOError)?;
    sys::link_create(fd?.as_fd(), index, at).map_err(ProgramError::IOError)
}

/// Attaches a classifier the pre-6.6 way: a netlink filter on the interface's clsact qdisc, added
/// for this run when there is none (and then deleted at exit by `keep`); aya detaches the filter when
/// the program is dropped.
fn attach_tc_netlink(
    c: &mut SchedClassifier,
    iface: &str,
    egress: bool,
    keep: &mut Keep,
) -> Result<(), ProgramError> {
    let index = sys::if_index(iface).map_err(ProgramError::IOError)?;
    if let Some(added) = sys::Clsact::add(index).map_err(ProgramError::IOError)? {
        keep.qdiscs.push(added);
    }
    let kind = if egress {
        TcAttachType::Egress
    } else {
        TcAttachType::Ingress
    };
    c.attach_with_options(iface, kind, TcAttachOptions::Netlink(NlOptions::default()))
        .map(drop)
}

/// Attaches a uprobe at the file offset of `func` in `path` (a library name is searched for).
fn attach_uprobe(u: &UProbe, path: &Path, func: &str, ret: bool) -> Result<OwnedFd, ProgramError> {
    let bad = |what: String| ProgramError::IOError(std::io::Error::other(what));
    let file = uprobe::find_binary(path).map_err(bad)?;
    let data = std::fs::read(&file).map_err(ProgramError::IOError)?;
    let offset =
        uprobe::symbol_offset(&data, func).map_err(|e| bad(format!("{}: {e}", file.display())))?;
    sys::attach_uprobe(fd(u.fd())?, &file, offset, ret).map_err(ProgramError::IOError)
}

fn find<'e>(
    probe: &str,
    ebpf: &'e mut Ebpf,
    p: &PlannedProgram,
) -> Result<&'e mut Program, Failure> {
    ebpf.program_mut(&p.function).ok_or_else(|| {
        Failure::new(
            Exit::BadInput,
            format!(
                "probe {probe}: aya found no program `{}` in section `{}`",
                p.function, p.section
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(section: &str) -> ProgramSpec {
        ProgramSpec {
            function: "f".into(),
            section: section.into(),
            attach: AttachKind::from_section(section),
        }
    }

    fn opts() -> AttachOptions {
        AttachOptions {
            iface: Some("eth0".into()),
            cgroup: Some("/cg".into()),
            freq: None,
            uprobe_path: Some("/bin/t".into()),
            uprobe_func: Some("f".into()),
            tc_netlink: false,
            targets: vec![("g".into(), "vfs_read".into())],
        }
    }

    #[test]
    fn supported_sections_plan_their_attach_points() {
        let cases = [
            (
                "tracepoint/syscalls/sys_enter_openat",
                AttachPoint::Tracepoint {
                    category: "syscalls".into(),
                    name: "sys_enter_openat".into(),
                },
            ),
            (
                "tp/sched/sched_switch",
                AttachPoint::Tracepoint {
                    category: "sched".into(),
                    name: "sched_switch".into(),
                },
            ),
            (
                "raw_tp/sys_enter",
                AttachPoint::RawTracepoint("sys_enter".into()),
            ),
            (
                "raw_tracepoint/sys_exit",
                AttachPoint::RawTracepoint("sys_exit".into()),
            ),
            (
                "kprobe/do_unlinkat",
                AttachPoint::Kprobe("do_unlinkat".into()),
            ),
            (
                "kretprobe/do_unlinkat",
                AttachPoint::Kretprobe("do_unlinkat".into()),
            ),
            (
                "tp_btf/sched_switch",
                AttachPoint::TpBtf("sched_switch".into()),
            ),
            ("fentry/vfs_read", AttachPoint::Fentry("vfs_read".into())),
            ("fexit/vfs_read", AttachPoint::Fexit("vfs_read".into())),
            (
                "uprobe/libc.so.6:getpid",
                AttachPoint::Uprobe {
                    path: "libc.so.6".into(),
                    func: "getpid".into(),
                    ret: false,
                },
            ),
            (
                "uretprobe//usr/bin/x:main",
                AttachPoint::Uprobe {
                    path: "/usr/bin/x".into(),
                    func: "main".into(),
                    ret: true,
                },
            ),
            (
                "uprobe",
                AttachPoint::Uprobe {
                    path: "/bin/t".into(),
                    func: "f".into(),
                    ret: false,
                },
            ),
            (
                "perf_event",
                AttachPoint::PerfEvent {
                    freq: DEFAULT_FREQ,
                    setting: None,
                },
            ),
            (
                "uprobe/{pattern}",
                AttachPoint::Uprobe {
                    path: PathBuf::new(),
                    func: "{pattern}".into(),
                    ret: false,
                },
            ),
            (
                "perf_event/{sample_freq}",
                AttachPoint::PerfEvent {
                    freq: DEFAULT_FREQ,
                    setting: Some("sample_freq".into()),
                },
            ),
            ("xdp", AttachPoint::Xdp("eth0".into())),
            (
                "classifier",
                AttachPoint::Tc {
                    iface: "eth0".into(),
                    egress: false,
                    netlink: false,
                },
            ),
            (
                "classifier/egress",
                AttachPoint::Tc {
                    iface: "eth0".into(),
                    egress: true,
                    netlink: false,
                },
            ),
            ("socket", AttachPoint::Socket("eth0".into())),
            (
                "cgroup_skb/egress",
                AttachPoint::CgroupSkb {
                    cgroup: "/cg".into(),
                    egress: true,
                },
            ),
        ];
        for (section, want) in cases {
            assert_eq!(
                plan_program("p", &spec(section), &opts()),
                Ok(want),
                "{section}"
            );
        }
    }

    #[test]
    fn missing_attach_options_are_usage_errors_naming_the_program() {
        let none = AttachOptions {
            cgroup: Some("/cg".into()),
            ..AttachOptions::default()
        };
        for (section, option) in [
            ("xdp", "--iface"),
            ("classifier", "--iface"),
            ("socket", "--iface"),
            ("uprobe", "--uprobe-path"),
            ("uretprobe", "--uprobe-func"),
        ] {
            let err = plan_program("p", &spec(section), &none).expect_err(section);
            assert_eq!(err.exit, Exit::Usage, "{section}");
            assert!(
                err.message.contains(option) && err.message.contains("`f`"),
                "{}",
                err.message
            );
        }
        // A function without its binary: the binary comes from --attach or --uprobe-path.
        let err = plan_program("p", &spec("uretprobe/readline"), &none).expect_err("no path");
        assert_eq!(err.exit, Exit::Usage);
        assert!(
            err.hint
                .as_deref()
                .is_some_and(|h| h.contains("--attach f=PATH:readline")),
            "{err:?}"
        );
        assert_eq!(
            plan_program("p", &spec("uretprobe/readline"), &opts()),
            Ok(AttachPoint::Uprobe {
                path: "/bin/t".into(),
                func: "readline".into(),
                ret: true
            })
        );
        for bad in ["uprobe/:f", "classifier/sideways"] {
            let err = plan_program("p", &spec(bad), &opts()).expect_err(bad);
            assert_eq!(err.exit, Exit::BadInput, "{bad}");
        }
        // Bare run-time sections without --attach name the option and the program.
        for (section, want) in [
            ("kprobe", "--attach f=FUNCTION"),
            ("fentry", "--attach f=FUNCTION"),
            ("tracepoint", "--attach f=CATEGORY/NAME"),
            ("raw_tp", "--attach f=TRACEPOINT"),
        ] {
            let err = plan_program("p", &spec(section), &none).expect_err(section);
            assert_eq!(err.exit, Exit::Usage, "{section}");
            assert!(
                err.hint.as_deref().is_some_and(|h| h.contains(want)),
                "{section}: {err:?}"
            );
        }
        // With it: the target given, a tracepoint also as bpftrace spells it.
        let given = |target: &str| AttachOptions {
            targets: vec![("f".into(), target.into())],
            ..AttachOptions::default()
        };
        assert_eq!(
            plan_program("p", &spec("kretprobe"), &given("vfs_read")),
            Ok(AttachPoint::Kretprobe("vfs_read".into()))
        );
        assert_eq!(
            plan_program("p", &spec("tp"), &given("sched:sched_switch")),
            Ok(AttachPoint::Tracepoint {
                category: "sched".into(),
                name: "sched_switch".into()
            })
        );
        assert_eq!(
            plan_program("p", &spec("uprobe"), &given("/bin/sh:main")),
            Ok(AttachPoint::Uprobe {
                path: "/bin/sh".into(),
                func: "main".into(),
                ret: false
            })
        );
        // aya 0.14 cannot parse `tc` sections: refused by name before anything loads.
        let err = plan_program("p", &spec("tc"), &opts()).expect_err("tc");
        assert_eq!(err.exit, Exit::Attach);
        assert!(err.message.contains("`classifier`"), "{}", err.message);
    }

    #[test]
    fn kprobes_and_raw_tracepoints_fall_back_for_their_fentry_and_tp_btf_twins() {
        let planned = |point: AttachPoint| PlannedProgram {
            function: "f".into(),
            section: "s".into(),
            point,
        };
        let plan = [
            planned(AttachPoint::Fentry("vfs_read".into())),
            planned(AttachPoint::Kprobe("vfs_read".into())),
            planned(AttachPoint::Kprobe("vfs_write".into())),
            planned(AttachPoint::Kretprobe("vfs_read".into())),
            planned(AttachPoint::TpBtf("sched_switch".into())),
            planned(AttachPoint::RawTracepoint("sched_switch".into())),
            planned(AttachPoint::RawTracepoint("sched_wakeup".into())),
        ];
        assert_eq!(
            fallbacks(&plan),
            [None, Some(0), None, None, None, Some(4), None],
            "a kretprobe is no fexit's twin here: there is no fexit"
        );
    }

    #[test]
    fn usdt_sections_are_refused_naming_the_gap() {
        for section in ["usdt", "usdt/libjvm.so:hotspot:gc__end"] {
            let err = plan_program("p", &spec(section), &opts()).expect_err(section);
            assert_eq!(err.exit, Exit::Attach);
            assert!(
                err.message.contains("USDT probes are not supported"),
                "{err:?}"
            );
        }
    }

    #[test]
    fn unknown_sections_are_bad_objects() {
        for section in ["lsm/file_open", "tracepoint/syscalls", "kprobe/", "weird"] {
            let err = plan_program("p", &spec(section), &opts()).expect_err(section);
            assert_eq!(err.exit, Exit::BadInput, "{section}");
            assert!(err.message.contains(section));
        }
    }
}
