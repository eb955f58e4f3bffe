//! How `ebpf-pack run` reaches a board: a transport that runs a POSIX shell script there with the
//! bytes it is given on stdin, streams the script's stdout back and reports its exit status. The board
//! needs only a shell, `tar`, `gzip` and `sha256sum` (busybox has them all).
//!
//! - `local`: this machine (`sh -c`), for development and tests;
//! - `ssh USER@HOST` / `ssh://USER@HOST[:PORT]`: the system's OpenSSH client, so `~/.ssh/config`,
//!   agents, jump hosts and ControlMaster work as usual; `EBPF_PACK_SSH` names another ssh program
//!   (a wrapper adding `-F FILE`, `sshpass`, ...). Data goes over the channel's stdin: no scp/sftp
//!   needed on the board (dropbear boards often have neither);
//! - `adb` / `adb:SERIAL`: `adb shell -T`, the same protocol as ssh (unverified: no device here);
//! - `serial:DEVICE[@BAUD]`, `serial:unix:PATH`, `serial:tcp:HOST:PORT`: a shell on a console
//!   ([`crate::console`]);
//! - `qemu` / `qemu:KERNEL`: a QEMU guest of the bundle's arch, booted for the run with a shell on
//!   its serial console (the guest code of `ebpf-pack try`).
//!
//! A connected [`Board`] runs short scripts, takes a bundle and runs the loader, whatever the
//! transport. The scripts themselves (`board_*`) are pure text, tested without a board.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::commands::{EXIT_FAILED, Failure, failure};
use crate::console::SerialSpec;
use crate::plan::shell_quote;

/// A way to run commands on the board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// This machine.
    Local,
    /// OpenSSH to `destination` (`USER@HOST` or `HOST`), optionally on `port`.
    Ssh {
        /// `USER@HOST`.
        destination: String,
        /// `-p PORT`.
        port: Option<u16>,
    },
    /// `adb shell`, to the one device or to `-s SERIAL`.
    Adb {
        /// `-s SERIAL`.
        serial: Option<String>,
    },
    /// A shell on a console.
    Serial(SerialSpec),
    /// A QEMU guest booted for the run, with this kernel (default: the provisioned one).
    Qemu {
        /// The guest kernel image.
        kernel: Option<PathBuf>,
    },
}

/// A `--via` value that names no transport.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--via `{value}`: {problem}\n  help: {help}")]
pub struct ViaError {
    value: String,
    problem: String,
    help: String,
}

const VIA_HELP: &str = "use `local`, `ssh USER@HOST`, `ssh://USER@HOST:PORT`, `serial:/dev/ttyUSB0[@BAUD]`, `serial:unix:PATH`, `serial:tcp:HOST:PORT`, `adb[:SERIAL]` or `qemu[:KERNEL]`";

impl Transport {
    /// Parses `--via`: `local`, `ssh USER@HOST`, `ssh:USER@HOST`, `ssh://USER@HOST[:PORT]`.
    pub fn parse(value: &str) -> Result<Transport, ViaError> {
        let err = |problem: &str, help: &str| ViaError {
            value: value.into(),
            problem: problem.into(),
            help: help.into(),
        };
        let v = value.trim();
        if v == "local" {
            return Ok(Transport::Local);
        }
        if let Some(rest) = v.strip_prefix("serial:") {
            return SerialSpec::parse(rest)
                .map(Transport::Serial)
                .map_err(|p| err(&p, VIA_HELP));
        }
        if v == "adb" {
            return Ok(Transport::Adb { serial: None });
        }
        if let Some(serial) = v.strip_prefix("adb:") {
            if serial.is_empty() || serial.starts_with('-') || serial.contains(char::is_whitespace)
            {
                return Err(err("names no device serial", VIA_HELP));
            }
            return Ok(Transport::Adb {
                serial: Some(serial.into()),
            });
        }
        if v == "qemu" {
            return Ok(Transport::Qemu { kernel: None });
        }
        if let Some(kernel) = v.strip_prefix("qemu:") {
            if kernel.is_empty() {
                return Err(err("names no kernel image", VIA_HELP));
            }
            return Ok(Transport::Qemu {
                kernel: Some(kernel.into()),
            });
        }
        let rest = if let Some(r) = v.strip_prefix("ssh://") {
            r
        } else if let Some(r) = v.strip_prefix("ssh ").or_else(|| v.strip_prefix("ssh:")) {
            r.trim()
        } else {
            return Err(err("is not a transport", VIA_HELP));
        };
        let (destination, port) = match rest.rsplit_once(':') {
            Some((d, p)) if v.starts_with("ssh://") => {
                let port =
                    p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
                        err(&format!("port `{p}` is not a port number"), VIA_HELP)
                    })?;
                (d, Some(port))
            }
            _ => (rest, None),
        };
        let host = destination.rsplit('@').next().unwrap_or_default();
        if host.is_empty()
            || destination.starts_with('-')
            || destination.contains(|c: char| c.is_whitespace() || c == '/')
        {
            return Err(err("names no host", VIA_HELP));
        }
        Ok(Transport::Ssh {
            destination: destination.into(),
            port,
        })
    }

    /// How the board is named in messages.
    pub fn describe(&self) -> String {
        match self {
            Transport::Local => "this machine".into(),
            Transport::Ssh {
                destination,
                port: None,
            } => destination.clone(),
            Transport::Ssh {
                destination,
                port: Some(p),
            } => format!("{destination}:{p}"),
            Transport::Adb { serial: None } => "the adb device".into(),
            Transport::Adb { serial: Some(s) } => format!("adb device {s}"),
            Transport::Serial(spec) => spec.describe(),
            Transport::Qemu { .. } => "the QEMU guest".into(),
        }
    }

    /// The command that runs `script` on the board with piped stdin, stdout and stderr, for the
    /// transports that are one process per script (`None` for consoles).
    pub fn command(&self, script: &str) -> Option<Command> {
        let mut cmd = match self {
            Transport::Local => {
                let mut c = Command::new("sh");
                c.arg("-c").arg(script);
                c
            }
            Transport::Adb { serial } => {
                let mut c = Command::new("adb");
                if let Some(s) = serial {
                    c.arg("-s").arg(s);
                }
                // -T: no pty, so stdin carries the bundle and the exit status comes back.
                c.args(["shell", "-T"])
                    .arg(format!("sh -c {}", shell_quote(script)));
                c
            }
            Transport::Serial(_) | Transport::Qemu { .. } => return None,
            Transport::Ssh { destination, port } => {
                let program = std::env::var("EBPF_PACK_SSH").unwrap_or_else(|_| "ssh".into());
                let mut c = Command::new(program);
                // No password prompts in the middle of a run: keys, agents or the user's config.
                c.args(["-o", "BatchMode=yes", "-T"]);
                if let Some(p) = port {
                    c.arg("-p").arg(p.to_string());
                }
                // sshd hands the string to the user's login shell; `sh -c` pins a POSIX one.
                c.arg(destination)
                    .arg("--")
                    .arg(format!("sh -c {}", shell_quote(script)));
                c
            }
        };
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        Some(cmd)
    }

    /// Whether an exit status is the transport's own failure rather than the script's (ssh: 255).
    pub fn is_transport_failure(&self, code: Option<i32>) -> bool {
        matches!(self, Transport::Ssh { .. }) && code == Some(255)
    }
}

/// Folders a board keeps bundles in, first writable one wins: persistent, then /tmp for read-only roots.
pub const BOARD_CACHE_DIRS: &[&str] = &["/var/cache/ebpf-pack", "/tmp/ebpf-pack"];

/// Script: prints `machine=`, `uid=`, `dir=` (first writable cache folder), `have=yes|no` (the
/// bundle with this SHA-256 is already unpacked there) and `free=` (KiB available there, if `df` says).
pub fn board_probe(sha: &str) -> String {
    format!(
        "machine=$(uname -m); echo \"machine=$machine\"; echo \"uid=$(id -u)\"\n\
         for d in {dirs}; do\n\
         \x20 if mkdir -p \"$d\" 2>/dev/null && [ -w \"$d\" ]; then echo \"dir=$d\"; \
         if [ -f \"$d/{sha}/.complete\" ]; then echo have=yes; else echo have=no; fi; \
         echo \"free=$(df -kP \"$d\" 2>/dev/null | awk 'NR==2 {{print $4}}')\"; exit 0; fi\n\
         done\n\
         echo 'dir='; exit 0\n",
        dirs = BOARD_CACHE_DIRS.join(" ")
    )
}

/// Script: reads the bundle from stdin into `dir`, checks its SHA-256, unpacks it into `dir/SHA/` and
/// marks it complete; anything partial is removed. Old bundles in `dir` are removed first (one per board).
pub fn board_push(dir: &str, sha: &str) -> String {
    let d = shell_quote(dir);
    // Temporary names carry the shell's pid, so two pushes to one board do not write one file.
    format!(
        "set -e\n\
         cd {d}\n\
         for old in *; do case \"$old\" in '*'|{sha}|*.partial.*|*.tar.gz.*) ;; *) rm -rf \"./$old\";; esac; done\n\
         part={sha}.partial.$$; file={sha}.tar.gz.$$\n\
         trap 'rm -rf \"$part\" \"$file\"' EXIT\n\
         cat > \"$file\"\n\
         got=$(sha256sum \"$file\" | cut -d' ' -f1)\n\
         if [ \"$got\" != {sha} ]; then echo \"ebpf-pack: bundle arrived damaged (sha256 $got)\" >&2; exit 97; fi\n\
         mkdir \"$part\"\n\
         gzip -dc \"$file\" | tar -xf - -C \"$part\"\n\
         : > \"$part/.complete\"\n\
         if [ -f {sha}/.complete ]; then exit 0; fi\n\
         rm -rf {sha}\n\
         mv \"$part\" {sha}\n"
    )
}

/// How the board-side run script learns that the host is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostWatch {
    /// Its stdin closes (ssh, local, adb: the channel ends with the host).
    StdinCloses,
    /// Its stdin (a console, which never closes) carries `:` lines every couple of seconds; any other
    /// line (`: STOP`, or a new session looking for the shell) stops the loader, and so does silence
    /// for this many seconds: the host is gone.
    Keepalive(u32),
}

/// Script: runs the unpacked bundle's `ebpf-run ARGS` in its folder and exits with its status. The
/// loader stops (SIGTERM: it detaches and prints its final map dump) when the host is gone or asks
/// (see [`HostWatch`]) — Ctrl-C on the host, or a dropped connection — so no orphan keeps programs
/// attached. (Not SIGINT: a non-interactive shell starts background jobs with SIGINT ignored.)
pub fn board_run(dir: &str, sha: &str, stem: &str, args: &[String], watch: HostWatch) -> String {
    let top = shell_quote(&format!("{dir}/{sha}/{stem}"));
    let argv: Vec<String> = args.iter().map(|a| shell_quote(a)).collect();
    // No subshell around the loader: the stdin reader is a direct child, killed when the loader
    // ends, so nothing is left on the board holding the connection's pipes.
    let (reader, silence) = match watch {
        HostWatch::StdinCloses => ("cat <&3 >/dev/null 2>&1 &".to_string(), String::new()),
        HostWatch::Keepalive(secs) => (
            "( while IFS= read -r l && [ \"$l\" = : ]; do : > .alive.$$; done ) <&3 &".to_string(),
            format!(
                "\x20 if [ -e .alive.$$ ]; then rm -f .alive.$$; quiet=0; else quiet=$((quiet + 1)); fi\n\
                 \x20 if [ $quiet -gt {ticks} ]; then echo 'ebpf-pack: the host went silent: stopping ebpf-run' >&2; kill -TERM $loader 2>/dev/null; break; fi\n",
                ticks = secs * 5
            ),
        ),
    };
    format!(
        "cd {top} || exit 96\n\
         exec 3<&0\n\
         ./ebpf-run {argv} </dev/null &\n\
         loader=$!\n\
         {reader}\n\
         reader=$!\n\
         exec 3<&-\n\
         quiet=0\n\
         while kill -0 $loader 2>/dev/null; do\n\
         \x20 if ! kill -0 $reader 2>/dev/null; then kill -TERM $loader 2>/dev/null; break; fi\n\
         {silence}\
         \x20 sleep 0.2 2>/dev/null || sleep 1\n\
         done\n\
         wait $loader\n\
         status=$?\n\
         kill $reader 2>/dev/null\n\
         rm -f .alive.$$\n\
         exit $status\n",
        argv = argv.join(" ")
    )
}

/// How a loader run on the board ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    /// The board-side script exited with this status (the loader's).
    Exited(i32),
    /// The transport itself was killed by a signal.
    Killed,
}

/// A board reached through a transport: short scripts, a bundle push, and the loader's run.
pub trait Board {
    /// How the board is named in messages.
    fn describe(&self) -> String;
    /// Runs a short script to its end; its stdout, or a failure naming `what`.
    fn script(&mut self, script: &str, what: &str) -> Result<String, Failure>;
    /// Puts `bytes` (SHA-256 `sha`) unpacked into `dir/SHA/` on the board.
    fn push(&mut self, dir: &str, sha: &str, bytes: &[u8]) -> Result<(), Failure>;
    /// How [`board_run`] must watch for the host on this transport.
    fn host_watch(&self) -> HostWatch;
    /// Runs a [`board_run`] script, calling `on_line` for each stdout line as it comes (stderr and
    /// console noise go to this process's stderr); `stop` asks the board to stop the loader.
    fn run(
        &mut self,
        script: &str,
        stop: &AtomicBool,
        on_line: &mut dyn FnMut(&str),
    ) -> Result<RunEnd, Failure>;
}

/// A board reached by one process per script: local, ssh, adb.
pub struct CommandBoard {
    transport: Transport,
}

impl CommandBoard {
    /// For a transport with [`Transport::command`].
    pub fn new(transport: Transport) -> CommandBoard {
        CommandBoard { transport }
    }

    fn spawn(&self, script: &str, what: &str) -> Result<std::process::Child, Failure> {
        let mut cmd = self
            .transport
            .command(script)
            .ok_or_else(|| failure(EXIT_FAILED, format!("{what}: not a command transport")))?;
        // Its own process group: a Ctrl-C in the terminal reaches only us, and we stop the board's
        // loader through the transport instead of killing the connection under it.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        cmd.spawn().map_err(|e| {
            failure(
                EXIT_FAILED,
                format!(
                    "{what}: cannot start the transport: {e}\n  help: is `{}` installed{}?",
                    match self.transport {
                        Transport::Adb { .. } => "adb",
                        Transport::Local => "sh",
                        _ => "ssh",
                    },
                    if matches!(self.transport, Transport::Ssh { .. }) {
                        " (EBPF_PACK_SSH names another)"
                    } else {
                        ""
                    }
                ),
            )
        })
    }

    fn unreachable(&self, stderr: &str) -> Failure {
        let d = self.transport.describe();
        let help = if stderr.contains("Permission denied") {
            format!(
                "the board refused the login: `ssh {d}` must work without a password prompt (keys or an agent; BatchMode is on)"
            )
        } else if stderr.contains("Could not resolve")
            || stderr.contains("No route")
            || stderr.contains("Connection refused")
            || stderr.contains("timed out")
        {
            format!("is {d} up, and its ssh server listening? (`ssh {d} true` shows the same)")
        } else {
            format!(
                "check that `ssh {d} true` works without a password prompt (keys or an agent; BatchMode is on)"
            )
        };
        failure(
            EXIT_FAILED,
            format!("cannot reach {d}: {stderr}\n  help: {help}"),
        )
    }

    /// Runs `script` feeding `input`; returns stdout, or a message with stderr.
    fn script_with_input(
        &mut self,
        script: &str,
        input: &[u8],
        what: &str,
    ) -> Result<String, Failure> {
        let mut child = self.spawn(script, what)?;
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
        if self.transport.is_transport_failure(out.status.code()) {
            return Err(self.unreachable(&stderr));
        }
        if !out.status.success() {
            let code = out.status.code().unwrap_or(-1);
            return Err(failure(
                EXIT_FAILED,
                format!(
                    "{what} on {}: {}\n{stderr}{}",
                    self.transport.describe(),
                    out.status,
                    script_status_help(code)
                ),
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// A hint for the exit statuses of the board scripts.
pub fn script_status_help(code: i32) -> &'static str {
    match code {
        94 => {
            "\n  help: the board has no space left for the bundle: free some, or mount a tmpfs on /var/cache/ebpf-pack"
        }
        95 => "\n  help: the board lacks a tool the push needs (busybox provides them all)",
        96 => "\n  help: the bundle's folder on the board is gone: run again to push it",
        97 => "\n  help: the bundle was damaged on the way: run again",
        _ => "",
    }
}

impl Board for CommandBoard {
    fn describe(&self) -> String {
        self.transport.describe()
    }

    fn script(&mut self, script: &str, what: &str) -> Result<String, Failure> {
        self.script_with_input(script, b"", what)
    }

    fn push(&mut self, dir: &str, sha: &str, bytes: &[u8]) -> Result<(), Failure> {
        self.script_with_input(&board_push(dir, sha), bytes, "pushing the bundle")
            .map(drop)
    }

    fn host_watch(&self) -> HostWatch {
        HostWatch::StdinCloses
    }

    fn run(
        &mut self,
        script: &str,
        stop: &AtomicBool,
        on_line: &mut dyn FnMut(&str),
    ) -> Result<RunEnd, Failure> {
        let mut child = self.spawn(script, "running ebpf-run")?;
        let stdin = Arc::new(Mutex::new(child.stdin.take()));
        let finished = Arc::new(AtomicBool::new(false));
        std::thread::scope(|s| {
            let stopper = {
                let stdin = Arc::clone(&stdin);
                let finished = Arc::clone(&finished);
                s.spawn(move || {
                    while !finished.load(Ordering::SeqCst) {
                        if stop.load(Ordering::SeqCst) {
                            // Closing the board script's stdin makes it stop the loader (SIGTERM there).
                            drop(stdin.lock().map(|mut s| s.take()));
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(50));
                    }
                })
            };
            let stderr = child.stderr.take();
            let stderr_thread = s.spawn(move || {
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
            if let Some(out) = child.stdout.take() {
                let mut reader = BufReader::new(out);
                let mut line = String::new();
                loop {
                    line.clear();
                    match reader.read_line(&mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => on_line(line.trim_end_matches('\n')),
                    }
                }
            }
            let status = child.wait();
            finished.store(true, Ordering::SeqCst);
            let _ = stopper.join();
            let errors = stderr_thread.join().unwrap_or_default();
            let status = status.map_err(|e| failure(EXIT_FAILED, format!("transport: {e}")))?;
            if self.transport.is_transport_failure(status.code()) {
                return Err(failure(
                    EXIT_FAILED,
                    format!(
                        "the connection to {} broke: {}\n  (the board-side script stops ebpf-run when its input goes away)",
                        self.transport.describe(),
                        errors.trim()
                    ),
                ));
            }
            Ok(match status.code() {
                Some(code) => RunEnd::Exited(code),
                None => RunEnd::Killed,
            })
        })
    }
}

/// Test helper: `sh -n` parses `script` without running it; every board script must pass.
#[cfg(test)]
pub(crate) fn assert_posix_sh(script: &str) {
    let out = Command::new("sh")
        .args(["-n", "-c", script])
        .output()
        .expect("sh");
    assert!(
        out.status.success(),
        "{script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_values() {
        assert_eq!(Transport::parse("local"), Ok(Transport::Local));
        assert_eq!(
            Transport::parse("ssh root@bb"),
            Ok(Transport::Ssh {
                destination: "root@bb".into(),
                port: None
            })
        );
        assert_eq!(
            Transport::parse("ssh://root@10.0.0.2:2222"),
            Ok(Transport::Ssh {
                destination: "root@10.0.0.2".into(),
                port: Some(2222)
            })
        );
        assert_eq!(
            Transport::parse("ssh:board"),
            Ok(Transport::Ssh {
                destination: "board".into(),
                port: None
            })
        );
        for bad in [
            "ssh",
            "ssh://root@bb:0",
            "ssh://root@bb:x",
            "ssh -oProxyCommand=x",
            "telnet bb",
            "ssh root@",
        ] {
            assert!(Transport::parse(bad).is_err(), "{bad}");
        }
        assert!(matches!(
            Transport::parse("serial:unix:/tmp/g.sock"),
            Ok(Transport::Serial(_))
        ));
        assert_eq!(
            Transport::parse("adb:emulator-5554"),
            Ok(Transport::Adb {
                serial: Some("emulator-5554".into())
            })
        );
        assert_eq!(
            Transport::parse("qemu"),
            Ok(Transport::Qemu { kernel: None })
        );
        for bad in ["serial:ttyUSB0", "adb:", "adb:-x", "qemu:"] {
            let e = Transport::parse(bad).expect_err(bad);
            assert!(e.to_string().contains("help: use `local`"), "{e}");
        }
    }

    #[test]
    fn scripts_are_posix_shell() {
        // `sh -n` parses without running: every script must be valid for a board's shell.
        for script in [
            board_probe("ab12"),
            board_push("/var/cache/ebpf-pack", "ab12"),
            board_run(
                "/tmp/ebpf-pack",
                "ab12",
                "p-1-x",
                &["opensnoop".into(), "it's".into()],
                HostWatch::StdinCloses,
            ),
            board_run(
                "/tmp/ebpf-pack",
                "ab12",
                "p-1-x",
                &["opensnoop".into()],
                HostWatch::Keepalive(10),
            ),
        ] {
            assert_posix_sh(&script);
        }
    }

    #[test]
    fn run_script_quotes_arguments() {
        let s = board_run(
            "/tmp/ebpf-pack",
            "ab12",
            "p-1-x",
            &["--set".into(), "comm=a b".into()],
            HostWatch::StdinCloses,
        );
        assert!(
            s.contains("./ebpf-run --set 'comm=a b' </dev/null &"),
            "{s}"
        );
    }
}
