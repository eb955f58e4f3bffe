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
}
