//! Target files (schema 1): parse the YAML exactly, then resolve defaults and report every problem with
//! its file, line and column.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_saphyr::{Location, Spanned};

use crate::arch::{Arch, BpfCpu, KernelVersion, Libc};

/// The only target-file schema this version understands.
pub const TARGET_SCHEMA: u32 = 1;

/// Built-in target files, compiled into the binary so it works from any directory.
pub const BUILTIN_TARGETS: &[(&str, &str)] = &[
    ("x86_64", include_str!("../../targets/x86_64.yaml")),
    ("rpi4", include_str!("../../targets/rpi4.yaml")),
    ("beaglebone", include_str!("../../targets/beaglebone.yaml")),
    ("qemuarm64", include_str!("../../targets/qemuarm64.yaml")),
    ("qemuarm", include_str!("../../targets/qemuarm.yaml")),
    ("riscv64", include_str!("../../targets/riscv64.yaml")),
    ("s390x", include_str!("../../targets/s390x.yaml")),
];

/// A target file exactly as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawTarget {
    schema: Spanned<u32>,
    name: Spanned<String>,
    description: String,
    arch: Arch,
    #[serde(default)]
    libc: Option<Libc>,
    #[serde(default)]
    triple: Option<Spanned<String>>,
    #[serde(default)]
    linker: Option<Spanned<String>>,
    kernel: RawKernel,
    #[serde(default)]
    bpf: Option<RawBpf>,
    #[serde(default)]
    probes: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    qemu: Option<RawQemu>,
}

/// `qemu:`: how `ebpf-pack try` emulates the board, where the arch's defaults do not fit.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawQemu {
    #[serde(default)]
    machine: Option<Spanned<String>>,
    #[serde(default)]
    cpu: Option<Spanned<String>>,
    #[serde(default)]
    console: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawKernel {
    version: Spanned<String>,
    btf: Spanned<String>,
    #[serde(default)]
    config: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawBpf {
    #[serde(default)]
    cpu: Option<BpfCpu>,
}

/// Where the target file came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetOrigin {
    /// Compiled into ebpf-pack.
    Builtin,
    /// A file on disk.
    File(PathBuf),
}

/// Where the kernel's type information for CO-RE comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BtfSource {
    /// The committed per-arch `vmlinux.h` at build time, the board's `/sys/kernel/btf/vmlinux` at run time.
    Builtin,
    /// The board kernel's vmlinux (ELF with .BTF or DWARF) or a raw BTF file: the bundle ships a tailored BTF.
    File(PathBuf),
    /// No BTF anywhere: only probes without CO-RE relocations can be built.
    None,
}

/// What the target says about the board's kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelSpec {
    /// Lowest kernel version the bundle must run on.
    pub version: KernelVersion,
    /// Source of BTF.
    pub btf: BtfSource,
    /// The kernel's `.config`, checked for the options eBPF needs.
    pub config: Option<PathBuf>,
}

/// A resolved target: every default applied, every value checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Short name (`beaglebone`), used in bundle names.
    pub name: String,
    /// One line about the board.
    pub description: String,
    /// CPU architecture.
    pub arch: Arch,
    /// C library of the loader.
    pub libc: Libc,
    /// Rust triple of the loader.
    pub triple: String,
    /// Linker for the loader, when rustc's default does not do.
    pub linker: Option<String>,
    /// Kernel facts.
    pub kernel: KernelSpec,
    /// Pinned BPF ISA version.
    pub bpf_cpu: BpfCpu,
    /// Probes to build; `None` means every probe of the project.
    pub probes: Option<Vec<String>>,
    /// QEMU settings that override the arch's defaults for `ebpf-pack try`.
    pub qemu: QemuOverrides,
    /// Where the description came from.
    pub origin: TargetOrigin,
}

/// A target file's `qemu:` section: each value replaces the arch table's default when set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QemuOverrides {
    /// `-M` machine.
    pub machine: Option<String>,
    /// `-cpu` model.
    pub cpu: Option<String>,
    /// Kernel console device (`console=`).
    pub console: Option<String>,
}

/// One problem in a target file, with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetProblem {
    /// File name as shown to the user (`targets/rpi4.yaml`, `<builtin rpi4>`).
    pub file: String,
    /// 1-based line, 0 when unknown.
    pub line: u64,
    /// 1-based column, 0 when unknown.
    pub column: u64,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
}

impl fmt::Display for TargetProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.column, self.message
            )?;
        } else {
            write!(f, "{}: {}", self.file, self.message)?;
        }
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

/// Every problem found in one target file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct TargetError {
    /// The problems, in file order.
    pub problems: Vec<TargetProblem>,
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// Parses and resolves a target file's text. `file` names it in messages; relative paths in it are
/// resolved against `base_dir`.
pub fn parse_target(
    text: &str,
    file: &str,
    base_dir: &Path,
    origin: TargetOrigin,
) -> Result<Target, TargetError> {
    let raw: RawTarget = serde_saphyr::from_str(text).map_err(|e| TargetError {
        problems: vec![yaml_problem(file, &e)],
    })?;
    resolve(raw, file, base_dir, origin)
}

/// Turns a YAML error into a problem with position and, where the message allows, a hint.
pub(crate) fn yaml_problem(file: &str, error: &serde_saphyr::Error) -> TargetProblem {
    let inner = error.without_snippet();
    let location = inner.location();
    let text = inner.to_string();
    // The crate prefixes "error: line L column C: "; we print positions our own way.
    let message = text
        .split_once(": ")
        .filter(|(head, _)| head.starts_with("error"))
        .map(|(_, rest)| rest)
        .unwrap_or(&text);
    let message = match message.split_once(": ") {
        Some((head, rest)) if head.starts_with("line ") => rest,
        _ => message,
    }
    .trim()
    .to_string();
    // The crate words a repeated key for its own callers (naming its API) and repeats the place.
    let message = match message.strip_prefix("duplicate mapping key: ") {
        Some(rest) => {
            let key = rest
                .split(", set DuplicateKeyPolicy")
                .next()
                .unwrap_or(rest);
            format!("duplicate key `{key}`")
        }
        None => message,
    };
    let help = if message.starts_with("duplicate key") {
        Some("give each key once: remove or merge the repeated one".to_string())
    } else if message.contains("unknown field") {
        Some("remove or correct the key; see docs/TARGETS.md for the schema".to_string())
    } else if message.contains("unknown variant") {
        Some("use one of the values listed above".to_string())
    } else if message.contains("missing field") {
        Some("add the field; see docs/TARGETS.md for the schema".to_string())
    } else {
        None
    };
    TargetProblem {
        file: file.to_string(),
        line: location.map_or(0, |l| l.line()),
        column: location.map_or(0, |l| l.column()),
        message,
        help,
    }
}

struct Problems<'a> {
    file: &'a str,
    list: Vec<TargetProblem>,
}

impl Problems<'_> {
    fn push(&mut self, at: &Location, message: String, help: impl Into<Option<String>>) {
        self.list.push(TargetProblem {
            file: self.file.to_string(),
            line: at.line(),
            column: at.column(),
            message,
            help: help.into(),
        });
    }
}

/// Checks a name: lower-case letters, digits, `-` and `_`, starting with a letter or digit.
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn resolve(
    raw: RawTarget,
    file: &str,
    base_dir: &Path,
    origin: TargetOrigin,
) -> Result<Target, TargetError> {
    let mut p = Problems {
        file,
        list: Vec::new(),
    };
    if raw.schema.value != TARGET_SCHEMA {
        p.push(
            &raw.schema.referenced,
            format!("schema {} is not supported", raw.schema.value),
            format!("this ebpf-pack reads `schema: {TARGET_SCHEMA}`"),
        );
    }
    if !is_valid_name(&raw.name.value) {
        p.push(
            &raw.name.referenced,
            format!("name `{}` is not a valid target name", raw.name.value),
            "use lower-case letters, digits, `-` and `_` (it becomes part of the bundle's file name)".to_string(),
        );
    }
    let arch = raw.arch;
    let facts = arch.facts();
    let triple = match &raw.triple {
        Some(t) => {
            let first = t.value.split('-').next().unwrap_or_default();
            if !facts.triple_arches.contains(&first) {
                p.push(
                    &t.referenced,
                    format!("triple `{}` does not build code for arch `{arch}`", t.value),
                    format!(
                        "use a triple starting with {}, e.g. `{}`",
                        facts.triple_arches.join(" or "),
                        facts.triples.0
                    ),
                );
            }
            t.value.clone()
        }
        None => arch
            .triple(raw.libc.unwrap_or(facts.default_libc))
            .to_string(),
    };
    let triple_libc = if triple.contains("-musl") {
        Libc::Musl
    } else {
        Libc::Glibc
    };
    let libc = match raw.libc {
        Some(l) if l != triple_libc => {
            let at = raw
                .triple
                .as_ref()
                .map_or(raw.name.referenced, |t| t.referenced);
            p.push(
                &at,
                format!("libc `{l}` contradicts triple `{triple}`, which uses {triple_libc}"),
                format!(
                    "use the triple `{}` or drop one of the two fields",
                    arch.triple(l)
                ),
            );
            l
        }
        Some(l) => l,
        None => triple_libc,
    };
    let linker = match &raw.linker {
        Some(l) if l.value.trim().is_empty() || l.value.contains(char::is_whitespace) => {
            p.push(
                &l.referenced,
                format!("linker `{}` is not a program name", l.value),
                "give one program, e.g. `arm-linux-gnueabihf-gcc` or `rust-lld`".to_string(),
            );
            None
        }
        Some(l) => Some(l.value.clone()),
        None => arch.linker(libc).map(str::to_string),
    };
    let version = KernelVersion::parse(&raw.kernel.version.value);
    if version.is_none() {
        p.push(
            &raw.kernel.version.referenced,
            format!(
                "kernel.version `{}` is not a kernel version",
                raw.kernel.version.value
            ),
            "write it as a quoted string, e.g. `version: \"6.1\"`".to_string(),
        );
    }
    let btf_text = raw.kernel.btf.value.trim();
    let btf = match btf_text {
        "builtin" => {
            if !facts.has_builtin_vmlinux_h {
                p.push(
                    &raw.kernel.btf.referenced,
                    format!("arch `{arch}` has no built-in vmlinux.h"),
                    "set `kernel.btf` to the path of the board kernel's vmlinux or BTF file"
                        .to_string(),
                );
            }
            BtfSource::Builtin
        }
        "none" => BtfSource::None,
        "" => {
            p.push(
                &raw.kernel.btf.referenced,
                "kernel.btf is empty".to_string(),
                "use `builtin`, `none`, or a path to the board kernel's vmlinux or BTF file"
                    .to_string(),
            );
            BtfSource::None
        }
        path => BtfSource::File(base_dir.join(path)),
    };
    let config = raw.kernel.config.as_ref().map(|c| base_dir.join(&c.value));
    let bpf_cpu = raw.bpf.and_then(|b| b.cpu).unwrap_or(facts.default_bpf_cpu);
    if let Some(v) = version
        && v < bpf_cpu.min_kernel()
    {
        p.push(
            &raw.kernel.version.referenced,
            format!(
                "kernel {v} cannot run BPF ISA {} (needs {})",
                bpf_cpu.as_str(),
                bpf_cpu.min_kernel()
            ),
            "lower `bpf.cpu` or raise `kernel.version`".to_string(),
        );
    }
    let probes = raw.probes.map(|list| {
        let mut names = Vec::new();
        for probe in list {
            let set = probe.value.strip_prefix('@');
            if let Some(set) = set
                .filter(|s| *s != "all" && !crate::toolbox::TOOL_SETS.iter().any(|(n, _)| n == s))
            {
                p.push(
                    &probe.referenced,
                    format!("`@{set}` is no set of tools"),
                    format!("sets: {}", crate::toolbox::set_names().join(", ")),
                );
            } else if set.is_none() && !is_valid_name(&probe.value) {
                p.push(
                    &probe.referenced,
                    format!("probe name `{}` is not valid", probe.value),
                    "name a probe by its file stem: probes/NAME.bpf.c, or a set of tools: @net"
                        .to_string(),
                );
            } else if names.contains(&probe.value) {
                p.push(
                    &probe.referenced,
                    format!("probe `{}` is listed twice", probe.value),
                    None,
                );
            } else {
                names.push(probe.value);
            }
        }
        names
    });
    let mut qemu = QemuOverrides::default();
    if let Some(raw_qemu) = raw.qemu {
        for (key, value, slot) in [
            ("machine", raw_qemu.machine, &mut qemu.machine),
            ("cpu", raw_qemu.cpu, &mut qemu.cpu),
            ("console", raw_qemu.console, &mut qemu.console),
        ] {
            let Some(v) = value else { continue };
            // Each value becomes one QEMU argument or one kernel command-line word.
            let ok = !v.value.is_empty()
                && v.value
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'\'' && b != b'"');
            if ok {
                *slot = Some(v.value);
            } else {
                p.push(
                    &v.referenced,
                    format!("qemu.{key} `{}` is not a single word", v.value),
                    "give one value without spaces or quotes (`qemu-system-<arch> -M help` and `-cpu help` list them)".to_string(),
                );
            }
        }
    }
    if !p.list.is_empty() {
        return Err(TargetError { problems: p.list });
    }
    Ok(Target {
        name: raw.name.value,
        description: raw.description,
        arch,
        libc,
        triple,
        linker,
        kernel: KernelSpec {
            version: version.unwrap_or(KernelVersion::new(0, 0)),
            btf,
            config,
        },
        bpf_cpu,
        probes,
        qemu,
        origin,
    })
}

/// Loads a built-in target by name.
pub fn builtin_target(name: &str) -> Option<Result<Target, TargetError>> {
    BUILTIN_TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(n, text)| {
            parse_target(
                text,
                &format!("<builtin {n}>"),
                Path::new("."),
                TargetOrigin::Builtin,
            )
        })
}

/// Names of the built-in targets.
pub fn builtin_names() -> impl Iterator<Item = &'static str> {
    BUILTIN_TARGETS.iter().map(|(n, _)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Target, TargetError> {
        parse_target(
            text,
            "t.yaml",
            Path::new("/base"),
            TargetOrigin::File("t.yaml".into()),
        )
    }

    const GOOD: &str = "schema: 1\nname: board\ndescription: a board\narch: arm\nkernel:\n  version: \"6.1\"\n  btf: builtin\n";

    #[test]
    fn every_builtin_target_resolves_and_matches_its_name() {
        for name in builtin_names() {
            let t = builtin_target(name)
                .expect("listed")
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(t.name, name);
        }
    }

    #[test]
    fn defaults_come_from_the_arch_table() {
        let t = parse(GOOD).expect("good target");
        assert_eq!(t.arch, Arch::Arm);
        assert_eq!(t.libc, Libc::Glibc);
        assert_eq!(t.triple, "armv7-unknown-linux-gnueabihf");
        assert_eq!(t.linker.as_deref(), Some("arm-linux-gnueabihf-gcc"));
        assert_eq!(t.bpf_cpu, BpfCpu::V2);
        assert_eq!(t.kernel.version, KernelVersion::new(6, 1));
        assert_eq!(t.kernel.btf, BtfSource::Builtin);
        assert_eq!(t.probes, None);
    }

    #[test]
    fn btf_paths_are_relative_to_the_file() {
        let t = parse(&GOOD.replace("btf: builtin", "btf: kernel/vmlinux")).expect("good");
        assert_eq!(t.kernel.btf, BtfSource::File("/base/kernel/vmlinux".into()));
    }

    fn problems(text: &str) -> Vec<String> {
        parse(text)
            .expect_err("must fail")
            .problems
            .iter()
            .map(|p| p.to_string())
            .collect()
    }

    #[test]
    fn unknown_key_names_line_and_column() {
        let got = problems(&GOOD.replace("  btf: builtin\n", "  btf: builtin\n  bogus: 1\n"));
        assert_eq!(got.len(), 1);
        assert!(
            got[0].starts_with("t.yaml:8:3: unknown field `bogus`"),
            "{got:?}"
        );
    }

    #[test]
    fn bad_arch_lists_what_is_allowed() {
        let got = problems(&GOOD.replace("arch: arm", "arch: armv9"));
        assert!(
            got[0].starts_with("t.yaml:4:7: unknown variant `armv9`"),
            "{got:?}"
        );
        assert!(got[0].contains("arm64"), "{got:?}");
    }

    #[test]
    fn missing_field_is_named() {
        let got = problems("schema: 1\nname: b\ndescription: d\narch: arm\n");
        assert!(got[0].contains("missing field `kernel`"), "{got:?}");
    }

    #[test]
    fn every_semantic_problem_is_reported_at_once() {
        let text = "schema: 2\nname: Bad Name\ndescription: d\narch: arm64\ntriple: armv7-unknown-linux-gnueabihf\n\
                    kernel:\n  version: six\n  btf: builtin\nprobes: [opensnoop, opensnoop, Bad]\n";
        let got = problems(text);
        let want = [
            "t.yaml:1:9: schema 2 is not supported",
            "t.yaml:2:7: name `Bad Name` is not a valid target name",
            "t.yaml:5:9: triple `armv7-unknown-linux-gnueabihf` does not build code for arch `arm64`",
            "t.yaml:7:12: kernel.version `six` is not a kernel version",
            "t.yaml:9:21: probe `opensnoop` is listed twice",
            "t.yaml:9:32: probe name `Bad` is not valid",
        ];
        assert_eq!(got.len(), want.len(), "{got:#?}");
        for (g, w) in got.iter().zip(want) {
            assert!(g.starts_with(w), "got {g:?}, want {w:?}");
        }
    }

    #[test]
    fn libc_contradicting_triple_is_an_error() {
        let got = problems(&GOOD.replace(
            "arch: arm\n",
            "arch: arm\nlibc: musl\ntriple: armv7-unknown-linux-gnueabihf\n",
        ));
        assert!(got[0].contains("libc `musl` contradicts triple"), "{got:?}");
    }

    #[test]
    fn arch_without_vmlinux_h_needs_a_btf_path() {
        let got = problems(&GOOD.replace("arch: arm", "arch: mips"));
        assert!(
            got[0].contains("arch `mips` has no built-in vmlinux.h"),
            "{got:?}"
        );
        let t = parse(
            &GOOD
                .replace("arch: arm", "arch: mips")
                .replace("btf: builtin", "btf: vmlinux"),
        )
        .expect("ok");
        assert_eq!(t.triple, "mips-unknown-linux-musl");
    }

    #[test]
    fn isa_newer_than_kernel_is_refused() {
        let got = problems(
            &GOOD
                .replace("\"6.1\"", "\"4.19\"")
                .replace("arch: arm\n", "arch: arm\nbpf:\n  cpu: v3\n"),
        );
        assert!(
            got[0].contains("kernel 4.19 cannot run BPF ISA v3"),
            "{got:?}"
        );
    }

    #[test]
    fn examples_in_the_docs_parse() {
        let docs = [
            ("docs/TARGETS.md", include_str!("../../docs/TARGETS.md")),
            ("README.md", include_str!("../../README.md")),
        ];
        for (name, doc) in docs {
            let blocks: Vec<&str> = doc
                .split("```yaml\n")
                .skip(1)
                .filter_map(|b| b.split("```").next())
                .filter(|b| b.starts_with("schema: 1"))
                .collect();
            assert!(!blocks.is_empty(), "{name} lost its target file examples");
            for block in blocks {
                parse(block)
                    .unwrap_or_else(|e| panic!("{name} example does not parse:\n{e}\n{block}"));
            }
        }
    }

    #[test]
    fn duplicate_key_is_a_located_error_in_our_words() {
        let text = "schema: 1\nname: dup\nname: dup2\narch: x86_64\n";
        let err = parse_target(text, "t.yaml", Path::new("."), TargetOrigin::Builtin)
            .expect_err("duplicate key");
        let shown = err.to_string();
        assert!(
            shown.contains("t.yaml:3:1: duplicate key `name`"),
            "{shown}"
        );
        assert!(shown.contains("help: give each key once"), "{shown}");
        assert!(!shown.contains("DuplicateKeyPolicy"), "{shown}");
    }

    #[test]
    fn broken_yaml_is_a_located_error() {
        let got = problems("schema: 1\nname: [x\n");
        assert!(got[0].starts_with("t.yaml:"), "{got:?}");
    }
}
