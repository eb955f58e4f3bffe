//! Checks a board kernel's `.config` (the target's `kernel.config`) for the options eBPF tracing needs.

use ebpf_pack_object::kconfig::{KernelFacts, parse_config};

use crate::target::{BtfSource, Target};

/// What the board's kernel offers `.kconfig` externs, from the target's `kernel.version` and
/// `kernel.config` text (`config_path` names it in messages); `LINUX_HAS_*` are not judged on the
/// host (the board finds them when it runs).
pub fn board_facts(target: &Target, text: &str, config_path: &str) -> KernelFacts {
    KernelFacts {
        release: target.kernel.version.to_string(),
        config: Some(parse_config(text)),
        config_source: config_path.to_owned(),
        ..KernelFacts::default()
    }
}

/// [`board_facts`] of `target` when it names a `kernel.config`.
pub fn target_facts(target: &Target) -> Result<Option<KernelFacts>, crate::verify::VerifyError> {
    let Some(path) = &target.kernel.config else {
        return Ok(None);
    };
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| crate::verify::VerifyError {
        file: shown.clone(),
        problem: format!(
            "kernel.config of target {} cannot be read: {e}",
            target.name
        ),
        help: "point kernel.config at the board kernel's .config".into(),
    })?;
    Ok(Some(board_facts(target, &text, &shown)))
}

/// What a `.config` lacks: errors stop the build, warnings are printed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KconfigReport {
    /// Options without which the bundle cannot run at all.
    pub errors: Vec<String>,
    /// Options without which some probes or speed are lost.
    pub warnings: Vec<String>,
}

/// Whether `CONFIG_<name>=y` (or `=m`) is set in the text of a `.config`.
pub(crate) fn enabled(text: &str, name: &str) -> bool {
    let key = format!("CONFIG_{name}=");
    text.lines()
        .any(|l| l.strip_prefix(&key).is_some_and(|v| v == "y" || v == "m"))
}

/// Checks `.config` text against what the bundle needs.
pub fn check_kconfig(text: &str, btf: &BtfSource) -> KconfigReport {
    let mut r = KconfigReport::default();
    let required: &[(&str, &str)] = &[
        ("BPF", "the BPF core"),
        (
            "BPF_SYSCALL",
            "the bpf(2) system call: nothing loads without it",
        ),
        (
            "BPF_EVENTS",
            "attaching BPF programs to tracepoints and kprobes",
        ),
    ];
    for (name, why) in required {
        if !enabled(text, name) {
            r.errors.push(format!(
                "CONFIG_{name} is not set ({why}); enable it in the kernel"
            ));
        }
    }
    if *btf == BtfSource::Builtin && !enabled(text, "DEBUG_INFO_BTF") {
        r.errors.push(
            "CONFIG_DEBUG_INFO_BTF is not set, so the board has no /sys/kernel/btf/vmlinux for `kernel.btf: builtin`; \
             enable it, or set kernel.btf to this kernel's vmlinux so the bundle ships its own BTF"
                .into(),
        );
    }
    let wanted: &[(&str, &str)] = &[
        ("BPF_JIT", "programs run in the slower interpreter"),
        (
            "FTRACE_SYSCALLS",
            "syscalls/sys_enter_* tracepoints (opensnoop) are missing",
        ),
        ("KPROBES", "kprobe/kretprobe programs cannot attach"),
        ("KPROBE_EVENTS", "kprobe/kretprobe programs cannot attach"),
    ];
    for (name, loss) in wanted {
        if !enabled(text, name) {
            r.warnings.push(format!("CONFIG_{name} is not set: {loss}"));
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "CONFIG_BPF=y\nCONFIG_BPF_SYSCALL=y\nCONFIG_BPF_EVENTS=y\nCONFIG_DEBUG_INFO_BTF=y\n\
                        CONFIG_BPF_JIT=y\nCONFIG_FTRACE_SYSCALLS=y\nCONFIG_KPROBES=y\nCONFIG_KPROBE_EVENTS=y\n";

    #[test]
    fn complete_config_passes() {
        assert_eq!(
            check_kconfig(GOOD, &BtfSource::Builtin),
            KconfigReport::default()
        );
    }

    #[test]
    fn missing_syscall_is_an_error_and_missing_kprobes_a_warning() {
        let text = GOOD
            .replace("CONFIG_BPF_SYSCALL=y", "# CONFIG_BPF_SYSCALL is not set")
            .replace("CONFIG_KPROBES=y\n", "");
        let r = check_kconfig(&text, &BtfSource::Builtin);
        assert_eq!(r.errors.len(), 1, "{r:?}");
        assert!(r.errors[0].starts_with("CONFIG_BPF_SYSCALL is not set"));
        assert_eq!(
            r.warnings,
            ["CONFIG_KPROBES is not set: kprobe/kretprobe programs cannot attach"]
        );
    }

    #[test]
    fn no_btf_matters_only_for_builtin() {
        let text = GOOD.replace("CONFIG_DEBUG_INFO_BTF=y\n", "");
        assert_eq!(check_kconfig(&text, &BtfSource::Builtin).errors.len(), 1);
        assert!(
            check_kconfig(&text, &BtfSource::File("vmlinux".into()))
                .errors
                .is_empty()
        );
    }
}
