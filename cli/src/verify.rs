//! Checks of ELF bytes: the loader executable and the BPF objects, against a target's architecture.
//!
//! Pure functions over byte slices; every failure names the file and says what would fix it.

// Outside input (files other people send, programs people type) is parsed here: an index or
// `expect` it can reach is a panic, so each is an error outside tests.
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::expect_used,
        clippy::unwrap_used,
        clippy::panic,
        clippy::unreachable
    )
)]

use object::elf;
use object::read::elf::{Dyn, FileHeader, ProgramHeader, SectionHeader};
use object::{Endianness, FileKind};

use ebpf_pack_manifest::{AttachKind, Endian, MapInfo, Probe, ProgramInfo};
use ebpf_pack_object::kconfig::{KernelFacts, kconfig_externs};
use ebpf_pack_object::map_types;
use ebpf_pack_object::probe::ProbeObject;

use crate::arch::{Arch, KernelVersion, em};

/// A failed check, naming the file and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {problem}\n  help: {help}")]
pub struct VerifyError {
    /// The file that failed (bundle-relative or on-disk path).
    pub file: String,
    /// What is wrong.
    pub problem: String,
    /// How to fix it.
    pub help: String,
}

fn fail(file: &str, problem: impl Into<String>, help: impl Into<String>) -> VerifyError {
    VerifyError {
        file: file.to_string(),
        problem: problem.into(),
        help: help.into(),
    }
}

/// Facts read from a verified loader executable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoaderFacts {
    /// ELF machine.
    pub machine: u16,
    /// 32 or 64.
    pub bits: u8,
    /// Byte order.
    pub endian: Endian,
    /// `ET_EXEC` or a static-pie `ET_DYN`.
    pub static_pie: bool,
}

/// Human name of an ELF machine number.
pub fn machine_name(machine: u16) -> String {
    match machine {
        em::X86_64 => "x86-64".into(),
        em::AARCH64 => "AArch64".into(),
        em::ARM => "ARM".into(),
        em::RISCV => "RISC-V".into(),
        em::S390 => "S/390".into(),
        em::MIPS => "MIPS".into(),
        em::BPF => "BPF".into(),
        elf::EM_386 => "Intel 80386".into(),
        other => format!("machine {other}"),
    }
}

fn endian_name(e: Endian) -> &'static str {
    match e {
        Endian::Little => "little-endian",
        Endian::Big => "big-endian",
    }
}

/// Reads class and byte order from the ELF identification, refusing anything that is not ELF.
fn ident(file: &str, data: &[u8]) -> Result<(u8, Endian), VerifyError> {
    let (true, Some(&class), Some(&order)) = (
        data.len() >= 16 && data.starts_with(b"\x7fELF"),
        data.get(4),
        data.get(5),
    ) else {
        return Err(fail(
            file,
            "not an ELF file",
            "check that the right file was given and that it is complete",
        ));
    };
    let bits = match class {
        elf::ELFCLASS32 => 32,
        elf::ELFCLASS64 => 64,
        c => {
            return Err(fail(
                file,
                format!("unknown ELF class {c}"),
                "the file is corrupt",
            ));
        }
    };
    let endian = match order {
        elf::ELFDATA2LSB => Endian::Little,
        elf::ELFDATA2MSB => Endian::Big,
        d => {
            return Err(fail(
                file,
                format!("unknown ELF data encoding {d}"),
                "the file is corrupt",
            ));
        }
    };
    Ok((bits, endian))
}

fn truncated(file: &str, what: &str) -> VerifyError {
    fail(
        file,
        format!("ELF {what} cannot be read (truncated or corrupt)"),
        "rebuild the file or copy it again",
    )
}

/// Checks that `data` is a static executable for `arch`: machine, class, byte order, ARM hard-float
/// EABI, no `PT_INTERP` and no `DT_NEEDED` (static-pie is fine).
pub fn verify_loader(file: &str, data: &[u8], arch: Arch) -> Result<LoaderFacts, VerifyError> {
    let facts = arch.facts();
    let (bits, endian) = ident(file, data)?;
    let kind = FileKind::parse(data).map_err(|_| truncated(file, "header"))?;
    let (machine, e_type, e_flags, interp, needed) = match kind {
        FileKind::Elf32 => loader_header::<elf::FileHeader32<Endianness>>(file, data)?,
        FileKind::Elf64 => loader_header::<elf::FileHeader64<Endianness>>(file, data)?,
        _ => return Err(truncated(file, "header")),
    };
    if machine != facts.elf_machine || bits != facts.bits {
        return Err(fail(
            file,
            format!(
                "loader is {bits}-bit {}, target arch `{arch}` needs {}-bit {}",
                machine_name(machine),
                facts.bits,
                machine_name(facts.elf_machine)
            ),
            format!(
                "build the loader for the target's triple (`{}`), or pass the loader built for this board",
                arch.triple(facts.default_libc)
            ),
        ));
    }
    if endian != facts.endian {
        return Err(fail(
            file,
            format!(
                "loader is {}, target arch `{arch}` is {}",
                endian_name(endian),
                endian_name(facts.endian)
            ),
            "build the loader for the target's triple",
        ));
    }
    if arch == Arch::Arm {
        if e_flags & elf::EF_ARM_EABIMASK != elf::EF_ARM_EABI_VER5 {
            return Err(fail(
                file,
                "loader is not an ARM EABI5 executable",
                "use an `armv7-*-gnueabihf` or `*-musleabihf` triple",
            ));
        }
        if e_flags & elf::EF_ARM_ABI_FLOAT_SOFT != 0 || e_flags & elf::EF_ARM_ABI_FLOAT_HARD == 0 {
            return Err(fail(
                file,
                "loader uses the soft-float ABI, the board is hard-float",
                "use a hard-float triple (`armv7-unknown-linux-gnueabihf` or `armv7-unknown-linux-musleabihf`)",
            ));
        }
    }
    if let Some(interp) = interp {
        return Err(fail(
            file,
            format!("loader is dynamically linked (interpreter {interp})"),
            "link it statically: `-C target-feature=+crt-static` for glibc triples, or use a musl triple",
        ));
    }
    if let Some(lib) = needed.first() {
        return Err(fail(
            file,
            format!("loader needs shared library {lib}"),
            "link it statically (`-C target-feature=+crt-static`)",
        ));
    }
    let static_pie = match e_type {
        elf::ET_EXEC => false,
        elf::ET_DYN => true,
        t => {
            return Err(fail(
                file,
                format!("ELF type {t} is not an executable"),
                "give the ebpf-run executable",
            ));
        }
    };
    Ok(LoaderFacts {
        machine,
        bits,
        endian,
        static_pie,
    })
}

/// Checks a kernel module for the guest of `ebpf-pack try`: a relocatable ELF (`.ko`) of the arch's
/// machine, bits and byte order. Whether it fits the kernel's version is for `insmod` in the guest to say.
pub fn verify_module(file: &str, data: &[u8], arch: Arch) -> Result<(), VerifyError> {
    let facts = arch.facts();
    let (bits, endian) = ident(file, data)?;
    let (machine, e_type, ..) =
        match FileKind::parse(data).map_err(|_| truncated(file, "header"))? {
            FileKind::Elf32 => loader_header::<elf::FileHeader32<Endianness>>(file, data)?,
            FileKind::Elf64 => loader_header::<elf::FileHeader64<Endianness>>(file, data)?,
            _ => return Err(truncated(file, "header")),
        };
    if e_type != elf::ET_REL {
        return Err(fail(
            file,
            "is not a kernel module (not a relocatable ELF)",
            "pass a .ko file from the guest kernel's package (lib/modules/VERSION/kernel/...)",
        ));
    }
    if machine != facts.elf_machine || bits != facts.bits || endian != facts.endian {
        return Err(fail(
            file,
            format!(
                "module is {bits}-bit {} {}, target arch `{arch}` needs {}-bit {} {}",
                endian_name(endian),
                machine_name(machine),
                facts.bits,
                endian_name(facts.endian),
                machine_name(facts.elf_machine)
            ),
            "pass the module of the guest kernel's own package",
        ));
    }
    Ok(())
}

type LoaderHeader = (u16, u16, u32, Option<String>, Vec<String>);

fn loader_header<H: FileHeader<Endian = Endianness>>(
    file: &str,
    data: &[u8],
) -> Result<LoaderHeader, VerifyError> {
    let header = H::parse(data).map_err(|_| truncated(file, "header"))?;
    let e = header.endian().map_err(|_| truncated(file, "header"))?;
    let segments = header
        .program_headers(e, data)
        .map_err(|_| truncated(file, "program headers"))?;
    let mut interp = None;
    let mut needed = Vec::new();
    for seg in segments {
        match seg.p_type(e) {
            elf::PT_INTERP => {
                let bytes = seg
                    .data(e, data)
                    .map_err(|_| truncated(file, "PT_INTERP"))?;
                let path = bytes.split(|&b| b == 0).next().unwrap_or_default();
                interp = Some(String::from_utf8_lossy(path).into_owned());
            }
            elf::PT_DYNAMIC => {
                if let Ok(Some(entries)) = seg.dynamic(e, data) {
                    let count = entries
                        .iter()
                        .filter(|d| d.tag32(e) == Some(elf::DT_NEEDED as i32))
                        .count();
                    needed.extend((0..count).map(|i| format!("#{i}")));
                }
            }
            _ => {}
        }
    }
    // Names of needed libraries come from the dynamic string table; resolve them for the message.
    if !needed.is_empty() {
        let sections = header
            .sections(e, data)
            .map_err(|_| truncated(file, "section headers"))?;
        if let Ok(Some((entries, link))) = sections.dynamic(e, data)
            && let Ok(strings) = sections.strings(e, data, link)
        {
            needed = entries
                .iter()
                .filter(|d| d.tag32(e) == Some(elf::DT_NEEDED as i32))
                .filter_map(|d| d.string(e, strings).ok())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect();
        }
    }
    Ok((
        header.e_machine(e),
        header.e_type(e),
        header.e_flags(e),
        interp,
        needed,
    ))
}

/// Facts read from a verified BPF object, ready for the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectFacts {
    /// License string.
    pub license: String,
    /// Whether it carries CO-RE relocations.
    pub core: bool,
    /// Programs sorted by name.
    pub programs: Vec<ProgramInfo>,
    /// Maps sorted by name.
    pub maps: Vec<MapInfo>,
}

impl ObjectFacts {
    /// The manifest entry for this object.
    pub fn into_probe(self, name: &str, object_path: &str) -> Probe {
        Probe {
            name: name.to_string(),
            object: object_path.to_string(),
            license: self.license,
            core: self.core,
            programs: self.programs,
            maps: self.maps,
        }
    }
}

/// Checks an object's `.kconfig` externs: each of a type and name the loader can give a value to
/// (as libbpf can), and, with `board` (a target's `kernel.version` and `kernel.config`), each
/// value there — a strong `CONFIG_*` extern whose option the board's config does not have would
/// stop the probe from loading on the board.
pub fn verify_kconfig(
    file: &str,
    data: &[u8],
    board: Option<&KernelFacts>,
) -> Result<(), VerifyError> {
    let externs = kconfig_externs(data).map_err(|e| {
        fail(
            file,
            e,
            "declare it as bool, enum libbpf_tristate, char, an integer or a char array",
        )
    })?;
    if let Some(bad) = externs
        .iter()
        .find_map(|e| KernelFacts::default().raw_value(&e.name).err())
        .filter(|e| e.starts_with("unrecognized"))
    {
        return Err(fail(file, bad, "rename the extern, or drop its __kconfig"));
    }
    let big_endian = data.get(5) == Some(&2);
    if let Some(board) = board
        && let Err(errors) = board.values(&externs, big_endian)
    {
        return Err(fail(
            file,
            format!(
                "the board's kernel cannot give its .kconfig externs values: {}",
                errors.join("; ")
            ),
            "enable the options in the board's kernel (and kernel.config), or declare the externs __weak",
        ));
    }
    Ok(())
}

/// What an object's target kernel and arch allow.
#[derive(Debug, Clone, Copy)]
pub struct ObjectRules {
    /// The board's architecture.
    pub arch: Arch,
    /// Lowest kernel the bundle must run on.
    pub kernel: KernelVersion,
}

/// Checks a BPF object against the target: EM_BPF, 64-bit, the board's byte order, `.BTF`, a license,
/// every program section a known attach kind, no map type or attach kind beyond the target kernel or
/// arch, and no atomic instructions where the arch's JIT lacks them.
pub fn verify_object(
    file: &str,
    data: &[u8],
    rules: ObjectRules,
) -> Result<ObjectFacts, VerifyError> {
    let facts = rules.arch.facts();
    let (bits, endian) = ident(file, data)?;
    if FileKind::parse(data).map_err(|_| truncated(file, "header"))? != FileKind::Elf64
        || bits != 64
    {
        return Err(fail(
            file,
            "BPF objects are 64-bit ELF; this one is not",
            "compile it with clang `-target bpfel` or `-target bpfeb`",
        ));
    }
    let header =
        elf::FileHeader64::<Endianness>::parse(data).map_err(|_| truncated(file, "header"))?;
    let e = header.endian().map_err(|_| truncated(file, "header"))?;
    let machine = header.e_machine(e);
    if machine != em::BPF {
        return Err(fail(
            file,
            format!(
                "not a BPF object (ELF machine is {})",
                machine_name(machine)
            ),
            "compile probes with clang `-target bpfel|bpfeb`",
        ));
    }
    if endian != facts.endian {
        return Err(fail(
            file,
            format!(
                "object is {} BPF, target arch `{}` is {}",
                endian_name(endian),
                rules.arch,
                endian_name(facts.endian)
            ),
            format!(
                "compile it with `-target {}`",
                rules.arch.bpf_clang_target()
            ),
        ));
    }
    let sections = header
        .sections(e, data)
        .map_err(|_| truncated(file, "section headers"))?;
    let mut has_btf = false;
    let mut license = None;
    // Every section's name, for fentry programs with a kprobe twin (alternatives, as libbpf-tools
    // write them: the loader runs the kprobe where the kernel has no trampolines).
    let names: Vec<&[u8]> = sections
        .iter()
        .filter_map(|s| sections.section_name(e, s).ok())
        .collect();
    let has_twin = |sname: &str| {
        let twin = match sname.split_once('/') {
            Some(("fentry", f)) => format!("kprobe/{f}"),
            Some(("fexit", f)) => format!("kretprobe/{f}"),
            _ => return false,
        };
        names.contains(&twin.as_bytes())
    };
    for section in sections.iter() {
        let name = sections
            .section_name(e, section)
            .map_err(|_| truncated(file, "section names"))?;
        let sdata = || {
            section
                .data(e, data)
                .map_err(|_| truncated(file, "section data"))
        };
        match name {
            b".BTF" => has_btf = true,
            b"license" => {
                let bytes = sdata()?;
                let text = bytes.split(|&b| b == 0).next().unwrap_or_default();
                license = Some(String::from_utf8_lossy(text).into_owned());
            }
            _ => {}
        }
        let flags = section.sh_flags(e);
        if section.sh_type(e) == elf::SHT_PROGBITS
            && flags & u64::from(elf::SHF_EXECINSTR) != 0
            && name != b".text"
            && section.sh_size(e) > 0
        {
            let sname = String::from_utf8_lossy(name);
            let Some((kind, _)) = AttachKind::from_section(&sname) else {
                return Err(fail(
                    file,
                    format!("program section `{sname}` is no known attach kind"),
                    format!(
                        "use SEC(\"<kind>/...\") with a kind of: {}",
                        AttachKind::known_prefixes().collect::<Vec<_>>().join(", ")
                    ),
                ));
            };
            if matches!(kind, AttachKind::Fentry | AttachKind::Fexit) && !has_twin(&sname) {
                match facts.trampoline_since {
                    None => {
                        return Err(fail(
                            file,
                            format!(
                                "`{sname}` needs BPF trampolines, which arch `{}` does not have",
                                rules.arch
                            ),
                            "use a kprobe or tracepoint instead",
                        ));
                    }
                    Some(since) if rules.kernel < since => {
                        return Err(fail(
                            file,
                            format!(
                                "`{sname}` needs kernel {since} on `{}`, target kernel is {}",
                                rules.arch, rules.kernel
                            ),
                            "use a kprobe, or raise kernel.version",
                        ));
                    }
                    _ => {}
                }
            }
            if facts.jit_lacks_atomics {
                let code = sdata()?;
                if let Some(at) = code.chunks_exact(8).position(|insn| {
                    insn.first()
                        .is_some_and(|op| op & 0x07 == 0x03 && op & 0xe0 == 0xc0)
                }) {
                    return Err(fail(
                        file,
                        format!(
                            "`{sname}` uses a BPF atomic instruction (insn {at}); the `{}` JIT cannot run it (load fails with errno 524)",
                            rules.arch
                        ),
                        "replace __sync_*/atomic increments with per-CPU maps and plain increments",
                    ));
                }
            }
        }
    }
    if !has_btf {
        return Err(fail(
            file,
            "object has no .BTF section",
            "compile with clang `-g` (ebpf-pack always does)",
        ));
    }
    let license = match license {
        Some(l) if !l.is_empty() => l,
        _ => {
            return Err(fail(
                file,
                "object has no license section",
                "add `char LICENSE[] SEC(\"license\") = \"GPL\";`",
            ));
        }
    };
    let obj = ProbeObject::parse(String::new(), file.into(), data.to_vec()).map_err(|e| {
        fail(
            file,
            format!("object cannot be read: {e}"),
            "rebuild it with a supported clang and check its sections",
        )
    })?;
    let Some(btf) = &obj.btf else {
        let why = obj.btf_problem.clone().unwrap_or_default();
        return Err(fail(
            file,
            format!("object's .BTF cannot be read: {why}"),
            "rebuild it with clang `-g`",
        ));
    };
    verify_kconfig(file, data, None)?;
    let core = obj.core;
    let mut programs = Vec::new();
    for p in &obj.programs {
        let Some((kind, attach)) = p.attach.clone() else {
            return Err(fail(
                file,
                format!(
                    "program `{}` is in section `{}`, no known attach kind",
                    p.function, p.section
                ),
                "fix its SEC() name",
            ));
        };
        programs.push(ProgramInfo {
            name: p.function.clone(),
            section: p.section.clone(),
            kind,
            attach,
        });
    }
    if programs.is_empty() {
        return Err(fail(
            file,
            "object has no programs",
            "mark each program with SEC(\"<kind>/<attach point>\")",
        ));
    }
    let mut maps = Vec::new();
    for m in &obj.maps {
        let map_type = m.map_type.unwrap_or(0);
        let type_name = map_types::name(map_type);
        // A ring buffer with a perf-buffer fallback (EBPF_PACK_EVENTS) runs on older kernels too.
        let fallback = map_type == map_types::RINGBUF && btf.perf_fallback(&m.name).is_some();
        if let Some((major, minor)) = map_types::since(map_type)
            && rules.kernel < KernelVersion::new(major, minor)
            && !fallback
        {
            return Err(fail(
                file,
                format!(
                    "map `{}` is a {type_name}, which needs kernel {major}.{minor}; target kernel is {}",
                    m.name, rules.kernel
                ),
                "declare it with EBPF_PACK_EVENTS (a perf-buffer fallback, probes/include/ebpf_pack.h), or \
                 raise kernel.version in the target file",
            ));
        }
        let size = |id: Option<u32>| {
            id.and_then(|id| btf.size_of(id))
                .and_then(|s| u32::try_from(s).ok())
                .unwrap_or(0)
        };
        maps.push(MapInfo {
            name: m.name.clone(),
            map_type: type_name.to_string(),
            key_size: size(m.key),
            value_size: size(m.value),
            max_entries: m.max_entries.unwrap_or(0),
        });
    }
    maps.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(ObjectFacts {
        license,
        core,
        programs,
        maps,
    })
}
