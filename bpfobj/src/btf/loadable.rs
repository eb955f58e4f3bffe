//! Whether an object's `.BTF` and `.BTF.ext` are whole enough to hand to aya.
//!
//! aya-obj 0.3 trusts offsets it reads: a name offset between the string section's length and the
//! header's `str_off + str_len` is sliced out of range, a `.BTF.ext` record count running past its
//! section is sliced out of range, a record size of zero or shorter than a record is chunked or indexed
//! into a panic, and a name it cannot find is unwrapped. The loader runs as root on whatever it is
//! handed, so every such field is checked here first, walking the sections exactly as aya does.

use super::{Btf, BtfError, Kind, Reader, byte_order};

/// Smallest records aya reads from `.BTF.ext`: `bpf_func_info` (insn_off, type_id), `bpf_line_info`
/// (insn_off, file, line, col) and `bpf_core_relo` (insn_off, type_id, access_str_off, kind).
const FUNC_INFO_MIN: usize = 8;
const LINE_INFO_MIN: usize = 16;
const CORE_RELO_MIN: usize = 16;
/// Types must be smaller than this (their size in bits must fit in 32 bits).
const MAX_TYPE_SIZE: u64 = 1 << 29;

/// Checks a `.BTF` blob and the object's `.BTF.ext` (if any) for every field aya-obj 0.3 would read
/// unchecked: string offsets, type ids, UTF-8 names, and the `.BTF.ext` sections and records.
pub fn check_loadable(btf: &[u8], ext: Option<&[u8]>) -> Result<(), BtfError> {
    let parsed = Btf::parse(btf)?;
    check_strings(&parsed)?;
    check_types(&parsed)?;
    if let Some(ext) = ext {
        check_ext(ext, parsed.big_endian, parsed.strings.len())?;
    }
    Ok(())
}

/// The string section starts and ends with NUL (as the kernel requires) and is UTF-8 throughout: the
/// kernel copies names into its log, and aya turns that log into a `String` with `unwrap`.
fn check_strings(btf: &Btf) -> Result<(), BtfError> {
    let s = &btf.strings;
    if !s.is_empty() && (s.first() != Some(&0) || s.last() != Some(&0)) {
        return Err(BtfError(
            "BTF string section does not start and end with NUL",
        ));
    }
    std::str::from_utf8(s).map_err(|_| BtfError("BTF string section is not UTF-8"))?;
    Ok(())
}

/// Every name offset lies inside the string section and every referenced type id exists.
fn check_types(btf: &Btf) -> Result<(), BtfError> {
    let strings = btf.strings.len();
    let name_ok = |off: u32| off == 0 || (off as usize) < strings;
    let count = btf.types.len();
    let id_ok = |id: u32| (id as usize) < count;
    for ty in &btf.types {
        if !name_ok(ty.name_off) {
            return Err(BtfError("BTF type name offset outside the string section"));
        }
        let refers = matches!(
            ty.kind,
            Kind::Ptr
                | Kind::Typedef
                | Kind::Volatile
                | Kind::Const
                | Kind::Restrict
                | Kind::Func
                | Kind::FuncProto
                | Kind::Var
                | Kind::DeclTag
                | Kind::TypeTag
        );
        if refers && !id_ok(ty.size_or_type) {
            return Err(BtfError("BTF type refers to a type id that does not exist"));
        }
        if let Kind::Array { elem, .. } = ty.kind
            && !id_ok(elem)
        {
            return Err(BtfError("BTF array element type does not exist"));
        }
    }
    check_sizes(btf)?;
    if btf.members.iter().any(|m| !name_ok(m.name_off)) {
        return Err(BtfError(
            "BTF member name offset outside the string section",
        ));
    }
    if btf.members.iter().any(|m| !id_ok(m.ty)) {
        return Err(BtfError(
            "BTF member refers to a type id that does not exist",
        ));
    }
    if btf.enumerators.iter().any(|e| !name_ok(e.name_off)) {
        return Err(BtfError(
            "BTF enumerator name offset outside the string section",
        ));
    }
    Ok(())
}

/// What can be wrong with one `.BTF.ext` part, worded for that part.
struct PartErrors {
    overflow: &'static str,
    past_ext: &'static str,
    short_record: &'static str,
    name_outside: &'static str,
    records_past: &'static str,
    string_outside: &'static str,
}

/// The messages of one part, its name spelled once.
macro_rules! part_errors {
    ($part:literal) => {
        PartErrors {
            overflow: concat!(".BTF.ext ", $part, " offset overflows"),
            past_ext: concat!(".BTF.ext ", $part, " runs past the section"),
            short_record: concat!(".BTF.ext ", $part, " record size is smaller than a record"),
            name_outside: concat!(
                ".BTF.ext ",
                $part,
                " section name outside the string section"
            ),
            records_past: concat!(".BTF.ext ", $part, " records run past their part"),
            string_outside: concat!(
                ".BTF.ext ",
                $part,
                " record's access string is outside the string section"
            ),
        }
    };
}

/// Sizes aya's CO-RE arithmetic can hold, and integers and bitfields as the kernel's BTF checker
/// accepts them: aya computes bit sizes as `bytes * 8` in `u32`, unwraps the size of a bitfield's
/// type and divides by it.
fn check_sizes(btf: &Btf) -> Result<(), BtfError> {
    for (id, ty) in btf.types.iter().enumerate() {
        if let Some(size) = btf.size_of(id as u32)
            && size >= MAX_TYPE_SIZE
        {
            return Err(BtfError("BTF type larger than 512 MiB"));
        }
        if let Kind::Int {
            bit_offset, bits, ..
        } = ty.kind
            && (!matches!(ty.size_or_type, 1 | 2 | 4 | 8 | 16)
                || bits > 128
                || u32::from(bit_offset) + u32::from(bits) > ty.size_or_type * 8)
        {
            return Err(BtfError("BTF integer with an impossible size or bit count"));
        }
        if matches!(ty.kind, Kind::Struct | Kind::Union) && ty.kind_flag {
            for m in btf.members(ty).iter().filter(|m| m.offset >> 24 != 0) {
                let base = btf.ty(btf.resolve(m.ty));
                let sized = base.is_some_and(|b| {
                    matches!(b.kind, Kind::Int { .. } | Kind::Enum | Kind::Enum64)
                        && (1..=16).contains(&b.size_or_type)
                });
                if !sized {
                    return Err(BtfError(
                        "BTF bitfield of a type that is not an integer or enum",
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The `.BTF.ext` header and its func_info, line_info and CO-RE parts, read as aya reads them: the
/// header up to `hdr_len` (fields past it are zero), each part `rec_size`, then per ELF section
/// `sec_name_off, num_info` and `num_info` records.
fn check_ext(ext: &[u8], big_endian: bool, strings: usize) -> Result<(), BtfError> {
    if byte_order(ext) != Some(big_endian) {
        return Err(BtfError(".BTF.ext magic does not match the object's .BTF"));
    }
    let r = Reader {
        data: ext,
        big_endian,
    };
    let hdr_len = r.u32(4)?;
    if hdr_len as usize > ext.len() {
        return Err(BtfError(".BTF.ext header runs past the section"));
    }
    // A header field aya reads, or zero when the header is too short to hold it.
    let field = |at: u32| -> Result<u32, BtfError> {
        if at + 4 <= hdr_len.min(32) {
            r.u32(at as usize)
        } else {
            Ok(0)
        }
    };
    let parts = [
        // Record fields that are string offsets aya looks up unchecked: CO-RE's access string
        // (line_info's file and line text go to the kernel, which checks them itself).
        (8, FUNC_INFO_MIN, &[][..], part_errors!("func_info")),
        (16, LINE_INFO_MIN, &[][..], part_errors!("line_info")),
        (
            24,
            CORE_RELO_MIN,
            &[8][..],
            part_errors!("CO-RE relocation"),
        ),
    ];
    for (off_at, min_record, string_fields, errors) in parts {
        let part = Part {
            off: field(off_at)?,
            len: field(off_at + 4)?,
            min_record,
            string_fields,
            errors,
        };
        check_ext_part(ext, hdr_len, &part, strings, big_endian)?;
    }
    Ok(())
}

/// One `.BTF.ext` part: where the header says it is and the smallest record aya reads from it.
struct Part {
    off: u32,
    len: u32,
    min_record: usize,
    string_fields: &'static [usize],
    errors: PartErrors,
}

/// One `.BTF.ext` part at `hdr_len + off`, `len` bytes long.
fn check_ext_part(
    ext: &[u8],
    hdr_len: u32,
    part: &Part,
    strings: usize,
    big_endian: bool,
) -> Result<(), BtfError> {
    let e = &part.errors;
    if part.len == 0 {
        return Ok(());
    }
    // aya adds these as u32: an overflow there is a panic (debug) or a wrong slice (release).
    let start = hdr_len
        .checked_add(part.off)
        .filter(|s| s.checked_add(part.len).is_some())
        .ok_or(BtfError(e.overflow))? as usize;
    let data = ext
        .get(start..start + part.len as usize)
        .ok_or(BtfError(e.past_ext))?;
    let rec_size = Reader { data, big_endian }
        .u32(0)
        .map_err(|_| BtfError(e.past_ext))? as usize;
    let data = data.get(4..).unwrap_or_default();
    let r = Reader { data, big_endian };
    let mut at = 0usize;
    while at + 8 < data.len() {
        let (name_off, count) = (r.u32(at)? as usize, r.u32(at + 4)? as usize);
        at += 8;
        if count > 0 && rec_size < part.min_record {
            return Err(BtfError(e.short_record));
        }
        if name_off >= strings {
            return Err(BtfError(e.name_outside));
        }
        let end = count
            .checked_mul(rec_size)
            .and_then(|n| at.checked_add(n))
            .filter(|&end| end <= data.len())
            .ok_or(BtfError(e.records_past))?;
        while at < end {
            for &field in part.string_fields {
                if r.u32(at + field)? as usize >= strings {
                    return Err(BtfError(e.string_outside));
                }
            }
            at += rec_size;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A little-endian BTF blob of `types` (each a list of u32 words) and `strings`.
    fn blob(types: &[&[u32]], strings: &[u8]) -> Vec<u8> {
        let words: Vec<u8> = types
            .iter()
            .flat_map(|t| t.iter().flat_map(|w| w.to_le_bytes()))
            .collect();
        let mut out = vec![0x9f, 0xeb, 1, 0];
        for v in [
            24,
            0,
            words.len() as u32,
            words.len() as u32,
            strings.len() as u32,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&words);
        out.extend_from_slice(strings);
        out
    }

    /// `int` (4 bytes, 32 bits, signed) named at offset 1.
    const INT: &[u32] = &[1, 1 << 24, 4, (1 << 24) | 32];

    #[test]
    fn whole_btf_passes() {
        assert_eq!(check_loadable(&blob(&[INT], b"\0int\0"), None), Ok(()));
    }

    #[test]
    fn names_and_strings_are_checked() {
        // A name offset past the strings, though inside what the header's str_off + str_len allows.
        let far: &[u32] = &[9, 1 << 24, 4, 32];
        let err = check_loadable(&blob(&[far], b"\0int\0"), None).expect_err("offset");
        assert!(err.0.contains("name offset"), "{err}");
        let err = check_loadable(&blob(&[INT], b"\0i\xffn\0"), None).expect_err("utf-8");
        assert!(err.0.contains("UTF-8"), "{err}");
        let err = check_loadable(&blob(&[INT], b"\0int"), None).expect_err("nul");
        assert!(err.0.contains("NUL"), "{err}");
    }

    #[test]
    fn sizes_types_and_bitfields_are_checked() {
        let odd_int: &[u32] = &[1, 1 << 24, 3, 24];
        assert!(check_loadable(&blob(&[odd_int], b"\0int\0"), None).is_err());
        let too_many_bits: &[u32] = &[1, 1 << 24, 4, 33];
        assert!(check_loadable(&blob(&[too_many_bits], b"\0int\0"), None).is_err());
        // int[1 << 28]: 1 GiB.
        let array: &[u32] = &[0, 3 << 24, 0, 1, 1, 1 << 28];
        let err = check_loadable(&blob(&[INT, array], b"\0int\0"), None).expect_err("size");
        assert!(err.0.contains("512 MiB"), "{err}");
        // A pointer to a type that does not exist.
        let ptr: &[u32] = &[0, 2 << 24, 7];
        assert!(check_loadable(&blob(&[INT, ptr], b"\0int\0"), None).is_err());
        // struct { void *p : 3; } (kind_flag set): a bitfield of a pointer.
        let ptr_ok: &[u32] = &[0, 2 << 24, 0];
        let bitfield: &[u32] = &[0, (1 << 31) | (4 << 24) | 1, 8, 1, 2, 3 << 24];
        let err = check_loadable(&blob(&[INT, ptr_ok, bitfield], b"\0int\0"), None)
            .expect_err("bitfield");
        assert!(err.0.contains("bitfield"), "{err}");
    }

    /// A `.BTF.ext` with a CO-RE part of `records` (one ELF section, name offset 1).
    fn ext(rec_size: u32, records: &[[u32; 4]]) -> Vec<u8> {
        let mut part = vec![rec_size, 1, records.len() as u32];
        part.extend(records.iter().flatten());
        let mut out = vec![0x9f, 0xeb, 1, 0];
        for v in [32, 0, 0, 0, 0, 0, 4 * part.len() as u32] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend(part.iter().flat_map(|w| w.to_le_bytes()));
        out
    }

    #[test]
    fn btf_ext_parts_are_checked() {
        let btf = blob(&[INT], b"\0int\0");
        assert_eq!(
            check_loadable(&btf, Some(&ext(16, &[[0, 1, 1, 0]]))),
            Ok(())
        );
        let cases = [
            (ext(0, &[[0, 1, 1, 0]]), "smaller than a record"),
            (ext(16, &[[0, 1, 99, 0]]), "access string"),
        ];
        for (e, why) in cases {
            let err = check_loadable(&btf, Some(&e)).expect_err(why);
            assert!(err.0.contains(why), "{err}");
        }
        // A record count running past the part.
        let mut long = ext(16, &[[0, 1, 1, 0]]);
        long[32 + 8..32 + 12].copy_from_slice(&5u32.to_le_bytes());
        let err = check_loadable(&btf, Some(&long)).expect_err("count");
        assert!(err.0.contains("run past"), "{err}");
        // A section name outside the strings.
        let mut name = ext(16, &[[0, 1, 1, 0]]);
        name[32 + 4..32 + 8].copy_from_slice(&50u32.to_le_bytes());
        assert!(check_loadable(&btf, Some(&name)).is_err());
        // The other byte order than the .BTF's.
        let mut swapped = ext(16, &[]);
        swapped[..2].copy_from_slice(&[0xeb, 0x9f]);
        assert!(check_loadable(&btf, Some(&swapped)).is_err());
    }
}
