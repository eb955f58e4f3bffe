//! Project files (`ebpf-pack.yaml`): parse, resolve and render every error.
#![no_main]

use ebpf_pack::project_file::parse_project_file;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = parse_project_file(text, "ebpf-pack.yaml") {
        let _ = e.to_string();
    }
});
