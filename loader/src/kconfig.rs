//! `.kconfig` externs (`extern u32 LINUX_KERNEL_VERSION __kconfig;`, `extern bool CONFIG_X __kconfig
//! __weak;`) given the running kernel's values before aya, which has no `.kconfig` support, loads
//! the objects: the kernel release, whether programs may call `bpf_get_attach_cookie`, whether
//! syscalls enter through `__<arch>_sys_*` wrappers, and the options of the kernel's `.config` —
//! `--kconfig FILE`, else `/boot/config-$(uname -r)`, else `/proc/config.gz`, as libbpf reads it.
//! Each fact is found only when an extern asks for it.

use std::path::{Path, PathBuf};

use crate::failure::{Exit, Failure};
use crate::kconfig_values::{self as values, KconfigExtern, KernelFacts};
use crate::probe::ProbeObject;

/// A kernel config's options, `(CONFIG_X, value)`.
type Options = Vec<(String, String)>;

/// The kernel-side prefix of syscall wrappers on this architecture (`__x64_sys_bpf`), as libbpf
/// names it; `None` where the kernel has none.
fn syscall_prefix() -> Option<&'static str> {
    match std::env::consts::ARCH {
        "x86_64" => Some("x64"),
        "x86" => Some("ia32"),
        "aarch64" => Some("arm64"),
        "arm" => Some("arm"),
        "s390x" => Some("s390x"),
        "riscv64" | "riscv32" => Some("riscv"),
        "mips" | "mips64" => Some("mips"),
        "powerpc64" => Some("powerpc64"),
        "powerpc" => Some("powerpc"),
        _ => None,
    }
}

/// Whether /proc/kallsyms holds this arch's `__<arch>_sys_bpf` wrapper.
fn has_syscall_wrapper() -> bool {
    let Some(prefix) = syscall_prefix() else {
        return false;
    };
    let wanted = format!("__{prefix}_sys_bpf");
    std::fs::read_to_string("/proc/kallsyms").is_ok_and(|text| {
        text.lines()
            .any(|l| l.rsplit(' ').next() == Some(wanted.as_str()))
    })
}

/// The text of a kernel config file, inflated when it is gzip (`/proc/config.gz`).
pub fn read_config(path: &Path) -> Result<String, String> {
    let data = std::fs::read(path).map_err(|e| e.to_string())?;
    crate::config_file::config_text(data)
}

/// The kernel config's options and where they came from, or where they were looked for.
/// A `--kconfig` file that cannot be read is refused.
fn kernel_config(
    given: Option<&Path>,
    release: &str,
) -> Result<(Option<Options>, String), Failure> {
    let candidates: Vec<PathBuf> = match given {
        Some(p) => vec![p.to_path_buf()],
        None => vec![
            PathBuf::from(format!("/boot/config-{release}")),
            PathBuf::from("/proc/config.gz"),
        ],
    };
    let mut tried = Vec::new();
    for path in &candidates {
        match read_config(path) {
            Ok(text) => {
                return Ok((
                    Some(values::parse_config(&text)),
                    path.display().to_string(),
                ));
            }
            Err(e) if given.is_some() => {
                return Err(Failure::new(
                    Exit::BadInput,
                    format!("--kconfig {}: cannot read: {e}", path.display()),
                )
                .hint("give the running kernel's .config, plain or gzip (/proc/config.gz)"));
            }
            Err(e) => tried.push(format!("{}: {e}", path.display())),
        }
    }
    Ok((None, tried.join("; ")))
}

/// The `.kconfig` externs of each probe, refusing a type no value can be given to.
pub fn externs_of(probes: &[ProbeObject]) -> Result<Vec<Vec<KconfigExtern>>, Failure> {
    probes
        .iter()
        .map(|probe| {
            values::kconfig_externs(&probe.data).map_err(|e| {
                Failure::new(Exit::BadInput, format!("probe {}: {e}", probe.name))
                    .hint("declare .kconfig externs with the types libbpf gives values to")
            })
        })
        .collect()
}

/// What this kernel offers the externs `all` ask for (each fact found only when asked for); `None`
/// when there are none. `given` is `--kconfig`.
pub fn facts(
    all: &[Vec<KconfigExtern>],
    given: Option<&Path>,
) -> Result<Option<KernelFacts>, Failure> {
    let wants = |name: &str| all.iter().flatten().any(|e| e.name == name);
    if all.iter().all(Vec::is_empty) {
        return Ok(None);
    }
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_owned();
    let (config, config_source) = if all.iter().flatten().any(|e| e.name.starts_with("CONFIG_")) {
        kernel_config(given, &release)?
    } else {
        (None, String::new())
    };
    let version = values::running_kernel_version(
        std::fs::read_to_string("/proc/version_signature")
            .ok()
            .as_deref(),
        &std::fs::read_to_string("/proc/sys/kernel/version").unwrap_or_default(),
        &release,
    );
    Ok(Some(KernelFacts {
        version,
        bpf_cookie: wants("LINUX_HAS_BPF_COOKIE") && crate::sys::has_bpf_cookie(),
        syscall_wrapper: wants("LINUX_HAS_SYSCALL_WRAPPER") && has_syscall_wrapper(),
        release,
        config,
        config_source,
    }))
}

/// Why probe `name`'s externs get no values here.
pub fn refusal(name: &str, errors: &[String]) -> Failure {
    Failure::new(
        Exit::Load,
        format!(
            "probe {name}: its .kconfig externs cannot be given values on this kernel: {}",
            errors.join("; ")
        ),
    )
    .hint(
        "pass --kconfig FILE with the running kernel's .config (or build the kernel with \
         CONFIG_IKCONFIG_PROC for /proc/config.gz), or declare the externs __weak",
    )
}

/// Gives the `.kconfig` externs of each probe their values on this kernel, rewriting the objects
/// (see [`values::fill`]). `given` is `--kconfig`. Returns the notes to print: `__weak` `CONFIG_*`
/// externs set to 0 because no config was found.
pub fn apply(probes: &mut [ProbeObject], given: Option<&Path>) -> Result<Vec<String>, Failure> {
    let all = externs_of(probes)?;
    let Some(facts) = facts(&all, given)? else {
        return Ok(Vec::new());
    };
    let mut notes = Vec::new();
    for (probe, externs) in probes.iter_mut().zip(all) {
        if externs.is_empty() {
            continue;
        }
        let big_endian = probe.btf.as_ref().is_some_and(|b| b.is_big_endian());
        let encoded = facts
            .values(&externs, big_endian)
            .map_err(|errors| refusal(&probe.name, &errors))?;
        let defaulted: Vec<&str> = externs
            .iter()
            .filter(|e| facts.config.is_none() && e.name.starts_with("CONFIG_"))
            .map(|e| e.name.as_str())
            .collect();
        if !defaulted.is_empty() {
            notes.push(format!(
                "{}: no kernel config ({}): __weak externs {} are 0",
                probe.name,
                facts.config_source,
                defaulted.join(", ")
            ));
        }
        probe.data = values::fill(&probe.data, &externs, &encoded).map_err(|e| {
            Failure::new(
                Exit::BadInput,
                format!(
                    "probe {}: cannot place its .kconfig externs: {e}",
                    probe.name
                ),
            )
        })?;
    }
    Ok(notes)
}
