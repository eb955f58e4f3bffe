//! Rendering ebpf-run's JSON lines on the host, the way BCC's tools print: one aligned table per
//! record type (a probe's ring buffer) with a header row of its field names, map dumps as tables or
//! log2 histograms, syscall numbers as the board's names, optional timestamps. Pure: lines (and the
//! time they arrived, read by the caller) in, lines out.
//!
//! ebpf-run writes one flat JSON object per line, `probe` and `map` first, then:
//! - an event: the record's fields in the order of its BTF struct (kept as written);
//! - a map entry: `key` and `value` (numbers, strings, or objects of a struct's members); a value
//!   `{"slots":[...]}` is a log2 histogram. A dump lists a map's entries together, biggest values
//!   first (loader/src/dump.rs sorts them), at exit and every `--interval`. The renderer shows them
//!   in that order as they arrive, under a `PROBE map MAP:` title; a dump ends at any other line or
//!   when one of its keys comes again (the next `--interval` dump);
//! - a summary `printed`/`lost` (a ring buffer's counts at exit), or an `error` (a map not readable);
//! - `{"dump":"interval"}` / `{"dump":"exit"}` after each round of dumps (no text of its own).
//!
//! Syscall numbers, by naming convention (nothing is keyed on one probe): an event field or a struct
//! key's member named one of [`SYSCALL_LABELS`] (`syscall`, `syscall_nr`, ...) holds a syscall number,
//! and so does the whole scalar key of a map when the map or its probe is named so (`syscount`'s map
//! `counts`, keyed by the number). [`Renderer::for_arch`] shows those as the arch's names (`openat`),
//! like BCC's syscount; a number the arch does not define stays a number, as everything does with
//! [`Renderer::new`].

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::arch::Arch;
use crate::histogram::{log2_hist, unit_label};
use crate::stacks::Stacks;
use crate::syscalls::syscall_name;

/// Names that mark a number as a syscall number: event fields, key members, or a map or probe whose
/// scalar key is one (see the module docs).
pub const SYSCALL_LABELS: &[&str] = &[
    "syscall",
    "syscalls",
    "syscall_nr",
    "syscall_id",
    "sys_nr",
    "nr_syscall",
    "syscount",
];

/// Whether `name` marks a syscall number (one of [`SYSCALL_LABELS`]).
pub fn is_syscall_label(name: &str) -> bool {
    SYSCALL_LABELS.contains(&name)
}

/// A JSON object with its keys in the order they were written (serde_json's own map sorts them);
/// members that are objects keep their order too, one level down (a struct key's members).
struct Ordered(Vec<(String, Member)>);

/// A member of a line: an object with its keys in written order, or any other JSON value.
#[derive(Debug, Clone, PartialEq)]
enum Member {
    Object(Vec<(String, Value)>),
    Plain(Value),
}

impl Member {
    /// As one JSON value (an object's key order is not kept).
    fn value(&self) -> Value {
        match self {
            Member::Plain(v) => v.clone(),
            Member::Object(m) => Value::Object(m.iter().cloned().collect()),
        }
    }
}

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Ordered, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                let mut fields = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Member>()? {
                    fields.push((k, v));
                }
                Ok(Ordered(fields))
            }
        }
        d.deserialize_map(V)
    }
}

impl<'de> Deserialize<'de> for Member {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Member, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Member;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Member, E> {
                Ok(Member::Plain(Value::Bool(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Member, E> {
                Ok(Member::Plain(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Member, E> {
                Ok(Member::Plain(v.into()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Member, E> {
                Ok(Member::Plain(v.into()))
            }
            fn visit_str<E>(self, v: &str) -> Result<Member, E> {
                Ok(Member::Plain(v.into()))
            }
            fn visit_unit<E>(self) -> Result<Member, E> {
                Ok(Member::Plain(Value::Null))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Member, A::Error> {
                let mut items = Vec::new();
                while let Some(v) = seq.next_element::<Value>()? {
                    items.push(v);
                }
                Ok(Member::Plain(Value::Array(items)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Member, A::Error> {
                let mut members = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    members.push((k, v));
                }
                Ok(Member::Object(members))
            }
        }
        d.deserialize_any(V)
    }
}

/// Which timestamp, if any, starts each event row and each dump's title.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Timestamps {
    /// No timestamps.
    #[default]
    Off,
    /// A `TIME` column, `HH:MM:SS` of the host's wall clock when the line arrived (BCC's `-T`).
    WallClock,
    /// A `TIME(s)` column, seconds since the run started, to the millisecond (BCC's `-t`).
    Relative,
}

/// When a line arrived on the host, as the caller's clocks read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Arrival {
    /// Local wall-clock time of day: time since the host's local midnight.
    pub time_of_day: Duration,
    /// Time since the run started.
    pub elapsed: Duration,
}

impl Arrival {
    /// Reads the host's clocks now: the local time of day (the time zone the C library sees) and the
    /// time since `start`. The one impure part of this module, for the caller to use.
    pub fn now(start: Instant) -> Arrival {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let secs = since_epoch.as_secs();
        let t = libc::time_t::try_from(secs).unwrap_or(0);
        // SAFETY: an all-zero `tm` is a valid value; localtime_r only writes into it.
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        // SAFETY: both pointers point to live values of the right types for the call's duration.
        let local = !unsafe { libc::localtime_r(&t, &mut tm) }.is_null();
        let seconds = if local {
            u64::try_from(tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec).unwrap_or(0)
        } else {
            secs % 86_400
        };
        Arrival {
            time_of_day: Duration::new(seconds, since_epoch.subsec_nanos()),
            elapsed: start.elapsed(),
        }
    }

    /// The stamp text of this arrival in `mode`.
    fn stamp(self, mode: Timestamps) -> String {
        match mode {
            Timestamps::Off => String::new(),
            Timestamps::WallClock => {
                let s = self.time_of_day.as_secs() % 86_400;
                format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
            }
            Timestamps::Relative => format!("{:.3}", self.elapsed.as_secs_f64()),
        }
    }
}

/// The header of the timestamp column in `mode`, and its width.
fn time_column(mode: Timestamps) -> (&'static str, usize) {
    match mode {
        Timestamps::Off => ("", 0),
        Timestamps::WallClock => ("TIME", 8),
        Timestamps::Relative => ("TIME(s)", 9),
    }
}

/// An event table: the record type a line belongs to and the columns it had when first seen.
#[derive(Debug, Clone)]
struct Table {
    probe: String,
    map: String,
    columns: Vec<String>,
    widths: Vec<usize>,
}

/// The map dump being printed: whose, which keys it has shown, and its table's shape.
#[derive(Debug, Clone)]
struct Dump {
    probe: String,
    map: String,
    keys: HashSet<String>,
    /// Column headers and widths of its table rows (empty until the first non-histogram row).
    columns: Vec<String>,
    widths: Vec<usize>,
}

/// One cell of a dump row: its text and whether it is a number (right-aligned, as BCC does).
type Cell = (String, bool);

/// Turns JSON lines into text lines, remembering column widths per record type.
#[derive(Debug, Default)]
pub struct Renderer {
    /// The board's arch, for syscall names; `None` keeps numbers.
    arch: Option<Arch>,
    timestamps: Timestamps,
    tables: Vec<Table>,
    /// Index of the table of the last printed row, to repeat a header when the type changes.
    last: Option<usize>,
    /// The map dump the last line belonged to.
    dump: Option<Dump>,
    /// What the last line was.
    kind: LineKind,
    /// One probe runs: event tables have no PROBE column, as a BCC tool's output has none.
    single_probe: bool,
    /// Stacks named here, for keys that hold them (profile).
    stacks: Stacks,
    /// Folded stacks of the dump being received: printed merged, busiest first, when it ends.
    pending_stacks: Option<PendingStacks>,
}

/// Folded stacks of one map's dump, waiting for the dump's end.
#[derive(Debug)]
struct PendingStacks {
    probe: String,
    map: String,
    lines: HashMap<String, u64>,
}

/// What a line of ebpf-run's output was, for a caller that places them (the live view of
/// `run --interval`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LineKind {
    /// An event of a ring buffer or perf buffer.
    Event,
    /// An entry of a map dump.
    MapEntry,
    /// `{"dump":"interval"}` / `{"dump":"exit"}`: a round of map dumps is complete.
    RoundEnd,
    /// A ring buffer's printed/lost counts, or a map that could not be read.
    Summary,
    /// Not one of ebpf-run's JSON lines (passed through).
    #[default]
    Other,
}

/// Width of the probe column of event tables.
const PROBE_WIDTH: usize = 12;

fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// A histogram value's slot counts, when `v` is `{"slots":[...]}`.
fn hist_slots(v: &Member) -> Option<Vec<u64>> {
    let Member::Object(members) = v else {
        return None;
    };
    let [(name, Value::Array(slots))] = members.as_slice() else {
        return None;
    };
    (name == "slots").then(|| slots.iter().map(|s| s.as_u64().unwrap_or(0)).collect())
}

impl Renderer {
    /// A renderer with no tables yet; syscall numbers stay numbers.
    pub fn new() -> Renderer {
        Renderer::default()
    }

    /// A renderer for a board of `arch`: syscall numbers show as that arch's names.
    pub fn for_arch(arch: Arch) -> Renderer {
        Renderer {
            arch: Some(arch),
            ..Renderer::default()
        }
    }

    /// The same renderer with timestamps of the given kind (pass arrivals with [`Renderer::line_at`]).
    pub fn with_timestamps(self, timestamps: Timestamps) -> Renderer {
        Renderer { timestamps, ..self }
    }

    /// The same renderer for a run of one probe: event tables leave out the PROBE column.
    pub fn with_single_probe(self, single_probe: bool) -> Renderer {
        Renderer {
            single_probe,
            ..self
        }
    }

    /// The same renderer naming user frames of stacks from files found in `dirs` (`--symbols`).
    pub fn with_symbol_dirs(self, dirs: Vec<PathBuf>) -> Renderer {
        Renderer {
            stacks: Stacks::new(dirs),
            ..self
        }
    }

    /// The stacks of the run so far, named (for `--folded` and `--flamegraph`).
    pub fn stacks(&self) -> &Stacks {
        &self.stacks
    }

    /// The stacks of the run, to take a one-liner's symbol records and name its stack keys.
    pub fn stacks_mut(&mut self) -> &mut Stacks {
        &mut self.stacks
    }

    /// Prints the folded stacks of the dump that was being received.
    fn flush_stacks(&mut self, out: &mut Vec<String>) {
        let Some(p) = self.pending_stacks.take() else {
            return;
        };
        out.push(format!("{} map {}:", p.probe, p.map));
        let mut lines: Vec<(String, u64)> = p.lines.into_iter().collect();
        lines.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        out.extend(lines.into_iter().map(|(s, n)| format!("{s} {n}")));
    }

    /// Lines still held at the end of the output: the folded stacks of a dump not yet ended.
    pub fn finish(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        self.flush_stacks(&mut out);
        out
    }

    /// The text lines for one line of ebpf-run's output, stacks of a dump still pending included
    /// when it ends the dump.
    fn stack_line(
        &mut self,
        probe: &str,
        map: &str,
        fields: &[(String, Member)],
    ) -> Option<Vec<String>> {
        let get = |k: &str| fields.iter().find(|(f, _)| f == k).map(|(_, v)| v.value());
        let names: Vec<&str> = fields
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| *k != "probe" && *k != "map")
            .collect();
        match names.as_slice() {
            ["symbols"] => {
                self.stacks.take_symbols(probe, map, &get("symbols")?);
                self.kind = LineKind::MapEntry;
                Some(Vec::new())
            }
            ["key", "value", "stacks"] => {
                let mut out = Vec::new();
                let same = self
                    .pending_stacks
                    .as_ref()
                    .is_some_and(|p| p.probe == probe && p.map == map);
                if !same {
                    self.flush_stacks(&mut out);
                }
                let count = get("value")?.as_u64().unwrap_or(0);
                let line = self
                    .stacks
                    .fold_row(probe, map, &get("key")?, count, &get("stacks")?);
                let pending = self.pending_stacks.get_or_insert_with(|| PendingStacks {
                    probe: probe.to_owned(),
                    map: map.to_owned(),
                    lines: HashMap::new(),
                });
                *pending.lines.entry(line).or_default() += count;
                self.kind = LineKind::MapEntry;
                Some(out)
            }
            _ => None,
        }
    }

    /// What the line last given to [`Renderer::line_at`] was.
    pub fn last_kind(&self) -> LineKind {
        self.kind
    }

    /// The text lines for one line of ebpf-run's output. Lines that are not JSON objects pass through.
    /// Timestamps, if on, read all zero: use [`Renderer::line_at`] for them.
    pub fn line(&mut self, json: &str) -> Vec<String> {
        self.line_at(json, Arrival::default())
    }

    /// The text lines for one line of ebpf-run's output that arrived at `at`.
    pub fn line_at(&mut self, json: &str, at: Arrival) -> Vec<String> {
        let Ok(Ordered(fields)) = serde_json::from_str::<Ordered>(json) else {
            self.dump = None;
            self.kind = LineKind::Other;
            return vec![json.to_string()];
        };
        let get = |k: &str| fields.iter().find(|(f, _)| f == k).map(|(_, v)| v);
        let text = |m: &Member| cell(&m.value());
        let probe = get("probe").map(text).unwrap_or_default();
        let map = get("map").map(text).unwrap_or_default();
        if let Some(lines) = self.stack_line(&probe, &map, &fields) {
            return lines;
        }
        // Anything else ends a dump of stacks.
        let mut flushed = Vec::new();
        self.flush_stacks(&mut flushed);
        if !flushed.is_empty() {
            let mut rest = self.line_at(json, at);
            flushed.append(&mut rest);
            return flushed;
        }
        let rest: Vec<(String, Value)> = fields
            .iter()
            .filter(|(k, _)| k != "probe" && k != "map")
            .map(|(k, v)| (k.clone(), v.value()))
            .collect();
        let names: Vec<&str> = rest.iter().map(|(k, _)| k.as_str()).collect();
        match (names.as_slice(), get("key"), get("value")) {
            (["key", "value"], Some(key), Some(value)) => {
                self.kind = LineKind::MapEntry;
                return self.entry(&probe, &map, key, value, at);
            }
            (["printed", "lost"], ..) => {
                self.dump = None;
                self.kind = LineKind::Summary;
                return vec![format!(
                    "{probe}: {} events of {map} printed, {} lost",
                    get("printed").map(text).unwrap_or_default(),
                    get("lost").map(text).unwrap_or_default()
                )];
            }
            (["error"], ..) => {
                self.dump = None;
                self.kind = LineKind::Summary;
                let why = get("error").map(text).unwrap_or_default();
                return vec![format!("{probe} map {map}: {why}")];
            }
            (["dump"], ..) if probe.is_empty() => {
                self.dump = None;
                self.kind = LineKind::RoundEnd;
                return Vec::new();
            }
            _ => {}
        }
        self.kind = LineKind::Event;
        self.event(probe, map, &rest, at)
    }

    /// The text of a value: a syscall's name when `syscall` (its label says so) and the arch knows
    /// the number.
    fn value_text(&self, syscall: bool, v: &Value) -> String {
        match (syscall, self.arch, v.as_u64()) {
            (true, Some(arch), Some(nr)) => syscall_name(arch, nr)
                .map(str::to_string)
                .unwrap_or_else(|| nr.to_string()),
            _ => cell(v),
        }
    }

    /// An event row, after a header row when the record type differs from the last row's.
    fn event(
        &mut self,
        probe: String,
        map: String,
        rest: &[(String, Value)],
        at: Arrival,
    ) -> Vec<String> {
        self.dump = None;
        let names: Vec<String> = rest.iter().map(|(k, _)| k.clone()).collect();
        let values: Vec<String> = rest
            .iter()
            .map(|(k, v)| self.value_text(is_syscall_label(k), v))
            .collect();
        let mut out = Vec::new();
        let index = match self
            .tables
            .iter()
            .position(|t| t.probe == probe && t.map == map && t.columns == names)
        {
            Some(i) => i,
            None => {
                // Room for a pid-sized number or a task name from the first row on, so columns
                // rarely move when a wider value comes.
                let widths = names
                    .iter()
                    .zip(rest.iter().zip(&values))
                    .map(|(n, ((_, v), text))| {
                        let named = is_syscall_label(n) && self.arch.is_some();
                        let min = if v.is_number() && !named { 7 } else { 16 };
                        n.len().max(text.len()).max(min)
                    })
                    .collect();
                self.tables.push(Table {
                    probe: probe.clone(),
                    map,
                    columns: names,
                    widths,
                });
                self.tables.len() - 1
            }
        };
        let table = &mut self.tables[index];
        for (w, v) in table.widths.iter_mut().zip(&values) {
            *w = (*w).max(v.len());
        }
        let (time_header, time_width) = time_column(self.timestamps);
        let start = |first: &str| {
            if time_width == 0 {
                String::new()
            } else {
                format!("{first:<time_width$} ")
            }
        };
        if self.last != Some(index) {
            let mut header = start(time_header);
            if !self.single_probe {
                let _ = write!(header, "{:<PROBE_WIDTH$} ", "PROBE");
            }
            for (n, w) in table.columns.iter().zip(&table.widths) {
                let _ = write!(header, "{:<w$} ", n.to_uppercase());
            }
            out.push(header.trim_end().to_string());
            self.last = Some(index);
        }
        let mut row = start(&at.stamp(self.timestamps));
        if !self.single_probe {
            let _ = write!(row, "{probe:<PROBE_WIDTH$} ");
        }
        for (v, w) in values.iter().zip(&table.widths) {
            let _ = write!(row, "{v:<w$} ");
        }
        out.push(row.trim_end().to_string());
        out
    }

    /// A map entry: a dump's title when it starts a dump, then a histogram or a table row.
    fn entry(
        &mut self,
        probe: &str,
        map: &str,
        key: &Member,
        value: &Member,
        at: Arrival,
    ) -> Vec<String> {
        let key_text = key.value().to_string();
        let mut out = Vec::new();
        let continues = self
            .dump
            .as_ref()
            .is_some_and(|d| d.probe == probe && d.map == map && !d.keys.contains(&key_text));
        if !continues {
            let stamp = match self.timestamps {
                Timestamps::Off => String::new(),
                mode => format!("[{}] ", at.stamp(mode)),
            };
            out.push(format!("{stamp}{probe} map {map}:"));
            self.dump = Some(Dump {
                probe: probe.to_string(),
                map: map.to_string(),
                keys: HashSet::new(),
                columns: Vec::new(),
                widths: Vec::new(),
            });
        }
        self.last = None;
        // A scalar key is a syscall number when its map or probe is named for syscalls.
        let scalar_syscall = is_syscall_label(map) || is_syscall_label(probe);
        let key_cells = self.cells(key, if scalar_syscall { "syscall" } else { "key" });
        let Some(dump) = self.dump.as_mut() else {
            return out;
        };
        let first = dump.keys.is_empty();
        dump.keys.insert(key_text);
        if let Some(slots) = hist_slots(value) {
            if !first {
                out.push(String::new());
            }
            let key_line: Vec<String> = key_cells
                .iter()
                .map(|(name, (text, _))| format!("{} = {text}", name.to_lowercase()))
                .collect();
            out.push(key_line.join(", "));
            out.extend(log2_hist(&slots, unit_label(map)));
            return out;
        }
        let value_cells = self.cells(value, "value");
        let Some(dump) = self.dump.as_mut() else {
            return out;
        };
        let (columns, cells): (Vec<String>, Vec<Cell>) =
            key_cells.into_iter().chain(value_cells).unzip();
        if dump.columns != columns {
            dump.widths = columns
                .iter()
                .zip(&cells)
                .map(|(c, (text, number))| {
                    // Names as wide as BCC's syscount makes them (`%-22s`): the longest fit.
                    let min = match (*number, is_syscall_label(&c.to_lowercase())) {
                        (true, _) => 8,
                        (false, true) => 22,
                        (false, false) => 16,
                    };
                    c.len().max(text.len()).max(min)
                })
                .collect();
            dump.columns = columns;
            let mut header = String::new();
            for ((c, w), (_, number)) in dump.columns.iter().zip(&dump.widths).zip(&cells) {
                if *number {
                    let _ = write!(header, "{c:>w$} ");
                } else {
                    let _ = write!(header, "{c:<w$} ");
                }
            }
            out.push(header.trim_end().to_string());
        }
        let mut row = String::new();
        for (w, (text, number)) in dump.widths.iter_mut().zip(&cells) {
            *w = (*w).max(text.len());
            if *number {
                let _ = write!(row, "{text:>w$} ", w = *w);
            } else {
                let _ = write!(row, "{text:<w$} ", w = *w);
            }
        }
        out.push(row.trim_end().to_string());
        out
    }

    /// The columns of a key or value: one named `name` for a scalar, one per member of an object
    /// (members named for syscalls shown as names). Headers are upper-case.
    fn cells(&self, v: &Member, name: &str) -> Vec<(String, Cell)> {
        // A column of syscall names is text throughout, also where a number has no name.
        let one = |label: &str, v: &Value| {
            let syscall = is_syscall_label(label);
            let text = self.value_text(syscall, v);
            let number = v.is_number() && !(syscall && self.arch.is_some());
            (label.to_uppercase(), (text, number))
        };
        match v {
            Member::Object(members) if !members.is_empty() => {
                members.iter().map(|(k, v)| one(k, v)).collect()
            }
            other => vec![one(name, &other.value())],
        }
    }
}

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
