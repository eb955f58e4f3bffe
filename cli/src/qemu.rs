//! `ebpf-pack try`: boot a bundle in `qemu-system-<arch>` with a kernel of the board's kind. The guest's
//! initramfs, its `/init`, the QEMU command and the reading of the guest's result markers are pure; only
//! [`run_guest`] spawns QEMU, streams its console and enforces the timeout.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::arch::Arch;
use crate::initramfs::{Initramfs, InitramfsError, Node};
use crate::plan::{Cmd, shell_quote};
use crate::target::QemuOverrides;

/// Prefix of every line the guest's `/init` prints for the host to read.
pub const MARKER: &str = "@@ebpf-pack:";
/// Folder of the unpacked bundle inside the guest.
pub const GUEST_BUNDLE_DIR: &str = "bundle";
/// Folder of `--add` files inside the guest.
pub const GUEST_EXTRA_DIR: &str = "extra";
/// Folder of `--module` files inside the guest.
pub const GUEST_MODULE_DIR: &str = "modules";
/// The default workload: opens a uniquely named file, execs a uniquely placed program, makes a known
/// number of `sync(2)` calls, and prints what it did (with pids) as marker lines.
pub const DEFAULT_WORKLOAD: &str = include_str!("guest-workload.sh");

/// What to do with the kernel's BPF JIT (`net.core.bpf_jit_enable`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Jit {
    /// Leave the kernel's default.
    #[default]
    Default,
    /// Set it to 1.
    On,
    /// Set it to 0 (interpreter).
    Off,
}

/// The QEMU settings of one guest: the arch table's defaults with the target's `qemu:` overrides applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuSettings {
    /// The system emulator.
    pub binary: String,
    /// Debian package of the emulator (install hint).
    pub package: String,
    /// `-M` machine.
    pub machine: String,
    /// `-cpu` model, if any.
    pub cpu: Option<String>,
    /// Kernel console device.
    pub console: String,
}

/// Resolves the QEMU settings of `arch`, letting a target file override machine, cpu and console.
pub fn qemu_settings(arch: Arch, overrides: &QemuOverrides) -> QemuSettings {
    let q = arch.facts().qemu;
    QemuSettings {
        binary: q.binary.to_string(),
        package: q.package.to_string(),
        machine: overrides
            .machine
            .clone()
            .unwrap_or_else(|| q.machine.into()),
        cpu: overrides.cpu.clone().or(q.cpu.map(str::to_string)),
        console: overrides
            .console
            .clone()
            .unwrap_or_else(|| q.console.into()),
    }
}

/// Where a guest's console goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuestConsole {
    /// QEMU's stdio (`-nographic`): `try` reads the result markers from it.
    Stdio,
    /// A Unix socket QEMU serves (a chardev): a shell a transport can talk to.
    Socket(PathBuf),
}

/// The QEMU command line: no network, no display, no reboot (so `poweroff -f` or a panic ends QEMU).
pub fn qemu_command(
    settings: &QemuSettings,
    kernel: &Path,
    initrd: &Path,
    append: Option<&str>,
    memory_mb: u32,
    console: &GuestConsole,
) -> Cmd {
    let mut args: Vec<String> = vec!["-M".into(), settings.machine.clone()];
    if let Some(cpu) = &settings.cpu {
        args.extend(["-cpu".into(), cpu.clone()]);
    }
    let mut cmdline = format!(
        "console={} rdinit=/init panic=-1 quiet loglevel=3",
        settings.console
    );
    if let Some(extra) = append.filter(|a| !a.trim().is_empty()) {
        cmdline.push(' ');
        cmdline.push_str(extra.trim());
    }
    args.extend(["-m".into(), memory_mb.to_string()]);
    match console {
        GuestConsole::Stdio => args.push("-nographic".into()),
        GuestConsole::Socket(path) => {
            // The chardev serves the socket without waiting for a client; s390x's console is the
            // SCLP one, everything else the machine's first UART.
            args.extend([
                "-display".into(),
                "none".into(),
                "-monitor".into(),
                "none".into(),
                "-chardev".into(),
                format!(
                    "socket,id=console,path={},server=on,wait=off",
                    path.display()
                ),
            ]);
            if settings.console.starts_with("ttysclp") {
                args.extend([
                    "-serial".into(),
                    "none".into(),
                    "-device".into(),
                    "sclpconsole,chardev=console".into(),
                ]);
            } else {
                args.extend(["-serial".into(), "chardev:console".into()]);
            }
        }
    }
    args.extend([
        "-no-reboot".into(),
        "-nic".into(),
        "none".into(),
        "-kernel".into(),
        kernel.display().to_string(),
        "-initrd".into(),
        initrd.display().to_string(),
        "-append".into(),
        cmdline,
    ]);
    Cmd {
        program: settings.binary.clone(),
        args,
        env: Vec::new(),
        stdout_to: None,
    }
}

/// What the guest's `/init` does besides mounting the kernel's file systems.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InitOptions {
    /// Arguments of `ebpf-run` (probes, objects under `/extra/`, `--btf`...).
    pub loader_args: Vec<String>,
    /// Let `ebpf-run` run this long (its `--duration`); `None`: stop it once the workload is done.
    pub duration_secs: Option<u64>,
    /// JIT setting.
    pub jit: Jit,
    /// Kernel modules in `/modules/`, loaded with insmod in this order before ebpf-run starts.
    pub modules: Vec<String>,
    /// Instead of running the bundle: a shell on the console for a transport (`run --via qemu`,
    /// `try --serve`), with `/workload` repeated in the background every second.
    pub shell: bool,
}

/// The part of `/init` every guest shares: mounts, JIT, modules.
fn init_prelude(opts: &InitOptions) -> String {
    let jit = match opts.jit {
        Jit::Default => String::new(),
        Jit::On => "1".into(),
        Jit::Off => "0".into(),
    };
    let modules: Vec<String> = opts.modules.iter().map(|m| shell_quote(m)).collect();
    format!(
        r#"#!/bin/busybox sh
# /init of an `ebpf-pack try` guest (generated).
/bin/busybox mkdir -p /bin /sbin /usr/bin /usr/sbin /proc /sys /dev /tmp
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
M='{MARKER}'
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || echo "$M warning: no tracefs"
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t bpf bpf /sys/fs/bpf 2>/dev/null || echo "$M warning: no bpffs"
btf=no; [ -e /sys/kernel/btf/vmlinux ] && btf=yes
echo "$M guest machine=$(uname -m) kernel=$(uname -r) btf=$btf uptime=$(cut -d' ' -f1 /proc/uptime)"
JIT='{jit}'
if [ -n "$JIT" ]; then
  echo "$JIT" > /proc/sys/net/core/bpf_jit_enable 2>/dev/null || echo "$M warning: cannot set net.core.bpf_jit_enable=$JIT"
fi
echo "$M jit=$(cat /proc/sys/net/core/bpf_jit_enable 2>/dev/null || echo none)"
for m in {modules}; do
  if insmod "/{GUEST_MODULE_DIR}/$m"; then echo "$M module $m loaded"; else echo "$M warning: insmod $m failed"; fi
done
"#,
        modules = modules.join(" ")
    )
}

/// The guest's `/init` (busybox sh): mount proc, sysfs, devtmpfs, tracefs, debugfs and bpffs; set the JIT;
/// start `ebpf-run`, wait until it attached (or failed), run `/workload`, stop the loader, print its exit
/// status as `@@ebpf-pack: ebpf-run exit=N` and power off. With [`InitOptions::shell`]: a shell on the
/// console instead, and `/workload` in a loop.
pub fn init_script(opts: &InitOptions) -> String {
    let mut args: Vec<String> = opts.loader_args.iter().map(|a| shell_quote(a)).collect();
    if let Some(d) = opts.duration_secs {
        args.extend(["--duration".into(), d.to_string()]);
    }
    let stop = if opts.duration_secs.is_some() {
        "" // ebpf-run stops itself after --duration
    } else {
        "1"
    };
    let prelude = init_prelude(opts);
    if opts.shell {
        return format!(
            r#"{prelude}( while :; do /workload >/dev/null 2>&1; sleep 1; done ) &
echo "$M shell on the console"
cd /root
sh
poweroff -f
"#
        );
    }
    format!(
        r#"{prelude}cd /{GUEST_BUNDLE_DIR}
: > /tmp/ebpf-run.err
./ebpf-run {args} 2>/tmp/ebpf-run.err &
LOADER=$!
while kill -0 $LOADER 2>/dev/null && ! grep -q ' attached' /tmp/ebpf-run.err; do sleep 0.2; done
cat /tmp/ebpf-run.err
SEEN=$(wc -l < /tmp/ebpf-run.err)
if kill -0 $LOADER 2>/dev/null; then
  echo "$M workload begin uptime=$(cut -d' ' -f1 /proc/uptime)"
  /workload
  echo "$M workload end status=$?"
  if [ -n '{stop}' ]; then
    sleep 1
    kill -TERM $LOADER 2>/dev/null
  fi
fi
wait $LOADER
RC=$?
tail -n +$((SEEN + 1)) /tmp/ebpf-run.err
echo "$M ebpf-run exit=$RC uptime=$(cut -d' ' -f1 /proc/uptime)"
poweroff -f
"#,
        args = args.join(" "),
    )
}

/// Everything that goes into a guest's initramfs.
#[derive(Debug, Clone, Copy)]
pub struct GuestFiles<'a> {
    /// The static busybox for the guest's arch.
    pub busybox: &'a [u8],
    /// The bundle's files by bundle-relative path (as [`crate::bundle::VerifiedBundle::files`]).
    pub bundle: &'a BTreeMap<String, Vec<u8>>,
    /// Extra files by name, placed under `/extra/`.
    pub extra: &'a [(String, Vec<u8>)],
    /// Kernel modules by file name, placed under `/modules/`.
    pub modules: &'a [(String, Vec<u8>)],
    /// The `/workload` script.
    pub workload: &'a [u8],
    /// The `/init` script.
    pub init: &'a str,
}

/// Lays out the guest's root file system.
pub fn guest_initramfs(files: &GuestFiles<'_>) -> Result<Initramfs, InitramfsError> {
    let mut fs = Initramfs::new();
    fs.add_file("init", 0o755, files.init.as_bytes().to_vec())?;
    fs.add_file("workload", 0o755, files.workload.to_vec())?;
    fs.add_file("bin/busybox", 0o755, files.busybox.to_vec())?;
    fs.add("bin/sh", Node::Symlink("busybox".into()))?;
    for dir in ["proc", "sys", "dev", "tmp", "etc", "root"] {
        fs.add(dir, Node::Dir)?;
    }
    for (path, data) in files.bundle {
        let mode = if path == ebpf_pack_manifest::LOADER_FILE {
            0o755
        } else {
            0o644
        };
        fs.add_file(&format!("{GUEST_BUNDLE_DIR}/{path}"), mode, data.clone())?;
    }
    for (name, data) in files.extra {
        fs.add_file(&format!("{GUEST_EXTRA_DIR}/{name}"), 0o644, data.clone())?;
    }
    for (name, data) in files.modules {
        fs.add_file(&format!("{GUEST_MODULE_DIR}/{name}"), 0o644, data.clone())?;
    }
    Ok(fs)
}

/// The loader's exit status the guest reported (`@@ebpf-pack: ebpf-run exit=N`), if it got that far.
pub fn loader_exit(console: &str) -> Option<i32> {
    console.lines().rev().find_map(|line| {
        let rest = line.trim_end_matches('\r').split_once(MARKER)?.1;
        rest.trim()
            .strip_prefix("ebpf-run exit=")?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    })
}

/// The last `lines` lines of a console log.
pub fn console_tail(console: &str, lines: usize) -> String {
    let all: Vec<&str> = console.lines().collect();
    let start = all.len().saturating_sub(lines);
    all[start..]
        .iter()
        .map(|l| l.trim_end_matches('\r'))
        .collect::<Vec<_>>()
        .join("\n")
}

/// How a guest run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuestEnd {
    /// QEMU exited by itself with this status (`None`: killed by a signal).
    Exited(Option<i32>),
    /// The timeout passed; QEMU was killed.
    TimedOut,
}

/// A finished guest run.
#[derive(Debug, Clone)]
pub struct GuestRun {
    /// How it ended.
    pub end: GuestEnd,
    /// Everything the guest wrote on its console.
    pub console: String,
    /// QEMU's own stderr.
    pub stderr: String,
    /// Wall time from start to end.
    pub elapsed: Duration,
}

/// Why QEMU could not run at all.
#[derive(Debug, thiserror::Error)]
#[error("cannot start `{argv}`: {error}")]
pub struct QemuError {
    /// The command line.
    pub argv: String,
    /// The error.
    pub error: std::io::Error,
}

/// Runs QEMU, copying the guest's console to `echo` as it comes, and kills it after `timeout`.
pub fn run_guest(
    cmd: &Cmd,
    timeout: Duration,
    echo: Box<dyn Write + Send>,
) -> Result<GuestRun, QemuError> {
    let start = Instant::now();
    let mut child = Command::new(&cmd.program)
        .args(&cmd.args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| QemuError {
            argv: cmd.shell_line(),
            error,
        })?;
    let console = Arc::new(Mutex::new(Vec::new()));
    let stdout = child.stdout.take().map(|pipe| {
        let console = Arc::clone(&console);
        std::thread::spawn(move || copy_stream(pipe, console, Some(echo)))
    });
    let stderr_buf = Arc::new(Mutex::new(Vec::new()));
    let stderr = child.stderr.take().map(|pipe| {
        let buf = Arc::clone(&stderr_buf);
        std::thread::spawn(move || copy_stream(pipe, buf, None))
    });
    let end = loop {
        match child.try_wait() {
            Ok(Some(status)) => break GuestEnd::Exited(status.code()),
            Ok(None) if start.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                break GuestEnd::TimedOut;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().ok().and_then(|s| s.code());
                break GuestEnd::Exited(status);
            }
        }
    };
    // QEMU is gone, so its pipes are closed and the readers end.
    for reader in [stdout, stderr].into_iter().flatten() {
        let _ = reader.join();
    }
    let text = |buf: &Arc<Mutex<Vec<u8>>>| {
        let bytes = buf.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    Ok(GuestRun {
        end,
        console: text(&console),
        stderr: text(&stderr_buf),
        elapsed: start.elapsed(),
    })
}

/// A guest booted with a shell on a console socket ([`GuestConsole::Socket`]); killed when dropped.
pub struct ShellGuest {
    child: std::process::Child,
    socket: PathBuf,
    name: String,
    stderr: Arc<Mutex<Vec<u8>>>,
    remove_socket: bool,
}

/// Where QEMU serves the console of a shell guest while it boots; renamed to the socket a transport
/// connects to once the shell is up ([`ShellGuest::start`]).
pub fn boot_socket(socket: &Path) -> PathBuf {
    let mut name = socket.as_os_str().to_owned();
    name.push(".boot");
    PathBuf::from(name)
}

/// How long a shell guest may take to boot under TCG (slow CI runners included).
const SHELL_BOOT_TIMEOUT: Duration = Duration::from_secs(300);

impl ShellGuest {
    /// Starts `cmd` (a [`qemu_command`] with [`GuestConsole::Socket`] at [`boot_socket`]`(socket)`),
    /// watches the console until the guest's shell is up, then moves the socket to `socket`. Nothing
    /// reaches the guest's UART while it boots: QEMU's PL011 raises its receive interrupt only when a
    /// byte arrives, and input that arrives while Linux sets the UART up can leave it never raised
    /// again (the shell then never hears a thing). `remove_socket`: delete it when the guest ends.
    pub fn start(
        cmd: &Cmd,
        socket: &Path,
        name: String,
        remove_socket: bool,
    ) -> Result<ShellGuest, QemuError> {
        let booting = boot_socket(socket);
        let _ = std::fs::remove_file(socket);
        let _ = std::fs::remove_file(&booting);
        let mut command = Command::new(&cmd.program);
        command
            .args(&cmd.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // SAFETY: the closure runs in the forked child before exec and only calls prctl(2), which is
        // async-signal-safe. The guest dies with the process that booted it, even on SIGKILL.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut command, || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
                Ok(())
            });
        }
        let mut child = command.spawn().map_err(|error| QemuError {
            argv: cmd.shell_line(),
            error,
        })?;
        let stderr = Arc::new(Mutex::new(Vec::new()));
        if let Some(pipe) = child.stderr.take() {
            let buf = Arc::clone(&stderr);
            std::thread::spawn(move || copy_stream(pipe, buf, None));
        }
        let mut guest = ShellGuest {
            child,
            socket: socket.to_path_buf(),
            name,
            stderr,
            remove_socket,
        };
        let fail = |guest: &ShellGuest, what: String| QemuError {
            argv: cmd.shell_line(),
            error: std::io::Error::other(format!("{what}: {}", guest.qemu_stderr().trim())),
        };
        let start = Instant::now();
        while !booting.exists() {
            let gone = matches!(guest.child.try_wait(), Ok(Some(_)) | Err(_));
            if gone || start.elapsed() > Duration::from_secs(20) {
                let _ = std::fs::remove_file(&booting);
                return Err(fail(
                    &guest,
                    format!("QEMU served no console socket {}", booting.display()),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut boot_log = Vec::new();
        let up = guest.wait_for_shell(&booting, &mut boot_log, start + SHELL_BOOT_TIMEOUT);
        if !up {
            let _ = std::fs::remove_file(&booting);
            let text = String::from_utf8_lossy(&boot_log);
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(15)..];
            return Err(fail(
                &guest,
                format!(
                    "the guest's shell did not come up within {} s; its console printed:\n    {}\n  QEMU",
                    SHELL_BOOT_TIMEOUT.as_secs(),
                    tail.join("\n    ")
                ),
            ));
        }
        std::fs::rename(&booting, socket).map_err(|e| {
            fail(
                &guest,
                format!(
                    "cannot move {} to {}: {e}",
                    booting.display(),
                    socket.display()
                ),
            )
        })?;
        Ok(guest)
    }

    /// Reads the console at `booting` (without writing to it) until the init says the shell starts,
    /// QEMU ends, or `deadline` passes; true when the shell is up.
    fn wait_for_shell(&mut self, booting: &Path, log: &mut Vec<u8>, deadline: Instant) -> bool {
        let Ok(mut conn) = std::os::unix::net::UnixStream::connect(booting) else {
            return false;
        };
        let _ = conn.set_read_timeout(Some(Duration::from_millis(200)));
        let ready = format!("{MARKER} shell on the console");
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_)) | Err(_)) {
                return false;
            }
            match conn.read(&mut buf) {
                Ok(0) => return false,
                Ok(n) => {
                    log.extend_from_slice(&buf[..n]);
                    let from = log.len().saturating_sub(n + ready.len());
                    if log[from..]
                        .windows(ready.len())
                        .any(|w| w == ready.as_bytes())
                    {
                        return true;
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::Interrupted
                    ) => {}
                Err(_) => return false,
            }
        }
        false
    }

    /// The socket of the guest's console.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// How the guest is named in messages.
    pub fn describe(&self) -> String {
        self.name.clone()
    }

    /// What QEMU wrote on its stderr so far.
    pub fn qemu_stderr(&self) -> String {
        let bytes = self.stderr.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Waits until the guest powers off (its QEMU exit status), or until `stop` is set (`None`).
    pub fn wait_or(&mut self, stop: &std::sync::atomic::AtomicBool) -> Option<i32> {
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return status.code(),
                Ok(None) if stop.load(std::sync::atomic::Ordering::SeqCst) => return None,
                Ok(None) => std::thread::sleep(Duration::from_millis(100)),
                Err(_) => return None,
            }
        }
    }
}

impl Drop for ShellGuest {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if self.remove_socket {
            let _ = std::fs::remove_file(&self.socket);
        }
    }
}

fn copy_stream(
    mut from: impl Read,
    into: Arc<Mutex<Vec<u8>>>,
    mut echo: Option<Box<dyn Write + Send>>,
) {
    let mut chunk = [0u8; 4096];
    loop {
        match from.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if let Some(out) = echo.as_mut() {
                    let _ = out.write_all(&chunk[..n]);
                    let _ = out.flush();
                }
                if let Ok(mut buf) = into.lock() {
                    buf.extend_from_slice(&chunk[..n]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
