//! `ebpf-pack try`: build (or take) a bundle, verify it, and boot it in QEMU with a kernel of the board's
//! kind. The edge of [`crate::qemu`]: reads files, writes the initramfs, runs QEMU, maps the guest's result
//! to an exit code.

use std::path::{Path, PathBuf};

use crate::arch::Arch;
use crate::commands::{
    BuildArgs, EXIT_BAD_INPUT, EXIT_FAILED, EXIT_MISSING_TOOL, Failure, build_bundles, failure,
};
use crate::project::Project;
use crate::qemu::{
    DEFAULT_WORKLOAD, GuestConsole, GuestEnd, GuestFiles, InitOptions, Jit, QemuSettings,
    ShellGuest, console_tail, guest_initramfs, init_script, loader_exit, qemu_command,
    qemu_settings, run_guest,
};
use crate::target::QemuOverrides;

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
    /// The guest kernel image; default: the provisioned one of the arch.
    pub kernel: Option<PathBuf>,
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
    /// Instead of running the bundle: serve a shell on the guest's console at this Unix socket, for
    /// `ebpf-pack run --via serial:unix:PATH`, until the guest powers off.
    pub serve: Option<PathBuf>,
    /// `-e PROGRAM`: a bpftrace program compiled for the target and run in its guest.
    pub program: Option<String>,
    /// A bpftrace script (`FILE.bt`) compiled for the target and run in its guest.
    pub script: Option<PathBuf>,
    /// Echo commands.
    pub verbose: bool,
}

/// `try -e PROGRAM` / `try --script FILE.bt`: the one-liner compiled for the target, built into a
/// bundle of its own and run in the target's kind of guest by `run --via qemu` (the same guest, the
/// same rendering as bpftrace's on this terminal); `--duration` ends it, else Ctrl-C.
fn try_oneliner(args: &TryArgs) -> Result<(), Failure> {
    if args.target.is_none() {
        return Err(failure(
            EXIT_BAD_INPUT,
            "try -e / --script: a bpftrace program is compiled for a target\n  help: pass --target NAME (a built-in target or targets/NAME.yaml of the project)",
        ));
    }
    let mut loader_args = args.loader_args.clone();
    if let Some(secs) = args.duration_secs {
        loader_args.extend(["--duration".to_string(), secs.to_string()]);
    }
    crate::run_command::run(&crate::run_command::RunArgs {
        project: args.project.clone(),
        target: args.target.clone(),
        bundle: None,
        via: "qemu".into(),
        format: crate::run_command::RunFormat::Text,
        output: None,
        program: args.program.clone(),
        probes: args
            .script
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        loader_args,
        timestamps: crate::render::Timestamps::Off,
        interval: None,
        guest: guest_spec(args),
        symbols: Vec::new(),
        flamegraph: None,
        folded: None,
        verbose: args.verbose,
    })
}

/// What a guest needs besides the bundle: `try`'s guest options, shared with `run --via qemu`.
#[derive(Debug, Clone, Default)]
pub struct GuestSpec {
    /// Kernel image; default: the one scripts/provision-test-kernels.sh left for the arch.
    pub kernel: Option<PathBuf>,
    /// Static busybox; default: the provisioned one.
    pub busybox: Option<PathBuf>,
    /// Extra kernel command-line words.
    pub append: Option<String>,
    /// BPF JIT setting.
    pub jit: Jit,
    /// Workload script (a shell guest repeats it every second).
    pub workload: Option<PathBuf>,
    /// Kernel modules loaded before anything else.
    pub modules: Vec<PathBuf>,
    /// Guest memory in MiB.
    pub memory_mb: u32,
}

/// The provisioned guest file `name` (vmlinuz, busybox) of an arch.
fn provisioned(arch: Arch, name: &str) -> PathBuf {
    crate::assets::cache_dir()
        .join("guests")
        .join(arch.to_string())
        .join(name)
}

/// Files by name, with their bytes.
type NamedFiles = Vec<(String, Vec<u8>)>;

/// The guest's busybox (checked to be for `arch`), workload and modules.
fn guest_parts(arch: Arch, spec: &GuestSpec) -> Result<(Vec<u8>, Vec<u8>, NamedFiles), Failure> {
    let busybox_path = spec
        .busybox
        .clone()
        .unwrap_or_else(|| provisioned(arch, "busybox"));
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
    let workload = match &spec.workload {
        Some(path) => read_input(
            path,
            "--workload",
            "pass a shell script for the guest's busybox sh",
        )?,
        None => DEFAULT_WORKLOAD.as_bytes().to_vec(),
    };
    let mut modules: NamedFiles = Vec::new();
    for path in &spec.modules {
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
    Ok((busybox, workload, modules))
}

/// The kernel image to boot (given, or provisioned), canonical; a clear error when there is none.
fn guest_kernel(arch: Arch, spec: &GuestSpec) -> Result<PathBuf, Failure> {
    let kernel = spec
        .kernel
        .clone()
        .unwrap_or_else(|| provisioned(arch, "vmlinuz"));
    if !kernel.is_file() {
        return Err(failure(
            EXIT_BAD_INPUT,
            format!(
                "--kernel {}: no such file\n  help: pass a {arch} kernel image (vmlinuz/Image/zImage); scripts/provision-test-kernels.sh {arch} downloads Debian's",
                kernel.display()
            ),
        ));
    }
    Ok(kernel.canonicalize().unwrap_or(kernel))
}

/// Writes a guest's initramfs into `dir`, named by its content (guests booted at the same time
/// never share a file).
fn write_initramfs(fs: &crate::initramfs::Initramfs, dir: &Path) -> Result<PathBuf, Failure> {
    let mut image = Vec::new();
    fs.write_gz(&mut image)
        .map_err(|e| failure(EXIT_FAILED, format!("initramfs: {e}")))?;
    let initrd = dir.join(format!(
        "initramfs-{}.cpio.gz",
        &crate::bundle::sha256_hex(&image)[..16]
    ));
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&initrd, &image))
        .map_err(|e| failure(EXIT_FAILED, format!("{}: {e}", initrd.display())))?;
    Ok(initrd)
}

fn require_qemu(settings: &QemuSettings) -> Result<(), Failure> {
    if crate::toolchain::find_program(&settings.binary).is_none() {
        return Err(failure(
            EXIT_MISSING_TOOL,
            format!(
                "{} not found\n  help: sudo apt-get install {} (or run scripts/install-deps.sh)",
                settings.binary, settings.package
            ),
        ));
    }
    Ok(())
}

/// Boots a guest of `arch` whose console, served at `socket`, ends at a shell (no bundle inside: a
/// transport pushes one, as to a real board). Its files go to `work_dir`.
pub fn boot_shell_guest(
    arch: Arch,
    overrides: &QemuOverrides,
    spec: &GuestSpec,
    work_dir: &Path,
    socket: &Path,
    remove_socket: bool,
) -> Result<ShellGuest, Failure> {
    let settings = qemu_settings(arch, overrides);
    let kernel = guest_kernel(arch, spec)?;
    let (busybox, workload, modules) = guest_parts(arch, spec)?;
    let init = init_script(&InitOptions {
        jit: spec.jit,
        modules: modules.iter().map(|(n, _)| n.clone()).collect(),
        shell: true,
        ..InitOptions::default()
    });
    let fs = guest_initramfs(&GuestFiles {
        busybox: &busybox,
        bundle: &Default::default(),
        extra: &[],
        modules: &modules,
        workload: &workload,
        init: &init,
    })
    .map_err(|e| failure(EXIT_BAD_INPUT, e))?;
    let initrd = write_initramfs(&fs, work_dir)?;
    require_qemu(&settings)?;
    let cmd = qemu_command(
        &settings,
        &kernel,
        &initrd,
        spec.append.as_deref(),
        spec.memory_mb,
        &GuestConsole::Socket(crate::qemu::boot_socket(socket)),
    );
    eprintln!("ebpf-pack: guest command: {}", cmd.shell_line());
    let started = std::time::Instant::now();
    let guest = ShellGuest::start(
        &cmd,
        socket,
        format!("the QEMU {arch} guest (serial:unix:{})", socket.display()),
        remove_socket,
    )
    .map_err(|e| failure(EXIT_MISSING_TOOL, e))?;
    eprintln!(
        "ebpf-pack: the guest's shell is up on {} (booted in {:.1} s)",
        socket.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(guest)
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

/// The guest options of `try`.
fn guest_spec(args: &TryArgs) -> GuestSpec {
    GuestSpec {
        kernel: args.kernel.clone(),
        busybox: args.busybox.clone(),
        append: args.append.clone(),
        jit: args.jit,
        workload: args.workload.clone(),
        modules: args.modules.clone(),
        memory_mb: args.memory_mb,
    }
}

/// The project's `build/TARGET/try/` folder.
fn try_dir(args: &TryArgs, target: &str) -> PathBuf {
    let root = args
        .project
        .canonicalize()
        .unwrap_or_else(|_| args.project.clone());
    root.join("build").join(target).join("try")
}

/// Set by SIGINT/SIGTERM while `try --serve` waits.
static SERVE_STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_serve_stop(_: libc::c_int) {
    SERVE_STOP.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// `ebpf-pack try --serve SOCKET`: boot the target's kind of guest with a shell on its console at
/// SOCKET and keep it until it powers off (or this process is stopped).
fn serve(args: &TryArgs, socket: &Path) -> Result<(), Failure> {
    let project = Project::open(&args.project).map_err(|e| failure(EXIT_BAD_INPUT, e))?;
    let target = match (&args.target_file, &args.target) {
        (Some(file), _) => {
            crate::project::load_target_file(file, None).map_err(|e| failure(EXIT_BAD_INPUT, e))?
        }
        (None, Some(name)) => project
            .target(name)
            .map_err(|e| failure(EXIT_BAD_INPUT, e))?,
        (None, None) => {
            return Err(failure(
                EXIT_BAD_INPUT,
                "try --serve: no target given\n  help: pass --target NAME or --target-file PATH (its arch picks the guest)",
            ));
        }
    };
    let which = match &args.target_file {
        Some(file) => format!("--bundle BUNDLE.tar.gz (built from {})", file.display()),
        None => format!("--target {}", target.name),
    };
    let mut guest = boot_shell_guest(
        target.arch,
        &target.qemu,
        &guest_spec(args),
        &try_dir(args, &target.name),
        socket,
        true,
    )?;
    eprintln!(
        "ebpf-pack: {} is up; its console is a shell at {}\n  run on it: ebpf-pack run {which} --via serial:unix:{}\n  (stop the guest with Ctrl-C, or `poweroff -f` on its console)",
        guest.describe(),
        socket.display(),
        socket.display()
    );
    // SIGINT/SIGTERM end the wait; dropping the guest then stops its QEMU.
    SERVE_STOP.store(false, std::sync::atomic::Ordering::SeqCst);
    // SAFETY: installing a handler that only stores to an atomic, which is async-signal-safe.
    unsafe {
        for sig in [libc::SIGINT, libc::SIGTERM] {
            libc::signal(sig, on_serve_stop as *const () as libc::sighandler_t);
        }
    }
    match guest.wait_or(&SERVE_STOP) {
        Some(code) => eprintln!("ebpf-pack: the guest is off (QEMU exited {code})"),
        None => eprintln!("ebpf-pack: stopping the guest"),
    }
    drop(guest);
    Ok(())
}

/// `ebpf-pack try`: build (or take) a bundle, verify it, boot it in QEMU with `kernel`, run ebpf-run and a
/// workload in the guest, and return the loader's exit status.
pub fn try_bundle(args: &TryArgs) -> Result<(), Failure> {
    if let Some(socket) = &args.serve {
        return serve(args, socket);
    }
    if args.program.is_some() || args.script.is_some() {
        return try_oneliner(args);
    }
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
                loader_std: crate::commands::LoaderStd::Auto,
                verbose: args.verbose,
                quiet: false,
                loose: Vec::new(),
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
    let spec = guest_spec(args);
    let kernel = guest_kernel(arch, &spec)?;
    let (busybox, workload, modules) = guest_parts(arch, &spec)?;
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
    let init = init_script(&InitOptions {
        loader_args: args.loader_args.clone(),
        duration_secs: args.duration_secs,
        jit: args.jit,
        modules: modules.iter().map(|(n, _)| n.clone()).collect(),
        shell: false,
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
    let initrd = write_initramfs(&fs, &try_dir(args, &verified.manifest.target.name))?;

    // 4. Boot, stream the console, read the loader's status.
    require_qemu(&settings)?;
    let cmd = qemu_command(
        &settings,
        &kernel,
        &initrd,
        args.append.as_deref(),
        args.memory_mb,
        &GuestConsole::Stdio,
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
