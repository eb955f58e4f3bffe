//! The `.BTF.ext` header: just enough to tell whether an object carries CO-RE relocations.

use super::{BtfError, Reader, byte_order};

/// Whether a `.BTF.ext` section carries CO-RE relocations (its `core_relo_len` is non-zero).
///
/// The object then needs the kernel's (or a bundled) BTF to be relocated before it can load correctly.
pub fn ext_has_core_relocs(ext: &[u8]) -> Result<bool, BtfError> {
    let big_endian = byte_order(ext).ok_or(BtfError("bad .BTF.ext magic"))?;
    let r = Reader {
        data: ext,
        big_endian,
    };
    let hdr_len = r.u32(4)?;
    // btf_ext_header: magic, version, flags, hdr_len, func_info_{off,len}, line_info_{off,len},
    // then (newer layout, hdr_len >= 32) core_relo_off, core_relo_len.
    if hdr_len < 32 {
        return Ok(false);
    }
    Ok(r.u32(28)? > 0)
}

/// One CO-RE relocation record of `.BTF.ext` (`struct bpf_core_relo`, less the instruction offset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoreRelo {
    /// The local (object) type the access starts from.
    pub type_id: u32,
    /// Offset of the access string (`0:1:2`) in the object's `.BTF` strings.
    pub access_str_off: u32,
    /// `enum bpf_core_relo_kind`: 0-5 field, 6-9 type, 10-11 enum value, 12 type match.
    pub kind: u32,
}

/// Every CO-RE relocation record of a `.BTF.ext` section, in file order (empty without any).
pub fn core_relos(ext: &[u8]) -> Result<Vec<CoreRelo>, BtfError> {
    let big_endian = byte_order(ext).ok_or(BtfError("bad .BTF.ext magic"))?;
    let r = Reader {
        data: ext,
        big_endian,
    };
    let hdr_len = r.u32(4)? as usize;
    if hdr_len < 32 || r.u32(28)? == 0 {
        return Ok(Vec::new());
    }
    let start = hdr_len
        .checked_add(r.u32(24)? as usize)
        .ok_or(BtfError(".BTF.ext CO-RE section out of bounds"))?;
    let end = start
        .checked_add(r.u32(28)? as usize)
        .filter(|&end| end <= ext.len())
        .ok_or(BtfError(".BTF.ext CO-RE section out of bounds"))?;
    let rec_size = r.u32(start)? as usize;
    if rec_size < 16 {
        return Err(BtfError(".BTF.ext CO-RE record size below 16"));
    }
    let mut relos = Vec::new();
    // Per ELF section: sec_name_off, num_info, then num_info records.
    let mut off = start + 4;
    while off < end {
        let count = r.u32(off + 4)? as usize;
        off += 8;
        let records = count
            .checked_mul(rec_size)
            .and_then(|len| off.checked_add(len))
            .filter(|&next| next <= end)
            .ok_or(BtfError(".BTF.ext CO-RE records out of bounds"))?;
        while off < records {
            relos.push(CoreRelo {
                type_id: r.u32(off + 4)?,
                access_str_off: r.u32(off + 8)?,
                kind: r.u32(off + 12)?,
            });
            off += rec_size;
        }
    }
    Ok(relos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn btf_ext_core_relo_length_is_read_from_the_header() {
        let mut ext = vec![0x9f, 0xeb, 1, 0];
        for v in [32u32, 0, 0, 0, 0, 0, 16] {
            ext.extend_from_slice(&v.to_le_bytes());
        }
        assert_eq!(ext_has_core_relocs(&ext), Ok(true));
        ext[28..32].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(ext_has_core_relocs(&ext), Ok(false));
        // An old 24-byte header has no CO-RE part.
        let mut old = vec![0xeb, 0x9f, 1, 0];
        for v in [24u32, 0, 0, 0, 0] {
            old.extend_from_slice(&v.to_be_bytes());
        }
        assert_eq!(ext_has_core_relocs(&old), Ok(false));
        assert!(ext_has_core_relocs(&old[..6]).is_err());
        assert!(ext_has_core_relocs(b"xx").is_err());
    }

    #[test]
    fn core_relo_records_are_read_per_section() {
        // rec_size 16; section `7`: one record; section `9`: two (insn_off, type_id, access, kind).
        let section: [u32; 17] = [16, 7, 1, 0, 5, 11, 0, 9, 2, 4, 6, 13, 1, 8, 3, 15, 10];
        let ext = |order: fn(u32) -> [u8; 4], magic: [u8; 2]| {
            let mut ext = magic.to_vec();
            ext.extend_from_slice(&[1, 0]);
            // hdr_len, func_info off/len, line_info off/len, core_relo off/len.
            for v in [32, 0, 0, 0, 0, 0, 4 * section.len() as u32] {
                ext.extend_from_slice(&order(v));
            }
            for v in section {
                ext.extend_from_slice(&order(v));
            }
            ext
        };
        let relo = |type_id, access_str_off, kind| CoreRelo {
            type_id,
            access_str_off,
            kind,
        };
        let want = vec![relo(5, 11, 0), relo(6, 13, 1), relo(3, 15, 10)];
        let little = ext(u32::to_le_bytes, [0x9f, 0xeb]);
        assert_eq!(core_relos(&little), Ok(want.clone()));
        assert_eq!(core_relos(&ext(u32::to_be_bytes, [0xeb, 0x9f])), Ok(want));
        // A record count running past the section is refused, not read beyond it.
        let mut long = little.clone();
        long[32 + 8..32 + 12].copy_from_slice(&9u32.to_le_bytes());
        assert!(core_relos(&long).is_err());
        assert!(core_relos(&little[..40]).is_err());
    }
}
