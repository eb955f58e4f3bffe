//! `ebpf-pack deps`: the tools the project's boards need that this host lacks — the very list `build`
//! refuses to start without — and, with `--install`, installing them with apt and rustup.

use std::path::Path;
use std::process::Command;

use crate::assets::Assets;
use crate::commands::{EXIT_BAD_INPUT, EXIT_FAILED, EXIT_MISSING_TOOL, Failure, failure};
use crate::project::{Project, classify_btf};
use crate::toolchain::{Fix, MissingTool, TargetNeeds, check_toolchain, find_program};

/// Commands that install `missing`, grouped: one apt-get, one rustup per kind; and what is left to a
/// person. Pure, so the grouping is tested.
pub fn install_plan(missing: &[MissingTool]) -> (Vec<Vec<String>>, Vec<&MissingTool>) {
    let mut apt: Vec<String> = Vec::new();
    let mut targets: Vec<String> = Vec::new();
    let mut components: Vec<String> = Vec::new();
    let mut manual = Vec::new();
    for m in missing {
        match &m.fix {
            Fix::Apt(p) => apt.extend(p.split_whitespace().map(str::to_string)),
            Fix::RustupTarget(t) => targets.push(t.clone()),
            Fix::RustupComponent(c) => components.push(c.clone()),
            Fix::Manual(_) => manual.push(m),
        }
    }
    apt.sort();
    apt.dedup();
    let mut cmds = Vec::new();
    if !apt.is_empty() {
        cmds.push(vec!["apt-get".into(), "update".into()]);
        let mut install: Vec<String> = ["apt-get", "install", "-y", "--no-install-recommends"]
            .map(String::from)
            .to_vec();
        install.extend(apt);
        cmds.push(install);
    }
    if !targets.is_empty() {
        cmds.push(
            ["rustup", "target", "add"]
                .map(String::from)
                .into_iter()
                .chain(targets)
                .collect(),
        );
    }
    if !components.is_empty() {
        cmds.push(
            ["rustup", "component", "add"]
                .map(String::from)
                .into_iter()
                .chain(components)
                .collect(),
        );
    }
    (cmds, manual)
}

/// What is missing for `targets` (the project file's boards when empty), as `build` checks it.
fn missing_for(project: &Project, targets: &[String]) -> Result<Vec<MissingTool>, Failure> {
    let names = if targets.is_empty() {
        project
            .default_boards()
            .map_err(|e| failure(EXIT_BAD_INPUT, e))?
    } else {
        targets.to_vec()
    };
    let assets = Assets::open().map_err(|e| failure(EXIT_FAILED, e))?;
    let loader = project
        .loader_source(None, &assets)
        .map_err(|e| failure(EXIT_BAD_INPUT, e))?;
    let mut loaded = Vec::new();
    for name in &names {
        let t = project
            .target(name)
            .map_err(|e| failure(EXIT_BAD_INPUT, e))?;
        let btf = classify_btf(&t).map_err(|e| failure(EXIT_BAD_INPUT, e))?;
        loaded.push((t, btf));
    }
    let needs: Vec<TargetNeeds<'_>> = loaded
        .iter()
        .map(|(target, btf)| TargetNeeds {
            target,
            btf,
            loader: &loader,
        })
        .collect();
    Ok(match check_toolchain(&needs) {
        Ok(_) => Vec::new(),
        Err(missing) => missing.0,
    })
}

/// `ebpf-pack deps [--target NAME]... [--install]`.
pub fn deps(project_dir: &Path, targets: &[String], install: bool) -> Result<(), Failure> {
    let project = Project::open(project_dir).map_err(|e| failure(EXIT_BAD_INPUT, e))?;
    let missing = missing_for(&project, targets)?;
    if missing.is_empty() {
        println!("nothing missing");
        return Ok(());
    }
    for m in &missing {
        println!(
            "missing: {} (for {}): {}",
            m.tool,
            m.needed_for,
            m.fix.command()
        );
    }
    if !install {
        return Err(failure(
            EXIT_MISSING_TOOL,
            "tools are missing\n  help: `ebpf-pack deps --install` installs them (apt-get needs root or sudo)",
        ));
    }
    // What only a person can fix stays missing and is listed again below.
    let (cmds, _manual) = install_plan(&missing);
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    for cmd in &cmds {
        let mut argv = cmd.clone();
        if argv[0] == "apt-get" && !root {
            if find_program("sudo").is_none() {
                return Err(failure(
                    EXIT_MISSING_TOOL,
                    format!(
                        "`{}` needs root, and there is no sudo\n  help: run it as root, then `ebpf-pack deps` again",
                        argv.join(" ")
                    ),
                ));
            }
            argv.insert(0, "sudo".into());
        }
        println!("+ {}", argv.join(" "));
        let status = Command::new(&argv[0])
            .args(&argv[1..])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status();
        match status {
            Ok(s) if s.success() => {}
            // A foreign-arch or mirror index mid-sync can fail `update` alone; the install decides.
            Ok(s) if argv.contains(&"update".to_string()) => {
                eprintln!(
                    "warning: `{}` {s}; trying the install anyway",
                    argv.join(" ")
                );
            }
            Ok(s) => {
                return Err(failure(
                    EXIT_MISSING_TOOL,
                    format!("`{}` {s}", argv.join(" ")),
                ));
            }
            Err(e) => {
                return Err(failure(
                    EXIT_MISSING_TOOL,
                    format!("cannot run `{}`: {e}", argv[0]),
                ));
            }
        }
    }
    let still = missing_for(&project, targets)?;
    if still.is_empty() {
        println!("nothing missing");
        return Ok(());
    }
    let list: Vec<String> = still
        .iter()
        .map(|m| format!("{} (for {}): {}", m.tool, m.needed_for, m.fix.command()))
        .collect();
    Err(failure(
        EXIT_MISSING_TOOL,
        format!("still missing after installing:\n  {}", list.join("\n  ")),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(tool: &str, fix: Fix) -> MissingTool {
        MissingTool {
            tool: tool.into(),
            needed_for: "target x".into(),
            fix,
        }
    }

    #[test]
    fn install_plan_groups_by_installer() {
        let missing = [
            m("clang-19", Fix::Apt("clang-19".into())),
            m(
                "aarch64-linux-gnu-gcc",
                Fix::Apt("gcc-aarch64-linux-gnu libc6-dev-arm64-cross".into()),
            ),
            m(
                "Rust target a",
                Fix::RustupTarget("armv7-unknown-linux-gnueabihf".into()),
            ),
            m(
                "Rust target b",
                Fix::RustupTarget("aarch64-unknown-linux-musl".into()),
            ),
            m("rust-src", Fix::RustupComponent("rust-src".into())),
            m("mips", Fix::Manual("build it elsewhere".into())),
        ];
        let (cmds, manual) = install_plan(&missing);
        let lines: Vec<String> = cmds.iter().map(|c| c.join(" ")).collect();
        assert_eq!(
            lines,
            [
                "apt-get update",
                "apt-get install -y --no-install-recommends clang-19 gcc-aarch64-linux-gnu libc6-dev-arm64-cross",
                "rustup target add armv7-unknown-linux-gnueabihf aarch64-unknown-linux-musl",
                "rustup component add rust-src",
            ]
        );
        assert_eq!(manual.len(), 1);
        assert!(install_plan(&[]).0.is_empty());
    }
}
