//! Reading BPF objects from their bytes alone, shared by the host CLI (verification, manifest) and the
//! on-target loader (attach, event and map decoding): programs and their sections, BTF-defined maps,
//! BTF in either byte order, whether CO-RE relocations need kernel BTF, and decoding typed bytes to text.
//! No syscalls and no kernel access here; small on purpose, since it ships inside `ebpf-run`.

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
