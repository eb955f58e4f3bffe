//! BPF objects as ebpf-run loads them: our reader, the check made before aya, then everything aya does
//! with the bytes before its first syscall (parse, BTF fix-ups, CO-RE against a real kernel BTF slice,
//! map and call relocation, sanitising). Whatever passes our check must not panic in aya. The input's
//! first byte picks the BTF features the "kernel" has.
#![no_main]

use std::collections::{HashMap, HashSet};

use aya_obj::btf::{Btf as AyaBtf, BtfFeatures};
use aya_obj::{Features, Object};
use ebpf_pack_object::kconfig;
use ebpf_pack_object::loadable;
use ebpf_pack_object::probe::ProbeObject;
use libfuzzer_sys::fuzz_target;
use object::Endianness;

/// This host's kernel BTF cut to the toolbox's types (`bpftool gen min_core_btf`).
const KERNEL_BTF: &[u8] = include_bytes!("../seeds/kernel-min.btf");

fuzz_target!(|data: &[u8]| {
    let Some((&mask, obj)) = data.split_first() else {
        return;
    };
    let Ok(parsed) = ProbeObject::parse("p".into(), "p.bpf.o".into(), obj.to_vec()) else {
        return;
    };
    let _ = parsed.core_relos();
    let _ = kconfig::kconfig_externs(obj);
    if loadable::check_loadable(obj, cfg!(target_endian = "big")).is_err() {
        return;
    }
    let Ok(mut object) = Object::parse(obj) else {
        return;
    };
    let bit = |n: u8| mask & (1 << n) != 0;
    let features = BtfFeatures::new(
        bit(0),
        bit(1),
        bit(2),
        bit(3),
        bit(4),
        bit(5),
        bit(6),
        bit(7),
    );
    if object.patch_map_data(HashMap::new()).is_err() {
        return;
    }
    if let Ok(Some(btf)) = object.fixup_and_sanitize_btf(&features) {
        let _ = btf.to_bytes();
    }
    let target =
        AyaBtf::parse(KERNEL_BTF, Endianness::default()).expect("the committed kernel BTF");
    if object.relocate_btf(&target).is_err() {
        return;
    }
    let maps: Vec<(String, aya_obj::Map)> = object.maps.drain().collect();
    let text: HashSet<usize> = object
        .functions
        .keys()
        .map(|(section, _)| *section)
        .collect();
    let fds = maps.iter().map(|(name, map)| (name.as_str(), 3, map));
    if object.relocate_maps(fds, &text).is_err() {
        return;
    }
    if object.relocate_calls(&text).is_err() {
        return;
    }
    object.sanitize_functions(&Features::default());
});
