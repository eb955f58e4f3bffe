//! BTF blobs (objects' `.BTF`, bundles' `btf/*.btf`, `--btf` files): the reader, every query the loader
//! and CLI make, the byte-order swap, and the check done before aya sees a blob.
#![no_main]

use ebpf_pack_object::btf::{self, Btf};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = btf::check(data);
    let _ = btf::check_loadable(data, None);
    let Ok(parsed) = Btf::parse(data) else {
        return;
    };
    // Every type, bounded so one input stays fast.
    for id in 0..parsed.type_count().min(2048) as u32 {
        let _ = parsed.type_name(id);
        let _ = parsed.size_of(id);
        let _ = parsed.strip_qualifiers(id);
        if let Some(t) = parsed.ty(id) {
            let _ = parsed.string(t.name_off);
            let _ = parsed.members(t).len();
            let _ = parsed.enumerators(t).len();
        }
    }
    for map in parsed.map_defs() {
        let _ = parsed.event_record_type(&map.name);
        let _ = parsed.perf_fallback(&map.name);
    }
    let _ = btf::to_byte_order(data, !parsed.is_big_endian());
});
