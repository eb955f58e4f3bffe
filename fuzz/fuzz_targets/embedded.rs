//! The single-file executable's trailer and embedded archive, as ebpf-run reads its own file.
#![no_main]

use ebpf_pack_manifest::embedded;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = embedded::elf_end(data);
    let Ok(Some(parts)) = embedded::split(data) else {
        let _ = embedded::unpack(data);
        return;
    };
    if let Ok(unpacked) = embedded::unpack(parts.payload) {
        let _ = embedded::check_sums(parts.loader, &unpacked.files);
    }
});
