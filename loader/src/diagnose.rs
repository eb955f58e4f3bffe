//! One clear diagnostic per failure of loading or attaching: the verifier log's tail (and the whole
//! log in a file), the privilege hint, the missing tracepoint, kprobe or trampoline support.

use aya::EbpfError;
use aya::programs::ProgramError;

use crate::attach::{AttachPoint, PlannedProgram};
use crate::failure::{Exit, Failure, PRIVILEGE_HINT, chain, contains, os_error};

/// Verifier log lines shown on a load failure.
const LOG_TAIL: usize = 20;
/// `ENOTSUPP` (kernel-internal, leaks to user space from the JIT).
const ENOTSUPP: i32 = 524;

/// Diagnoses a failure of aya's object load (map creation, relocation, parsing).
pub fn object_failure(probe: &str, e: &EbpfError) -> Failure {
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
pub fn with_errno_hint(f: Failure, errno: Option<i32>) -> Failure {
    match errno {
        Some(libc::EPERM | libc::EACCES) if f.hint.is_none() => f.hint(PRIVILEGE_HINT),
        _ => f,
    }
}

/// Diagnoses a program the kernel refused to load, with the tail of the verifier log.
pub fn load_failure(probe: &str, p: &PlannedProgram, e: ProgramError) -> Failure {
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
        let tail = lines
            .get(lines.len().saturating_sub(LOG_TAIL)..)
            .unwrap_or_default();
        f.details
            .push(format!("verifier log (last {} lines):", tail.len()));
        f.details.extend(tail.iter().map(|l| format!("  {l}")));
        f.details.push(save_verifier_log(probe, &p.function, &log));
    }
    // aya, as libbpf, turns an instruction whose CO-RE relocation found no match in the kernel's
    // BTF into `call 0xbad2310`, which the verifier then refuses as an unknown function.
    if log.contains("unknown#195896080") {
        return f.hint(
            "the object reads a kernel type or field this kernel does not have (a CO-RE relocation \
             matched nothing, so its instruction was poisoned, as libbpf poisons it): the probe \
             needs a variant for this kernel (bpf_core_field_exists) or another kernel",
        );
    }
    let trampoline = matches!(p.point, AttachPoint::Fentry(_) | AttachPoint::Fexit(_));
    match errno {
        Some(libc::EPERM | libc::EINVAL | ENOTSUPP) if trampoline && lines.is_empty() => f.hint(
            "this kernel refuses BPF trampolines (fentry/fexit need CONFIG_DYNAMIC_FTRACE_WITH_\
             DIRECT_CALLS, a JIT with trampoline support, and no lockdown); use a kprobe or \
             tracepoint instead",
        ),
        Some(ENOTSUPP) => f.hint(
            "the JIT cannot translate an instruction (e.g. BPF atomics on 32-bit ARM): avoid it in \
             the probe, or disable the JIT (sysctl net.core.bpf_jit_enable=0)",
        ),
        Some(libc::EPERM) if lines.is_empty() => f.hint(PRIVILEGE_HINT),
        _ => f,
    }
}

/// Writes a whole verifier log to `$TMPDIR/ebpf-run-PROBE-FUNCTION.verifier.log` (the tail alone
/// rarely shows where the trouble started) and says where it is, or why it could not be written.
fn save_verifier_log(probe: &str, function: &str, log: &str) -> String {
    let name = format!(
        "ebpf-run-{probe}-{function}-{}.verifier.log",
        std::process::id()
    )
    .replace('/', "_");
    let path = std::env::temp_dir().join(name);
    // A new file only (O_EXCL): ebpf-run runs as root, and in a shared /tmp a name someone else
    // made first (a symlink to a file of root's) must not be written through.
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, log.as_bytes()));
    match written {
        Ok(()) => format!(
            "whole verifier log ({} lines): {}",
            log.lines().count(),
            path.display()
        ),
        Err(e) => format!(
            "(the whole verifier log could not be written to {}: {e})",
            path.display()
        ),
    }
}

/// Diagnoses a program that loaded but could not be attached.
pub fn attach_failure(probe: &str, p: &PlannedProgram, e: &ProgramError) -> Failure {
    let subject = format!(
        "probe {probe}: program `{}`: cannot attach to {}",
        p.function,
        p.point.describe()
    );
    let text = chain(e);
    let errno = os_error(e);
    let f = Failure::new(Exit::Attach, format!("{subject}: {text}"));
    if contains(&text, "tracefs not found") {
        // aya says "not found" also when tracefs is mounted but this user may not read it.
        let tracefs = std::path::Path::new("/sys/kernel/tracing");
        if let Err(e) = std::fs::read_dir(tracefs)
            && e.kind() == std::io::ErrorKind::PermissionDenied
        {
            return Failure::new(
                Exit::Attach,
                format!(
                    "{subject}: tracefs at {} is not readable by this user",
                    tracefs.display()
                ),
            )
            .hint(
                "run as root, or mount tracefs so this user may read it (mount -o remount,mode=755 \
                 /sys/kernel/tracing, or gid=GROUP with mode=750)",
            );
        }
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
        AttachPoint::Fentry(_) | AttachPoint::Fexit(_)
            if matches!(errno, Some(ENOTSUPP | libc::EOPNOTSUPP | libc::EINVAL)) =>
        {
            f.hint(
                "this kernel cannot attach BPF trampolines to kernel functions (fentry/fexit need \
                 CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS: arm64 from 6.4); use a kprobe instead",
            )
        }
        // The netlink path (kernels before 6.6, or --tc-netlink) needs the clsact qdisc and the bpf
        // classifier; modular kernels (Debian's) answer ENOENT when their modules cannot be loaded.
        AttachPoint::Tc { .. }
            if errno == Some(libc::ENOENT) || contains(&text, "(os error 2)") =>
        {
            f.hint(
                "tc without tcx links (kernels before 6.6) needs the clsact qdisc and the bpf \
                 classifier: CONFIG_NET_SCH_INGRESS and CONFIG_NET_CLS_BPF, on a modular kernel \
                 `modprobe sch_ingress cls_bpf`",
            )
        }
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

    fn planned(point: AttachPoint) -> PlannedProgram {
        PlannedProgram {
            function: "f".into(),
            section: "s".into(),
            point,
        }
    }

    /// A failed system call as aya reports it (the errno is the error's source).
    fn errno(code: i32) -> ProgramError {
        ProgramError::SyscallError(aya::sys::SyscallError {
            call: "bpf_link_create",
            io_error: std::io::Error::from_raw_os_error(code),
        })
    }

    #[test]
    fn attach_failures_name_what_the_kernel_lacks() {
        let tc = planned(AttachPoint::Tc {
            iface: "lo".into(),
            egress: false,
            netlink: true,
        });
        let f = attach_failure("tcount", &tc, &errno(libc::ENOENT));
        assert_eq!(f.exit, Exit::Attach);
        assert!(
            f.message
                .starts_with("probe tcount: program `f`: cannot attach to tc lo ingress"),
            "{}",
            f.message
        );
        let hint = f.hint.as_deref().unwrap_or_default();
        assert!(hint.contains("modprobe sch_ingress cls_bpf"), "{hint}");
        // Another errno on tc is not blamed on missing modules.
        let other = attach_failure("tcount", &tc, &errno(libc::EBUSY));
        assert!(
            !other
                .hint
                .as_deref()
                .unwrap_or_default()
                .contains("modprobe"),
            "{:?}",
            other.hint
        );
        let fentry = planned(AttachPoint::Fentry("do_sys_openat2".into()));
        let f = attach_failure("fcount", &fentry, &errno(ENOTSUPP));
        assert!(
            f.hint
                .as_deref()
                .unwrap_or_default()
                .contains("arm64 from 6.4"),
            "{:?}",
            f.hint
        );
    }
}
