//! One-liners on a board with no compiler: bpftrace's language (the subset docs/ONELINERS.md
//! defines) parsed and checked on the host, then turned into BPF C that ebpf-pack's one compile
//! path builds for the board like any probe. The board never sees the language, only the object.

pub mod ast;
pub mod compile;
pub mod diagnostic;
pub mod lexer;
pub mod parser;
pub mod render;

pub use compile::{Compiled, Layout, Target, compile};
pub use diagnostic::{Diagnostic, Span};
pub use parser::parse;
