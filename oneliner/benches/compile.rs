//! The front end's time for a one-liner: parse, check against a target, write the C. Prints the
//! median over many rounds (`cargo bench -p ebpf-pack-oneliner --bench compile`); no assertion.

use std::time::Instant;

use ebpf_pack_oneliner::{Target, compile, parse};

const PROGRAM: &str =
    "tracepoint:syscalls:sys_enter_openat { @[comm] = count(); @h = hist(args->flags); }";

fn main() {
    let target = Target {
        syscalls: ["openat", "read", "write", "close"]
            .map(String::from)
            .to_vec(),
        syscall_rows: Vec::new(),
    };
    let mut times = Vec::new();
    let mut bytes = 0;
    for _ in 0..2000 {
        let t = Instant::now();
        let program = parse(PROGRAM).expect("parses");
        let c = compile(&program, &target).expect("compiles");
        times.push(t.elapsed());
        bytes = c.c.len();
    }
    times.sort();
    let median = times[times.len() / 2];
    println!(
        "front end: {:.1} µs median of {} ({} bytes of C)",
        median.as_secs_f64() * 1e6,
        times.len(),
        bytes
    );
}
