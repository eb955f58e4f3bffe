//! `ebpf-pack init`, `ebpf-pack ci` and `ebpf-pack headers`: writing a project's files from the
//! templates and the assets, never over a file that is there (init), and checking that generated CI
//! files are current (`ci --check`).

use std::fs;
use std::path::{Path, PathBuf};

use crate::commands::{EXIT_BAD_INPUT, EXIT_FAILED, Failure, failure};
use crate::project::Project;
use crate::project_file::PROJECT_FILE;
use crate::target::{BUILTIN_TARGETS, builtin_names, is_valid_name};
use crate::templates::{CiContext, CiSystem, InitContext, own_target_file, render_ci, render_init};

/// Arguments of `ebpf-pack init`.
#[derive(Debug, Clone)]
pub struct InitArgs {
    /// The new project's folder (created if missing).
    pub dir: PathBuf,
    /// Project name [default: the folder's name].
    pub name: Option<String>,
    /// Boards: built-in names, or `NAME:BASE` for a board of the project's own started from a built-in.
    pub boards: Vec<String>,
    /// CI systems to write files for.
    pub ci: Vec<CiSystem>,
}

/// Boards of a new project when none is given.
pub const DEFAULT_INIT_BOARDS: &[&str] = &["x86_64"];

/// `ebpf-pack init`: a project that builds and runs as it is. Writes nothing if any file is there.
pub fn init(args: &InitArgs) -> Result<(), Failure> {
    let name = match &args.name {
        Some(n) => n.clone(),
        None => folder_name(&args.dir)?,
    };
    if !is_valid_name(&name) {
        return Err(failure(
            EXIT_BAD_INPUT,
            format!(
                "project name `{name}` is not valid\n  help: use lower-case letters, digits, `-` and `_`, or pass --name NAME"
            ),
        ));
    }
    let wanted: Vec<String> = if args.boards.is_empty() {
        DEFAULT_INIT_BOARDS.iter().map(|b| b.to_string()).collect()
    } else {
        args.boards.clone()
    };
    let mut boards = Vec::new();
    let mut own = Vec::new();
    let mut files: Vec<(PathBuf, String)> = Vec::new();
    for spec in &wanted {
        let (board, base) = match spec.split_once(':') {
            Some((b, base)) => (b.to_string(), Some(base.to_string())),
            None => (spec.clone(), None),
        };
        let known = builtin_names().collect::<Vec<_>>().join(", ");
        if !is_valid_name(&board) {
            return Err(failure(
                EXIT_BAD_INPUT,
                format!(
                    "--board `{spec}`: `{board}` is not a valid board name\n  help: use lower-case letters, digits, `-` and `_`"
                ),
            ));
        }
        if boards.contains(&board) {
            return Err(failure(
                EXIT_BAD_INPUT,
                format!("--board `{board}` is given twice"),
            ));
        }
        match base {
            None if builtin_names().any(|b| b == board) => {}
            None => {
                return Err(failure(
                    EXIT_BAD_INPUT,
                    format!(
                        "--board `{board}` is not a built-in target\n  help: built-in targets: {known}; for a board of your own, start it from one: --board {board}:beaglebone"
                    ),
                ));
            }
            Some(base) => {
                let Some((_, text)) = BUILTIN_TARGETS.iter().find(|(n, _)| *n == base) else {
                    return Err(failure(
                        EXIT_BAD_INPUT,
                        format!(
                            "--board `{spec}`: `{base}` is not a built-in target to start from\n  help: built-in targets: {known}"
                        ),
                    ));
                };
                files.push((
                    PathBuf::from("targets").join(format!("{board}.yaml")),
                    own_target_file(&board, &base, text),
                ));
                own.push(board.clone());
            }
        }
        boards.push(board);
    }
    let mut rendered = render_init(&InitContext {
        name: name.clone(),
        boards: boards.clone(),
        own_targets: own,
        ci: args.ci.clone(),
    })
    .map_err(|e| failure(EXIT_FAILED, e))?;
    rendered.append(&mut files);
    let there: Vec<String> = rendered
        .iter()
        .filter(|(p, _)| args.dir.join(p).symlink_metadata().is_ok())
        .map(|(p, _)| p.display().to_string())
        .collect();
    if !there.is_empty() {
        return Err(failure(
            EXIT_BAD_INPUT,
            format!(
                "{}: init would overwrite {}; nothing was written\n  help: init into an empty folder, or move those files away first",
                args.dir.display(),
                there.join(", ")
            ),
        ));
    }
    let mut written: Vec<PathBuf> = Vec::new();
    for (rel, text) in &rendered {
        let path = args.dir.join(rel);
        if let Err(e) = write_new(&path, text) {
            // Nothing partial: take back what this run wrote.
            for w in written.iter().rev() {
                let _ = fs::remove_file(w);
            }
            return Err(failure(
                EXIT_FAILED,
                format!("{}: {e}; nothing was left written", path.display()),
            ));
        }
        written.push(path);
    }
    for (rel, _) in &rendered {
        println!("created {}", args.dir.join(rel).display());
    }
    println!(
        "next: cd {} && ebpf-pack deps --install && ebpf-pack build",
        args.dir.display()
    );
    Ok(())
}

/// The folder's name as a project name: lower-cased, other characters as `-`.
fn folder_name(dir: &Path) -> Result<String, Failure> {
    let abs = if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| failure(EXIT_FAILED, format!("current folder: {e}")))?
            .join(dir)
    };
    let base = abs
        .components()
        .filter_map(|c| match c {
            std::path::Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
            _ => None,
        })
        .next_back()
        .unwrap_or_default();
    let name: String = base
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    Ok(name.trim_matches('-').to_string())
}

/// Creates `path` (and its folders) with `text`; fails if it exists.
fn write_new(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    use std::io::Write;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    f.write_all(text.as_bytes())
}

/// `ebpf-pack ci SYSTEM [--check]`: writes the CI file from the project file, or checks it is current.
pub fn ci(project_dir: &Path, system: CiSystem, check: bool) -> Result<(), Failure> {
    let project = Project::open(project_dir).map_err(|e| failure(EXIT_BAD_INPUT, e))?;
    let Some(file) = &project.file else {
        return Err(failure(
            EXIT_BAD_INPUT,
            format!(
                "{}: has no {PROJECT_FILE}; the CI files are written from it\n  help: start one with `ebpf-pack init`, or write it by hand (docs/PROJECT.md)",
                project.root.display()
            ),
        ));
    };
    let boards = project
        .default_boards()
        .map_err(|e| failure(EXIT_BAD_INPUT, e))?;
    if boards.is_empty() {
        return Err(failure(
            EXIT_BAD_INPUT,
            format!(
                "{}: lists no `boards`; CI builds one job per board\n  help: add e.g. `boards: [rpi4]`",
                file.file
            ),
        ));
    }
    let ctx = CiContext::for_this_ebpf_pack(&file.name, &file.version, &boards);
    let (rel, text) = render_ci(system, &ctx).map_err(|e| failure(EXIT_FAILED, e))?;
    let path = project.root.join(&rel);
    if check {
        let current = fs::read_to_string(&path).map_err(|e| {
            failure(
                EXIT_FAILED,
                format!(
                    "{}: {e}\n  help: write it with `ebpf-pack ci {}`",
                    rel.display(),
                    system.name()
                ),
            )
        })?;
        if current != text {
            return Err(failure(
                EXIT_FAILED,
                format!(
                    "{} is not what `ebpf-pack ci {}` writes for this {PROJECT_FILE}:\n{}\n  help: run `ebpf-pack ci {}` and commit the result (edit {PROJECT_FILE}, not the CI file)",
                    rel.display(),
                    system.name(),
                    first_difference(&current, &text),
                    system.name()
                ),
            ));
        }
        println!("{}: current", rel.display());
        return Ok(());
    }
    write_atomically(&path, &text)
        .map_err(|e| failure(EXIT_FAILED, format!("{}: {e}", path.display())))?;
    println!("wrote {}", rel.display());
    Ok(())
}

/// Writes through a temporary file and a rename: the file is the old or the new one, never half.
pub(crate) fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let temp = path.with_extension(format!("partial-{}", std::process::id()));
    fs::write(&temp, text)?;
    fs::rename(&temp, path).inspect_err(|_| {
        let _ = fs::remove_file(&temp);
    })
}

/// The first line where `current` and `wanted` differ, both shown, with its number.
pub fn first_difference(current: &str, wanted: &str) -> String {
    let (mut a, mut b) = (current.lines(), wanted.lines());
    let mut line = 1;
    loop {
        match (a.next(), b.next()) {
            (Some(x), Some(y)) if x == y => line += 1,
            (None, None) => return "  (they differ only in line endings)".into(),
            (x, y) => {
                return format!(
                    "  line {line}: the file has  {}\n  line {line}: ebpf-pack writes {}",
                    x.map_or("(end of file)".into(), |l| format!("`{l}`")),
                    y.map_or("(end of file)".into(), |l| format!("`{l}`"))
                );
            }
        }
    }
}

/// `ebpf-pack headers DIR [--arch A]...`: writes `ebpf_pack.h` and `<arch>/vmlinux.h`.
pub fn headers(dir: &Path, arches: &[String]) -> Result<(), Failure> {
    let known: Vec<&str> = crate::assets::files()
        .iter()
        .filter_map(|(p, _)| p.strip_prefix("include/"))
        .filter_map(|p| p.split_once('/').map(|(a, _)| a))
        .collect();
    for a in arches {
        if !known.contains(&a.as_str()) {
            let mut list = known.clone();
            list.dedup();
            return Err(failure(
                EXIT_BAD_INPUT,
                format!(
                    "--arch `{a}` has no built-in vmlinux.h\n  help: one of: {}",
                    list.join(", ")
                ),
            ));
        }
    }
    let arch_refs: Vec<&str> = arches.iter().map(String::as_str).collect();
    let written =
        crate::assets::write_headers(dir, &arch_refs).map_err(|e| failure(EXIT_FAILED, e))?;
    for w in &written {
        println!("{}", w.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn difference_names_the_line() {
        let d = first_difference("a\nb\nc\n", "a\nB\nc\n");
        assert_eq!(
            d,
            "  line 2: the file has  `b`\n  line 2: ebpf-pack writes `B`"
        );
        assert!(first_difference("a\n", "a\nb\n").contains("(end of file)"));
    }

    #[test]
    fn folder_names_become_project_names() {
        assert_eq!(
            folder_name(Path::new("/src/My Probes")).ok().as_deref(),
            Some("my-probes")
        );
        assert_eq!(
            folder_name(Path::new("/src/gw_probes/")).ok().as_deref(),
            Some("gw_probes")
        );
    }

    #[test]
    fn init_refuses_to_overwrite_and_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("README.md"), "mine").expect("write");
        let err = init(&InitArgs {
            dir: dir.path().to_path_buf(),
            name: Some("demo".into()),
            boards: vec![],
            ci: CiSystem::ALL.to_vec(),
        })
        .expect_err("refuses");
        assert_eq!(err.code, EXIT_BAD_INPUT);
        assert!(
            err.message.contains("would overwrite README.md"),
            "{}",
            err.message
        );
        let left: Vec<_> = fs::read_dir(dir.path()).expect("list").flatten().collect();
        assert_eq!(left.len(), 1, "only the user's file: {left:?}");
        assert_eq!(
            fs::read_to_string(dir.path().join("README.md"))
                .ok()
                .as_deref(),
            Some("mine")
        );
    }

    #[test]
    fn init_boards_unknown_and_own() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = init(&InitArgs {
            dir: dir.path().join("p"),
            name: None,
            boards: vec!["gateway".into()],
            ci: vec![],
        })
        .expect_err("unknown board");
        assert!(
            err.message.contains("--board gateway:beaglebone"),
            "{}",
            err.message
        );
        init(&InitArgs {
            dir: dir.path().join("p"),
            name: None,
            boards: vec!["rpi4".into(), "gateway:beaglebone".into()],
            ci: vec![],
        })
        .expect("init");
        let project = Project::open(&dir.path().join("p")).expect("a project");
        assert_eq!(project.bundle_name(), "p");
        assert_eq!(
            project.default_boards().expect("boards"),
            ["rpi4", "gateway"]
        );
        assert_eq!(
            project
                .target("gateway")
                .expect("own target")
                .arch
                .to_string(),
            "arm"
        );
        assert_eq!(
            project.probes().expect("probes")[0].source,
            PathBuf::from("probes/hello.bpf.c")
        );
    }

    #[test]
    fn ci_check_names_the_hand_edit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("p");
        init(&InitArgs {
            dir: p.clone(),
            name: None,
            boards: vec!["rpi4".into()],
            ci: CiSystem::ALL.to_vec(),
        })
        .expect("init");
        for system in CiSystem::ALL {
            ci(&p, system, true).expect("init writes current CI files");
        }
        let file = p.join(".gitlab-ci.yml");
        let text = fs::read_to_string(&file).expect("read");
        fs::write(&file, text.replace("- rpi4", "- rpi5")).expect("edit");
        let err = ci(&p, CiSystem::Gitlab, true).expect_err("edited");
        assert!(
            err.message.contains("the file has  `          - rpi5`"),
            "{}",
            err.message
        );
        ci(&p, CiSystem::Gitlab, false).expect("rewrite");
        ci(&p, CiSystem::Gitlab, true).expect("current again");
    }
}
