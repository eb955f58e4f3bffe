//! Naming code addresses, shared by the loader (on the board) and the host (`ebpf-pack run`): kernel
//! text symbols from a kallsyms listing, the executable mappings of a process from its
//! `/proc/PID/maps`, and function symbols of ELF files by file offset, with the GNU build id that
//! proves a host file is the board's binary.

use object::read::elf::{ElfFile, FileHeader};
use object::{Endianness, Object, ObjectSymbol, SymbolKind};

/// Function symbols as address ranges, sorted by start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SymbolTable {
    /// `(start, end, name)`; `end` is the next symbol's start when the size is unknown.
    syms: Vec<(u64, u64, String)>,
}

impl SymbolTable {
    /// A table of `(start, end, name)` ranges in any order; an `end` of 0 means "up to the next one".
    pub fn from_ranges(mut syms: Vec<(u64, u64, String)>) -> SymbolTable {
        syms.sort_unstable();
        syms.dedup_by(|b, a| a.0 == b.0);
        let starts: Vec<u64> = syms.iter().map(|s| s.0).skip(1).collect();
        for (s, next) in syms.iter_mut().zip(starts.iter().map(Some).chain([None])) {
            if s.1 <= s.0 {
                s.1 = next.copied().unwrap_or(u64::MAX);
            }
        }
        SymbolTable { syms }
    }

    /// The text (`t`/`T`) symbols of a kallsyms listing with non-zero addresses.
    pub fn from_kallsyms(text: &str) -> SymbolTable {
        let syms = text
            .lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                let addr = u64::from_str_radix(w.next()?, 16)
                    .ok()
                    .filter(|&a| a != 0)?;
                let kind = w.next()?;
                let name = w.next()?;
                matches!(kind, "t" | "T").then(|| (addr, 0, name.to_owned()))
            })
            .collect();
        SymbolTable::from_ranges(syms)
    }

    /// How many symbols there are.
    pub fn len(&self) -> usize {
        self.syms.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.syms.is_empty()
    }

    /// The symbol holding `addr`: its `(start, end, name)`.
    pub fn range_of(&self, addr: u64) -> Option<(u64, u64, &str)> {
        let at = self
            .syms
            .partition_point(|(a, _, _)| *a <= addr)
            .checked_sub(1)?;
        let (start, end, name) = self.syms.get(at)?;
        (addr < *end).then_some((*start, *end, name.as_str()))
    }

    /// The function holding `addr` and the offset into it.
    pub fn lookup(&self, addr: u64) -> Option<(&str, u64)> {
        self.range_of(addr).map(|(start, _, n)| (n, addr - start))
    }
}

/// One executable, file-backed mapping of a process (a line of `/proc/PID/maps`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
    /// File offset mapped at `start`.
    pub offset: u64,
    /// The file, as the process's mount namespace names it.
    pub path: String,
}

impl Mapping {
    /// The file offset of `addr`, when this mapping holds it.
    pub fn file_offset(&self, addr: u64) -> Option<u64> {
        (self.start..self.end)
            .contains(&addr)
            .then(|| addr - self.start + self.offset)
    }
}

/// The executable file-backed mappings of a `/proc/PID/maps` text (`[vdso]`, anonymous and
/// non-executable ones left out; a ` (deleted)` suffix kept out of the path).
pub fn parse_proc_maps(text: &str) -> Vec<Mapping> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.splitn(6, ' ');
            let (start, end) = w.next()?.split_once('-')?;
            let perms = w.next()?;
            let offset = w.next()?;
            let _dev = w.next()?;
            let _inode = w.next()?;
            let path = w.next()?.trim_start();
            let path = path.strip_suffix(" (deleted)").unwrap_or(path);
            if perms.as_bytes().get(2) != Some(&b'x') || !path.starts_with('/') {
                return None;
            }
            Some(Mapping {
                start: u64::from_str_radix(start, 16).ok()?,
                end: u64::from_str_radix(end, 16).ok()?,
                offset: u64::from_str_radix(offset, 16).ok()?,
                path: path.to_owned(),
            })
        })
        .collect()
}

/// The mapping of `maps` holding `addr`.
pub fn find_mapping(maps: &[Mapping], addr: u64) -> Option<&Mapping> {
    maps.iter().find(|m| m.file_offset(addr).is_some())
}

/// `NT_GNU_BUILD_ID`.
const NT_GNU_BUILD_ID: u32 = 3;
/// `PT_NOTE`.
const PT_NOTE: u32 = 4;
/// Longest build id taken (SHA-1 ids are 20 bytes; 64 leaves room for any other).
const MAX_BUILD_ID: usize = 64;

/// The GNU build id of an ELF file of either class and byte order, read from the `PT_NOTE`
/// segments that lie within `head` (the first page of a file holds them in practice), so a board
/// need not read whole libraries to name them.
pub fn elf_build_id(head: &[u8]) -> Option<Vec<u8>> {
    if head.get(..4)? != b"\x7fELF" {
        return None;
    }
    let wide = *head.get(4)? == 2;
    let big = *head.get(5)? == 2;
    let int = |off: usize, size: usize| -> Option<u64> {
        let b = head.get(off..off.checked_add(size)?)?;
        Some(b.iter().enumerate().fold(0u64, |acc, (i, &x)| {
            let shift = if big { (size - 1 - i) * 8 } else { i * 8 };
            acc | (u64::from(x) << shift)
        }))
    };
    let (phoff, phentsize, phnum) = if wide {
        (int(0x20, 8)?, int(0x36, 2)?, int(0x38, 2)?)
    } else {
        (int(0x1c, 4)?, int(0x2a, 2)?, int(0x2c, 2)?)
    };
    for i in 0..phnum.min(64) {
        let ph = usize::try_from(phoff.checked_add(i.checked_mul(phentsize)?)?).ok()?;
        if int(ph, 4)? != u64::from(PT_NOTE) {
            continue;
        }
        // p_offset follows p_type (and p_flags on ELF64); p_filesz comes two (ELF64) or three words on.
        let (off, size) = if wide {
            (int(ph + 8, 8)?, int(ph + 32, 8)?)
        } else {
            (int(ph + 4, 4)?, int(ph + 16, 4)?)
        };
        let mut at = usize::try_from(off).ok()?;
        let end = at.checked_add(usize::try_from(size).ok()?)?.min(head.len());
        while at + 12 <= end {
            let namesz = usize::try_from(int(at, 4)?).ok()?;
            let descsz = usize::try_from(int(at + 4, 4)?).ok()?;
            let kind = int(at + 8, 4)?;
            let name_at = at + 12;
            let desc_at = name_at.checked_add(namesz.checked_next_multiple_of(4)?)?;
            let next = desc_at.checked_add(descsz.checked_next_multiple_of(4)?)?;
            if kind == u64::from(NT_GNU_BUILD_ID)
                && head.get(name_at..name_at + namesz.min(4)) == Some(b"GNU\0".as_slice())
                && (1..=MAX_BUILD_ID).contains(&descsz)
            {
                return head.get(desc_at..desc_at + descsz).map(<[u8]>::to_vec);
            }
            at = next;
        }
    }
    None
}

/// Function symbols of one ELF file and how its file offsets map to its addresses.
#[derive(Debug, Clone, Default)]
pub struct ElfSymbols {
    /// Functions by link-time address.
    table: SymbolTable,
    /// Loadable segments: `(p_offset, p_vaddr, p_filesz)`.
    loads: Vec<(u64, u64, u64)>,
}

impl ElfSymbols {
    /// The function symbols (static table, else dynamic) of an ELF file of the class `H`: the loader
    /// reads its own class only; the host takes either through [`ElfSymbols::parse_any`].
    pub fn parse<H: FileHeader<Endian = Endianness>>(data: &[u8]) -> Result<ElfSymbols, String> {
        use object::read::elf::ProgramHeader;
        let elf = ElfFile::<H>::parse(data).map_err(|e| format!("not an ELF file: {e}"))?;
        let endian = elf.endian();
        let loads = elf
            .elf_program_headers()
            .iter()
            .filter(|p| p.p_type(endian) == object::elf::PT_LOAD)
            .map(|p| {
                (
                    p.p_offset(endian).into(),
                    p.p_vaddr(endian).into(),
                    p.p_filesz(endian).into(),
                )
            })
            .collect();
        let functions = |syms: &mut dyn Iterator<
            Item = object::read::elf::ElfSymbol<'_, '_, H>,
        >| {
            syms.filter(|s| s.kind() == SymbolKind::Text && s.is_definition() && s.address() != 0)
                .filter_map(|s| {
                    let name = s.name().ok()?;
                    let end = s.address().checked_add(s.size()).unwrap_or(0);
                    Some((s.address(), end, name.to_owned()))
                })
                .collect::<Vec<_>>()
        };
        let mut syms = functions(&mut elf.symbols());
        if syms.is_empty() {
            syms = functions(&mut elf.dynamic_symbols());
        }
        Ok(ElfSymbols {
            table: SymbolTable::from_ranges(syms),
            loads,
        })
    }

    /// [`ElfSymbols::parse`] for either class, as the header says.
    pub fn parse_any(data: &[u8]) -> Result<ElfSymbols, String> {
        match data.get(4) {
            Some(1) => ElfSymbols::parse::<object::elf::FileHeader32<Endianness>>(data),
            Some(2) => ElfSymbols::parse::<object::elf::FileHeader64<Endianness>>(data),
            _ => Err("not an ELF file".into()),
        }
    }

    /// How many functions it names.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether it names none (a stripped file without dynamic symbols).
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// The function at file offset `offset` (a frame's address less its mapping's start plus the
    /// mapping's offset) and the offset into the function.
    pub fn at_file_offset(&self, offset: u64) -> Option<(&str, u64)> {
        let &(p_offset, p_vaddr, _) = self
            .loads
            .iter()
            .find(|(o, _, size)| (*o..o.saturating_add(*size)).contains(&offset))?;
        self.table.lookup(offset - p_offset + p_vaddr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kallsyms_name_the_function_holding_an_address() {
        let k = SymbolTable::from_kallsyms(
            "ffffffff81000000 T _stext\nffffffff81200000 t vfs_read\nffffffff81200100 T vfs_write\n\
             ffffffff81300000 D some_data\n0000000000000000 T hidden\n",
        );
        assert_eq!(k.lookup(0xffffffff81200000), Some(("vfs_read", 0)));
        assert_eq!(k.lookup(0xffffffff8120001c), Some(("vfs_read", 0x1c)));
        assert_eq!(k.lookup(0xffffffff81200100), Some(("vfs_write", 0)));
        assert_eq!(k.lookup(0x1000), None);
        assert_eq!(k.len(), 3, "text symbols with addresses only");
        // A slice of ranges names only what it covers.
        let slice = SymbolTable::from_ranges(vec![(0x100, 0x180, "f".into())]);
        assert_eq!(slice.lookup(0x17f), Some(("f", 0x7f)));
        assert_eq!(slice.lookup(0x180), None);
    }

    #[test]
    fn proc_maps_keep_executable_files() {
        let maps = parse_proc_maps(
            "55d0c0a00000-55d0c0a01000 r--p 00000000 08:01 1234 /usr/bin/spin\n\
             55d0c0a01000-55d0c0a02000 r-xp 00001000 08:01 1234 /usr/bin/spin\n\
             7f0000000000-7f0000100000 r-xp 00028000 08:01 99   /lib/libc.so.6 (deleted)\n\
             7ffd00000000-7ffd00001000 r-xp 00000000 00:00 0    [vdso]\n\
             7ffd00002000-7ffd00003000 rw-p 00000000 00:00 0\n",
        );
        assert_eq!(maps.len(), 2);
        assert_eq!(maps[1].path, "/lib/libc.so.6");
        let m = find_mapping(&maps, 0x55d0c0a01234).expect("mapped");
        assert_eq!(m.file_offset(0x55d0c0a01234), Some(0x1234));
        assert!(
            find_mapping(&maps, 0x55d0c0a00010).is_none(),
            "not executable"
        );
    }

    #[test]
    fn this_test_binary_names_its_own_functions() {
        let exe = std::fs::read("/proc/self/exe").expect("own binary");
        let id = elf_build_id(&exe[..exe.len().min(8192)]);
        let syms = ElfSymbols::parse_any(&exe).expect("parses");
        assert!(!syms.is_empty());
        // This function's own address, as a file offset through /proc/self/maps.
        let here = this_test_binary_names_its_own_functions as fn() as usize as u64;
        let maps = parse_proc_maps(&std::fs::read_to_string("/proc/self/maps").expect("maps"));
        let offset = find_mapping(&maps, here)
            .and_then(|m| m.file_offset(here))
            .expect("in a mapping");
        let (name, off) = syms.at_file_offset(offset).expect("named");
        assert!(
            name.contains("this_test_binary_names_its_own_functions"),
            "{name}"
        );
        assert_eq!(off, 0);
        // Debian's toolchain writes build ids; when there is one it is the usual 20-byte SHA-1.
        if let Some(id) = id {
            assert_eq!(id.len(), 20);
        }
    }

    #[test]
    fn build_ids_of_broken_headers_are_none() {
        assert_eq!(elf_build_id(b""), None);
        assert_eq!(elf_build_id(b"\x7fELF\x02\x01"), None);
        let mut bogus = vec![0u8; 128];
        bogus[..4].copy_from_slice(b"\x7fELF");
        bogus[4] = 2;
        bogus[0x20] = 0x40; // phoff 64, one PT_NOTE claiming a huge size
        bogus[0x36] = 56;
        bogus[0x38] = 1;
        bogus[64] = 4;
        bogus[64 + 32..64 + 40].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(elf_build_id(&bogus), None);
    }
}
