//! `ebpf-pack run`: build (or take) a bundle, make sure the board holds exactly it (by SHA-256, pushed
//! only when missing), run its `ebpf-run --format json` there over a transport, and render the stream
//! on the host. Ctrl-C stops the board's loader through the transport (its final map dump still
//! arrives); a dropped connection stops it too (the board-side script watches its stdin).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::arch::Arch;
use crate::bundle::{sha256_hex, verify_bundle};
use crate::commands::{
    BuildArgs, EXIT_BAD_INPUT, EXIT_FAILED, Failure, build_bundles, failure, loose_probe,
};
use crate::console::{Console, ConsoleBoard, Endpoint, SerialSpec};
use crate::live::{LiveView, Screen};
use crate::render::{Arrival, Renderer, Timestamps};
use crate::transport::{Board, CommandBoard, RunEnd, Transport, board_probe, board_run};
use crate::try_command::{GuestSpec, boot_shell_guest};

/// Output of `run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunFormat {
    /// Aligned tables per record type.
    Text,
    /// ebpf-run's JSON lines as they come.
    Json,
}

/// Arguments of `ebpf-pack run`.
#[derive(Debug, Clone)]
pub struct RunArgs {
    /// Project directory.
    pub project: PathBuf,
    /// Target to build the bundle for.
    pub target: Option<String>,
    /// A bundle to run instead of building one.
    pub bundle: Option<PathBuf>,
    /// How to reach the board.
    pub via: String,
    /// Output format.
    pub format: RunFormat,
    /// Also record ebpf-run's JSON lines here.
    pub output: Option<PathBuf>,
    /// `-e PROGRAM`: a bpftrace program compiled for the target and run.
    pub program: Option<String>,
    /// What to run: probe names of the bundle, and loose `FILE.bpf.c` / `FILE.bpf.o` / `FILE.bt`
    /// built into a bundle of the target for this run; empty: every probe.
    pub probes: Vec<String>,
    /// Arguments of ebpf-run (--duration, --set ...).
    pub loader_args: Vec<String>,
    /// A time column in text output.
    pub timestamps: Timestamps,
    /// Dump the maps every this many seconds: a live view on a terminal, plain lines otherwise.
    pub interval: Option<u64>,
    /// The guest of `--via qemu` (kernel, busybox, JIT, workload...).
    pub guest: GuestSpec,
    /// Folders holding the unstripped binaries (or debug files) of what runs on the board, for naming
    /// user frames of stacks (`profile`).
    pub symbols: Vec<PathBuf>,
    /// Write the run's stacks as a flame graph (SVG) here.
    pub flamegraph: Option<PathBuf>,
    /// Write the run's stacks as folded stacks here.
    pub folded: Option<PathBuf>,
    /// Echo build commands.
    pub verbose: bool,
}

/// Set by SIGINT/SIGTERM: stop the board's loader.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// What the board said before anything was pushed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardFacts {
    /// `uname -m`.
    pub machine: String,
    /// `id -u`.
    pub uid: u32,
    /// The writable cache folder, if any.
    pub dir: Option<String>,
    /// The bundle is already unpacked there.
    pub has_bundle: bool,
    /// KiB free there, when the board's `df` said.
    pub free_kib: Option<u64>,
}

/// Parses the `key=value` lines of [`board_probe`].
pub fn parse_board_facts(text: &str) -> Option<BoardFacts> {
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(str::trim)
    };
    Some(BoardFacts {
        machine: get("machine")?.to_string(),
        uid: get("uid")?.parse().ok()?,
        dir: get("dir").filter(|d| !d.is_empty()).map(str::to_string),
        has_bundle: get("have") == Some("yes"),
        free_kib: get("free").and_then(|f| f.parse().ok()),
    })
}

/// Connects to the board of `transport`; `arch` and `overrides` pick a QEMU guest's kind.
fn connect(
    transport: &Transport,
    args: &RunArgs,
    arch: Arch,
    target: &str,
    overrides: &crate::target::QemuOverrides,
) -> Result<Box<dyn Board>, Failure> {
    match transport {
        Transport::Serial(spec) => {
            let console = Console::open(spec).map_err(|e| failure(EXIT_FAILED, e))?;
            Ok(Box::new(ConsoleBoard::attach(
                console,
                None,
                Duration::from_secs(30),
            )?))
        }
        Transport::Qemu { kernel } => {
            let mut spec = args.guest.clone();
            if kernel.is_some() {
                spec.kernel.clone_from(kernel);
            }
            let project = args
                .project
                .canonicalize()
                .unwrap_or_else(|_| args.project.clone());
            let work = project.join("build").join(target).join("try");
            let socket = std::env::temp_dir()
                .join(format!("ebpf-pack-{}-{target}.sock", std::process::id()));
            let guest = boot_shell_guest(arch, overrides, &spec, &work, &socket, true)?;
            let console = Console::open(&SerialSpec {
                endpoint: Endpoint::Unix(socket),
                baud: None,
            })
            .map_err(|e| failure(EXIT_FAILED, e))?;
            // The guest's shell is up already (boot_shell_guest waited for it).
            Ok(Box::new(ConsoleBoard::attach(
                console,
                Some(guest),
                Duration::from_secs(60),
            )?))
        }
        other => Ok(Box::new(CommandBoard::new(other.clone()))),
    }
}

/// `ebpf-pack run`.
pub fn run(args: &RunArgs) -> Result<(), Failure> {
    let transport = Transport::parse(&args.via).map_err(|e| failure(EXIT_BAD_INPUT, e))?;
    // Probes to run by name; loose files become probes of a bundle built for this run.
    let mut loose = Vec::new();
    let mut names = Vec::new();
    // A bpftrace program (-e, or a .bt file): compiled for the target into a loose probe.
    let mut scripts: Vec<(String, String, String)> = Vec::new();
    if let Some(text) = &args.program {
        scripts.push(("-e".into(), text.clone(), "oneliner".into()));
    }
    for item in args.probes.iter().filter(|p| p.ends_with(".bt")) {
        let text = std::fs::read_to_string(item)
            .map_err(|e| failure(EXIT_BAD_INPUT, format!("{item}: cannot read: {e}")))?;
        let stem = Path::new(item)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("script")
            .replace(|c: char| !c.is_ascii_alphanumeric(), "_");
        scripts.push((item.clone(), text, stem));
    }
    if scripts.len() > 1 {
        return Err(failure(
            EXIT_BAD_INPUT,
            "one bpftrace program per run\n  help: give -e PROGRAM or one FILE.bt",
        ));
    }
    let mut oneliner = None;
    if let Some((shown, text, name)) = scripts.into_iter().next() {
        let Some(target) = &args.target else {
            return Err(failure(
                EXIT_BAD_INPUT,
                "a bpftrace program is compiled for a target\n  help: pass --target NAME",
            ));
        };
        let project =
            crate::project::Project::open(&args.project).map_err(|e| failure(EXIT_BAD_INPUT, e))?;
        let t = project
            .target(target)
            .map_err(|e| failure(EXIT_BAD_INPUT, e))?;
        let dir = project.root.join("build").join(target).join("oneliner");
        let compiled = crate::oneliners::compile_to(&text, &shown, &name, t.arch, &dir)
            .map_err(|e| failure(EXIT_BAD_INPUT, e))?;
        loose.push(compiled.source.clone());
        names.push(compiled.name.clone());
        oneliner = Some(compiled);
    }
    for item in args.probes.iter().filter(|p| !p.ends_with(".bt")) {
        if item.ends_with(".bpf.c") || item.ends_with(".bpf.o") || item.contains('/') {
            let file = PathBuf::from(item);
            let (name, _) = loose_probe(&file).map_err(|e| failure(EXIT_BAD_INPUT, e))?;
            loose.push(file);
            names.push(name);
        } else {
            names.push(item.clone());
        }
    }
    if !loose.is_empty() && args.bundle.is_some() {
        return Err(failure(
            EXIT_BAD_INPUT,
            "loose probes are built into a bundle for the board, but --bundle runs one as it is\n  help: pass --target NAME instead of --bundle",
        ));
    }
    // 1. The bundle: built for the target (fast when nothing changed), or given.
    let path = match &args.bundle {
        Some(b) => b.clone(),
        None => {
            let Some(target) = &args.target else {
                return Err(failure(
                    EXIT_BAD_INPUT,
                    "no target given\n  help: pass --target NAME or --bundle FILE",
                ));
            };
            // With loose probes: a bundle of its own (`NAME-run`), so dist/'s bundle stays the project's.
            let bundle_name = if loose.is_empty() {
                None
            } else {
                let project = crate::project::Project::open(&args.project)
                    .map_err(|e| failure(EXIT_BAD_INPUT, e))?;
                Some(format!("{}-run", project.bundle_name()))
            };
            let built = build_bundles(&BuildArgs {
                project: args.project.clone(),
                targets: vec![target.clone()],
                target_files: Vec::new(),
                all: false,
                dry_run: false,
                loader: None,
                bundle_name,
                bundle_version: None,
                single: false,
                loader_std: crate::commands::LoaderStd::Auto,
                verbose: args.verbose,
                quiet: true,
                loose: loose.clone(),
            })
            .map_err(|f| {
                // clang refusing a one-liner's C is said at the one-liner's statement.
                match oneliner
                    .as_ref()
                    .and_then(|ol| ol.located_clang_error(&f.message))
                {
                    Some(located) => failure(EXIT_BAD_INPUT, located),
                    None => f,
                }
            })?;
            built
                .into_iter()
                .next()
                .map(|(_, p)| p)
                .ok_or_else(|| failure(EXIT_FAILED, "the build wrote no bundle"))?
        }
    };
    let bytes = std::fs::read(&path).map_err(|e| {
        failure(
            EXIT_BAD_INPUT,
            format!("{}: cannot read: {e}", path.display()),
        )
    })?;
    let shown = path.display().to_string();
    let verified = verify_bundle(&shown, &bytes, args.target.as_deref())
        .map_err(|e| failure(EXIT_FAILED, format!("refusing to run: {e}")))?;
    let sha = sha256_hex(&bytes);
    let arch = Arch::from_name(&verified.manifest.target.arch).ok_or_else(|| {
        failure(
            EXIT_FAILED,
            format!("{shown}: unknown arch in its manifest"),
        )
    })?;

    // 2. The board: its arch, privilege, a folder to keep the bundle in.
    let overrides = match &args.target {
        Some(name) => crate::project::Project::open(&args.project)
            .and_then(|p| p.target(name))
            .map(|t| t.qemu)
            .unwrap_or_default(),
        None => Default::default(),
    };
    let mut board = connect(
        &transport,
        args,
        arch,
        &verified.manifest.target.name,
        &overrides,
    )?;
    let probe_out = board.script(&board_probe(&sha), "looking at the board")?;
    let facts = parse_board_facts(&probe_out).ok_or_else(|| {
        failure(
            EXIT_FAILED,
            format!(
                "{} answered something else than its facts:\n{probe_out}\n  help: the login shell must be POSIX sh compatible and print nothing itself",
                board.describe()
            ),
        )
    })?;
    if !arch
        .facts()
        .uname_machines
        .contains(&facts.machine.as_str())
    {
        return Err(failure(
            EXIT_BAD_INPUT,
            format!(
                "{} is a `{}` machine, but {shown} is for target {} (arch {arch})\n  help: build for the board's arch: ebpf-pack targets lists them",
                board.describe(),
                facts.machine,
                verified.manifest.target.name
            ),
        ));
    }
    if facts.uid != 0 {
        return Err(failure(
            EXIT_FAILED,
            format!(
                "{} logs in as uid {}; ebpf-run loads BPF programs and needs root there\n  help: use root@HOST",
                board.describe(),
                facts.uid
            ),
        ));
    }
    let Some(dir) = facts.dir else {
        return Err(failure(
            EXIT_FAILED,
            format!(
                "{} has no writable folder for the bundle ({})\n  help: make one of them writable, or free space",
                board.describe(),
                crate::transport::BOARD_CACHE_DIRS.join(", ")
            ),
        ));
    };

    // 3. The exact bundle on the board: pushed only when it is not there yet.
    if facts.has_bundle {
        eprintln!(
            "ebpf-pack: {} already holds {} (sha256 {})",
            board.describe(),
            verified.stem,
            &sha[..12]
        );
    } else {
        let unpacked: usize = verified.files.values().map(Vec::len).sum();
        let needed_kib = (bytes.len() + unpacked) as u64 / 1024 + 64;
        if let Some(free) = facts.free_kib.filter(|f| *f < needed_kib) {
            return Err(failure(
                EXIT_FAILED,
                format!(
                    "{} has {free} KiB free in {dir}; the bundle needs about {needed_kib} KiB there\n  help: free space on the board, or mount a tmpfs on {}",
                    board.describe(),
                    crate::transport::BOARD_CACHE_DIRS[0]
                ),
            ));
        }
        let start = Instant::now();
        board.push(&dir, &sha, &bytes)?;
        eprintln!(
            "ebpf-pack: pushed {} ({} bytes) to {}:{dir} in {:.1} s",
            verified.stem,
            bytes.len(),
            board.describe(),
            start.elapsed().as_secs_f64()
        );
    }

    // 4. Run it, stream and render.
    let mut loader_args = vec!["--format".to_string(), "json".to_string()];
    // A one-liner's interval probe runs at ebpf-run's interval dumps.
    let program_interval = oneliner
        .as_ref()
        .and_then(|o| o.layout.interval.as_ref())
        .map(|iv| iv.secs);
    match (args.interval, program_interval) {
        (Some(a), Some(b)) if a != b => {
            return Err(failure(
                EXIT_BAD_INPUT,
                format!(
                    "--interval {a} and the program's interval:s:{b} disagree\n  help: give one of them"
                ),
            ));
        }
        (Some(secs), _) | (None, Some(secs)) => {
            loader_args.extend(["--interval".to_string(), secs.to_string()]);
        }
        (None, None) => {}
    }
    let single_probe = names.len() == 1;
    loader_args.extend(names);
    loader_args.extend(args.loader_args.iter().cloned());
    let script = board_run(&dir, &sha, &verified.stem, &loader_args, board.host_watch());
    let mut record = match &args.output {
        Some(p) => Some(
            std::fs::File::create(p)
                .map_err(|e| failure(EXIT_BAD_INPUT, format!("--output {}: {e}", p.display())))?,
        ),
        None => None,
    };
    STOP.store(false, Ordering::SeqCst);
    // SAFETY: installing a handler that only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(
            libc::SIGINT,
            on_stop_signal as *const () as libc::sighandler_t,
        );
        libc::signal(
            libc::SIGTERM,
            on_stop_signal as *const () as libc::sighandler_t,
        );
    }
    let mut renderer = Renderer::for_arch(arch)
        .with_timestamps(args.timestamps)
        .with_single_probe(single_probe)
        .with_symbol_dirs(args.symbols.clone());
    let wants_stacks = args.flamegraph.is_some() || args.folded.is_some();
    for dir in &args.symbols {
        if !dir.is_dir() {
            return Err(failure(
                EXIT_BAD_INPUT,
                format!(
                    "--symbols {}: not a folder\n  help: name the folder holding the unstripped binaries (a sysroot, a build's output)",
                    dir.display()
                ),
            ));
        }
    }
    let started = Instant::now();
    let stdout = std::io::stdout();
    // A live view when maps are dumped every --interval into a terminal; plain lines otherwise.
    let mut live = match args.interval {
        Some(secs) if args.format == RunFormat::Text && stdout.is_terminal() => {
            let view = LiveView::new(
                format!("{} on {}", verified.stem, board.describe()),
                secs,
                started,
            );
            Screen::enter().ok().map(|screen| (view, screen))
        }
        _ => None,
    };
    // A bpftrace program's map entries, printed as bpftrace prints them when the dump ends.
    let mut held_entries = Vec::new();
    let mut on_line = |text: &str| {
        if let Some(f) = record.as_mut() {
            let _ = writeln!(f, "{text}");
        }
        // A one-liner prints as bpftrace: its text, or its JSON lines with --format json (ebpf-run's
        // own lines are what --output records).
        if let Some(ol) = oneliner.as_ref() {
            let json = args.format == RunFormat::Json;
            if let Some(printed) = crate::oneliners::printf_text(&ol.layout, &ol.name, text) {
                let mut lock = stdout.lock();
                let _ = write!(lock, "{}", crate::oneliners::printed(&printed.text, json));
                let _ = lock.flush();
                // exit() in a probe: the run ends as at Ctrl-C, its maps and END printed.
                if printed.exits {
                    STOP.store(true, Ordering::SeqCst);
                }
                return;
            }
            if let Some(entry) =
                crate::oneliners::map_entry(&ol.layout, &ol.name, text, renderer.stacks_mut())
            {
                held_entries.push(entry);
                return;
            }
            if text.starts_with("{\"dump\":") {
                let exit = text.contains("\"exit\"");
                let shown = match ol.layout.interval.as_ref().filter(|_| !exit) {
                    // Once exit() (or Ctrl-C) stopped the run, only its exit dump prints.
                    Some(_) if STOP.load(Ordering::SeqCst) => String::new(),
                    // The interval probe decides what an interval dump prints.
                    Some(iv) => {
                        crate::oneliners::interval_text(&ol.layout, iv, &held_entries, &STOP, json)
                    }
                    // END's lines come before the maps it ends with, as bpftrace prints them.
                    None => {
                        let mut shown = if exit {
                            crate::oneliners::printed(&ol.layout.end, json)
                        } else {
                            String::new()
                        };
                        shown.push_str(&crate::oneliners::maps_text(
                            &ol.layout,
                            &held_entries,
                            json,
                        ));
                        shown
                    }
                };
                held_entries.clear();
                let mut lock = stdout.lock();
                let _ = write!(lock, "{shown}");
                let _ = lock.flush();
                return;
            }
            // The printf ring buffer's `printed`/`lost` summary: ebpf-run says it on stderr too.
            if crate::oneliners::is_printf_summary(&ol.name, text) {
                return;
            }
        }
        if let Some((view, screen)) = live.as_mut() {
            let lines = renderer.line_at(text, Arrival::now(started));
            if view.take(renderer.last_kind(), lines, Instant::now()) {
                let _ = screen.draw(view);
            }
            return;
        }
        let mut lock = stdout.lock();
        match args.format {
            RunFormat::Json => {
                let _ = writeln!(lock, "{text}");
                if wants_stacks {
                    renderer.line_at(text, Arrival::now(started));
                }
            }
            RunFormat::Text => {
                for l in renderer.line_at(text, Arrival::now(started)) {
                    let _ = writeln!(lock, "{l}");
                }
            }
        }
        let _ = lock.flush();
    };
    // BEGIN's lines, as the run starts (after bpftrace's `attached_probes` line in JSON).
    if let Some(ol) = oneliner.as_ref() {
        let json = args.format == RunFormat::Json;
        let mut lock = stdout.lock();
        if json {
            let _ = write!(lock, "{}", crate::oneliners::attached_json(&ol.layout));
        }
        let _ = write!(
            lock,
            "{}",
            crate::oneliners::printed(&ol.layout.begin, json)
        );
        let _ = lock.flush();
    }
    let end = board.run(&script, &STOP, &mut on_line);
    // SAFETY: restoring the default dispositions.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_DFL);
        libc::signal(libc::SIGTERM, libc::SIG_DFL);
    }
    if let Some((view, screen)) = live {
        drop(screen);
        let mut lock = stdout.lock();
        for l in view.final_lines() {
            let _ = writeln!(lock, "{l}");
        }
        let _ = lock.flush();
    }
    let held = renderer.finish();
    if args.format == RunFormat::Text {
        let mut lock = stdout.lock();
        for l in held {
            let _ = writeln!(lock, "{l}");
        }
        let _ = lock.flush();
    }
    write_stack_files(args, renderer.stacks(), &verified.stem, &board.describe())?;
    match end? {
        RunEnd::Exited(0) => Ok(()),
        RunEnd::Exited(code) => Err(Failure {
            code: u8::try_from(code).unwrap_or(EXIT_FAILED),
            message: format!("ebpf-run on {} exited with {code}", board.describe()),
        }),
        RunEnd::Killed => Err(failure(
            EXIT_FAILED,
            format!("the transport to {} was killed", board.describe()),
        )),
    }
}

/// Writes `--folded` and `--flamegraph` from the run's stacks, each whole or not at all.
fn write_stack_files(
    args: &RunArgs,
    stacks: &crate::stacks::Stacks,
    stem: &str,
    board: &str,
) -> Result<(), Failure> {
    if let Some(path) = &args.folded {
        write_whole(path, &stacks.folded_text(), "--folded")?;
        eprintln!(
            "ebpf-pack: {} stacks written to {}",
            stacks.totals().len(),
            path.display()
        );
    }
    if let Some(path) = &args.flamegraph {
        let mut graph = crate::flamegraph::FlameGraph::new();
        for (stack, n) in stacks.totals() {
            graph.add(stack, *n);
        }
        if graph.samples() == 0 {
            eprintln!(
                "ebpf-pack: warning: no stacks were sampled; {} is an empty flame graph\n  help: run a probe whose map keys hold stacks (profile), long enough to sample",
                path.display()
            );
        }
        let svg = graph.svg(&format!("{stem} on {board}"));
        write_whole(path, &svg, "--flamegraph")?;
        eprintln!(
            "ebpf-pack: flame graph of {} samples written to {}",
            graph.samples(),
            path.display()
        );
    }
    Ok(())
}

/// Writes `text` to `path` whole (a temporary file renamed into place).
fn write_whole(path: &std::path::Path, text: &str, option: &str) -> Result<(), Failure> {
    crate::scaffold::write_atomically(path, text).map_err(|e| {
        failure(
            EXIT_BAD_INPUT,
            format!("{option} {}: cannot write: {e}", path.display()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn board_facts() {
        let f = parse_board_facts("machine=armv7l\nuid=0\ndir=/tmp/ebpf-pack\nhave=no\nfree=\n")
            .expect("facts");
        assert_eq!(
            f,
            BoardFacts {
                machine: "armv7l".into(),
                uid: 0,
                dir: Some("/tmp/ebpf-pack".into()),
                has_bundle: false,
                free_kib: None,
            }
        );
        assert_eq!(
            parse_board_facts("machine=x\nuid=0\ndir=\n")
                .expect("facts")
                .dir,
            None
        );
        assert!(parse_board_facts("Welcome to the board!\n").is_none());
    }
}
