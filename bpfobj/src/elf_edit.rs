//! Adds a data section to a relocatable ELF64 file (a BPF object) and defines undefined symbols in
//! it: how `.kconfig` externs, which have no section, get their values before aya (which cannot
//! place externs) loads the object. The original bytes stay where they are and keep their meaning;
//! the new section's data, a grown copy of the section-name table and a new section header table
//! with one more entry are appended, and the symbols are edited in place.

/// `SHT_PROGBITS`.
const SHT_PROGBITS: u32 = 1;
/// `SHT_SYMTAB`.
const SHT_SYMTAB: u32 = 2;
/// `SHF_ALLOC`.
const SHF_ALLOC: u64 = 2;
/// `STT_OBJECT`.
const STT_OBJECT: u8 = 1;
/// Size of an ELF64 section header.
const SHDR: usize = 64;
/// Size of an ELF64 symbol.
const SYM: usize = 24;
/// `SHN_LORESERVE`: section indexes from here on are special.
const SHN_LORESERVE: usize = 0xff00;

/// A symbol to define in the new section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition<'a> {
    /// The symbol's name; it must be undefined (`SHN_UNDEF`) in the object.
    pub name: &'a str,
    /// Byte offset in the new section.
    pub offset: u64,
    /// Size in bytes.
    pub size: u64,
}

/// Bounds-checked access to an ELF64 image in its own byte order.
struct Image {
    bytes: Vec<u8>,
    big_endian: bool,
}

impl Image {
    fn get(&self, at: usize, len: usize) -> Result<u64, String> {
        let b = at
            .checked_add(len)
            .and_then(|end| self.bytes.get(at..end))
            .ok_or("the ELF file is truncated")?;
        let push = |v: u64, &byte: &u8| v << 8 | u64::from(byte);
        Ok(if self.big_endian {
            b.iter().fold(0, push)
        } else {
            b.iter().rev().fold(0, push)
        })
    }

    fn put(&mut self, at: usize, len: usize, value: u64) -> Result<(), String> {
        let big_endian = self.big_endian;
        let b = at
            .checked_add(len)
            .and_then(|end| self.bytes.get_mut(at..end))
            .ok_or("the ELF file is truncated")?;
        for (i, slot) in b.iter_mut().enumerate() {
            let shift = if big_endian { len - 1 - i } else { i } * 8;
            *slot = (value >> shift) as u8;
        }
        Ok(())
    }

    fn pad_to(&mut self, align: usize) {
        while !self.bytes.len().is_multiple_of(align) {
            self.bytes.push(0);
        }
    }

    /// `(offset, size)` of section header `index`'s contents, checked against the file.
    fn contents(&self, shdr: usize) -> Result<(usize, usize), String> {
        let off = usize::try_from(self.get(shdr + 24, 8)?).map_err(|_| "section out of range")?;
        let size = usize::try_from(self.get(shdr + 32, 8)?).map_err(|_| "section out of range")?;
        off.checked_add(size)
            .filter(|&end| end <= self.bytes.len())
            .ok_or("a section lies outside the ELF file")?;
        Ok((off, size))
    }
}

/// Returns a copy of the relocatable ELF64 `elf` with a new allocated, read-only section `name`
/// holding `data`, and each of `defs` — an undefined symbol of the object — defined as an object
/// of that section (its binding kept, so a `__weak` extern stays weak).
pub fn add_data_section(
    elf: &[u8],
    name: &str,
    data: &[u8],
    defs: &[Definition<'_>],
) -> Result<Vec<u8>, String> {
    let (mut img, shoff, shnum, shstrndx) = open(elf)?;
    if shnum + 1 >= SHN_LORESERVE {
        return Err("the ELF file has too many sections to add one".into());
    }
    let table_len = shnum * SHDR;
    // `open` checked that the table lies inside the file.
    let mut headers = img
        .bytes
        .get(shoff..shoff + table_len)
        .unwrap_or_default()
        .to_vec();
    let header = |i: usize| shoff + i * SHDR;

    // Symbols first, in place: every definition must name an undefined symbol.
    let symtab = (0..shnum)
        .map(header)
        .find(|&h| img.get(h + 4, 4).is_ok_and(|t| t == u64::from(SHT_SYMTAB)))
        .ok_or("the ELF file has no symbol table")?;
    let (sym_off, sym_size) = img.contents(symtab)?;
    let strtab = img.get(symtab + 40, 4)? as usize;
    if strtab >= shnum {
        return Err("the symbol table names no string table".into());
    }
    let (str_off, str_size) = img.contents(header(strtab))?;
    let new_index = shnum as u64;
    for def in defs {
        let at = (0..sym_size / SYM)
            .map(|i| sym_off + i * SYM)
            .find(|&s| {
                let name_at = img.get(s, 4).ok().map(|n| n as usize);
                let undefined = img.get(s + 6, 2).is_ok_and(|shndx| shndx == 0);
                undefined
                    && name_at.is_some_and(|n| {
                        n < str_size && {
                            let tail = img.bytes.get(str_off + n..str_off + str_size);
                            tail.unwrap_or_default().split(|&b| b == 0).next()
                                == Some(def.name.as_bytes())
                        }
                    })
            })
            .ok_or_else(|| format!("the object has no undefined symbol `{}`", def.name))?;
        let bind = img.get(at + 4, 1)? >> 4;
        img.put(at + 4, 1, bind << 4 | u64::from(STT_OBJECT))?;
        img.put(at + 6, 2, new_index)?;
        img.put(at + 8, 8, def.offset)?;
        img.put(at + 16, 8, def.size)?;
    }

    // The new section's contents, then the grown name table, then the new header table.
    img.pad_to(8);
    let data_off = img.bytes.len() as u64;
    img.bytes.extend_from_slice(data);
    let (names_off, names_size) = img.contents(header(shstrndx))?;
    let new_names_off = img.bytes.len() as u64;
    img.bytes
        .extend_from_within(names_off..names_off + names_size);
    img.bytes.extend_from_slice(name.as_bytes());
    img.bytes.push(0);
    img.pad_to(8);
    let new_shoff = img.bytes.len();
    img.bytes.append(&mut headers);
    img.bytes.resize(new_shoff + table_len + SHDR, 0);
    let names = new_shoff + shstrndx * SHDR;
    img.put(names + 24, 8, new_names_off)?;
    img.put(names + 32, 8, (names_size + name.len() + 1) as u64)?;
    let new = new_shoff + table_len;
    img.put(new, 4, names_size as u64)?;
    img.put(new + 4, 4, u64::from(SHT_PROGBITS))?;
    img.put(new + 8, 8, SHF_ALLOC)?;
    img.put(new + 24, 8, data_off)?;
    img.put(new + 32, 8, data.len() as u64)?;
    img.put(new + 48, 8, 8)?;
    img.put(0x28, 8, new_shoff as u64)?;
    img.put(0x3c, 2, new_index + 1)?;
    Ok(img.bytes)
}

/// Returns a copy of the ELF64 `elf` whose section `name` holds `data` instead: appended at the end
/// of the file (8-byte aligned), the section's header pointed there; the old contents stay as
/// unreferenced bytes. How a grown `.BTF` replaces the object's own.
pub fn replace_section(elf: &[u8], name: &str, data: &[u8]) -> Result<Vec<u8>, String> {
    let (mut img, shoff, shnum, shstrndx) = open(elf)?;
    let (names_off, names_size) = img.contents(shoff + shstrndx * SHDR)?;
    let header = (0..shnum)
        .map(|i| shoff + i * SHDR)
        .find(|&h| {
            img.get(h, 4).is_ok_and(|n| {
                let n = n as usize;
                n < names_size
                    && img
                        .bytes
                        .get(names_off + n..names_off + names_size)
                        .unwrap_or_default()
                        .split(|&b| b == 0)
                        .next()
                        == Some(name.as_bytes())
            })
        })
        .ok_or_else(|| format!("the ELF file has no section `{name}`"))?;
    img.pad_to(8);
    let at = img.bytes.len() as u64;
    img.bytes.extend_from_slice(data);
    img.put(header + 24, 8, at)?;
    img.put(header + 32, 8, data.len() as u64)?;
    Ok(img.bytes)
}

/// Checks the identification and section header table of an ELF64 file: the image, `e_shoff`,
/// `e_shnum` and `e_shstrndx`.
fn open(elf: &[u8]) -> Result<(Image, usize, usize, usize), String> {
    if elf.get(..4) != Some(b"\x7fELF") || elf.get(4) != Some(&2) {
        return Err("not a 64-bit ELF file".into());
    }
    let big_endian = match elf.get(5) {
        Some(1) => false,
        Some(2) => true,
        _ => return Err("the ELF file has no valid byte order".into()),
    };
    let img = Image {
        bytes: elf.to_vec(),
        big_endian,
    };
    let shoff = usize::try_from(img.get(0x28, 8)?).map_err(|_| "section headers out of range")?;
    let shentsize = img.get(0x3a, 2)? as usize;
    let shnum = img.get(0x3c, 2)? as usize;
    let shstrndx = img.get(0x3e, 2)? as usize;
    if shentsize != SHDR || shnum == 0 || shstrndx >= shnum {
        return Err("the ELF file's section header table is not one this tool can extend".into());
    }
    shoff
        .checked_add(shnum * SHDR)
        .filter(|&end| end <= img.bytes.len())
        .ok_or("the ELF file's section headers are truncated")?;
    Ok((img, shoff, shnum, shstrndx))
}

#[cfg(test)]
mod tests {
    use super::*;
    use object::read::elf::ElfFile64;
    use object::{Endianness, Object, ObjectSection, ObjectSymbol, SymbolSection};

    /// A minimal relocatable ELF64 in either byte order: null, .strtab, .symtab (null, an undefined
    /// weak `ext_a`, an undefined global `ext_b`), .shstrtab.
    fn object(big_endian: bool) -> Vec<u8> {
        let mut img = Image {
            bytes: vec![0; 64],
            big_endian,
        };
        img.bytes[..4].copy_from_slice(b"\x7fELF");
        img.bytes[4] = 2;
        img.bytes[5] = if big_endian { 2 } else { 1 };
        img.bytes[6] = 1;
        img.put(0x10, 2, 1).expect("e_type"); // ET_REL
        img.put(0x12, 2, 247).expect("e_machine"); // EM_BPF
        img.put(0x14, 4, 1).expect("e_version");
        img.put(0x34, 2, 64).expect("e_ehsize");
        let strtab = b"\0ext_a\0ext_b\0".to_vec();
        let shstrtab = b"\0.strtab\0.symtab\0.shstrtab\0".to_vec();
        let str_off = img.bytes.len();
        img.bytes.extend_from_slice(&strtab);
        img.pad_to(8);
        let sym_off = img.bytes.len();
        img.bytes.resize(sym_off + 3 * SYM, 0);
        img.put(sym_off + SYM, 4, 1).expect("name");
        img.bytes[sym_off + SYM + 4] = 2 << 4; // STB_WEAK, STT_NOTYPE
        img.put(sym_off + 2 * SYM, 4, 7).expect("name");
        img.bytes[sym_off + 2 * SYM + 4] = 1 << 4; // STB_GLOBAL
        let names_off = img.bytes.len();
        img.bytes.extend_from_slice(&shstrtab);
        img.pad_to(8);
        let shoff = img.bytes.len();
        img.bytes.resize(shoff + 4 * SHDR, 0);
        let sh = |i: usize| shoff + i * SHDR;
        for (i, (name, ty, off, size, link, entsize)) in [
            (1, 3, str_off, strtab.len(), 0, 0),
            (9, 2, sym_off, 3 * SYM, 1, SYM),
            (17, 3, names_off, shstrtab.len(), 0, 0),
        ]
        .into_iter()
        .enumerate()
        {
            let h = sh(i + 1);
            img.put(h, 4, name).expect("sh_name");
            img.put(h + 4, 4, ty).expect("sh_type");
            img.put(h + 24, 8, off as u64).expect("sh_offset");
            img.put(h + 32, 8, size as u64).expect("sh_size");
            img.put(h + 40, 4, link).expect("sh_link");
            img.put(h + 48, 8, 1).expect("sh_addralign");
            img.put(h + 56, 8, entsize as u64).expect("sh_entsize");
        }
        img.put(sh(2) + 44, 4, 1).expect("sh_info: first global");
        img.put(0x28, 8, shoff as u64).expect("e_shoff");
        img.put(0x3a, 2, SHDR as u64).expect("e_shentsize");
        img.put(0x3c, 2, 4).expect("e_shnum");
        img.put(0x3e, 2, 3).expect("e_shstrndx");
        img.bytes
    }

    #[test]
    fn externs_become_objects_of_the_new_section_in_either_byte_order() {
        for big_endian in [false, true] {
            let defs = [
                Definition {
                    name: "ext_b",
                    offset: 4,
                    size: 4,
                },
                Definition {
                    name: "ext_a",
                    offset: 0,
                    size: 1,
                },
            ];
            let out = add_data_section(&object(big_endian), ".rodata.kconfig", &[7; 8], &defs)
                .expect("extended");
            let elf = ElfFile64::<Endianness>::parse(&*out).expect("still ELF");
            let section = elf.section_by_name(".rodata.kconfig").expect("new section");
            assert_eq!(section.data().expect("data"), [7; 8]);
            assert!(elf.section_by_name(".symtab").is_some(), "old names kept");
            let sym = |n: &str| elf.symbols().find(|s| s.name() == Ok(n)).expect("symbol");
            for (name, addr, size, weak) in [("ext_a", 0, 1, true), ("ext_b", 4, 4, false)] {
                let s = sym(name);
                assert_eq!(
                    s.section(),
                    SymbolSection::Section(section.index()),
                    "{name}"
                );
                assert_eq!(
                    (s.address(), s.size(), s.is_weak()),
                    (addr, size, weak),
                    "{name}"
                );
                assert_eq!(s.kind(), object::SymbolKind::Data, "{name}");
            }
        }
    }

    #[test]
    fn a_replaced_section_holds_the_new_bytes_and_the_rest_is_kept() {
        for big_endian in [false, true] {
            let out = replace_section(&object(big_endian), ".strtab", b"\0ext_a\0ext_b\0grown\0")
                .expect("replaced");
            let elf = ElfFile64::<Endianness>::parse(&*out).expect("still ELF");
            let strtab = elf.section_by_name(".strtab").expect(".strtab");
            assert_eq!(strtab.data().expect("data"), b"\0ext_a\0ext_b\0grown\0");
            assert!(
                elf.symbols().any(|s| s.name() == Ok("ext_b")),
                "symbols still named"
            );
        }
        assert_eq!(
            replace_section(&object(false), ".nope", b""),
            Err("the ELF file has no section `.nope`".into())
        );
    }

    #[test]
    fn refusals_name_the_problem() {
        let obj = object(false);
        let missing = [Definition {
            name: "nope",
            offset: 0,
            size: 1,
        }];
        assert_eq!(
            add_data_section(&obj, ".x", &[0], &missing),
            Err("the object has no undefined symbol `nope`".into())
        );
        assert!(add_data_section(&obj[..40], ".x", &[0], &[]).is_err());
        assert!(add_data_section(b"\x7fELF\x01", ".x", &[0], &[]).is_err());
        // Every truncation of the file is refused, never a panic.
        for len in 0..obj.len() {
            let _ = add_data_section(&obj[..len], ".x", &[0], &[]);
        }
    }
}
