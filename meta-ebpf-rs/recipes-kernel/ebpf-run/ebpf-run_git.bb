SUMMARY = "Static on-target loader of ebpf-pack bundles"
DESCRIPTION = "ebpf-run loads CO-RE eBPF objects (with the kernel's BTF or a bundle's tailored BTF), \
               attaches them by section name and prints their events and maps. Built here by the \
               image's own Rust cross toolchain; the ebpf_pack class puts it into every bundle it builds."
SECTION = "devel"
LICENSE = "MIT | Apache-2.0"
# The workspace states its licence in Cargo.toml's [workspace.package].
LIC_FILES_CHKSUM = "file://Cargo.toml;beginline=9;endline=9;md5=86b31c7756a1a7962f28b62856ed4f05"

require recipes-devtools/ebpf-pack/ebpf-pack-source.inc
require recipes-devtools/ebpf-pack/ebpf-pack-crates.inc

SRC_URI += "file://ebpf-run-static-cc"

inherit cargo

CARGO_SRC_DIR = "loader"

# See ebpf-pack_git.bb: Rust 1.94.1 builds the workspace's rust-version 1.95 code.
CARGO_BUILD_FLAGS += "--ignore-rust-version"

# The workspace's size-optimised `loader` profile (opt-level z, LTO, one codegen unit, panic=abort);
# Yocto strips and splits the debug info itself.
BUILD_MODE = "--profile loader"
BUILD_DIR = "loader"
export CARGO_PROFILE_LOADER_STRIP = "false"

# ebpf-pack refuses a loader with an ELF interpreter: link statically. musl: Yocto's Rust target
# honours +crt-static. glibc: it does not (crt-static-respected is set for musl only), so a wrapper
# links with -static instead, and code is built non-PIC so that the result is a plain static executable.
RUSTFLAGS:append:libc-musl = " -C target-feature=+crt-static"
RUSTFLAGS:append:libc-glibc = " -C relocation-model=static"
CARGO_RUST_TARGET_CCLD:libc-glibc = "${UNPACKDIR}/ebpf-run-static-cc"
export EBPF_RUN_CC = "${RUST_TARGET_CCLD}"

# The ebpf_pack class takes the loader from this recipe's sysroot, and records the Rust triple it was
# built for in the bundle's target facts.
SYSROOT_DIRS += "${bindir}"

do_install:append() {
    install -d ${D}${datadir}/ebpf-run
    echo "${RUST_HOST_SYS}" > ${D}${datadir}/ebpf-run/rust-triple
}

FILES:${PN}-dev += "${datadir}/ebpf-run"

# The loader runs on the board only: there is no use for a native or nativesdk variant.
BBCLASSEXTEND = ""
