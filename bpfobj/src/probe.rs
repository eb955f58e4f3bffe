//! One BPF object file and what the loader learns from its bytes alone: programs and their sections,
//! maps, BTF and whether CO-RE relocations need kernel BTF. No kernel access here.

use std::path::{Path, PathBuf};

use ebpf_pack_manifest::AttachKind;
use object::read::elf::ElfFile64;
use object::{Endianness, Object, ObjectSection, ObjectSymbol, SectionKind, SymbolKind};

use crate::btf::{self, Btf};

/// A program of the object: the function aya knows it by and the section that says where it attaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramSpec {
    /// Function name (aya's key for the program).
    pub function: String,
    /// ELF section name (`tracepoint/syscalls/sys_enter_openat`).
    pub section: String,
    /// Attach kind and point from the shared section table; `None` if the section is no known kind.
    pub attach: Option<(AttachKind, Option<String>)>,
}

/// A map declared by the object (BTF-defined, or legacy `maps` section with only type and size).
pub use crate::btf::MapDef as MapDecl;

/// A parsed BPF object.
#[derive(Debug, Clone)]
pub struct ProbeObject {
    /// Probe name (the file stem without `.bpf.o`).
    pub name: String,
    /// Where it was read from.
    pub path: PathBuf,
    /// The object's bytes, as handed to aya.
    pub data: Vec<u8>,
    /// Programs, sorted by function name.
    pub programs: Vec<ProgramSpec>,
    /// Maps in declaration order.
    pub maps: Vec<MapDecl>,
    /// The object's own BTF, used to decode events and map contents.
    pub btf: Option<Btf>,
    /// Why the object's `.BTF` could not be read, if it is present but malformed.
    pub btf_problem: Option<String>,
    /// Whether `.BTF.ext` holds CO-RE relocations (kernel BTF required).
    pub core: bool,
}

/// The probe name of an object file: its file name without `.bpf.o` (or `.o`).
pub fn probe_name(path: &Path) -> String {
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = file
        .strip_suffix(".bpf.o")
        .or_else(|| file.strip_suffix(".o"))
        .unwrap_or(&file);
    stem.to_owned()
}

/// Whether the ELF header's `e_machine` is `EM_BPF` (247).
fn is_bpf_machine(elf: &[u8], little_endian: bool) -> bool {
    const EM_BPF: u16 = 247;
    match elf.get(18..20) {
        Some(&[a, b]) if little_endian => u16::from_le_bytes([a, b]) == EM_BPF,
        Some(&[a, b]) => u16::from_be_bytes([a, b]) == EM_BPF,
        _ => false,
    }
}

/// Sorts a short list in place (insertion sort: far less code than the standard sorts).
pub fn sort_short<T>(v: &mut [T], less: impl Fn(&T, &T) -> bool) {
    for i in 1..v.len() {
        let mut j = i;
        while j > 0 && matches!((v.get(j), v.get(j - 1)), (Some(a), Some(b)) if less(a, b)) {
            v.swap(j, j - 1);
            j -= 1;
        }
    }
}

impl ProbeObject {
    /// The object's CO-RE relocation records (`.BTF.ext`), empty without any.
    pub fn core_relos(&self) -> Result<Vec<btf::CoreRelo>, String> {
        let elf = ElfFile64::<Endianness>::parse(&*self.data).map_err(|e| e.to_string())?;
        match elf.section_by_name(".BTF.ext").and_then(|s| s.data().ok()) {
            Some(ext) => btf::core_relos(ext).map_err(|e| format!(".BTF.ext: {e}")),
            None => Ok(Vec::new()),
        }
    }

    /// Parses an object's bytes; the error names the probe and file.
    pub fn parse(name: String, path: PathBuf, data: Vec<u8>) -> Result<ProbeObject, String> {
        let bad = |what: String| format!("probe {name}: {}: {what}", path.display());
        // BPF objects are always ELF64. Reading them as exactly that, rather than through
        // `object::File` (which dispatches over every format aya's `write` feature enables: PE, COFF,
        // Mach-O), keeps this code small in the loader.
        if data.starts_with(b"\x7fELF") && data.get(4) == Some(&1) {
            return Err(bad("not a BPF object (32-bit ELF)".to_owned()));
        }
        let elf = ElfFile64::<Endianness>::parse(&*data)
            .map_err(|e| bad(format!("not an ELF object: {e}")))?;
        if !is_bpf_machine(&data, elf.is_little_endian()) {
            return Err(bad(
                "not a BPF object (ELF machine is not EM_BPF)".to_owned()
            ));
        }
        let section_data = |name: &str| elf.section_by_name(name).and_then(|s| s.data().ok());
        let (btf, btf_problem) = match section_data(".BTF").map(Btf::parse) {
            Some(Ok(b)) => (Some(b), None),
            Some(Err(e)) => (None, Some(e.to_string())),
            None => (None, None),
        };
        let core = match section_data(".BTF.ext").map(btf::ext_has_core_relocs) {
            Some(Ok(c)) => c,
            Some(Err(e)) => return Err(bad(format!(".BTF.ext: {e}"))),
            None => false,
        };

        let mut programs = Vec::new();
        let mut maps: Vec<MapDecl> = btf.as_ref().map(|b| b.map_defs()).unwrap_or_default();
        for sym in elf.symbols() {
            let Some(index) = sym.section_index() else {
                continue;
            };
            let Ok(section) = elf.section_by_index(index) else {
                continue;
            };
            let (Ok(sym_name), Ok(sec_name)) = (sym.name(), section.name()) else {
                continue;
            };
            if sym_name.is_empty() {
                continue;
            }
            // Like aya: every function symbol in an executable section other than `.text*` is a program.
            if sym.kind() == SymbolKind::Text
                && section.kind() == SectionKind::Text
                && !sec_name.starts_with(".text")
            {
                // aya slices the code by symbol address and size without checking: do it here.
                if sym
                    .address()
                    .checked_add(sym.size())
                    .is_none_or(|end| end > section.size())
                {
                    return Err(bad(format!(
                        "program `{sym_name}` lies outside its section `{sec_name}`"
                    )));
                }
                programs.push(ProgramSpec {
                    function: sym_name.to_owned(),
                    section: sec_name.to_owned(),
                    attach: AttachKind::from_section(sec_name),
                });
            } else if sec_name.starts_with("maps") && sym.kind() == SymbolKind::Data {
                // Legacy `struct bpf_map_def` maps: type, key_size, value_size, max_entries, flags.
                let word = |i: usize| {
                    section.data().ok().and_then(|d| {
                        let off = usize::try_from(sym.address()).ok()?.checked_add(4 * i)?;
                        let w: [u8; 4] = d.get(off..off.checked_add(4)?)?.try_into().ok()?;
                        Some(if elf.is_little_endian() {
                            u32::from_le_bytes(w)
                        } else {
                            u32::from_be_bytes(w)
                        })
                    })
                };
                let map_type = word(0);
                let max_entries = word(3);
                maps.push(MapDecl {
                    name: sym_name.to_owned(),
                    map_type,
                    key: None,
                    value: None,
                    pinning: 0,
                    max_entries,
                    value_size: word(2),
                });
            }
        }
        sort_short(&mut programs, |a, b| a.function < b.function);
        Ok(ProbeObject {
            name,
            path,
            data,
            programs,
            maps,
            btf,
            btf_problem,
            core,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_names_drop_the_object_suffix() {
        assert_eq!(probe_name(Path::new("/b/bpf/opensnoop.bpf.o")), "opensnoop");
        assert_eq!(probe_name(Path::new("x.o")), "x");
        assert_eq!(probe_name(Path::new("/")), "");
    }

    #[test]
    fn short_sort_orders() {
        let mut v = vec![3, 1, 2, 5, 4, 1];
        sort_short(&mut v, |a, b| a < b);
        assert_eq!(v, [1, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn non_elf_and_non_bpf_files_are_rejected() {
        let err = ProbeObject::parse("x".into(), "x.o".into(), b"hello".to_vec());
        assert!(err.is_err_and(|e| e.contains("not an ELF object")));
        let me = std::env::current_exe().expect("test binary path");
        let data = std::fs::read(&me).expect("read test binary");
        let err = ProbeObject::parse("x".into(), me, data);
        assert!(err.is_err_and(|e| e.contains("not a BPF object")));
    }
}
