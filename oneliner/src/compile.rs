//! Checks a parsed program against what the target offers and writes it as BPF C for ebpf-pack's
//! compile step: one C function per attach point, maps as BTF-defined per-CPU maps (no atomics: the
//! loader sums the CPUs), and the [`Layout`] the host needs to print the maps as bpftrace does.
//! Every problem is a [`Diagnostic`] at its place in the program, found before clang runs.

use std::fmt::Write as _;

use ebpf_pack_object::glob::wildcard_match;

use crate::ast::{AttachPoint, Expr, ExprKind, MapRef, Probe, Program, Stmt};
use crate::diagnostic::{Diagnostic, Span};

/// The argument table of syscall tracepoints (scripts/gen-syscall-args.sh).
const SYSCALL_ARGS: &str = include_str!("syscall_args.txt");
/// The record table of the other tracepoints (scripts/gen-tracepoint-args.sh).
const TRACEPOINT_ARGS: &str = include_str!("tracepoint_args.txt");

/// Bytes `str()` reads by default, as bpftrace's `BPFTRACE_STRLEN` (64).
pub const STR_LEN: usize = 64;
/// Slots of a `hist()`: below zero, zero, then one per power of two up to 2^63.
pub const HIST_SLOTS: usize = 66;
/// Most slots an `lhist()` may have (between min and max, plus below and above).
pub const MAX_LHIST_SLOTS: u64 = 1002;
/// Entries of each map (bpftrace's default map size is 4096; the loader's default for maps of
/// libbpf objects is 10240).
pub const MAP_ENTRIES: u32 = 10240;
/// Most keys a map may have.
pub const MAX_KEYS: usize = 8;
/// Most pointers one `->` chain follows (libbpf's `BPF_CORE_READ` takes nine accessors).
pub const MAX_KERNEL_STEPS: usize = 9;

/// What the compiler knows of the target board.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// The syscalls of the board's architecture (its syscall table): `syscalls:sys_enter_*`
    /// tracepoints exist for these.
    pub syscalls: Vec<String>,
    /// Rows of the syscall argument table (`syscall_args.txt`'s format) that differ on the board's
    /// architecture (clone's argument order), read before the table.
    pub syscall_rows: Vec<String>,
}

/// How a map's entries aggregate, and so how they print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MapKind {
    /// `count()`.
    Count,
    /// `sum(x)`.
    Sum,
    /// `avg(x)`: a count and a total.
    Avg,
    /// `stats(x)`: the same count and total, printed as count, average and total.
    Stats,
    /// `min(x)`: the lowest value (signed, as bpftrace's).
    Min,
    /// `max(x)`: the highest value.
    Max,
    /// `hist(x)`: [`HIST_SLOTS`] power-of-two slots.
    Hist,
    /// `lhist(x, min, max, step)`.
    Lhist {
        /// Lowest value of the first bucket.
        min: u64,
        /// Where the last bucket starts.
        max: u64,
        /// Bucket width.
        step: u64,
    },
    /// `@m[k] = value`: the last value written.
    Value {
        /// The value is signed.
        signed: bool,
    },
}

impl MapKind {
    fn name(&self) -> &'static str {
        match self {
            MapKind::Count => "count()",
            MapKind::Sum => "sum()",
            MapKind::Avg => "avg()",
            MapKind::Stats => "stats()",
            MapKind::Min => "min()",
            MapKind::Max => "max()",
            MapKind::Hist => "hist()",
            MapKind::Lhist { .. } => "lhist()",
            MapKind::Value { .. } => "a plain value",
        }
    }
}

/// The type of a map key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// An integer.
    Int {
        /// Signed.
        signed: bool,
    },
    /// A string of at most `len` bytes.
    Str {
        /// Buffer size.
        len: usize,
    },
    /// `func` (or `probe`, with its `kprobe:`/`kretprobe:` prefix) of a wildcard kprobe: the traced
    /// function's address, which ebpf-run names from the board's /proc/kallsyms.
    Ksym {
        /// Printed before the name (`probe`'s `kprobe:`).
        prefix: Option<&'static str>,
    },
    /// `kstack` or `ustack` (`ustack(N)`: the innermost N frames): a stack id of the object's
    /// stack-trace map, which ebpf-run resolves to addresses and the host names.
    Stack {
        /// User (`ustack`), not kernel.
        user: bool,
        /// Frames shown, innermost first.
        frames: usize,
    },
}

/// The name of the object's stack-trace map (`kstack`, `ustack`).
pub const STACK_MAP: &str = "bt_stacks";
/// Frames a stack keeps: the kernel's limit, `EP_STACK_DEPTH` of the probe header.
pub const STACK_DEPTH: usize = 127;

/// One map of the program as the host prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapLayout {
    /// The bpftrace name without `@` (empty for `@`).
    pub name: String,
    /// The map's name in the object.
    pub c_name: String,
    /// How it aggregates.
    pub kind: MapKind,
    /// Its keys, in order (the object's key struct has fields `k0`, `k1`, ...).
    pub keys: Vec<KeyKind>,
}

/// Everything the host needs to print what the object's maps hold.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Layout {
    /// The maps, sorted by bpftrace name (the order bpftrace prints them in).
    pub maps: Vec<MapLayout>,
    /// The `printf()`s of the probes, by site number (the `site` of their records).
    pub printfs: Vec<PrintfSite>,
    /// What `BEGIN` prints, before the probes' output.
    pub begin: String,
    /// What `END` prints, at the end, before the maps.
    pub end: String,
    /// The `interval:s:N` probe, run on the host at each of ebpf-run's interval dumps.
    pub interval: Option<Interval>,
    /// How many probes the program attaches, `BEGIN`, `END` and the interval counted as bpftrace
    /// counts them.
    pub probes: usize,
}

/// An `interval:s:N` probe: what the host does every N seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interval {
    /// N.
    pub secs: u64,
    /// Its statements, in order.
    pub actions: Vec<HostAction>,
}

/// A statement of a probe that runs on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostAction {
    /// `print(@name)`: the map as it is now.
    Print(String),
    /// `printf()` of literals: this text.
    Text(String),
    /// `clear(@name)`: its entries go after the dump (the loader empties the map).
    Clear(String),
    /// `exit()`: the run ends, its maps printed as at any end.
    Exit,
}

/// One `printf()` of a probe: its format and the kinds of its arguments, in order. Numbers travel
/// in the record's `n0`, `n1`, ... fields, strings in `s0`, `s1`, ... An `exit()` of a probe is a
/// site too, without format: its record ends the run once the lines before it are printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrintfSite {
    /// The format, escapes resolved.
    pub format: String,
    /// Each argument's kind.
    pub args: Vec<KeyKind>,
    /// The site is an `exit()`: the host stops the run when its record arrives.
    pub exits: bool,
}

/// The ring buffer `printf()` records go through (`struct bt_printf`).
pub const PRINTF_MAP: &str = "bt_printf";
/// Most number arguments of one `printf()`.
pub const PRINTF_INTS: usize = 8;
/// Most string arguments of one `printf()`, and the bytes of each.
pub const PRINTF_STRS: usize = 4;
/// Bytes a `printf()` string argument keeps.
pub const PRINTF_STR_LEN: usize = 64;

/// A compiled program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compiled {
    /// The BPF C source.
    pub c: String,
    /// How to print its maps.
    pub layout: Layout,
}

/// Compiles `program` for `target`.
pub fn compile(program: &Program, target: &Target) -> Result<Compiled, Diagnostic> {
    let mut cx = Compiler {
        target,
        maps: Vec::new(),
        functions: String::new(),
        programs: 0,
        printfs: Vec::new(),
        begin: String::new(),
        end: String::new(),
        interval: None,
        interval_spans: Vec::new(),
        stacks: false,
        globals: String::new(),
    };
    for probe in &program.probes {
        cx.probe(probe)?;
    }
    if cx.programs == 0 {
        let at = program
            .probes
            .first()
            .and_then(|p| p.points.first())
            .map_or(Span::default(), |p| p.span);
        return Err(
            Diagnostic::new(at, "the program has no probe that runs on the board")
                .hint("add one, e.g. tracepoint:syscalls:sys_enter_openat { @[comm] = count(); }"),
        );
    }
    // The maps an interval probe prints or clears must exist; cleared ones carry EP_CLEAR.
    let mut cleared = Vec::new();
    if let Some(iv) = &cx.interval {
        for (a, at) in iv.actions.iter().zip(&cx.interval_spans) {
            let (HostAction::Print(name) | HostAction::Clear(name)) = a else {
                continue;
            };
            if !cx.maps.iter().any(|m| &m.layout.name == name) {
                return Err(Diagnostic::new(*at, format!("@{name} is never assigned"))
                    .hint("print() and clear() take a map the probes assign"));
            }
            if matches!(a, HostAction::Clear(_)) {
                cleared.push(name.clone());
            }
        }
    }
    let mut c = String::from(PRELUDE);
    if !cx.printfs.is_empty() {
        c.push_str(&printf_record());
    }
    c.push_str(&cx.globals);
    if cx.stacks {
        let _ = writeln!(
            c,
            "\n/* The stacks of kstack and ustack keys (ebpf-run reads them, never prints them). */\nstruct {{\n\t__uint(type, BPF_MAP_TYPE_STACK_TRACE);\n\t__uint(max_entries, {MAP_ENTRIES});\n\t__type(key, __u32);\n\t__type(value, __u64[EP_STACK_DEPTH]);\n}} {STACK_MAP} EP_SCRATCH SEC(\".maps\");"
        );
    }
    for (i, m) in cx.maps.iter().enumerate() {
        c.push_str(&map_definition(i, m, cleared.contains(&m.layout.name)));
    }
    c.push_str(&cx.functions);
    let probes = cx.programs
        + usize::from(!cx.begin.is_empty())
        + usize::from(!cx.end.is_empty())
        + usize::from(cx.interval.is_some());
    let mut maps: Vec<MapLayout> = cx.maps.into_iter().map(|m| m.layout).collect();
    maps.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Compiled {
        c,
        layout: Layout {
            maps,
            printfs: cx.printfs,
            begin: cx.begin,
            end: cx.end,
            probes,
            interval: cx.interval,
        },
    })
}

/// The record of `printf()`s and its ring buffer (a perf buffer before 5.8).
fn printf_record() -> String {
    let mut out = format!(
        "\n/* One printf(): its site, then its numbers and strings. */\nstruct {PRINTF_MAP} {{\n\t__u32 site;\n\t__u32 __pad;\n"
    );
    for i in 0..PRINTF_INTS {
        let _ = writeln!(out, "\t__u64 n{i};");
    }
    for i in 0..PRINTF_STRS {
        let _ = writeln!(out, "\tchar s{i}[{PRINTF_STR_LEN}];");
    }
    let _ = writeln!(
        out,
        "}};\nEBPF_PACK_EVENTS({PRINTF_MAP}, struct {PRINTF_MAP}, 256 * 1024);"
    );
    out
}

const PRELUDE: &str = "\
// Generated by ebpf-pack from a bpftrace program: do not edit.
#include \"vmlinux.h\"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include \"ebpf_pack.h\"

char LICENSE[] SEC(\"license\") = \"GPL\";

/* Whether the NUL-terminated string in `a` equals the literal `b` of `n` bytes (its NUL included). */
#define __BT_STREQ(a, b, n)                                                                              \\
	({                                                                                                \\
		bool __eq = true;                                                                         \\
		_Pragma(\"unroll\") for (int __i = 0; __i < (n); __i++) if ((a)[__i] != (b)[__i]) __eq = false; \\
		__eq;                                                                                     \\
	})

/* bpftrace's hist() slot of v: 0 below zero, 1 for zero, 2 + log2(v) above. */
static __always_inline __attribute__((unused)) __u32 __bt_hist_slot(__s64 v)
{
	if (v < 0)
		return 0;
	if (v == 0)
		return 1;
	__u64 u = v;
	__u32 log = 0;
	_Pragma(\"unroll\") for (int i = 32; i > 0; i >>= 1) {
		if (u >> i) {
			u >>= i;
			log += i;
		}
	}
	return log + 2;
}
";

/// A map as the compiler collects it.
struct MapInfo {
    layout: MapLayout,
    /// Where it was first given its kind.
    first: Span,
}

/// The kinds of value an expression has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Int {
        signed: bool,
    },
    /// A pointer (a number that `str()` reads from), to user or kernel memory.
    Ptr {
        user: bool,
    },
    /// A NUL-terminated string in a buffer of `len` bytes.
    Str {
        len: usize,
    },
}

/// A compiled expression: C code (for a string, the name of its buffer) and its type.
struct Val {
    code: String,
    ty: Ty,
}

/// What the probe being compiled attaches to, for the builtins that depend on it.
#[derive(Clone)]
enum Context {
    /// `syscalls:sys_enter_NAME`: the arguments.
    SysEnter(Vec<(String, String)>),
    /// `syscalls:sys_exit_NAME`.
    SysExit,
    /// `raw_syscalls:sys_enter` / `sys_exit`.
    RawSys { exit: bool },
    /// Another tracepoint of the table: its record's fields (name, C type).
    Event { fields: Vec<(String, String)> },
    /// A tracepoint the table does not know: no `args`.
    Tracepoint,
    /// kprobe/uprobe, `ret` for the return kinds.
    Probe { ret: bool, user: bool },
    /// `profile:hz:N`: a CPU sample.
    Profile,
}

struct Compiler<'t> {
    target: &'t Target,
    maps: Vec<MapInfo>,
    functions: String,
    programs: usize,
    printfs: Vec<PrintfSite>,
    begin: String,
    end: String,
    interval: Option<Interval>,
    /// Where each action of `interval` is, for errors found at the end.
    interval_spans: Vec<Span>,
    /// A probe takes `kstack` or `ustack`: the object gets its stack-trace map.
    stacks: bool,
    /// `const volatile` settings of the object (a `profile:` probe's rate).
    globals: String,
}

/// One C function being written: its statements, scratch variables and temporaries.
struct Function {
    body: String,
    temps: usize,
    vars: Vec<(String, Ty)>,
    context: Context,
    /// The attach point's own text (`probe`) and function (`func`).
    probe: String,
    func: String,
}

/// The arguments of syscall `name` on `target`: its own row, else the table's.
fn syscall_args(target: &Target, name: &str) -> Option<Vec<(String, String)>> {
    target
        .syscall_rows
        .iter()
        .find_map(|row| table_row(row, name))
        .or_else(|| table_row(SYSCALL_ARGS, name))
        .map(|cols| cols.map(field).collect())
}

/// The columns after the first of the row of `table` (a generated tab-separated table, `#`
/// comments) whose first column is `name`.
fn table_row<'t>(table: &'t str, name: &str) -> Option<std::str::Split<'t, char>> {
    let line = table
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.split('\t').next() == Some(name))?;
    let mut cols = line.split('\t');
    cols.next();
    Some(cols)
}

/// A `TYPE NAME` column as (name, type); a `__data_loc` string's name is its BTF member's,
/// `__data_loc_NAME`.
fn field(col: &str) -> (String, String) {
    let (ty, name) = col.rsplit_once(' ').unwrap_or(("long", col));
    let ty = ty.trim().to_owned();
    if ty.starts_with("__data_loc") {
        (format!("__data_loc_{name}"), ty)
    } else {
        (name.to_owned(), ty)
    }
}

/// The record of tracepoint `category:event` in the table: its class and its fields.
fn tracepoint_record(name: &str) -> Option<(String, Vec<(String, String)>)> {
    let mut cols = table_row(TRACEPOINT_ARGS, name)?;
    let class = cols.next()?.to_owned();
    Some((class, cols.map(field).collect()))
}

/// Every tracepoint of the table whose `category:event` matches the patterns.
fn tracepoints_matching(category: &str, event: &str) -> Vec<String> {
    TRACEPOINT_ARGS
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split('\t').next())
        .filter(|n| {
            n.split_once(':')
                .is_some_and(|(c, e)| wildcard_match(category, c) && wildcard_match(event, e))
        })
        .map(str::to_owned)
        .collect()
}

/// Whether a C type from a tracepoint format is signed.
fn signed_c_type(ty: &str) -> bool {
    matches!(
        ty,
        "int"
            | "long"
            | "long long"
            | "short"
            | "pid_t"
            | "off_t"
            | "loff_t"
            | "ssize_t"
            | "clockid_t"
            | "key_t"
            | "mqd_t"
            | "timer_t"
            | "key_serial_t"
            | "time_t"
            | "s8"
            | "s16"
            | "s32"
            | "s64"
            | "__s8"
            | "__s16"
            | "__s32"
            | "__s64"
            | "signed char"
    )
}

/// Section name and context of one concrete attach point.
struct Point {
    section: String,
    context: Context,
    ctx_type: String,
    probe: String,
    func: String,
    /// A `const volatile __u64` the attach point reads (a profile probe's rate): name, value.
    setting: Option<(String, u64)>,
}

impl Compiler<'_> {
    /// The concrete attach points of a written one (wildcards expanded).
    fn points(&self, ap: &AttachPoint) -> Result<Vec<Point>, Diagnostic> {
        let parts: Vec<&str> = ap.text.split(':').collect();
        let outside = |what: &str| {
            Diagnostic::new(ap.span, format!("{what} is outside the supported subset"))
                .hint("see docs/ONELINERS.md for the probes the compiler supports")
        };
        match parts.as_slice() {
            ["tracepoint" | "t", "syscalls", event] => {
                let (enter, pattern) = if let Some(n) = event.strip_prefix("sys_enter_") {
                    (true, n)
                } else if let Some(n) = event.strip_prefix("sys_exit_") {
                    (false, n)
                } else {
                    return Err(Diagnostic::new(
                        ap.span,
                        format!("no tracepoint syscalls:{event}"),
                    )
                    .hint("syscall tracepoints are syscalls:sys_enter_NAME and syscalls:sys_exit_NAME"));
                };
                let names: Vec<&String> = self
                    .target
                    .syscalls
                    .iter()
                    .filter(|s| wildcard_match(pattern, s) && syscall_args(self.target, s).is_some())
                    .collect();
                if names.is_empty() {
                    return Err(Diagnostic::new(
                        ap.span,
                        format!("the target has no syscall matching `{pattern}`"),
                    )
                    .hint("the board's syscall table decides which syscalls:sys_enter_* tracepoints exist"));
                }
                Ok(names
                    .into_iter()
                    .map(|n| {
                        let dir = if enter { "sys_enter" } else { "sys_exit" };
                        Point {
                            section: format!("tracepoint/syscalls/{dir}_{n}"),
                            context: if enter {
                                Context::SysEnter(syscall_args(self.target, n).unwrap_or_default())
                            } else {
                                Context::SysExit
                            },
                            ctx_type: if enter {
                                "struct trace_event_raw_sys_enter".to_owned()
                            } else {
                                "struct trace_event_raw_sys_exit".to_owned()
                            },
                            probe: format!("tracepoint:syscalls:{dir}_{n}"),
                            func: format!("{dir}_{n}"),
                            setting: None,
                        }
                    })
                    .collect())
            }
            ["tracepoint" | "t", "raw_syscalls", e @ ("sys_enter" | "sys_exit")] => {
                let exit = *e == "sys_exit";
                Ok(vec![Point {
                    section: format!("tracepoint/raw_syscalls/{e}"),
                    context: Context::RawSys { exit },
                    ctx_type: if exit {
                        "struct trace_event_raw_sys_exit".to_owned()
                    } else {
                        "struct trace_event_raw_sys_enter".to_owned()
                    },
                    probe: format!("tracepoint:raw_syscalls:{e}"),
                    func: (*e).to_owned(),
                    setting: None,
                }])
            }
            ["tracepoint" | "t", category, event] => {
                let names = if category.contains(['*', '?']) || event.contains(['*', '?']) {
                    let names = tracepoints_matching(category, event);
                    if names.is_empty() {
                        return Err(Diagnostic::new(
                            ap.span,
                            format!("no known tracepoint matches `{category}:{event}`"),
                        )
                        .hint("wildcards expand over the tracepoints of oneliner/src/tracepoint_args.txt"));
                    }
                    names
                } else {
                    vec![format!("{category}:{event}")]
                };
                Ok(names
                    .into_iter()
                    .map(|name| {
                        let (c, e) = name.split_once(':').unwrap_or(("", ""));
                        let (context, ctx_type) = match tracepoint_record(&name) {
                            Some((class, fields)) => {
                                let ty = format!("struct trace_event_raw_{class}");
                                (Context::Event { fields }, ty)
                            }
                            None => (Context::Tracepoint, "void".to_owned()),
                        };
                        Point {
                            section: format!("tracepoint/{c}/{e}"),
                            context,
                            ctx_type,
                            probe: format!("tracepoint:{name}"),
                            func: e.to_owned(),
                            setting: None,
                        }
                    })
                    .collect())
            }
            // A wildcard stays one program: ebpf-run attaches it to every matching function of the
            // board kernel's available_filter_functions.
            [kind @ ("kprobe" | "k" | "kretprobe" | "kr"), function] => {
                let ret = kind.starts_with("kr");
                let k = if ret { "kretprobe" } else { "kprobe" };
                Ok(vec![Point {
                    section: format!("{k}/{function}"),
                    context: Context::Probe { ret, user: false },
                    ctx_type: "struct pt_regs".to_owned(),
                    probe: format!("{k}:{function}"),
                    func: (*function).to_owned(),
                    setting: None,
                }])
            }
            [kind @ ("uprobe" | "u" | "uretprobe" | "ur"), path, function] => {
                let ret = kind.starts_with("ur");
                let k = if ret { "uretprobe" } else { "uprobe" };
                Ok(vec![Point {
                    section: format!("{k}/{path}:{function}"),
                    context: Context::Probe { ret, user: true },
                    ctx_type: "struct pt_regs".to_owned(),
                    probe: format!("{k}:{path}:{function}"),
                    func: (*function).to_owned(),
                    setting: None,
                }])
            }
            ["profile" | "p", unit, n] => {
                let hz = profile_hz(unit, n).ok_or_else(|| {
                    Diagnostic::new(ap.span, format!("`{}` is no sampling rate this compiler supports", ap.text))
                        .hint("write profile:hz:N, or profile:s:N / profile:ms:N / profile:us:N for a whole number of samples per second")
                })?;
                Ok(vec![Point {
                    section: format!("perf_event/{{bt_hz_{hz}}}"),
                    context: Context::Profile,
                    ctx_type: "struct bpf_perf_event_data".to_owned(),
                    probe: ap.text.clone(),
                    func: String::new(),
                    setting: Some((format!("bt_hz_{hz}"), hz)),
                }])
            }
            // BEGIN, END and interval probes run on the host (`probe` takes them before this).
            [p @ ("profile" | "p" | "software" | "hardware" | "usdt" | "watchpoint" | "kfunc" | "fentry" | "kretfunc" | "fexit"), ..] => {
                Err(outside(&format!("the `{p}` probe")))
            }
            _ => Err(Diagnostic::new(ap.span, format!("unknown probe `{}`", ap.text)).hint(
                "probes are tracepoint:CATEGORY:EVENT, kprobe:FUNC, kretprobe:FUNC, uprobe:PATH:FUNC, uretprobe:PATH:FUNC",
            )),
        }
    }

    /// `BEGIN` and `END` run on the host: their `printf()`s of literals print there, at the start
    /// and at the end.
    fn host_probe(&mut self, probe: &Probe, which: &str) -> Result<(), Diagnostic> {
        if probe.points.len() > 1 || probe.predicate.is_some() {
            return Err(Diagnostic::new(
                probe.points[0].span,
                format!("{which} stands alone, without a filter"),
            ));
        }
        for stmt in &probe.body {
            let text = match stmt {
                Stmt::Expr(Expr {
                    kind: ExprKind::Call { name, args },
                    span,
                }) if name == "printf" => literal_printf(args, *span, which)?,
                other => {
                    let at = stmt_span(other);
                    return Err(Diagnostic::new(
                        at,
                        format!("{which} may only printf() here: it runs on the host"),
                    )
                    .hint("set maps and variables from the probes"));
                }
            };
            if which == "BEGIN" {
                self.begin.push_str(&text);
            } else {
                self.end.push_str(&text);
            }
        }
        Ok(())
    }

    /// `interval:s:N` (or `ms:` in whole seconds) runs on the host at each of ebpf-run's interval
    /// dumps: `print(@m)`, `clear(@m)`, `printf()` of literals and `exit()`.
    fn interval_probe(&mut self, probe: &Probe, ap: &AttachPoint) -> Result<(), Diagnostic> {
        if probe.points.len() > 1 || probe.predicate.is_some() {
            return Err(Diagnostic::new(
                ap.span,
                "an interval probe stands alone, without a filter",
            ));
        }
        if self.interval.is_some() {
            return Err(Diagnostic::new(ap.span, "one interval probe per program")
                .hint("ebpf-run dumps its maps at one interval; put the statements in one probe"));
        }
        let parts: Vec<&str> = ap.text.split(':').collect();
        let secs = match parts.as_slice() {
            [_, "s", n] => n.parse::<u64>().ok(),
            [_, "ms", n] => n
                .parse::<u64>()
                .ok()
                .filter(|ms| ms % 1000 == 0)
                .map(|ms| ms / 1000),
            _ => None,
        }
        .filter(|s| *s > 0)
        .ok_or_else(|| {
            Diagnostic::new(
                ap.span,
                format!("`{}` is no interval this compiler supports", ap.text),
            )
            .hint("write interval:s:N (whole seconds: ebpf-run dumps its maps every N seconds)")
        })?;
        let mut actions = Vec::new();
        let mut spans = Vec::new();
        for stmt in &probe.body {
            let Stmt::Expr(Expr {
                kind: ExprKind::Call { name, args },
                span,
            }) = stmt
            else {
                let at = stmt_span(stmt);
                return Err(Diagnostic::new(at, "an interval probe runs on the host: print(), clear(), printf() of literals and exit() only")
                    .hint("count in the probes, print here"));
            };
            let whole_map = |args: &[Expr]| match args {
                [
                    Expr {
                        kind: ExprKind::Map(m),
                        ..
                    },
                ] if m.keys.is_empty() => Ok(m.name.clone()),
                _ => Err(Diagnostic::new(
                    *span,
                    format!("{name}() takes a whole map: {name}(@name)"),
                )),
            };
            actions.push(match name.as_str() {
                "print" => HostAction::Print(whole_map(args)?),
                "clear" => HostAction::Clear(whole_map(args)?),
                "exit" if args.is_empty() => HostAction::Exit,
                "printf" => HostAction::Text(literal_printf(args, *span, "an interval probe")?),
                other => {
                    return Err(Diagnostic::new(
                        *span,
                        format!("`{other}()` in an interval probe is outside the supported subset"),
                    )
                    .hint("print(@m), clear(@m), printf() of literals and exit() run there"));
                }
            });
            spans.push(*span);
        }
        self.interval = Some(Interval { secs, actions });
        self.interval_spans = spans;
        Ok(())
    }

    fn probe(&mut self, probe: &Probe) -> Result<(), Diagnostic> {
        if let Some(which) = probe
            .points
            .iter()
            .map(|p| p.text.as_str())
            .find(|t| matches!(*t, "BEGIN" | "END"))
        {
            return self.host_probe(probe, which);
        }
        if let Some(ap) = probe
            .points
            .iter()
            .find(|p| matches!(p.provider(), "interval" | "i"))
        {
            return self.interval_probe(probe, ap);
        }
        for ap in &probe.points {
            for point in self.points(ap)? {
                if let Some((name, value)) = &point.setting {
                    let line = format!("const volatile __u64 {name} = {value};\n");
                    if !self.globals.contains(&line) {
                        if self.globals.is_empty() {
                            self.globals.push_str(
                                "\n/* The sampling rates of the profile probes (Hz). */\n",
                            );
                        }
                        self.globals.push_str(&line);
                    }
                }
                let mut f = Function {
                    body: String::new(),
                    temps: 0,
                    vars: Vec::new(),
                    context: point.context.clone(),
                    probe: point.probe.clone(),
                    func: point.func.clone(),
                };
                if let Some(pred) = &probe.predicate {
                    mark(&mut f, pred.span, 1);
                    let v = self.expr(&mut f, pred, 1)?;
                    let cond = self.truth(&v, pred.span)?;
                    let _ = writeln!(f.body, "\tif (!({cond}))\n\t\treturn 0;");
                }
                self.block(&mut f, &probe.body, 1)?;
                let n = self.programs;
                self.programs += 1;
                let mut text = format!(
                    "\n/* {} */\nSEC(\"{}\")\nint bt_{n}({} *ctx)\n{{\n",
                    point.probe, point.section, point.ctx_type
                );
                for (name, ty) in &f.vars {
                    let _ = match ty {
                        Ty::Str { len } => writeln!(text, "\tchar v_{name}[{len}] = {{}};"),
                        Ty::Int { signed: true } => writeln!(text, "\t__s64 v_{name} = 0;"),
                        _ => writeln!(text, "\t__u64 v_{name} = 0;"),
                    };
                }
                text.push_str(&f.body);
                text.push_str("\treturn 0;\n}\n");
                self.functions.push_str(&text);
            }
        }
        Ok(())
    }

    fn block(&mut self, f: &mut Function, stmts: &[Stmt], depth: usize) -> Result<(), Diagnostic> {
        for s in stmts {
            mark(f, stmt_span(s), depth);
            self.stmt(f, s, depth)?;
        }
        Ok(())
    }

    fn indent(depth: usize) -> String {
        "\t".repeat(depth)
    }

    fn stmt(&mut self, f: &mut Function, s: &Stmt, depth: usize) -> Result<(), Diagnostic> {
        let ind = Self::indent(depth);
        match s {
            Stmt::If {
                cond,
                then,
                otherwise,
                ..
            } => {
                let _ = writeln!(f.body, "{ind}{{");
                let v = self.expr(f, cond, depth + 1)?;
                let c = self.truth(&v, cond.span)?;
                let _ = writeln!(f.body, "{ind}\tif ({c}) {{");
                self.block(f, then, depth + 2)?;
                let _ = writeln!(f.body, "{ind}\t}} else {{");
                self.block(f, otherwise, depth + 2)?;
                let _ = writeln!(f.body, "{ind}\t}}\n{ind}}}");
            }
            Stmt::Unroll { count, body, span } => {
                if !(1..=100).contains(count) {
                    return Err(Diagnostic::new(*span, "unroll takes a count from 1 to 100")
                        .hint("bpftrace's limit, which keeps programs under the verifier's size"));
                }
                for _ in 0..*count {
                    let _ = writeln!(f.body, "{ind}{{");
                    self.block(f, body, depth + 1)?;
                    let _ = writeln!(f.body, "{ind}}}");
                }
            }
            Stmt::VarAssign {
                name,
                op,
                value,
                span,
            } => {
                let _ = writeln!(f.body, "{ind}{{");
                let v = self.expr(f, value, depth + 1)?;
                let known = f.vars.iter().find(|(n, _)| n == name).map(|(_, t)| *t);
                let ty = match (known, v.ty) {
                    (None, ty) => {
                        f.vars.push((name.clone(), ty));
                        ty
                    }
                    (Some(Ty::Str { .. }), Ty::Str { .. })
                    | (Some(Ty::Int { .. } | Ty::Ptr { .. }), Ty::Int { .. } | Ty::Ptr { .. }) => {
                        known.unwrap_or(v.ty)
                    }
                    (Some(had), _) => {
                        return Err(Diagnostic::new(
                            *span,
                            format!(
                                "${name} holds {} and cannot be given {}",
                                ty_name(had),
                                ty_name(v.ty)
                            ),
                        ));
                    }
                };
                match (ty, v.ty) {
                    (Ty::Str { len }, Ty::Str { len: from }) => {
                        if *op != "=" {
                            return Err(Diagnostic::new(*span, format!("`{op}` on a string")));
                        }
                        let _ = writeln!(
                            f.body,
                            "{ind}\t__builtin_memset(v_{name}, 0, {len});\n{ind}\t__builtin_memcpy(v_{name}, {}, {});",
                            v.code,
                            len.min(from)
                        );
                    }
                    _ => {
                        let _ = writeln!(f.body, "{ind}\tv_{name} {op} {};", v.code);
                    }
                }
                let _ = writeln!(f.body, "{ind}}}");
            }
            Stmt::MapAssign { map, op, value, .. } => {
                let _ = writeln!(f.body, "{ind}{{");
                self.map_assign(f, map, op, value, depth + 1)?;
                let _ = writeln!(f.body, "{ind}}}");
            }
            Stmt::Expr(e) => match &e.kind {
                ExprKind::Call { name, args } if name == "printf" => {
                    let _ = writeln!(f.body, "{ind}{{");
                    self.printf(f, args, e.span, depth + 1)?;
                    let _ = writeln!(f.body, "{ind}}}");
                }
                ExprKind::Call { name, args } if name == "exit" => {
                    if !args.is_empty() {
                        return Err(Diagnostic::new(e.span, "exit() takes no argument"));
                    }
                    // A record of its own site through the printf ring buffer: in order after the
                    // lines before it, and the host ends the run (maps and END printed) on it.
                    let _ = writeln!(f.body, "{ind}{{");
                    let r = self.open_record(f, depth + 1);
                    Self::close_record(f, depth + 1, &r);
                    let _ = writeln!(f.body, "{ind}}}");
                    self.printfs.push(PrintfSite {
                        format: String::new(),
                        args: Vec::new(),
                        exits: true,
                    });
                }
                ExprKind::Call { name, args } if name == "delete" => {
                    let [
                        Expr {
                            kind: ExprKind::Map(m),
                            ..
                        },
                    ] = args.as_slice()
                    else {
                        return Err(Diagnostic::new(
                            e.span,
                            "delete() takes one map element, as delete(@m[key])",
                        ));
                    };
                    let _ = writeln!(f.body, "{ind}{{");
                    let (i, key) = self.map_key(f, m, depth + 1, None)?;
                    let _ = writeln!(
                        f.body,
                        "{ind}\tbpf_map_delete_elem(&{}, &{key});",
                        self.maps[i].layout.c_name
                    );
                    let _ = writeln!(f.body, "{ind}}}");
                }
                ExprKind::Call { name, .. } => {
                    return Err(Diagnostic::new(
                        e.span,
                        match name.as_str() {
                            "print" | "clear" | "zero" | "time" | "join" | "system" | "cat"
                            | "signal" | "override" => {
                                format!("`{name}()` is outside the supported subset")
                            }
                            _ => format!("`{name}()` is no statement here"),
                        },
                    )
                    .hint("see docs/ONELINERS.md for the statements the compiler supports"));
                }
                _ => {
                    return Err(Diagnostic::new(e.span, "this expression does nothing")
                        .hint("assign it to a map (@m = ...) or a variable ($x = ...)"));
                }
            },
        }
        Ok(())
    }

    /// `printf(format, args...)`: a record of the site and its arguments, printed on the host.
    /// Reserves the record of the next printf site (a `printf()` or an `exit()`) and writes its site
    /// number; the caller fills its fields inside the `if` and ends it with [`Self::close_record`].
    /// Returns the record's C name.
    fn open_record(&self, f: &mut Function, depth: usize) -> String {
        let ind = Self::indent(depth);
        let site = self.printfs.len();
        let e = format!("e{}", f.temps);
        f.temps += 1;
        let _ = writeln!(
            f.body,
            "{ind}struct {PRINTF_MAP} *{e} = EP_EVENT_RESERVE({PRINTF_MAP});\n{ind}if ({e}) {{\n{ind}\t__builtin_memset({e}, 0, sizeof(*{e}));\n{ind}\t{e}->site = {site};"
        );
        e
    }

    /// Submits the record [`Self::open_record`] reserved.
    fn close_record(f: &mut Function, depth: usize, e: &str) {
        let ind = Self::indent(depth);
        let _ = writeln!(
            f.body,
            "{ind}\tEP_EVENT_SUBMIT(ctx, {PRINTF_MAP}, {e});\n{ind}}}"
        );
    }

    fn printf(
        &mut self,
        f: &mut Function,
        args: &[Expr],
        at: Span,
        depth: usize,
    ) -> Result<(), Diagnostic> {
        let ind = Self::indent(depth);
        let (format, rest) = printf_format(args, at)?;
        let mut vals = Vec::new();
        for a in rest {
            vals.push(self.expr(f, a, depth)?);
        }
        let is_str: Vec<bool> = vals
            .iter()
            .map(|v| matches!(v.ty, Ty::Str { .. }))
            .collect();
        check_printf(&format, args, &is_str)?;
        let (ints, strs) = (
            is_str.iter().filter(|s| !**s).count(),
            is_str.iter().filter(|s| **s).count(),
        );
        if ints > PRINTF_INTS || strs > PRINTF_STRS {
            return Err(Diagnostic::new(
                at,
                format!(
                    "printf() takes at most {PRINTF_INTS} numbers and {PRINTF_STRS} strings; this one has {ints} and {strs}"
                ),
            ));
        }
        let e = self.open_record(f, depth);
        let (mut n, mut sn) = (0, 0);
        let mut kinds = Vec::new();
        for v in &vals {
            match v.ty {
                Ty::Str { len } => {
                    let _ = writeln!(
                        f.body,
                        "{ind}\t__builtin_memcpy({e}->s{sn}, {}, {});",
                        v.code,
                        len.min(PRINTF_STR_LEN)
                    );
                    let _ = writeln!(f.body, "{ind}\t{e}->s{sn}[{}] = 0;", PRINTF_STR_LEN - 1);
                    sn += 1;
                    kinds.push(KeyKind::Str { len });
                }
                Ty::Int { signed } => {
                    let _ = writeln!(f.body, "{ind}\t{e}->n{n} = (__u64)({});", v.code);
                    n += 1;
                    kinds.push(KeyKind::Int { signed });
                }
                Ty::Ptr { .. } => {
                    let _ = writeln!(f.body, "{ind}\t{e}->n{n} = (__u64)({});", v.code);
                    n += 1;
                    kinds.push(KeyKind::Int { signed: false });
                }
            }
        }
        Self::close_record(f, depth, &e);
        self.printfs.push(PrintfSite {
            format,
            args: kinds,
            exits: false,
        });
        Ok(())
    }

    /// Registers (or checks) map `m` as `kind`, and writes its key into a new local; returns the
    /// map's index and the key's C name.
    fn map_key(
        &mut self,
        f: &mut Function,
        m: &MapRef,
        depth: usize,
        kind: Option<(MapKind, Span)>,
    ) -> Result<(usize, String), Diagnostic> {
        let ind = Self::indent(depth);
        if m.keys.len() > MAX_KEYS {
            return Err(Diagnostic::new(
                m.span,
                format!("@{} has {} keys; at most {MAX_KEYS}", m.name, m.keys.len()),
            ));
        }
        let mut keys = Vec::new();
        let mut codes = Vec::new();
        for k in &m.keys {
            if let Some(prefix) = traced_function_key(f, k) {
                keys.push(KeyKind::Ksym { prefix });
                codes.push("bpf_get_func_ip(ctx)".to_owned());
                continue;
            }
            // ksym(ADDR): a kernel address the board's ebpf-run names from its kallsyms.
            if let ExprKind::Call { name, args } = &k.kind
                && name == "ksym"
            {
                let [addr] = args.as_slice() else {
                    return Err(Diagnostic::new(k.span, "ksym() takes one kernel address"));
                };
                let v = self.expr(f, addr, depth)?;
                if let Ty::Str { .. } = v.ty {
                    return Err(Diagnostic::new(
                        addr.span,
                        "ksym() needs a kernel address here, not a string",
                    ));
                }
                keys.push(KeyKind::Ksym { prefix: None });
                codes.push(format!("(__u64)({})", v.code));
                continue;
            }
            if let Some((user, frames)) = stack_key(k)? {
                self.stacks = true;
                let flags = if user { "BPF_F_USER_STACK" } else { "0" };
                keys.push(KeyKind::Stack { user, frames });
                codes.push(format!("bpf_get_stackid(ctx, &{STACK_MAP}, {flags})"));
                continue;
            }
            let v = self.expr(f, k, depth)?;
            keys.push(match v.ty {
                Ty::Int { signed } => KeyKind::Int { signed },
                Ty::Ptr { .. } => KeyKind::Int { signed: false },
                Ty::Str { len } => KeyKind::Str { len },
            });
            codes.push(v.code);
        }
        let i = match self.maps.iter().position(|x| x.layout.name == m.name) {
            Some(i) => {
                let had = &self.maps[i];
                if had.layout.keys.len() != keys.len() {
                    return Err(Diagnostic::new(
                        m.span,
                        format!(
                            "@{} has {} key(s) here but {} where it was first used",
                            m.name,
                            keys.len(),
                            had.layout.keys.len()
                        ),
                    ));
                }
                for (j, (a, b)) in had.layout.keys.iter().zip(&keys).enumerate() {
                    let same = match (a, b) {
                        (KeyKind::Int { .. }, KeyKind::Int { .. })
                        | (KeyKind::Str { .. }, KeyKind::Str { .. }) => true,
                        (KeyKind::Stack { user: x, .. }, KeyKind::Stack { user: y, .. }) => x == y,
                        (KeyKind::Ksym { prefix: x }, KeyKind::Ksym { prefix: y }) => x == y,
                        _ => false,
                    };
                    if !same {
                        return Err(Diagnostic::new(
                            m.keys[j].span,
                            format!(
                                "key {} of @{} is {} here but {} before",
                                j + 1,
                                m.name,
                                key_name(*b),
                                key_name(*a)
                            ),
                        ));
                    }
                }
                if let Some((kind, at)) = &kind
                    && !same_kind(&had.layout.kind, kind)
                {
                    return Err(Diagnostic::new(
                        *at,
                        format!("@{} is {} here but {} before", m.name, kind.name(), had.layout.kind.name()),
                    )
                    .hint("give each map one kind of value: count(), sum(), avg(), hist(), lhist() or a plain value"));
                }
                i
            }
            None => {
                let Some((kind, at)) = kind else {
                    return Err(
                        Diagnostic::new(m.span, format!("@{} is never assigned", m.name))
                            .hint("assign the map before reading or deleting it"),
                    );
                };
                self.maps.push(MapInfo {
                    layout: MapLayout {
                        c_name: format!("at_{}", m.name),
                        name: m.name.clone(),
                        kind,
                        keys: keys.clone(),
                    },
                    first: at,
                });
                self.maps.len() - 1
            }
        };
        let key = format!("k{}", f.temps);
        f.temps += 1;
        let layout_keys = self.maps[i].layout.keys.clone();
        if layout_keys.is_empty() {
            let _ = writeln!(f.body, "{ind}__u32 {key} = 0;");
        } else {
            let _ = writeln!(f.body, "{ind}struct bt_key_{i} {key} = {{}};");
            for (j, ((code, had), now)) in codes.iter().zip(&layout_keys).zip(&keys).enumerate() {
                let _ = match (had, now) {
                    // The bytes this use's buffer has, at most the key field's.
                    (KeyKind::Str { len }, KeyKind::Str { len: from }) => writeln!(
                        f.body,
                        "{ind}__builtin_memcpy({key}.k{j}, {code}, {});",
                        len.min(from)
                    ),
                    _ => writeln!(f.body, "{ind}{key}.k{j} = {code};"),
                };
            }
            if layout_keys
                .iter()
                .any(|k| matches!(k, KeyKind::Stack { user: true, .. }))
            {
                let _ = writeln!(f.body, "{ind}{key}.pid = bpf_get_current_pid_tgid() >> 32;");
            }
        }
        Ok((i, key))
    }

    fn map_assign(
        &mut self,
        f: &mut Function,
        map: &MapRef,
        op: &str,
        value: &Expr,
        depth: usize,
    ) -> Result<(), Diagnostic> {
        let ind = Self::indent(depth);
        let call = match &value.kind {
            ExprKind::Call { name, args } if op == "=" => Some((name.as_str(), args.as_slice())),
            _ => None,
        };
        let int_arg = |cx: &mut Self,
                       f: &mut Function,
                       args: &[Expr],
                       fname: &str,
                       n: usize|
         -> Result<Vec<Val>, Diagnostic> {
            if args.len() != n {
                return Err(Diagnostic::new(
                    value.span,
                    format!("{fname}() takes {n} argument(s), got {}", args.len()),
                ));
            }
            let mut out = Vec::new();
            for a in args {
                let v = cx.expr(f, a, depth)?;
                if let Ty::Str { .. } = v.ty {
                    return Err(Diagnostic::new(
                        a.span,
                        format!("{fname}() needs a number here, not a string"),
                    )
                    .hint("a string where a number is wanted"));
                }
                out.push(v);
            }
            Ok(out)
        };
        let literal = |e: &Expr, what: &str| -> Result<u64, Diagnostic> {
            match e.kind {
                ExprKind::Int(n) => Ok(n),
                _ => Err(Diagnostic::new(
                    e.span,
                    format!("lhist()'s {what} must be a number literal"),
                )),
            }
        };
        match call {
            Some(("count", args)) => {
                if !args.is_empty() {
                    return Err(Diagnostic::new(value.span, "count() takes no argument"));
                }
                let (i, key) = self.map_key(f, map, depth, Some((MapKind::Count, value.span)))?;
                let c = &self.maps[i].layout.c_name;
                let _ = writeln!(
                    f.body,
                    "{ind}__u64 z{key} = 0, *v{key} = ep_lookup_or_init(&{c}, &{key}, &z{key});\n{ind}if (v{key})\n{ind}\t*v{key} += 1;"
                );
            }
            Some(("sum", args)) => {
                let v = int_arg(self, f, args, "sum", 1)?;
                let (i, key) = self.map_key(f, map, depth, Some((MapKind::Sum, value.span)))?;
                let c = &self.maps[i].layout.c_name;
                let _ = writeln!(
                    f.body,
                    "{ind}__u64 z{key} = 0, *v{key} = ep_lookup_or_init(&{c}, &{key}, &z{key});\n{ind}if (v{key})\n{ind}\t*v{key} += (__u64)({});",
                    v[0].code
                );
            }
            Some((which @ ("avg" | "stats"), args)) => {
                let v = int_arg(self, f, args, which, 1)?;
                let kind = if which == "avg" {
                    MapKind::Avg
                } else {
                    MapKind::Stats
                };
                let (i, key) = self.map_key(f, map, depth, Some((kind, value.span)))?;
                let c = &self.maps[i].layout.c_name;
                let _ = writeln!(
                    f.body,
                    "{ind}struct bt_avg z{key} = {{}}, *v{key} = ep_lookup_or_init(&{c}, &{key}, &z{key});\n{ind}if (v{key}) {{\n{ind}\tv{key}->count += 1;\n{ind}\tv{key}->total += (__u64)({});\n{ind}}}",
                    v[0].code
                );
            }
            Some(("hist", args)) => {
                let v = int_arg(self, f, args, "hist", 1)?;
                let (i, key) = self.map_key(f, map, depth, Some((MapKind::Hist, value.span)))?;
                let c = &self.maps[i].layout.c_name;
                let _ = writeln!(
                    f.body,
                    "{ind}static const struct bt_hist z{key};\n{ind}struct bt_hist *v{key} = ep_lookup_or_init(&{c}, &{key}, &z{key});\n{ind}__u32 s{key} = __bt_hist_slot((__s64)({}));\n{ind}if (v{key} && s{key} < {HIST_SLOTS})\n{ind}\tv{key}->slots[s{key}] += 1;",
                    v[0].code
                );
            }
            Some(("lhist", args)) => {
                if args.len() != 4 {
                    return Err(Diagnostic::new(
                        value.span,
                        format!(
                            "lhist() takes 4 arguments (value, min, max, step), got {}",
                            args.len()
                        ),
                    ));
                }
                let (min, max, step) = (
                    literal(&args[1], "min")?,
                    literal(&args[2], "max")?,
                    literal(&args[3], "step")?,
                );
                if step == 0 || max <= min || (max - min) / step + 2 > MAX_LHIST_SLOTS {
                    return Err(Diagnostic::new(
                        args[1].span.to(args[3].span),
                        format!(
                            "lhist() needs min < max and step > 0, with at most {} buckets",
                            MAX_LHIST_SLOTS - 2
                        ),
                    ));
                }
                let v = int_arg(self, f, &args[..1], "lhist", 1)?;
                let kind = MapKind::Lhist { min, max, step };
                let (i, key) = self.map_key(f, map, depth, Some((kind, value.span)))?;
                let c = &self.maps[i].layout.c_name;
                let slots = lhist_slots(min, max, step);
                let _ = writeln!(
                    f.body,
                    "{ind}static const struct bt_lhist_{i} z{key};\n{ind}struct bt_lhist_{i} *v{key} = ep_lookup_or_init(&{c}, &{key}, &z{key});\n{ind}__s64 x{key} = (__s64)({});\n{ind}__u32 s{key} = x{key} < {min} ? 0 : x{key} >= {max} ? {last} : (__u32)((__u64)(x{key} - {min}) / {step}) + 1;\n{ind}if (v{key} && s{key} < {slots})\n{ind}\tv{key}->slots[s{key}] += 1;",
                    v[0].code,
                    last = slots - 1
                );
            }
            Some((which @ ("min" | "max"), args)) => {
                let v = int_arg(self, f, args, which, 1)?;
                let (kind, below) = if which == "min" {
                    (MapKind::Min, "<")
                } else {
                    (MapKind::Max, ">")
                };
                let (i, key) = self.map_key(f, map, depth, Some((kind, value.span)))?;
                let c = &self.maps[i].layout.c_name;
                // This CPU's copy; the host takes the extreme over the CPUs that set theirs.
                let _ = writeln!(
                    f.body,
                    "{ind}struct ep_{which} z{key} = {{}}, *v{key} = ep_lookup_or_init(&{c}, &{key}, &z{key});\n{ind}__s64 x{key} = (__s64)({});\n{ind}if (v{key} && (!v{key}->cpu.set || x{key} {below} v{key}->cpu.value)) {{\n{ind}\tv{key}->cpu.value = x{key};\n{ind}\tv{key}->cpu.set = 1;\n{ind}}}",
                    v[0].code
                );
            }
            _ => {
                let v = self.expr(f, value, depth)?;
                let signed = match v.ty {
                    Ty::Int { signed } => signed,
                    Ty::Ptr { .. } => false,
                    Ty::Str { .. } => {
                        return Err(Diagnostic::new(
                            value.span,
                            "maps hold numbers here, not strings",
                        )
                        .hint("use the string as a key instead: @m[str(...)] = count()"));
                    }
                };
                let (i, key) =
                    self.map_key(f, map, depth, Some((MapKind::Value { signed }, value.span)))?;
                let c = self.maps[i].layout.c_name.clone();
                if op == "=" {
                    let _ = writeln!(
                        f.body,
                        "{ind}__u64 x{key} = (__u64)({});\n{ind}bpf_map_update_elem(&{c}, &{key}, &x{key}, BPF_ANY);",
                        v.code
                    );
                } else {
                    let _ = writeln!(
                        f.body,
                        "{ind}__u64 z{key} = 0, *v{key} = ep_lookup_or_init(&{c}, &{key}, &z{key});\n{ind}if (v{key})\n{ind}\t*v{key} {op} (__u64)({});",
                        v.code
                    );
                }
            }
        }
        Ok(())
    }

    /// A condition's C text: numbers are true when non-zero.
    fn truth(&self, v: &Val, at: Span) -> Result<String, Diagnostic> {
        match v.ty {
            Ty::Str { .. } => Err(Diagnostic::new(at, "a string is no condition")
                .hint("compare it: comm == \"bash\"")),
            _ => Ok(format!("({})", v.code)),
        }
    }

    fn temp(f: &mut Function) -> String {
        f.temps += 1;
        format!("t{}", f.temps)
    }

    fn expr(&mut self, f: &mut Function, e: &Expr, depth: usize) -> Result<Val, Diagnostic> {
        let ind = Self::indent(depth);
        let int = |code: String, signed: bool| Val {
            code,
            ty: Ty::Int { signed },
        };
        Ok(match &e.kind {
            ExprKind::Int(n) => int(format!("{n}ULL"), false),
            ExprKind::Str(s) => {
                let t = Self::temp(f);
                let escaped = c_string(s);
                let _ = writeln!(f.body, "{ind}const char {t}[] = \"{escaped}\";");
                Val {
                    code: t,
                    ty: Ty::Str { len: s.len() + 1 },
                }
            }
            ExprKind::Var(name) => match f.vars.iter().find(|(n, _)| n == name) {
                Some((_, ty)) => Val {
                    code: format!("v_{name}"),
                    ty: *ty,
                },
                None => {
                    return Err(Diagnostic::new(
                        e.span,
                        format!("${name} is used before it is assigned"),
                    )
                    .hint("assign it first in this probe: $x = ..."));
                }
            },
            ExprKind::Ident(name) => self.builtin(f, name, e.span, depth)?,
            ExprKind::Field { base, .. } if !matches!(&base.kind, ExprKind::Ident(b) if b == "args") => {
                self.kernel_fields(f, e, depth)?
            }
            ExprKind::Cast { .. } => {
                return Err(Diagnostic::new(
                    e.span,
                    "a cast is for `->`: ((struct NAME *)PTR)->FIELD",
                )
                .hint("the pointer itself is the value without the cast"));
            }
            ExprKind::Field { base, field, .. } => {
                let ExprKind::Ident(b) = &base.kind else {
                    return Err(Diagnostic::new(
                        e.span,
                        "field access is supported on `args` only",
                    ));
                };
                if b != "args" {
                    return Err(Diagnostic::new(base.span, format!("`{b}` has no fields"))
                        .hint("tracepoint arguments are args.NAME (or args->NAME)"));
                }
                self.tracepoint_arg(f, field, e.span)?
            }
            ExprKind::Map(m) => {
                let Some(i) = self.maps.iter().position(|x| x.layout.name == m.name) else {
                    return Err(Diagnostic::new(
                        m.span,
                        format!("@{} is read before it is assigned", m.name),
                    )
                    .hint("assign it in an earlier probe, or earlier in this one"));
                };
                let kind = self.maps[i].layout.kind.clone();
                // Aggregations live in per-CPU maps: a probe would read only its own CPU's share.
                let MapKind::Value { signed } = kind else {
                    return Err(Diagnostic::new(
                        m.span,
                        format!("@{} holds {}, which a probe cannot read back", m.name, kind.name()),
                    )
                    .hint("read maps that hold plain values (@m[k] = value); aggregations print at exit"));
                };
                let (i, key) = self.map_key(f, m, depth, None)?;
                let t = Self::temp(f);
                let c = &self.maps[i].layout.c_name;
                let _ = writeln!(
                    f.body,
                    "{ind}__u64 *p{t} = bpf_map_lookup_elem(&{c}, &{key});\n{ind}__u64 {t} = p{t} ? *p{t} : 0;"
                );
                int(t, signed)
            }
            ExprKind::Call { name, args } => self.call(f, name, args, e.span, depth)?,
            ExprKind::Index { .. } => {
                return Err(Diagnostic::new(
                    e.span,
                    "indexing is outside the supported subset",
                ));
            }
            ExprKind::Unary { op, operand } => {
                let v = self.expr(f, operand, depth)?;
                if let Ty::Str { .. } = v.ty {
                    return Err(Diagnostic::new(
                        operand.span,
                        format!("`{op}` needs a number, not a string"),
                    ));
                }
                match *op {
                    "!" => int(format!("(!({}))", v.code), false),
                    "~" => int(format!("(~({}))", v.code), false),
                    "-" => int(format!("(-(__s64)({}))", v.code), true),
                    _ => {
                        return Err(Diagnostic::new(
                            e.span,
                            "dereferencing with `*` is outside the supported subset",
                        ));
                    }
                }
            }
            ExprKind::Binary { op, left, right } => {
                let l = self.expr(f, left, depth)?;
                let r = self.expr(f, right, depth)?;
                match (l.ty, r.ty) {
                    (Ty::Str { len: a }, Ty::Str { len: b }) if matches!(*op, "==" | "!=") => {
                        let n = a.min(b);
                        let eq = format!("__BT_STREQ({}, {}, {n})", l.code, r.code);
                        int(if *op == "==" { eq } else { format!("(!{eq})") }, false)
                    }
                    (Ty::Str { .. }, _) | (_, Ty::Str { .. }) => {
                        return Err(Diagnostic::new(
                            e.span,
                            format!("`{op}` between a string and a number"),
                        )
                        .hint("strings compare with == and != to strings only"));
                    }
                    (lt, rt) => {
                        let signed = is_signed(lt) || is_signed(rt);
                        // BPF before ISA v4 has no signed division: `/` and `%` divide unsigned.
                        let signed = signed && !matches!(*op, "/" | "%");
                        let (lc, rc) = if signed {
                            (
                                format!("(__s64)({})", l.code),
                                format!("(__s64)({})", r.code),
                            )
                        } else {
                            (
                                format!("(__u64)({})", l.code),
                                format!("(__u64)({})", r.code),
                            )
                        };
                        let boolean =
                            matches!(*op, "==" | "!=" | "<" | ">" | "<=" | ">=" | "&&" | "||");
                        int(format!("({lc} {op} {rc})"), signed && !boolean)
                    }
                }
            }
            ExprKind::Ternary {
                cond,
                then,
                otherwise,
            } => {
                let c = self.expr(f, cond, depth)?;
                let c = self.truth(&c, cond.span)?;
                let a = self.expr(f, then, depth)?;
                let b = self.expr(f, otherwise, depth)?;
                match (a.ty, b.ty) {
                    (Ty::Str { .. }, _) | (_, Ty::Str { .. }) => {
                        return Err(Diagnostic::new(
                            e.span,
                            "a ternary of strings is outside the supported subset",
                        ));
                    }
                    (at, bt) => int(
                        format!("({c} ? (__s64)({}) : (__s64)({}))", a.code, b.code),
                        is_signed(at) || is_signed(bt),
                    ),
                }
            }
        })
    }

    fn builtin(
        &mut self,
        f: &mut Function,
        name: &str,
        at: Span,
        depth: usize,
    ) -> Result<Val, Diagnostic> {
        let ind = Self::indent(depth);
        let int = |code: &str, signed: bool| Val {
            code: code.to_owned(),
            ty: Ty::Int { signed },
        };
        Ok(match name {
            "pid" => int("(bpf_get_current_pid_tgid() >> 32)", false),
            "tid" => int("((__u32)bpf_get_current_pid_tgid())", false),
            "uid" => int("((__u32)bpf_get_current_uid_gid())", false),
            "gid" => int("(bpf_get_current_uid_gid() >> 32)", false),
            "nsecs" => int("bpf_ktime_get_ns()", false),
            "cpu" => int("bpf_get_smp_processor_id()", false),
            "curtask" => Val {
                code: "((__u64)bpf_get_current_task())".into(),
                ty: Ty::Ptr { user: false },
            },
            "comm" => {
                let t = Self::temp(f);
                let _ = writeln!(
                    f.body,
                    "{ind}char {t}[16] = {{}};\n{ind}bpf_get_current_comm({t}, sizeof({t}));"
                );
                Val {
                    code: t,
                    ty: Ty::Str { len: 16 },
                }
            }
            "probe" | "func" if is_wildcard_kprobe(f) => {
                return Err(Diagnostic::new(
                    at,
                    format!("`{name}` of a wildcard kprobe is supported as a map key only"),
                )
                .hint(format!(
                    "ebpf-run names the functions on the board: @[{name}] = count()"
                )));
            }
            "probe" | "func" => {
                let text = if name == "probe" {
                    f.probe.clone()
                } else {
                    f.func.clone()
                };
                let t = Self::temp(f);
                let _ = writeln!(f.body, "{ind}const char {t}[] = \"{}\";", c_string(&text));
                Val {
                    code: t,
                    ty: Ty::Str {
                        len: text.len() + 1,
                    },
                }
            }
            "retval" => match f.context {
                Context::Probe { ret: true, .. } => int(
                    "((__s64)EP_CORE_READ_SIGNED(__PT_REGS_CAST(ctx), __PT_RC_REG))",
                    true,
                ),
                _ => {
                    return Err(Diagnostic::new(
                        at,
                        "retval exists in kretprobe and uretprobe probes only",
                    )
                    .hint("syscall tracepoints have args.ret at sys_exit"));
                }
            },
            "args" => {
                return Err(Diagnostic::new(at, "`args` needs a field: args.NAME")
                    .hint("the fields of syscalls:sys_enter_NAME are the syscall's arguments"));
            }
            _ => {
                if let Some(n) = name
                    .strip_prefix("arg")
                    .and_then(|d| d.parse::<usize>().ok())
                {
                    return match f.context {
                        Context::Probe { user, .. } if n < 5 => Ok(Val {
                            code: format!("EP_KPROBE_ARG(ctx, {})", n + 1),
                            ty: Ty::Ptr { user },
                        }),
                        Context::Probe { .. } => Err(Diagnostic::new(
                            at,
                            format!(
                                "{name}: the first five arguments (arg0 to arg4) are readable on every board"
                            ),
                        )),
                        _ => Err(Diagnostic::new(
                            at,
                            format!("{name} exists in kprobe and uprobe probes only"),
                        )
                        .hint("tracepoints have args.NAME")),
                    };
                }
                let known = [
                    "pid", "tid", "uid", "gid", "nsecs", "cpu", "comm", "curtask", "retval",
                    "func", "probe", "args",
                ];
                let close = known.iter().find(|k| edit_distance(k, name) <= 2);
                let mut d = Diagnostic::new(at, format!("unknown builtin `{name}`"));
                if let Some(k) = close {
                    d = d.hint(format!("did you mean `{k}`?"));
                } else if matches!(name, "kstack" | "ustack") {
                    d = Diagnostic::new(at, format!("`{name}` is supported as a map key only"))
                        .hint(format!("count the stacks: @[{name}] = count()"));
                } else if matches!(
                    name,
                    "elapsed" | "cgroup" | "username" | "rand" | "ctx" | "jiffies"
                ) {
                    d = Diagnostic::new(at, format!("`{name}` is outside the supported subset"));
                }
                return Err(d);
            }
        })
    }

    /// `BASE->a->b.c`: kernel memory read with CO-RE (`BPF_CORE_READ`, in the board kernel's own
    /// layout), BASE `curtask` or a cast `(struct NAME *)PTR`. The value is a number (an integer
    /// or a pointer, `str()` reads a string through it); the member types are the board kernel's,
    /// which clang checks against the target's vmlinux.h.
    fn kernel_fields(
        &mut self,
        f: &mut Function,
        e: &Expr,
        depth: usize,
    ) -> Result<Val, Diagnostic> {
        // Walk down to the base, collecting accessors: `->` starts one, `.` extends it.
        let mut steps: Vec<(String, bool)> = Vec::new();
        let mut cur = e;
        while let ExprKind::Field { base, field, ptr } = &cur.kind {
            steps.push((field.clone(), *ptr));
            cur = base;
        }
        steps.reverse();
        let (ty, base) = match &cur.kind {
            ExprKind::Ident(b) if b == "curtask" => (
                "task_struct".to_owned(),
                "bpf_get_current_task()".to_owned(),
            ),
            ExprKind::Cast { ty, operand } => {
                let v = self.expr(f, operand, depth)?;
                if let Ty::Str { .. } = v.ty {
                    return Err(Diagnostic::new(
                        operand.span,
                        "a string is no pointer to cast",
                    ));
                }
                (ty.clone(), v.code)
            }
            _ => {
                return Err(Diagnostic::new(
                    cur.span,
                    "`->` needs the pointer's struct type: cast it, ((struct NAME *)PTR)->FIELD",
                )
                .hint("curtask is a struct task_struct * already: curtask->pid"));
            }
        };
        let mut accessors: Vec<String> = Vec::new();
        for (i, (field, ptr)) in steps.iter().enumerate() {
            match (i, ptr, accessors.last_mut()) {
                (0, false, _) => {
                    return Err(Diagnostic::new(
                        e.span,
                        "a kernel pointer's members are reached with `->`",
                    ));
                }
                (_, false, Some(last)) => {
                    last.push('.');
                    last.push_str(field);
                }
                _ => accessors.push(field.clone()),
            }
        }
        if accessors.len() > MAX_KERNEL_STEPS {
            return Err(Diagnostic::new(
                e.span,
                format!("at most {MAX_KERNEL_STEPS} pointers are followed in one expression"),
            ));
        }
        if !ty.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(Diagnostic::new(
                cur.span,
                format!("`{ty}` is no struct name"),
            ));
        }
        // The base in a local first: CO-RE reads cannot nest in one expression.
        let ind = Self::indent(depth);
        let t = Self::temp(f);
        let _ = writeln!(f.body, "{ind}__u64 {t} = (__u64)({base});");
        Ok(Val {
            code: format!(
                "((__u64)BPF_CORE_READ((struct {ty} *){t}, {}))",
                accessors.join(", ")
            ),
            ty: Ty::Ptr { user: false },
        })
    }

    fn tracepoint_arg(
        &mut self,
        f: &mut Function,
        field: &str,
        at: Span,
    ) -> Result<Val, Diagnostic> {
        let int = |code: String, signed: bool| Val {
            code,
            ty: Ty::Int { signed },
        };
        match &f.context {
            Context::SysEnter(args) => {
                let Some(i) = args.iter().position(|(n, _)| n == field) else {
                    let names: Vec<&str> = args.iter().map(|(n, _)| n.as_str()).collect();
                    return Err(Diagnostic::new(
                        at,
                        format!("{} has no argument `{field}`", f.probe),
                    )
                    .hint(if names.is_empty() {
                        "it takes no arguments".to_owned()
                    } else {
                        format!("its arguments are {}", names.join(", "))
                    }));
                };
                let ty = &args[i].1;
                Ok(if ty.contains('*') {
                    Val {
                        code: format!("EP_CORE_READ(ctx, args[{i}])"),
                        ty: Ty::Ptr { user: true },
                    }
                } else if signed_c_type(ty) {
                    let cast = if matches!(
                        ty.as_str(),
                        "int" | "pid_t" | "key_t" | "mqd_t" | "clockid_t" | "key_serial_t"
                    ) {
                        "__s32"
                    } else {
                        "__s64"
                    };
                    int(
                        format!("((__s64)({cast})EP_CORE_READ(ctx, args[{i}]))"),
                        true,
                    )
                } else {
                    int(format!("EP_CORE_READ(ctx, args[{i}])"), false)
                })
            }
            Context::SysExit if field == "ret" => {
                Ok(int("((__s64)EP_CORE_READ_SIGNED(ctx, ret))".into(), true))
            }
            Context::RawSys { .. } if field == "id" => {
                Ok(int("((__s64)EP_CORE_READ_SIGNED(ctx, id))".into(), true))
            }
            Context::RawSys { exit: true } if field == "ret" => {
                Ok(int("((__s64)EP_CORE_READ_SIGNED(ctx, ret))".into(), true))
            }
            Context::SysExit | Context::RawSys { .. } => Err(Diagnostic::new(
                at,
                format!("{} has no field `{field}`", f.probe),
            )
            .hint(match f.context {
                Context::SysExit => "sys_exit tracepoints have args.ret",
                Context::RawSys { exit: true } => "raw_syscalls:sys_exit has args.id and args.ret",
                _ => "raw_syscalls:sys_enter has args.id (args.args is outside the subset)",
            })),
            Context::Event { fields } => {
                let found = fields.iter().find(|(n, t)| {
                    n == field
                        || (t.starts_with("__data_loc")
                            && n.strip_prefix("__data_loc_") == Some(field))
                });
                let Some((name, ty)) = found.cloned() else {
                    let names: Vec<&str> = fields
                        .iter()
                        .map(|(n, _)| n.strip_prefix("__data_loc_").unwrap_or(n))
                        .collect();
                    return Err(
                        Diagnostic::new(at, format!("{} has no field `{field}`", f.probe))
                            .hint(format!("its fields are {}", names.join(", "))),
                    );
                };
                self.event_field(f, &name, &ty, at)
            }
            Context::Tracepoint => Err(Diagnostic::new(
                at,
                format!("the fields of {} are not known to the compiler", f.probe),
            )
            .hint("oneliner/src/tracepoint_args.txt holds the tracepoints whose fields are known")),
            Context::Probe { .. } => Err(Diagnostic::new(at, "kprobes and uprobes have no `args`")
                .hint("their arguments are arg0 to arg4")),
            Context::Profile => Err(Diagnostic::new(at, "a profile probe has no `args`")
                .hint("a sample has pid, tid, comm, cpu, kstack and ustack")),
        }
    }

    /// Field `name` (C type `ty`) of a tracepoint record, read with CO-RE in the running kernel's
    /// layout: numbers with their size there, character arrays and `__data_loc` strings into a
    /// buffer.
    fn event_field(
        &mut self,
        f: &mut Function,
        name: &str,
        ty: &str,
        at: Span,
    ) -> Result<Val, Diagnostic> {
        let ind = Self::indent(1);
        if ty.starts_with("__data_loc") {
            let t = Self::temp(f);
            let _ = writeln!(
                f.body,
                "{ind}char {t}[{STR_LEN}] = {{}};\n{ind}bpf_probe_read_kernel_str({t}, sizeof({t}), (const char *)ctx + ((__u32)EP_CORE_READ(ctx, {name}) & 0xffff));"
            );
            return Ok(Val {
                code: t,
                ty: Ty::Str { len: STR_LEN },
            });
        }
        if let Some((elem, len)) = ty.strip_suffix(']').and_then(|t| t.split_once('[')) {
            let n: usize = len.parse().unwrap_or(0);
            if elem.trim() != "char" || n == 0 || n > 256 {
                return Err(Diagnostic::new(
                    at,
                    format!(
                        "field `{name}` is `{ty}`: arrays other than strings are outside the supported subset"
                    ),
                ));
            }
            let t = Self::temp(f);
            let _ = writeln!(
                f.body,
                "{ind}char {t}[{n}] = {{}};\n{ind}bpf_probe_read_kernel_str({t}, sizeof({t}), (const char *)ctx + __EP_FIELD_OFFSET(ctx, {name}));"
            );
            return Ok(Val {
                code: t,
                ty: Ty::Str { len: n },
            });
        }
        Ok(if ty.contains('*') {
            Val {
                code: format!("EP_CORE_READ(ctx, {name})"),
                ty: Ty::Ptr { user: false },
            }
        } else if signed_c_type(ty) {
            Val {
                code: format!("((__s64)EP_CORE_READ_SIGNED(ctx, {name}))"),
                ty: Ty::Int { signed: true },
            }
        } else {
            Val {
                code: format!("EP_CORE_READ(ctx, {name})"),
                ty: Ty::Int { signed: false },
            }
        })
    }

    fn call(
        &mut self,
        f: &mut Function,
        name: &str,
        args: &[Expr],
        at: Span,
        depth: usize,
    ) -> Result<Val, Diagnostic> {
        let ind = Self::indent(depth);
        match name {
            "str" => {
                let (ptr, len) = match args {
                    [p] => (p, STR_LEN),
                    [
                        p,
                        Expr {
                            kind: ExprKind::Int(n),
                            ..
                        },
                    ] if (1..=256).contains(n) => (p, *n as usize + 1),
                    [_, n] => {
                        return Err(Diagnostic::new(
                            n.span,
                            "str()'s length is a number from 1 to 256",
                        ));
                    }
                    _ => {
                        return Err(Diagnostic::new(
                            at,
                            format!("str() takes 1 or 2 arguments, got {}", args.len()),
                        ));
                    }
                };
                let v = self.expr(f, ptr, depth)?;
                let user = match v.ty {
                    Ty::Ptr { user } => user,
                    // A number as an address: user memory in uprobes (`str(retval)`), else kernel.
                    Ty::Int { .. } => matches!(f.context, Context::Probe { user: true, .. }),
                    Ty::Str { .. } => return Ok(v),
                };
                let t = Self::temp(f);
                let read = if user {
                    "bpf_probe_read_user_str"
                } else {
                    "bpf_probe_read_kernel_str"
                };
                let _ = writeln!(
                    f.body,
                    "{ind}char {t}[{len}] = {{}};\n{ind}{read}({t}, sizeof({t}), (const void *)(unsigned long)({}));",
                    v.code
                );
                Ok(Val {
                    code: t,
                    ty: Ty::Str { len },
                })
            }
            "count" | "sum" | "avg" | "min" | "max" | "stats" | "hist" | "lhist" => {
                Err(Diagnostic::new(
                    at,
                    format!("{name}() is an aggregation: it can only be assigned to a map"),
                )
                .hint(format!("write @name[key] = {name}(...)")))
            }
            "ksym" => Err(Diagnostic::new(at, "ksym() is supported as a map key only")
                .hint("ebpf-run names the address from the board's /proc/kallsyms: @[ksym(arg0)] = count()")),
            "usym" | "kaddr" | "uaddr" | "cgroupid" | "ntop" | "reg" | "buf" | "macaddr" => {
                Err(Diagnostic::new(at, format!("`{name}()` is outside the supported subset"))
                    .hint("see docs/ONELINERS.md for the functions the compiler supports"))
            }
            _ => Err(Diagnostic::new(at, format!("unknown function `{name}()`"))
                .hint("see docs/ONELINERS.md for the functions the compiler supports")),
        }
    }
}

/// Marks where the C of the program's text at `span` begins: `/* bt@START-END */`, what
/// [`clang_diagnostic`] maps clang's errors back through.
fn mark(f: &mut Function, span: Span, depth: usize) {
    let _ = writeln!(
        f.body,
        "{}/* {MARK}{}-{} */",
        "\t".repeat(depth),
        span.start,
        span.end
    );
}

/// The prefix of the comments that mark where each statement's C begins.
const MARK: &str = "bt@";

/// clang's first error about the C `c` (its diagnostics on stderr, naming the C file by a path
/// ending in `c_file`) as a diagnostic at the part of the program that C was written for, clang's
/// words as the hint; `None` when clang names no line of `c_file` after a mark.
pub fn clang_diagnostic(c: &str, c_file: &str, stderr: &str) -> Option<Diagnostic> {
    let named = format!("{c_file}:");
    let (line, message) = stderr.lines().find_map(|l| {
        let rest = l.get(l.find(&named)? + named.len()..)?;
        let (line, rest) = rest.split_once(':')?;
        let (_col, rest) = rest.split_once(':')?;
        let message = rest.trim().strip_prefix("error:")?.trim();
        Some((line.parse::<usize>().ok()?, message.to_owned()))
    })?;
    let span = c
        .lines()
        .take(line)
        .filter_map(|l| {
            let (start, end) = l
                .trim()
                .strip_prefix("/* ")?
                .strip_suffix(" */")?
                .strip_prefix(MARK)?
                .split_once('-')?;
            Some(Span::new(start.parse().ok()?, end.parse().ok()?))
        })
        .last()?;
    Some(
        Diagnostic::new(span, "clang cannot compile what this became").hint(format!(
            "clang: {message} (a gap in the compiler's checks: please report it)"
        )),
    )
}

/// Where a statement is.
fn stmt_span(stmt: &Stmt) -> Span {
    match stmt {
        Stmt::MapAssign { span, .. }
        | Stmt::VarAssign { span, .. }
        | Stmt::If { span, .. }
        | Stmt::Unroll { span, .. } => *span,
        Stmt::Expr(e) => e.span,
    }
}

/// The text of a `printf()` of literals in a probe that runs on the host (`who`: `BEGIN`, `END`,
/// an interval probe), checked as any printf.
fn literal_printf(args: &[Expr], at: Span, who: &str) -> Result<String, Diagnostic> {
    let (format, rest) = printf_format(args, at)?;
    let mut values = Vec::new();
    for a in rest {
        values.push(match &a.kind {
            ExprKind::Int(n) => crate::render::Arg::Int(i128::from(*n)),
            ExprKind::Str(s) => crate::render::Arg::Str(s.clone()),
            _ => {
                return Err(Diagnostic::new(
                    a.span,
                    format!("{who} runs on the host: its printf() takes literals only"),
                )
                .hint("print what the probes see from a probe, or keep it in a map"));
            }
        });
    }
    let is_str: Vec<bool> = values
        .iter()
        .map(|v| matches!(v, crate::render::Arg::Str(_)))
        .collect();
    check_printf(&format, args, &is_str)?;
    Ok(crate::render::format_printf(&format, &values))
}

/// The format (a string literal, first) and the other arguments of a `printf()`.
fn printf_format(args: &[Expr], at: Span) -> Result<(String, &[Expr]), Diagnostic> {
    match args.split_first() {
        Some((
            Expr {
                kind: ExprKind::Str(format),
                ..
            },
            rest,
        )) => Ok((format.clone(), rest)),
        Some((first, _)) => Err(Diagnostic::new(
            first.span,
            "printf()'s first argument is its format, a string literal",
        )),
        None => Err(Diagnostic::new(
            at,
            "printf() needs a format: printf(\"...\\n\", args)",
        )),
    }
}

/// Checks a printf format against its arguments (`is_str`: which are strings), each problem at its
/// place: a conversion the format cannot print, too few or too many arguments, a string where a
/// number is wanted.
fn check_printf(format: &str, args: &[Expr], is_str: &[bool]) -> Result<(), Diagnostic> {
    let fmt_span = args[0].span;
    // The format's bytes start after the opening quote (escapes make offsets approximate).
    let at = |off: usize, len: usize| {
        let start = (fmt_span.start + 1 + off).min(fmt_span.end);
        Span::new(start, (start + len).min(fmt_span.end))
    };
    let convs = crate::render::conversions(format).map_err(|(off, text)| {
        Diagnostic::new(
            at(off, text.len()),
            format!("printf() cannot print `{text}`"),
        )
        .hint("conversions are %d %i %u %x %X %o %c %s %p, with flags - 0 + and a width")
    })?;
    if convs.len() != is_str.len() {
        return Err(Diagnostic::new(
            if convs.len() > is_str.len() {
                fmt_span
            } else {
                args[convs.len() + 1].span
            },
            format!(
                "the format has {} conversion(s) for {} argument(s)",
                convs.len(),
                is_str.len()
            ),
        ));
    }
    for (i, (c, s)) in convs.iter().zip(is_str).enumerate() {
        if *s && c.conv != 's' {
            return Err(Diagnostic::new(
                args[i + 1].span,
                format!("`%{}` wants a number, and this is a string", c.conv),
            )
            .hint("a string where a number is wanted: print it with %s"));
        }
    }
    Ok(())
}

fn is_signed(t: Ty) -> bool {
    matches!(t, Ty::Int { signed: true })
}

fn same_kind(a: &MapKind, b: &MapKind) -> bool {
    match (a, b) {
        (MapKind::Value { .. }, MapKind::Value { .. }) => true,
        _ => a == b,
    }
}

fn ty_name(t: Ty) -> &'static str {
    match t {
        Ty::Int { .. } | Ty::Ptr { .. } => "a number",
        Ty::Str { .. } => "a string",
    }
}

fn key_name(k: KeyKind) -> &'static str {
    match k {
        KeyKind::Int { .. } => "a number",
        KeyKind::Str { .. } => "a string",
        KeyKind::Stack { user: false, .. } => "a kernel stack",
        KeyKind::Stack { user: true, .. } => "a user stack",
        KeyKind::Ksym { .. } => "a traced kernel function",
    }
}

/// Whether the probe of `f` is a kprobe or kretprobe with a wildcard, which ebpf-run expands on the
/// board: its `func` and `probe` are known only there.
fn is_wildcard_kprobe(f: &Function) -> bool {
    matches!(f.context, Context::Probe { user: false, .. }) && f.func.contains(['*', '?'])
}

/// Whether map key `k` is `func` or `probe` of a wildcard kprobe: the prefix `probe` prints with.
fn traced_function_key(f: &Function, k: &Expr) -> Option<Option<&'static str>> {
    let ExprKind::Ident(name) = &k.kind else {
        return None;
    };
    if !is_wildcard_kprobe(f) {
        return None;
    }
    let ret = matches!(f.context, Context::Probe { ret: true, .. });
    match name.as_str() {
        "func" => Some(None),
        "probe" => Some(Some(if ret { "kretprobe:" } else { "kprobe:" })),
        _ => None,
    }
}

/// The samples per second of `profile:UNIT:N`: N Hz, or one sample every N s, ms or us when that
/// is a whole number of hertz.
fn profile_hz(unit: &str, n: &str) -> Option<u64> {
    let n: u64 = n.parse().ok().filter(|&n| n > 0)?;
    let per_second = match unit {
        "hz" => return Some(n),
        "s" => 1,
        "ms" => 1_000,
        "us" => 1_000_000,
        _ => return None,
    };
    (per_second % n == 0).then(|| per_second / n)
}

/// Whether map key `k` is `kstack`, `ustack`, `kstack(N)` or `ustack(N)`: (user, frames shown).
fn stack_key(k: &Expr) -> Result<Option<(bool, usize)>, Diagnostic> {
    let (name, args) = match &k.kind {
        ExprKind::Ident(n) => (n.as_str(), &[][..]),
        ExprKind::Call { name, args } => (name.as_str(), args.as_slice()),
        _ => return Ok(None),
    };
    let user = match name {
        "kstack" => false,
        "ustack" => true,
        _ => return Ok(None),
    };
    let frames = match args {
        [] => STACK_DEPTH,
        [
            Expr {
                kind: ExprKind::Int(n),
                ..
            },
        ] if (1..=STACK_DEPTH as u64).contains(n) => *n as usize,
        _ => {
            return Err(Diagnostic::new(
                k.span,
                format!("{name}() takes a frame count from 1 to {STACK_DEPTH}"),
            )
            .hint(format!("{name} alone keeps every frame")));
        }
    };
    Ok(Some((user, frames)))
}

/// Slots of an lhist: one below `min`, one per step up to `max`, one from `max` on.
pub fn lhist_slots(min: u64, max: u64, step: u64) -> u64 {
    (max - min).div_ceil(step) + 2
}

/// `s` as the inside of a C string literal.
fn c_string(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\{:03o}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// Levenshtein distance, for "did you mean".
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// The C declarations of map `i`: its key struct, value struct and the map itself.
fn map_definition(i: usize, m: &MapInfo, clear: bool) -> String {
    let l = &m.layout;
    let mut out = String::new();
    let key = if l.keys.is_empty() {
        "__u32".to_owned()
    } else {
        let _ = writeln!(out, "\nstruct bt_key_{i} {{");
        for (j, k) in l.keys.iter().enumerate() {
            let _ = match k {
                KeyKind::Int { signed: true } => writeln!(out, "\t__s64 k{j};"),
                KeyKind::Int { signed: false } => writeln!(out, "\t__u64 k{j};"),
                KeyKind::Str { len } => writeln!(out, "\tchar k{j}[{}];", len.next_multiple_of(8)),
                KeyKind::Stack { user: false, .. } => writeln!(out, "\tep_kstack_t k{j};"),
                KeyKind::Stack { user: true, .. } => writeln!(out, "\tep_ustack_t k{j};"),
                KeyKind::Ksym { .. } => writeln!(out, "\tep_ksym_t k{j};"),
            };
        }
        // User frames are named from the process's mappings: the key carries whose they are.
        if l.keys
            .iter()
            .any(|k| matches!(k, KeyKind::Stack { user: true, .. }))
        {
            out.push_str("\t__u32 pid;\n");
        }
        out.push_str("};\n");
        format!("struct bt_key_{i}")
    };
    let (map_type, value) = match &l.kind {
        MapKind::Count | MapKind::Sum => ("BPF_MAP_TYPE_PERCPU_HASH", "__u64".to_owned()),
        MapKind::Value { signed } => (
            "BPF_MAP_TYPE_HASH",
            if *signed { "__s64" } else { "__u64" }.to_owned(),
        ),
        MapKind::Avg | MapKind::Stats => {
            if !out.contains("struct bt_avg {") {
                out.push_str("\n#ifndef BT_AVG\n#define BT_AVG\nstruct bt_avg {\n\t__u64 count;\n\t__u64 total;\n};\n#endif\n");
            }
            ("BPF_MAP_TYPE_PERCPU_HASH", "struct bt_avg".to_owned())
        }
        MapKind::Min => ("BPF_MAP_TYPE_PERCPU_HASH", "struct ep_min".to_owned()),
        MapKind::Max => ("BPF_MAP_TYPE_PERCPU_HASH", "struct ep_max".to_owned()),
        MapKind::Hist => {
            let _ = writeln!(
                out,
                "\n#ifndef BT_HIST\n#define BT_HIST\nstruct bt_hist {{\n\t__u64 slots[{HIST_SLOTS}];\n}};\n#endif"
            );
            ("BPF_MAP_TYPE_PERCPU_HASH", "struct bt_hist".to_owned())
        }
        MapKind::Lhist { min, max, step } => {
            let _ = writeln!(
                out,
                "\nstruct bt_lhist_{i} {{\n\t__u64 slots[{}];\n}};",
                lhist_slots(*min, *max, *step)
            );
            ("BPF_MAP_TYPE_PERCPU_HASH", format!("struct bt_lhist_{i}"))
        }
    };
    let tag = if clear { " EP_CLEAR" } else { "" };
    let _ = writeln!(
        out,
        "\n/* @{}: {} (first at byte {}) */\nstruct {{\n\t__uint(type, {map_type});\n\t__uint(max_entries, {MAP_ENTRIES});\n\t__type(key, {key});\n\t__type(value, {value});\n}} {}{tag} SEC(\".maps\");",
        l.name,
        l.kind.name(),
        m.first.start,
        l.c_name
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target {
            syscalls: ["openat", "open", "read", "write"]
                .map(String::from)
                .to_vec(),
            syscall_rows: Vec::new(),
        }
    }

    fn compiled(src: &str) -> Compiled {
        let program = crate::parse(src).unwrap_or_else(|d| panic!("{}", d.render("-e", src)));
        compile(&program, &target()).unwrap_or_else(|d| panic!("{}", d.render("-e", src)))
    }

    #[test]
    fn wildcards_expand_to_one_program_per_point() {
        let c = compiled("tracepoint:syscalls:sys_enter_open* { @[probe] = count(); }");
        assert_eq!(
            c.c.matches("SEC(\"tracepoint/syscalls/sys_enter_open")
                .count(),
            2,
            "{}",
            c.c
        );
        let c = compiled("tracepoint:sched:sched_wakeup* { @ = count(); }");
        assert!(
            c.c.contains("SEC(\"tracepoint/sched/sched_wakeup\")"),
            "{}",
            c.c
        );
        assert!(
            c.c.contains("struct trace_event_raw_sched_wakeup_template *ctx"),
            "{}",
            c.c
        );
    }

    #[test]
    fn maps_printfs_and_host_lines_are_laid_out_for_the_host() {
        let c = compiled(
            "BEGIN { printf(\"hi %s\\n\", \"there\"); } \
             tracepoint:syscalls:sys_enter_read { printf(\"%d %s\\n\", pid, comm); @b[comm] = hist(args.count); } \
             END { printf(\"bye\\n\"); }",
        );
        assert_eq!(c.layout.begin, "hi there\n");
        assert_eq!(c.layout.end, "bye\n");
        assert_eq!(
            c.layout.printfs,
            [PrintfSite {
                format: "%d %s\n".into(),
                args: vec![KeyKind::Int { signed: false }, KeyKind::Str { len: 16 }],
                exits: false,
            }]
        );
        assert_eq!(c.layout.maps.len(), 1);
        assert_eq!(c.layout.maps[0].kind, MapKind::Hist);
        assert_eq!(c.layout.maps[0].keys, [KeyKind::Str { len: 16 }]);
        // Per-CPU maps, and no atomic instruction anywhere (32-bit ARM's JIT has none).
        assert!(c.c.contains("BPF_MAP_TYPE_PERCPU_HASH"));
        assert!(!c.c.contains("__sync") && !c.c.contains("atomic"));
    }

    #[test]
    fn an_interval_probe_becomes_host_actions_and_clear_tags() {
        let c = compiled(
            "tracepoint:syscalls:sys_enter_read { @r = count(); @k = count(); } \
             interval:s:2 { printf(\"--\\n\"); print(@r); clear(@r); exit(); }",
        );
        assert_eq!(
            c.layout.interval,
            Some(Interval {
                secs: 2,
                actions: vec![
                    HostAction::Text("--\n".into()),
                    HostAction::Print("r".into()),
                    HostAction::Clear("r".into()),
                    HostAction::Exit,
                ],
            })
        );
        assert!(c.c.contains("} at_r EP_CLEAR SEC(\".maps\")"), "{}", c.c);
        assert!(c.c.contains("} at_k SEC(\".maps\")"), "{}", c.c);
    }

    #[test]
    fn tracepoint_fields_are_read_by_kind() {
        let c = compiled(
            "tracepoint:sched:sched_process_exec { @[args.filename, args.pid] = count(); } \
             tracepoint:sched:sched_switch { @c[args.prev_comm] = count(); }",
        );
        assert!(
            c.c.contains("EP_CORE_READ(ctx, __data_loc_filename) & 0xffff"),
            "{}",
            c.c
        );
        assert!(c.c.contains("EP_CORE_READ_SIGNED(ctx, pid)"), "{}", c.c);
        assert!(c.c.contains("__EP_FIELD_OFFSET(ctx, prev_comm)"), "{}", c.c);
        let keys = &c
            .layout
            .maps
            .iter()
            .find(|m| m.name.is_empty())
            .expect("@")
            .keys;
        assert_eq!(
            keys,
            &[KeyKind::Str { len: STR_LEN }, KeyKind::Int { signed: true }]
        );
    }

    #[test]
    fn misuse_is_a_located_error() {
        let err = |src: &str| {
            let p = crate::parse(src).expect("parses");
            compile(&p, &target()).expect_err("refused").message
        };
        assert_eq!(
            err("tracepoint:syscalls:sys_enter_read { @x = hist(comm); }"),
            "hist() needs a number here, not a string"
        );
        assert_eq!(
            err("tracepoint:syscalls:sys_enter_read { @x = lhist(1, 10, 5, 1); }"),
            "lhist() needs min < max and step > 0, with at most 1000 buckets"
        );
        assert_eq!(
            err("tracepoint:syscalls:sys_enter_read { @x = count(); $y = @x; }"),
            "@x holds count(), which a probe cannot read back"
        );
        assert_eq!(
            err("tracepoint:syscalls:sys_enter_read { $y = $z; }"),
            "$z is used before it is assigned"
        );
        assert_eq!(
            err("kprobe:f { @ = arg5; }"),
            "arg5: the first five arguments (arg0 to arg4) are readable on every board"
        );
        assert_eq!(
            err("tracepoint:syscalls:sys_enter_read { @ = retval; }"),
            "retval exists in kretprobe and uretprobe probes only"
        );
        assert_eq!(
            err("kprobe:vfs_open { @ = arg0->dentry; }"),
            "`->` needs the pointer's struct type: cast it, ((struct NAME *)PTR)->FIELD"
        );
        assert_eq!(
            err("kprobe:vfs_open { @ = (struct path *)arg0; }"),
            "a cast is for `->`: ((struct NAME *)PTR)->FIELD"
        );
        assert_eq!(
            err("kprobe:vfs_open { @ = curtask.pid; }"),
            "a kernel pointer's members are reached with `->`"
        );
        assert_eq!(
            err("profile:hz:99 { printf(\"%d\\n\", kstack); }"),
            "`kstack` is supported as a map key only"
        );
        assert_eq!(
            err("profile:hz:99 { @[ustack(0)] = count(); }"),
            "ustack() takes a frame count from 1 to 127"
        );
        assert_eq!(
            err("profile:ms:3 { @ = count(); }"),
            "`profile:ms:3` is no sampling rate this compiler supports"
        );
        assert_eq!(
            err("profile:hz:99 { @[args.x] = count(); }"),
            "a profile probe has no `args`"
        );
        assert_eq!(
            err("profile:hz:99 { @[kstack] = count(); } profile:hz:49 { @[ustack] = count(); }"),
            "key 1 of @ is a user stack here but a kernel stack before"
        );
    }

    #[test]
    fn an_arch_row_replaces_the_tables_syscall_arguments() {
        // s390x's clone (CONFIG_CLONE_BACKWARDS2) takes the stack first.
        let target = Target {
            syscalls: vec!["clone".into()],
            syscall_rows: vec![
                "clone\tunsigned long newsp\tunsigned long clone_flags\tint * parent_tidptr\tint * child_tidptr\tunsigned long tls".into(),
            ],
        };
        let p =
            crate::parse("tracepoint:syscalls:sys_enter_clone { @[args.clone_flags] = count(); }")
                .expect("parses");
        let c = compile(&p, &target).expect("compiles");
        assert!(c.c.contains("EP_CORE_READ(ctx, args[1])"), "{}", c.c);
        let c = compile(
            &p,
            &Target {
                syscall_rows: Vec::new(),
                ..target
            },
        )
        .expect("compiles");
        assert!(c.c.contains("EP_CORE_READ(ctx, args[0])"), "{}", c.c);
    }

    #[test]
    fn exit_in_a_probe_is_a_site_that_ends_the_run() {
        let c = compiled("tracepoint:syscalls:sys_enter_read { printf(\"%d\\n\", pid); exit(); }");
        assert_eq!(c.layout.printfs.len(), 2);
        assert!(!c.layout.printfs[0].exits);
        assert!(c.layout.printfs[1].exits && c.layout.printfs[1].format.is_empty());
        assert!(c.c.contains("->site = 1;"), "{}", c.c);
    }

    #[test]
    fn wildcard_kprobes_stay_one_program_named_on_the_board() {
        let c = compiled(
            "kprobe:vfs_* { @[func] = count(); } kretprobe:vfs_r* { @r[probe] = count(); }",
        );
        assert!(c.c.contains("SEC(\"kprobe/vfs_*\")"), "{}", c.c);
        assert!(c.c.contains("SEC(\"kretprobe/vfs_r*\")"), "{}", c.c);
        assert!(c.c.contains("\tep_ksym_t k0;"), "{}", c.c);
        assert_eq!(c.c.matches("bpf_get_func_ip(ctx)").count(), 2, "{}", c.c);
        let keys = |name: &str| {
            c.layout
                .maps
                .iter()
                .find(|m| m.name == name)
                .map(|m| m.keys.clone())
        };
        assert_eq!(keys(""), Some(vec![KeyKind::Ksym { prefix: None }]));
        assert_eq!(
            keys("r"),
            Some(vec![KeyKind::Ksym {
                prefix: Some("kretprobe:")
            }])
        );
        // Without a wildcard, func is the name as written.
        let c = compiled("kprobe:vfs_read { @[func] = count(); }");
        assert!(c.c.contains("= \"vfs_read\";"), "{}", c.c);
        let p = crate::parse("kprobe:vfs_* { printf(\"%s\\n\", func); }").expect("parses");
        assert_eq!(
            compile(&p, &target()).expect_err("refused").message,
            "`func` of a wildcard kprobe is supported as a map key only"
        );
    }

    #[test]
    fn profile_probes_sample_at_their_rate_and_stacks_are_keys() {
        let c = compiled(
            "profile:hz:99 { @[kstack] = count(); } profile:ms:10 /pid == 1/ { @u[comm, ustack(3)] = count(); }",
        );
        // Each rate is a setting the loader reads from the section name.
        assert!(
            c.c.contains("const volatile __u64 bt_hz_99 = 99;"),
            "{}",
            c.c
        );
        assert!(
            c.c.contains("const volatile __u64 bt_hz_100 = 100;"),
            "{}",
            c.c
        );
        assert!(c.c.contains("SEC(\"perf_event/{bt_hz_99}\")"), "{}", c.c);
        assert!(
            c.c.contains("int bt_0(struct bpf_perf_event_data *ctx)"),
            "{}",
            c.c
        );
        // One stack-trace map, not printed; user stacks carry the process id.
        assert_eq!(
            c.c.matches("BPF_MAP_TYPE_STACK_TRACE").count(),
            1,
            "{}",
            c.c
        );
        assert!(
            c.c.contains("} bt_stacks EP_SCRATCH SEC(\".maps\");"),
            "{}",
            c.c
        );
        assert!(c.c.contains("\tep_kstack_t k0;"), "{}", c.c);
        assert!(c.c.contains("\tep_ustack_t k1;\n\t__u32 pid;"), "{}", c.c);
        assert!(
            c.c.contains("bpf_get_stackid(ctx, &bt_stacks, 0)"),
            "{}",
            c.c
        );
        assert!(
            c.c.contains("bpf_get_stackid(ctx, &bt_stacks, BPF_F_USER_STACK)"),
            "{}",
            c.c
        );
        assert!(
            c.c.contains(".pid = bpf_get_current_pid_tgid() >> 32;"),
            "{}",
            c.c
        );
        let u = c.layout.maps.iter().find(|m| m.name == "u").expect("@u");
        assert_eq!(
            u.keys,
            [
                KeyKind::Str { len: 16 },
                KeyKind::Stack {
                    user: true,
                    frames: 3
                }
            ]
        );
    }
}
