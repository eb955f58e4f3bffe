//! Command-line parsing, by hand to keep the loader small. Pure: no filesystem access here.

use std::ffi::OsString;
use std::path::PathBuf;

/// The usage text printed by `--help`.
pub const USAGE: &str = "\
ebpf-run - load, attach and watch the eBPF probes of an ebpf-pack bundle

usage: ebpf-run [PROBE [TOOL OPTIONS] [interval [count]] | FILE.bpf.o ...] [--duration SECS]
                [--interval SECS [--count N]] [--format text|json] [--set NAME=VALUE ...] [--btf FILE] [--bundle DIR] [--iface IFACE]
                [--cgroup DIR] [--freq HZ] [--attach PROG=TARGET ...] [--uprobe-path PATH --uprobe-func FUNC] [--perf-buffer]
                [--tc-netlink] [--full-btf] [--strict] [--map-size NAME=N ...] [--kconfig FILE]
       ebpf-run --list [PROBE|FILE.bpf.o ...] [--bundle DIR]
       ebpf-run --check [PROBE|FILE.bpf.o ...] [--btf FILE] [--bundle DIR] [--kconfig FILE]

  PROBE            a probe of the bundle (bpf/PROBE.bpf.o); default: all of them
  FILE.bpf.o       any BPF object file (an argument ending in .o)
  TOOL OPTIONS     after a probe, its own options in the spelling of the BCC tool of the same
                   name (`opensnoop -p 42 -x`; `ebpf-run PROBE -h` lists them): each sets a
                   `const volatile` global; `-d SECS`, `-i SECS` and trailing `interval [count]`
                   numbers mean --duration, --interval and --count unless the tool declares them
  --duration SECS  stop after SECS seconds (default: run until Ctrl-C / SIGTERM)
  --interval SECS  also print the maps every SECS seconds
  --count N        stop after N rounds of --interval map dumps
  --format FMT     text (default) or json: one JSON object per line for events and map entries
  --set NAME=VALUE set a `const volatile` global of the probes (typed by their BTF; --list shows them)
  --btf FILE       kernel BTF for CO-RE (default: the bundle's btf/vmlinux.btf,
                   else /sys/kernel/btf/vmlinux)
  --bundle DIR     the unpacked bundle (default: the bundle inside this executable, made by
                   `ebpf-pack build --single` and checked against its SHA256SUMS, else the
                   directory of this executable)
  --iface IFACE    network interface for xdp, tc/classifier and socket programs
  --cgroup DIR     cgroup v2 directory for cgroup_skb programs (default: the cgroup2 mount)
  --freq HZ        sampling frequency of perf_event programs, per CPU (default 99)
  --attach PROG=TARGET
                   where program PROG of a bare section (`kprobe`, `kretprobe`, `fentry`, `fexit`,
                   `tracepoint`, `raw_tp`, `tp_btf`, `uprobe`: no target in the section, as libbpf
                   objects whose user code attaches them) goes: a function, CATEGORY/NAME, a
                   tracepoint name, or PATH:FUNC; repeatable
  --uprobe-path P  binary or library for bare `uprobe`/`uretprobe` sections
  --uprobe-func F  function in it (sections may name both: uprobe/PATH:FUNC)
  --tc-netlink     attach tc/classifier programs as netlink filters on a clsact qdisc (what
                   kernels before 6.6, without tcx links, get anyway); a qdisc added for the run
                   is deleted at exit
  --map-size NAME=N
                   max_entries of map NAME (a ring buffer: its size in bytes), for maps whose user
                   code sizes them at run time; a map declaring 0 gets 10240 entries (ring buffers
                   256 KiB, perf event arrays one slot per CPU), said in one line; repeatable
  --kconfig FILE   the running kernel's .config (plain or gzip) for `.kconfig` externs
                   (`extern bool CONFIG_X __kconfig;`; default: /boot/config-$(uname -r), else
                   /proc/config.gz, as libbpf reads it)
  --strict         fail when any program of an object cannot load or attach here (default: skip
                   it, say why, and run the object's others; an object none of whose programs
                   runs always fails)
  --perf-buffer    send the records of ring buffers that declare a perf-buffer fallback
                   (EBPF_PACK_EVENTS) through it, as on kernels before 5.8, where it is automatic
  --full-btf       relocate CO-RE against the kernel's whole BTF, parsed by aya, instead of
                   only the types the probes' relocations can match (slower, more memory)
  --list           show what the bundle is for (its manifest.json) and each probe's programs,
                   attach points, settings and maps; load nothing
  --check          report whether this kernel can run the probes: bpf(2) and privilege, BTF,
                   each program and map type (probed with real minimal loads), kprobe/uprobe
                   support, JIT, tracefs, the bundle's lowest kernel; ends with a verdict line
  -h, --help       show this help
  -V, --version    show the version

Attach kinds by section: tracepoint/ tp/ raw_tracepoint/ raw_tp/ tp_btf/ fentry/ fexit/ kprobe/
kretprobe/ (`kprobe/vfs_*`: every function the glob matches; `kprobe/{NAME}`: where setting NAME
says) uprobe[/PATH:FUNC] uretprobe[/PATH:FUNC] perf_event (cpu-clock sampling) xdp (link,
kernel 5.9+) classifier[/egress] (tcx link on 6.6+, else a netlink filter on a clsact qdisc;
aya 0.14 cannot read `tc` sections)
socket (on a packet socket bound to --iface) cgroup_skb/ingress|egress.
Ring buffer records print to stdout, one line each: `PROBE field=value ...`, the tokens aligned in
columns per ring buffer. Records a probe could not reserve (ring buffer full) are counted by the probe
(EP_RINGBUF_RESERVE in ebpf_pack.h): a warning each second they grow, and at exit on stderr
`PROBE MAP: N records printed, M lost` (JSON: {\"probe\":P,\"map\":M,\"printed\":N,\"lost\":M}).
On exit, hash and array maps print as `PROBE map NAME:` and one line per entry; a map whose
value is `struct { uN slots[N]; }` prints as a log2 histogram (slot i counts 2^i..2^(i+1)-1); a map
whose key holds stack ids (ep_kstack_t/ep_ustack_t) prints folded stacks, `comm;outer;...;inner N`,
kernel frames (from /proc/kallsyms) marked _[k], user frames named from the mapped files' symbols.
JSON lines: {\"probe\":P,\"map\":M,FIELDS...} for events, {\"probe\":P,\"map\":M,\"key\":K,\"value\":V}
for map entries (with \"stacks\":[{\"kind\":\"user\"|\"kernel\",\"ips\":[...]}] for stack keys, after a
{\"probe\":P,\"map\":M,\"symbols\":{\"kernel\":[...],\"processes\":[...]}} line saying what names them),
{\"dump\":\"interval\"} (or \"exit\") after each round of them. Status and errors go to stderr.

exit codes:
  0  success
  1  usage error (bad option, unknown probe name)
  2  bad bundle, object or BTF (unreadable, malformed, CO-RE without BTF)
  3  load failure (verifier rejection, map creation, CO-RE relocation, privilege)
  4  attach failure (missing tracepoint or function, unsupported program kind)
  5  --check: this kernel cannot run the probes
";

/// What the user asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Load, attach, print events and map contents.
    Run(Options),
    /// Describe the probes without loading them.
    List(Options),
    /// Report whether the running kernel can run the probes.
    Check(Options),
    /// Print [`USAGE`].
    Help,
    /// Print the version.
    Version,
}

/// A positional argument: a bundle probe name or a path to a loose object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A probe of the bundle, by name (`opensnoop`).
    Probe(String),
    /// An object file given by path (anything ending in `.o`).
    File(PathBuf),
}

/// How events and map entries are printed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    /// `probe field=value ...` lines, map sections, histograms.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Attach targets that a section name alone cannot give.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttachOptions {
    /// `--iface`: network interface for xdp, tc and socket programs.
    pub iface: Option<String>,
    /// `--cgroup`: cgroup v2 directory for cgroup_skb programs.
    pub cgroup: Option<PathBuf>,
    /// `--freq`: perf_event sampling frequency in Hz.
    pub freq: Option<u64>,
    /// `--uprobe-path`: target of bare uprobe sections.
    pub uprobe_path: Option<PathBuf>,
    /// `--uprobe-func`: function of bare uprobe sections.
    pub uprobe_func: Option<String>,
    /// `--tc-netlink`: attach tc programs as netlink filters even where tcx links exist.
    pub tc_netlink: bool,
    /// `--attach PROG=TARGET`: where programs in bare sections (`SEC("kprobe")`) attach.
    pub targets: Vec<(String, String)>,
}

/// A word of the command line that is not one of ebpf-run's own `--` options: a probe, an object
/// file, or an option of the tool before it (`opensnoop -p 42`), told apart by tool_args::split once
/// the tools' objects say which options they take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Word {
    /// Anything before `--`.
    Plain(OsString),
    /// After `--`: always a probe or an object file.
    Literal(OsString),
}

/// Options shared by running and listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// Probes, files and tool options, in order; no probe named means every probe of the bundle.
    pub words: Vec<Word>,
    /// Stop after this many seconds.
    pub duration_secs: Option<u64>,
    /// Print the maps every this many seconds.
    pub interval_secs: Option<u64>,
    /// Stop after this many rounds of `--interval` dumps (the last one is the exit dump).
    pub count: Option<u64>,
    /// Output format.
    pub format: Format,
    /// `--set NAME=VALUE` pairs, in order.
    pub sets: Vec<(String, String)>,
    /// Where the network, cgroup, perf and uprobe kinds attach.
    pub attach: AttachOptions,
    /// Kernel BTF file to relocate against.
    pub btf: Option<PathBuf>,
    /// Bundle directory.
    pub bundle: Option<PathBuf>,
    /// `--perf-buffer`: use the perf-buffer fallback of ring buffers that have one, on any kernel.
    pub perf_buffer: bool,
    /// `--full-btf`: relocate against the kernel's whole BTF instead of the types the probes need.
    pub full_btf: bool,
    /// `--map-size NAME=N`: max_entries of map NAME (ring buffers: bytes), whatever it declares.
    pub map_sizes: Vec<(String, u32)>,
    /// `--kconfig FILE`: the kernel config `.kconfig` externs take their values from.
    pub kconfig: Option<PathBuf>,
    /// `--strict`: a program of an object that cannot load or attach fails the run, instead of being
    /// skipped while the object's others run.
    pub strict: bool,
}

/// A usage error: what was wrong with the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

/// Parses the arguments after the program name.
pub fn parse<I: IntoIterator<Item = OsString>>(args: I) -> Result<Command, UsageError> {
    let mut opts = Options::default();
    let mut list = false;
    let mut check = false;
    let mut positional_only = false;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let text = arg.to_string_lossy().into_owned();
        if positional_only {
            opts.words.push(Word::Literal(arg));
            continue;
        }
        // Words and short options go to tool_args::split: after a tool's name, `-h` is its help.
        let short = text.starts_with('-') && !text.starts_with("--");
        if !text.starts_with('-') || text == "-" || (short && !opts.words.is_empty()) {
            opts.words.push(Word::Plain(arg));
            continue;
        }
        // `--opt=value` and `--opt value` are both accepted.
        let (flag, inline) = match text.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(OsString::from(v))),
            _ => (text.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| UsageError(format!("{name} needs a value")))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            "--list" => list = true,
            "--check" => check = true,
            "--perf-buffer" => opts.perf_buffer = true,
            "--full-btf" => opts.full_btf = true,
            "--tc-netlink" => opts.attach.tc_netlink = true,
            "--" => positional_only = true,
            "--duration" => opts.duration_secs = Some(seconds("--duration", value("--duration")?)?),
            "--interval" => match seconds("--interval", value("--interval")?)? {
                0 => return Err(UsageError("--interval needs at least 1 second".into())),
                s => opts.interval_secs = Some(s),
            },
            "--count" => match seconds("--count", value("--count")?)? {
                0 => return Err(UsageError("--count needs at least 1".into())),
                n => opts.count = Some(n),
            },
            "--format" => {
                opts.format = match value("--format")?.to_str() {
                    Some("text") => Format::Text,
                    Some("json") => Format::Json,
                    _ => return Err(UsageError("--format is text or json".into())),
                }
            }
            "--set" => {
                let v = value("--set")?;
                let pair = v.to_str().and_then(|s| s.split_once('='));
                match pair {
                    Some((name, val)) if !name.is_empty() => {
                        opts.sets.push((name.to_owned(), val.to_owned()))
                    }
                    _ => {
                        return Err(UsageError(format!(
                            "--set needs NAME=VALUE, got `{}`",
                            v.to_string_lossy()
                        )));
                    }
                }
            }
            "--iface" => opts.attach.iface = Some(text_value("--iface", value("--iface")?)?),
            "--cgroup" => opts.attach.cgroup = Some(PathBuf::from(value("--cgroup")?)),
            "--freq" => match seconds("--freq", value("--freq")?)? {
                0 => return Err(UsageError("--freq needs at least 1 Hz".into())),
                hz => opts.attach.freq = Some(hz),
            },
            "--uprobe-path" => {
                opts.attach.uprobe_path = Some(PathBuf::from(value("--uprobe-path")?))
            }
            "--strict" => opts.strict = true,
            "--map-size" => {
                let text = text_value("--map-size", value("--map-size")?)?;
                let parsed = text
                    .split_once('=')
                    .and_then(|(n, v)| Some((n, v.parse::<u32>().ok().filter(|&v| v > 0)?)))
                    .filter(|(n, _)| !n.is_empty());
                match parsed {
                    Some((name, size)) => opts.map_sizes.push((name.to_owned(), size)),
                    None => {
                        return Err(UsageError(format!(
                            "--map-size `{text}`: expected NAME=N, N a positive number of entries \
                             (bytes for a ring buffer)"
                        )));
                    }
                }
            }
            "--attach" => {
                let text = text_value("--attach", value("--attach")?)?;
                match text.split_once('=') {
                    Some((prog, target)) if !prog.is_empty() && !target.is_empty() => opts
                        .attach
                        .targets
                        .push((prog.to_owned(), target.to_owned())),
                    _ => {
                        return Err(UsageError(format!(
                            "--attach `{text}`: expected PROG=TARGET (a program name, `=`, a function, \
                             CATEGORY/NAME tracepoint or PATH:FUNC)"
                        )));
                    }
                }
            }
            "--uprobe-func" => {
                opts.attach.uprobe_func =
                    Some(text_value("--uprobe-func", value("--uprobe-func")?)?)
            }
            "--btf" => opts.btf = Some(PathBuf::from(value("--btf")?)),
            "--kconfig" => opts.kconfig = Some(PathBuf::from(value("--kconfig")?)),
            "--bundle" => opts.bundle = Some(PathBuf::from(value("--bundle")?)),
            _ => return Err(UsageError(format!("unknown option `{text}`"))),
        }
        if inline.is_some()
            && matches!(
                flag.as_str(),
                "--list" | "--check" | "--perf-buffer" | "--tc-netlink" | "--full-btf" | "--"
            )
        {
            return Err(UsageError(format!("{flag} takes no value")));
        }
    }
    if opts.count.is_some() && opts.interval_secs.is_none() {
        return Err(UsageError(
            "--count counts --interval rounds: give --interval too".into(),
        ));
    }
    Ok(if list && check {
        return Err(UsageError("--list and --check do not go together".into()));
    } else if check {
        Command::Check(opts)
    } else if list {
        Command::List(opts)
    } else {
        Command::Run(opts)
    })
}

/// Parses a whole number (seconds, Hz) for `flag`.
fn seconds(flag: &str, v: OsString) -> Result<u64, UsageError> {
    v.to_str()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| {
            UsageError(format!(
                "{flag} needs a whole number, got `{}`",
                v.to_string_lossy()
            ))
        })
}

/// A non-empty UTF-8 value for `flag`.
fn text_value(flag: &str, v: OsString) -> Result<String, UsageError> {
    match v.into_string() {
        Ok(s) if !s.is_empty() => Ok(s),
        _ => Err(UsageError(format!("{flag} needs a name"))),
    }
}

/// Classifies a positional argument: a path when it ends in `.o`, else a probe name.
pub fn target(arg: OsString) -> Result<Target, UsageError> {
    if arg.as_encoded_bytes().ends_with(b".o") {
        return Ok(Target::File(PathBuf::from(arg)));
    }
    let name = arg
        .into_string()
        .map_err(|a| UsageError(format!("bad probe name `{}`", a.to_string_lossy())))?;
    if name.is_empty() || name.contains('/') {
        return Err(UsageError(format!(
            "`{name}` is neither a probe name nor an object file (FILE.bpf.o)"
        )));
    }
    Ok(Target::Probe(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_strs(args: &[&str]) -> Result<Command, UsageError> {
        parse(args.iter().map(OsString::from))
    }

    #[test]
    fn no_arguments_runs_the_whole_bundle() {
        assert_eq!(parse_strs(&[]), Ok(Command::Run(Options::default())));
    }

    #[test]
    fn positionals_are_probes_or_object_files() {
        let Ok(Command::Run(o)) = parse_strs(&[
            "opensnoop",
            "-p",
            "1",
            "./x.bpf.o",
            "--duration",
            "2",
            "/tmp/y.o",
        ]) else {
            panic!("expected run");
        };
        let plain = |w: &str| Word::Plain(w.into());
        assert_eq!(
            o.words,
            vec![
                plain("opensnoop"),
                plain("-p"),
                plain("1"),
                plain("./x.bpf.o"),
                plain("/tmp/y.o")
            ]
        );
        assert_eq!(o.duration_secs, Some(2));
        assert_eq!(
            target("./x.bpf.o".into()),
            Ok(Target::File("./x.bpf.o".into()))
        );
        assert_eq!(
            target("opensnoop".into()),
            Ok(Target::Probe("opensnoop".into()))
        );
    }

    #[test]
    fn options_take_values_separately_or_inline() {
        let Ok(Command::Run(o)) = parse_strs(&[
            "--duration",
            "3",
            "--btf=/b.btf",
            "--bundle",
            "/opt/bundle",
            "--kconfig=/c",
        ]) else {
            panic!("expected run");
        };
        assert_eq!(o.kconfig, Some(PathBuf::from("/c")));
        assert_eq!(o.duration_secs, Some(3));
        assert_eq!(o.btf, Some(PathBuf::from("/b.btf")));
        assert_eq!(o.bundle, Some(PathBuf::from("/opt/bundle")));
        let Ok(Command::Run(o)) = parse_strs(&[
            "--interval=5",
            "--format",
            "json",
            "--set",
            "filter_pid=42",
            "--set=name=a=b",
        ]) else {
            panic!("expected run");
        };
        assert_eq!(o.interval_secs, Some(5));
        let Ok(Command::Run(a)) = parse_strs(&[
            "--iface=veth0",
            "--cgroup",
            "/sys/fs/cgroup/x",
            "--freq",
            "49",
            "--uprobe-path",
            "/bin/sh",
            "--uprobe-func",
            "main",
            "--attach",
            "on_open=do_sys_openat2",
            "--attach=count=syscalls/sys_enter_getppid",
        ]) else {
            panic!("expected run");
        };
        assert_eq!(
            a.attach,
            AttachOptions {
                iface: Some("veth0".into()),
                cgroup: Some("/sys/fs/cgroup/x".into()),
                freq: Some(49),
                uprobe_path: Some("/bin/sh".into()),
                uprobe_func: Some("main".into()),
                tc_netlink: false,
                targets: vec![
                    ("on_open".into(), "do_sys_openat2".into()),
                    ("count".into(), "syscalls/sys_enter_getppid".into()),
                ],
            }
        );
        assert_eq!(o.format, Format::Json);
        assert_eq!(
            o.sets,
            vec![
                ("filter_pid".into(), "42".into()),
                ("name".into(), "a=b".into())
            ]
        );
    }

    #[test]
    fn list_help_and_version() {
        assert!(matches!(
            parse_strs(&["--list", "a"]),
            Ok(Command::List(o)) if o.words == vec![Word::Plain("a".into())]
        ));
        assert!(matches!(parse_strs(&["--check"]), Ok(Command::Check(_))));
        assert_eq!(parse_strs(&["x", "--help"]), Ok(Command::Help));
        assert_eq!(parse_strs(&["-h"]), Ok(Command::Help));
        assert_eq!(parse_strs(&["-V"]), Ok(Command::Version));
    }

    #[test]
    fn double_dash_ends_options() {
        let Ok(Command::Run(o)) = parse_strs(&["--", "--weird.o"]) else {
            panic!("expected run");
        };
        assert_eq!(o.words, vec![Word::Literal("--weird.o".into())]);
    }

    #[test]
    fn bad_command_lines_are_usage_errors() {
        for bad in [
            &["--duration"][..],
            &["--duration", "soon"],
            &["--duration", "-1"],
            &["--duration=1.5"],
            &["--btf"],
            &["--frobnicate"],
            &["--list=yes"],
            &["--perf-buffer=1"],
            &["--full-btf=yes"],
            &["--list", "--check"],
            &["--interval", "0"],
            &["--freq", "0"],
            &["--iface", ""],
            &["--format", "yaml"],
            &["--set", "novalue"],
            &["--set", "=1"],
            &["-p", "42"],
            &["--count", "3"],
            &["--count", "0", "--interval", "1"],
        ] {
            assert!(parse_strs(bad).is_err(), "{bad:?}");
        }
    }
}
