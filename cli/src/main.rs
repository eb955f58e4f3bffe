//! `ebpf-pack`: the command line. Reads flags, calls the library, prints errors and sets the exit code.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use ebpf_pack::commands::{self, BuildArgs, Failure, TryArgs};
use ebpf_pack::qemu::Jit;

/// Build, verify and bundle CO-RE eBPF probes and a static loader for embedded Linux boards.
#[derive(Parser, Debug)]
#[command(name = "ebpf-pack", version, about, long_about = None, after_help = EXIT_CODES)]
struct Cli {
    /// Project directory (holds probes/, targets/).
    #[arg(short = 'C', long = "project", global = true, default_value = ".")]
    project: PathBuf,
    /// Echo every command run as `+ cmd ...`.
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

const EXIT_CODES: &str = "Exit codes: 0 ok; 1 build or verification failed; 2 bad usage, project or target file; 3 a required tool is missing; `try`: the guest's ebpf-run status, or 5 when the guest gave none.";

#[derive(Subcommand, Debug)]
enum Command {
    /// List the known targets with their facts.
    Targets {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// List the tools (the project's probes; for ebpf-pack's checkout, the toolbox): summary, options
    /// in the BCC spelling, hooks, what each needs of a kernel, and which known targets can run it.
    Tools {
        /// Compile the tools for this target to read their needs [default: x86_64].
        #[arg(long, value_name = "NAME")]
        target: Option<String>,
        /// One JSON object per tool instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Compile the probes, build the loader, verify everything and write dist/<project>-<version>-<target>.tar.gz.
    Build {
        /// Target name (repeatable): a project's targets/NAME.yaml or a built-in target
        /// [default: `boards` of ebpf-pack.yaml].
        #[arg(long = "target", value_name = "NAME")]
        targets: Vec<String>,
        /// A target file of your own (repeatable).
        #[arg(long = "target-file", value_name = "PATH")]
        target_files: Vec<PathBuf>,
        /// Build every known target.
        #[arg(long, conflicts_with_all = ["targets", "target_files"])]
        all: bool,
        /// Print the plan as shell lines; run nothing.
        #[arg(long)]
        dry_run: bool,
        /// Use this prebuilt ebpf-run instead of building it (it is verified like a built one).
        #[arg(long, value_name = "PATH")]
        loader: Option<PathBuf>,
        /// Project name in the bundle's file name [default: `name` of ebpf-pack.yaml, else ebpf-pack].
        #[arg(long)]
        bundle_name: Option<String>,
        /// Version in the bundle's file name [default: `version` of ebpf-pack.yaml, else this
        /// ebpf-pack's version].
        #[arg(long)]
        bundle_version: Option<String>,
        /// Also write dist/<project>-<version>-<target>.run: ebpf-run with the bundle inside, one file
        /// to copy to the board (it checks its embedded checksums before loading anything).
        #[arg(long)]
        single: bool,
        /// A bpftrace program (FILE.bt, docs/ONELINERS.md) to build into the bundle as probe FILE
        /// (replacing a project probe of that name); repeatable.
        #[arg(long = "script", value_name = "FILE.bt")]
        scripts: Vec<PathBuf>,
        /// Insist on the small ebpf-run (the default whenever rustc has rust-src): std rebuilt with it,
        /// panics abort without a message, opt-level s (unstable -Zbuild-std and
        /// -Cpanic=immediate-abort via RUSTC_BOOTSTRAP=1); without rust-src this is an error.
        #[arg(long, conflicts_with_all = ["loader", "full_std"])]
        min_size: bool,
        /// Build ebpf-run with rustup's prebuilt std instead: panic messages and backtraces kept,
        /// about 200 KB bigger.
        #[arg(long, conflicts_with = "loader")]
        full_std: bool,
    },
    /// Try before you flash: build and verify the target's bundle, boot it in QEMU with a kernel of the
    /// board's kind, run ebpf-run and a workload in the guest; exit with ebpf-run's status.
    #[command(group(clap::ArgGroup::new("what").required(true).args(["target", "target_file", "bundle"])))]
    Try {
        /// Target name: a project's targets/NAME.yaml or a built-in target.
        #[arg(long, value_name = "NAME")]
        target: Option<String>,
        /// A target file of your own.
        #[arg(long, value_name = "PATH", conflicts_with = "target")]
        target_file: Option<PathBuf>,
        /// Boot this bundle (.tar.gz) instead of building one; it is verified first.
        #[arg(long, value_name = "FILE", conflicts_with_all = ["target_file", "loader"])]
        bundle: Option<PathBuf>,
        /// Use this prebuilt ebpf-run for the build (it is verified like a built one).
        #[arg(long, value_name = "PATH")]
        loader: Option<PathBuf>,
        #[command(flatten)]
        guest: GuestOpts,
        /// Kill QEMU after this many seconds.
        #[arg(long, value_name = "SECS", default_value_t = 300)]
        timeout: u64,
        /// Run ebpf-run this long [default: until the workload ends].
        #[arg(long, value_name = "SECS")]
        duration: Option<u64>,
        /// Put this file in the guest's /extra/ (repeatable), e.g. an object for `-- /extra/x.bpf.o`.
        #[arg(long, value_name = "FILE")]
        add: Vec<PathBuf>,
        /// Do not run the bundle: boot the target's kind of guest with a shell on its console, served
        /// on this Unix socket for `ebpf-pack run --via serial:unix:PATH`, until it powers off.
        #[arg(long, value_name = "PATH", conflicts_with_all = ["bundle", "loader", "duration", "add"])]
        serve: Option<PathBuf>,
        /// A bpftrace program: compiled for the target and run in its guest (`run --via qemu`),
        /// its maps printed here as bpftrace prints them (docs/ONELINERS.md).
        #[arg(short = 'e', value_name = "PROGRAM", conflicts_with_all = ["bundle", "loader", "target_file", "serve", "add", "script"])]
        program: Option<String>,
        /// A bpftrace script (FILE.bt), run as -e runs a program.
        #[arg(long, value_name = "FILE.bt", conflicts_with_all = ["bundle", "loader", "target_file", "serve", "add"])]
        script: Option<PathBuf>,
        /// Arguments of ebpf-run in the guest (default: every probe of the bundle).
        #[arg(last = true, value_name = "EBPF-RUN ARGS")]
        loader_args: Vec<String>,
    },
    /// Run a bundle on a board from here: build it (fast when nothing changed), push it only when the
    /// board lacks that exact bundle (by SHA-256), run its ebpf-run there and show the events here.
    /// Ctrl-C stops the board's loader; its final map dump still arrives. Exit: ebpf-run's status.
    #[command(group(clap::ArgGroup::new("what").required(true).args(["target", "bundle"])))]
    Run {
        /// Target to build the bundle for.
        #[arg(long, value_name = "NAME")]
        target: Option<String>,
        /// Run this bundle (.tar.gz) instead of building one; it is verified first.
        #[arg(long, value_name = "FILE", conflicts_with = "target")]
        bundle: Option<PathBuf>,
        /// How to reach the board: `local`, `ssh USER@HOST`, `ssh://USER@HOST:PORT` (the system's
        /// OpenSSH client and its config; EBPF_PACK_SSH names another ssh program),
        /// `serial:/dev/ttyUSB0[@BAUD]`, `serial:unix:PATH`, `serial:tcp:HOST:PORT[@BAUD]` (a shell
        /// on a console; EBPF_PACK_SERIAL_USER/_PASSWORD answer a login prompt), `adb[:SERIAL]`
        /// (unverified), or `qemu` (a guest of the bundle's arch booted for the run, see --kernel).
        #[arg(long, value_name = "TRANSPORT")]
        via: String,
        /// `text`: a table per record type; `json`: ebpf-run's JSON lines as they come.
        #[arg(long, value_enum, default_value_t = RunFormatArg::Text)]
        format: RunFormatArg,
        /// Also record ebpf-run's JSON lines in FILE.
        #[arg(long, value_name = "FILE.jsonl")]
        output: Option<PathBuf>,
        /// Start each row with the time it arrived here: `wall` (HH:MM:SS, the default of a bare
        /// -T) or `relative` (seconds since the run started).
        #[arg(short = 'T', long, value_enum, value_name = "KIND", num_args = 0..=1, default_missing_value = "wall")]
        timestamps: Option<TimestampsArg>,
        /// Dump the maps every SECS seconds (ebpf-run --interval): on a terminal a live view that
        /// shows the latest dump and the last events, redrawn each time; plain lines otherwise.
        #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
        interval: Option<u64>,
        /// A folder with the unstripped binaries or debug files of what runs on the board (a
        /// sysroot, a build's output, Yocto's -dbg files): user frames of stacks (profile) are named
        /// from the file whose GNU build id is the board file's. Repeatable.
        #[arg(long, value_name = "DIR")]
        symbols: Vec<PathBuf>,
        /// Write the run's stacks (profile) as a flame graph: one SVG that opens in a browser.
        #[arg(long, value_name = "FILE.svg")]
        flamegraph: Option<PathBuf>,
        /// Write the run's stacks (profile) as folded stacks (`comm;outer;...;inner COUNT`), the
        /// input of flamegraph.pl and speedscope.
        #[arg(long, value_name = "FILE")]
        folded: Option<PathBuf>,
        /// The guest of `--via qemu`.
        #[command(flatten)]
        guest: GuestOpts,
        /// A bpftrace program (docs/ONELINERS.md) compiled here for the target and run on the
        /// board; its maps print as bpftrace prints them. A FILE.bt among the probes does the same.
        #[arg(short = 'e', value_name = "PROGRAM", conflicts_with = "bundle")]
        program: Option<String>,
        /// What to run: probes of the bundle by name, and loose FILE.bpf.c (compiled for the board
        /// with the target's flags), FILE.bpf.o (verified against it) or FILE.bt (a bpftrace
        /// program), built with the project's probes into a bundle of its own for the run
        /// (dist/NAME-run-*); default: every probe.
        #[arg(value_name = "PROBE|FILE.bpf.c|FILE.bpf.o|FILE.bt")]
        probes: Vec<String>,
        /// Arguments of ebpf-run on the board: --duration SECS, --set NAME=VALUE ...
        #[arg(last = true, value_name = "EBPF-RUN ARGS")]
        loader_args: Vec<String>,
    },
    /// Re-check a bundle or single-file executable: layout, checksums, loader and objects against its target.
    Verify {
        /// The bundle (.tar.gz) or single-file executable (.run).
        bundle: PathBuf,
        /// Also require the bundle to be for this target.
        #[arg(long, value_name = "NAME")]
        target: Option<String>,
    },
    /// Start a project in DIR: ebpf-pack.yaml, an example CO-RE probe (probes/hello.bpf.c), .gitignore,
    /// README.md and CI files; targets/NAME.yaml for boards of your own. Never overwrites a file.
    Init {
        /// The project's folder (created if missing).
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Project name, first part of bundle names [default: the folder's name].
        #[arg(long)]
        name: Option<String>,
        /// A board (repeatable): a built-in target, or NAME:BASE for a board of your own started
        /// from built-in BASE (written to targets/NAME.yaml) [default: x86_64].
        #[arg(long = "board", value_name = "NAME[:BASE]")]
        boards: Vec<String>,
        /// CI files to write (repeatable; `none` for none) [default: github and gitlab].
        #[arg(long, value_enum, value_name = "SYSTEM")]
        ci: Vec<InitCi>,
    },
    /// Write (or, with --check, check that it is current) the CI file that builds, verifies and
    /// releases one tarball per board of ebpf-pack.yaml.
    Ci {
        /// github: .github/workflows/ebpf-pack.yml; gitlab: .gitlab-ci.yml.
        #[arg(value_enum)]
        system: ebpf_pack::templates::CiSystem,
        /// Write nothing; fail (exit 1) naming the first difference if the file is not what ebpf-pack
        /// would write.
        #[arg(long)]
        check: bool,
    },
    /// Write the probe headers (ebpf_pack.h, <arch>/vmlinux.h) into DIR, for editors and recipes.
    Headers {
        /// Destination folder (created if missing).
        dir: PathBuf,
        /// Only this arch's vmlinux.h (repeatable) [default: every arch].
        #[arg(long = "arch", value_name = "ARCH")]
        arches: Vec<String>,
    },
    /// List the tools the boards need that this host lacks (what `build` would refuse to start
    /// without); with --install, install them with apt-get and rustup.
    Deps {
        /// Target name (repeatable) [default: `boards` of ebpf-pack.yaml].
        #[arg(long = "target", value_name = "NAME")]
        targets: Vec<String>,
        /// Install what is missing (apt-get as root or through sudo; rustup).
        #[arg(long)]
        install: bool,
    },
    /// Render a target file from bitbake's facts (used by meta-ebpf-rs's ebpf_pack.bbclass).
    #[command(hide = true)]
    YoctoTarget(ebpf_pack::yocto::YoctoTargetArgs),
}

/// `run --format` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum RunFormatArg {
    /// Aligned tables.
    Text,
    /// JSON lines.
    Json,
}

/// `init --ci` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum InitCi {
    /// GitHub Actions.
    Github,
    /// GitLab CI.
    Gitlab,
    /// No CI files.
    None,
}

/// `run -T` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum TimestampsArg {
    /// The host's wall clock, HH:MM:SS.
    Wall,
    /// Seconds since the run started.
    Relative,
}

/// `--jit` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum JitArg {
    /// Set net.core.bpf_jit_enable=1.
    On,
    /// Set net.core.bpf_jit_enable=0 (interpreter).
    Off,
    /// Leave the kernel's default.
    Default,
}

/// The QEMU guest options shared by `try` and `run --via qemu`.
#[derive(Debug, Clone, clap::Args)]
struct GuestOpts {
    /// Kernel image to boot (vmlinuz, Image, zImage) of the board's arch [default:
    /// $EBPF_PACK_CACHE/guests/ARCH/vmlinuz, left by scripts/provision-test-kernels.sh].
    #[arg(long, value_name = "IMAGE")]
    kernel: Option<PathBuf>,
    /// Static busybox for the guest [default: $EBPF_PACK_CACHE/guests/ARCH/busybox].
    #[arg(long, value_name = "PATH")]
    busybox: Option<PathBuf>,
    /// Extra kernel command-line arguments.
    #[arg(long, value_name = "ARGS", allow_hyphen_values = true)]
    append: Option<String>,
    /// net.core.bpf_jit_enable in the guest.
    #[arg(long, value_enum, default_value_t = JitArg::Default)]
    jit: JitArg,
    /// Shell script run in the guest while ebpf-run is attached [default: a built-in one that opens,
    /// execs and syncs]; a guest with a shell on its console repeats it every second.
    #[arg(long, value_name = "FILE")]
    workload: Option<PathBuf>,
    /// Load this kernel module (.ko of the guest kernel) first (repeatable, in order), e.g.
    /// sch_ingress.ko and cls_bpf.ko for tc on a modular kernel.
    #[arg(long = "module", value_name = "FILE.ko")]
    modules: Vec<PathBuf>,
    /// Guest memory in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 512)]
    memory: u32,
}

impl GuestOpts {
    fn spec(self) -> ebpf_pack::try_command::GuestSpec {
        ebpf_pack::try_command::GuestSpec {
            kernel: self.kernel,
            busybox: self.busybox,
            append: self.append,
            jit: match self.jit {
                JitArg::On => Jit::On,
                JitArg::Off => Jit::Off,
                JitArg::Default => Jit::Default,
            },
            workload: self.workload,
            modules: self.modules,
            memory_mb: self.memory,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Targets { json } => commands::targets(&cli.project, json),
        Command::Tools { target, json } => {
            ebpf_pack::tools_command::tools(&cli.project, target.as_deref(), json)
        }
        Command::Build {
            targets,
            target_files,
            all,
            dry_run,
            loader,
            bundle_name,
            bundle_version,
            single,
            min_size,
            full_std,
            scripts,
        } => commands::build(&BuildArgs {
            project: cli.project,
            targets,
            target_files,
            all,
            dry_run,
            loader,
            bundle_name,
            bundle_version,
            single,
            loader_std: if min_size {
                commands::LoaderStd::Rebuilt
            } else if full_std {
                commands::LoaderStd::Prebuilt
            } else {
                commands::LoaderStd::Auto
            },
            verbose: cli.verbose,
            quiet: false,
            loose: scripts,
        }),
        Command::Try {
            target,
            target_file,
            bundle,
            loader,
            guest,
            timeout,
            duration,
            add,
            serve,
            program,
            script,
            loader_args,
        } => {
            let g = guest.spec();
            commands::try_bundle(&TryArgs {
                project: cli.project,
                target,
                target_file,
                bundle,
                loader,
                kernel: g.kernel,
                busybox: g.busybox,
                timeout_secs: timeout,
                duration_secs: duration,
                append: g.append,
                jit: g.jit,
                workload: g.workload,
                add,
                modules: g.modules,
                memory_mb: g.memory_mb,
                loader_args,
                serve,
                program,
                script,
                verbose: cli.verbose,
            })
        }
        Command::Verify { bundle, target } => commands::verify(&bundle, target.as_deref()),
        Command::Init {
            dir,
            name,
            boards,
            ci,
        } => {
            use ebpf_pack::templates::CiSystem;
            let systems = if ci.is_empty() {
                CiSystem::ALL.to_vec()
            } else {
                ci.iter()
                    .filter_map(|c| match c {
                        InitCi::Github => Some(CiSystem::Github),
                        InitCi::Gitlab => Some(CiSystem::Gitlab),
                        InitCi::None => None,
                    })
                    .collect()
            };
            ebpf_pack::scaffold::init(&ebpf_pack::scaffold::InitArgs {
                dir: if dir == std::path::Path::new(".") {
                    cli.project
                } else {
                    dir
                },
                name,
                boards,
                ci: systems,
            })
        }
        Command::Run {
            target,
            bundle,
            via,
            format,
            output,
            timestamps,
            interval,
            symbols,
            flamegraph,
            folded,
            guest,
            program,
            probes,
            loader_args,
        } => ebpf_pack::run_command::run(&ebpf_pack::run_command::RunArgs {
            project: cli.project,
            target,
            bundle,
            via,
            format: match format {
                RunFormatArg::Text => ebpf_pack::run_command::RunFormat::Text,
                RunFormatArg::Json => ebpf_pack::run_command::RunFormat::Json,
            },
            output,
            timestamps: match timestamps {
                None => ebpf_pack::render::Timestamps::Off,
                Some(TimestampsArg::Wall) => ebpf_pack::render::Timestamps::WallClock,
                Some(TimestampsArg::Relative) => ebpf_pack::render::Timestamps::Relative,
            },
            interval,
            guest: guest.spec(),
            program,
            probes,
            loader_args,
            symbols,
            flamegraph,
            folded,
            verbose: cli.verbose,
        }),
        Command::Ci { system, check } => ebpf_pack::scaffold::ci(&cli.project, system, check),
        Command::Headers { dir, arches } => ebpf_pack::scaffold::headers(&dir, &arches),
        Command::Deps { targets, install } => {
            ebpf_pack::deps::deps(&cli.project, &targets, install)
        }
        Command::YoctoTarget(args) => ebpf_pack::yocto::yocto_target(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure { code, message }) => {
            eprintln!("error: {message}");
            ExitCode::from(code)
        }
    }
}
