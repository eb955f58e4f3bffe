//! Command-line parsing, by hand to keep the loader small. Pure: no filesystem access here.

use std::ffi::OsString;
use std::path::PathBuf;

/// The usage text printed by `--help`.
pub const USAGE: &str = "\
ebpf-run - load, attach and watch the eBPF probes of an ebpf-pack bundle

usage: ebpf-run [PROBE|FILE.bpf.o ...] [--duration SECS] [--btf FILE] [--bundle DIR]
       ebpf-run --list [PROBE|FILE.bpf.o ...] [--bundle DIR]

  PROBE            a probe of the bundle (bpf/PROBE.bpf.o); default: all of them
  FILE.bpf.o       any BPF object file (an argument ending in .o)
  --duration SECS  stop after SECS seconds (default: run until Ctrl-C / SIGTERM)
  --btf FILE       kernel BTF for CO-RE (default: the bundle's btf/vmlinux.btf,
                   else /sys/kernel/btf/vmlinux)
  --bundle DIR     the unpacked bundle (default: the directory of this executable)
  --list           show each probe's programs and maps, load nothing
  -h, --help       show this help
  -V, --version    show the version

Ring buffer records print to stdout, one line each: `PROBE field=value ...`.
On exit, hash and array maps print as `PROBE map NAME:` and one line per entry.
Status and errors go to stderr.

exit codes:
  0  success
  1  usage error (bad option, unknown probe name)
  2  bad bundle, object or BTF (unreadable, malformed, CO-RE without BTF)
  3  load failure (verifier rejection, map creation, CO-RE relocation, privilege)
  4  attach failure (missing tracepoint or function, unsupported program kind)
";

/// What the user asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Load, attach, print events and map contents.
    Run(Options),
    /// Describe the probes without loading them.
    List(Options),
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

/// Options shared by running and listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// Probes or files to load; empty means every probe of the bundle.
    pub targets: Vec<Target>,
    /// Stop after this many seconds.
    pub duration_secs: Option<u64>,
    /// Kernel BTF file to relocate against.
    pub btf: Option<PathBuf>,
    /// Bundle directory.
    pub bundle: Option<PathBuf>,
}

/// A usage error: what was wrong with the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

/// Parses the arguments after the program name.
pub fn parse<I: IntoIterator<Item = OsString>>(args: I) -> Result<Command, UsageError> {
    let mut opts = Options::default();
    let mut list = false;
    let mut positional_only = false;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let text = arg.to_string_lossy().into_owned();
        if positional_only || !text.starts_with('-') || text == "-" {
            opts.targets.push(target(arg)?);
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
            "--" => positional_only = true,
            "--duration" => {
                let v = value("--duration")?;
                let secs = v
                    .to_str()
                    .and_then(|s| s.parse::<u64>().ok())
                    .ok_or_else(|| {
                        UsageError(format!(
                            "--duration needs whole seconds, got `{}`",
                            v.to_string_lossy()
                        ))
                    })?;
                opts.duration_secs = Some(secs);
            }
            "--btf" => opts.btf = Some(PathBuf::from(value("--btf")?)),
            "--bundle" => opts.bundle = Some(PathBuf::from(value("--bundle")?)),
            _ => return Err(UsageError(format!("unknown option `{text}`"))),
        }
        if inline.is_some() && matches!(flag.as_str(), "--list" | "--") {
            return Err(UsageError(format!("{flag} takes no value")));
        }
    }
    Ok(if list {
        Command::List(opts)
    } else {
        Command::Run(opts)
    })
}

/// Classifies a positional argument: a path when it ends in `.o`, else a probe name.
fn target(arg: OsString) -> Result<Target, UsageError> {
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
        let Ok(Command::Run(o)) = parse_strs(&["opensnoop", "./x.bpf.o", "/tmp/y.o"]) else {
            panic!("expected run");
        };
        assert_eq!(
            o.targets,
            vec![
                Target::Probe("opensnoop".into()),
                Target::File("./x.bpf.o".into()),
                Target::File("/tmp/y.o".into()),
            ]
        );
    }

    #[test]
    fn options_take_values_separately_or_inline() {
        let Ok(Command::Run(o)) =
            parse_strs(&["--duration", "3", "--btf=/b.btf", "--bundle", "/opt/bundle"])
        else {
            panic!("expected run");
        };
        assert_eq!(o.duration_secs, Some(3));
        assert_eq!(o.btf, Some(PathBuf::from("/b.btf")));
        assert_eq!(o.bundle, Some(PathBuf::from("/opt/bundle")));
    }

    #[test]
    fn list_help_and_version() {
        assert!(matches!(
            parse_strs(&["--list", "a"]),
            Ok(Command::List(o)) if o.targets == vec![Target::Probe("a".into())]
        ));
        assert_eq!(parse_strs(&["x", "--help"]), Ok(Command::Help));
        assert_eq!(parse_strs(&["-h"]), Ok(Command::Help));
        assert_eq!(parse_strs(&["-V"]), Ok(Command::Version));
    }

    #[test]
    fn double_dash_ends_options() {
        let Ok(Command::Run(o)) = parse_strs(&["--", "--weird.o"]) else {
            panic!("expected run");
        };
        assert_eq!(o.targets, vec![Target::File("--weird.o".into())]);
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
            &["dir/probe"],
            &[""],
        ] {
            assert!(parse_strs(bad).is_err(), "{bad:?}");
        }
    }
}
