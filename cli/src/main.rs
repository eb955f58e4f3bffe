//! `ebpf-pack`: the command line. Reads flags, calls the library, prints errors and sets the exit code.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use ebpf_pack::commands::{self, BuildArgs, Failure};

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

const EXIT_CODES: &str = "Exit codes: 0 ok; 1 build or verification failed; 2 bad usage, project or target file; 3 a required tool is missing.";

#[derive(Subcommand, Debug)]
enum Command {
    /// List the known targets with their facts.
    Targets {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Compile the probes, build the loader, verify everything and write dist/<project>-<version>-<target>.tar.gz.
    Build {
        /// Target name (repeatable): a project's targets/NAME.yaml or a built-in target.
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
        /// Project name in the bundle's file name.
        #[arg(long, default_value = "ebpf-pack")]
        bundle_name: String,
        /// Version in the bundle's file name.
        #[arg(long, default_value = env!("CARGO_PKG_VERSION"))]
        bundle_version: String,
    },
    /// Re-check a bundle: layout, checksums, loader and objects against its target.
    Verify {
        /// The bundle (.tar.gz).
        bundle: PathBuf,
        /// Also require the bundle to be for this target.
        #[arg(long, value_name = "NAME")]
        target: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Targets { json } => commands::targets(&cli.project, json),
        Command::Build {
            targets,
            target_files,
            all,
            dry_run,
            loader,
            bundle_name,
            bundle_version,
        } => commands::build(&BuildArgs {
            project: cli.project,
            targets,
            target_files,
            all,
            dry_run,
            loader,
            bundle_name,
            bundle_version,
            verbose: cli.verbose,
        }),
        Command::Verify { bundle, target } => commands::verify(&bundle, target.as_deref()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure { code, message }) => {
            eprintln!("error: {message}");
            ExitCode::from(code)
        }
    }
}
