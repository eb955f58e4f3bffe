//! `ebpf-pack try`: build (or take) a bundle, verify it, and boot it in QEMU with a kernel of the board's
//! kind. The edge of [`crate::qemu`]: reads files, writes the initramfs, runs QEMU, maps the guest's result
//! to an exit code.

use std::path::{Path, PathBuf};

use crate::commands::{
    BuildArgs, EXIT_BAD_INPUT, EXIT_FAILED, EXIT_MISSING_TOOL, Failure, build_bundles, failure,
};
use crate::project::Project;
use crate::qemu::{
    DEFAULT_WORKLOAD, GuestEnd, GuestFiles, InitOptions, Jit, console_tail, guest_initramfs,
    init_script, loader_exit, qemu_command, qemu_settings, run_guest,
};

/// Exit code of `try`: the guest gave no result (timeout, kernel panic, QEMU error).
pub const EXIT_NO_RESULT: u8 = 5;

/// Arguments of `ebpf-pack try`.
#[derive(Debug, Clone)]
pub struct TryArgs {
    /// Project directory.
    pub project: PathBuf,
    /// Target name to build (or, with `bundle`, to expect).
    pub target: Option<String>,
    /// Target file to build.
    pub target_file: Option<PathBuf>,
    /// A bundle already built: boot it instead of building one.
    pub bundle: Option<PathBuf>,
    /// Prebuilt loader for the build.
    pub loader: Option<PathBuf>,
    /// The guest kernel image.
    pub kernel: PathBuf,
    /// Static busybox for the guest's arch; default from the provisioning cache.
    pub busybox: Option<PathBuf>,
    /// Kill QEMU after this many seconds.
    pub timeout_secs: u64,
    /// Let ebpf-run run this long; default: until the workload ends.
    pub duration_secs: Option<u64>,
    /// Extra kernel command-line words.
    pub append: Option<String>,
    /// BPF JIT setting.
    pub jit: Jit,
    /// Workload script instead of the default one.
    pub workload: Option<PathBuf>,
    /// Extra files for the guest's `/extra/`.
    pub add: Vec<PathBuf>,
    /// Kernel modules loaded in the guest before ebpf-run starts, in order.
    pub modules: Vec<PathBuf>,
    /// Guest memory in MiB.
    pub memory_mb: u32,
    /// Arguments of ebpf-run in the guest.
    pub loader_args: Vec<String>,
    /// Echo commands.
    pub verbose: bool,
}

fn read_input(path: &Path, what: &str, help: &str) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| {
        failure(
            EXIT_BAD_INPUT,
            format!(
                "{what} {}: cannot read: {e}\n  help: {help}",
                path.display()
            ),
        )
    })
}

/// `ebpf-pack try`: build (or take) a bundle, verify it, boot it in QEMU with `kernel`, run ebpf-run and a
/// workload in the guest, and return the loader's exit status.
pub fn try_bundle(args: &TryArgs) -> Result<(), Failure> {
    // 1. The bundle, built through the same pipeline as `ebpf-pack build`, and its target.
    let (target, bundle) = match &args.bundle {
        Some(bundle) => {
            let target = match &args.target {
                Some(name) => Some(
                    Project::open(&args.project)
                        .map_err(|e| failure(EXIT_BAD_INPUT, e))?
                        .target(name)
                        .map_err(|e| failure(EXIT_BAD_INPUT, e))?,
                ),
                None => None,
            };
            (target, bundle.clone())
        }
        None => {
            let built = build_bundles(&BuildArgs {
                project: args.project.clone(),
                targets: args.target.iter().cloned().collect(),
                target_files: args.target_file.iter().cloned().collect(),
                all: false,
                dry_run: false,
                loader: args.loader.clone(),
                bundle_name: None,
                bundle_version: None,
                single: false,
                min_size: false,
                verbose: args.verbose,
                quiet: false,
            })?;
            let (target, bundle) = built.into_iter().next().ok_or_else(|| {
                failure(
                    EXIT_BAD_INPUT,
                    "no target given\n  help: pass --target NAME, --target-file PATH or --bundle FILE",
                )
            })?;
            (Some(target), bundle)
        }
    };
    // 2. Verified from its bytes, as `ebpf-pack verify` does: a wrong-arch loader or a wrong-endianness
    //    object is refused here, before anything boots.
    let bytes = read_input(
        &bundle,
        "bundle",
        "pass the .tar.gz that `ebpf-pack build` wrote",
    )?;
    let shown = bundle.display().to_string();
    let verified =
        crate::bundle::verify_bundle(&shown, &bytes, target.as_ref().map(|t| t.name.as_str()))
            .map_err(|e| failure(EXIT_FAILED, format!("refusing to boot: {e}")))?;
    let arch_name = &verified.manifest.target.arch;
    let arch = crate::arch::Arch::from_name(arch_name).ok_or_else(|| {
        failure(
            EXIT_FAILED,
            format!("refusing to boot {shown}: unknown arch `{arch_name}` in its manifest"),
        )
    })?;
    let overrides = target.as_ref().map(|t| t.qemu.clone()).unwrap_or_default();
    let settings = qemu_settings(arch, &overrides);

    // 3. The guest's pieces: kernel, a static busybox of the right arch, workload, extra files.
    if !args.kernel.is_file() {
        return Err(failure(
            EXIT_BAD_INPUT,
            format!(
                "--kernel {}: no such file\n  help: pass a {arch} kernel image (vmlinuz/Image/zImage); scripts/provision-test-kernels.sh {arch} downloads Debian's",
                args.kernel.display()
            ),
        ));
    }
    let busybox_path = args.busybox.clone().unwrap_or_else(|| {
        crate::assets::cache_dir()
            .join("guests")
            .join(arch_name)
            .join("busybox")
    });
    let busybox = std::fs::read(&busybox_path).map_err(|e| {
        failure(
            EXIT_MISSING_TOOL,
            format!(
                "busybox {}: {e}\n  help: run scripts/provision-test-kernels.sh {arch}, or pass --busybox PATH (a static busybox for {arch}, e.g. from Debian's busybox-static)",
                busybox_path.display()
            ),
        )
    })?;
    crate::verify::verify_loader(&busybox_path.display().to_string(), &busybox, arch)
        .map_err(|e| failure(EXIT_BAD_INPUT, format!("--busybox: {e}")))?;
    let workload = match &args.workload {
        Some(path) => read_input(
            path,
            "--workload",
            "pass a shell script for the guest's busybox sh",
        )?,
        None => DEFAULT_WORKLOAD.as_bytes().to_vec(),
    };
    let mut extra = Vec::new();
    for path in &args.add {
        let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
            failure(
                EXIT_BAD_INPUT,
                format!("--add {}: not a file name", path.display()),
            )
        })?;
        extra.push((
            name.to_string(),
            read_input(path, "--add", "pass an existing file")?,
        ));
    }
    let mut modules = Vec::new();
    for path in &args.modules {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| n.ends_with(".ko"))
            .ok_or_else(|| {
                failure(
                    EXIT_BAD_INPUT,
                    format!(
                        "--module {}: not a .ko file name\n  help: pass a kernel module file (NAME.ko) of the guest kernel",
                        path.display()
                    ),
                )
            })?;
        let data = read_input(
            path,
            "--module",
            "pass an existing .ko file of the guest kernel",
        )?;
        crate::verify::verify_module(&path.display().to_string(), &data, arch)
            .map_err(|e| failure(EXIT_BAD_INPUT, format!("--module: {e}")))?;
        if modules.iter().any(|(n, _)| n == name) {
            return Err(failure(
                EXIT_BAD_INPUT,
                format!(
                    "--module {}: a module named {name} is already given",
                    path.display()
                ),
            ));
        }
        modules.push((name.to_string(), data));
    }
    let init = init_script(&InitOptions {
        loader_args: args.loader_args.clone(),
        duration_secs: args.duration_secs,
        jit: args.jit,
        modules: modules.iter().map(|(n, _)| n.clone()).collect(),
    });
    let fs = guest_initramfs(&GuestFiles {
        busybox: &busybox,
        bundle: &verified.files,
        extra: &extra,
        modules: &modules,
        workload: &workload,
        init: &init,
    })
    .map_err(|e| failure(EXIT_BAD_INPUT, e))?;
    let mut image = Vec::new();
    fs.write_gz(&mut image)
        .map_err(|e| failure(EXIT_FAILED, format!("initramfs: {e}")))?;
    // Named by content: guests of one target tried at the same time never share a file.
    let project_root = args
        .project
        .canonicalize()
        .unwrap_or_else(|_| args.project.clone());
    let dir = project_root
        .join("build")
        .join(&verified.manifest.target.name)
        .join("try");
    let initrd = dir.join(format!(
        "initramfs-{}.cpio.gz",
        &crate::bundle::sha256_hex(&image)[..16]
    ));
    std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&initrd, &image))
        .map_err(|e| failure(EXIT_FAILED, format!("{}: {e}", initrd.display())))?;

    // 4. Boot, stream the console, read the loader's status.
    if crate::toolchain::find_program(&settings.binary).is_none() {
        return Err(failure(
            EXIT_MISSING_TOOL,
            format!(
                "{} not found\n  help: sudo apt-get install {} (or run scripts/install-deps.sh)",
                settings.binary, settings.package
            ),
        ));
    }
    let kernel = args
        .kernel
        .canonicalize()
        .unwrap_or_else(|_| args.kernel.clone());
    let cmd = qemu_command(
        &settings,
        &kernel,
        &initrd,
        args.append.as_deref(),
        args.memory_mb,
    );
    let rerun = format!("timeout {} {}", args.timeout_secs, cmd.shell_line());
    eprintln!(
        "ebpf-pack: booting {} ({} files, {arch}) in {} with {}; timeout {} s",
        verified.manifest.target.name,
        verified.files.len(),
        settings.binary,
        kernel.display(),
        args.timeout_secs
    );
    eprintln!("ebpf-pack: guest command: {rerun}");
    let run = run_guest(
        &cmd,
        std::time::Duration::from_secs(args.timeout_secs),
        Box::new(std::io::stdout()),
    )
    .map_err(|e| failure(EXIT_MISSING_TOOL, e))?;
    let secs = run.elapsed.as_secs_f64();
    if run.end == GuestEnd::TimedOut {
        return Err(failure(
            EXIT_NO_RESULT,
            format!(
                "the guest did not finish within {} s; QEMU was killed\n  rerun: {rerun}\n  help: raise --timeout, or look at the console above for where it stopped",
                args.timeout_secs
            ),
        ));
    }
    match loader_exit(&run.console) {
        Some(0) => {
            eprintln!("ebpf-pack: ebpf-run exited 0 in the guest ({secs:.1} s boot to result)");
            Ok(())
        }
        Some(code) => Err(failure(
            u8::try_from(code).unwrap_or(EXIT_FAILED),
            format!(
                "ebpf-run exited {code} in the guest ({secs:.1} s); its messages are above\n  rerun: {rerun}"
            ),
        )),
        None => Err(failure(
            EXIT_NO_RESULT,
            format!(
                "the guest gave no result (QEMU exited {:?} after {secs:.1} s); last console lines:\n{}\n{}  rerun: {rerun}",
                run.end,
                console_tail(&run.console, 20),
                if run.stderr.trim().is_empty() {
                    String::new()
                } else {
                    format!("QEMU said: {}\n", run.stderr.trim())
                }
            ),
        )),
    }
}
