//! One-liners in the CLI: a bpftrace program (`-e PROGRAM` or a `.bt` file) compiled for a target
//! into BPF C that the build takes as a loose probe — the one compile path — and the maps of the
//! run read back from ebpf-run's JSON and printed as bpftrace prints them.

use std::path::{Path, PathBuf};

use ebpf_pack_oneliner::Layout;
use ebpf_pack_oneliner::compile::{HostAction, Interval, KeyKind, MapKind, PRINTF_MAP};
use ebpf_pack_oneliner::render::{Arg, Entry, KeyValue, Value, format_printf};

use crate::arch::Arch;

/// A one-liner compiled for a target: where its C was written and how to print its maps.
#[derive(Debug, Clone)]
pub struct OneLiner {
    /// The probe's name in the bundle (the C file's stem).
    pub name: String,
    /// The written `NAME.bpf.c`.
    pub source: PathBuf,
    /// The maps as the host prints them.
    pub layout: Layout,
    /// The program's text and its name in messages (`-e` or the script's path).
    pub text: String,
    /// How the program is named in messages.
    pub shown: String,
}

impl OneLiner {
    /// A build failure (`message`) in which clang refused this one-liner's C, as the located error
    /// at the statement that C was written for; `None` when clang said nothing about it.
    pub fn located_clang_error(&self, message: &str) -> Option<String> {
        let c = std::fs::read_to_string(&self.source).ok()?;
        let file = format!("{}.bpf.c", self.name);
        let d = ebpf_pack_oneliner::compile::clang_diagnostic(&c, &file, message)?;
        let r = d.render(&self.shown, &self.text);
        let r = r.trim_end();
        Some(r.strip_prefix("error: ").unwrap_or(r).to_owned())
    }
}

/// Compiles `text` (named `shown` in messages: `-e` or the script's path) for `arch` and writes
/// its C as `dir/NAME.bpf.c`. A problem comes back as the rendered diagnostic, without its leading
/// `error: ` (the failure that reports it says that).
pub fn compile_to(
    text: &str,
    shown: &str,
    name: &str,
    arch: Arch,
    dir: &Path,
) -> Result<OneLiner, String> {
    let located = |d: ebpf_pack_oneliner::Diagnostic| {
        let r = d.render(shown, text);
        let r = r.trim_end();
        r.strip_prefix("error: ").unwrap_or(r).to_owned()
    };
    let program = ebpf_pack_oneliner::parse(text).map_err(located)?;
    let target = ebpf_pack_oneliner::Target {
        syscalls: crate::syscalls::syscall_names(arch)
            .map(str::to_owned)
            .collect(),
        syscall_rows: vec![arch.facts().clone_args.syscall_row().to_owned()],
    };
    let compiled = ebpf_pack_oneliner::compile(&program, &target).map_err(located)?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let source = dir.join(format!("{name}.bpf.c"));
    // Written whole or not at all: a temporary beside it, renamed over it.
    let tmp = dir.join(format!(".{name}.bpf.c.tmp"));
    std::fs::write(&tmp, &compiled.c)
        .and_then(|()| std::fs::rename(&tmp, &source))
        .map_err(|e| format!("{}: {e}", source.display()))?;
    Ok(OneLiner {
        name: name.to_owned(),
        source,
        layout: compiled.layout,
        text: text.to_owned(),
        shown: shown.to_owned(),
    })
}

/// The map entry of a one-liner's map in one JSON line of ebpf-run (`{"probe":..,"map":..,
/// "key":..,"value":..}`, and `"stacks"` when keys hold stacks, named by `stacks` from the
/// symbol record before them), or `None` for any other line. A symbol record of the probe is taken
/// into `stacks` (and is no entry).
pub fn map_entry(
    layout: &Layout,
    probe: &str,
    line: &str,
    stacks: &mut crate::stacks::Stacks,
) -> Option<Entry> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    if v.get("probe")?.as_str()? != probe {
        return None;
    }
    let map = v.get("map")?.as_str()?;
    if let Some(symbols) = v.get("symbols") {
        stacks.take_symbols(probe, map, symbols);
        return None;
    }
    let m = layout.maps.iter().find(|m| m.c_name == map)?;
    let key = v.get("key")?;
    let stack_of = |member: &str| {
        v.get("stacks")?
            .as_array()?
            .iter()
            .find(|s| s.get("member").and_then(|n| n.as_str()) == Some(member))
    };
    let keys = m
        .keys
        .iter()
        .enumerate()
        .map(|(i, kind)| {
            let member = format!("k{i}");
            let field = key.get(&member)?;
            Some(match kind {
                KeyKind::Str { .. } => KeyValue::Str(field.as_str()?.to_owned()),
                KeyKind::Int { .. } => KeyValue::Int(number(field)?),
                // The function's name as the board's kallsyms gave it (its address where hidden).
                KeyKind::Ksym { prefix } => {
                    KeyValue::Str(format!("{}{}", prefix.unwrap_or(""), field.as_str()?))
                }
                KeyKind::Stack { frames, .. } => {
                    KeyValue::Str(stacks.stack_text(probe, map, key, stack_of(&member)?, *frames))
                }
            })
        })
        .collect::<Option<Vec<_>>>()?;
    let value = v.get("value")?;
    let value = if let Some(slots) = value.get("slots").and_then(|s| s.as_array()) {
        Value::Slots(slots.iter().map(|n| n.as_u64().unwrap_or(0)).collect())
    } else if matches!(m.kind, MapKind::Min | MapKind::Max) {
        Value::Int(extreme(value, m.kind == MapKind::Max)?)
    } else if let (Some(count), Some(total)) = (value.get("count"), value.get("total")) {
        Value::Avg {
            count: count.as_u64()?,
            total: number(total)?,
        }
    } else {
        Value::Int(number(value)?)
    };
    Some(Entry {
        map: map.to_owned(),
        keys,
        value,
    })
}

/// A `min()` or `max()` value as ebpf-run prints a per-CPU `struct ep_min`/`ep_max`: each CPU's copy
/// that is not all zeros, `{"cpuN": {"cpu": {"value": V, "set": 1}}, ...}`; the extreme of the values
/// of the CPUs that set theirs (`None`: none did).
fn extreme(value: &serde_json::Value, max: bool) -> Option<i128> {
    value
        .as_object()?
        .values()
        .filter_map(|slot| {
            let copy = slot.get("cpu")?;
            (copy.get("set")?.as_u64()? != 0).then(|| number(copy.get("value")?))?
        })
        .reduce(|a, b| if (b > a) == max { b } else { a })
}

/// A one-liner's `printf()` (or `exit()`) record in one JSON line of ebpf-run, formatted, or `None`
/// for any other line.
pub fn printf_text(layout: &Layout, probe: &str, line: &str) -> Option<Printed> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    if v.get("probe")?.as_str()? != probe || v.get("map")?.as_str()? != PRINTF_MAP {
        return None;
    }
    let site = layout
        .printfs
        .get(usize::try_from(v.get("site")?.as_u64()?).ok()?)?;
    let (mut n, mut s) = (0, 0);
    let mut args = Vec::new();
    for kind in &site.args {
        args.push(match kind {
            KeyKind::Str { .. } => {
                s += 1;
                Arg::Str(v.get(format!("s{}", s - 1))?.as_str()?.to_owned())
            }
            KeyKind::Int { signed } => {
                n += 1;
                let bits = v.get(format!("n{}", n - 1))?.as_u64()?;
                // The record holds 64 bits; a signed argument is read back as such.
                Arg::Int(if *signed {
                    i128::from(bits as i64)
                } else {
                    i128::from(bits)
                })
            }
            // The compiler takes stacks as map keys only.
            KeyKind::Stack { .. } | KeyKind::Ksym { .. } => return None,
        });
    }
    Some(Printed {
        text: format_printf(&site.format, &args),
        exits: site.exits,
    })
}

/// A `printf()` record of a one-liner's probes, formatted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Printed {
    /// The line as written (empty for an `exit()`).
    pub text: String,
    /// The record is an `exit()`: the run ends.
    pub exits: bool,
}

/// What an interval dump prints under the program's `interval` probe: its maps by `print(@m)`,
/// its `printf()` lines; `exit()` sets `stop`, and the run ends with the usual exit dump.
pub fn interval_text(
    layout: &Layout,
    interval: &Interval,
    entries: &[Entry],
    stop: &std::sync::atomic::AtomicBool,
    json: bool,
) -> String {
    let mut out = String::new();
    for action in &interval.actions {
        match action {
            HostAction::Print(name) => {
                let one = Layout {
                    maps: layout
                        .maps
                        .iter()
                        .filter(|m| &m.name == name)
                        .cloned()
                        .collect(),
                    ..Layout::default()
                };
                out.push_str(&maps_text(&one, entries, json));
            }
            HostAction::Text(text) => out.push_str(&printed(text, json)),
            // The loader empties the map after the dump (the map carries EP_CLEAR).
            HostAction::Clear(_) => {}
            HostAction::Exit => stop.store(true, std::sync::atomic::Ordering::SeqCst),
        }
    }
    out
}

/// The maps as bpftrace prints them: its text layout, or its `-f json` lines.
pub fn maps_text(layout: &Layout, entries: &[Entry], json: bool) -> String {
    if json {
        ebpf_pack_oneliner::render::render_maps_json(layout, entries)
    } else {
        ebpf_pack_oneliner::render::render_maps(layout, entries)
    }
}

/// Text a `printf()` (or BEGIN, END) wrote, as is or as bpftrace's JSON `printf` line.
pub fn printed(text: &str, json: bool) -> String {
    if !json || text.is_empty() {
        return text.to_owned();
    }
    format!(
        "{{\"type\": \"printf\", \"data\": {}}}\n",
        ebpf_pack_oneliner::render::json_string(text)
    )
}

/// bpftrace's first JSON line: how many probes are attached.
pub fn attached_json(layout: &Layout) -> String {
    format!(
        "{{\"type\": \"attached_probes\", \"data\": {{\"probes\": {}}}}}\n",
        layout.probes
    )
}

/// Whether `line` is ebpf-run's `printed`/`lost` summary of a one-liner's printf ring buffer.
pub fn is_printf_summary(probe: &str, line: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(line).is_ok_and(|v| {
        v.get("probe").and_then(|p| p.as_str()) == Some(probe)
            && v.get("map").and_then(|m| m.as_str()) == Some(PRINTF_MAP)
            && v.get("printed").is_some()
    })
}

/// A JSON number as an integer of any sign.
fn number(v: &serde_json::Value) -> Option<i128> {
    v.as_i64()
        .map(i128::from)
        .or_else(|| v.as_u64().map(i128::from))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ebpf_pack_oneliner::compile::MapLayout;

    #[test]
    fn ebpf_run_json_lines_become_map_entries() {
        let layout = Layout {
            maps: vec![
                MapLayout {
                    name: "s".into(),
                    c_name: "at_s".into(),
                    kind: MapKind::Sum,
                    keys: vec![KeyKind::Int { signed: false }, KeyKind::Str { len: 16 }],
                },
                MapLayout {
                    name: "a".into(),
                    c_name: "at_a".into(),
                    kind: MapKind::Avg,
                    keys: vec![],
                },
                MapLayout {
                    name: "h".into(),
                    c_name: "at_h".into(),
                    kind: MapKind::Hist,
                    keys: vec![],
                },
            ],
            ..Layout::default()
        };
        let mut stacks = crate::stacks::Stacks::default();
        let line = r#"{"probe":"bt","map":"at_s","key":{"k0":7848,"k1":"cat"},"value":31}"#;
        assert_eq!(
            map_entry(&layout, "bt", line, &mut stacks),
            Some(Entry {
                map: "at_s".into(),
                keys: vec![KeyValue::Int(7848), KeyValue::Str("cat".into())],
                value: Value::Int(31),
            })
        );
        let avg = r#"{"probe":"bt","map":"at_a","key":0,"value":{"count":93,"total":45613056}}"#;
        assert_eq!(
            map_entry(&layout, "bt", avg, &mut stacks).map(|e| e.value),
            Some(Value::Avg {
                count: 93,
                total: 45_613_056
            })
        );
        let hist = r#"{"probe":"bt","map":"at_h","key":0,"value":{"slots":[0,6,0,87]}}"#;
        assert_eq!(
            map_entry(&layout, "bt", hist, &mut stacks).map(|e| e.value),
            Some(Value::Slots(vec![0, 6, 0, 87]))
        );
        assert_eq!(
            map_entry(&layout, "other", line, &mut stacks),
            None,
            "another probe's map"
        );
        assert_eq!(
            map_entry(&layout, "bt", r#"{"dump":"exit"}"#, &mut stacks),
            None
        );
    }

    #[test]
    fn extremes_functions_and_stacks_become_keys_and_values() {
        let map = |name: &str, kind, keys| MapLayout {
            name: name.into(),
            c_name: format!("at_{name}"),
            kind,
            keys,
        };
        let layout = Layout {
            maps: vec![
                map("m", MapKind::Min, vec![]),
                map(
                    "f",
                    MapKind::Count,
                    vec![KeyKind::Ksym {
                        prefix: Some("kprobe:"),
                    }],
                ),
                map(
                    "k",
                    MapKind::Count,
                    vec![KeyKind::Stack {
                        user: false,
                        frames: 2,
                    }],
                ),
            ],
            ..Layout::default()
        };
        let mut stacks = crate::stacks::Stacks::default();
        // Each CPU's copy that is not all zeros; a copy not set does not count.
        let min = r#"{"probe":"bt","map":"at_m","key":0,"value":{"cpu0":{"cpu":{"value":4,"set":1}},"cpu1":{"cpu":{"value":-3,"set":1}},"cpu3":{"cpu":{"value":-9,"set":0}}}}"#;
        assert_eq!(
            map_entry(&layout, "bt", min, &mut stacks).map(|e| e.value),
            Some(Value::Int(-3))
        );
        let mut with_max = layout.clone();
        with_max.maps[0].kind = MapKind::Max;
        assert_eq!(
            map_entry(&with_max, "bt", min, &mut stacks).map(|e| e.value),
            Some(Value::Int(4))
        );
        let func = r#"{"probe":"bt","map":"at_f","key":{"k0":"vfs_read"},"value":4}"#;
        assert_eq!(
            map_entry(&layout, "bt", func, &mut stacks).map(|e| e.keys),
            Some(vec![KeyValue::Str("kprobe:vfs_read".into())])
        );
        // The symbols record first (taken, no entry), then rows whose stacks it names, innermost
        // frame first, cut to the frames asked for; an empty stack is an empty key.
        let symbols = r#"{"probe":"bt","map":"at_k","symbols":{"kernel":[["0xffff0000","0xffff0100","vfs_read"],["0xffff0100","0xffff0200","ksys_read"]],"processes":[]}}"#;
        assert_eq!(map_entry(&layout, "bt", symbols, &mut stacks), None);
        let row = r#"{"probe":"bt","map":"at_k","key":{"k0":3},"value":5,"stacks":[{"member":"k0","kind":"kernel","id":3,"ips":["0xffff0010","0xffff0120","0xffff0130"]}]}"#;
        assert_eq!(
            map_entry(&layout, "bt", row, &mut stacks),
            Some(Entry {
                map: "at_k".into(),
                keys: vec![KeyValue::Str(
                    "\n    vfs_read+16\n    ksys_read+32\n".into()
                )],
                value: Value::Int(5),
            })
        );
        let empty = r#"{"probe":"bt","map":"at_k","key":{"k0":-14},"value":7,"stacks":[{"member":"k0","kind":"kernel","id":-14,"ips":[]}]}"#;
        assert_eq!(
            map_entry(&layout, "bt", empty, &mut stacks).map(|e| e.keys),
            Some(vec![KeyValue::Str(String::new())])
        );
    }
}
