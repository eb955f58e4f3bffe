//! Host CPU per rendered event (docs/PERFORMANCE.md): the recorded JSON streams of
//! tests/fixtures/streams, repeated, through the renderer of `ebpf-pack run` — text tables with
//! syscall names and timestamps, and the live view of `--interval` (a frame drawn per round and every
//! quarter second of events). Prints CPU time (getrusage) and wall time per line.
//! `cargo bench -p ebpf-pack --bench render [-- LINES]`.

use std::io::Write;
use std::time::{Duration, Instant};

use ebpf_pack::arch::Arch;
use ebpf_pack::live::LiveView;
use ebpf_pack::render::{Arrival, Renderer, Timestamps};

/// CPU seconds this process used so far (user + system).
fn cpu_secs() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u
    };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(usage.ru_utime) + t(usage.ru_stime)
}

fn stream(name: &str) -> Vec<String> {
    let path = format!(
        "{}/../tests/fixtures/streams/{name}.jsonl",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .lines()
        .map(str::to_string)
        .collect()
}

fn measure(label: &str, lines: &[String], total: usize, mut each: impl FnMut(&str)) {
    let (cpu0, wall0) = (cpu_secs(), Instant::now());
    for l in lines.iter().cycle().take(total) {
        each(l);
    }
    let (cpu, wall) = (cpu_secs() - cpu0, wall0.elapsed().as_secs_f64());
    println!(
        "| {label} | {total} lines | {:.2} µs CPU/line | {:.2} µs wall/line |",
        cpu * 1e6 / total as f64,
        wall * 1e6 / total as f64
    );
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this too, as a quick smoke run.
    let benching = std::env::args().any(|a| a == "--bench");
    let total: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(if benching { 500_000 } else { 1_000 });
    let sink = std::io::sink();
    let mut out = std::io::BufWriter::new(sink);
    let started = Instant::now();
    for name in ["opensnoop", "execsnoop", "syscount", "syscount-interval"] {
        let lines = stream(name);
        let mut r = Renderer::for_arch(Arch::X86_64).with_timestamps(Timestamps::WallClock);
        measure(&format!("text: {name}.jsonl"), &lines, total, |l| {
            for t in r.line_at(l, Arrival::now(started)) {
                let _ = writeln!(out, "{t}");
            }
        });
    }
    // The live view: every line taken, a 120x40 frame drawn whenever it asks.
    let lines = stream("all");
    let mut r = Renderer::for_arch(Arch::X86_64);
    let mut view = LiveView::new("bench", 1, started);
    let mut frames = 0u64;
    let mut clock = started;
    measure("live view: all.jsonl", &lines, total, |l| {
        let text = r.line_at(l, Arrival::now(started));
        // A simulated clock: 10 µs between lines, so events redraw every 25,000 lines.
        clock += Duration::from_micros(10);
        if view.take(r.last_kind(), text, clock) {
            for f in view.frame(120, 40, clock) {
                let _ = writeln!(out, "{f}");
            }
            view.drawn(clock);
            frames += 1;
        }
    });
    let _ = out.flush();
    println!("(live view: {frames} frames drawn)");
}
