//! Executing a plan: run the commands (skipping steps whose inputs did not change), verify every
//! output, and write the bundle atomically. A failed step or check leaves no bundle in `dist/`.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use ebpf_pack_manifest::{BtfMode, Manifest, SCHEMA, TargetFacts};

use crate::bundle::{
    BundleFile, VerifiedBundle, check_btf_header, file_entries, sha256_hex, single_file,
    verify_bundle, verify_single, write_bundle,
};
use crate::plan::{BPF_DIR, BTF_FILE, BtfInput, Cmd, Plan, PlanInputs, Step};
use crate::target::Target;
use crate::verify::{ObjectRules, VerifyError, verify_loader, verify_object};

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A command exited non-zero or could not start.
    #[error("{what}: `{argv}` {status}\n{stderr}")]
    Command {
        /// The step.
        what: String,
        /// The command line.
        argv: String,
        /// Exit status or spawn error.
        status: String,
        /// The command's stderr (tail).
        stderr: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        error: std::io::Error,
    },
    /// An output failed verification; no bundle was written.
    #[error("verification failed, no bundle written:\n{0}")]
    Verify(#[from] VerifyError),
    /// cargo built no `ebpf-run` executable.
    #[error("cargo reported no ebpf-run executable for {triple}")]
    NoLoaderArtifact {
        /// The triple.
        triple: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> BuildError + '_ {
    move |error| BuildError::Io {
        path: path.display().to_string(),
        error,
    }
}

/// How a build reports progress.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Echo every command as `+ cmd`.
    pub verbose: bool,
    /// Seconds since the epoch for every tar entry (`SOURCE_DATE_EPOCH`).
    pub mtime: u64,
}

/// What a successful build produced.
#[derive(Debug, Clone)]
pub struct Built {
    /// The bundle.
    pub bundle: PathBuf,
    /// Its SHA-256.
    pub sha256: String,
    /// The single-file executable and its SHA-256, when the plan asked for one.
    pub single: Option<(PathBuf, String)>,
    /// Steps that ran; the rest were up to date.
    pub ran: Vec<String>,
}

/// Runs the plan for `target` in `inputs.project_dir`.
pub fn execute(
    plan: &Plan,
    target: &Target,
    inputs: &PlanInputs,
    tools: BTreeMap<String, String>,
    opts: Options,
) -> Result<Built, BuildError> {
    let root = &inputs.project_dir;
    let mut ran = Vec::new();
    let mut verified = None;
    let mut built: Option<Built> = None;
    let mut bundled: Option<VerifiedBundle> = None;
    let stamps = root.join("build").join(&target.name).join("stamps");
    for step in &plan.steps {
        match step {
            Step::Run {
                id,
                cmds,
                inputs: step_inputs,
                outputs,
            } => {
                if run_step(root, target, &stamps, id, cmds, step_inputs, outputs, opts)? {
                    ran.push(id.clone());
                }
            }
            Step::BuildLoader { cmd, out } => {
                let exe = build_loader(root, cmd, &target.triple, opts.verbose)?;
                copy(&exe, &root.join(out))?;
                progress(target, "loader", "done");
            }
            Step::CopyLoader { from, out } => {
                copy(&root.join(from), &root.join(out))?;
                progress(target, "loader", "copied");
            }
            Step::ConvertBtf {
                from,
                out,
                big_endian,
            } => {
                let data = read(&root.join(from))?;
                let converted =
                    ebpf_pack_object::btf::to_byte_order(&data, *big_endian).map_err(|e| {
                        BuildError::Io {
                            path: from.display().to_string(),
                            error: std::io::Error::other(format!("not a valid BTF file: {e}")),
                        }
                    })?;
                let dest = root.join(out);
                if let Some(dir) = dest.parent() {
                    fs::create_dir_all(dir).map_err(io_err(dir))?;
                }
                fs::write(&dest, converted).map_err(io_err(&dest))?;
                progress(target, "convert-btf", "done");
            }
            Step::Verify => {
                verified = Some(verify_stage(plan, target, inputs)?);
                progress(target, "verify", "ok");
            }
            Step::Bundle { out } => {
                let staged = verified.take().ok_or_else(|| BuildError::Io {
                    path: plan.target.clone(),
                    error: std::io::Error::other("plan bundles before it verifies"),
                })?;
                let (sha256, summary, contents) = write_verified_bundle(
                    plan,
                    target,
                    inputs,
                    staged,
                    tools.clone(),
                    &root.join(out),
                    opts,
                )?;
                progress(target, "bundle", &summary);
                built = Some(Built {
                    bundle: root.join(out),
                    sha256,
                    single: None,
                    ran: std::mem::take(&mut ran),
                });
                bundled = Some(contents);
            }
            Step::Single { out } => {
                let (Some(built), Some(contents)) = (built.as_mut(), bundled.as_ref()) else {
                    return Err(BuildError::Io {
                        path: plan.target.clone(),
                        error: std::io::Error::other(
                            "plan makes the single file before the bundle",
                        ),
                    });
                };
                let (sha256, summary) = write_single(contents, target, &root.join(out), opts)?;
                progress(target, "single", &summary);
                built.single = Some((root.join(out), sha256));
            }
        }
    }
    built.ok_or_else(|| BuildError::Io {
        path: plan.target.clone(),
        error: std::io::Error::other("plan has no bundle step"),
    })
}

/// Runs one `Step::Run` unless its outputs exist and its stamp (commands and input contents) is the
/// one recorded; returns whether it ran. A failed command leaves none of its outputs behind.
#[allow(clippy::too_many_arguments)]
fn run_step(
    root: &Path,
    target: &Target,
    stamps: &Path,
    id: &str,
    cmds: &[Cmd],
    step_inputs: &[PathBuf],
    outputs: &[PathBuf],
    opts: Options,
) -> Result<bool, BuildError> {
    let stamp = step_stamp(root, cmds, step_inputs)?;
    let stamp_file = stamps.join(format!("{id}.sha256"));
    let fresh = outputs.iter().all(|o| root.join(o).is_file())
        && fs::read_to_string(&stamp_file).ok().as_deref() == Some(stamp.as_str());
    if fresh {
        progress(target, id, "up to date");
        return Ok(false);
    }
    for o in outputs {
        let parent = root.join(o);
        if let Some(dir) = parent.parent() {
            fs::create_dir_all(dir).map_err(io_err(dir))?;
        }
    }
    let _ = fs::remove_file(&stamp_file);
    for cmd in cmds {
        if let Err(e) = run(root, cmd, id, opts.verbose) {
            for o in outputs {
                let _ = fs::remove_file(root.join(o));
            }
            return Err(e);
        }
    }
    fs::create_dir_all(stamps).map_err(io_err(stamps))?;
    fs::write(&stamp_file, &stamp).map_err(io_err(&stamp_file))?;
    progress(target, id, "done");
    Ok(true)
}

/// Runs only the plan's object steps (compile and copy, each skipped when up to date) and returns
/// each probe's name and its object's bytes, verified against the target: what `ebpf-pack tools`
/// reads the tools' needs from, without building the loader or a bundle.
pub fn compile_objects(
    plan: &Plan,
    target: &Target,
    inputs: &PlanInputs,
    opts: Options,
) -> Result<Vec<(String, Vec<u8>)>, BuildError> {
    let root = &inputs.project_dir;
    let stamps = root.join("build").join(&target.name).join("stamps");
    for step in &plan.steps {
        if let Step::Run {
            id,
            cmds,
            inputs: step_inputs,
            outputs,
        } = step
            && (id.starts_with("compile-") || id.starts_with("copy-"))
        {
            run_step(root, target, &stamps, id, cmds, step_inputs, outputs, opts)?;
        }
    }
    let rules = ObjectRules {
        arch: target.arch,
        kernel: target.kernel.version,
    };
    let board = crate::kconfig::target_facts(target)?;
    let mut out = Vec::new();
    for (name, path) in &plan.objects {
        let data = read(&root.join(path))?;
        let file = format!("{name}.bpf.o");
        verify_object(&file, &data, rules)?;
        crate::verify::verify_kconfig(&file, &data, board.as_ref())?;
        out.push((name.clone(), data));
    }
    Ok(out)
}

/// Writes the single-file executable of the bundle just written, re-verifies the written bytes, then
/// renames it into place (mode 0755) and writes `.sha256`. Returns (sha256, summary).
fn write_single(
    bundle: &VerifiedBundle,
    target: &Target,
    out: &Path,
    opts: Options,
) -> Result<(String, String), BuildError> {
    let bytes = single_file(bundle, opts.mtime)?;
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    verify_single(&name, &bytes, Some(&target.name))?;
    write_whole(out, &bytes, 0o755)?;
    let sha = sha256_hex(&bytes);
    let sums_path = PathBuf::from(format!("{}.sha256", out.display()));
    // Never a bundle without its checksum: one that cannot get it is taken back.
    write_whole(&sums_path, format!("{sha}  {name}\n").as_bytes(), 0o644).inspect_err(|_| {
        let _ = fs::remove_file(out);
    })?;
    Ok((
        sha.clone(),
        format!("{} ({} bytes, sha256 {sha})", out.display(), bytes.len()),
    ))
}

/// Writes `bytes` to `path` whole or not at all: a `.partial` file beside it, flushed to disk, then
/// renamed over it. A build killed at any point (or a full disk) leaves the old file or the new one
/// under `path`, never part of one; a `.partial` left by a kill is replaced by the next build, and
/// one left by a failed write is removed here.
fn write_whole(path: &Path, bytes: &[u8], mode: u32) -> Result<(), BuildError> {
    let tmp = PathBuf::from(format!("{}.partial", path.display()));
    let written = (|| {
        let mut file = fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut file, bytes)?;
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(io_err(&tmp)(e));
    }
    fs::rename(&tmp, path).map_err(io_err(path))
}

fn progress(target: &Target, step: &str, state: &str) {
    eprintln!("[{}] {step}: {state}", target.name);
}

/// Digest of a step's commands and the content of its inputs: the step reruns when it changes.
fn step_stamp(root: &Path, cmds: &[Cmd], inputs: &[PathBuf]) -> Result<String, BuildError> {
    let mut text = String::new();
    for cmd in cmds {
        text.push_str(&cmd.shell_line());
        text.push('\n');
    }
    for input in inputs {
        let path = root.join(input);
        let digest = match fs::read(&path) {
            Ok(data) => sha256_hex(&data),
            Err(_) => "missing".into(),
        };
        text.push_str(&format!("{} {digest}\n", input.display()));
    }
    Ok(sha256_hex(text.as_bytes()))
}

fn command(root: &Path, cmd: &Cmd) -> Command {
    let mut c = Command::new(&cmd.program);
    c.args(&cmd.args).current_dir(root);
    for (k, v) in &cmd.env {
        c.env(k, v);
    }
    c
}

/// Runs a command, sending stdout to its file if any; failure carries argv, status and stderr.
fn run(root: &Path, cmd: &Cmd, what: &str, verbose: bool) -> Result<(), BuildError> {
    if verbose {
        eprintln!("+ {}", cmd.shell_line());
    }
    let mut c = command(root, cmd);
    let out = c.output().map_err(|e| BuildError::Command {
        what: what.into(),
        argv: cmd.shell_line(),
        status: format!("could not start: {e}"),
        stderr: String::new(),
    })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(40).collect();
        return Err(BuildError::Command {
            what: what.into(),
            argv: cmd.shell_line(),
            status: format!("exited with {}", out.status),
            stderr: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
        });
    }
    if let Some(file) = &cmd.stdout_to {
        let path = root.join(file);
        fs::write(&path, &out.stdout).map_err(io_err(&path))?;
    }
    Ok(())
}

/// Runs cargo and returns the `ebpf-run` executable it reports.
fn build_loader(
    root: &Path,
    cmd: &Cmd,
    triple: &str,
    verbose: bool,
) -> Result<PathBuf, BuildError> {
    if verbose {
        eprintln!("+ {}", cmd.shell_line());
    }
    let fail = |status: String, stderr: String| BuildError::Command {
        what: "build loader".into(),
        argv: cmd.shell_line(),
        status,
        stderr,
    };
    let mut child = command(root, cmd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("could not start: {e}"), String::new()))?;
    let stderr = child.stderr.take();
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(s) = stderr {
            for line in BufReader::new(s).lines().map_while(Result::ok) {
                text.push_str(&line);
                text.push('\n');
            }
        }
        text
    });
    let mut exe = None;
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let Ok(msg) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if msg["reason"] == "compiler-artifact"
                && msg["target"]["name"] == "ebpf-run"
                && let Some(path) = msg["executable"].as_str()
            {
                exe = Some(PathBuf::from(path));
            }
        }
    }
    let status = child
        .wait()
        .map_err(|e| fail(format!("wait failed: {e}"), String::new()))?;
    let stderr = stderr_reader.join().unwrap_or_default();
    if !status.success() {
        let tail: Vec<&str> = stderr.lines().rev().take(40).collect();
        return Err(fail(
            format!("exited with {status}"),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
        ));
    }
    exe.ok_or_else(|| BuildError::NoLoaderArtifact {
        triple: triple.into(),
    })
}

fn copy(from: &Path, to: &Path) -> Result<(), BuildError> {
    if let Some(dir) = to.parent() {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
    }
    fs::copy(from, to).map_err(io_err(from))?;
    Ok(())
}

fn read(path: &Path) -> Result<Vec<u8>, BuildError> {
    fs::read(path).map_err(io_err(path))
}

/// The staged files, checked against the target and ready to bundle.
#[derive(Debug)]
struct StagedFiles {
    files: Vec<BundleFile>,
    probes: Vec<ebpf_pack_manifest::Probe>,
    btf_mode: BtfMode,
}

/// Checks every staged file's bytes against the target: the loader, each object, the tailored BTF.
/// Stale outputs of the target are removed first, so a failed check never leaves one in `dist/`.
fn verify_stage(
    plan: &Plan,
    target: &Target,
    inputs: &PlanInputs,
) -> Result<StagedFiles, BuildError> {
    let root = &inputs.project_dir;
    // The single file too when this build makes none: it would no longer match the bundle.
    let dist = root.join("dist");
    for out in [
        dist.join(format!("{}.tar.gz", plan.bundle_stem)),
        dist.join(format!(
            "{}{}",
            plan.bundle_stem,
            ebpf_pack_manifest::embedded::SUFFIX
        )),
    ] {
        let _ = fs::remove_file(&out);
        let _ = fs::remove_file(format!("{}.sha256", out.display()));
    }
    let loader_path = plan.stage_dir.join(ebpf_pack_manifest::LOADER_FILE);
    let loader = read(&root.join(&loader_path))?;
    verify_loader(&loader_path.display().to_string(), &loader, target.arch)?;
    let rules = ObjectRules {
        arch: target.arch,
        kernel: target.kernel.version,
    };
    let board = crate::kconfig::target_facts(target)?;
    let btf_mode = match inputs.btf {
        BtfInput::Builtin => BtfMode::Kernel,
        BtfInput::Btf(_) | BtfInput::Dwarf(_) => BtfMode::Bundled,
        BtfInput::None => BtfMode::None,
    };
    let mut files = vec![BundleFile {
        path: ebpf_pack_manifest::LOADER_FILE.into(),
        data: loader,
    }];
    let mut probes = Vec::new();
    for (name, obj) in &plan.objects {
        let data = read(&root.join(obj))?;
        let rel = format!("{BPF_DIR}/{name}.bpf.o");
        let facts = verify_object(&obj.display().to_string(), &data, rules)?;
        crate::verify::verify_kconfig(&obj.display().to_string(), &data, board.as_ref())?;
        if facts.core && btf_mode == BtfMode::None {
            return Err(VerifyError {
                file: obj.display().to_string(),
                problem: "uses CO-RE but the target has `kernel.btf: none`".into(),
                help: "set kernel.btf to `builtin` or to the board kernel's vmlinux".into(),
            }
            .into());
        }
        probes.push(facts.into_probe(name, &rel));
        files.push(BundleFile { path: rel, data });
    }
    if let Some(btf) = &plan.shipped_btf {
        let data = read(&root.join(btf))?;
        check_btf_header(
            &btf.display().to_string(),
            &data,
            target.arch.facts().endian,
        )?;
        files.push(BundleFile {
            path: BTF_FILE.into(),
            data,
        });
    }
    Ok(StagedFiles {
        files,
        probes,
        btf_mode,
    })
}

/// Writes the tarball of verified files to a temporary name, re-verifies the written bytes, then
/// renames it into place and writes `.sha256`. Returns (sha256, summary, the verified contents).
fn write_verified_bundle(
    plan: &Plan,
    target: &Target,
    inputs: &PlanInputs,
    staged: StagedFiles,
    tools: BTreeMap<String, String>,
    out: &Path,
    opts: Options,
) -> Result<(String, String, VerifiedBundle), BuildError> {
    let StagedFiles {
        files,
        probes,
        btf_mode,
    } = staged;
    let sums_path = PathBuf::from(format!("{}.sha256", out.display()));
    let facts = target.arch.facts();
    let manifest = Manifest {
        schema: SCHEMA,
        project: inputs.project_name.clone(),
        version: inputs.project_version.clone(),
        target: TargetFacts {
            name: target.name.clone(),
            arch: facts.name.into(),
            endian: facts.endian,
            bits: facts.bits,
            triple: target.triple.clone(),
            kernel_version: target.kernel.version.to_string(),
            btf: btf_mode,
        },
        btf: plan.shipped_btf.as_ref().map(|_| BTF_FILE.to_string()),
        probes,
        files: file_entries(&files),
        tools,
    };
    let mut bytes = Vec::new();
    write_bundle(&mut bytes, &plan.bundle_stem, &manifest, &files, opts.mtime)
        .map_err(io_err(out))?;
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let contents = verify_bundle(&name, &bytes, Some(&target.name))?;
    if let Some(dir) = out.parent() {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
    }
    write_whole(out, &bytes, 0o644)?;
    let sha = sha256_hex(&bytes);
    // Never a bundle without its checksum: one that cannot get it is taken back.
    write_whole(&sums_path, format!("{sha}  {name}\n").as_bytes(), 0o644).inspect_err(|_| {
        let _ = fs::remove_file(out);
    })?;
    Ok((
        sha.clone(),
        format!("{} ({} bytes, sha256 {sha})", out.display(), bytes.len()),
        contents,
    ))
}
