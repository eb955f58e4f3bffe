//! Finding the host tools a build needs, before anything runs, with the exact command that installs
//! each missing one.

use std::collections::BTreeMap;
use std::env;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::plan::{BtfInput, LoaderSource};
use crate::target::Target;

/// The programs a build runs, as found on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toolchain {
    /// clang with the BPF backend.
    pub clang: String,
    /// llvm-strip.
    pub llvm_strip: String,
    /// bpftool.
    pub bpftool: String,
    /// pahole.
    pub pahole: String,
}

/// How a missing tool is installed: the facts `ebpf-pack deps --install` acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fix {
    /// A Debian/Ubuntu package.
    Apt(String),
    /// A Rust standard library for a triple.
    RustupTarget(String),
    /// A rustup component (`rust-src`).
    RustupComponent(String),
    /// Nothing ebpf-pack can install: what a person must do.
    Manual(String),
}

impl Fix {
    /// The fix as a command or an instruction for a person.
    pub fn command(&self) -> String {
        match self {
            Fix::Apt(p) => format!("apt-get install {p}"),
            Fix::RustupTarget(t) => format!("rustup target add {t}"),
            Fix::RustupComponent(c) => format!("rustup component add {c}"),
            Fix::Manual(text) => text.clone(),
        }
    }
}

/// One missing tool: what, why, and how it is installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingTool {
    /// The tool (`clang-19`, `rustup target armv7-unknown-linux-gnueabihf`).
    pub tool: String,
    /// Which target or step needs it.
    pub needed_for: String,
    /// How it is installed.
    pub fix: Fix,
}

/// Every missing tool, reported together before the build starts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct MissingTools(pub Vec<MissingTool>);

impl fmt::Display for MissingTools {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "missing tools; nothing was built:")?;
        for m in &self.0 {
            write!(
                f,
                "\n  {} (needed for {})\n    help: {}",
                m.tool,
                m.needed_for,
                m.fix.command()
            )?;
        }
        write!(
            f,
            "\n  (`ebpf-pack deps --install` installs what apt and rustup provide, for the targets given with --target)"
        )
    }
}

/// Finds `name` on `PATH` (or accepts it as a path).
pub fn find_program(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return p.is_file().then_some(p);
    }
    env::split_paths(&env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// First of `candidates` (after an override from `env_var`) found on `PATH`.
fn pick(env_var: &str, candidates: &[&str]) -> Option<String> {
    if let Ok(v) = env::var(env_var) {
        return Some(v);
    }
    candidates
        .iter()
        .find(|c| find_program(c).is_some())
        .map(|c| c.to_string())
}

/// The rustc sysroot, from `rustc --print sysroot`.
fn rustc_sysroot() -> Option<PathBuf> {
    let out = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// Whether rustc has its `rust-src` component, from which the small loader build rebuilds std.
pub fn has_rust_src() -> bool {
    rustc_sysroot().is_some_and(|root| root.join("lib/rustlib/src/rust/library/std").is_dir())
}

/// Whether rustc has a standard library for `triple` (as `rustup target add` installs).
fn has_rust_std(sysroot: &Path, triple: &str) -> bool {
    sysroot
        .join("lib/rustlib")
        .join(triple)
        .join("lib")
        .is_dir()
}

/// Whether rustc ships `rust-lld` (it passes it to the linker search itself).
fn has_rust_lld(sysroot: &Path) -> bool {
    let Ok(dirs) = std::fs::read_dir(sysroot.join("lib/rustlib")) else {
        return false;
    };
    dirs.flatten()
        .any(|d| d.path().join("bin/rust-lld").is_file())
}

/// What each target's build will need, besides the target itself.
#[derive(Debug, Clone)]
pub struct TargetNeeds<'a> {
    /// The target.
    pub target: &'a Target,
    /// Its BTF input.
    pub btf: &'a BtfInput,
    /// Its loader source.
    pub loader: &'a LoaderSource,
}

/// Checks every tool all `needs` require; returns the toolchain, or every missing tool at once.
pub fn check_toolchain(needs: &[TargetNeeds<'_>]) -> Result<Toolchain, MissingTools> {
    let mut missing = Vec::new();
    let mut miss = |tool: &str, needed_for: &str, fix: Fix| {
        if !missing.iter().any(|m: &MissingTool| m.tool == tool) {
            missing.push(MissingTool {
                tool: tool.into(),
                needed_for: needed_for.into(),
                fix,
            });
        }
    };
    let clang = pick(
        "CLANG",
        &["clang-19", "clang-18", "clang-17", "clang-16", "clang"],
    );
    if clang.is_none() {
        miss("clang-19", "compiling probes", Fix::Apt("clang-19".into()));
    }
    let llvm_strip = pick(
        "LLVM_STRIP",
        &[
            "llvm-strip-19",
            "llvm-strip-18",
            "llvm-strip-17",
            "llvm-strip-16",
            "llvm-strip",
        ],
    );
    if llvm_strip.is_none() {
        miss(
            "llvm-strip",
            "stripping debug info from objects",
            Fix::Apt("llvm-19".into()),
        );
    }
    if !Path::new("/usr/include/bpf/bpf_helpers.h").is_file()
        && env::var_os("EBPF_PACK_SKIP_LIBBPF_CHECK").is_none()
    {
        miss(
            "libbpf headers (bpf/bpf_helpers.h)",
            "compiling probes",
            Fix::Apt("libbpf-dev".into()),
        );
    }
    let bpftool = pick("BPFTOOL", &["bpftool"]);
    let pahole = pick("PAHOLE", &["pahole"]);
    let sysroot = rustc_sysroot();
    for need in needs {
        let t = need.target;
        let for_t = format!("target {}", t.name);
        match need.btf {
            BtfInput::Btf(_) if bpftool.is_none() => miss(
                "bpftool",
                &format!("{for_t}: vmlinux.h and tailored BTF"),
                Fix::Apt("bpftool".into()),
            ),
            BtfInput::Dwarf(_) => {
                if bpftool.is_none() {
                    miss(
                        "bpftool",
                        &format!("{for_t}: vmlinux.h and tailored BTF"),
                        Fix::Apt("bpftool".into()),
                    );
                }
                if pahole.is_none() {
                    miss(
                        "pahole",
                        &format!("{for_t}: BTF from the kernel's DWARF"),
                        Fix::Apt("pahole".into()),
                    );
                }
            }
            _ => {}
        }
        if let (LoaderSource::Build { min_size: true, .. }, Some(root)) = (need.loader, &sysroot)
            && !root.join("lib/rustlib/src/rust/library/std").is_dir()
        {
            miss(
                "rust-src",
                &format!("{for_t}: --min-size (std is rebuilt from its source)"),
                Fix::RustupComponent("rust-src".into()),
            );
        }
        if let LoaderSource::Build { .. } = need.loader {
            if find_program("cargo").is_none() {
                miss(
                    "cargo",
                    &format!("{for_t}: building the loader"),
                    Fix::Manual("install Rust with rustup: https://rustup.rs".into()),
                );
            }
            match &sysroot {
                None => miss(
                    "rustc",
                    &format!("{for_t}: building the loader"),
                    Fix::Manual("install Rust with rustup: https://rustup.rs".into()),
                ),
                Some(root) if !has_rust_std(root, &t.triple) => {
                    let install = if t.triple.starts_with("mips") || t.triple.contains("musleabihf")
                    {
                        Fix::Manual(format!(
                            "`{}` has no prebuilt standard library: build ebpf-run for it elsewhere (Buildroot, Yocto) and pass --loader PATH",
                            t.triple
                        ))
                    } else {
                        Fix::RustupTarget(t.triple.clone())
                    };
                    miss(
                        &format!("Rust target {}", t.triple),
                        &format!("{for_t}: building the loader"),
                        install,
                    );
                }
                Some(root) => {
                    if let Some(linker) = &t.linker {
                        let found = if linker == "rust-lld" {
                            has_rust_lld(root)
                        } else {
                            find_program(linker).is_some()
                        };
                        if !found {
                            let facts = t.arch.facts();
                            let install = if Some(linker.as_str()) == t.arch.linker(t.libc) {
                                Fix::Apt(facts.linker_package.to_string())
                            } else {
                                Fix::Manual(format!(
                                    "install `{linker}`, or change `linker` in the target file"
                                ))
                            };
                            miss(linker, &format!("{for_t}: linking the loader"), install);
                        }
                    }
                }
            }
        }
    }
    if !missing.is_empty() {
        return Err(MissingTools(missing));
    }
    Ok(Toolchain {
        clang: clang.unwrap_or_default(),
        llvm_strip: llvm_strip.unwrap_or_default(),
        bpftool: bpftool.unwrap_or_else(|| "bpftool".into()),
        pahole: pahole.unwrap_or_else(|| "pahole".into()),
    })
}

/// First line of `program args...` output, for the manifest's tool list.
pub fn tool_version(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    let text = if out.stdout.is_empty() {
        out.stderr
    } else {
        out.stdout
    };
    let text = String::from_utf8_lossy(&text);
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_string)
}

/// Versions of the tools used for a build, keyed by tool name.
pub fn tool_versions(
    tools: &Toolchain,
    used_bpftool: bool,
    used_pahole: bool,
    built_loader: bool,
) -> BTreeMap<String, String> {
    let mut v = BTreeMap::new();
    let mut add = |k: &str, program: &str, args: &[&str]| {
        if let Some(ver) = tool_version(program, args) {
            v.insert(k.to_string(), ver);
        }
    };
    add("clang", &tools.clang, &["--version"]);
    if built_loader {
        add("rustc", "rustc", &["--version"]);
    }
    if used_bpftool {
        add("bpftool", &tools.bpftool, &["version"]);
    }
    if used_pahole {
        add("pahole", &tools.pahole, &["--version"]);
    }
    v
}
