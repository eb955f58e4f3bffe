//! `ebpf-pack tools`: the project's tools (for ebpf-pack's own checkout, the toolbox) with their
//! options, hooks and needs, and which known targets can run each. The objects come from the build's
//! own compile steps for one target (cached like a build), the verdicts from toolbox.rs.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::commands::{BuildArgs, EXIT_BAD_INPUT, Failure, compile_probe_objects, failure};
use crate::project::Project;
use crate::target::Target;
use crate::toolbox::{self, Verdict};

/// Lists the tools of the project in `project_dir`, compiled for `target` (default `x86_64`).
pub fn tools(project_dir: &Path, target: Option<&str>, json_out: bool) -> Result<(), Failure> {
    let project = Project::open(project_dir).map_err(|e| failure(EXIT_BAD_INPUT, e))?;
    let target = target.unwrap_or("x86_64").to_string();
    let built = compile_probe_objects(&BuildArgs {
        project: project_dir.to_path_buf(),
        targets: vec![target.clone()],
        target_files: vec![],
        all: false,
        dry_run: false,
        loader: None,
        bundle_name: None,
        bundle_version: None,
        single: false,
        loader_std: crate::commands::LoaderStd::Auto,
        verbose: false,
        quiet: true,
        loose: vec![],
    })?;
    let sources: Vec<(String, PathBuf)> = project
        .probes()
        .map_err(|e| failure(EXIT_BAD_INPUT, e))?
        .into_iter()
        .map(|p| (p.name, p.source))
        .collect();
    // Every target the project knows, each with its kernel config text when it names one.
    let mut boards: Vec<(Target, Option<String>)> = Vec::new();
    for name in project.target_names() {
        let Ok(t) = project.target(&name) else {
            continue;
        };
        let config = t
            .kernel
            .config
            .as_ref()
            .and_then(|c| std::fs::read_to_string(c).ok());
        boards.push((t, config));
    }
    let mut rows = Vec::new();
    for (_, objects) in &built {
        for (name, data) in objects {
            let needs = toolbox::needs(name, data)
                .map_err(|e| failure(EXIT_BAD_INPUT, format!("{name}: {e}")))?;
            let summary = sources
                .iter()
                .find(|(n, _)| n == name)
                .and_then(|(_, src)| std::fs::read_to_string(project.root.join(src)).ok())
                .and_then(|text| toolbox::summary(&text, name))
                .unwrap_or_default();
            let verdicts: Vec<(String, Verdict)> = boards
                .iter()
                .map(|(t, config)| {
                    (
                        t.name.clone(),
                        toolbox::verdict(&needs, t, config.as_deref()),
                    )
                })
                .collect();
            rows.push((needs, summary, verdicts));
        }
    }
    if json_out {
        for (needs, summary, verdicts) in &rows {
            let boards: serde_json::Map<String, serde_json::Value> = verdicts
                .iter()
                .map(|(b, v)| {
                    let v = match v {
                        Verdict::Runs => json!({"runs": true}),
                        Verdict::RunsIf(c) => json!({"runs": true, "if_config": c}),
                        Verdict::Cannot(why) => json!({"runs": false, "missing": why}),
                    };
                    (b.clone(), v)
                })
                .collect();
            let line = json!({
                "tool": needs.name,
                "summary": summary,
                "options": needs.options.iter().map(|o| json!({
                    "flag": o.flag, "value": o.value, "help": o.help, "sets": o.global,
                })).collect::<Vec<_>>(),
                "hooks": needs.hooks.iter().map(|(k, p)| json!({"kind": k.as_str(), "points": p})).collect::<Vec<_>>(),
                "min_kernel": needs.min_kernel.0.to_string(),
                "min_kernel_because": needs.min_kernel.1,
                "configs": needs.configs,
                "btf": needs.core,
                "boards": boards,
            });
            println!("{line}");
        }
        return Ok(());
    }
    let mut text = String::new();
    for (needs, summary, verdicts) in &rows {
        text.push_str(&format!("{} — {summary}\n", needs.name));
        if !needs.options.is_empty() {
            text.push_str(&format!(
                "  options: {}\n",
                toolbox::options_line(&needs.options)
            ));
        }
        text.push_str(&format!(
            "  hooks:   {}\n",
            toolbox::hooks_line(&needs.hooks)
        ));
        text.push_str(&format!("  needs:   {}\n", toolbox::needs_line(needs)));
        let runs: Vec<String> = verdicts
            .iter()
            .filter_map(|(b, v)| match v {
                Verdict::Runs => Some(b.clone()),
                Verdict::RunsIf(_) => Some(format!("{b}*")),
                Verdict::Cannot(_) => None,
            })
            .collect();
        text.push_str(&format!(
            "  boards:  {}\n",
            if runs.is_empty() {
                "none".to_string()
            } else {
                runs.join(" ")
            }
        ));
        for (b, v) in verdicts {
            if let Verdict::Cannot(why) = v {
                text.push_str(&format!("  not on {b}: needs {}\n", why.join("; ")));
            }
        }
    }
    text.push_str(&format!(
        "(* the board's kernel.config is not known: runs if its kernel has the CONFIG_ options above)\n\
         sets for `probes:` and `tools:`: {}\n",
        toolbox::set_names().join(" ")
    ));
    print!("{text}");
    Ok(())
}
