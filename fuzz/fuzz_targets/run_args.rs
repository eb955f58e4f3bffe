//! ebpf-run's command line: arguments are the input's NUL-separated parts (any bytes, as a shell can
//! pass them), parsed by the loader's own argument module.
#![no_main]

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use libfuzzer_sys::fuzz_target;

// The loader is a binary crate: its argument parser (std only) is compiled in here as it is there.
#[allow(dead_code)]
#[path = "../../loader/src/args.rs"]
mod args;

fuzz_target!(|data: &[u8]| {
    let argv = data
        .split(|&b| b == 0)
        .map(|a| OsString::from_vec(a.to_vec()));
    let _ = args::parse(argv);
});
