//! How `ebpf-pack run` reaches a board: a transport that runs a POSIX shell script there with the
//! bytes it is given on stdin, streams the script's stdout back and reports its exit status. The board
//! needs only a shell, `tar`, `gzip` and `sha256sum` (busybox has them all).
//!
//! - `local`: this machine (`sh -c`), for development and tests;
//! - `ssh USER@HOST` / `ssh://USER@HOST[:PORT]`: the system's OpenSSH client, so `~/.ssh/config`,
//!   agents, jump hosts and ControlMaster work as usual; `EBPF_PACK_SSH` names another ssh program
//!   (a wrapper adding `-F FILE`, `sshpass`, ...). Data goes over the channel's stdin: no scp/sftp
//!   needed on the board (dropbear boards often have neither).
//!
//! The scripts themselves (`board_*`) are pure text, tested without a board.

use std::process::{Command, Stdio};

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
}

/// A `--via` value that names no transport.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--via `{value}`: {problem}\n  help: {help}")]
pub struct ViaError {
    value: String,
    problem: String,
    help: String,
}

const VIA_HELP: &str = "use `local`, `ssh USER@HOST` or `ssh://USER@HOST:PORT`";

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
        if v.starts_with("serial:") || v.starts_with("adb") {
            return Err(err(
                "this ebpf-pack has no serial or adb transport yet",
                "use ssh or local; the serial console transport is planned (README: ebpf-pack run)",
            ));
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
        }
    }

    /// The command that runs `script` on the board with piped stdin, stdout and stderr.
    pub fn command(&self, script: &str) -> Command {
        let mut cmd = match self {
            Transport::Local => {
                let mut c = Command::new("sh");
                c.arg("-c").arg(script);
                c
            }
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
        cmd
    }

    /// Whether an exit status is the transport's own failure rather than the script's (ssh: 255).
    pub fn is_transport_failure(&self, code: Option<i32>) -> bool {
        matches!(self, Transport::Ssh { .. }) && code == Some(255)
    }
}

/// Folders a board keeps bundles in, first writable one wins: persistent, then /tmp for read-only roots.
pub const BOARD_CACHE_DIRS: &[&str] = &["/var/cache/ebpf-pack", "/tmp/ebpf-pack"];

/// Script: prints `machine=`, `uid=`, `dir=` (first writable cache folder) and `have=yes|no` (the
/// bundle with this SHA-256 is already unpacked there).
pub fn board_probe(sha: &str) -> String {
    format!(
        "machine=$(uname -m); echo \"machine=$machine\"; echo \"uid=$(id -u)\"\n\
         for d in {dirs}; do\n\
         \x20 if mkdir -p \"$d\" 2>/dev/null && [ -w \"$d\" ]; then echo \"dir=$d\"; \
         if [ -f \"$d/{sha}/.complete\" ]; then echo have=yes; else echo have=no; fi; exit 0; fi\n\
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

/// Script: runs the unpacked bundle's `ebpf-run ARGS` in its folder and exits with its status. The
/// loader stops (SIGTERM: it detaches and prints its final map dump) when the script's stdin closes —
/// the host pressed Ctrl-C, or the connection dropped — so no orphan keeps programs attached. (Not
/// SIGINT: a non-interactive shell starts background jobs with SIGINT ignored.)
pub fn board_run(dir: &str, sha: &str, stem: &str, args: &[String]) -> String {
    let top = shell_quote(&format!("{dir}/{sha}/{stem}"));
    let argv: Vec<String> = args.iter().map(|a| shell_quote(a)).collect();
    // No subshell: the stdin reader is a direct child, killed when the loader ends, so nothing is left
    // on the board holding the connection's pipes (the session ends with the loader).
    format!(
        "cd {top} || exit 96\n\
         exec 3<&0\n\
         ./ebpf-run {argv} </dev/null &\n\
         loader=$!\n\
         cat <&3 >/dev/null 2>&1 &\n\
         reader=$!\n\
         exec 3<&-\n\
         while kill -0 $loader 2>/dev/null; do\n\
         \x20 if ! kill -0 $reader 2>/dev/null; then kill -TERM $loader 2>/dev/null; break; fi\n\
         \x20 sleep 0.2 2>/dev/null || sleep 1\n\
         done\n\
         wait $loader\n\
         status=$?\n\
         kill $reader 2>/dev/null\n\
         exit $status\n",
        argv = argv.join(" ")
    )
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
        let serial = Transport::parse("serial:/dev/ttyUSB0").expect_err("not yet");
        assert!(serial.to_string().contains("no serial"), "{serial}");
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
            ),
        ] {
            let out = Command::new("sh")
                .args(["-n", "-c", &script])
                .output()
                .expect("sh");
            assert!(
                out.status.success(),
                "{script}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    #[test]
    fn run_script_quotes_arguments() {
        let s = board_run(
            "/tmp/ebpf-pack",
            "ab12",
            "p-1-x",
            &["--set".into(), "comm=a b".into()],
        );
        assert!(
            s.contains("./ebpf-run --set 'comm=a b' </dev/null &"),
            "{s}"
        );
    }
}
