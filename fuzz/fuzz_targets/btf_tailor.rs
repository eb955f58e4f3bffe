//! The on-target BTF tailoring: a kernel BTF (the input's first part) cut down for an object's CO-RE
//! relocations (the second part: its `.BTF`, then its `.BTF.ext`), and the result handed to aya as the
//! loader does. Layout: u32 LE kernel length, kernel BTF, u32 LE `.BTF` length, `.BTF`, `.BTF.ext`.
#![no_main]

use aya_obj::btf::Btf as AyaBtf;
use ebpf_pack_object::btf::{self, Btf, RawBtf};
use libfuzzer_sys::fuzz_target;

/// The next length-prefixed part of `data`.
fn part<'a>(data: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = u32::from_le_bytes(data.get(..4)?.try_into().ok()?) as usize;
    let body = data.get(4..4usize.checked_add(len)?)?;
    *data = &data[4 + len..];
    Some(body)
}

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    let (Some(kernel), Some(local)) = (part(&mut rest), part(&mut rest)) else {
        return;
    };
    let ext = rest;
    let kernel_whole = btf::check_loadable(kernel, None).is_ok();
    let (Ok(kernel), Ok(local_btf)) = (RawBtf::index(kernel), Btf::parse(local)) else {
        return;
    };
    let Ok(relos) = btf::core_relos(ext) else {
        return;
    };
    if let Ok(Ok(tailored)) = btf::tailor(&kernel, &[(&local_btf, &relos)]) {
        // Cut from a whole kernel BTF, the result is whole too; the loader hands aya only what
        // passes this check, as it does with any BTF file.
        let whole = btf::check_loadable(&tailored, None);
        assert!(
            !kernel_whole || whole.is_ok(),
            "tailoring broke a whole BTF: {whole:?}"
        );
        if whole.is_ok() {
            let _ = AyaBtf::parse(&tailored, object::Endianness::default());
        }
    }
});
