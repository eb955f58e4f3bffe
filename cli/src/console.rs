//! A shell on a board's console — a UART (`/dev/ttyUSB0`), a QEMU chardev socket or a ser2net TCP
//! port — driven as a transport of `ebpf-pack run`. A console is one byte stream that carries our
//! commands, the shell's answers, the kernel's log and whatever else the board prints, so:
//!
//! - the shell is found by a sentinel the command line cannot contain (`$((N+0))` evaluates to a
//!   number the echoed command does not hold), after an optional `login:`/`Password:` exchange;
//! - every line a script prints reaches the host as a frame `~EP:<len>:<payload>~`, framed on the board
//!   by a `printf` loop (shell builtins only). A kernel message printed into the middle of a frame is cut
//!   out again from the length and the end mark ([`Deframer`]); anything unframed is console noise;
//! - a script's end is a frame `EPEXIT <nonce> <status>`;
//! - the bundle goes as base64 lines of [`CHUNK`] bytes, each with its SHA-256, acknowledged one by
//!   one (stop-and-wait: nothing overruns a UART without flow control, and canonical tty lines stay
//!   under 4095 bytes); a damaged line is sent again, and an interrupted push resumes where it stopped;
//! - a running loader is kept alive by `:` lines (a shell no-op) every [`KEEPALIVE`] and stopped by
//!   `: STOP`; when the host goes away the board notices the silence and stops the loader itself.
//!
//! The framing and the scripts are pure and unit-tested; [`Console`] does the I/O.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::{Duration, Instant};

use std::sync::atomic::{AtomicBool, Ordering};

use crate::commands::{EXIT_FAILED, Failure, failure};
use crate::plan::shell_quote;
use crate::transport::{Board, HostWatch, RunEnd};

/// Start of a frame.
pub const FRAME_MARK: &str = "~EP:";
/// End of a frame's payload.
pub const FRAME_END: char = '~';
/// Bytes of bundle per pushed line: 4,000 base64 characters, a line under the tty's 4,095-byte limit.
pub const CHUNK: usize = 3000;
/// How often the host tells a running loader it is still there.
pub const KEEPALIVE: Duration = Duration::from_secs(2);
/// Silence after which the board stops a running loader: the host is gone.
pub const BOARD_SILENCE_SECS: u32 = 10;
/// Baud rate of a device when `--via` names none.
pub const DEFAULT_BAUD: u32 = 115_200;

/// Where a console is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A serial device (`/dev/ttyUSB0`), opened at a baud rate.
    Device(PathBuf),
    /// A Unix socket (QEMU `-chardev socket,path=...`).
    Unix(PathBuf),
    /// A TCP port (`ser2net`, QEMU `-chardev socket,host=...,port=...`).
    Tcp(String),
}

/// A `serial:` transport: the endpoint and its baud rate. On sockets the rate paces what the host sends,
/// to measure or mimic a real UART; without one they go as fast as the other end reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerialSpec {
    /// Where.
    pub endpoint: Endpoint,
    /// Bits per second.
    pub baud: Option<u32>,
}

impl SerialSpec {
    /// Parses what follows `serial:` — `/dev/ttyUSB0[@BAUD]`, `unix:PATH[@BAUD]`, `tcp:HOST:PORT[@BAUD]`.
    pub fn parse(rest: &str) -> Result<SerialSpec, String> {
        let (place, baud) = match rest.rsplit_once('@') {
            Some((p, b)) if !b.is_empty() && b.bytes().all(|c| c.is_ascii_digit()) => {
                let baud = b
                    .parse::<u32>()
                    .ok()
                    .filter(|b| *b >= 300)
                    .ok_or_else(|| format!("baud rate `{b}` is not one"))?;
                (p, Some(baud))
            }
            _ => (rest, None),
        };
        let endpoint = if let Some(path) = place.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("names no socket path".into());
            }
            Endpoint::Unix(path.into())
        } else if let Some(addr) = place.strip_prefix("tcp:") {
            match addr.rsplit_once(':') {
                Some((host, port))
                    if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) =>
                {
                    Endpoint::Tcp(addr.into())
                }
                _ => return Err(format!("`{addr}` is not HOST:PORT")),
            }
        } else if place.starts_with('/') {
            Endpoint::Device(place.into())
        } else {
            return Err("names no device (/dev/...), unix:PATH or tcp:HOST:PORT".into());
        };
        let baud = match endpoint {
            Endpoint::Device(_) => Some(baud.unwrap_or(DEFAULT_BAUD)),
            _ => baud,
        };
        Ok(SerialSpec { endpoint, baud })
    }

    /// How the console is named in messages.
    pub fn describe(&self) -> String {
        let place = match &self.endpoint {
            Endpoint::Device(p) => p.display().to_string(),
            Endpoint::Unix(p) => format!("unix:{}", p.display()),
            Endpoint::Tcp(a) => format!("tcp:{a}"),
        };
        match self.baud {
            Some(b) => format!("serial:{place}@{b}"),
            None => format!("serial:{place}"),
        }
    }
}

/// What went wrong on a console.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// The endpoint could not be opened.
    #[error("cannot open {console}: {error}\n  help: {help}")]
    Open {
        /// The console.
        console: String,
        /// Why.
        error: String,
        /// What to do.
        help: String,
    },
    /// No shell answered.
    #[error(
        "no shell prompt on {console} after {secs} s{seen}\n  help: the console must end at a shell (busybox sh is enough); if it asks for a login, set EBPF_PACK_SERIAL_USER and EBPF_PACK_SERIAL_PASSWORD"
    )]
    NoShell {
        /// The console.
        console: String,
        /// How long we tried.
        secs: u64,
        /// The console's last lines, introduced, or empty.
        seen: String,
    },
    /// The login was refused.
    #[error(
        "{console}: login as `{user}` was refused{seen}\n  help: check EBPF_PACK_SERIAL_USER and EBPF_PACK_SERIAL_PASSWORD"
    )]
    LoginRefused {
        /// The console.
        console: String,
        /// The user name sent.
        user: String,
        /// The console's last lines.
        seen: String,
    },
    /// The other end closed the stream.
    #[error("{console} closed{detail}")]
    Closed {
        /// The console.
        console: String,
        /// The read error, if any.
        detail: String,
    },
    /// A step got no answer in time.
    #[error("{console}: no answer {what} within {secs} s{seen}")]
    Timeout {
        /// The console.
        console: String,
        /// What we waited for.
        what: String,
        /// How long.
        secs: u64,
        /// The console's last lines.
        seen: String,
    },
    /// Writing failed.
    #[error("{console}: cannot write: {error}")]
    Write {
        /// The console.
        console: String,
        /// Why.
        error: std::io::Error,
    },
    /// The board-side script failed.
    #[error("{console}: {what} failed (status {status}): {said}")]
    Script {
        /// The console.
        console: String,
        /// What was being done.
        what: String,
        /// The script's exit status.
        status: i32,
        /// What it printed.
        said: String,
    },
}

/// One piece of console output after [`Deframer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// A line a board script printed, whole.
    Payload(String),
    /// Anything else: kernel log, prompts, the shell's own messages.
    Noise(String),
    /// A frame that could not be put back together (too much was printed into it).
    Damaged(String),
}

/// A frame whose payload is not complete yet.
#[derive(Debug, Clone)]
struct Partial {
    len: usize,
    head: String,
    raw: String,
    waited: usize,
}

/// Lines a frame waits for its tail before it counts as damaged.
const FRAME_PATIENCE: usize = 8;

/// Turns console lines back into frames' payloads and noise. A kernel message that lands inside a
/// frame (`~EP:12:{"a":` + `[  9.1] msg` ⏎ `1,"b":2}~`) is cut out: the tail line ends with the end
/// mark, and the length says where in the head the payload stopped.
#[derive(Debug, Default)]
pub struct Deframer {
    partial: Option<Partial>,
}

fn payload_fits(text: &str, len: usize) -> bool {
    text.len() == len || text.chars().count() == len
}

impl Deframer {
    /// A deframer with nothing pending.
    pub fn new() -> Deframer {
        Deframer::default()
    }

    /// The pieces of one console line (without its line end).
    pub fn push(&mut self, line: &str) -> Vec<Piece> {
        let mut out = Vec::new();
        if let Some((noise, len, rest)) = frame_head(line) {
            if !noise.is_empty() {
                out.push(Piece::Noise(noise.to_string()));
            }
            if let Some(p) = self.partial.take() {
                out.push(Piece::Damaged(p.raw));
            }
            match rest.strip_suffix(FRAME_END) {
                Some(payload) if payload_fits(payload, len) => {
                    out.push(Piece::Payload(payload.to_string()))
                }
                _ => {
                    self.partial = Some(Partial {
                        len,
                        head: rest.to_string(),
                        raw: line.to_string(),
                        waited: 0,
                    })
                }
            }
            return out;
        }
        let Some(mut p) = self.partial.take() else {
            out.push(Piece::Noise(line.to_string()));
            return out;
        };
        if let Some(tail) = line.strip_suffix(FRAME_END) {
            let cut = p
                .len
                .checked_sub(tail.len())
                .filter(|k| *k <= p.head.len() && p.head.is_char_boundary(*k));
            if let Some(k) = cut {
                let (kept, inserted) = p.head.split_at(k);
                if !inserted.is_empty() {
                    out.push(Piece::Noise(inserted.to_string()));
                }
                out.push(Piece::Payload(format!("{kept}{tail}")));
                return out;
            }
        }
        out.push(Piece::Noise(line.to_string()));
        p.waited += 1;
        if p.waited >= FRAME_PATIENCE {
            out.push(Piece::Damaged(p.raw));
        } else {
            self.partial = Some(p);
        }
        out
    }

    /// What is still pending, at the end of the output.
    pub fn finish(&mut self) -> Vec<Piece> {
        self.partial
            .take()
            .map(|p| Piece::Damaged(p.raw))
            .into_iter()
            .collect()
    }
}

/// Splits `noise ~EP:LEN: rest` if the line holds a frame head.
fn frame_head(line: &str) -> Option<(&str, usize, &str)> {
    let at = line.find(FRAME_MARK)?;
    let after = &line[at + FRAME_MARK.len()..];
    let (digits, rest) = after.split_once(':')?;
    if digits.is_empty() || digits.len() > 7 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((&line[..at], digits.parse().ok()?, rest))
}

/// Frames a payload as the board does (for tests and fakes).
pub fn frame(payload: &str) -> String {
    format!("{FRAME_MARK}{}:{payload}{FRAME_END}", payload.len())
}

/// The command line that runs `script` with its stdout framed, then prints `EPEXIT <nonce> <status>`.
/// Its stdin is the console (the push and stop protocols read it); its stderr is left unframed.
pub fn exec_line(script: &str, nonce: u32) -> String {
    format!(
        "{{ sh -c {script}; echo \"EPEXIT {nonce} $?\"; }} | {{ while IFS= read -r l || [ -n \"$l\" ]; do printf '{FRAME_MARK}%d:%s{FRAME_END}\\n' \"${{#l}}\" \"$l\"; done; }}\n",
        script = shell_quote(script)
    )
}

/// Script: receives the bundle of `total` bytes as [`CHUNK`]-byte base64 lines `C SEQ DATA`, each
/// answered `ACK N` (next line, please) or `NAK N` (send line N again) by shell builtins alone, and
/// after every [`BATCH`] lines a line `S END SHA256` of the batch's bytes, answered `OK END` once
/// decoded and checked (two processes per batch, not per line: a board under TCG or a slow CPU
/// forks slowly) or `BAD START` (send the batch again). Checked batches go to `dir/SHA.serial`,
/// kept between attempts: a later push resumes at its last whole chunk. Then the whole file's
/// SHA-256 is checked, it is unpacked to `dir/SHA/`, and `DONE` printed. A line that is no chunk at
/// all ends it with 99: the host gave up or is starting over. Exit 95: a tool is missing, 94: no
/// space, 97: damaged, 98: end of input.
pub fn board_serial_push(dir: &str, sha: &str, total: usize) -> String {
    let chunks = total.div_ceil(CHUNK);
    let d = shell_quote(dir);
    let want = CHUNK.div_ceil(3) * 4;
    format!(
        "cd {d} || exit 96\n\
         for t in base64 sha256sum gzip tar head wc; do command -v $t >/dev/null 2>&1 || {{ echo \"the board has no $t\"; exit 95; }}; done\n\
         for old in *; do case \"$old\" in '*'|{sha}|{sha}.serial|*.partial.*) ;; *) rm -rf \"./$old\";; esac; done\n\
         part={sha}.serial\n\
         [ -f $part ] || : > $part || exit 94\n\
         have=$(wc -c < $part)\n\
         n=$((have / {CHUNK}))\n\
         if [ $((n * {CHUNK})) -ne $have ]; then head -c $((n * {CHUNK})) $part > $part.t && mv $part.t $part || exit 94; fi\n\
         : > $part.b64 || exit 94\n\
         m=$n\n\
         echo \"READY $n\"\n\
         while [ $n -lt {chunks} ]; do\n\
         \x20 IFS= read -r line || exit 98\n\
         \x20 set -f; set -- $line; set +f\n\
         \x20 case \"$1 $2\" in\n\
         \x20 \"C $m\")\n\
         \x20   if [ $# -eq 3 ] && {{ [ ${{#3}} -eq {want} ] || [ $((m + 1)) -eq {chunks} ]; }}; then\n\
         \x20     printf '%s\\n' \"$3\" >> $part.b64 || {{ echo 'no space left'; exit 94; }}\n\
         \x20     m=$((m + 1)); echo \"ACK $m\"\n\
         \x20   else echo \"NAK $m\"; fi;;\n\
         \x20 \"S $m\")\n\
         \x20   got=bad\n\
         \x20   if [ $# -eq 3 ] && base64 -d $part.b64 > $part.c 2>/dev/null; then got=$(sha256sum $part.c); got=${{got%% *}}; fi\n\
         \x20   if [ \"$got\" = \"$3\" ]; then\n\
         \x20     cat $part.c >> $part || {{ rm -f $part.c; echo 'no space left'; exit 94; }}\n\
         \x20     n=$m; echo \"OK $n\"\n\
         \x20   else m=$n; echo \"BAD $n\"; fi\n\
         \x20   : > $part.b64;;\n\
         \x20 C\\ *|S\\ *) if [ \"$1\" = C ]; then echo \"NAK $m\"; else echo \"BAD $n\"; m=$n; : > $part.b64; fi;;\n\
         \x20 *) rm -f $part.b64 $part.c; exit 99;;\n\
         \x20 esac\n\
         done\n\
         rm -f $part.c $part.b64\n\
         got=$(sha256sum $part); got=${{got%% *}}\n\
         if [ \"$got\" != {sha} ]; then rm -f $part; echo \"the bundle arrived damaged (sha256 $got)\"; exit 97; fi\n\
         tmp={sha}.partial.$$\n\
         mkdir $tmp && gzip -dc $part | tar -xf - -C $tmp && : > $tmp/.complete || {{ rm -rf $tmp; echo 'cannot unpack (no space left?)'; exit 94; }}\n\
         rm -rf {sha}; mv $tmp {sha}; rm -f $part\n\
         echo DONE\n"
    )
}

/// Chunk lines per checked batch.
pub const BATCH: usize = 16;

/// The line the host sends for chunk `seq` of `data`.
pub fn chunk_line(seq: usize, data: &[u8]) -> String {
    use base64::Engine as _;
    format!(
        "C {seq} {}\n",
        base64::engine::general_purpose::STANDARD.encode(data)
    )
}

/// The line that closes a batch: the chunks up to `end` (exclusive) and their bytes' SHA-256.
pub fn batch_line(end: usize, data: &[u8]) -> String {
    format!("S {end} {}\n", crate::bundle::sha256_hex(data))
}

/// What a console sends to the protocol: whole lines, a pending partial line (a prompt), or the end.
#[derive(Debug)]
enum Incoming {
    Line(String),
    Partial(String),
    Closed(String),
}

/// Reads `from` until it ends, as [`Incoming`] messages: lines without their `\r\n`, and the start of
/// a line that has waited 200 ms for its end (a `login: ` prompt does not end).
fn read_console(mut from: Box<dyn Read + Send>, to: Sender<Incoming>) {
    let mut pending: Vec<u8> = Vec::new();
    // How much of `pending` was announced as a partial line (a prompt that grows is announced again).
    let mut announced = 0;
    let mut buf = [0u8; 4096];
    loop {
        match from.read(&mut buf) {
            Ok(0) => {
                let _ = to.send(Incoming::Closed(String::new()));
                return;
            }
            Ok(n) => {
                for &b in &buf[..n] {
                    if b == b'\n' {
                        while pending.last() == Some(&b'\r') {
                            pending.pop();
                        }
                        let line = String::from_utf8_lossy(&pending).into_owned();
                        pending.clear();
                        announced = 0;
                        if to.send(Incoming::Line(line)).is_err() {
                            return;
                        }
                    } else if b != 0 {
                        pending.push(b);
                    }
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => {
                if pending.len() > announced {
                    announced = pending.len();
                    let text = String::from_utf8_lossy(&pending).into_owned();
                    if to.send(Incoming::Partial(text)).is_err() {
                        return;
                    }
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                let _ = to.send(Incoming::Closed(format!(": {e}")));
                return;
            }
        }
    }
}

/// The number of a sentinel answer `EPSYNC N` anywhere in `line` (a kernel message may share the
/// line); the echo of the command that asks for it holds `$((N+0))`, never `EPSYNC N`.
fn sync_answer(line: &str) -> Option<u32> {
    line.match_indices("EPSYNC ").find_map(|(at, _)| {
        let digits: String = line[at + 7..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    })
}

/// A record of every byte in both directions, for a console that misbehaves: `EBPF_PACK_CONSOLE_LOG=FILE`.
/// Each chunk becomes one line `+SECONDS board|host <bytes>`, control bytes written as `\xNN`.
#[derive(Clone)]
struct Transcript {
    file: std::sync::Arc<std::sync::Mutex<std::fs::File>>,
    start: Instant,
}

impl Transcript {
    fn from_env() -> Option<Transcript> {
        let path = std::env::var_os("EBPF_PACK_CONSOLE_LOG")?;
        match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
        {
            Ok(f) => Some(Transcript {
                file: std::sync::Arc::new(std::sync::Mutex::new(f)),
                start: Instant::now(),
            }),
            Err(e) => {
                eprintln!(
                    "ebpf-pack: warning: EBPF_PACK_CONSOLE_LOG={}: {e}; no console transcript",
                    std::path::Path::new(&path).display()
                );
                None
            }
        }
    }

    fn record(&self, from_board: bool, bytes: &[u8]) {
        let mut line = format!(
            "+{:.3} {} ",
            self.start.elapsed().as_secs_f64(),
            if from_board { "board" } else { "host " }
        );
        line.push_str(&escape_bytes(bytes));
        line.push('\n');
        if let Ok(mut f) = self.file.lock() {
            let _ = f.write_all(line.as_bytes());
        }
    }
}

/// Bytes as one printable line: control bytes and non-ASCII as `\xNN`, newline as `\n`.
fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\n' => out.push_str("\\n"),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}

/// A stream that copies what passes through it into a [`Transcript`].
struct Tee<S> {
    inner: S,
    log: Transcript,
    from_board: bool,
}

impl<S: Read> Read for Tee<S> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.log.record(self.from_board, &buf[..n]);
        }
        Ok(n)
    }
}

impl<S: Write> Write for Tee<S> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.log.record(self.from_board, &buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Paces writes to a baud rate (10 bits a byte: 8N1).
#[derive(Debug)]
struct Pacer {
    bytes_per_sec: f64,
    free_at: Instant,
}

impl Pacer {
    fn wait_for(&mut self, bytes: usize) {
        let now = Instant::now();
        if self.free_at < now {
            self.free_at = now;
        }
        self.free_at += Duration::from_secs_f64(bytes as f64 / self.bytes_per_sec);
        let ahead = self.free_at.saturating_duration_since(now);
        if ahead > Duration::from_millis(2) {
            std::thread::sleep(ahead);
        }
    }
}

/// Who to log in as when the console asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    /// Sent at `login:`.
    pub user: String,
    /// Sent at `Password:`.
    pub password: Option<String>,
}

impl Login {
    /// From `EBPF_PACK_SERIAL_USER` (default `root`) and `EBPF_PACK_SERIAL_PASSWORD`.
    pub fn from_env() -> Login {
        Login {
            user: std::env::var("EBPF_PACK_SERIAL_USER").unwrap_or_else(|_| "root".into()),
            password: std::env::var("EBPF_PACK_SERIAL_PASSWORD").ok(),
        }
    }
}

/// One step of a script's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A line the script printed on stdout.
    Payload(String),
    /// Anything else the console printed meanwhile (stderr, kernel log).
    Noise(String),
    /// The script ended with this status.
    Exit(i32),
}

/// Figures of one push.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PushStats {
    /// Bytes sent in this push (not counting chunks the board already had).
    pub bytes: usize,
    /// Chunks the board already held (a resumed push).
    pub resumed_chunks: usize,
    /// Chunks sent again after a NAK or a lost answer.
    pub resent: usize,
    /// Wall time.
    pub elapsed: Duration,
}

/// How one push attempt ended.
enum PushEnd {
    Done,
    Restart,
}

/// A shell on a console, found and ready for scripts.
pub struct Console {
    name: String,
    writer: Box<dyn Write + Send>,
    incoming: Receiver<Incoming>,
    deframer: Deframer,
    queue: VecDeque<Piece>,
    recent: VecDeque<String>,
    nonce: u32,
    running: Option<u32>,
    /// The status of a script whose last line came without its end, returned after that line.
    exit_after: Option<i32>,
    pacer: Option<Pacer>,
    /// Sentinels of [`Console::attach_shell`] a slow shell may still answer after the first answer.
    stale_syncs: Vec<u32>,
}

/// Lines of console output kept for error messages.
const RECENT_LINES: usize = 12;

impl Console {
    /// Opens the endpoint of `spec`.
    pub fn open(spec: &SerialSpec) -> Result<Console, ConsoleError> {
        let name = spec.describe();
        let open_err = |error: String, help: &str| ConsoleError::Open {
            console: name.clone(),
            error,
            help: help.into(),
        };
        let tick = Duration::from_millis(100);
        let (reader, writer): (Box<dyn Read + Send>, Box<dyn Write + Send>) = match &spec.endpoint {
            Endpoint::Device(path) => {
                let port = serialport::new(path.display().to_string(), spec.baud.unwrap_or(DEFAULT_BAUD))
                    .timeout(tick)
                    .open()
                    .map_err(|e| {
                        open_err(
                            e.to_string(),
                            "check the device name (ls /dev/ttyUSB* /dev/ttyACM*), that nothing else (screen, minicom) holds it, and that you may open it (group dialout)",
                        )
                    })?;
                let reader = port
                    .try_clone()
                    .map_err(|e| open_err(e.to_string(), "the serial device cannot be shared"))?;
                (Box::new(reader), Box::new(port))
            }
            Endpoint::Unix(path) => {
                // A guest of `try --serve` still booting serves PATH.boot; PATH appears when its
                // shell is up.
                let booting = crate::qemu::boot_socket(path);
                let since = Instant::now();
                if !path.exists() && booting.exists() {
                    eprintln!(
                        "ebpf-pack: {name}: the guest is still booting; waiting for its shell"
                    );
                }
                while !path.exists()
                    && booting.exists()
                    && since.elapsed() < Duration::from_secs(300)
                {
                    std::thread::sleep(Duration::from_millis(100));
                }
                let s = std::os::unix::net::UnixStream::connect(path).map_err(|e| {
                    open_err(
                        e.to_string(),
                        "is the QEMU guest running (ebpf-pack try --serve PATH) and the path its socket?",
                    )
                })?;
                let _ = s.set_read_timeout(Some(tick));
                let r = s
                    .try_clone()
                    .map_err(|e| open_err(e.to_string(), "the socket cannot be shared"))?;
                (Box::new(r), Box::new(s))
            }
            Endpoint::Tcp(addr) => {
                let s = std::net::TcpStream::connect(addr).map_err(|e| {
                    open_err(
                        e.to_string(),
                        "is the console server (ser2net, a QEMU chardev) listening on that port?",
                    )
                })?;
                let _ = s.set_read_timeout(Some(tick));
                let _ = s.set_nodelay(true);
                let r = s
                    .try_clone()
                    .map_err(|e| open_err(e.to_string(), "the socket cannot be shared"))?;
                (Box::new(r), Box::new(s))
            }
        };
        // A device is paced by its UART; a socket only when a rate was asked for.
        let pace = match spec.endpoint {
            Endpoint::Device(_) => None,
            _ => spec.baud,
        };
        Ok(Console::over(name, reader, writer, pace))
    }

    /// A console over any byte stream (`reader` should time out its reads now and then).
    pub fn over(
        name: String,
        reader: Box<dyn Read + Send>,
        writer: Box<dyn Write + Send>,
        baud: Option<u32>,
    ) -> Console {
        let (tx, rx) = channel();
        let (reader, writer) = match Transcript::from_env() {
            Some(log) => {
                let reader: Box<dyn Read + Send> = Box::new(Tee {
                    inner: reader,
                    log: log.clone(),
                    from_board: true,
                });
                let writer: Box<dyn Write + Send> = Box::new(Tee {
                    inner: writer,
                    log,
                    from_board: false,
                });
                (reader, writer)
            }
            None => (reader, writer),
        };
        std::thread::spawn(move || read_console(reader, tx));
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
            ^ std::process::id().rotate_left(16);
        Console {
            name,
            writer,
            incoming: rx,
            deframer: Deframer::new(),
            queue: VecDeque::new(),
            recent: VecDeque::new(),
            nonce: seed % 900_000 + 100_000,
            running: None,
            exit_after: None,
            pacer: baud.map(|b| Pacer {
                bytes_per_sec: f64::from(b) / 10.0,
                free_at: Instant::now(),
            }),
            stale_syncs: Vec::new(),
        }
    }

    /// The console's name for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn seen(&self) -> String {
        if self.recent.is_empty() {
            "; the console printed nothing".into()
        } else {
            let lines: Vec<&str> = self.recent.iter().map(String::as_str).collect();
            format!("; the console last printed:\n    {}", lines.join("\n    "))
        }
    }

    fn remember(&mut self, line: &str) {
        if line.trim().is_empty() {
            return;
        }
        if self.recent.len() == RECENT_LINES {
            self.recent.pop_front();
        }
        self.recent.push_back(line.chars().take(200).collect());
    }

    /// Sends bytes as they are (paced when a baud rate applies).
    pub fn send(&mut self, text: &str) -> Result<(), ConsoleError> {
        let bytes = text.as_bytes();
        // Paced in small pieces, so a long line does not arrive as one burst.
        let piece = if self.pacer.is_some() {
            64
        } else {
            bytes.len().max(1)
        };
        for part in bytes.chunks(piece) {
            if let Some(p) = self.pacer.as_mut() {
                p.wait_for(part.len());
            }
            self.writer
                .write_all(part)
                .map_err(|error| ConsoleError::Write {
                    console: self.name.clone(),
                    error,
                })?;
        }
        self.writer.flush().map_err(|error| ConsoleError::Write {
            console: self.name.clone(),
            error,
        })
    }

    /// Waits up to `timeout` for the next raw message.
    fn recv(&mut self, timeout: Duration) -> Result<Option<Incoming>, ConsoleError> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            return match self.incoming.recv_timeout(left) {
                Ok(Incoming::Closed(detail)) => Err(ConsoleError::Closed {
                    console: self.name.clone(),
                    detail,
                }),
                Ok(Incoming::Line(line)) if self.is_stale_sync(&line) => continue,
                Ok(m) => Ok(Some(m)),
                Err(RecvTimeoutError::Timeout) => Ok(None),
                Err(RecvTimeoutError::Disconnected) => Err(ConsoleError::Closed {
                    console: self.name.clone(),
                    detail: String::new(),
                }),
            };
        }
    }

    /// Whether `line` is a late answer to a sentinel of [`Console::attach_shell`] (then forgotten).
    fn is_stale_sync(&mut self, line: &str) -> bool {
        if self.stale_syncs.is_empty() || !line.starts_with("EPSYNC ") {
            return false;
        }
        match sync_answer(line).and_then(|n| self.stale_syncs.iter().position(|&s| s == n)) {
            Some(at) => {
                self.stale_syncs.remove(at);
                true
            }
            None => false,
        }
    }

    /// Finds the shell: kills any half-typed line, logs in if asked, turns echo and prompts off, and
    /// waits for the sentinel. Gives up after `timeout` (a board still booting needs a long one).
    pub fn attach_shell(&mut self, login: &Login, timeout: Duration) -> Result<(), ConsoleError> {
        let start = Instant::now();
        let mut next_try = start;
        let mut logins = 0;
        // Every sentinel sent so far: a slow shell may answer one after the next was sent.
        let mut sent: Vec<u32> = Vec::new();
        loop {
            let left = timeout.saturating_sub(start.elapsed());
            if left.is_zero() {
                return Err(ConsoleError::NoShell {
                    console: self.name.clone(),
                    secs: timeout.as_secs(),
                    seen: self.seen(),
                });
            }
            if Instant::now() >= next_try {
                self.nonce = self.nonce.wrapping_add(1) % 900_000 + 100_000;
                // ^U kills a half-typed line; `$((N+0))` makes the answer differ from the echo.
                let line = format!(
                    "\u{15}stty -echo 2>/dev/null; PS1=''; PS2=''; echo \"EPSYNC $(({}+0))\"\n",
                    self.nonce
                );
                self.send(&line)?;
                sent.push(self.nonce);
                next_try = Instant::now() + Duration::from_secs(3);
            }
            let wait = left.min(next_try.saturating_duration_since(Instant::now()));
            match self.recv(wait.max(Duration::from_millis(10)))? {
                None => {}
                Some(Incoming::Line(line)) => {
                    match sync_answer(&line) {
                        Some(n) if sent.contains(&n) => {
                            // Anything typed before us is done; what follows belongs to our scripts. A
                            // slow shell may still answer the sentinels sent after this one: dropped.
                            self.stale_syncs = sent;
                            self.queue.clear();
                            self.deframer = Deframer::new();
                            return Ok(());
                        }
                        _ => {}
                    }
                    // Refused only after we answered a `login:` ourselves: a sentinel line typed
                    // into a login prompt fails as a user name first.
                    if line.contains("Login incorrect") && logins > 0 {
                        return Err(ConsoleError::LoginRefused {
                            console: self.name.clone(),
                            user: login.user.clone(),
                            seen: self.seen(),
                        });
                    }
                    self.remember(&line);
                }
                Some(Incoming::Partial(text)) => {
                    let t = text.trim_end();
                    if t.ends_with("login:") {
                        logins += 1;
                        if logins > 3 {
                            return Err(ConsoleError::LoginRefused {
                                console: self.name.clone(),
                                user: login.user.clone(),
                                seen: self.seen(),
                            });
                        }
                        self.send(&format!("{}\n", login.user))?;
                        next_try = Instant::now() + Duration::from_secs(3);
                    } else if t.ends_with("assword:") {
                        let pw = login.password.clone().unwrap_or_default();
                        self.send(&format!("{pw}\n"))?;
                        next_try = Instant::now() + Duration::from_secs(3);
                    }
                    self.remember(t);
                }
                Some(Incoming::Closed(_)) => {}
            }
        }
    }

    /// Starts `script` (its stdout framed, its status reported); read it with [`Console::next`].
    pub fn start(&mut self, script: &str) -> Result<(), ConsoleError> {
        self.nonce = self.nonce.wrapping_add(1) % 900_000 + 100_000;
        self.running = Some(self.nonce);
        self.exit_after = None;
        self.queue.clear();
        self.deframer = Deframer::new();
        let line = exec_line(script, self.nonce);
        self.send(&line)
    }

    /// The next step of the running script, or `None` when `timeout` passes first.
    pub fn next(&mut self, timeout: Duration) -> Result<Option<Step>, ConsoleError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exit_after.take() {
                return Ok(Some(Step::Exit(status)));
            }
            if let Some(piece) = self.queue.pop_front() {
                match piece {
                    Piece::Payload(p) => {
                        // The status line, possibly after a last line the script did not end.
                        let exit = self.running.and_then(|n| {
                            let at = p.rfind(&format!("EPEXIT {n} "))?;
                            let status = p[at..].rsplit(' ').next()?.parse::<i32>().ok()?;
                            Some((at, status))
                        });
                        if let Some((at, status)) = exit {
                            self.running = None;
                            if at == 0 {
                                return Ok(Some(Step::Exit(status)));
                            }
                            self.exit_after = Some(status);
                            return Ok(Some(Step::Payload(p[..at].to_string())));
                        }
                        return Ok(Some(Step::Payload(p)));
                    }
                    Piece::Noise(n) => {
                        self.remember(&n);
                        return Ok(Some(Step::Noise(n)));
                    }
                    Piece::Damaged(d) => {
                        self.remember(&d);
                        return Ok(Some(Step::Noise(format!("(damaged frame) {d}"))));
                    }
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            match self.recv(left)? {
                None => return Ok(None),
                Some(Incoming::Line(line)) => {
                    let pieces = self.deframer.push(&line);
                    self.queue.extend(pieces);
                }
                Some(Incoming::Partial(_)) | Some(Incoming::Closed(_)) => {}
            }
        }
    }

    /// Runs a short script to its end; returns its status and stdout lines.
    pub fn script(
        &mut self,
        script: &str,
        timeout: Duration,
        what: &str,
    ) -> Result<(i32, Vec<String>), ConsoleError> {
        self.start(script)?;
        let mut lines = Vec::new();
        let status = self.wait_exit(timeout, what, &mut lines)?;
        Ok((status, lines))
    }

    /// Waits for a payload line that `accept` takes (returning its value), skipping noise.
    fn expect<T>(
        &mut self,
        timeout: Duration,
        what: &str,
        accept: impl Fn(&str) -> Option<T>,
        said: &mut Vec<String>,
    ) -> Result<Result<T, i32>, ConsoleError> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left)? {
                Some(Step::Payload(p)) => match accept(&p) {
                    Some(v) => return Ok(Ok(v)),
                    None => said.push(p),
                },
                Some(Step::Noise(_)) => {}
                Some(Step::Exit(status)) => return Ok(Err(status)),
                None => {
                    return Err(ConsoleError::Timeout {
                        console: self.name.clone(),
                        what: what.into(),
                        secs: timeout.as_secs(),
                        seen: self.seen(),
                    });
                }
            }
        }
    }

    /// Pushes `bytes` (whose SHA-256 is `sha`) into `dir/SHA/` on the board, chunk by checked chunk:
    /// a damaged chunk is sent again, and a push the board ended early is started over from the
    /// chunks it already holds.
    pub fn push(&mut self, dir: &str, sha: &str, bytes: &[u8]) -> Result<PushStats, ConsoleError> {
        let start = Instant::now();
        let mut stats = PushStats {
            bytes: 0,
            resumed_chunks: 0,
            resent: 0,
            elapsed: Duration::ZERO,
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.push_once(dir, sha, bytes, &mut stats, attempt == 1)? {
                PushEnd::Done => break,
                // The board's script read a line that was no chunk (a damaged line start): again.
                PushEnd::Restart if attempt < 4 => {
                    stats.resent += 1;
                }
                PushEnd::Restart => {
                    return Err(ConsoleError::Script {
                        console: self.name.clone(),
                        what: "pushing the bundle".into(),
                        status: 99,
                        said: "the board kept losing the chunk lines: the line is too noisy (lower the baud rate?)".into(),
                    });
                }
            }
        }
        stats.elapsed = start.elapsed();
        Ok(stats)
    }

    fn push_once(
        &mut self,
        dir: &str,
        sha: &str,
        bytes: &[u8],
        stats: &mut PushStats,
        first: bool,
    ) -> Result<PushEnd, ConsoleError> {
        let chunks: Vec<&[u8]> = bytes.chunks(CHUNK).collect();
        self.start(&board_serial_push(dir, sha, bytes.len()))?;
        let mut said = Vec::new();
        let failed = |this: &Console, status: i32, said: &[String]| ConsoleError::Script {
            console: this.name.clone(),
            what: "pushing the bundle".into(),
            status,
            said: said.join("; "),
        };
        let held = match self.expect(
            Duration::from_secs(30),
            "to the push (READY)",
            |l| l.strip_prefix("READY ")?.trim().parse::<usize>().ok(),
            &mut said,
        )? {
            Ok(n) => n.min(chunks.len()),
            Err(status) => return Err(failed(self, status, &said)),
        };
        if first {
            stats.resumed_chunks = held;
        }
        let mut seq = held;
        let mut tries = 0;
        let answer = |l: &str| {
            let (kind, n) = l.split_once(' ')?;
            let n = n.trim().parse::<usize>().ok()?;
            matches!(kind, "ACK" | "NAK" | "OK" | "BAD").then(|| (kind.to_string(), n))
        };
        while seq < chunks.len() {
            let end = (seq + BATCH).min(chunks.len());
            // The batch's lines, each acknowledged before the next (a UART has no room for more).
            let mut next = seq;
            let mut restart_batch = false;
            while next < end {
                self.send(&chunk_line(next, chunks[next]))?;
                stats.bytes += chunks[next].len();
                match self.expect(
                    Duration::from_secs(20),
                    "to a pushed chunk",
                    answer,
                    &mut said,
                ) {
                    Ok(Ok((k, n))) if k == "ACK" && n == next + 1 => next = n,
                    Ok(Ok((k, n))) if k == "NAK" && n >= seq && n <= next => {
                        stats.resent += 1;
                        tries += 1;
                        next = n;
                    }
                    Ok(Ok(_)) | Err(ConsoleError::Timeout { .. }) => {
                        // Out of step, or the line or its answer was lost: this batch again.
                        stats.resent += 1;
                        tries += 1;
                        restart_batch = true;
                        break;
                    }
                    Ok(Err(99)) => return Ok(PushEnd::Restart),
                    Ok(Err(status)) => return Err(failed(self, status, &said)),
                    Err(e) => return Err(e),
                }
                if tries > 8 {
                    break;
                }
            }
            if !restart_batch && tries <= 8 {
                let data = &bytes[seq * CHUNK..(end * CHUNK).min(bytes.len())];
                self.send(&batch_line(end, data))?;
                match self.expect(
                    Duration::from_secs(60),
                    "to a checked batch",
                    answer,
                    &mut said,
                ) {
                    Ok(Ok((k, n))) if k == "OK" && n == end => {
                        seq = end;
                        tries = 0;
                        continue;
                    }
                    Ok(Ok(_)) | Err(ConsoleError::Timeout { .. }) => {
                        // BAD: a line of the batch was damaged on the way; send the batch again.
                        stats.resent += 1;
                        tries += 1;
                    }
                    Ok(Err(99)) => return Ok(PushEnd::Restart),
                    Ok(Err(status)) => return Err(failed(self, status, &said)),
                    Err(e) => return Err(e),
                }
            }
            if tries > 8 {
                // Not a chunk: the board's script ends (status 99) and the shell is ours again.
                let _ = self.send(": ABORT\n");
                let _ = self.wait_exit(Duration::from_secs(10), "to the abort", &mut said);
                return Err(ConsoleError::Script {
                    console: self.name.clone(),
                    what: "pushing the bundle".into(),
                    status: -1,
                    said: format!(
                        "the batch from chunk {seq} was refused 9 times: the line is too noisy (lower the baud rate?)"
                    ),
                });
            }
            // A restarted batch: the board forgot its lines (BAD) or is out of step; a resend of
            // the batch start realigns it (it answers NAK with the line it wants).
            let _ = self.send(&batch_line(seq, &[]));
            let _ = self.expect(
                Duration::from_secs(20),
                "to a batch reset",
                answer,
                &mut said,
            );
        }
        let done = self.expect(
            Duration::from_secs(120),
            "to the unpacking of the bundle",
            |l| (l == "DONE").then_some(()),
            &mut said,
        )?;
        if let Err(status) = done {
            return Err(failed(self, status, &said));
        }
        match self.wait_exit(Duration::from_secs(10), "after the push", &mut said)? {
            0 => Ok(PushEnd::Done),
            status => Err(failed(self, status, &said)),
        }
    }

    /// Waits for the running script's end, keeping its stdout lines in `said`; returns its status.
    pub fn wait_exit(
        &mut self,
        timeout: Duration,
        what: &str,
        said: &mut Vec<String>,
    ) -> Result<i32, ConsoleError> {
        match self.expect(timeout, what, |_| None::<std::convert::Infallible>, said)? {
            Err(status) => Ok(status),
            Ok(never) => match never {},
        }
    }
}

/// A board behind a console: its shell found, every script framed. Holds the QEMU guest when the
/// console is one (`--via qemu`), which ends with the board.
pub struct ConsoleBoard {
    console: Console,
    guest: Option<crate::qemu::ShellGuest>,
}

impl ConsoleBoard {
    /// Finds the shell on `console` (logging in if asked) within `timeout`.
    pub fn attach(
        mut console: Console,
        guest: Option<crate::qemu::ShellGuest>,
        timeout: Duration,
    ) -> Result<ConsoleBoard, Failure> {
        if let Err(e) = console.attach_shell(&Login::from_env(), timeout) {
            let extra = guest.as_ref().map(|g| g.qemu_stderr()).unwrap_or_default();
            return Err(failure(
                EXIT_FAILED,
                if extra.trim().is_empty() {
                    e.to_string()
                } else {
                    format!("{e}\n  QEMU said: {}", extra.trim())
                },
            ));
        }
        Ok(ConsoleBoard { console, guest })
    }
}

fn console_failure(e: ConsoleError) -> Failure {
    let help = match &e {
        ConsoleError::Script { status, .. } => crate::transport::script_status_help(*status),
        _ => "",
    };
    failure(EXIT_FAILED, format!("{e}{help}"))
}

impl Board for ConsoleBoard {
    fn describe(&self) -> String {
        match &self.guest {
            Some(g) => g.describe(),
            None => self.console.name().to_string(),
        }
    }

    fn script(&mut self, script: &str, what: &str) -> Result<String, Failure> {
        let (status, lines) = self
            .console
            .script(script, Duration::from_secs(60), what)
            .map_err(console_failure)?;
        if status != 0 {
            return Err(console_failure(ConsoleError::Script {
                console: self.console.name().to_string(),
                what: what.into(),
                status,
                said: lines.join("; "),
            }));
        }
        Ok(lines.iter().map(|l| format!("{l}\n")).collect())
    }

    fn push(&mut self, dir: &str, sha: &str, bytes: &[u8]) -> Result<(), Failure> {
        let stats = self
            .console
            .push(dir, sha, bytes)
            .map_err(console_failure)?;
        let secs = stats.elapsed.as_secs_f64().max(0.001);
        eprintln!(
            "ebpf-pack: {} bytes over {} in {secs:.1} s ({:.1} KiB/s){}{}",
            stats.bytes,
            self.console.name(),
            stats.bytes as f64 / 1024.0 / secs,
            if stats.resumed_chunks > 0 {
                format!(
                    ", resumed after {} chunks the board held",
                    stats.resumed_chunks
                )
            } else {
                String::new()
            },
            if stats.resent > 0 {
                format!(", {} chunk(s) sent again", stats.resent)
            } else {
                String::new()
            }
        );
        Ok(())
    }

    fn host_watch(&self) -> HostWatch {
        HostWatch::Keepalive(BOARD_SILENCE_SECS)
    }

    fn run(
        &mut self,
        script: &str,
        stop: &AtomicBool,
        on_line: &mut dyn FnMut(&str),
    ) -> Result<RunEnd, Failure> {
        self.console.start(script).map_err(console_failure)?;
        let mut alive_sent = Instant::now();
        let mut stop_sent = false;
        loop {
            if stop.load(Ordering::SeqCst) && !stop_sent {
                stop_sent = true;
                self.console.send(": STOP\n").map_err(console_failure)?;
            }
            if alive_sent.elapsed() >= KEEPALIVE {
                alive_sent = Instant::now();
                self.console.send(":\n").map_err(console_failure)?;
            }
            match self
                .console
                .next(Duration::from_millis(200))
                .map_err(console_failure)?
            {
                Some(Step::Payload(line)) => on_line(&line),
                Some(Step::Noise(text)) => eprintln!("{text}"),
                Some(Step::Exit(status)) => return Ok(RunEnd::Exited(status)),
                None => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(lines: &[&str]) -> Vec<Piece> {
        let mut d = Deframer::new();
        let mut out: Vec<Piece> = lines.iter().flat_map(|l| d.push(l)).collect();
        out.extend(d.finish());
        out
    }

    #[test]
    fn serial_specs() {
        assert_eq!(
            SerialSpec::parse("/dev/ttyUSB0"),
            Ok(SerialSpec {
                endpoint: Endpoint::Device("/dev/ttyUSB0".into()),
                baud: Some(115_200)
            })
        );
        assert_eq!(
            SerialSpec::parse("/dev/ttyS1@9600").map(|s| s.baud),
            Ok(Some(9600))
        );
        assert_eq!(
            SerialSpec::parse("unix:/tmp/guest.sock"),
            Ok(SerialSpec {
                endpoint: Endpoint::Unix("/tmp/guest.sock".into()),
                baud: None
            })
        );
        assert_eq!(
            SerialSpec::parse("tcp:localhost:7000@115200"),
            Ok(SerialSpec {
                endpoint: Endpoint::Tcp("localhost:7000".into()),
                baud: Some(115_200)
            })
        );
        for bad in [
            "ttyUSB0",
            "unix:",
            "tcp:host",
            "tcp::7",
            "tcp:h:0",
            "/dev/x@12",
        ] {
            assert!(SerialSpec::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            SerialSpec::parse("tcp:h:7@115200").map(|s| s.describe()),
            Ok("serial:tcp:h:7@115200".to_string())
        );
    }

    #[test]
    fn whole_frames_and_noise() {
        assert_eq!(
            pieces(&[
                &frame("{\"a\":1}"),
                "[   3.1] random: crng init done",
                &frame("")
            ]),
            vec![
                Piece::Payload("{\"a\":1}".into()),
                Piece::Noise("[   3.1] random: crng init done".into()),
                Piece::Payload(String::new()),
            ]
        );
        // A payload that itself ends with the end mark, or holds the frame mark.
        assert_eq!(
            pieces(&[&frame("x~"), &frame("p=~EP:3:")]),
            vec![
                Piece::Payload("x~".into()),
                Piece::Payload("p=~EP:3:".into())
            ]
        );
    }

    #[test]
    fn kernel_message_inside_a_frame_is_cut_out() {
        let whole = frame("{\"probe\":\"opensnoop\",\"path\":\"/etc/passwd\"}");
        for at in [5, 12, 30, whole.len() - 2] {
            let (head, tail) = whole.split_at(at);
            let spliced = format!("{head}[  12.345678] ebpf-pack-noise: hello");
            let got = pieces(&[&spliced, tail]);
            let payloads: Vec<&Piece> = got
                .iter()
                .filter(|p| matches!(p, Piece::Payload(_)))
                .collect();
            if at < FRAME_MARK.len() + 3 {
                // The head itself was cut: nothing to put back together, but nothing invented either.
                assert!(payloads.is_empty() || payloads.len() == 1, "{at}: {got:?}");
                continue;
            }
            assert_eq!(
                payloads,
                vec![&Piece::Payload(
                    "{\"probe\":\"opensnoop\",\"path\":\"/etc/passwd\"}".into()
                )],
                "split at {at}: {got:?}"
            );
            assert!(
                got.contains(&Piece::Noise("[  12.345678] ebpf-pack-noise: hello".into())),
                "{got:?}"
            );
        }
        // A two-line kernel message in between.
        let (head, tail) = whole.split_at(20);
        let got = pieces(&[&format!("{head}[ 1.0] first"), "[ 1.0] second", tail]);
        assert!(got.contains(&Piece::Payload(
            "{\"probe\":\"opensnoop\",\"path\":\"/etc/passwd\"}".into()
        )));
    }

    #[test]
    fn hopeless_frames_are_damaged_not_invented() {
        let whole = frame("{\"n\":1}");
        let got = pieces(&[&whole[..8], &frame("{\"n\":2}")]);
        assert_eq!(
            got,
            vec![
                Piece::Damaged(whole[..8].to_string()),
                Piece::Payload("{\"n\":2}".into())
            ]
        );
        let mut lines = vec![whole[..8].to_string()];
        lines.extend((0..FRAME_PATIENCE).map(|i| format!("noise {i}")));
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let got = pieces(&refs);
        assert!(
            got.iter().any(|p| matches!(p, Piece::Damaged(_))),
            "{got:?}"
        );
        assert!(
            !got.iter().any(|p| matches!(p, Piece::Payload(_))),
            "{got:?}"
        );
    }

    #[test]
    fn scripts_are_posix_shell() {
        for script in [
            board_serial_push("/var/cache/ebpf-pack", "ab12", 7000),
            exec_line("echo 'hi'; exit 3", 123456),
        ] {
            crate::transport::assert_posix_sh(&script);
        }
    }

    /// Damages one byte of the first line that starts with `prefix`, as line noise would.
    struct NoisyWire<W> {
        inner: W,
        prefix: &'static str,
        line: Vec<u8>,
        done: bool,
    }

    impl<W: Write> Write for NoisyWire<W> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            for &b in buf {
                self.line.push(b);
                if b == b'\n' {
                    let mut line = std::mem::take(&mut self.line);
                    if !self.done && line.starts_with(self.prefix.as_bytes()) {
                        self.done = true;
                        let at = line.len() - 20;
                        line[at] = if line[at] == b'A' { b'B' } else { b'A' };
                    }
                    self.inner.write_all(&line)?;
                }
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            self.inner.flush()
        }
    }

    /// A "board" that is this machine's bash reading commands from a pipe (bash reads a pipe byte by
    /// byte, so the scripts it starts get the rest of the input, as on a tty): `bash --norc
    /// --noprofile EXTRA...` with `env`, and its stdin and stdout.
    fn bash_board(
        extra: &[&str],
        env: &[(&str, &std::path::Path)],
    ) -> (
        std::process::Child,
        std::process::ChildStdin,
        std::process::ChildStdout,
    ) {
        let mut child = std::process::Command::new("bash")
            .args(["--norc", "--noprofile"])
            .args(extra)
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("bash");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        (child, stdin, stdout)
    }

    /// A console on a [`bash_board`], the shell found.
    fn bash_console(noisy: Option<&'static str>) -> (Console, std::process::Child) {
        let (child, stdin, stdout) = bash_board(&[], &[]);
        let writer: Box<dyn Write + Send> = match noisy {
            Some(prefix) => Box::new(NoisyWire {
                inner: stdin,
                prefix,
                line: Vec::new(),
                done: false,
            }),
            None => Box::new(stdin),
        };
        let mut c = Console::over("bash".into(), Box::new(stdout), writer, None);
        c.attach_shell(&Login::from_env(), Duration::from_secs(20))
            .expect("attach");
        (c, child)
    }

    #[test]
    fn sentinel_answers_are_found_in_a_line() {
        assert_eq!(sync_answer("EPSYNC 123456"), Some(123_456));
        assert_eq!(sync_answer("[ 2.5] noise EPSYNC 42"), Some(42));
        assert_eq!(sync_answer("echo \"EPSYNC $((42+0))\""), None);
        assert_eq!(sync_answer("echo \"EPSYNC $((42+0))\" EPSYNC 42"), Some(42));
        assert_eq!(sync_answer("EPSYNC"), None);
    }

    #[test]
    fn transcripts_escape_control_bytes() {
        assert_eq!(escape_bytes(b"ok\x15\\\n\xff"), "ok\\x15\\\\\\n\\xff");
    }

    /// A shell slower to answer than the retry interval (each `stty` takes 4 s, as on a loaded
    /// emulator): the first answer counts, and the late answers to the retries never reach a script.
    #[test]
    fn a_shell_slower_than_the_retries_is_found() {
        let dir = tempfile::tempdir().expect("tempdir");
        let env = dir.path().join("slow-stty");
        std::fs::write(
            &env,
            "trap '[[ $BASH_COMMAND == *stty* ]] && sleep 4' DEBUG\n",
        )
        .expect("env");
        let (mut child, stdin, stdout) = bash_board(&[], &[("BASH_ENV", &env)]);
        let mut c = Console::over("slow bash".into(), Box::new(stdout), Box::new(stdin), None);
        c.attach_shell(&Login::from_env(), Duration::from_secs(30))
            .expect("attach");
        let (status, lines) = c
            .script("echo after", Duration::from_secs(30), "a script")
            .expect("script");
        assert_eq!((status, lines), (0, vec!["after".to_string()]));
        let _ = child.kill();
        let _ = child.wait();
    }

    /// A pipe whose reads time out after 100 ms, as a serial port's do (prompts come without a newline).
    struct TimedPipe(std::process::ChildStdout);

    impl Read for TimedPipe {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            use std::os::fd::AsRawFd;
            let mut fds = libc::pollfd {
                fd: self.0.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            if unsafe { libc::poll(&mut fds, 1, 100) } == 0 {
                return Err(std::io::ErrorKind::TimedOut.into());
            }
            self.0.read(buf)
        }
    }

    /// A "board" that asks for a login first, like getty + login on a UART: `login:` and `Password:`
    /// without a newline, then a shell for the right password, `Login incorrect` for a wrong one.
    fn login_console(password: &str) -> (Console, std::process::Child) {
        let script = "while :; do printf 'board login: '; read -r u; printf 'Password: '; read -r p; \
                      if [ \"$u\" = root ] && [ \"$p\" = s3cret ]; then exec bash --norc --noprofile; fi; \
                      echo; echo 'Login incorrect'; done";
        let (mut child, stdin, stdout) = bash_board(&["-c", script], &[]);
        let mut c = Console::over(
            "login".into(),
            Box::new(TimedPipe(stdout)),
            Box::new(stdin),
            None,
        );
        let login = Login {
            user: "root".into(),
            password: Some(password.into()),
        };
        match c.attach_shell(&login, Duration::from_secs(20)) {
            Ok(()) => (c, child),
            Err(e) => {
                let _ = child.kill();
                panic!("{e}")
            }
        }
    }

    #[test]
    fn a_login_prompt_is_answered() {
        let (mut c, mut child) = login_console("s3cret");
        let (status, lines) = c
            .script("id -un", Duration::from_secs(20), "id")
            .expect("script");
        assert_eq!(status, 0);
        assert_eq!(lines.len(), 1);
        let _ = child.kill();
        let _ = child.wait();
    }

    #[test]
    fn a_refused_login_is_reported() {
        let result = std::panic::catch_unwind(|| login_console("wrong"));
        let message = match result {
            Ok(_) => panic!("a wrong password logged in"),
            Err(e) => e.downcast_ref::<String>().cloned().unwrap_or_default(),
        };
        assert!(message.contains("root"), "{message}");
        assert!(message.contains("Login incorrect"), "{message}");
    }

    #[test]
    fn scripts_run_framed_with_their_status() {
        let (mut c, mut child) = bash_console(None);
        let (status, lines) = c
            .script(
                "echo one; echo 'two  spaced'; echo oops >&2; printf last; exit 3",
                Duration::from_secs(20),
                "a test script",
            )
            .expect("script");
        assert_eq!(
            (status, lines),
            (3, vec!["one".into(), "two  spaced".into(), "last".into()])
        );
        // The shell is still there for the next one.
        let (status, lines) = c
            .script("uname -s", Duration::from_secs(20), "uname")
            .expect("script");
        assert_eq!((status, lines), (0, vec!["Linux".to_string()]));
        let _ = child.kill();
        let _ = child.wait();
    }

    /// A real bundle-sized push through the board script, with one chunk damaged on the wire and an
    /// interrupted first attempt resumed.
    #[test]
    fn push_checks_chunks_resends_damaged_ones_and_resumes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut tar = tar::Builder::new(Vec::new());
        let data: Vec<u8> = (0..20_000u32)
            .flat_map(|i| (i * 7919).to_le_bytes())
            .collect();
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        tar.append_data(&mut header, "p/blob", &data[..])
            .expect("tar");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::none());
        gz.write_all(&tar.into_inner().expect("tar")).expect("gz");
        let bundle = gz.finish().expect("gz");
        let sha = crate::bundle::sha256_hex(&bundle);
        let where_ = dir.path().display().to_string();
        // An earlier push that stopped after one and a half chunks.
        std::fs::write(
            dir.path().join(format!("{sha}.serial")),
            &bundle[..CHUNK + CHUNK / 2],
        )
        .expect("partial");
        let (mut c, mut child) = bash_console(Some("C 3 "));
        let stats = c.push(&where_, &sha, &bundle).expect("push");
        assert_eq!(stats.resumed_chunks, 1, "{stats:?}");
        // The damaged line fails its batch's check: that batch went twice.
        assert!(stats.resent >= 1, "{stats:?}");
        assert!(stats.bytes >= bundle.len() - CHUNK + CHUNK, "{stats:?}");
        let got = std::fs::read(dir.path().join(&sha).join("p/blob")).expect("unpacked");
        assert!(got == data, "unpacked bytes differ");
        assert!(dir.path().join(&sha).join(".complete").is_file());
        let left: Vec<String> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, vec![sha.clone()]);
        let _ = child.kill();
        let _ = child.wait();
    }

    #[test]
    fn chunk_lines_fit_a_tty_line() {
        let line = chunk_line(99_999, &[0xffu8; CHUNK]);
        assert!(batch_line(99_999, b"x").len() < 100);
        assert!(line.len() < 4095, "{}", line.len());
        assert!(line.starts_with("C 99999 "));
    }
}
