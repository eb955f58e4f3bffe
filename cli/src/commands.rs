//! The CLI's commands as functions over parsed arguments: they read the environment and the disk, print,
//! and map every error to a message and an exit code.

use std::path::{Path, PathBuf};

use crate::assets::Assets;
use crate::execute::{Options, execute};
use crate::plan::{PlanInputs, plan_build};
use crate::project::{Project, classify_btf, load_target_file};
use crate::target::{BtfSource, Target};
use crate::toolchain::{TargetNeeds, Toolchain, check_toolchain, tool_versions};
pub use crate::try_command::{EXIT_NO_RESULT, TryArgs, try_bundle};

/// A failed command: exit code and the message to print.
#[derive(Debug)]
pub struct Failure {
    /// Process exit code.
    pub code: u8,
    /// What to print after `error: `.
    pub message: String,
}

/// Exit code: a build or a verification failed.
pub const EXIT_FAILED: u8 = 1;
/// Exit code: bad usage, project or target file.
pub const EXIT_BAD_INPUT: u8 = 2;
/// Exit code: a required tool is missing.
pub const EXIT_MISSING_TOOL: u8 = 3;

pub(crate) fn failure(code: u8, message: impl ToString) -> Failure {
    Failure {
        code,
        message: message.to_string(),
    }
}

/// `ebpf-pack targets`: every known target with its facts.
pub fn targets(project_dir: &Path, json: bool) -> Result<(), Failure> {
    let project = Project::open(project_dir).map_err(|e| failure(EXIT_BAD_INPUT, e))?;
    let mut rows = Vec::new();
    for name in project.target_names() {
        let t = project
            .target(&name)
            .map_err(|e| failure(EXIT_BAD_INPUT, e))?;
        rows.push(t);
    }
    if json {
        let list: Vec<serde_json::Value> = rows.iter().map(target_json).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&list).unwrap_or_default()
        );
        return Ok(());
    }
    println!(
        "{:<12} {:<8} {:<4} {:<6} {:<32} {:<6} {:<7} {:<9} DESCRIPTION",
        "NAME", "ARCH", "BITS", "ENDIAN", "TRIPLE", "LIBC", "KERNEL", "BTF"
    );
    for t in &rows {
        let f = t.arch.facts();
        println!(
            "{:<12} {:<8} {:<4} {:<6} {:<32} {:<6} {:<7} {:<9} {}",
            t.name,
            f.name,
            f.bits,
            endian_word(f.endian),
            t.triple,
            t.libc.to_string(),
            t.kernel.version.to_string(),
            btf_word(&t.kernel.btf),
            t.description
        );
    }
    Ok(())
}

fn endian_word(e: ebpf_pack_manifest::Endian) -> &'static str {
    match e {
        ebpf_pack_manifest::Endian::Little => "little",
        ebpf_pack_manifest::Endian::Big => "big",
    }
}

fn btf_word(b: &BtfSource) -> String {
    match b {
        BtfSource::Builtin => "builtin".into(),
        BtfSource::None => "none".into(),
        BtfSource::File(_) => "file".into(),
    }
}

fn target_json(t: &Target) -> serde_json::Value {
    let f = t.arch.facts();
    serde_json::json!({
        "name": t.name,
        "description": t.description,
        "arch": f.name,
        "bits": f.bits,
        "endian": endian_word(f.endian),
        "bpf_target": t.arch.bpf_clang_target(),
        "target_arch_define": f.target_arch_define,
        "libc": t.libc.to_string(),
        "triple": t.triple,
        "linker": t.linker,
        "kernel_version": t.kernel.version.to_string(),
        "btf": match &t.kernel.btf { BtfSource::File(p) => p.display().to_string(), other => btf_word(other) },
        "bpf_cpu": t.bpf_cpu.as_str(),
        "probes": t.probes,
    })
}

/// Arguments of `ebpf-pack build`.
#[derive(Debug, Clone)]
pub struct BuildArgs {
    /// Project directory.
    pub project: PathBuf,
    /// Target names.
    pub targets: Vec<String>,
    /// Target files.
    pub target_files: Vec<PathBuf>,
    /// Every known target.
    pub all: bool,
    /// Print the plan only.
    pub dry_run: bool,
    /// Prebuilt loader.
    pub loader: Option<PathBuf>,
    /// Bundle name part, overriding the project file's `name`.
    pub bundle_name: Option<String>,
    /// Bundle version part, overriding the project file's `version`.
    pub bundle_version: Option<String>,
    /// Also write the single-file executable.
    pub single: bool,
    /// How the loader's standard library is built.
    pub loader_std: LoaderStd,
    /// Echo commands.
    pub verbose: bool,
    /// Print the `SHA256  PATH` lines on stderr instead of stdout (stdout belongs to the caller:
    /// `run` streams events there).
    pub quiet: bool,
    /// Loose probes outside the project's list (`run FILE.bpf.c|FILE.bpf.o`): sources compiled with
    /// the target's flags, objects verified, both bundled (and tailored for) like the project's.
    pub loose: Vec<PathBuf>,
}

/// How ebpf-run's standard library is built: rebuilt with the loader, panics aborting at once (the
/// small build: no panic messages, no backtrace printer), or rustup's prebuilt one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LoaderStd {
    /// Rebuilt when rustc has its `rust-src` component, else the prebuilt std (and a note says so).
    #[default]
    Auto,
    /// `--min-size`: rebuilt; a missing `rust-src` is an error that names the fix.
    Rebuilt,
    /// `--full-std`: rustup's prebuilt std, with panic messages and backtraces (about 200 KB more).
    Prebuilt,
}

/// A bpftrace program `file` compiled for `target` into `root/build/TARGET/oneliner/NAME.bpf.c`,
/// as the probe NAME (the file's stem); a refused program is a located error (exit 2).
fn script_probe(
    file: &Path,
    root: &Path,
    target: &crate::target::Target,
) -> Result<crate::plan::ProbeSource, Failure> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        failure(
            EXIT_BAD_INPUT,
            format!("{}: cannot read: {e}", file.display()),
        )
    })?;
    let name = file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .to_owned();
    if !crate::target::is_valid_name(&name) {
        return Err(failure(
            EXIT_BAD_INPUT,
            format!(
                "{}: `{name}` is not a valid probe name\n  help: name it with lower-case letters, digits, `-` and `_`",
                file.display()
            ),
        ));
    }
    let shown = file
        .strip_prefix(root)
        .unwrap_or(file)
        .display()
        .to_string();
    let dir = root.join("build").join(&target.name).join("oneliner");
    let compiled = crate::oneliners::compile_to(&text, &shown, &name, target.arch, &dir)
        .map_err(|e| failure(EXIT_BAD_INPUT, format!("target {}: {e}", target.name)))?;
    Ok(crate::plan::ProbeSource {
        name,
        source: compiled.source,
    })
}

/// Which probe a loose file is, and whether it is a source or an object, or why it cannot be one.
pub fn loose_probe(path: &Path) -> Result<(String, bool), String> {
    let file = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let (name, source) = match (file.strip_suffix(".bpf.c"), file.strip_suffix(".bpf.o")) {
        (Some(n), _) => (n, true),
        (_, Some(n)) => (n, false),
        _ => {
            return Err(format!(
                "{}: a loose probe is a FILE.bpf.c or a FILE.bpf.o\n  help: name the source NAME.bpf.c",
                path.display()
            ));
        }
    };
    if !crate::target::is_valid_name(name) {
        return Err(format!(
            "{}: `{name}` is not a valid probe name\n  help: name it with lower-case letters, digits, `-` and `_`",
            path.display()
        ));
    }
    if !path.is_file() {
        return Err(format!(
            "{}: no such file\n  help: check the path (relative to the current folder)",
            path.display()
        ));
    }
    Ok((name.to_string(), source))
}

/// `ebpf-pack build`.
pub fn build(args: &BuildArgs) -> Result<(), Failure> {
    build_bundles(args).map(drop)
}

/// Builds (or, with `dry_run`, prints the plan of) every target of `args` and returns each built target
/// with the absolute path of its bundle; prints `SHA256  PATH` per bundle as `ebpf-pack build` does.
pub fn build_bundles(args: &BuildArgs) -> Result<Vec<(Target, PathBuf)>, Failure> {
    Ok(build_targets(args, false)?
        .into_iter()
        .filter_map(|(t, out)| match out {
            Built::Bundle(b) => Some((t, b)),
            Built::Objects(_) => None,
        })
        .collect())
}

/// Compiles and verifies the probe objects of every target of `args` (the build's own compile
/// steps, cached the same way), without the loader or a bundle: each target with its objects.
pub fn compile_probe_objects(args: &BuildArgs) -> Result<Vec<(Target, ProbeObjects)>, Failure> {
    Ok(build_targets(args, true)?
        .into_iter()
        .filter_map(|(t, out)| match out {
            Built::Objects(o) => Some((t, o)),
            Built::Bundle(_) => None,
        })
        .collect())
}

/// Each probe's name and its verified object's bytes.
pub type ProbeObjects = Vec<(String, Vec<u8>)>;

/// What [`build_targets`] made for one target.
enum Built {
    /// The bundle's absolute path.
    Bundle(PathBuf),
    /// Each probe's name and verified object bytes.
    Objects(ProbeObjects),
}

/// The one build path behind `build` and `tools`: targets resolved, toolchain checked, plans made;
/// then either the whole plan runs (a bundle) or only its object steps (`objects_only`).
fn build_targets(args: &BuildArgs, objects_only: bool) -> Result<Vec<(Target, Built)>, Failure> {
    let project = Project::open(&args.project).map_err(|e| failure(EXIT_BAD_INPUT, e))?;
    let names: Vec<String> = if args.all {
        project.target_names()
    } else if args.targets.is_empty() && args.target_files.is_empty() {
        project
            .default_boards()
            .map_err(|e| failure(EXIT_BAD_INPUT, e))?
    } else {
        args.targets.clone()
    };
    if names.is_empty() && args.target_files.is_empty() {
        return Err(failure(
            EXIT_BAD_INPUT,
            format!(
                "no target given\n  help: pass --target NAME (one of: {}), --target-file PATH or --all, or list `boards:` in {}",
                project.target_names().join(", "),
                crate::project_file::PROJECT_FILE
            ),
        ));
    }
    let bundle_name = args
        .bundle_name
        .clone()
        .unwrap_or_else(|| project.bundle_name().to_string());
    let bundle_version = args
        .bundle_version
        .clone()
        .unwrap_or_else(|| project.bundle_version().to_string());
    for (what, value) in [
        ("--bundle-name", &bundle_name),
        ("--bundle-version", &bundle_version),
    ] {
        if value.is_empty() || value.contains(['/', '\\']) || value.starts_with('.') {
            return Err(failure(
                EXIT_BAD_INPUT,
                format!("{what} `{value}` cannot be part of a file name"),
            ));
        }
    }
    // Load every target first and report every problem together.
    let mut targets = Vec::new();
    let mut errors = Vec::new();
    for name in &names {
        match project.target(name) {
            Ok(t) => targets.push(t),
            Err(e) => errors.push(e.to_string()),
        }
    }
    for file in &args.target_files {
        match load_target_file(file, std::env::current_dir().ok().as_deref()) {
            Ok(t) => targets.push(t),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if !errors.is_empty() {
        return Err(failure(EXIT_BAD_INPUT, errors.join("\n")));
    }
    let assets = Assets::open().map_err(|e| failure(EXIT_FAILED, e))?;
    let mut loader = project
        .loader_source(args.loader.as_deref(), &assets)
        .map_err(|e| failure(EXIT_BAD_INPUT, e))?;
    match &mut loader {
        crate::plan::LoaderSource::Build { min_size, .. } => {
            *min_size = match args.loader_std {
                LoaderStd::Rebuilt => true,
                LoaderStd::Prebuilt => false,
                LoaderStd::Auto if crate::toolchain::has_rust_src() => true,
                LoaderStd::Auto => {
                    if !objects_only {
                        eprintln!(
                            "note: rustc has no rust-src: ebpf-run is built with the prebuilt std, about 200 KB \
                             bigger\n  help: rustup component add rust-src (or pass --full-std to say so)"
                        );
                    }
                    false
                }
            }
        }
        crate::plan::LoaderSource::Prebuilt(_) if args.loader_std == LoaderStd::Rebuilt => {
            return Err(failure(
                EXIT_BAD_INPUT,
                "--min-size builds ebpf-run; it cannot shrink a --loader given prebuilt\n  help: drop one of the two",
            ));
        }
        crate::plan::LoaderSource::Prebuilt(_) => {}
    }
    let mut prepared = Vec::new();
    for t in targets {
        if let Some(config) = &t.kernel.config {
            let text = std::fs::read_to_string(config)
                .map_err(|e| failure(EXIT_BAD_INPUT, format!("target {}: kernel.config {}: {e}\n  help: point kernel.config at the board kernel's .config", t.name, config.display())))?;
            let report = crate::kconfig::check_kconfig(&text, &t.kernel.btf);
            for w in &report.warnings {
                eprintln!("warning: target {}: {}: {w}", t.name, config.display());
            }
            if !report.errors.is_empty() {
                let list: Vec<String> = report
                    .errors
                    .iter()
                    .map(|e| format!("{}: {e}", config.display()))
                    .collect();
                return Err(failure(
                    EXIT_BAD_INPUT,
                    format!(
                        "target {}: the kernel cannot run this bundle:\n  {}",
                        t.name,
                        list.join("\n  ")
                    ),
                ));
            }
        }
        let btf = classify_btf(&t).map_err(|e| failure(EXIT_BAD_INPUT, e))?;
        let mut probes = project
            .probes_for(&t)
            .map_err(|e| failure(EXIT_BAD_INPUT, e))?;
        // bpftrace programs (probes/NAME.bt) become C for this target, then compile like any probe.
        for p in probes
            .iter_mut()
            .filter(|p| p.source.extension().is_some_and(|e| e == "bt"))
        {
            // Project sources are relative to the project's root.
            let file = project.root.join(&p.source);
            *p = script_probe(&file, &project.root, &t)?;
        }
        let mut prebuilt = Vec::new();
        for file in &args.loose {
            // A bpftrace program: compiled to C for this target, then a loose source like any.
            if file.extension().is_some_and(|e| e == "bt") {
                let file = std::path::absolute(file).unwrap_or_else(|_| file.clone());
                let probe = script_probe(&file, &project.root, &t)?;
                probes.retain(|p| p.name != probe.name);
                prebuilt.retain(|(n, _): &(String, PathBuf)| *n != probe.name);
                probes.push(probe);
                continue;
            }
            let (name, is_source) = loose_probe(file).map_err(|e| failure(EXIT_BAD_INPUT, e))?;
            // A loose probe named like one of the project's replaces it (a copy being worked on).
            probes.retain(|p| p.name != name);
            prebuilt.retain(|(n, _): &(String, PathBuf)| *n != name);
            let path = std::path::absolute(file).unwrap_or_else(|_| file.clone());
            if is_source {
                probes.push(crate::plan::ProbeSource { name, source: path });
            } else {
                if t.arch.facts().endian == ebpf_pack_manifest::Endian::Big
                    && matches!(
                        btf,
                        crate::plan::BtfInput::Btf(_) | crate::plan::BtfInput::Dwarf(_)
                    )
                {
                    return Err(failure(
                        EXIT_BAD_INPUT,
                        format!(
                            "{}: a prebuilt object cannot be tailored into target {}'s BTF (big-endian: bpftool reads only host-order objects)\n  help: pass its source, {name}.bpf.c",
                            file.display(),
                            t.name
                        ),
                    ));
                }
                // Checked here too, so a refusal names the user's file rather than its staged copy.
                let data = std::fs::read(file).map_err(|e| {
                    failure(
                        EXIT_BAD_INPUT,
                        format!("{}: cannot read: {e}", file.display()),
                    )
                })?;
                let rules = crate::verify::ObjectRules {
                    arch: t.arch,
                    kernel: t.kernel.version,
                };
                crate::verify::verify_object(&file.display().to_string(), &data, rules)
                    .and_then(|_| {
                        let board = crate::kconfig::target_facts(&t)?;
                        crate::verify::verify_kconfig(
                            &file.display().to_string(),
                            &data,
                            board.as_ref(),
                        )
                    })
                    .map_err(|e| failure(EXIT_BAD_INPUT, format!("target {}: {e}", t.name)))?;
                prebuilt.push((name, path));
            }
        }
        probes.sort_by(|a, b| a.name.cmp(&b.name));
        prebuilt.sort();
        if probes.is_empty() && prebuilt.is_empty() {
            return Err(failure(
                EXIT_BAD_INPUT,
                format!(
                    "{}: no probes to build\n  help: add probes/NAME.bpf.c, or list the sources under `probes:` in {}",
                    project.root.display(),
                    crate::project_file::PROJECT_FILE
                ),
            ));
        }
        prepared.push((t, btf, probes, prebuilt));
    }
    // Objects alone need no loader toolchain (cargo, rustup targets, linkers).
    let no_loader = crate::plan::LoaderSource::Prebuilt(PathBuf::new());
    let needs: Vec<TargetNeeds<'_>> = prepared
        .iter()
        .map(|(t, btf, _, _)| TargetNeeds {
            target: t,
            btf,
            loader: if objects_only { &no_loader } else { &loader },
        })
        .collect();
    let tools = match check_toolchain(&needs) {
        Ok(tools) => tools,
        Err(missing) if args.dry_run => {
            eprintln!("warning: {missing}");
            Toolchain {
                clang: "clang-19".into(),
                llvm_strip: "llvm-strip-19".into(),
                bpftool: "bpftool".into(),
                pahole: "pahole".into(),
            }
        }
        Err(missing) => return Err(failure(EXIT_MISSING_TOOL, missing)),
    };
    let mtime = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => v.trim().parse::<u64>().map_err(|_| {
            failure(
                EXIT_BAD_INPUT,
                format!("SOURCE_DATE_EPOCH `{v}` is not a number of seconds"),
            )
        })?,
        Err(_) => 0,
    };
    let mut bundles = Vec::new();
    for (target, btf, probes, prebuilt) in prepared {
        let inputs = PlanInputs {
            project_dir: project.root.clone(),
            project_headers: project.project_headers(&probes),
            probes,
            prebuilt,
            headers: assets.include_dir(),
            include_dirs: project.include_dirs(),
            cflags: project.cflags(),
            btf: btf.clone(),
            loader: loader.clone(),
            clang: tools.clang.clone(),
            llvm_strip: tools.llvm_strip.clone(),
            bpftool: tools.bpftool.clone(),
            pahole: tools.pahole.clone(),
            project_name: bundle_name.clone(),
            project_version: bundle_version.clone(),
            single: args.single,
        };
        let plan = plan_build(&target, &inputs);
        if args.dry_run {
            print!("{}", plan.shell_script(&target));
            continue;
        }
        if objects_only {
            let opts = Options {
                verbose: args.verbose,
                mtime,
            };
            let objects = crate::execute::compile_objects(&plan, &target, &inputs, opts)
                .map_err(|e| failure(EXIT_FAILED, format!("target {}: {e}", target.name)))?;
            bundles.push((target, Built::Objects(objects)));
            continue;
        }
        let uses_btf_file = matches!(
            btf,
            crate::plan::BtfInput::Btf(_) | crate::plan::BtfInput::Dwarf(_)
        );
        let versions = tool_versions(
            &tools,
            uses_btf_file,
            matches!(btf, crate::plan::BtfInput::Dwarf(_)),
            matches!(loader, crate::plan::LoaderSource::Build { .. }),
        );
        let built = execute(
            &plan,
            &target,
            &inputs,
            versions,
            Options {
                verbose: args.verbose,
                mtime,
            },
        )
        .map_err(|e| failure(EXIT_FAILED, format!("target {}: {e}", target.name)))?;
        let shown = built
            .bundle
            .strip_prefix(&project.root)
            .unwrap_or(&built.bundle);
        let line = format!("{}  {}", built.sha256, shown.display());
        if args.quiet {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
        if let Some((single, sha)) = &built.single {
            let shown = single.strip_prefix(&project.root).unwrap_or(single);
            println!("{sha}  {}", shown.display());
        }
        bundles.push((target, Built::Bundle(built.bundle)));
    }
    Ok(bundles)
}

/// `ebpf-pack verify BUNDLE [--target NAME]`.
pub fn verify(bundle: &Path, target: Option<&str>) -> Result<(), Failure> {
    let bytes = std::fs::read(bundle).map_err(|e| {
        failure(
            EXIT_BAD_INPUT,
            format!("{}: cannot read: {e}", bundle.display()),
        )
    })?;
    let name = bundle.display().to_string();
    let verified =
        crate::bundle::verify_any(&name, &bytes, target).map_err(|e| failure(EXIT_FAILED, e))?;
    let m = &verified.manifest;
    println!(
        "{name}: ok — target {} ({} {}-bit {}), {} files, {} probes ({}), btf: {:?}",
        m.target.name,
        m.target.arch,
        m.target.bits,
        endian_word(m.target.endian),
        m.files.len(),
        m.probes.len(),
        m.probes
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        m.target.btf
    );
    // Which of its tools the target's kernel can run, as far as the manifest's facts tell.
    if let (Some(arch), Some(kernel)) = (
        crate::arch::Arch::from_name(&m.target.arch),
        crate::arch::KernelVersion::parse(&m.target.kernel_version),
    ) {
        let board = crate::toolbox::Board {
            arch,
            kernel,
            btf: m.target.btf != ebpf_pack_manifest::BtfMode::None,
        };
        // Kernel options and the tools that need them, in first-seen order; tools that cannot run.
        let mut needing: Vec<(String, Vec<&str>)> = Vec::new();
        let mut cannot = Vec::new();
        for p in &m.probes {
            let Some(data) = verified.files.get(&p.object) else {
                continue;
            };
            let Ok(needs) = crate::toolbox::needs(&p.name, data) else {
                continue;
            };
            match crate::toolbox::verdict_on(&needs, board, None) {
                crate::toolbox::Verdict::Runs => {}
                crate::toolbox::Verdict::RunsIf(configs) => {
                    let key = format!("CONFIG_{}", configs.join(" + CONFIG_"));
                    match needing.iter_mut().find(|(k, _)| *k == key) {
                        Some((_, tools)) => tools.push(&p.name),
                        None => needing.push((key, vec![&p.name])),
                    }
                }
                crate::toolbox::Verdict::Cannot(why) => {
                    cannot.push(format!("{}: needs {}", p.name, why.join("; ")))
                }
            }
        }
        for (config, tools) in &needing {
            println!(
                "  needs {config} in the board's kernel: {}",
                tools.join(", ")
            );
        }
        // Strong `.kconfig` externs: their options must be in the board's config for the probe
        // to load (the board reads /proc/config.gz or /boot/config-*).
        let mut read: Vec<(String, Vec<&str>)> = Vec::new();
        for p in &m.probes {
            let externs = verified
                .files
                .get(&p.object)
                .and_then(|d| ebpf_pack_object::kconfig::kconfig_externs(d).ok())
                .unwrap_or_default();
            for e in externs
                .into_iter()
                .filter(|e| !e.weak && e.name.starts_with("CONFIG_"))
            {
                match read.iter_mut().find(|(k, _)| *k == e.name) {
                    Some((_, probes)) => probes.push(&p.name),
                    None => read.push((e.name, vec![&p.name])),
                }
            }
        }
        for (config, probes) in &read {
            println!(
                "  needs {config} in the board's kernel config (a .kconfig extern, not __weak): {}",
                probes.join(", ")
            );
        }
        for c in &cannot {
            println!("  cannot run on kernel {}: {c}", m.target.kernel_version);
        }
    }
    Ok(())
}
