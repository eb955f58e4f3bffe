//! Whether an object's bytes are whole enough to hand to aya, checked before it sees them.
//!
//! aya-obj 0.3 trusts some of what it reads: offsets in `.BTF` and `.BTF.ext` (see
//! [`btf::check_loadable`]), the `.BTF.ext` header in the machine's byte order, and the code
//! relocations of program sections (a relocation against a symbol it does not expect there is a
//! `todo!()`, a call target outside its section an arithmetic overflow). The loader runs as root on
//! whatever it is handed, so each of these is refused here with a message instead.

use object::read::elf::ElfFile64;
use object::{
    Endianness, Object, ObjectKind, ObjectSection, ObjectSymbol, RelocationTarget, SectionKind,
    SymbolKind,
};

use crate::btf;

/// Largest `.bss` accepted: it becomes one map value, and no kernel takes values this large (the
/// array map's limit is KMALLOC_MAX_SIZE, 4 MiB with 4 KiB pages).
const MAX_BSS: u64 = 64 << 20;

/// Size of one BPF instruction.
const INSN: i128 = 8;

/// Refuses bytes aya would read unchecked: an object of the other byte order than the machine's,
/// `.BTF`/`.BTF.ext` whose offsets, sizes or names do not hold, and code relocations aya cannot
/// resolve. The error says what is wrong.
pub fn check_loadable(data: &[u8], big_endian_machine: bool) -> Result<(), String> {
    let elf =
        ElfFile64::<Endianness>::parse(data).map_err(|e| format!("not an ELF object: {e}"))?;
    if elf.is_little_endian() == big_endian_machine {
        let (object, machine) = if big_endian_machine {
            ("little", "big")
        } else {
            ("big", "little")
        };
        return Err(format!(
            "the object is {object}-endian and this machine {machine}-endian: build it for this board"
        ));
    }
    let section = |name: &str| match elf.section_by_name(name) {
        Some(s) => s
            .data()
            .map(Some)
            .map_err(|e| format!("section {name} cannot be read: {e}")),
        None => Ok(None),
    };
    match (section(".BTF")?, section(".BTF.ext")?) {
        (Some(btf), ext) => btf::check_loadable(btf, ext).map_err(|e| e.to_string())?,
        (None, Some(_)) => return Err(".BTF.ext without the .BTF it refers to".to_owned()),
        (None, None) => {}
    }
    check_layout(&elf)?;
    check_code_relocations(&elf)
}

/// A relocatable object whose sections sit at address 0, no `.bss` larger than a map value, and
/// every symbol inside its section: aya slices by symbol address minus section address, unchecked.
fn check_layout(elf: &ElfFile64<'_, Endianness>) -> Result<(), String> {
    if elf.kind() != ObjectKind::Relocatable {
        return Err("not a relocatable object (ET_REL), as clang writes BPF objects".to_owned());
    }
    if let Some(s) = elf.sections().find(|s| s.address() != 0) {
        return Err(format!(
            "section {} has address {:#x}: sections of a relocatable object sit at 0",
            s.name().unwrap_or("?"),
            s.address()
        ));
    }
    // A `.bss` has no bytes in the file, whatever size it claims: aya allocates that size.
    if let Some(s) = elf
        .sections()
        .find(|s| s.kind() == SectionKind::UninitializedData && s.size() > MAX_BSS)
    {
        return Err(format!(
            "section {} claims {} bytes of zeroed data, more than the {MAX_BSS} a map value may hold",
            s.name().unwrap_or("?"),
            s.size()
        ));
    }
    // Every symbol lies inside its section (its bytes in the file, for sections that have some):
    // aya slices functions and legacy map definitions by symbol address and size.
    for sym in elf.symbols() {
        let Some(section) = sym
            .section_index()
            .and_then(|i| elf.section_by_index(i).ok())
        else {
            continue;
        };
        // A legacy `maps` section is read for its bytes even when it has none in the file (NOBITS).
        let legacy_maps = section.name().is_ok_and(|n| n.starts_with("maps"));
        let room = if section.kind() == SectionKind::UninitializedData && !legacy_maps {
            section.size()
        } else {
            section.data().map_or(0, |d| d.len() as u64)
        };
        if sym
            .address()
            .checked_add(sym.size())
            .is_none_or(|end| end > room)
        {
            return Err(format!(
                "symbol `{}` lies outside its section {}",
                sym.name().unwrap_or("?"),
                section.name().unwrap_or("?")
            ));
        }
    }
    Ok(())
}

/// Every relocation of a code section that aya treats as a code reference (its symbol is a function
/// or lies in a code section) is one aya resolves: against a function, or against a section symbol
/// as a call (32-bit) or a code address load (64-bit), landing inside the target section.
fn check_code_relocations(elf: &ElfFile64<'_, Endianness>) -> Result<(), String> {
    let is_code = |index| {
        elf.section_by_index(index)
            .is_ok_and(|s| s.kind() == SectionKind::Text)
    };
    for section in elf.sections().filter(|s| s.kind() == SectionKind::Text) {
        let name = section.name().unwrap_or("?");
        let code = section.data().unwrap_or_default();
        for (offset, rel) in section.relocations() {
            let RelocationTarget::Symbol(index) = rel.target() else {
                continue;
            };
            let Ok(sym) = elf.symbol_by_index(index) else {
                continue;
            };
            if sym.kind() != SymbolKind::Text && !sym.section_index().is_some_and(is_code) {
                if sym.section_index().is_some() {
                    check_data_relocation(elf, &section, name, offset, index.0)?;
                }
                continue;
            }
            let bad = |what: &str| {
                format!(
                    "section {name}: the relocation at offset {offset:#x} (symbol {}) {what}",
                    index.0
                )
            };
            let Some(target) = sym
                .section_index()
                .and_then(|i| elf.section_by_index(i).ok())
            else {
                return Err(bad("refers to no section"));
            };
            if sym.kind() == SymbolKind::Text {
                continue;
            }
            if sym.kind() != SymbolKind::Section || !matches!(rel.size(), 32 | 64) {
                return Err(bad("is neither a call nor a code address"));
            }
            // The instruction's immediate: a call's target is (imm + 1) instructions on, a code
            // address load's imm bytes into the section.
            let imm = usize::try_from(offset)
                .ok()
                .and_then(|at| code.get(at.checked_add(4)?..at.checked_add(8)?))
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map(|b| {
                    i128::from(if elf.is_little_endian() {
                        i32::from_le_bytes(b)
                    } else {
                        i32::from_be_bytes(b)
                    })
                })
                .ok_or_else(|| bad("lies outside its section"))?;
            let to = i128::from(sym.address())
                + if rel.size() == 32 {
                    (imm + 1) * INSN
                } else {
                    imm
                };
            if to < 0 || to >= i128::from(target.size()) {
                return Err(bad("points outside the section it refers to"));
            }
        }
    }
    Ok(())
}

/// `lddw`, the 16-byte load of a 64-bit immediate: what a map or data relocation patches.
const LD_IMM64: u8 = 0x18;
/// `call`: aya leaves relocations on calls to its call linking.
const CALL: u8 = 0x85;

/// A relocation against a map or data section patches an `lddw` whose two halves both lie in the
/// function holding it: aya writes the second half unchecked.
fn check_data_relocation(
    elf: &ElfFile64<'_, Endianness>,
    section: &object::read::elf::ElfSection64<'_, '_, Endianness>,
    name: &str,
    offset: u64,
    symbol: usize,
) -> Result<(), String> {
    let bad = |what: &str| {
        format!("section {name}: the map relocation at offset {offset:#x} (symbol {symbol}) {what}")
    };
    let code = section.data().unwrap_or_default();
    let opcode = usize::try_from(offset).ok().and_then(|at| code.get(at));
    if opcode == Some(&CALL) {
        return Ok(());
    }
    if opcode != Some(&LD_IMM64) {
        return Err(bad("is not on a 64-bit immediate load (lddw)"));
    }
    // aya relocates the functions, each the bytes of a function symbol of the section.
    let holder = elf.symbols().find(|f| {
        f.kind() == SymbolKind::Text
            && f.section_index() == Some(section.index())
            && f.address() <= offset
            && offset < f.address().saturating_add(f.size())
    });
    if let Some(f) = holder
        && offset.saturating_add(16) > f.address().saturating_add(f.size())
    {
        return Err(bad("is on an lddw cut off by the end of its function"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The inputs fuzzing found aya panicking on (fuzz/regressions/object_load: a byte of BTF
    /// features, then the object), each with what must refuse it here now.
    #[test]
    fn objects_aya_panicked_on_are_refused() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fuzz/regressions/object_load"
        );
        let cases = [
            ("bss-size-allocation", "claims 399431958544 bytes"),
            ("core-access-string-offset", "access"),
            ("core-field-size-overflow", "larger than 512 MiB"),
            ("legacy-map-symbol-outside", "lies outside its section maps"),
            ("section-address-underflow", "sit at 0"),
            ("map-relocation-lddw-cut", "lddw"),
            (
                "section-symbol-relocation-todo",
                "neither a call nor a code address",
            ),
        ];
        for (name, why) in cases {
            let input = std::fs::read(format!("{dir}/{name}")).expect("regression input");
            let err = check_loadable(&input[1..], false).expect_err(name);
            assert!(err.contains(why), "{name}: {err}");
        }
        // Found by fuzzing with overflow checks in aya; in the build ebpf-run ships aya's shift
        // arithmetic wraps (the verifier then judges the program): a well-formed object, accepted.
        let wraps = std::fs::read(format!("{dir}/core-shift-wraps-in-release")).expect("input");
        assert_eq!(check_loadable(&wraps[1..], false), Ok(()));
    }

    #[test]
    fn byte_order_and_kind_are_checked() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/seeds/object_load");
        let le = std::fs::read(format!("{dir}/x86_64-opensnoop")).expect("seed");
        let be = std::fs::read(format!("{dir}/s390x-opensnoop")).expect("seed");
        assert_eq!(check_loadable(&le[1..], false), Ok(()));
        assert_eq!(check_loadable(&be[1..], true), Ok(()));
        let err = check_loadable(&be[1..], false).expect_err("big-endian object");
        assert!(
            err.contains("big-endian and this machine little-endian"),
            "{err}"
        );
        // ET_EXEC instead of ET_REL.
        let mut exec = le[1..].to_vec();
        exec[16] = 2;
        let err = check_loadable(&exec, false).expect_err("ET_EXEC");
        assert!(err.contains("relocatable"), "{err}");
    }
}
