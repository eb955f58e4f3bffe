//! Reading BPF objects from their bytes alone, shared by the host CLI (verification, manifest) and the
//! on-target loader (attach, event and map decoding): programs and their sections, BTF-defined maps,
//! BTF in either byte order, whether CO-RE relocations need kernel BTF, and decoding typed bytes to text.
//! No syscalls and no kernel access here; small on purpose, since it ships inside `ebpf-run`.

// Every parser here reads outside input (objects, BTF, kernel config files) and runs as root inside
// ebpf-run: an index, `expect` or `panic!` that input can reach is a crash, so each is an error
// outside tests (as in `manifest` and `ebpf-run`).
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::expect_used,
        clippy::unwrap_used,
        clippy::panic,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]

pub mod btf;
pub mod config_file;
pub mod decode;
pub mod elf_edit;
pub mod glob;
pub mod kconfig;
pub mod loadable;
pub mod map_types;
pub mod options;
pub mod probe;
pub mod symbols;
