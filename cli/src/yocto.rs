//! Target files for Yocto builds: `ebpf_pack.bbclass` hands bitbake's own facts (TARGET_ARCH,
//! SITEINFO_ENDIANNESS/BITS, TCLIBC, TARGET_FPU, RUST_HOST_SYS, the kernel's abiversion and `.config`) to
//! `ebpf-pack yocto-target`, which checks them and renders a schema-1 target file. Every route that
//! cannot work fails here, before clang runs, with the line to put in `local.conf` or the BSP layer.
//!
//! [`render_target`] is pure; [`yocto_target`] is the CLI edge that reads the two kernel files.

use std::fmt;
use std::path::PathBuf;

use crate::arch::{Arch, BpfCpu, KernelVersion, Libc};
use crate::commands::{EXIT_BAD_INPUT, Failure};
use crate::kconfig::check_kconfig;
use crate::target::{BtfSource, is_valid_name};

/// Yocto's `TARGET_ARCH` for each architecture ebpf-pack builds for: the one table of Yocto names.
/// The class's `COMPATIBLE_HOST` lists the same names (checked by tests/yocto_layer.rs).
pub const YOCTO_TARGET_ARCHES: &[(&str, Arch)] = &[
    ("x86_64", Arch::X86_64),
    ("aarch64", Arch::Arm64),
    ("arm", Arch::Arm),
    ("riscv64", Arch::Riscv64),
    ("mips", Arch::Mips),
    ("mipsel", Arch::Mipsel),
];

/// The architecture of a Yocto `TARGET_ARCH`, if ebpf-pack builds for it.
pub fn arch_of_target_arch(target_arch: &str) -> Option<Arch> {
    YOCTO_TARGET_ARCHES
        .iter()
        .find(|(name, _)| *name == target_arch)
        .map(|(_, arch)| *arch)
}

/// Where the probes' kernel types come from in a Yocto build (`EBPF_PACK_BTF`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum YoctoBtf {
    /// `builtin`: the committed per-arch vmlinux.h; the board's kernel must have CONFIG_DEBUG_INFO_BTF.
    Builtin,
    /// `vmlinux`: the image kernel's own vmlinux from the deploy dir (with .BTF, or DWARF for pahole).
    Vmlinux(String),
}

/// Bitbake's facts about the image, as the class passes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YoctoFacts {
    /// `MACHINE`; becomes the target name.
    pub machine: String,
    /// `TARGET_ARCH` (`aarch64`, `arm`, ...).
    pub target_arch: String,
    /// `SITEINFO_ENDIANNESS`: `le` or `be`.
    pub endianness: String,
    /// `SITEINFO_BITS`: `32` or `64`.
    pub bits: String,
    /// `TCLIBC`: `glibc` or `musl`.
    pub tclibc: String,
    /// `TARGET_FPU` (`hard`, `soft`, `softfp`, or empty off ARM).
    pub target_fpu: String,
    /// `RUST_HOST_SYS`: the triple the ebpf-run recipe built the loader for.
    pub rust_triple: String,
    /// Content of `STAGING_KERNEL_BUILDDIR/kernel-abiversion` (`6.18.5-yocto-standard`).
    pub kernel_abiversion: String,
    /// Path of the kernel's `.config` (written into the target file) and its text (checked here).
    pub kernel_config: (String, String),
    /// The BTF route.
    pub btf: YoctoBtf,
    /// `EBPF_PACK_BPF_CPU`, when set.
    pub bpf_cpu: Option<String>,
    /// `EBPF_PACK_PROBES`; empty means every probe of the recipe.
    pub probes: Vec<String>,
}

/// A fact that makes the build impossible, with the Yocto setting that fixes it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct YoctoError {
    /// What is wrong, naming the bitbake variable first.
    pub problem: String,
    /// What to set, and where.
    pub help: String,
}

impl fmt::Display for YoctoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\n  help: {}", self.problem, self.help)
    }
}

fn yerr(problem: impl Into<String>, help: impl Into<String>) -> YoctoError {
    YoctoError {
        problem: problem.into(),
        help: help.into(),
    }
}

/// Advice for kernels without BTF, shared by the builtin route and the vmlinux route.
const BTF_HELP: &str = "linux-yocto: set KERNEL_DEBUG = \"True\" in local.conf (it needs pahole-native from meta-oe); \
other kernels: add meta-ebpf-rs's features/ebpf/ebpf-btf.scc fragment from your BSP layer (see meta-ebpf-rs/README.md); \
or set EBPF_PACK_BTF = \"vmlinux\" and KERNEL_IMAGETYPES:append = \" vmlinux\" so the bundle ships its own BTF";

/// `MACHINE` as a target name: lower case, anything but letters, digits, `-` and `_` becomes `-`.
pub fn target_name(machine: &str) -> String {
    let name: String = machine
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    name.trim_start_matches(['-', '_']).to_string()
}

/// `major.minor` from a kernel release string such as `6.18.5-yocto-standard` or `6.6+git`.
pub fn kernel_version_of_release(release: &str) -> Option<KernelVersion> {
    let release = release.trim();
    let mut parts = release.splitn(3, '.');
    let major = parts.next()?;
    let minor: String = parts
        .next()?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    KernelVersion::parse(&format!("{major}.{minor}"))
}

/// Writes `text` as a double-quoted YAML scalar.
fn quoted(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Checks bitbake's facts and renders the target file, or says which setting makes the build impossible.
pub fn render_target(f: &YoctoFacts) -> Result<String, YoctoError> {
    let known: Vec<&str> = YOCTO_TARGET_ARCHES.iter().map(|(n, _)| *n).collect();
    let arch = arch_of_target_arch(&f.target_arch).ok_or_else(|| {
        yerr(
            format!(
                "TARGET_ARCH `{}` (MACHINE {}) is not an architecture ebpf-pack builds for",
                f.target_arch, f.machine
            ),
            format!(
                "ebpf-pack supports TARGET_ARCH {}; recipes inheriting ebpf_pack are skipped elsewhere by COMPATIBLE_HOST",
                known.join(", ")
            ),
        )
    })?;
    let facts = arch.facts();
    let endian_word = match facts.endian {
        ebpf_pack_manifest::Endian::Little => "le",
        ebpf_pack_manifest::Endian::Big => "be",
    };
    if f.endianness != endian_word {
        return Err(yerr(
            format!(
                "SITEINFO_ENDIANNESS `{}` contradicts TARGET_ARCH `{}`, whose ebpf-pack arch `{arch}` is `{endian_word}`",
                f.endianness, f.target_arch
            ),
            "ebpf-pack takes byte order from the architecture; use a MACHINE/tune whose TARGET_ARCH says its byte order (e.g. mips vs mipsel)",
        ));
    }
    if f.bits != facts.bits.to_string() {
        return Err(yerr(
            format!(
                "SITEINFO_BITS `{}` contradicts TARGET_ARCH `{}`, whose ebpf-pack arch `{arch}` is {}-bit",
                f.bits, f.target_arch, facts.bits
            ),
            "ILP32 ABIs such as x32 are not supported: use the architecture's native ABI tune",
        ));
    }
    let libc = match f.tclibc.as_str() {
        "glibc" => Libc::Glibc,
        "musl" => Libc::Musl,
        other => {
            return Err(yerr(
                format!("TCLIBC `{other}` is not a C library ebpf-run can be linked with"),
                "set TCLIBC to glibc or musl",
            ));
        }
    };
    if arch == Arch::Arm && f.target_fpu != "hard" {
        return Err(yerr(
            format!(
                "TARGET_FPU `{}` (MACHINE {}): ebpf-pack verifies that ebpf-run uses the ARM hard-float ABI",
                f.target_fpu, f.machine
            ),
            "use a hard-float tune (DEFAULTTUNE ending in `hf`, e.g. armv7athf-neon or cortexa8hf-neon)",
        ));
    }
    let release = f.kernel_abiversion.trim();
    let version = kernel_version_of_release(release).ok_or_else(|| {
        yerr(
            format!("kernel-abiversion `{release}` does not start with a kernel version MAJOR.MINOR"),
            "the class reads STAGING_KERNEL_BUILDDIR/kernel-abiversion written by virtual/kernel:do_shared_workdir; check that PREFERRED_PROVIDER_virtual/kernel is a kernel recipe",
        )
    })?;
    let name = target_name(&f.machine);
    if !is_valid_name(&name) {
        return Err(yerr(
            format!("MACHINE `{}` gives no usable target name", f.machine),
            "MACHINE must contain a letter or digit",
        ));
    }
    let bpf_cpu = match f.bpf_cpu.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(cpu) => Some(
            [BpfCpu::V1, BpfCpu::V2, BpfCpu::V3, BpfCpu::V4]
                .into_iter()
                .find(|c| c.as_str() == cpu)
                .ok_or_else(|| {
                    yerr(
                        format!("EBPF_PACK_BPF_CPU `{cpu}` is not a BPF ISA version"),
                        "use v1, v2, v3 or v4, or leave it empty for the arch's default",
                    )
                })?,
        ),
    };
    for probe in &f.probes {
        if !is_valid_name(probe) {
            return Err(yerr(
                format!("EBPF_PACK_PROBES: `{probe}` is not a probe name"),
                "list probe file stems (NAME for NAME.bpf.c), separated by spaces",
            ));
        }
    }

    // The kernel: the BTF route must be possible with this kernel's configuration.
    let (config_path, config_text) = &f.kernel_config;
    let btf_source = match &f.btf {
        YoctoBtf::Builtin => BtfSource::Builtin,
        YoctoBtf::Vmlinux(path) => BtfSource::File(PathBuf::from(path)),
    };
    let enabled = |option: &str| {
        config_text
            .lines()
            .any(|l| l.trim() == format!("CONFIG_{option}=y"))
    };
    match &f.btf {
        YoctoBtf::Builtin if !facts.has_builtin_vmlinux_h => {
            return Err(yerr(
                format!(
                    "EBPF_PACK_BTF `builtin`: ebpf-pack has no committed vmlinux.h for TARGET_ARCH `{}`",
                    f.target_arch
                ),
                "set EBPF_PACK_BTF = \"vmlinux\" and KERNEL_IMAGETYPES:append = \" vmlinux\" in local.conf, with a kernel built with CONFIG_DEBUG_INFO_BTF or CONFIG_DEBUG_INFO",
            ));
        }
        YoctoBtf::Builtin if !enabled("DEBUG_INFO_BTF") => {
            return Err(yerr(
                format!(
                    "EBPF_PACK_BTF `builtin`: the kernel of MACHINE {} ({release}) is built without CONFIG_DEBUG_INFO_BTF, so the board has no /sys/kernel/btf/vmlinux for CO-RE ({config_path})",
                    f.machine
                ),
                BTF_HELP,
            ));
        }
        YoctoBtf::Vmlinux(_) if !enabled("DEBUG_INFO_BTF") && !enabled("DEBUG_INFO") => {
            return Err(yerr(
                format!(
                    "EBPF_PACK_BTF `vmlinux`: the kernel of MACHINE {} ({release}) is built with neither CONFIG_DEBUG_INFO_BTF nor CONFIG_DEBUG_INFO, so its vmlinux has no type information ({config_path})",
                    f.machine
                ),
                "linux-yocto: set KERNEL_DEBUG = \"True\" in local.conf; other kernels: add meta-ebpf-rs's features/ebpf/ebpf-dwarf.scc (DWARF, pahole makes the BTF) or ebpf-btf.scc fragment from your BSP layer",
            ));
        }
        _ => {}
    }
    let report = check_kconfig(config_text, &btf_source);
    if !report.errors.is_empty() {
        return Err(yerr(
            format!(
                "the kernel of MACHINE {} ({release}) cannot run eBPF probes ({config_path}):\n  {}",
                f.machine,
                report.errors.join("\n  ")
            ),
            "add meta-ebpf-rs's kernel fragment features/ebpf/ebpf.scc from your BSP layer (see meta-ebpf-rs/README.md)",
        ));
    }

    let mut y = String::new();
    y.push_str("# Written by `ebpf-pack yocto-target` (ebpf_pack.bbclass) from bitbake's facts:\n");
    y.push_str(&format!(
        "#   MACHINE={} TARGET_ARCH={} SITEINFO_ENDIANNESS={} SITEINFO_BITS={} TCLIBC={}{}\n",
        f.machine,
        f.target_arch,
        f.endianness,
        f.bits,
        f.tclibc,
        if f.target_fpu.is_empty() {
            String::new()
        } else {
            format!(" TARGET_FPU={}", f.target_fpu)
        }
    ));
    y.push_str(&format!(
        "#   RUST_HOST_SYS={} kernel-abiversion={release}\n",
        f.rust_triple
    ));
    y.push_str("schema: 1\n");
    y.push_str(&format!("name: {name}\n"));
    y.push_str(&format!(
        "description: {}\n",
        quoted(&format!(
            "Yocto MACHINE {} ({}, {libc}, kernel {release})",
            f.machine, f.target_arch
        ))
    ));
    y.push_str(&format!("arch: {arch}\n"));
    y.push_str(&format!("libc: {libc}\n"));
    let triple_arch = f.rust_triple.split('-').next().unwrap_or_default();
    let triple_libc = if f.rust_triple.contains("-musl") {
        Libc::Musl
    } else {
        Libc::Glibc
    };
    if facts.triple_arches.contains(&triple_arch) && triple_libc == libc {
        y.push_str(&format!("triple: {}\n", quoted(&f.rust_triple)));
    } else {
        y.push_str(&format!(
            "# RUST_HOST_SYS `{}` is not a triple ebpf-pack knows for `{arch}`; the loader comes prebuilt from the ebpf-run recipe\n",
            f.rust_triple
        ));
    }
    y.push_str("kernel:\n");
    y.push_str(&format!("  version: \"{version}\"\n"));
    match &f.btf {
        YoctoBtf::Builtin => y.push_str("  btf: builtin\n"),
        YoctoBtf::Vmlinux(path) => y.push_str(&format!("  btf: {}\n", quoted(path))),
    }
    y.push_str(&format!("  config: {}\n", quoted(config_path)));
    if let Some(cpu) = bpf_cpu {
        y.push_str(&format!("bpf:\n  cpu: {}\n", cpu.as_str()));
    }
    if !f.probes.is_empty() {
        y.push_str(&format!("probes: [{}]\n", f.probes.join(", ")));
    }
    Ok(y)
}

/// Arguments of `ebpf-pack yocto-target`, one per bitbake variable the class passes.
#[derive(Debug, Clone, clap::Args)]
pub struct YoctoTargetArgs {
    /// ${MACHINE}
    #[arg(long)]
    pub machine: String,
    /// ${TARGET_ARCH}
    #[arg(long)]
    pub target_arch: String,
    /// ${SITEINFO_ENDIANNESS}: le or be
    #[arg(long)]
    pub endianness: String,
    /// ${SITEINFO_BITS}: 32 or 64
    #[arg(long)]
    pub bits: String,
    /// ${TCLIBC}
    #[arg(long)]
    pub tclibc: String,
    /// ${TARGET_FPU}
    #[arg(long, default_value = "")]
    pub target_fpu: String,
    /// ${RUST_HOST_SYS}: the triple of the ebpf-run recipe's loader
    #[arg(long, default_value = "")]
    pub rust_triple: String,
    /// ${STAGING_KERNEL_BUILDDIR}/kernel-abiversion
    #[arg(long, value_name = "FILE")]
    pub kernel_abiversion: PathBuf,
    /// ${STAGING_KERNEL_BUILDDIR}/.config
    #[arg(long, value_name = "FILE")]
    pub kernel_config: PathBuf,
    /// ${EBPF_PACK_BTF}: builtin or vmlinux
    #[arg(long, default_value = "builtin")]
    pub btf: String,
    /// ${EBPF_PACK_VMLINUX}: the deployed vmlinux (with --btf vmlinux)
    #[arg(long, value_name = "FILE")]
    pub vmlinux: Option<PathBuf>,
    /// ${EBPF_PACK_BPF_CPU}
    #[arg(long, default_value = "")]
    pub bpf_cpu: String,
    /// ${EBPF_PACK_PROBES}: probe names separated by spaces or commas
    #[arg(long, default_value = "")]
    pub probes: String,
    /// Write the target file here instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `ebpf-pack yocto-target`: reads the kernel's files, renders the target file, writes it.
pub fn yocto_target(args: &YoctoTargetArgs) -> Result<(), Failure> {
    let bad = |message: String| Failure {
        code: EXIT_BAD_INPUT,
        message,
    };
    let read = |path: &PathBuf, what: &str| {
        std::fs::read_to_string(path).map_err(|e| {
            bad(format!(
                "{}: cannot read {what}: {e}\n  help: the recipe must depend on virtual/kernel:do_shared_workdir (ebpf_pack.bbclass does)",
                path.display()
            ))
        })
    };
    // The target file resolves relative paths against its own folder: write absolute ones.
    let absolute = |path: &PathBuf| std::path::absolute(path).unwrap_or_else(|_| path.clone());
    let abiversion = read(&args.kernel_abiversion, "the kernel's abiversion")?;
    let config = read(&args.kernel_config, "the kernel's .config")?;
    let btf = match (args.btf.as_str(), &args.vmlinux) {
        ("builtin", _) => YoctoBtf::Builtin,
        ("vmlinux", Some(path)) if path.is_file() => {
            YoctoBtf::Vmlinux(absolute(path).display().to_string())
        }
        ("vmlinux", Some(path)) => {
            return Err(bad(format!(
                "EBPF_PACK_BTF `vmlinux`: {} does not exist\n  help: add KERNEL_IMAGETYPES:append = \" vmlinux\" to local.conf (or the machine) so the kernel deploys it, or point EBPF_PACK_VMLINUX at the deployed vmlinux",
                path.display()
            )));
        }
        ("vmlinux", None) => {
            return Err(bad(
                "--btf vmlinux needs --vmlinux FILE (EBPF_PACK_VMLINUX)".into(),
            ));
        }
        (other, _) => {
            return Err(bad(format!(
                "EBPF_PACK_BTF `{other}` is not a BTF route\n  help: use builtin (default) or vmlinux"
            )));
        }
    };
    let facts = YoctoFacts {
        machine: args.machine.clone(),
        target_arch: args.target_arch.clone(),
        endianness: args.endianness.clone(),
        bits: args.bits.clone(),
        tclibc: args.tclibc.clone(),
        target_fpu: args.target_fpu.clone(),
        rust_triple: args.rust_triple.clone(),
        kernel_abiversion: abiversion,
        kernel_config: (absolute(&args.kernel_config).display().to_string(), config),
        btf,
        bpf_cpu: Some(args.bpf_cpu.clone()),
        probes: args
            .probes
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect(),
    };
    let text = render_target(&facts).map_err(|e| bad(e.to_string()))?;
    match &args.output {
        Some(path) => std::fs::write(path, text)
            .map_err(|e| bad(format!("{}: cannot write: {e}", path.display()))),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_releases_give_major_minor() {
        let v = |s| kernel_version_of_release(s).map(|v| v.to_string());
        assert_eq!(v("6.18.5-yocto-standard\n").as_deref(), Some("6.18"));
        assert_eq!(v("6.6+git0+abc").as_deref(), Some("6.6"));
        assert_eq!(v("5.15.0").as_deref(), Some("5.15"));
        assert_eq!(v("6.12-rc3").as_deref(), Some("6.12"));
        assert_eq!(v("yocto"), None);
        assert_eq!(v(""), None);
    }

    #[test]
    fn machines_become_target_names() {
        assert_eq!(target_name("beaglebone-yocto"), "beaglebone-yocto");
        assert_eq!(target_name("qemux86-64"), "qemux86-64");
        assert_eq!(target_name("imx8mm.EVK"), "imx8mm-evk");
        assert!(is_valid_name(&target_name("_x")));
    }

    #[test]
    fn yaml_strings_are_escaped() {
        assert_eq!(quoted(r#"a "b" \c"#), r#""a \"b\" \\c""#);
    }

    #[test]
    fn every_yocto_arch_maps_to_a_distinct_arch() {
        for (i, (_, a)) in YOCTO_TARGET_ARCHES.iter().enumerate() {
            assert!(YOCTO_TARGET_ARCHES[i + 1..].iter().all(|(_, b)| a != b));
        }
        assert_eq!(arch_of_target_arch("aarch64"), Some(Arch::Arm64));
        assert_eq!(arch_of_target_arch("i686"), None);
    }
}
