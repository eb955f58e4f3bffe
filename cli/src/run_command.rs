//! `ebpf-pack run`: build (or take) a bundle, make sure the board holds exactly it (by SHA-256, pushed
//! only when missing), run its `ebpf-run --format json` there over a transport, and render the stream
//! on the host. Ctrl-C stops the board's loader through the transport (its final map dump still
//! arrives); a dropped connection stops it too (the board-side script watches its stdin).

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::arch::Arch;
use crate::bundle::{sha256_hex, verify_bundle};
use crate::commands::{BuildArgs, EXIT_BAD_INPUT, EXIT_FAILED, Failure, build_bundles, failure};
use crate::render::Renderer;
use crate::transport::{Transport, board_probe, board_push, board_run};

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
    /// Arguments of ebpf-run (probes, --duration, --set ...).
    pub loader_args: Vec<String>,
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
    })
}

/// Runs a short script on the board, feeding `input`; returns stdout, or a message with stderr.
fn run_script(
    transport: &Transport,
    script: &str,
    input: &[u8],
    what: &str,
) -> Result<String, Failure> {
    let mut child = transport.command(script).spawn().map_err(|e| {
        failure(
            EXIT_FAILED,
            format!("{what}: cannot start the transport: {e}\n  help: is `ssh` installed (EBPF_PACK_SSH names another)?"),
        )
    })?;
    let mut stdin = child.stdin.take();
    let data = input.to_vec();
    let writer = std::thread::spawn(move || {
        if let Some(s) = stdin.as_mut() {
            let _ = s.write_all(&data);
        }
        drop(stdin);
    });
    let out = child
        .wait_with_output()
        .map_err(|e| failure(EXIT_FAILED, format!("{what}: {e}")))?;
    let _ = writer.join();
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if transport.is_transport_failure(out.status.code()) {
        return Err(failure(
            EXIT_FAILED,
            format!(
                "cannot reach {}: {stderr}\n  help: check that `ssh {}` works without a password prompt (keys or an agent; BatchMode is on)",
                transport.describe(),
                transport.describe()
            ),
        ));
    }
    if !out.status.success() {
        return Err(failure(
            EXIT_FAILED,
            format!(
                "{what} on {}: {}\n{stderr}",
                transport.describe(),
                out.status
            ),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `ebpf-pack run`.
pub fn run(args: &RunArgs) -> Result<(), Failure> {
    let transport = Transport::parse(&args.via).map_err(|e| failure(EXIT_BAD_INPUT, e))?;
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
            let built = build_bundles(&BuildArgs {
                project: args.project.clone(),
                targets: vec![target.clone()],
                target_files: Vec::new(),
                all: false,
                dry_run: false,
                loader: None,
                bundle_name: None,
                bundle_version: None,
                single: false,
                min_size: false,
                verbose: args.verbose,
                quiet: true,
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
    let probe_out = run_script(&transport, &board_probe(&sha), b"", "looking at the board")?;
    let facts = parse_board_facts(&probe_out).ok_or_else(|| {
        failure(
            EXIT_FAILED,
            format!(
                "{} answered something else than its facts:\n{probe_out}\n  help: the login shell must be POSIX sh compatible and print nothing itself",
                transport.describe()
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
                transport.describe(),
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
                transport.describe(),
                facts.uid
            ),
        ));
    }
    let Some(dir) = facts.dir else {
        return Err(failure(
            EXIT_FAILED,
            format!(
                "{} has no writable folder for the bundle ({})\n  help: make one of them writable, or free space",
                transport.describe(),
                crate::transport::BOARD_CACHE_DIRS.join(", ")
            ),
        ));
    };

    // 3. The exact bundle on the board: pushed only when it is not there yet.
    if facts.has_bundle {
        eprintln!(
            "ebpf-pack: {} already holds {} (sha256 {})",
            transport.describe(),
            verified.stem,
            &sha[..12]
        );
    } else {
        let start = Instant::now();
        run_script(
            &transport,
            &board_push(&dir, &sha),
            &bytes,
            "pushing the bundle",
        )?;
        eprintln!(
            "ebpf-pack: pushed {} ({} bytes) to {}:{dir} in {:.1} s",
            verified.stem,
            bytes.len(),
            transport.describe(),
            start.elapsed().as_secs_f64()
        );
    }

    // 4. Run it, stream and render.
    let mut loader_args = vec!["--format".to_string(), "json".to_string()];
    loader_args.extend(args.loader_args.iter().cloned());
    let mut cmd = transport.command(&board_run(&dir, &sha, &verified.stem, &loader_args));
    // Its own process group: a Ctrl-C in the terminal reaches only us, and we stop the board's
    // loader through the transport instead of killing the connection under it.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child: Child = cmd
        .spawn()
        .map_err(|e| failure(EXIT_FAILED, format!("cannot start the transport: {e}")))?;
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
    let stdin = Arc::new(Mutex::new(child.stdin.take()));
    let finished = Arc::new(AtomicBool::new(false));
    let stopper = {
        let stdin = Arc::clone(&stdin);
        let finished = Arc::clone(&finished);
        std::thread::spawn(move || {
            while !finished.load(Ordering::SeqCst) {
                if STOP.load(Ordering::SeqCst) {
                    // Closing the board script's stdin makes it stop the loader (SIGTERM there).
                    drop(stdin.lock().map(|mut s| s.take()));
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let stderr = child.stderr.take();
    let stderr_thread = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(e) = stderr {
            for line in BufReader::new(e).lines().map_while(Result::ok) {
                eprintln!("{line}");
                text.push_str(&line);
                text.push('\n');
            }
        }
        text
    });
    let mut record = match &args.output {
        Some(p) => Some(
            std::fs::File::create(p)
                .map_err(|e| failure(EXIT_BAD_INPUT, format!("--output {}: {e}", p.display())))?,
        ),
        None => None,
    };
    let mut renderer = Renderer::for_arch(arch);
    let stdout = std::io::stdout();
    if let Some(out) = child.stdout.take() {
        let mut reader = BufReader::new(out);
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let text = line.trim_end_matches('\n');
            if let Some(f) = record.as_mut() {
                let _ = writeln!(f, "{text}");
            }
            let mut lock = stdout.lock();
            match args.format {
                RunFormat::Json => {
                    let _ = writeln!(lock, "{text}");
                }
                RunFormat::Text => {
                    for l in renderer.line(text) {
                        let _ = writeln!(lock, "{l}");
                    }
                }
            }
            let _ = lock.flush();
        }
    }
    let status = child
        .wait()
        .map_err(|e| failure(EXIT_FAILED, format!("transport: {e}")))?;
    finished.store(true, Ordering::SeqCst);
    let _ = stopper.join();
    let errors = stderr_thread.join().unwrap_or_default();
    // SAFETY: restoring the default dispositions.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_DFL);
        libc::signal(libc::SIGTERM, libc::SIG_DFL);
    }
    if transport.is_transport_failure(status.code()) {
        return Err(failure(
            EXIT_FAILED,
            format!(
                "the connection to {} broke: {}\n  (the board-side script stops ebpf-run when its input goes away)",
                transport.describe(),
                errors.trim()
            ),
        ));
    }
    match status.code() {
        Some(0) => Ok(()),
        Some(code) => Err(Failure {
            code: u8::try_from(code).unwrap_or(EXIT_FAILED),
            message: format!("ebpf-run on {} exited with {code}", transport.describe()),
        }),
        None => Err(failure(
            EXIT_FAILED,
            format!(
                "the transport to {} was killed ({status})",
                transport.describe()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn board_facts() {
        let f = parse_board_facts("machine=armv7l\nuid=0\ndir=/tmp/ebpf-pack\nhave=no\n")
            .expect("facts");
        assert_eq!(
            f,
            BoardFacts {
                machine: "armv7l".into(),
                uid: 0,
                dir: Some("/tmp/ebpf-pack".into()),
                has_bundle: false
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
