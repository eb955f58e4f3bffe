//! Finding where a uprobe goes: the binary or library (a bare library name is searched in the usual
//! library directories) and the file offset of a function symbol in it.

use std::path::{Path, PathBuf};

use object::{Endianness, Object, ObjectSection, ObjectSymbol};

/// ELF files of the loader's own class: a 64-bit board runs 64-bit binaries (this reuses the ELF64
/// reader that BPF objects need anyway; the any-format `object::File` costs kilobytes).
#[cfg(target_pointer_width = "64")]
type Elf<'a> = object::read::elf::ElfFile64<'a, Endianness>;
#[cfg(not(target_pointer_width = "64"))]
type Elf<'a> = object::read::elf::ElfFile32<'a, Endianness>;

/// Directories searched for a bare library name such as `libc.so.6`, each also with its multiarch
/// subdirectories (`x86_64-linux-gnu`, ...).
const LIB_DIRS: [&str; 4] = ["/lib", "/usr/lib", "/lib64", "/usr/lib64"];

/// The file a uprobe target names: a path as given, or a bare library name found in [`LIB_DIRS`].
pub fn find_binary(target: &Path) -> Result<PathBuf, String> {
    if target.components().count() > 1 || target.exists() {
        return Ok(target.to_path_buf());
    }
    for dir in LIB_DIRS.map(Path::new) {
        let direct = dir.join(target);
        if direct.exists() {
            return Ok(direct);
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in entries.flatten() {
            let candidate = e.path().join(target);
            if e.file_name().to_string_lossy().contains("-linux-") && candidate.exists() {
                return Ok(candidate);
            }
        }
    }
    Err(format!(
        "no {} in {} or their multiarch subdirectories",
        target.display(),
        LIB_DIRS.join(", ")
    ))
}

/// The library or binary a funccount-style spec names: a path, a library file name, or a bare
/// library name as BCC takes it (`c` is libc: `libc.so.6`, then `libc.so`).
pub fn find_library(target: &Path) -> Result<PathBuf, String> {
    let name = target.to_string_lossy();
    match find_binary(target) {
        Err(e) if !name.contains('/') && !name.contains(".so") => {
            [format!("lib{name}.so.6"), format!("lib{name}.so")]
                .iter()
                .find_map(|n| find_binary(Path::new(n)).ok())
                .ok_or(e)
        }
        found => found,
    }
}

/// The defined functions of the ELF file `data` (static symbol table, and the dynamic one), each
/// name once with its file offset, in name order.
pub fn functions(data: &[u8]) -> Result<Vec<(String, u64)>, String> {
    let elf =
        Elf::parse(data).map_err(|e| format!("not an ELF file of this machine's class: {e}"))?;
    let mut out: Vec<(String, u64)> = elf
        .symbols()
        .chain(elf.dynamic_symbols())
        .filter(|s| s.is_definition() && s.kind() == object::SymbolKind::Text)
        .filter_map(|sym| {
            let name = sym.name().ok()?;
            let section = elf.section_by_index(sym.section_index()?).ok()?;
            let (file_start, _) = section.file_range()?;
            let offset = sym
                .address()
                .checked_sub(section.address())?
                .checked_add(file_start)?;
            Some((name.to_owned(), offset))
        })
        .collect();
    out.sort_unstable();
    out.dedup_by(|b, a| a.0 == b.0);
    Ok(out)
}

/// The file offset of function `func` in the ELF file `data` (static or dynamic symbol table).
pub fn symbol_offset(data: &[u8], func: &str) -> Result<u64, String> {
    functions(data)?
        .into_iter()
        .find(|(name, _)| name == func)
        .map(|(_, offset)| offset)
        .ok_or_else(|| format!("no function `{func}` in its symbol tables"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_functions_of_this_test_binary() {
        let me = std::env::current_exe().expect("test binary");
        let data = std::fs::read(&me).expect("read");
        assert!(symbol_offset(&data, "main").is_ok_and(|o| o > 0));
        assert!(symbol_offset(&data, "no_such_function_here").is_err());
        assert!(symbol_offset(b"junk", "main").is_err());
        assert_eq!(find_binary(&me), Ok(me.clone()));
        assert!(find_binary(Path::new("libnope-ebpf-run.so.9")).is_err());
    }
}
