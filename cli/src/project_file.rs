//! The project file `ebpf-pack.yaml` (schema 1): a project's name and version (the bundle's file name),
//! its default boards, where its probes are, and extra include folders and clang flags. Parsed like
//! target files: the YAML exactly, then every problem with its file, line and column.

use std::path::{Component, Path, PathBuf};

use serde::Deserialize;
use serde_saphyr::{Location, Spanned};

use crate::target::{TargetError, TargetProblem, is_valid_name, yaml_problem};

/// The project file's name, in the project's root folder.
pub const PROJECT_FILE: &str = "ebpf-pack.yaml";
/// The only project-file schema this version understands.
pub const PROJECT_SCHEMA: u32 = 1;
/// Where probes are when the file does not say.
pub const DEFAULT_PROBES: &str = "probes/*.bpf.c";
/// Where bpftrace programs (one-liners as files) are when the file does not say.
pub const DEFAULT_SCRIPTS: &str = "probes/*.bt";

/// The project file exactly as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawProjectFile {
    schema: Spanned<u32>,
    name: Spanned<String>,
    version: Spanned<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    boards: Vec<Spanned<String>>,
    #[serde(default)]
    probes: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    tools: Vec<Spanned<String>>,
    #[serde(default)]
    include: Vec<Spanned<String>>,
    #[serde(default)]
    cflags: Vec<Spanned<String>>,
}

/// A value and where the file wrote it, for problems found later (an unknown board, a pattern that
/// matches nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located<T> {
    /// The value.
    pub value: T,
    /// 1-based line.
    pub line: u64,
    /// 1-based column.
    pub column: u64,
}

/// A resolved project file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectFile {
    /// File name as shown in messages.
    pub file: String,
    /// First part of bundle names.
    pub name: String,
    /// Second part of bundle names.
    pub version: String,
    /// One line about the project (for people; not used by builds).
    pub description: Option<String>,
    /// Boards `build` builds when no `--target` is given.
    pub boards: Vec<Located<String>>,
    /// Probe sources: project-relative paths whose file name may hold `*` and `?`, ending in `.bpf.c`.
    pub probes: Vec<Located<String>>,
    /// Ready tools of the toolbox built with the project's probes: tool names and `@sets`.
    pub tools: Vec<Located<String>>,
    /// Extra include folders (project-relative), passed as `-I` after the built-in headers.
    pub include: Vec<PathBuf>,
    /// Extra clang flags, after ebpf-pack's own.
    pub cflags: Vec<String>,
}

impl ProjectFile {
    /// A problem at `at` in this file.
    pub fn problem_at<T>(
        &self,
        at: &Located<T>,
        message: String,
        help: Option<String>,
    ) -> TargetProblem {
        TargetProblem {
            file: self.file.clone(),
            line: at.line,
            column: at.column,
            message,
            help,
        }
    }
}

fn located<T>(value: T, at: &Location) -> Located<T> {
    Located {
        value,
        line: at.line(),
        column: at.column(),
    }
}

/// clang flags ebpf-pack sets itself: a project may not change the target, the CPU, the files or the
/// flags that make objects reproducible.
const RESERVED_FLAGS: &[(&str, &str)] = &[
    ("-target", "the BPF target follows the board's endianness"),
    ("--target", "the BPF target follows the board's endianness"),
    ("-mcpu", "the BPF ISA is the target file's `bpf.cpu`"),
    ("-o", "ebpf-pack names the objects"),
    ("-c", "ebpf-pack passes the sources"),
    (
        "-fdebug-",
        "ebpf-pack maps debug paths for reproducible objects",
    ),
    ("-g", "objects always carry BTF (`-g`)"),
    ("-I", "list include folders under `include:`"),
];

/// Parses and resolves a project file's text; `file` names it in messages.
pub fn parse_project_file(text: &str, file: &str) -> Result<ProjectFile, TargetError> {
    let raw: RawProjectFile = serde_saphyr::from_str(text).map_err(|e| {
        let mut problem = yaml_problem(file, &e);
        if let Some(help) = &mut problem.help {
            *help = help.replace("docs/TARGETS.md", "docs/PROJECT.md");
        }
        TargetError {
            problems: vec![problem],
        }
    })?;
    let mut problems = Vec::new();
    let mut push = |at: &Location, message: String, help: &str| {
        problems.push(TargetProblem {
            file: file.to_string(),
            line: at.line(),
            column: at.column(),
            message,
            help: Some(help.to_string()),
        });
    };
    if raw.schema.value != PROJECT_SCHEMA {
        push(
            &raw.schema.referenced,
            format!("schema {} is not supported", raw.schema.value),
            &format!("this ebpf-pack reads `schema: {PROJECT_SCHEMA}`"),
        );
    }
    if !is_valid_name(&raw.name.value) {
        push(
            &raw.name.referenced,
            format!("name `{}` is not a valid project name", raw.name.value),
            "use lower-case letters, digits, `-` and `_` (it starts every bundle's file name)",
        );
    }
    let version_ok = raw
        .version
        .value
        .starts_with(|c: char| c.is_ascii_alphanumeric())
        && raw
            .version
            .value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c));
    if !version_ok {
        push(
            &raw.version.referenced,
            format!(
                "version `{}` cannot be part of a file name",
                raw.version.value
            ),
            "write it like `1.2.0` or `2026.12-rc1`, quoted if YAML would read a number",
        );
    }
    let mut boards: Vec<Located<String>> = Vec::new();
    for b in &raw.boards {
        if !is_valid_name(&b.value) {
            push(
                &b.referenced,
                format!("board `{}` is not a valid target name", b.value),
                "name a built-in target (`ebpf-pack targets`) or a file targets/NAME.yaml",
            );
        } else if boards.iter().any(|x| x.value == b.value) {
            push(
                &b.referenced,
                format!("board `{}` is listed twice", b.value),
                "list each board once",
            );
        } else {
            boards.push(located(b.value.clone(), &b.referenced));
        }
    }
    let mut probes = Vec::new();
    match &raw.probes {
        None => probes.extend([DEFAULT_PROBES, DEFAULT_SCRIPTS].map(|value| Located {
            value: value.to_string(),
            line: 0,
            column: 0,
        })),
        Some(list) => {
            if list.is_empty() {
                push(
                    &raw.name.referenced,
                    "probes: the list is empty".into(),
                    "name the sources, e.g. `probes: [\"probes/*.bpf.c\"]`, or drop the key",
                );
            }
            for pattern in list {
                match check_relative(&pattern.value) {
                    Err(why) => push(
                        &pattern.referenced,
                        format!("probes: `{}` {why}", pattern.value),
                        "give a path relative to the project folder, e.g. `probes/*.bpf.c`",
                    ),
                    Ok(())
                        if !pattern.value.ends_with(".bpf.c")
                            && !pattern.value.ends_with(".bt") =>
                    {
                        push(
                            &pattern.referenced,
                            format!("probes: `{}` does not end in .bpf.c or .bt", pattern.value),
                            "probe sources are named NAME.bpf.c (C) or NAME.bt (a bpftrace program); the object and the probe take NAME",
                        )
                    }
                    Ok(()) if parent_has_wildcard(&pattern.value) => push(
                        &pattern.referenced,
                        format!(
                            "probes: `{}` has a wildcard in a folder name",
                            pattern.value
                        ),
                        "only the file name may hold `*` or `?`, e.g. `src/bpf/*.bpf.c`",
                    ),
                    Ok(()) => probes.push(located(pattern.value.clone(), &pattern.referenced)),
                }
            }
        }
    }
    let mut tools = Vec::new();
    for tool in &raw.tools {
        let set = tool.value.strip_prefix('@');
        let known_set = set
            .is_some_and(|s| s == "all" || crate::toolbox::TOOL_SETS.iter().any(|(n, _)| *n == s));
        if set.is_some() && !known_set {
            push(
                &tool.referenced,
                format!("tools: `{}` is no set of tools", tool.value),
                &format!(
                    "sets: {}; `ebpf-pack tools` lists the tools",
                    crate::toolbox::set_names().join(", ")
                ),
            );
        } else if set.is_none() && !crate::target::is_valid_name(&tool.value) {
            push(
                &tool.referenced,
                format!("tools: `{}` is not a tool name", tool.value),
                "name a tool (opensnoop) or a set (@net); `ebpf-pack tools` lists them",
            );
        } else {
            tools.push(located(tool.value.clone(), &tool.referenced));
        }
    }
    let mut include = Vec::new();
    for dir in &raw.include {
        if Path::new(&dir.value).is_absolute() || dir.value.is_empty() {
            push(
                &dir.referenced,
                format!("include: `{}` is not a relative path", dir.value),
                "give a folder relative to the project, so the build does not depend on where it is checked out",
            );
        } else {
            include.push(PathBuf::from(&dir.value));
        }
    }
    let mut cflags = Vec::new();
    for flag in &raw.cflags {
        let reserved = RESERVED_FLAGS.iter().find(|(prefix, _)| {
            flag.value == *prefix
                || (flag.value.starts_with(prefix)
                    && (prefix.ends_with('-')
                        || prefix.len() == 2
                        || flag.value[prefix.len()..].starts_with('=')))
        });
        if let Some((_, why)) = reserved {
            push(
                &flag.referenced,
                format!("cflags: `{}` is set by ebpf-pack: {why}", flag.value),
                "drop the flag; defines (-DNAME=1) and warnings (-W...) are fine",
            );
        } else if flag.value.trim().is_empty() || flag.value.contains(char::is_whitespace) {
            push(
                &flag.referenced,
                format!("cflags: `{}` is not one flag", flag.value),
                "give each flag as its own list item",
            );
        } else {
            cflags.push(flag.value.clone());
        }
    }
    if !problems.is_empty() {
        return Err(TargetError { problems });
    }
    Ok(ProjectFile {
        file: file.to_string(),
        name: raw.name.value,
        version: raw.version.value,
        description: raw.description,
        boards,
        probes,
        tools,
        include,
        cflags,
    })
}

/// Refuses absolute paths and `..`: probe sources stay inside the project.
fn check_relative(path: &str) -> Result<(), &'static str> {
    let p = Path::new(path);
    if path.is_empty() || p.is_absolute() {
        return Err("is not a relative path");
    }
    if p.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err("leaves the project folder");
    }
    Ok(())
}

fn parent_has_wildcard(pattern: &str) -> bool {
    Path::new(pattern)
        .parent()
        .is_some_and(|d| d.to_string_lossy().contains(['*', '?']))
}

/// Whether `name` matches `pattern`, where `*` is any run of characters and `?` any one.
pub use ebpf_pack_object::glob::wildcard_match;

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        parse_project_file(text, "ebpf-pack.yaml")
            .expect_err("must fail")
            .problems
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn minimal_file_takes_the_default_probes() {
        let p = parse_project_file("schema: 1\nname: probes\nversion: \"1.0\"\n", "x.yaml")
            .expect("valid");
        assert_eq!(p.name, "probes");
        assert_eq!(p.version, "1.0");
        assert_eq!(p.probes[0].value, DEFAULT_PROBES);
        assert!(p.boards.is_empty() && p.include.is_empty() && p.cflags.is_empty());
    }

    #[test]
    fn full_file() {
        let p = parse_project_file(
            "schema: 1\nname: gw-probes\nversion: 2.3.1\ndescription: gateway tracing\n\
             boards: [rpi4, beaglebone]\nprobes: [\"src/*.bpf.c\", extra/one.bpf.c]\n\
             include: [include]\ncflags: [-DMAX=8, -Wno-unused]\n",
            "x.yaml",
        )
        .expect("valid");
        assert_eq!(
            p.boards
                .iter()
                .map(|b| b.value.as_str())
                .collect::<Vec<_>>(),
            ["rpi4", "beaglebone"]
        );
        assert_eq!((p.boards[1].line, p.boards[1].column), (5, 16));
        assert_eq!(p.probes.len(), 2);
        assert_eq!(p.include, [PathBuf::from("include")]);
        assert_eq!(p.cflags, ["-DMAX=8", "-Wno-unused"]);
    }

    #[test]
    fn unknown_key_is_located() {
        let got = problems("schema: 1\nname: a\nversion: \"1\"\nboard: [rpi4]\n");
        assert_eq!(got.len(), 1);
        assert!(
            got[0].starts_with("ebpf-pack.yaml:4:1: unknown field `board`"),
            "{got:?}"
        );
        assert!(got[0].contains("docs/PROJECT.md"), "{got:?}");
    }

    #[test]
    fn broken_yaml_is_located() {
        let got = problems("schema: 1\nname: [a\nversion: 1\n");
        assert!(got[0].starts_with("ebpf-pack.yaml:"), "{got:?}");
        assert!(
            !got[0].starts_with("ebpf-pack.yaml: "),
            "has a line: {got:?}"
        );
    }

    #[test]
    fn every_problem_at_once() {
        let got = problems(
            "schema: 2\nname: My Probes\nversion: ../1\nboards: [rpi4, rpi4]\n\
             probes: [/abs/x.bpf.c, \"../up.bpf.c\", probes/x.c, \"*/x.bpf.c\"]\n\
             include: [/usr/include]\ncflags: [-target, -mcpu=v4, -O2 -g, -DOK]\n",
        );
        let wanted = [
            "ebpf-pack.yaml:1:9: schema 2",
            "ebpf-pack.yaml:2:7: name `My Probes`",
            "ebpf-pack.yaml:3:10: version `../1`",
            "ebpf-pack.yaml:4:16: board `rpi4` is listed twice",
            "ebpf-pack.yaml:5:10: probes: `/abs/x.bpf.c` is not a relative path",
            "ebpf-pack.yaml:5:24: probes: `../up.bpf.c` leaves the project folder",
            "ebpf-pack.yaml:5:39: probes: `probes/x.c` does not end in .bpf.c",
            "ebpf-pack.yaml:5:51: probes: `*/x.bpf.c` has a wildcard in a folder name",
            "ebpf-pack.yaml:6:11: include: `/usr/include`",
            "ebpf-pack.yaml:7:10: cflags: `-target` is set by ebpf-pack",
            "ebpf-pack.yaml:7:19: cflags: `-mcpu=v4` is set by ebpf-pack",
            "ebpf-pack.yaml:7:29: cflags: `-O2 -g` is not one flag",
        ];
        assert_eq!(got.len(), wanted.len(), "{got:#?}");
        for (g, w) in got.iter().zip(wanted) {
            assert!(g.starts_with(w), "{g}\n  wanted: {w}");
        }
    }

    #[test]
    fn reserved_flags_in_every_spelling() {
        let p = parse_project_file(
            "schema: 1\nname: a\nversion: \"1\"\ncflags: [-ggdb-not, -ordered, -cx]\n",
            "x",
        );
        // `-g...`, `-o...`, `-c...` and `-I...` are refused in their joined spellings too.
        assert!(
            p.is_err(),
            "-ggdb-not starts with -g and is refused as a debug flag"
        );
        let ok = parse_project_file(
            "schema: 1\nname: a\nversion: \"1\"\ncflags: [-Wno-gnu, -DTARGET=1, -std=gnu11]\n",
            "x",
        );
        assert!(ok.is_ok(), "{ok:?}");
    }

    #[test]
    fn the_example_in_the_docs_parses() {
        let doc = include_str!("../../docs/PROJECT.md");
        let example = doc
            .split("```yaml\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("docs/PROJECT.md has a yaml example");
        let p = parse_project_file(example, "docs/PROJECT.md").expect("the example is valid");
        assert_eq!(
            (p.name.as_str(), p.version.as_str()),
            ("gw-probes", "1.4.0")
        );
        assert_eq!(p.probes.len(), 2);
    }

    #[test]
    fn the_repository_is_a_project() {
        let text = include_str!("../../ebpf-pack.yaml");
        let p = parse_project_file(text, "ebpf-pack.yaml").expect("valid");
        assert_eq!(p.name, "ebpf-pack");
        assert_eq!(
            p.version,
            env!("CARGO_PKG_VERSION"),
            "keep it the workspace version"
        );
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("*.bpf.c", "opensnoop.bpf.c"));
        assert!(wildcard_match("open*.bpf.c", "opensnoop.bpf.c"));
        assert!(wildcard_match("?pensnoop.bpf.c", "opensnoop.bpf.c"));
        assert!(!wildcard_match("*.bpf.c", "opensnoop.c"));
        assert!(!wildcard_match("exec*.bpf.c", "opensnoop.bpf.c"));
        assert!(wildcard_match("*", ""));
    }
}
