//! Byte-order conversion of a raw BTF blob: host tools (bpftool) write BTF in the host's order, a
//! big-endian board's loader needs it in the board's.
//!
//! Every field of the BTF header after the magic/version/flags bytes and every field of the type section
//! is a 32-bit word, so converting means swapping those words; strings are bytes and stay.

use super::{BtfError, Reader, byte_order, check};

/// Returns `data` converted to big-endian (`big_endian`) or little-endian byte order; a blob already in
/// that order comes back unchanged. The blob is checked first, so a malformed one is an error, not garbage.
pub fn to_byte_order(data: &[u8], big_endian: bool) -> Result<Vec<u8>, BtfError> {
    check(data)?;
    let from_big = byte_order(data).ok_or(BtfError("bad BTF magic"))?;
    let mut out = data.to_vec();
    if from_big == big_endian {
        return Ok(out);
    }
    let r = Reader {
        data,
        big_endian: from_big,
    };
    let hdr_len = r.u32(4)? as usize;
    let (type_off, type_len) = (r.u32(8)? as usize, r.u32(12)? as usize);
    out.swap(0, 1); // magic
    swap_words(&mut out, 4, hdr_len)?;
    let start = hdr_len
        .checked_add(type_off)
        .ok_or(BtfError("BTF type section out of bounds"))?;
    let end = start
        .checked_add(type_len)
        .ok_or(BtfError("BTF type section out of bounds"))?;
    swap_words(&mut out, start, end)?;
    Ok(out)
}

/// Reverses the bytes of every 32-bit word in `data[start..end]`.
fn swap_words(data: &mut [u8], start: usize, end: usize) -> Result<(), BtfError> {
    if !(end - start.min(end)).is_multiple_of(4) {
        return Err(BtfError("BTF section length is not a multiple of 4"));
    }
    let region = data
        .get_mut(start..end)
        .ok_or(BtfError("BTF data truncated"))?;
    for word in region.chunks_exact_mut(4) {
        word.reverse();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny blob: header, one INT type ("int", 4 bytes, 32 bits), strings "\0int\0".
    fn le_blob() -> Vec<u8> {
        let mut b = vec![0x9f, 0xeb, 1, 0];
        for w in [24u32, 0, 16, 16, 5] {
            b.extend_from_slice(&w.to_le_bytes());
        }
        for w in [1u32, 1 << 24, 4, 32] {
            b.extend_from_slice(&w.to_le_bytes());
        }
        b.extend_from_slice(b"\0int\0");
        b
    }

    #[test]
    fn swapping_twice_is_identity_and_strings_stay() {
        let le = le_blob();
        let be = to_byte_order(&le, true).expect("to BE");
        assert_eq!(&be[..2], &[0xeb, 0x9f]);
        assert_eq!(&be[4..8], &24u32.to_be_bytes());
        assert_eq!(&be[24 + 4..24 + 8], &(1u32 << 24).to_be_bytes());
        assert_eq!(&be[be.len() - 5..], b"\0int\0");
        assert_eq!(to_byte_order(&be, false).expect("back"), le);
        assert_eq!(to_byte_order(&le, false).expect("same order"), le);
        let parsed = crate::btf::Btf::parse(&be).expect("parses");
        assert!(parsed.is_big_endian());
        assert_eq!(parsed.type_name(1), "int");
    }

    #[test]
    fn malformed_blobs_are_errors() {
        let le = le_blob();
        assert!(to_byte_order(&le[..30], true).is_err());
        assert!(to_byte_order(b"not btf at all", true).is_err());
    }
}
