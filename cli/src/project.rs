//! The project on disk: its project file, its probes, its own target files, its loader source, and
//! classifying a target's kernel BTF input. The filesystem edge of planning.

use std::fs;
use std::path::{Path, PathBuf};

use crate::assets::{Assets, cache_dir};
use crate::plan::{BtfInput, LoaderSource, ProbeSource};
use crate::project_file::{Located, PROJECT_FILE, ProjectFile, parse_project_file, wildcard_match};
use crate::target::{
    BtfSource, Target, TargetError, TargetOrigin, TargetProblem, builtin_names, builtin_target,
    parse_target,
};

/// Bundle name of a project without a project file.
pub const DEFAULT_BUNDLE_NAME: &str = "ebpf-pack";

/// A project directory: `ebpf-pack.yaml` (or, without one, a `probes/` folder of `*.bpf.c`), and
/// optionally `targets/*.yaml` and, in ebpf-pack's own checkout, the loader workspace.
#[derive(Debug, Clone)]
pub struct Project {
    /// Absolute root.
    pub root: PathBuf,
    /// The project file, when the project has one.
    pub file: Option<ProjectFile>,
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

/// Error loading a project, or a target by name or file.
#[derive(Debug, thiserror::Error)]
pub enum LoadTargetError {
    /// The target or project file has problems.
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
    /// Opens the project at `dir`: reads its `ebpf-pack.yaml`, or, without one, requires `probes/`.
    pub fn open(dir: &Path) -> Result<Project, LoadTargetError> {
        let root = dir.canonicalize().map_err(|e| {
            perr(
                dir.display().to_string(),
                format!("cannot open: {e}"),
                "pass an existing project directory with -C DIR",
            )
        })?;
        let file_path = root.join(PROJECT_FILE);
        if file_path.is_file() {
            let text = fs::read_to_string(&file_path).map_err(|e| {
                perr(
                    file_path.display().to_string(),
                    format!("cannot read: {e}"),
                    "check the file's permissions",
                )
            })?;
            let file = parse_project_file(&text, &file_path.display().to_string())?;
            return Ok(Project {
                root,
                file: Some(file),
            });
        }
        if !root.join("probes").is_dir() {
            return Err(perr(
                root.display().to_string(),
                format!("has neither {PROJECT_FILE} nor a probes/ folder"),
                "run ebpf-pack in the project root, pass -C DIR, or start a project with `ebpf-pack init DIR`",
            )
            .into());
        }
        Ok(Project { root, file: None })
    }

    /// The first part of bundle names: the project file's `name`, else `ebpf-pack`.
    pub fn bundle_name(&self) -> &str {
        self.file.as_ref().map_or(DEFAULT_BUNDLE_NAME, |f| &f.name)
    }

    /// The second part of bundle names: the project file's `version`, else this ebpf-pack's version.
    pub fn bundle_version(&self) -> &str {
        self.file
            .as_ref()
            .map_or(env!("CARGO_PKG_VERSION"), |f| &f.version)
    }

    /// The project file's `boards`, each checked to name a known target (problems at their line).
    pub fn default_boards(&self) -> Result<Vec<String>, LoadTargetError> {
        let Some(file) = &self.file else {
            return Ok(Vec::new());
        };
        let known = self.target_names();
        let problems: Vec<TargetProblem> = file
            .boards
            .iter()
            .filter(|b| !known.contains(&b.value))
            .map(|b| {
                file.problem_at(
                    b,
                    format!("boards: unknown board `{}`", b.value),
                    Some(format!(
                        "known targets: {}; or add targets/{}.yaml",
                        known.join(", "),
                        b.value
                    )),
                )
            })
            .collect();
        if !problems.is_empty() {
            return Err(TargetError { problems }.into());
        }
        Ok(file.boards.iter().map(|b| b.value.clone()).collect())
    }

    /// Every probe of the project, sorted by name: the project file's `probes` patterns expanded (each
    /// must match a file), or `probes/*.bpf.c`. Two sources of one name are refused.
    pub fn probes(&self) -> Result<Vec<ProbeSource>, LoadTargetError> {
        let default_pattern = [
            crate::project_file::DEFAULT_PROBES,
            crate::project_file::DEFAULT_SCRIPTS,
        ]
        .map(|value| Located {
            value: value.to_string(),
            line: 0,
            column: 0,
        });
        let patterns = self
            .file
            .as_ref()
            .map_or(&default_pattern[..], |f| &f.probes);
        let mut found: Vec<ProbeSource> = Vec::new();
        let mut problems = Vec::new();
        let file_name = self
            .file
            .as_ref()
            .map_or_else(|| PROJECT_FILE.to_string(), |f| f.file.clone());
        let problem = |at: &Located<String>, message: String, help: String| TargetProblem {
            file: file_name.clone(),
            line: at.line,
            column: at.column,
            message,
            help: Some(help),
        };
        for pattern in patterns {
            let rel = Path::new(&pattern.value);
            let dir = rel.parent().unwrap_or(Path::new(""));
            let name_pattern = rel
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let mut matched: Vec<PathBuf> = fs::read_dir(self.root.join(dir))
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| e.path().is_file())
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .filter(|n| wildcard_match(&name_pattern, n))
                .map(|n| dir.join(n))
                .collect();
            matched.sort();
            if matched.is_empty() && pattern.line > 0 {
                problems.push(problem(
                    pattern,
                    format!("probes: `{}` matches no file", pattern.value),
                    format!(
                        "add the source, or correct the path (relative to {})",
                        self.root.display()
                    ),
                ));
            }
            for source in matched {
                let name = source
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.strip_suffix(".bpf.c").or_else(|| n.strip_suffix(".bt")))
                    .unwrap_or_default()
                    .to_string();
                if let Some(other) = found.iter().find(|p| p.name == name) {
                    if other.source != source {
                        problems.push(problem(
                            pattern,
                            format!(
                                "probes: {} and {} are both probe `{name}`",
                                other.source.display(),
                                source.display()
                            ),
                            "rename one: the file name is the probe's and its object's name".into(),
                        ));
                    }
                    continue;
                }
                if !crate::target::is_valid_name(&name) {
                    problems.push(problem(
                        pattern,
                        format!("probes: {} is not a valid probe name", source.display()),
                        "name sources with lower-case letters, digits, `-` and `_`: NAME.bpf.c or NAME.bt"
                            .into(),
                    ));
                    continue;
                }
                found.push(ProbeSource { name, source });
            }
        }
        let tools = self.file.as_ref().map_or(&[][..], |f| &f.tools[..]);
        if !tools.is_empty() {
            self.add_tools(tools, &mut found, &mut |at, message, help| {
                problems.push(problem(at, message, help))
            });
        }
        if !problems.is_empty() {
            return Err(TargetError { problems }.into());
        }
        found.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(found)
    }

    /// Adds the project file's `tools:` (names and `@sets`) from the toolbox the CLI carries.
    fn add_tools(
        &self,
        tools: &[Located<String>],
        found: &mut Vec<ProbeSource>,
        problem: &mut dyn FnMut(&Located<String>, String, String),
    ) {
        let dir = match crate::assets::Assets::open() {
            Ok(a) => a.tools_dir(),
            Err(e) => {
                return problem(
                    &tools[0],
                    format!("tools: the toolbox cannot be unpacked: {e}"),
                    "see the error above".into(),
                );
            }
        };
        let mut available: Vec<String> = fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                e.file_name()
                    .to_str()?
                    .strip_suffix(".bpf.c")
                    .map(str::to_string)
            })
            .collect();
        available.sort();
        for at in tools {
            let names: Vec<String> = match at.value.strip_prefix('@') {
                Some(set) => crate::toolbox::tool_set(set, &available)
                    .unwrap_or_default()
                    .into_iter()
                    .map(str::to_string)
                    .collect(),
                None if available.contains(&at.value) => vec![at.value.clone()],
                None => {
                    problem(
                        at,
                        format!("tools: `{}` is no tool of the toolbox", at.value),
                        format!("tools: {}", available.join(", ")),
                    );
                    continue;
                }
            };
            for name in names {
                let source = dir.join(format!("{name}.bpf.c"));
                match found.iter().find(|p| p.name == name) {
                    Some(p) if p.source == source => {}
                    Some(p) => problem(
                        at,
                        format!(
                            "tools: `{name}` is also the project's probe {}",
                            p.source.display()
                        ),
                        "rename the probe, or drop the tool from `tools:`".into(),
                    ),
                    None => found.push(ProbeSource { name, source }),
                }
            }
        }
    }

    /// Probes a target builds: its `probes:` list (each checked to exist) or all of them.
    pub fn probes_for(&self, target: &Target) -> Result<Vec<ProbeSource>, LoadTargetError> {
        let all = self.probes()?;
        let Some(wanted) = &target.probes else {
            return Ok(all);
        };
        let mut list: Vec<ProbeSource> = Vec::new();
        let names: Vec<String> = all.iter().map(|p| p.name.clone()).collect();
        let mut expanded: Vec<String> = Vec::new();
        for name in wanted {
            match name.strip_prefix('@') {
                Some(set) => expanded.extend(
                    crate::toolbox::tool_set(set, &names)
                        .unwrap_or_default()
                        .into_iter()
                        .map(str::to_string),
                ),
                None => expanded.push(name.clone()),
            }
        }
        expanded.dedup();
        for name in &expanded {
            if list.iter().any(|p| &p.name == name) {
                continue;
            }
            match all.iter().find(|p| &p.name == name) {
                Some(p) => list.push(p.clone()),
                None => {
                    return Err(perr(
                        target_file_name(target),
                        format!("probes: `{name}` is not a probe of this project"),
                        format!(
                            "available probes: {}",
                            all.iter()
                                .map(|p| p.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    )
                    .into());
                }
            }
        }
        list.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(list)
    }

    /// The project's extra include folders (from the project file).
    pub fn include_dirs(&self) -> Vec<PathBuf> {
        self.file
            .as_ref()
            .map_or_else(Vec::new, |f| f.include.clone())
    }

    /// The project's extra clang flags (from the project file).
    pub fn cflags(&self) -> Vec<String> {
        self.file
            .as_ref()
            .map_or_else(Vec::new, |f| f.cflags.clone())
    }

    /// Header files the probes may include, project-relative and sorted: `*.h` beside each source
    /// and everything below the include folders. A change to one rebuilds the objects.
    pub fn project_headers(&self, probes: &[ProbeSource]) -> Vec<PathBuf> {
        let mut dirs: Vec<(PathBuf, bool)> = probes
            .iter()
            .map(|p| {
                (
                    p.source.parent().unwrap_or(Path::new("")).to_path_buf(),
                    false,
                )
            })
            .collect();
        dirs.extend(self.include_dirs().into_iter().map(|d| (d, true)));
        let mut headers = Vec::new();
        for (dir, recursive) in dirs {
            collect_headers(&self.root, &dir, recursive, 0, &mut headers);
        }
        headers.sort();
        headers.dedup();
        headers
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

    /// Where the loader comes from: a prebuilt one, this workspace's `loader/` crate (ebpf-pack's own
    /// checkout), or the source the binary carries, built in ebpf-pack's cache.
    pub fn loader_source(
        &self,
        prebuilt: Option<&Path>,
        assets: &Assets,
    ) -> Result<LoaderSource, ProjectError> {
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
        let cargo_home = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
            .unwrap_or_else(|| PathBuf::from("/nonexistent-cargo-home"));
        if self.root.join("loader/Cargo.toml").is_file() && self.root.join("Cargo.toml").is_file() {
            return Ok(LoaderSource::Build {
                workspace: self.root.clone(),
                cargo_home,
                target_dir: None,
                min_size: false,
            });
        }
        // One target folder for every project: the second board of a triple, and every later build,
        // reuse what cargo built there.
        Ok(LoaderSource::Build {
            workspace: assets.loader_source(),
            cargo_home,
            target_dir: Some(cache_dir().join("loader-target")),
            min_size: false,
        })
    }
}

/// Adds `*.h` files in `dir` (and below it when `recursive`, a few levels deep) to `out`.
fn collect_headers(root: &Path, dir: &Path, recursive: bool, depth: u32, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(root.join(dir)) else {
        return;
    };
    for entry in entries.flatten() {
        let rel = dir.join(entry.file_name());
        let path = entry.path();
        if path.is_dir() {
            if recursive && depth < 8 {
                collect_headers(root, &rel, recursive, depth + 1, out);
            }
        } else if rel.extension().is_some_and(|e| e == "h") {
            out.push(rel);
        }
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
