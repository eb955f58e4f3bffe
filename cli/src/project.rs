//! The project on disk: its probes, its own target files, its loader source, and classifying a
//! target's kernel BTF input. The filesystem edge of planning.

use std::fs;
use std::path::{Path, PathBuf};

use crate::plan::{BtfInput, LoaderSource};
use crate::target::{
    BtfSource, Target, TargetError, TargetOrigin, TargetProblem, builtin_names, builtin_target,
    parse_target,
};

/// A project directory: holds `probes/*.bpf.c` and optionally `targets/*.yaml` and the loader workspace.
#[derive(Debug, Clone)]
pub struct Project {
    /// Absolute root.
    pub root: PathBuf,
}

/// A problem with the project or a target's inputs on disk.
#[derive(Debug, thiserror::Error)]
#[error("{subject}: {problem}\n  help: {help}")]
pub struct ProjectError {
    /// The file or folder concerned.
    pub subject: String,
    /// What is wrong.
    pub problem: String,
    /// How to fix it.
    pub help: String,
}

fn perr(
    subject: impl Into<String>,
    problem: impl Into<String>,
    help: impl Into<String>,
) -> ProjectError {
    ProjectError {
        subject: subject.into(),
        problem: problem.into(),
        help: help.into(),
    }
}

/// Error loading a target by name or file.
#[derive(Debug, thiserror::Error)]
pub enum LoadTargetError {
    /// The file has problems.
    #[error("{0}")]
    Invalid(#[from] TargetError),
    /// No target of that name.
    #[error("unknown target `{name}`\n  help: known targets: {known}; or pass --target-file PATH")]
    Unknown {
        /// The name asked for.
        name: String,
        /// Known names.
        known: String,
    },
    /// The file could not be read.
    #[error("{0}")]
    Io(#[from] ProjectError),
}

impl Project {
    /// Opens the project at `dir`, which must hold `probes/`.
    pub fn open(dir: &Path) -> Result<Project, ProjectError> {
        let root = dir.canonicalize().map_err(|e| {
            perr(
                dir.display().to_string(),
                format!("cannot open: {e}"),
                "pass an existing project directory with -C DIR",
            )
        })?;
        if !root.join("probes").is_dir() {
            return Err(perr(
                root.display().to_string(),
                "has no probes/ folder",
                "run ebpf-pack in the project root (the folder with probes/), or pass -C DIR",
            ));
        }
        Ok(Project { root })
    }

    /// Probe names: stems of `probes/*.bpf.c`, sorted.
    pub fn probes(&self) -> Result<Vec<String>, ProjectError> {
        let dir = self.root.join("probes");
        let entries = fs::read_dir(&dir).map_err(|e| {
            perr(
                dir.display().to_string(),
                e.to_string(),
                "check permissions",
            )
        })?;
        let mut names: Vec<String> = entries
            .flatten()
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_suffix(".bpf.c"))
                    .map(str::to_string)
            })
            .collect();
        names.sort();
        Ok(names)
    }

    /// Probes a target builds: its `probes:` list (each checked to exist) or all of them.
    pub fn probes_for(&self, target: &Target) -> Result<Vec<String>, ProjectError> {
        let all = self.probes()?;
        let Some(wanted) = &target.probes else {
            return Ok(all);
        };
        for p in wanted {
            if !all.contains(p) {
                return Err(perr(
                    target_file_name(target),
                    format!("probes: `{p}` has no source probes/{p}.bpf.c"),
                    format!("available probes: {}", all.join(", ")),
                ));
            }
        }
        let mut list = wanted.clone();
        list.sort();
        Ok(list)
    }

    /// Names of the project's own target files (`targets/*.yaml`), sorted.
    fn own_target_names(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.root.join("targets"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_suffix(".yaml"))
                    .map(str::to_string)
            })
            .collect();
        names.sort();
        names
    }

    /// Every target name: the project's own, then built-ins not overridden.
    pub fn target_names(&self) -> Vec<String> {
        let mut names = self.own_target_names();
        for b in builtin_names() {
            if !names.iter().any(|n| n == b) {
                names.push(b.to_string());
            }
        }
        names
    }

    /// Loads a target by name: `targets/NAME.yaml` of the project if present, else the built-in one.
    pub fn target(&self, name: &str) -> Result<Target, LoadTargetError> {
        let file = self.root.join("targets").join(format!("{name}.yaml"));
        if file.is_file() {
            return load_target_file(&file, Some(&self.root));
        }
        match builtin_target(name) {
            Some(t) => Ok(t?),
            None => Err(LoadTargetError::Unknown {
                name: name.into(),
                known: self.target_names().join(", "),
            }),
        }
    }

    /// Where the loader comes from: a prebuilt one, or this workspace's `loader/` crate.
    pub fn loader_source(&self, prebuilt: Option<&Path>) -> Result<LoaderSource, ProjectError> {
        if let Some(p) = prebuilt {
            let p = p.canonicalize().map_err(|e| {
                perr(
                    p.display().to_string(),
                    format!("--loader: {e}"),
                    "give the path of an ebpf-run executable built for the target",
                )
            })?;
            return Ok(LoaderSource::Prebuilt(p));
        }
        if self.root.join("loader/Cargo.toml").is_file() && self.root.join("Cargo.toml").is_file() {
            let cargo_home = std::env::var_os("CARGO_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
                .unwrap_or_else(|| PathBuf::from("/nonexistent-cargo-home"));
            return Ok(LoaderSource::Build {
                workspace: self.root.clone(),
                cargo_home,
                min_size: false,
            });
        }
        Err(perr(
            self.root.display().to_string(),
            "has no loader/ crate to build ebpf-run from",
            "pass --loader PATH with an ebpf-run built for the target",
        ))
    }
}

fn target_file_name(target: &Target) -> String {
    match &target.origin {
        TargetOrigin::Builtin => format!("<builtin {}>", target.name),
        TargetOrigin::File(p) => p.display().to_string(),
    }
}

/// Loads a target file from disk; its relative paths resolve against its own folder. The file is
/// shown relative to `shown_from` when given.
pub fn load_target_file(path: &Path, shown_from: Option<&Path>) -> Result<Target, LoadTargetError> {
    let text = fs::read_to_string(path).map_err(|e| {
        perr(
            path.display().to_string(),
            format!("cannot read target file: {e}"),
            "check the --target-file path",
        )
    })?;
    let shown = shown_from
        .and_then(|base| path.strip_prefix(base).ok())
        .unwrap_or(path);
    let base = path.parent().unwrap_or(Path::new("."));
    let base = base.canonicalize().unwrap_or_else(|_| base.to_path_buf());
    Ok(parse_target(
        &text,
        &shown.display().to_string(),
        &base,
        TargetOrigin::File(path.to_path_buf()),
    )?)
}

/// Looks at the file `kernel.btf` names and decides how to use it.
pub fn classify_btf(target: &Target) -> Result<BtfInput, TargetError> {
    let path = match &target.kernel.btf {
        BtfSource::Builtin => return Ok(BtfInput::Builtin),
        BtfSource::None => return Ok(BtfInput::None),
        BtfSource::File(p) => p,
    };
    let problem = |message: String, help: &str| TargetError {
        problems: vec![TargetProblem {
            file: target_file_name(target),
            line: 0,
            column: 0,
            message,
            help: Some(help.into()),
        }],
    };
    let data = fs::read(path).map_err(|e| {
        problem(
            format!("kernel.btf: cannot read {}: {e}", path.display()),
            "point kernel.btf at the board kernel's vmlinux (ELF) or a raw BTF file",
        )
    })?;
    if data.len() >= 4 && (data[..2] == [0x9f, 0xeb] || data[..2] == [0xeb, 0x9f]) {
        return Ok(BtfInput::Btf(path.clone()));
    }
    if data.starts_with(b"\x7fELF") {
        use object::{Object, ObjectSection};
        let file = object::File::parse(&*data).map_err(|e| {
            problem(
                format!("kernel.btf: {} is a damaged ELF file: {e}", path.display()),
                "copy the vmlinux again",
            )
        })?;
        if file.section_by_name(".BTF").is_some_and(|s| s.size() > 0) {
            return Ok(BtfInput::Btf(path.clone()));
        }
        if file.section_by_name(".debug_info").is_some() {
            return Ok(BtfInput::Dwarf(path.clone()));
        }
        return Err(problem(
            format!(
                "kernel.btf: {} has neither .BTF nor DWARF debug info",
                path.display()
            ),
            "build the kernel with CONFIG_DEBUG_INFO_BTF=y, or with CONFIG_DEBUG_INFO=y so pahole can make BTF; a stripped vmlinux or a zImage cannot serve",
        ));
    }
    Err(problem(
        format!(
            "kernel.btf: {} is neither an ELF vmlinux nor a raw BTF file",
            path.display()
        ),
        "use the uncompressed vmlinux from the kernel build folder (not zImage/Image/bzImage), or /sys/kernel/btf/vmlinux copied from the board",
    ))
}
