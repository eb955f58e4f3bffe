//! Deciding where each program attaches (from its section, before touching the kernel), then loading the
//! object through aya and attaching every program, with one clear diagnostic per failure.

use std::path::{Path, PathBuf};

use aya::programs::{Program, ProgramError};
use aya::{Btf, Ebpf, EbpfError, EbpfLoader};
use ebpf_pack_manifest::AttachKind;

use crate::failure::{Exit, Failure, PRIVILEGE_HINT, chain, contains, os_error};
use crate::probe::{ProbeObject, ProgramSpec};

/// Verifier log lines shown on a load failure.
const LOG_TAIL: usize = 20;
/// Where aya pins maps that ask for `LIBBPF_PIN_BY_NAME`.
const PIN_DIR: &str = "/sys/fs/bpf";
/// `ENOTSUPP` (kernel-internal, leaks to user space from the JIT).
const ENOTSUPP: i32 = 524;

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
    /// Entry of a kernel function.
    Kprobe(String),
    /// Return of a kernel function.
    Kretprobe(String),
}

impl AttachPoint {
    /// `tracepoint syscalls/sys_enter_openat`, `kprobe do_sys_openat2`, …
    pub fn describe(&self) -> String {
        match self {
            AttachPoint::Tracepoint { category, name } => format!("tracepoint {category}/{name}"),
            AttachPoint::RawTracepoint(n) => format!("raw_tracepoint {n}"),
            AttachPoint::Kprobe(f) => format!("kprobe {f}"),
            AttachPoint::Kretprobe(f) => format!("kretprobe {f}"),
        }
    }
}

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

/// Decides where a program attaches, or why this loader cannot attach it.
pub fn plan_program(probe: &str, p: &ProgramSpec) -> Result<AttachPoint, Failure> {
    let subject = format!(
        "probe {probe}: program `{}` (section `{}`)",
        p.function, p.section
    );
    let Some((kind, point)) = &p.attach else {
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
    let point = point.clone().unwrap_or_default();
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
        AttachKind::Kprobe => AttachPoint::Kprobe(point),
        AttachKind::Kretprobe => AttachPoint::Kretprobe(point),
        other => {
            return Err(Failure::new(
                Exit::Attach,
                format!(
                    "{subject}: {} programs are not supported by this ebpf-run yet",
                    other.as_str()
                ),
            )
            .hint("supported: tracepoint, raw_tracepoint, kprobe, kretprobe"));
        }
    })
}

/// Plans every program of a probe; the first problem wins.
pub fn plan(probe: &ProbeObject) -> Result<Vec<PlannedProgram>, Failure> {
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
                point: plan_program(&probe.name, p)?,
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

/// Creates the object's maps and prepares its programs (nothing is attached yet).
///
/// Maps that ask to be pinned by name are unpinned right away when this run created the pin, so
/// nothing outlives the process.
pub fn load(probe: &ProbeObject, btf: &KernelBtf) -> Result<Ebpf, Failure> {
    let new_pins: Vec<PathBuf> = probe
        .maps
        .iter()
        .filter(|m| m.pinning != 0)
        .map(|m| Path::new(PIN_DIR).join(&m.name))
        .filter(|p| !p.exists())
        .collect();
    let mut loader = EbpfLoader::new();
    match btf {
        KernelBtf::Parsed(b) => {
            loader.btf(Some(b));
        }
        KernelBtf::AyaDefault => {}
        KernelBtf::None => {
            loader.btf(None);
        }
    }
    let result = loader.load(&probe.data);
    for pin in new_pins {
        let _ = std::fs::remove_file(pin);
    }
    result.map_err(|e| object_failure(&probe.name, &e))
}

/// Diagnoses a failure of aya's object load (map creation, relocation, parsing).
fn object_failure(probe: &str, e: &EbpfError) -> Failure {
    let text = chain(e);
    let f = match e {
        EbpfError::ParseError(_) => {
            return Failure::new(Exit::BadInput, format!("probe {probe}: bad object: {text}"));
        }
        EbpfError::BtfRelocationError(_) => {
            Failure::new(Exit::Load, format!("probe {probe}: CO-RE relocation failed: {text}")).hint(
                "the kernel BTF lacks a type or field the probe reads; check that --btf or the bundle's \
                 btf/vmlinux.btf matches the running kernel",
            )
        }
        _ => Failure::new(Exit::Load, format!("probe {probe}: cannot load: {text}")),
    };
    with_errno_hint(f, os_error(e))
}

/// Adds the privilege hint for EPERM/EACCES when no hint is set yet.
fn with_errno_hint(f: Failure, errno: Option<i32>) -> Failure {
    match errno {
        Some(libc::EPERM | libc::EACCES) if f.hint.is_none() => f.hint(PRIVILEGE_HINT),
        _ => f,
    }
}

/// Loads every planned program into the kernel (the verifier runs here); nothing is attached yet.
pub fn load_programs(probe: &str, ebpf: &mut Ebpf, plan: &[PlannedProgram]) -> Result<(), Failure> {
    for p in plan {
        let loaded = match find(probe, ebpf, p)? {
            Program::TracePoint(t) => t.load(),
            Program::RawTracePoint(t) => t.load(),
            Program::KProbe(k) => k.load(),
            _ => Err(ProgramError::UnexpectedProgramType),
        };
        loaded.map_err(|e| load_failure(probe, p, e))?;
    }
    Ok(())
}

/// Attaches every loaded program at its planned point. The links live as long as `ebpf`.
pub fn attach_programs(
    probe: &str,
    ebpf: &mut Ebpf,
    plan: &[PlannedProgram],
) -> Result<(), Failure> {
    for p in plan {
        let attached = match (find(probe, ebpf, p)?, &p.point) {
            (Program::TracePoint(t), AttachPoint::Tracepoint { category, name }) => {
                t.attach(category, name).map(drop)
            }
            (Program::RawTracePoint(t), AttachPoint::RawTracepoint(name)) => {
                t.attach(name).map(drop)
            }
            (Program::KProbe(k), AttachPoint::Kprobe(f) | AttachPoint::Kretprobe(f)) => {
                k.attach(f, 0).map(drop)
            }
            _ => Err(ProgramError::UnexpectedProgramType),
        };
        attached.map_err(|e| attach_failure(probe, p, &e))?;
    }
    Ok(())
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

/// Diagnoses a program the kernel refused to load, with the tail of the verifier log.
fn load_failure(probe: &str, p: &PlannedProgram, e: ProgramError) -> Failure {
    let subject = format!("probe {probe}: program `{}` ({})", p.function, p.section);
    let ProgramError::LoadError {
        io_error,
        verifier_log,
    } = &e
    else {
        let f = Failure::new(Exit::Load, format!("{subject}: cannot load: {}", chain(&e)));
        return with_errno_hint(f, os_error(&e));
    };
    let log = verifier_log.to_string();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    let errno = io_error.raw_os_error();
    let verdict = if lines.is_empty() {
        "the kernel refused to load it"
    } else {
        "the verifier rejected it"
    };
    let mut f = Failure::new(Exit::Load, format!("{subject}: {verdict}: {io_error}"));
    if !lines.is_empty() {
        let tail = &lines[lines.len().saturating_sub(LOG_TAIL)..];
        f.details
            .push(format!("verifier log (last {} lines):", tail.len()));
        f.details.extend(tail.iter().map(|l| format!("  {l}")));
    }
    match errno {
        Some(ENOTSUPP) => f.hint(
            "the JIT cannot translate an instruction (e.g. BPF atomics on 32-bit ARM): avoid it in \
             the probe, or disable the JIT (sysctl net.core.bpf_jit_enable=0)",
        ),
        Some(libc::EPERM) if lines.is_empty() => f.hint(PRIVILEGE_HINT),
        _ => f,
    }
}

/// Diagnoses a program that loaded but could not be attached.
fn attach_failure(probe: &str, p: &PlannedProgram, e: &ProgramError) -> Failure {
    let subject = format!(
        "probe {probe}: program `{}`: cannot attach to {}",
        p.function,
        p.point.describe()
    );
    let text = chain(e);
    let errno = os_error(e);
    let f = Failure::new(Exit::Attach, format!("{subject}: {text}"));
    if contains(&text, "tracefs not found") {
        return f.hint(
            "mount tracefs: mount -t tracefs tracefs /sys/kernel/tracing (needs CONFIG_TRACING)",
        );
    }
    let not_found = matches!(errno, Some(libc::ENOENT | libc::EINVAL));
    match &p.point {
        AttachPoint::Tracepoint { category, name } if errno == Some(libc::ENOENT) => Failure::new(
            Exit::Attach,
            format!("{subject}: this kernel has no tracepoint {category}/{name}"),
        )
        .hint(format!(
            "see which exist: ls /sys/kernel/tracing/events/{category}/ (syscall tracepoints need \
                 CONFIG_FTRACE_SYSCALLS)"
        )),
        AttachPoint::RawTracepoint(name) if not_found => Failure::new(
            Exit::Attach,
            format!("{subject}: this kernel has no raw tracepoint {name}"),
        ),
        AttachPoint::Kprobe(func) | AttachPoint::Kretprobe(func) if not_found => f.hint(format!(
            "kprobes need CONFIG_KPROBES, and {func} must be listed in /proc/kallsyms and not be \
             inlined or notrace"
        )),
        _ => with_errno_hint(f, errno),
    }
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
        ];
        for (section, want) in cases {
            assert_eq!(plan_program("p", &spec(section)), Ok(want), "{section}");
        }
    }

    #[test]
    fn unsupported_kinds_fail_with_attach_code_and_name_the_program() {
        for section in [
            "xdp",
            "uprobe",
            "fentry/do_unlinkat",
            "tp_btf/sched_switch",
            "socket",
        ] {
            let err = plan_program("p", &spec(section)).expect_err(section);
            assert_eq!(err.exit, Exit::Attach, "{section}");
            assert!(
                err.message.contains("not supported by this ebpf-run yet"),
                "{}",
                err.message
            );
            assert!(err.message.contains("`f`") && err.message.contains(section));
        }
    }

    #[test]
    fn unknown_sections_are_bad_objects() {
        for section in ["lsm/file_open", "tracepoint/syscalls", "weird"] {
            let err = plan_program("p", &spec(section)).expect_err(section);
            assert_eq!(err.exit, Exit::BadInput, "{section}");
            assert!(err.message.contains(section));
        }
    }
}
