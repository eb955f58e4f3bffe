SUMMARY = "Builds and verifies CO-RE eBPF bundles for embedded boards"
DESCRIPTION = "ebpf-pack compiles CO-RE eBPF probes with clang, checks every object and the loader \
               against the board (ELF machine, byte order, float ABI, static linking, kernel features) \
               and writes a reproducible bundle. The ebpf_pack class runs it as ebpf-pack-native."
SECTION = "devel"
LICENSE = "MIT | Apache-2.0"
# The workspace states its licence in Cargo.toml's [workspace.package].
LIC_FILES_CHKSUM = "file://Cargo.toml;beginline=9;endline=9;md5=86b31c7756a1a7962f28b62856ed4f05"

require ebpf-pack-source.inc
require ebpf-pack-crates.inc

inherit cargo cargo-update-recipe-crates

# The host tool is the workspace's cli/ package.
CARGO_SRC_DIR = "cli"

# wrynose ships Rust 1.94.1; the workspace declares rust-version 1.95 but builds with 1.94.1
# (checked with `cargo +1.94.1 build --locked --ignore-rust-version -p ebpf-pack -p ebpf-run`).
CARGO_BUILD_FLAGS += "--ignore-rust-version"

# The probe headers (ebpf_pack.h, the per-arch vmlinux.h) are inside the binary (cli/build.rs packs
# them); `ebpf-pack headers DIR` writes them out where a recipe or an editor wants them.

BBCLASSEXTEND = "native nativesdk"
