//! Rendering the files `init` and `ci` write from the templates in the top-level `templates/` folder
//! (carried by the binary). Pure: a context in, (path, text) out. The templates use `[[ x ]]` and
//! `[% ... %]` (minijinja with custom delimiters), so GitHub's `${{ }}` stays literal.

use std::path::PathBuf;

use minijinja::syntax::SyntaxConfig;
use minijinja::{Environment, context};
use serde::Serialize;

/// Every template, by its path under `templates/`.
const TEMPLATES: &[(&str, &str)] = &[
    (
        "init/ebpf-pack.yaml",
        include_str!("../../templates/init/ebpf-pack.yaml"),
    ),
    (
        "init/probes/hello.bpf.c",
        include_str!("../../templates/init/probes/hello.bpf.c"),
    ),
    (
        "init/gitignore",
        include_str!("../../templates/init/gitignore"),
    ),
    (
        "init/README.md",
        include_str!("../../templates/init/README.md"),
    ),
    (
        "ci/github.yml",
        include_str!("../../templates/ci/github.yml"),
    ),
    (
        "ci/gitlab.yml",
        include_str!("../../templates/ci/gitlab.yml"),
    ),
];

/// The container image CI jobs build in: Debian 12 (its clang-19, cross gcc, bpftool) with the Rust
/// toolchain this ebpf-pack is tested with.
pub const CI_IMAGE: &str = "rust:1.95-bookworm";

/// A CI system `ebpf-pack ci` writes files for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CiSystem {
    /// GitHub Actions: `.github/workflows/ebpf-pack.yml`.
    Github,
    /// GitLab CI: `.gitlab-ci.yml`.
    Gitlab,
}

impl CiSystem {
    /// Every system, in the order `init` writes them.
    pub const ALL: [CiSystem; 2] = [CiSystem::Github, CiSystem::Gitlab];

    /// The file it reads, relative to the project root.
    pub fn path(self) -> PathBuf {
        match self {
            CiSystem::Github => ".github/workflows/ebpf-pack.yml".into(),
            CiSystem::Gitlab => ".gitlab-ci.yml".into(),
        }
    }

    /// The name on the command line (`ebpf-pack ci NAME`).
    pub fn name(self) -> &'static str {
        match self {
            CiSystem::Github => "github",
            CiSystem::Gitlab => "gitlab",
        }
    }

    fn template(self) -> &'static str {
        match self {
            CiSystem::Github => "ci/github.yml",
            CiSystem::Gitlab => "ci/gitlab.yml",
        }
    }
}

/// What the CI files are written from: the project file's facts and this ebpf-pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CiContext {
    /// Project name (first part of bundle names).
    pub name: String,
    /// Project version (second part).
    pub version: String,
    /// Boards, one job each.
    pub boards: Vec<String>,
    /// The ebpf-pack version the jobs install.
    pub ebpf_pack_version: String,
    /// The command that installs that ebpf-pack.
    pub install_command: String,
}

impl CiContext {
    /// The context for `name`/`version`/`boards` and this ebpf-pack, installed from its repository's
    /// tag of this version.
    pub fn for_this_ebpf_pack(name: &str, version: &str, boards: &[String]) -> CiContext {
        let v = env!("CARGO_PKG_VERSION");
        CiContext {
            name: name.into(),
            version: version.into(),
            boards: boards.to_vec(),
            ebpf_pack_version: v.into(),
            install_command: format!(
                "cargo install --locked --git {} --tag v{v} ebpf-pack",
                env!("CARGO_PKG_REPOSITORY")
            ),
        }
    }
}

/// A template failed to render (a bug in a template, reported with its name).
#[derive(Debug, thiserror::Error)]
#[error("template {name}: {error}")]
pub struct TemplateError {
    name: String,
    error: minijinja::Error,
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    let syntax = SyntaxConfig::builder()
        .block_delimiters("[%", "%]")
        .variable_delimiters("[[", "]]")
        .comment_delimiters("[#", "#]")
        .build();
    // The builder only fails on ambiguous delimiters; these are fixed and distinct.
    if let Ok(syntax) = syntax {
        env.set_syntax(syntax);
    }
    env.set_keep_trailing_newline(true);
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    for (name, text) in TEMPLATES {
        // Added unparsed-checked here; a broken template fails its render with its name.
        let _ = env.add_template(name, text);
    }
    env
}

fn render(name: &str, ctx: minijinja::Value) -> Result<String, TemplateError> {
    let env = environment();
    env.get_template(name)
        .and_then(|t| t.render(ctx))
        .map_err(|error| TemplateError {
            name: name.into(),
            error,
        })
}

/// The CI file for `system`: its project-relative path and text.
pub fn render_ci(system: CiSystem, ctx: &CiContext) -> Result<(PathBuf, String), TemplateError> {
    let mut release_files = Vec::new();
    for board in &ctx.boards {
        let stem = format!("{}-{}-{board}.tar.gz", ctx.name, ctx.version);
        release_files.push(format!("{stem}.sha256"));
        release_files.push(stem);
    }
    release_files.sort();
    release_files.push("SHA256SUMS".into());
    let text = render(
        system.template(),
        context! {
            name => ctx.name,
            version => ctx.version,
            boards => ctx.boards,
            ebpf_pack_version => ctx.ebpf_pack_version,
            install_command => ctx.install_command,
            image => CI_IMAGE,
            release_files => release_files,
        },
    )?;
    Ok((system.path(), text))
}

/// The version a new project starts at.
pub const INIT_VERSION: &str = "0.1.0";

/// What a new project is made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitContext {
    /// Project name.
    pub name: String,
    /// Boards of the project file.
    pub boards: Vec<String>,
    /// Boards that get a file in targets/ (not built in).
    pub own_targets: Vec<String>,
    /// CI systems to write files for.
    pub ci: Vec<CiSystem>,
}

/// The files of a new project (besides `targets/`), project-relative, in writing order.
pub fn render_init(ctx: &InitContext) -> Result<Vec<(PathBuf, String)>, TemplateError> {
    let ci_paths: Vec<String> = ctx
        .ci
        .iter()
        .map(|c| format!("`{}`", c.path().display()))
        .collect();
    let values = context! {
        name => ctx.name,
        version => INIT_VERSION,
        boards => ctx.boards,
        own_targets => ctx.own_targets,
        ci => ci_paths,
    };
    let mut files = vec![
        (
            PathBuf::from("ebpf-pack.yaml"),
            render("init/ebpf-pack.yaml", values.clone())?,
        ),
        (
            PathBuf::from("probes/hello.bpf.c"),
            render("init/probes/hello.bpf.c", values.clone())?,
        ),
        (
            PathBuf::from(".gitignore"),
            render("init/gitignore", values.clone())?,
        ),
        (
            PathBuf::from("README.md"),
            render("init/README.md", values)?,
        ),
    ];
    let ci = CiContext::for_this_ebpf_pack(&ctx.name, INIT_VERSION, &ctx.boards);
    for system in &ctx.ci {
        files.push(render_ci(*system, &ci)?);
    }
    Ok(files)
}

/// A built-in target's file rewritten as a project's own board `name`, to be edited for that board.
pub fn own_target_file(name: &str, base: &str, base_text: &str) -> String {
    let mut out = format!(
        "# Board `{name}`, started from ebpf-pack's built-in target `{base}`: edit it for your board\n\
         # (kernel version, its BTF or vmlinux, libc, linker). Reference: docs/TARGETS.md of ebpf-pack.\n"
    );
    for line in base_text.lines() {
        if line.starts_with("name:") {
            out.push_str(&format!("name: {name}\n"));
        } else if let Some(desc) = line.strip_prefix("description:") {
            out.push_str(&format!(
                "description: \"{name} (from {base}:{})\"\n",
                desc.trim().trim_matches('"').replace('"', "'")
            ));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ci_context() -> CiContext {
        CiContext {
            name: "gw-probes".into(),
            version: "1.4.0".into(),
            boards: vec!["rpi4".into(), "beaglebone".into(), "x86_64".into()],
            ebpf_pack_version: "0.1.0".into(),
            install_command:
                "cargo install --locked --git https://github.com/ebpf-pack/ebpf-pack --tag v0.1.0 ebpf-pack"
                    .into(),
        }
    }

    #[test]
    fn github_workflow() {
        let (path, text) = render_ci(CiSystem::Github, &ci_context()).expect("render");
        assert_eq!(path, PathBuf::from(".github/workflows/ebpf-pack.yml"));
        insta::assert_snapshot!(text);
    }

    #[test]
    fn gitlab_pipeline() {
        let (path, text) = render_ci(CiSystem::Gitlab, &ci_context()).expect("render");
        assert_eq!(path, PathBuf::from(".gitlab-ci.yml"));
        insta::assert_snapshot!(text);
    }

    #[test]
    fn init_files() {
        let files = render_init(&InitContext {
            name: "gw-probes".into(),
            boards: vec!["rpi4".into(), "gateway".into()],
            own_targets: vec!["gateway".into()],
            ci: vec![CiSystem::Github],
        })
        .expect("render");
        let names: Vec<String> = files.iter().map(|(p, _)| p.display().to_string()).collect();
        assert_eq!(
            names,
            [
                "ebpf-pack.yaml",
                "probes/hello.bpf.c",
                ".gitignore",
                "README.md",
                ".github/workflows/ebpf-pack.yml"
            ]
        );
        insta::assert_snapshot!("init_project_file", &files[0].1);
        insta::assert_snapshot!("init_readme", &files[3].1);
        // The project file it writes is one this ebpf-pack reads.
        let parsed = crate::project_file::parse_project_file(&files[0].1, "ebpf-pack.yaml")
            .expect("init writes a valid project file");
        assert_eq!(parsed.name, "gw-probes");
        assert_eq!(
            parsed
                .boards
                .iter()
                .map(|b| b.value.as_str())
                .collect::<Vec<_>>(),
            ["rpi4", "gateway"]
        );
    }

    #[test]
    fn own_target_from_a_builtin_resolves_under_its_new_name() {
        let (_, base) = crate::target::BUILTIN_TARGETS
            .iter()
            .find(|(n, _)| *n == "beaglebone")
            .expect("builtin");
        let text = own_target_file("gateway", "beaglebone", base);
        let t = crate::target::parse_target(
            &text,
            "targets/gateway.yaml",
            std::path::Path::new("."),
            crate::target::TargetOrigin::Builtin,
        )
        .expect("valid");
        assert_eq!(t.name, "gateway");
        assert!(
            t.description.starts_with("gateway (from beaglebone:"),
            "{}",
            t.description
        );
    }
}
