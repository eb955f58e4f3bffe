//! A build planned as data: the steps that turn a target and a project into a bundle.
//!
//! The plan is pure (no I/O): it can be printed as shell lines (`--dry-run`), executed, or asserted on.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use ebpf_pack_manifest::embedded;

use crate::target::Target;

/// The kernel type information input, classified by looking at the file (done by the CLI edge).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BtfInput {
    /// Use the built-in `<arch>/vmlinux.h` (from `probes/include`, carried by the binary); the board
    /// supplies BTF at run time.
    Builtin,
    /// A raw BTF file, or an ELF vmlinux with a `.BTF` section: usable as is.
    Btf(PathBuf),
    /// An ELF vmlinux with DWARF but no `.BTF`: pahole makes BTF from it.
    Dwarf(PathBuf),
    /// No BTF: objects must not use CO-RE.
    None,
}

/// Where the loader executable comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoaderSource {
    /// Cross-build `ebpf-run` from this cargo workspace.
    Build {
        /// Workspace root holding `loader/`.
        workspace: PathBuf,
        /// `$CARGO_HOME`, remapped out of the binary for reproducibility.
        cargo_home: PathBuf,
        /// Cargo's target folder when not the workspace's own `target/` (the installed CLI builds
        /// in its cache).
        target_dir: Option<PathBuf>,
        /// `--min-size`: rebuild the standard library with the loader, panics as immediate aborts
        /// (`-Zbuild-std`, `-Cpanic=immediate-abort`; needs the rust-src component).
        min_size: bool,
    },
    /// A prebuilt `ebpf-run` (e.g. from a Yocto or Buildroot build); verified like a built one.
    Prebuilt(PathBuf),
}

/// One probe: its name (the object's stem) and its C source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeSource {
    /// Name: the source's file name without `.bpf.c`.
    pub name: String,
    /// Source file, project-relative (`probes/opensnoop.bpf.c`).
    pub source: PathBuf,
}

/// Everything planning needs besides the target, gathered by the CLI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanInputs {
    /// Project root: holds `probes/`; commands run here and paths are relative to it.
    pub project_dir: PathBuf,
    /// Probes to build, sorted by name.
    pub probes: Vec<ProbeSource>,
    /// Prebuilt objects to bundle as probes (name, file), sorted by name: copied, then verified
    /// like the compiled ones.
    pub prebuilt: Vec<(String, PathBuf)>,
    /// The built-in headers (`ebpf_pack.h`, `<arch>/vmlinux.h`): the unpacked assets' include folder.
    pub headers: PathBuf,
    /// Extra include folders of the project (project-relative), after the built-in headers.
    pub include_dirs: Vec<PathBuf>,
    /// Header files of the project the probes may include (project-relative): compile-step inputs.
    pub project_headers: Vec<PathBuf>,
    /// Extra clang flags of the project, after ebpf-pack's own.
    pub cflags: Vec<String>,
    /// Kernel type information for this target.
    pub btf: BtfInput,
    /// Loader origin.
    pub loader: LoaderSource,
    /// clang program (`clang-19`).
    pub clang: String,
    /// llvm-strip program (`llvm-strip-19`).
    pub llvm_strip: String,
    /// bpftool program.
    pub bpftool: String,
    /// pahole program.
    pub pahole: String,
    /// Project name, first part of the bundle name.
    pub project_name: String,
    /// Project version, second part of the bundle name.
    pub project_version: String,
    /// Also write the single-file executable `dist/<stem>.run` (the loader with the bundle inside).
    pub single: bool,
}

/// A program run with arguments, optional extra environment and an optional stdout file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    /// Program name or path.
    pub program: String,
    /// Arguments.
    pub args: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// File that receives stdout (shell `>`), relative to the project dir.
    pub stdout_to: Option<PathBuf>,
}

impl Cmd {
    fn new(program: &str, args: impl IntoIterator<Item = String>) -> Cmd {
        Cmd {
            program: program.to_string(),
            args: args.into_iter().collect(),
            env: Vec::new(),
            stdout_to: None,
        }
    }

    /// The command as one line a person can paste into a POSIX shell.
    pub fn shell_line(&self) -> String {
        let mut line = String::new();
        for (k, v) in &self.env {
            let _ = write!(line, "{k}={} ", shell_quote(v));
        }
        line.push_str(&shell_quote(&self.program));
        for a in &self.args {
            line.push(' ');
            line.push_str(&shell_quote(a));
        }
        if let Some(out) = &self.stdout_to {
            let _ = write!(line, " > {}", shell_quote(&out.display().to_string()));
        }
        line
    }
}

/// Quotes a word for a POSIX shell only when it needs it.
pub fn shell_quote(word: &str) -> String {
    let safe = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
    if safe {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// One step of a build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Commands with declared inputs and outputs; skipped when neither they nor their inputs changed.
    Run {
        /// Stable identifier (`compile-opensnoop`), names the step's stamp file.
        id: String,
        /// Commands, run in order.
        cmds: Vec<Cmd>,
        /// Files whose content decides whether the step must rerun (project-relative).
        inputs: Vec<PathBuf>,
        /// Files the step makes (project-relative).
        outputs: Vec<PathBuf>,
    },
    /// `cargo build` of the loader (cargo decides itself what is up to date); the executable it
    /// reports is copied to `out`.
    BuildLoader {
        /// The cargo invocation.
        cmd: Cmd,
        /// Where the loader is copied in the staging folder.
        out: PathBuf,
    },
    /// Copy a prebuilt loader into the staging folder.
    CopyLoader {
        /// The prebuilt executable.
        from: PathBuf,
        /// Destination in the staging folder.
        out: PathBuf,
    },
    /// Rewrite a raw BTF file in the board's byte order (bpftool writes the host's).
    ConvertBtf {
        /// BTF as bpftool wrote it.
        from: PathBuf,
        /// Destination in the staging folder.
        out: PathBuf,
        /// Convert to big-endian (else little-endian).
        big_endian: bool,
    },
    /// Check every staged file's bytes against the target.
    Verify,
    /// Write the tarball and its `.sha256`.
    Bundle {
        /// `dist/<project>-<version>-<target>.tar.gz`.
        out: PathBuf,
    },
    /// Append the verified bundle to its loader: one executable to copy to the board, and its `.sha256`.
    Single {
        /// `dist/<project>-<version>-<target>.run`.
        out: PathBuf,
    },
}

impl Step {
    /// The step as shell lines (internal steps as the equivalent `ebpf-pack` command or a comment).
    pub fn shell_lines(&self, target: &Target) -> Vec<String> {
        match self {
            Step::Run { cmds, .. } => cmds.iter().map(Cmd::shell_line).collect(),
            Step::BuildLoader { cmd, out } => vec![
                cmd.shell_line(),
                format!(
                    "# copy the ebpf-run that cargo reports to {}",
                    out.display()
                ),
            ],
            Step::CopyLoader { from, out } => vec![format!(
                "cp {} {}",
                shell_quote(&from.display().to_string()),
                shell_quote(&out.display().to_string())
            )],
            Step::ConvertBtf {
                from,
                out,
                big_endian,
            } => vec![format!(
                "# rewrite {} in {} byte order as {}",
                from.display(),
                if *big_endian {
                    "big-endian"
                } else {
                    "little-endian"
                },
                out.display()
            )],
            Step::Verify => vec![format!(
                "# verify the loader and every object against target {} (arch {})",
                target.name, target.arch
            )],
            Step::Bundle { out } => vec![
                format!(
                    "# write {} (deterministic tar.gz with manifest.json and SHA256SUMS) and its .sha256",
                    out.display()
                ),
                format!(
                    "ebpf-pack verify {} --target {}",
                    shell_quote(&out.display().to_string()),
                    target.name
                ),
            ],
            Step::Single { out } => vec![
                format!(
                    "# write {} (ebpf-run with the bundle appended: ustar payload and trailer) and its .sha256",
                    out.display()
                ),
                format!(
                    "ebpf-pack verify {} --target {}",
                    shell_quote(&out.display().to_string()),
                    target.name
                ),
            ],
        }
    }
}

/// A planned build of one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Target name.
    pub target: String,
    /// Project root the commands run in.
    pub project_dir: PathBuf,
    /// Staging folder: `build/<target>/stage`, laid out as the bundle.
    pub stage_dir: PathBuf,
    /// Steps in order.
    pub steps: Vec<Step>,
    /// Bundle file name stem (`ebpf-pack-0.1.0-x86_64`), also the tarball's top folder.
    pub bundle_stem: String,
    /// Path of the tailored BTF in the stage, when the bundle ships one.
    pub shipped_btf: Option<PathBuf>,
    /// Each probe's name and its object in the stage, in probe order.
    pub objects: Vec<(String, PathBuf)>,
}

/// The built-in headers every probe may include (top level of the assets' include folder): a change
/// to any of them recompiles every probe.
pub const SHARED_HEADERS: &[&str] = &["ebpf_pack.h", "ebpf_pack_tcp.h"];

/// Bundle-relative folder of BPF objects.
pub const BPF_DIR: &str = "bpf";
/// The fixed path objects record for the toolbox's folder (`-fdebug-prefix-map`).
pub const TOOLS_DEBUG_PATH: &str = "/ebpf-pack/tools";
/// The fixed path objects record for the built-in headers' folder (`-fdebug-prefix-map`).
pub const HEADERS_DEBUG_PATH: &str = "/ebpf-pack/include";
/// Bundle-relative path of the tailored BTF.
pub const BTF_FILE: &str = "btf/vmlinux.btf";

fn p(path: &Path) -> String {
    path.display().to_string()
}

/// Plans the build of `target` from `inputs`. All paths are relative to the project dir.
pub fn plan_build(target: &Target, inputs: &PlanInputs) -> Plan {
    let build = PathBuf::from("build").join(&target.name);
    let stage = build.join("stage");
    let mut steps = Vec::new();
    let facts = target.arch.facts();

    // 1. Kernel type information: where vmlinux.h comes from, which BTF (if any) is shipped.
    let (include_dir, btf_for_tailoring) = match &inputs.btf {
        BtfInput::Builtin | BtfInput::None => (inputs.headers.join(facts.name), None),
        BtfInput::Btf(path) | BtfInput::Dwarf(path) => {
            let include = build.join("include");
            let btf = if let BtfInput::Dwarf(vmlinux) = &inputs.btf {
                let out = build.join("kernel.btf");
                steps.push(Step::Run {
                    id: "btf-from-dwarf".into(),
                    cmds: vec![Cmd::new(
                        &inputs.pahole,
                        [format!("--btf_encode_detached={}", p(&out)), p(vmlinux)],
                    )],
                    inputs: vec![vmlinux.clone()],
                    outputs: vec![out.clone()],
                });
                out
            } else {
                path.clone()
            };
            let header = include.join("vmlinux.h");
            let mut dump = Cmd::new(
                &inputs.bpftool,
                [
                    "btf".into(),
                    "dump".into(),
                    "file".into(),
                    p(&btf),
                    "format".into(),
                    "c".into(),
                ],
            );
            dump.stdout_to = Some(header.clone());
            steps.push(Step::Run {
                id: "vmlinux-h".into(),
                cmds: vec![dump],
                inputs: vec![btf.clone()],
                outputs: vec![header],
            });
            (include, Some(btf))
        }
    };

    // 2. Probes: one object each, compiled reproducibly, debug info stripped (BTF stays).
    let compile = |probe: &ProbeSource, clang_target: &str, out: &Path| -> Vec<String> {
        let mut args: Vec<String> = vec![
            "-g".into(),
            "-O2".into(),
            "-target".into(),
            clang_target.into(),
            format!("-mcpu={}", target.bpf_cpu.as_str()),
            format!("-D__TARGET_ARCH_{}", facts.target_arch_define),
            "-Wall".into(),
            "-Werror".into(),
            "-fno-ident".into(),
            "-fdebug-compilation-dir=.".into(),
            // The headers' folder differs between machines (it is in ebpf-pack's cache): objects name
            // it by a fixed path so they are the same bytes everywhere.
            format!(
                "-fdebug-prefix-map={}={HEADERS_DEBUG_PATH}",
                p(&inputs.headers)
            ),
            format!("-I{}", p(&inputs.headers)),
            format!("-I{}", p(&include_dir)),
        ];
        // A tool of the toolbox (`tools:`) is compiled from the unpacked assets, beside the headers:
        // its path is named by a fixed one too.
        if let Some(tools) = inputs
            .headers
            .parent()
            .map(|a| a.join(crate::assets::TOOLS_DIR))
            && probe.source.starts_with(&tools)
        {
            args.push(format!(
                "-fdebug-prefix-map={}={TOOLS_DEBUG_PATH}",
                p(&tools)
            ));
        }
        args.extend(inputs.include_dirs.iter().map(|d| format!("-I{}", p(d))));
        args.extend(inputs.cflags.iter().cloned());
        args.extend(["-c".into(), p(&probe.source), "-o".into(), p(out)]);
        args
    };
    let compile_inputs = |probe: &ProbeSource| {
        let mut list = vec![probe.source.clone(), include_dir.join("vmlinux.h")];
        list.extend(SHARED_HEADERS.iter().map(|h| inputs.headers.join(h)));
        list.extend(inputs.project_headers.iter().cloned());
        list
    };
    let mut objects = Vec::new();
    for probe in &inputs.probes {
        let out = stage.join(BPF_DIR).join(format!("{}.bpf.o", probe.name));
        let strip = Cmd::new(&inputs.llvm_strip, ["--strip-debug".into(), p(&out)]);
        steps.push(Step::Run {
            id: format!("compile-{}", probe.name),
            cmds: vec![
                Cmd::new(
                    &inputs.clang,
                    compile(probe, target.arch.bpf_clang_target(), &out),
                ),
                strip,
            ],
            inputs: compile_inputs(probe),
            outputs: vec![out.clone()],
        });
        objects.push((probe.name.clone(), out));
    }
    for (name, file) in &inputs.prebuilt {
        let out = stage.join(BPF_DIR).join(format!("{name}.bpf.o"));
        steps.push(Step::Run {
            id: format!("copy-{name}"),
            cmds: vec![Cmd::new("cp", [p(file), p(&out)])],
            inputs: vec![file.clone()],
            outputs: vec![out.clone()],
        });
        objects.push((name.clone(), out));
    }
    objects.sort();

    // 3. Tailored BTF for kernels without their own.
    let shipped_btf = btf_for_tailoring.map(|btf| {
        let out = stage.join(BTF_FILE);
        let big_endian = facts.endian == ebpf_pack_manifest::Endian::Big;
        // bpftool cannot read bpfeb objects on a little-endian host: tailor against little-endian twins
        // (same source, so the same CO-RE relocations), then convert the result to the board's order.
        let tailor_objects: Vec<PathBuf> = if big_endian {
            inputs
                .probes
                .iter()
                .map(|probe| {
                    let twin = build.join("tailor").join(format!("{}.bpf.o", probe.name));
                    steps.push(Step::Run {
                        id: format!("tailor-twin-{}", probe.name),
                        cmds: vec![Cmd::new(&inputs.clang, compile(probe, "bpfel", &twin))],
                        inputs: compile_inputs(probe),
                        outputs: vec![twin.clone()],
                    });
                    twin
                })
                .collect()
        } else {
            objects.iter().map(|(_, o)| o.clone()).collect()
        };
        let tailored = if big_endian {
            build.join("tailored-host-order.btf")
        } else {
            out.clone()
        };
        let mut args = vec!["gen".into(), "min_core_btf".into(), p(&btf), p(&tailored)];
        args.extend(tailor_objects.iter().map(|o| p(o)));
        let mut step_inputs = vec![btf];
        step_inputs.extend(tailor_objects.iter().cloned());
        steps.push(Step::Run {
            id: "min-core-btf".into(),
            cmds: vec![Cmd::new(&inputs.bpftool, args)],
            inputs: step_inputs,
            outputs: vec![tailored.clone()],
        });
        if big_endian {
            steps.push(Step::ConvertBtf {
                from: tailored,
                out: out.clone(),
                big_endian,
            });
        }
        out
    });

    // 4. The loader.
    let loader_out = stage.join(ebpf_pack_manifest::LOADER_FILE);
    steps.push(match &inputs.loader {
        LoaderSource::Prebuilt(path) => Step::CopyLoader {
            from: path.clone(),
            out: loader_out,
        },
        LoaderSource::Build {
            workspace,
            cargo_home,
            target_dir,
            min_size,
        } => {
            let env_triple = target.triple.to_uppercase().replace(['-', '.'], "_");
            let mut rustflags = vec![
                format!("--remap-path-prefix={}=/ebpf-pack", p(workspace)),
                format!("--remap-path-prefix={}=/cargo", p(cargo_home)),
            ];
            if target.libc == crate::arch::Libc::Glibc {
                rustflags.push("-Ctarget-feature=+crt-static".into());
            }
            // The loader is built with panic=abort and never unwinds, so the unwinder's lookup table
            // (.eh_frame_hdr, ~3% of the binary) is dead weight on a board's flash.
            rustflags.push(if target.linker.as_deref() == Some("rust-lld") {
                "-Clink-arg=--no-eh-frame-hdr".into()
            } else {
                "-Clink-arg=-Wl,--no-eh-frame-hdr".into()
            });
            let mut cmd = Cmd::new(
                "cargo",
                ["build", "--locked", "--manifest-path"]
                    .into_iter()
                    .map(String::from)
                    .chain([p(&workspace.join("Cargo.toml"))])
                    .chain(
                        ["-p", "ebpf-run", "--profile", "loader", "--target"]
                            .into_iter()
                            .map(String::from),
                    )
                    .chain([
                        target.triple.clone(),
                        "--message-format=json-render-diagnostics".into(),
                    ]),
            );
            let target_dir = target_dir
                .clone()
                .unwrap_or_else(|| workspace.join("target"));
            if *min_size {
                // std rebuilt with the loader and panics that abort at once: no panic messages, no
                // backtrace printer (symboliser, DWARF reader, unwinder), about 45% of the binary.
                // These are unstable rustc/cargo flags, enabled on the stable toolchain the way the
                // Linux kernel builds its Rust code: RUSTC_BOOTSTRAP=1. Its own target folder keeps
                // the regular loader build's cache intact.
                rustflags.push("-Zunstable-options".into());
                rustflags.push("-Cpanic=immediate-abort".into());
                cmd.args.extend([
                    "-Zbuild-std=std,panic_abort".to_string(),
                    "--target-dir".to_string(),
                    p(&target_dir.join("min-size")),
                ]);
                cmd.env.push(("RUSTC_BOOTSTRAP".into(), "1".into()));
                // With the backtrace printer gone there is room to optimise for speed a little:
                // opt-level s instead of z drains events about 30% faster (docs/PERFORMANCE.md).
                cmd.env
                    .push(("CARGO_PROFILE_LOADER_OPT_LEVEL".into(), "s".into()));
            } else if target_dir != workspace.join("target") {
                cmd.args
                    .extend(["--target-dir".to_string(), p(&target_dir)]);
            }
            if let Some(linker) = &target.linker {
                cmd.env
                    .push((format!("CARGO_TARGET_{env_triple}_LINKER"), linker.clone()));
            }
            cmd.env.push((
                format!("CARGO_TARGET_{env_triple}_RUSTFLAGS"),
                rustflags.join(" "),
            ));
            Step::BuildLoader {
                cmd,
                out: loader_out,
            }
        }
    });

    steps.push(Step::Verify);
    let bundle_stem = format!(
        "{}-{}-{}",
        inputs.project_name, inputs.project_version, target.name
    );
    steps.push(Step::Bundle {
        out: PathBuf::from("dist").join(format!("{bundle_stem}.tar.gz")),
    });
    if inputs.single {
        steps.push(Step::Single {
            out: PathBuf::from("dist").join(format!("{bundle_stem}{}", embedded::SUFFIX)),
        });
    }
    Plan {
        target: target.name.clone(),
        project_dir: inputs.project_dir.clone(),
        stage_dir: stage,
        steps,
        bundle_stem,
        shipped_btf,
        objects,
    }
}

impl Plan {
    /// The whole plan as a shell script body.
    pub fn shell_script(&self, target: &Target) -> String {
        let mut out = format!("# ebpf-pack build --target {} (plan)\n", target.name);
        out.push_str(&format!("cd {}\n", shell_quote(&p(&self.project_dir))));
        let mut dirs: Vec<String> = vec!["dist".into()];
        for step in &self.steps {
            let outputs: &[PathBuf] = match step {
                Step::Run { outputs, .. } => outputs,
                Step::ConvertBtf { out, .. } => std::slice::from_ref(out),
                _ => &[],
            };
            {
                for o in outputs {
                    if let Some(d) = o.parent().map(p)
                        && !dirs.contains(&d)
                    {
                        dirs.push(d);
                    }
                }
            }
        }
        out.push_str(&format!("mkdir -p {}\n", dirs.join(" ")));
        for step in &self.steps {
            for line in step.shell_lines(target) {
                out.push_str(&line);
                out.push('\n');
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::builtin_target;

    fn inputs(btf: BtfInput, loader: LoaderSource) -> PlanInputs {
        PlanInputs {
            project_dir: "/src/ebpf-pack".into(),
            probes: ["execsnoop", "opensnoop"]
                .map(|name| ProbeSource {
                    name: name.into(),
                    source: format!("probes/{name}.bpf.c").into(),
                })
                .to_vec(),
            prebuilt: Vec::new(),
            headers: "/home/dev/.cache/ebpf-pack/assets/0.1.0-0123456789ab/include".into(),
            include_dirs: Vec::new(),
            project_headers: Vec::new(),
            cflags: Vec::new(),
            btf,
            loader,
            clang: "clang-19".into(),
            llvm_strip: "llvm-strip-19".into(),
            bpftool: "bpftool".into(),
            pahole: "pahole".into(),
            project_name: "ebpf-pack".into(),
            project_version: "0.1.0".into(),
            single: false,
        }
    }

    fn workspace() -> LoaderSource {
        LoaderSource::Build {
            workspace: "/src/ebpf-pack".into(),
            cargo_home: "/home/dev/.cargo".into(),
            target_dir: None,
            min_size: false,
        }
    }

    fn target(name: &str) -> Target {
        builtin_target(name).expect("builtin").expect("valid")
    }

    #[test]
    fn beaglebone_plan_with_builtin_btf() {
        let t = target("beaglebone");
        let plan = plan_build(&t, &inputs(BtfInput::Builtin, workspace()));
        insta::assert_snapshot!(plan.shell_script(&t));
        assert_eq!(plan.bundle_stem, "ebpf-pack-0.1.0-beaglebone");
        assert_eq!(plan.shipped_btf, None);
    }

    #[test]
    fn prebuilt_objects_are_copied_and_bundled_in_name_order() {
        let t = target("beaglebone");
        let mut i = inputs(BtfInput::Builtin, workspace());
        i.prebuilt = vec![("fcount".into(), "/work/fcount.bpf.o".into())];
        let plan = plan_build(&t, &i);
        let names: Vec<&str> = plan.objects.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["execsnoop", "fcount", "opensnoop"]);
        let copy = plan
            .steps
            .iter()
            .find_map(|s| match s {
                Step::Run { id, cmds, .. } if id == "copy-fcount" => Some(cmds[0].shell_line()),
                _ => None,
            })
            .expect("a copy step");
        assert_eq!(
            copy,
            "cp /work/fcount.bpf.o build/beaglebone/stage/bpf/fcount.bpf.o"
        );
    }

    #[test]
    fn single_file_is_the_last_step_when_asked_for() {
        let t = target("beaglebone");
        let plain = plan_build(&t, &inputs(BtfInput::Builtin, workspace()));
        assert!(matches!(plain.steps.last(), Some(Step::Bundle { .. })));
        let single = plan_build(
            &t,
            &PlanInputs {
                single: true,
                ..inputs(BtfInput::Builtin, workspace())
            },
        );
        assert_eq!(single.steps.len(), plain.steps.len() + 1);
        assert_eq!(
            single.steps.last(),
            Some(&Step::Single {
                out: "dist/ebpf-pack-0.1.0-beaglebone.run".into()
            })
        );
        assert!(single.shell_script(&t).ends_with(
            "ebpf-pack verify dist/ebpf-pack-0.1.0-beaglebone.run --target beaglebone\n"
        ));
    }

    #[test]
    fn rpi4_plan_with_dwarf_vmlinux_and_prebuilt_loader() {
        let t = target("rpi4");
        let plan = plan_build(
            &t,
            &inputs(
                BtfInput::Dwarf("/boards/rpi4/vmlinux".into()),
                LoaderSource::Prebuilt("/yocto/ebpf-run".into()),
            ),
        );
        insta::assert_snapshot!(plan.shell_script(&t));
        assert_eq!(
            plan.shipped_btf,
            Some(PathBuf::from("build/rpi4/stage/btf/vmlinux.btf"))
        );
    }

    #[test]
    fn s390x_plan_is_big_endian() {
        let t = target("s390x");
        let plan = plan_build(
            &t,
            &inputs(BtfInput::Btf("/k/vmlinux.btf".into()), workspace()),
        );
        let script = plan.shell_script(&t);
        assert!(script.contains("-target bpfeb"), "{script}");
        assert!(script.contains("-D__TARGET_ARCH_s390"), "{script}");
        assert!(
            script.contains("CARGO_TARGET_S390X_UNKNOWN_LINUX_GNU_LINKER=s390x-linux-gnu-gcc"),
            "{script}"
        );
    }

    #[test]
    fn big_endian_tailoring_uses_little_endian_twins_and_converts() {
        let t = target("s390x");
        let plan = plan_build(
            &t,
            &inputs(BtfInput::Dwarf("/k/vmlinux".into()), workspace()),
        );
        insta::assert_snapshot!(plan.shell_script(&t));
        assert!(plan.steps.iter().any(|s| matches!(
            s,
            Step::ConvertBtf {
                big_endian: true,
                ..
            }
        )));
    }

    #[test]
    fn out_of_tree_project_with_its_own_headers_and_flags_and_the_carried_loader() {
        let t = target("rpi4");
        let mut i = inputs(
            BtfInput::Builtin,
            LoaderSource::Build {
                workspace: "/home/dev/.cache/ebpf-pack/assets/0.1.0-0123456789ab/loader-src".into(),
                cargo_home: "/home/dev/.cargo".into(),
                target_dir: Some("/home/dev/.cache/ebpf-pack/loader-target".into()),
                min_size: false,
            },
        );
        i.project_dir = "/src/gw-probes".into();
        i.probes = vec![ProbeSource {
            name: "hello".into(),
            source: "src/bpf/hello.bpf.c".into(),
        }];
        i.include_dirs = vec!["include".into()];
        i.project_headers = vec!["include/gw.h".into(), "src/bpf/common.h".into()];
        i.cflags = vec!["-DGW_MAX=8".into()];
        i.project_name = "gw-probes".into();
        i.project_version = "2.3.1".into();
        let plan = plan_build(&t, &i);
        insta::assert_snapshot!(plan.shell_script(&t));
        assert_eq!(plan.bundle_stem, "gw-probes-2.3.1-rpi4");
        let Step::Run { inputs, .. } = &plan.steps[0] else {
            panic!("first step compiles")
        };
        assert!(
            inputs.contains(&PathBuf::from("include/gw.h")),
            "{inputs:?}"
        );
        assert!(inputs.contains(&PathBuf::from(
            "/home/dev/.cache/ebpf-pack/assets/0.1.0-0123456789ab/include/arm64/vmlinux.h"
        )));
    }

    #[test]
    fn shell_quoting_only_when_needed() {
        assert_eq!(shell_quote("-I/usr/include"), "-I/usr/include");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
