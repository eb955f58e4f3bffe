//! One-liner programs (`-e PROGRAM`, `.bt` files): lexer, parser, checker and C writer, and the
//! rendering of every diagnostic with its caret.
#![no_main]

use ebpf_pack_oneliner::{Target, compile, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let target = Target {
        syscalls: ["openat", "read", "write", "execve", "clone"]
            .map(str::to_owned)
            .to_vec(),
        syscall_rows: Vec::new(),
    };
    match parse(src).and_then(|program| compile(&program, &target)) {
        Ok(compiled) => assert!(!compiled.c.is_empty()),
        Err(d) => {
            let _ = d.render("-e", src);
        }
    }
});
