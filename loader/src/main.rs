//! `ebpf-run`: the on-target loader of an ebpf-pack bundle.
//!
//! Loads CO-RE BPF objects with aya, attaches every program by its section name, prints ring buffer
//! events and map contents decoded through the objects' own BTF, and detaches on Ctrl-C or `--duration`.
//! It learns everything from the objects themselves, so loose `.bpf.o` files work the same as a bundle.

// ebpf-run runs as root on whatever it is handed: an index, `expect` or `panic!` that input can
// reach is a crash, so each is an error outside tests (the same lints as the parser crates).
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

mod args;
mod attach;
mod bundle;
mod check;
mod diagnose;
mod dump;
mod events;
mod failure;
mod fallback;
mod globals;
mod kconfig;
mod ksyms;
mod list;
mod run;
mod stacks;
mod sys;
mod tool_args;
mod uprobe;

#[cfg(test)]
mod clang_tests;
#[cfg(test)]
mod tailor_tests;

// Object reading and BTF decoding are shared with the host CLI.
use ebpf_pack_object::kconfig as kconfig_values;
use ebpf_pack_object::{
    btf, config_file, decode, elf_edit, loadable, map_types, options, probe, symbols,
};

use std::io::Write;
use std::process::ExitCode;

use args::Command;

fn main() -> ExitCode {
    let result = match args::parse(std::env::args_os().skip(1)) {
        Err(args::UsageError(msg)) => {
            eprintln!("ebpf-run: error: {msg}\n  help: see ebpf-run --help");
            return ExitCode::from(failure::Exit::Usage as u8);
        }
        Ok(Command::Help) => {
            let _ = std::io::stdout().write_all(args::USAGE.as_bytes());
            Ok(())
        }
        Ok(Command::Version) => {
            println!("ebpf-run {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Ok(Command::List(opts)) => run::list(&opts),
        Ok(Command::Check(opts)) => run::check(&opts),
        Ok(Command::Run(opts)) => run::run(&opts),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            let _ = std::io::stderr().write_all(f.render().as_bytes());
            ExitCode::from(f.exit as u8)
        }
    }
}
