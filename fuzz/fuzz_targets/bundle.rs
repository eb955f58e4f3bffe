//! Bundles as `ebpf-pack verify` reads them: a tar.gz (layout, manifest, checksums, every file) or a
//! single-file executable (trailer, embedded archive).
#![no_main]

use ebpf_pack::bundle::verify_any;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = verify_any("bundle.tar.gz", data, None) {
        let _ = e.to_string();
    }
});
