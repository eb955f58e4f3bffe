//! Host-side ELF verification of loaders, objects and kernel modules, for every architecture.
#![no_main]

use ebpf_pack::arch::{Arch, KernelVersion};
use ebpf_pack::verify::{ObjectRules, verify_loader, verify_module, verify_object};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for arch in Arch::ALL {
        let _ = verify_loader("ebpf-run", data, arch);
        let _ = verify_module("m.ko", data, arch);
        let rules = ObjectRules {
            arch,
            kernel: KernelVersion { major: 5, minor: 8 },
        };
        if let Err(e) = verify_object("p.bpf.o", data, rules) {
            let _ = e.to_string();
        }
    }
});
