//! Drops the unwind tables (`.eh_frame`) from static musl builds of the loader: it is built with
//! panic=abort, so they only feed panic backtraces, and they are ~12% of the binary.
//!
//! Only for musl targets linked by rust-lld (the aarch64 boards): GNU ld refuses to drop the section
//! because the start files (`crtbeginS.o`) refer to it, and glibc's static start files register it. Only when optimising for size (`opt-level =
//! "z"`, the `loader` profile, which also sets panic=abort; cargo does not tell build scripts the
//! panic strategy), so test and debug builds keep their backtraces. Without the tables a panic still
//! aborts, it just prints no backtrace.

fn main() {
    println!("cargo:rerun-if-env-changed=RUSTC_LINKER");
    let musl = std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("musl");
    let lld = std::env::var("RUSTC_LINKER").is_ok_and(|l| l.ends_with("rust-lld"));
    // The `loader` profile (opt-level z, panic=abort), or any build whose panics abort at once
    // (`ebpf-pack build --min-size`: -Cpanic=immediate-abort).
    println!("cargo:rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    let immediate_abort =
        std::env::var("CARGO_ENCODED_RUSTFLAGS").is_ok_and(|f| f.contains("panic=immediate-abort"));
    let size_profile = std::env::var("OPT_LEVEL").as_deref() == Ok("z") || immediate_abort;
    println!("cargo:rerun-if-changed=no-eh-frame.ld");
    if musl && lld && size_profile {
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("no-eh-frame.ld");
        println!("cargo:rustc-link-arg-bins=-T{}", script.display());
    }
}
