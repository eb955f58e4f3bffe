//! ebpf-pack: build, verify and bundle CO-RE eBPF probes and a static loader for embedded Linux boards.
//!
//! The library is the pure core (target model, planning, ELF checks, bundling); `main.rs` is the thin CLI
//! edge that spawns processes and touches the filesystem.

pub mod arch;
pub mod assets;
pub mod bundle;
pub mod commands;
pub mod console;
pub mod deps;
pub mod execute;
pub mod flamegraph;
pub mod histogram;
pub mod initramfs;
pub mod kconfig;
pub mod live;
pub mod oneliners;
pub mod plan;
pub mod project;
pub mod project_file;
pub mod qemu;
pub mod render;
pub mod run_command;
pub mod scaffold;
pub mod stacks;
pub mod syscalls;
pub mod target;
pub mod templates;
pub mod toolbox;
pub mod toolchain;
pub mod tools_command;
pub mod transport;
pub mod try_command;
pub mod verify;
pub mod yocto;
