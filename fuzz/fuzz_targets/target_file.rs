//! Board description files (`targets/*.yaml`, `--target-file`): parse, resolve and render every error.
#![no_main]

use std::path::Path;

use ebpf_pack::target::{TargetOrigin, parse_target};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let origin = TargetOrigin::File("board.yaml".into());
    if let Err(e) = parse_target(text, "board.yaml", Path::new("/nonexistent"), origin) {
        let _ = e.to_string();
    }
});
