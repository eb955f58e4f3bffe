//! The maps of a compiled program printed as bpftrace prints them at exit: maps in name order,
//! `@name[key, ...]: value` lines sorted by value, `avg()` maps followed by a blank line, and
//! `hist()`/`lhist()` drawn with bpftrace's bucket labels (`[4K, 8K)`, `(..., 0)`, `[max, ...)`)
//! and 52-character bars. Input is the map entries ebpf-run dumped, already summed over CPUs.

use std::fmt::Write as _;

use crate::compile::{Layout, MapKind, MapLayout};

/// One key of a map entry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum KeyValue {
    /// A number.
    Int(i128),
    /// A string.
    Str(String),
}

/// The value of a map entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `count()`, `sum()` or a plain value.
    Int(i128),
    /// `avg()`: how many values and their total.
    Avg {
        /// Values added.
        count: u64,
        /// Their sum.
        total: i128,
    },
    /// `hist()` or `lhist()` slots.
    Slots(Vec<u64>),
}

/// One entry of a map, as ebpf-run dumped it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The map's name in the object (`MapLayout::c_name`).
    pub map: String,
    /// Its keys (none for a map without keys).
    pub keys: Vec<KeyValue>,
    /// Its value.
    pub value: Value,
}

/// Width of a histogram bar at its longest.
const BAR: u64 = 52;

/// The text bpftrace prints for the maps of `layout` holding `entries`.
pub fn render_maps(layout: &Layout, entries: &[Entry]) -> String {
    let mut out = String::new();
    for map in &layout.maps {
        let rows = rows(map, entries);
        if rows.is_empty() {
            continue;
        }
        for e in &rows {
            let head = format!("@{}{}", map.name, keys_text(&e.keys));
            match (&map.kind, &e.value) {
                (MapKind::Hist, Value::Slots(slots)) => {
                    let _ = writeln!(out, "{head}: ");
                    out.push_str(&hist_text(slots, hist_label));
                    out.push('\n');
                }
                (MapKind::Lhist { min, max, step }, Value::Slots(slots)) => {
                    let _ = writeln!(out, "{head}: ");
                    let label = |i: usize| lhist_label(i, slots.len(), *min, *max, *step);
                    out.push_str(&hist_text(slots, label));
                    out.push('\n');
                }
                (MapKind::Stats, Value::Avg { count, total }) => {
                    let avg = average(*count, *total);
                    let _ = writeln!(out, "{head}: count {count}, average {avg}, total {total}");
                }
                (_, Value::Avg { count, total }) => {
                    let _ = writeln!(out, "{head}: {}", average(*count, *total));
                }
                (_, Value::Int(v)) => {
                    let _ = writeln!(out, "{head}: {v}");
                }
                (_, Value::Slots(slots)) => {
                    let _ = writeln!(out, "{head}: {}", slots.iter().sum::<u64>());
                }
            }
        }
        if matches!(map.kind, MapKind::Avg | MapKind::Stats) {
            out.push('\n');
        }
    }
    out
}

/// `s` as a JSON string literal.
pub fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The maps of `layout` holding `entries` as bpftrace's `-f json` prints them: one line per map,
/// `{"type": "map", "data": {"@name": {"k1,k2": value, ...}}}` (`"stats"` for `avg()`, `"hist"` with
/// `min`/`max`/`count` buckets for histograms), entries in the text layout's order.
pub fn render_maps_json(layout: &Layout, entries: &[Entry]) -> String {
    let mut out = String::new();
    for map in &layout.maps {
        let rows = rows(map, entries);
        if rows.is_empty() {
            continue;
        }
        let kind = match map.kind {
            MapKind::Hist | MapKind::Lhist { .. } => "hist",
            MapKind::Avg | MapKind::Stats => "stats",
            _ => "map",
        };
        let value = |e: &Entry| match (&map.kind, &e.value) {
            (MapKind::Hist, Value::Slots(slots)) => hist_json(slots, hist_bounds),
            (MapKind::Lhist { min, max, step }, Value::Slots(slots)) => {
                let n = slots.len();
                hist_json(slots, |i| lhist_bounds(i, n, *min, *max, *step))
            }
            (MapKind::Stats, Value::Avg { count, total }) => format!(
                "{{\"count\": {count}, \"average\": {}, \"total\": {total}}}",
                average(*count, *total)
            ),
            (_, Value::Avg { count, total }) => average(*count, *total).to_string(),
            (_, Value::Int(v)) => v.to_string(),
            (_, Value::Slots(s)) => s.iter().sum::<u64>().to_string(),
        };
        let name = json_string(&format!("@{}", map.name));
        let data = if map.keys.is_empty() {
            rows.first().map(&value).unwrap_or_default()
        } else {
            let parts: Vec<String> = rows
                .iter()
                .map(|e| {
                    let key: Vec<String> = e
                        .keys
                        .iter()
                        .map(|k| match k {
                            KeyValue::Int(n) => n.to_string(),
                            KeyValue::Str(s) => s.clone(),
                        })
                        .collect();
                    format!("{}: {}", json_string(&key.join(",")), value(e))
                })
                .collect();
            format!("{{{}}}", parts.join(", "))
        };
        let _ = writeln!(
            out,
            "{{\"type\": \"{kind}\", \"data\": {{{name}: {data}}}}}"
        );
    }
    out
}

/// `(min, max)` of `hist()` slot `i`; `None` for an open end.
fn hist_bounds(i: usize) -> (Option<i128>, Option<i128>) {
    match i {
        0 => (None, Some(-1)),
        1 => (Some(0), Some(0)),
        _ => {
            let p = (i - 2) as u32;
            (Some(1i128 << p), Some((1i128 << (p + 1)) - 1))
        }
    }
}

/// `(min, max)` of `lhist()` slot `i` of `n`.
fn lhist_bounds(i: usize, n: usize, min: u64, max: u64, step: u64) -> (Option<i128>, Option<i128>) {
    if i == 0 {
        (None, Some(i128::from(min) - 1))
    } else if i + 1 == n {
        (Some(i128::from(max)), None)
    } else {
        let lo = i128::from(min) + (i as i128 - 1) * i128::from(step);
        (
            Some(lo),
            Some((lo + i128::from(step)).min(i128::from(max)) - 1),
        )
    }
}

/// A histogram's buckets, first to last non-empty, as bpftrace's JSON.
fn hist_json(slots: &[u64], bounds: impl Fn(usize) -> (Option<i128>, Option<i128>)) -> String {
    let (Some(first), Some(last)) = (
        slots.iter().position(|&n| n > 0),
        slots.iter().rposition(|&n| n > 0),
    ) else {
        return "[]".into();
    };
    let buckets: Vec<String> = (first..=last)
        .map(|i| {
            let (lo, hi) = bounds(i);
            let mut fields = Vec::new();
            if let Some(lo) = lo {
                fields.push(format!("\"min\": {lo}"));
            }
            if let Some(hi) = hi {
                fields.push(format!("\"max\": {hi}"));
            }
            fields.push(format!("\"count\": {}", slots[i]));
            format!("{{{}}}", fields.join(", "))
        })
        .collect();
    format!("[{}]", buckets.join(", "))
}

/// The entries of `map`, in the order bpftrace prints them: by value, then by key.
fn rows(map: &MapLayout, entries: &[Entry]) -> Vec<Entry> {
    // Entries whose keys print the same are one: stacks cut to their first frames (`kstack(2)`)
    // come from stack ids that differ deeper down.
    let mut rows: Vec<Entry> = Vec::new();
    let mut at: std::collections::BTreeMap<&[KeyValue], usize> = std::collections::BTreeMap::new();
    for e in entries.iter().filter(|e| e.map == map.c_name) {
        match at.get(e.keys.as_slice()) {
            Some(&i) => {
                if let Some(row) = rows.get_mut(i) {
                    row.value = merged(&map.kind, &row.value, &e.value);
                }
            }
            None => {
                at.insert(&e.keys, rows.len());
                rows.push(e.clone());
            }
        }
    }
    rows.sort_by(|a, b| {
        order(&a.value)
            .cmp(&order(&b.value))
            .then(a.keys.cmp(&b.keys))
    });
    rows
}

/// Two values of one key, as one: counts, sums, averages and histograms add up, `min()` and
/// `max()` keep the extreme, a plain value the later one.
fn merged(kind: &MapKind, a: &Value, b: &Value) -> Value {
    match (kind, a, b) {
        (MapKind::Min, Value::Int(x), Value::Int(y)) => Value::Int(*x.min(y)),
        (MapKind::Max, Value::Int(x), Value::Int(y)) => Value::Int(*x.max(y)),
        (MapKind::Value { .. }, _, later) => later.clone(),
        (_, Value::Int(x), Value::Int(y)) => Value::Int(x + y),
        (
            _,
            Value::Avg { count, total },
            Value::Avg {
                count: c2,
                total: t2,
            },
        ) => Value::Avg {
            count: count + c2,
            total: total + t2,
        },
        (_, Value::Slots(x), Value::Slots(y)) => Value::Slots(
            (0..x.len().max(y.len()))
                .map(|i| x.get(i).copied().unwrap_or(0) + y.get(i).copied().unwrap_or(0))
                .collect(),
        ),
        (_, _, later) => later.clone(),
    }
}

/// `total / count`, 0 for no values (bpftrace's integer average).
fn average(count: u64, total: i128) -> i128 {
    if count == 0 {
        0
    } else {
        total / i128::from(count)
    }
}

/// What entries of a map sort by: their value, a histogram's total.
fn order(v: &Value) -> i128 {
    match v {
        Value::Int(n) => *n,
        Value::Avg { count, total } if *count > 0 => total / i128::from(*count),
        Value::Avg { .. } => 0,
        Value::Slots(s) => s.iter().map(|&n| i128::from(n)).sum(),
    }
}

fn keys_text(keys: &[KeyValue]) -> String {
    if keys.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = keys
        .iter()
        .map(|k| match k {
            KeyValue::Int(n) => n.to_string(),
            KeyValue::Str(s) => s.clone(),
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

/// A power of two as bpftrace writes it: `512`, `1K`, `2M`, ...
fn power_label(p: u32) -> String {
    const SUFFIXES: [&str; 7] = ["", "K", "M", "G", "T", "P", "E"];
    let unit = (p / 10) as usize;
    format!("{}{}", 1u64 << (p % 10), SUFFIXES[unit.min(6)])
}

/// The label of `hist()` slot `i` (see `compile::HIST_SLOTS`).
fn hist_label(i: usize) -> String {
    match i {
        0 => "(..., 0)".into(),
        1 => "[0]".into(),
        2 => "[1]".into(),
        _ => {
            let p = (i - 2) as u32;
            format!("[{}, {})", power_label(p), power_label(p + 1))
        }
    }
}

/// A bucket bound as bpftrace writes it: with `K`, `M`, ... when it is a multiple of 1024
/// (`131072` is `128K`), else in digits.
fn bound_label(n: u64) -> String {
    const SUFFIXES: [&str; 7] = ["", "K", "M", "G", "T", "P", "E"];
    let (mut v, mut unit) = (n, 0);
    while v != 0 && v % 1024 == 0 && unit < 6 {
        v /= 1024;
        unit += 1;
    }
    format!("{v}{}", SUFFIXES[unit])
}

/// The label of `lhist()` slot `i` of `n`.
fn lhist_label(i: usize, n: usize, min: u64, max: u64, step: u64) -> String {
    if i == 0 {
        format!("(..., {})", bound_label(min))
    } else if i + 1 == n {
        format!("[{}, ...)", bound_label(max))
    } else {
        let lo = min + (i as u64 - 1) * step;
        format!(
            "[{}, {})",
            bound_label(lo),
            bound_label((lo + step).min(max))
        )
    }
}

/// Bucket lines from the first to the last non-empty slot, with bars scaled to the largest.
fn hist_text(slots: &[u64], label: impl Fn(usize) -> String) -> String {
    let mut out = String::new();
    let (Some(first), Some(last)) = (
        slots.iter().position(|&n| n > 0),
        slots.iter().rposition(|&n| n > 0),
    ) else {
        return out;
    };
    let max = slots.iter().copied().max().unwrap_or(1).max(1);
    for (i, &n) in slots.iter().enumerate().take(last + 1).skip(first) {
        let bar = "@".repeat((u128::from(n) * u128::from(BAR) / u128::from(max)) as usize);
        let _ = writeln!(out, "{:<16}{n:>8} |{bar:<52}|", label(i));
    }
    out
}

/// An argument of a `printf()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// A number (its signedness already applied).
    Int(i128),
    /// A string.
    Str(String),
}

/// One conversion of a printf format: `%[flags][width][.precision][length]conversion`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversion {
    /// Byte range of the whole `%...` in the format.
    pub range: std::ops::Range<usize>,
    /// `-`: left-justify.
    pub left: bool,
    /// `0`: pad numbers with zeros.
    pub zero: bool,
    /// `+` or ` ` before positive numbers.
    pub sign: Option<char>,
    /// Minimum width.
    pub width: usize,
    /// Precision (most characters of a string, least digits of a number).
    pub precision: Option<usize>,
    /// `d i u x X o c s p`.
    pub conv: char,
}

/// The conversions of a printf format, or the byte offset and text of one it cannot print.
pub fn conversions(format: &str) -> Result<Vec<Conversion>, (usize, String)> {
    let b = format.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'%' {
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        if b.get(i) == Some(&b'%') {
            i += 1;
            continue;
        }
        let mut c = Conversion {
            range: start..start,
            left: false,
            zero: false,
            sign: None,
            width: 0,
            precision: None,
            conv: ' ',
        };
        while let Some(&f) = b.get(i) {
            match f {
                b'-' => c.left = true,
                b'0' => c.zero = true,
                b'+' => c.sign = Some('+'),
                b' ' => c.sign = c.sign.or(Some(' ')),
                _ => break,
            }
            i += 1;
        }
        while let Some(d) = b.get(i).filter(|d| d.is_ascii_digit()) {
            c.width = (c.width * 10 + usize::from(d - b'0')).min(1000);
            i += 1;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            let mut p = 0;
            while let Some(d) = b.get(i).filter(|d| d.is_ascii_digit()) {
                p = (p * 10 + usize::from(d - b'0')).min(1000);
                i += 1;
            }
            c.precision = Some(p);
        }
        while matches!(b.get(i), Some(b'l' | b'h' | b'z' | b'j' | b't')) {
            i += 1;
        }
        match b.get(i) {
            Some(&conv @ (b'd' | b'i' | b'u' | b'x' | b'X' | b'o' | b'c' | b's' | b'p')) => {
                c.conv = char::from(conv);
                i += 1;
                c.range = start..i;
                out.push(c);
            }
            _ => {
                let end = format[i..].chars().next().map_or(i, |ch| i + ch.len_utf8());
                return Err((start, format[start..end].to_owned()));
            }
        }
    }
    Ok(out)
}

/// `format` with `args` put in, as C's printf would (bpftrace's `printf()`); a format that
/// [`conversions`] refuses, or too few arguments, leaves the rest as written.
pub fn format_printf(format: &str, args: &[Arg]) -> String {
    let Ok(convs) = conversions(format) else {
        return format.to_owned();
    };
    let mut out = String::new();
    let mut at = 0;
    for (c, arg) in convs.iter().zip(args) {
        out.push_str(&format[at..c.range.start].replace("%%", "%"));
        at = c.range.end;
        let body = match (c.conv, arg) {
            ('s', Arg::Str(s)) => match c.precision {
                Some(p) => s.chars().take(p).collect(),
                None => s.clone(),
            },
            ('s', Arg::Int(n)) => n.to_string(),
            ('c', Arg::Int(n)) => char::from_u32(*n as u32)
                .map(String::from)
                .unwrap_or_default(),
            (_, Arg::Str(s)) => s.clone(),
            (conv, Arg::Int(n)) => {
                let digits = match conv {
                    'u' => (*n as u64).to_string(),
                    'x' => format!("{:x}", *n as u64),
                    'X' => format!("{:X}", *n as u64),
                    'o' => format!("{:o}", *n as u64),
                    'p' => format!("0x{:x}", *n as u64),
                    _ => n.unsigned_abs().to_string(),
                };
                let digits = match c.precision {
                    Some(p) if digits.len() < p => format!("{digits:0>p$}"),
                    _ => digits,
                };
                let sign = if matches!(conv, 'd' | 'i') {
                    if *n < 0 { Some('-') } else { c.sign }
                } else {
                    None
                };
                match sign {
                    Some(s) if c.zero && !c.left && c.precision.is_none() => {
                        let w = c.width.saturating_sub(1);
                        format!("{s}{digits:0>w$}")
                    }
                    Some(s) => format!("{s}{digits}"),
                    None if c.zero && !c.left && c.precision.is_none() => {
                        let w = c.width;
                        format!("{digits:0>w$}")
                    }
                    None => digits,
                }
            }
        };
        let w = c.width;
        if c.left {
            out.push_str(&format!("{body:<w$}"));
        } else {
            out.push_str(&format!("{body:>w$}"));
        }
    }
    out.push_str(&format[at..].replace("%%", "%"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::{KeyKind, MapLayout};

    fn map(name: &str, kind: MapKind, keys: Vec<KeyKind>) -> MapLayout {
        MapLayout {
            c_name: format!("at_{name}"),
            name: name.into(),
            kind,
            keys,
        }
    }

    /// The layout bpftrace 0.17 printed for the same maps on this host (its text copied here).
    #[test]
    fn maps_print_as_bpftrace_prints_them() {
        let s = KeyKind::Str { len: 16 };
        let layout = Layout {
            maps: vec![
                map("", MapKind::Count, vec![s]),
                map("a", MapKind::Avg, vec![]),
                map("h", MapKind::Hist, vec![]),
                map(
                    "l",
                    MapKind::Lhist {
                        min: 0,
                        max: 100_000,
                        step: 20_000,
                    },
                    vec![],
                ),
                map("s", MapKind::Sum, vec![KeyKind::Int { signed: false }, s]),
            ],
            ..Layout::default()
        };
        let str_key = |k: &str| vec![KeyValue::Str(k.into())];
        let mut h = vec![0u64; 66];
        h[1] = 7;
        h[2 + 9] = 3;
        h[2 + 19] = 116;
        let entries = vec![
            Entry {
                map: "at_".into(),
                keys: str_key("cat"),
                value: Value::Int(93),
            },
            Entry {
                map: "at_".into(),
                keys: str_key("bash"),
                value: Value::Int(3),
            },
            Entry {
                map: "at_".into(),
                keys: str_key("sleep"),
                value: Value::Int(30),
            },
            Entry {
                map: "at_a".into(),
                keys: vec![],
                value: Value::Avg {
                    count: 126,
                    total: 60_819_139,
                },
            },
            Entry {
                map: "at_h".into(),
                keys: vec![],
                value: Value::Slots(h),
            },
            Entry {
                map: "at_l".into(),
                keys: vec![],
                value: Value::Slots(vec![0, 10, 0, 0, 0, 0, 116]),
            },
            Entry {
                map: "at_s".into(),
                keys: vec![KeyValue::Int(4500), KeyValue::Str("sleep".into())],
                value: Value::Int(30),
            },
            Entry {
                map: "at_s".into(),
                keys: vec![KeyValue::Int(4499), KeyValue::Str("bash".into())],
                value: Value::Int(1),
            },
        ];
        let bars = |n: usize| format!("|{:<52}|", "@".repeat(n));
        let mut want = String::from("@[bash]: 3\n@[sleep]: 30\n@[cat]: 93\n@a: 482691\n\n@h: \n");
        for (label, n, bar) in [
            ("[0]", 7, 3),
            ("[1]", 0, 0),
            ("[2, 4)", 0, 0),
            ("[4, 8)", 0, 0),
            ("[8, 16)", 0, 0),
            ("[16, 32)", 0, 0),
            ("[32, 64)", 0, 0),
            ("[64, 128)", 0, 0),
            ("[128, 256)", 0, 0),
            ("[256, 512)", 0, 0),
            ("[512, 1K)", 3, 1),
            ("[1K, 2K)", 0, 0),
            ("[2K, 4K)", 0, 0),
            ("[4K, 8K)", 0, 0),
            ("[8K, 16K)", 0, 0),
            ("[16K, 32K)", 0, 0),
            ("[32K, 64K)", 0, 0),
            ("[64K, 128K)", 0, 0),
            ("[128K, 256K)", 0, 0),
            ("[256K, 512K)", 0, 0),
            ("[512K, 1M)", 116, 52),
        ] {
            want.push_str(&format!("{label:<16}{n:>8} {}\n", bars(bar)));
        }
        want.push_str("\n@l: \n");
        for (label, n, bar) in [
            ("[0, 20000)", 10, 4),
            ("[20000, 40000)", 0, 0),
            ("[40000, 60000)", 0, 0),
            ("[60000, 80000)", 0, 0),
            ("[80000, 100000)", 0, 0),
            ("[100000, ...)", 116, 52),
        ] {
            want.push_str(&format!("{label:<16}{n:>8} {}\n", bars(bar)));
        }
        want.push_str("\n@s[4499, bash]: 1\n@s[4500, sleep]: 30\n");
        assert_eq!(render_maps(&layout, &entries), want);
    }

    /// The lines bpftrace 0.17 printed with `-f json` for the same maps on this host.
    #[test]
    fn json_maps_print_as_bpftrace_prints_them() {
        let layout = Layout {
            maps: vec![
                map("", MapKind::Count, vec![KeyKind::Str { len: 16 }]),
                map("a", MapKind::Avg, vec![]),
                map(
                    "l",
                    MapKind::Lhist {
                        min: 0,
                        max: 100_000,
                        step: 20_000,
                    },
                    vec![],
                ),
                map(
                    "s",
                    MapKind::Sum,
                    vec![KeyKind::Int { signed: false }, KeyKind::Str { len: 16 }],
                ),
            ],
            ..Layout::default()
        };
        let entries = vec![
            Entry {
                map: "at_".into(),
                keys: vec![KeyValue::Str("cat".into())],
                value: Value::Int(31),
            },
            Entry {
                map: "at_a".into(),
                keys: vec![],
                value: Value::Avg {
                    count: 31,
                    total: 93,
                },
            },
            Entry {
                map: "at_l".into(),
                keys: vec![],
                value: Value::Slots(vec![0, 2, 0, 0, 0, 0, 29]),
            },
            Entry {
                map: "at_s".into(),
                keys: vec![KeyValue::Int(19458), KeyValue::Str("cat".into())],
                value: Value::Int(31),
            },
        ];
        assert_eq!(
            render_maps_json(&layout, &entries),
            "{\"type\": \"map\", \"data\": {\"@\": {\"cat\": 31}}}\n\
             {\"type\": \"stats\", \"data\": {\"@a\": 3}}\n\
             {\"type\": \"hist\", \"data\": {\"@l\": [{\"min\": 0, \"max\": 19999, \"count\": 2}, \
             {\"min\": 20000, \"max\": 39999, \"count\": 0}, {\"min\": 40000, \"max\": 59999, \"count\": 0}, \
             {\"min\": 60000, \"max\": 79999, \"count\": 0}, {\"min\": 80000, \"max\": 99999, \"count\": 0}, \
             {\"min\": 100000, \"count\": 29}]}}\n\
             {\"type\": \"map\", \"data\": {\"@s\": {\"19458,cat\": 31}}}\n"
        );
        let mut h = vec![0u64; 66];
        h[1] = 2;
        h[2 + 19] = 29;
        let hist = render_maps_json(
            &Layout {
                maps: vec![map("h", MapKind::Hist, vec![])],
                ..Layout::default()
            },
            &[Entry {
                map: "at_h".into(),
                keys: vec![],
                value: Value::Slots(h),
            }],
        );
        assert!(hist.starts_with("{\"type\": \"hist\", \"data\": {\"@h\": [{\"min\": 0, \"max\": 0, \"count\": 2}, {\"min\": 1, \"max\": 1, \"count\": 0}, {\"min\": 2, \"max\": 3, \"count\": 0}"), "{hist}");
        assert!(
            hist.ends_with("{\"min\": 524288, \"max\": 1048575, \"count\": 29}]}}\n"),
            "{hist}"
        );
        assert_eq!(json_string("a\"b\n"), "\"a\\\"b\\n\"");
    }

    /// bpftrace 0.17's text and JSON of `stats()` maps on this host.
    #[test]
    fn entries_whose_keys_print_alike_are_one() {
        // Two stack ids whose stacks share their first two frames (`kstack(2)`), and two CPUs'
        // minimums of one key.
        let stack = KeyKind::Stack {
            user: false,
            frames: 2,
        };
        let layout = Layout {
            maps: vec![
                map("", MapKind::Count, vec![stack]),
                map("m", MapKind::Min, vec![]),
            ],
            ..Layout::default()
        };
        let frames = KeyValue::Str("\n    vfs_read+4\n    ksys_read+90\n".into());
        let entry = |map: &str, keys: Vec<KeyValue>, v: i128| Entry {
            map: map.into(),
            keys,
            value: Value::Int(v),
        };
        let entries = [
            entry("at_", vec![frames.clone()], 3),
            entry("at_", vec![frames.clone()], 4),
            entry("at_m", vec![], 9),
            entry("at_m", vec![], -2),
        ];
        assert_eq!(
            render_maps(&layout, &entries),
            "@[\n    vfs_read+4\n    ksys_read+90\n]: 7\n@m: -2\n"
        );
    }

    #[test]
    fn stats_print_count_average_and_total() {
        let layout = Layout {
            maps: vec![
                map("k", MapKind::Stats, vec![KeyKind::Str { len: 16 }]),
                map("st", MapKind::Stats, vec![]),
            ],
            ..Layout::default()
        };
        let entries = vec![
            Entry {
                map: "at_k".into(),
                keys: vec![KeyValue::Str("cat".into())],
                value: Value::Avg {
                    count: 31,
                    total: 62,
                },
            },
            Entry {
                map: "at_st".into(),
                keys: vec![],
                value: Value::Avg {
                    count: 31,
                    total: 15_204_352,
                },
            },
        ];
        assert_eq!(
            render_maps(&layout, &entries),
            "@k[cat]: count 31, average 2, total 62\n\n@st: count 31, average 490462, total 15204352\n\n"
        );
        assert_eq!(
            render_maps_json(&layout, &entries),
            "{\"type\": \"stats\", \"data\": {\"@k\": {\"cat\": {\"count\": 31, \"average\": 2, \"total\": 62}}}}\n\
             {\"type\": \"stats\", \"data\": {\"@st\": {\"count\": 31, \"average\": 490462, \"total\": 15204352}}}\n"
        );
    }

    #[test]
    fn printf_formats_as_c_does() {
        let f = |fmt: &str, args: &[Arg]| format_printf(fmt, args);
        assert_eq!(
            f(
                "%-16s %6d %u%%\n",
                &[Arg::Str("cat".into()), Arg::Int(-42), Arg::Int(7)]
            ),
            "cat                 -42 7%\n"
        );
        assert_eq!(
            f(
                "%05d|%x|%X|%o|%c",
                &[
                    Arg::Int(42),
                    Arg::Int(255),
                    Arg::Int(255),
                    Arg::Int(8),
                    Arg::Int(65)
                ]
            ),
            "00042|ff|FF|10|A"
        );
        assert_eq!(
            f(
                "%.3s|%8.2s|%lu|%lld",
                &[
                    Arg::Str("abcdef".into()),
                    Arg::Str("xyz".into()),
                    Arg::Int(1),
                    Arg::Int(-1)
                ]
            ),
            "abc|      xy|1|-1"
        );
        assert_eq!(
            f("%u", &[Arg::Int(-1)]),
            "18446744073709551615",
            "the 64-bit pattern"
        );
        assert_eq!(f("%+d % d", &[Arg::Int(5), Arg::Int(5)]), "+5  5");
        assert_eq!(f("no args\n", &[]), "no args\n");
        assert_eq!(conversions("%d %q"), Err((3, "%q".into())));
        assert_eq!(conversions("%d %s %%").map(|c| c.len()), Ok(2));
    }

    #[test]
    fn bucket_labels_follow_bpftrace() {
        assert_eq!(hist_label(0), "(..., 0)");
        assert_eq!(hist_label(2 + 10), "[1K, 2K)");
        assert_eq!(hist_label(2 + 63), "[8E, 16E)");
        assert_eq!(lhist_label(0, 4, 0, 10, 5), "(..., 0)");
        assert_eq!(lhist_label(2, 4, 0, 10, 5), "[5, 10)");
        assert_eq!(lhist_label(3, 4, 0, 10, 5), "[10, ...)");
        // A last step cut short by max.
        assert_eq!(lhist_label(2, 4, 0, 7, 5), "[5, 7)");
        // Multiples of 1024 take a suffix, as bpftrace 0.17 printed lhist(x, 0, 262144, 65536).
        assert_eq!(lhist_label(3, 6, 0, 262_144, 65_536), "[128K, 192K)");
        assert_eq!(lhist_label(5, 6, 0, 262_144, 65_536), "[256K, ...)");
        assert_eq!(bound_label(20_000), "20000");
        assert_eq!(bound_label(3 << 20), "3M");
    }
}
