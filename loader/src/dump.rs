//! Map contents at exit (and every `--interval`): every hash and array map the object declares, read
//! with raw `bpf(2)` calls, decoded through BTF, biggest integer values first, at most [`MAX_ROWS`] rows
//! per map, as text or JSON lines.
//!
//! Log2 histograms: a map whose value type is a struct with the single member `slots`, an array of
//! integers (`struct hist { __u32 slots[N]; }`, as in libbpf-tools), prints each entry as a bcc-style
//! histogram in text mode; slot `i` counts values in `2^i ..= 2^(i+1)-1` (slot 0 also counts 0).

use std::cmp::Ordering;
use std::io::{self, Write};
use std::os::fd::AsFd;

use aya::Ebpf;
use aya::maps::Map;

use crate::btf::CONVENTION_PREFIX;
use crate::btf::{Btf, Kind};
use crate::decode::{Decoder, integer_type, read_uint, sign_extend, write_hex, write_json_string};
use crate::events::json_head;
use crate::map_types;
use crate::probe::{MapDecl, ProbeObject};
use crate::stacks::{MAX_STACK_ROWS, StackKey, StackMap};
use crate::sys::RawMap;

/// Rows printed per map.
pub const MAX_ROWS: usize = 100;

/// The settable global that limits each dump of a probe's maps to its biggest entries (BCC's `-T TOP`
/// of syscount): 0 prints them all (up to [`MAX_ROWS`]).
pub const TOP_GLOBAL: &str = "top";
/// Most entries read from one map.
const MAX_SCAN: usize = 1 << 20;
/// The kernel's list of possible CPUs.
const POSSIBLE_CPUS: &str = "/sys/devices/system/cpu/possible";

/// Number of per-CPU value slots for a possible-CPU list such as `0-3` or `0,2-5`: the highest CPU
/// number plus one (never less than the kernel's count of possible CPUs).
pub fn possible_cpu_slots(list: &str) -> Option<usize> {
    let mut max: Option<usize> = None;
    for part in list.trim().split(',') {
        let last = match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (
                    a.trim().parse::<usize>().ok()?,
                    b.trim().parse::<usize>().ok()?,
                );
                if a > b {
                    return None;
                }
                b
            }
            None => part.trim().parse::<usize>().ok()?,
        };
        max = Some(max.map_or(last, |m| m.max(last)));
    }
    max?.checked_add(1)
}

/// Reads [`possible_cpu_slots`] from sysfs.
pub fn read_possible_cpu_slots() -> Option<usize> {
    possible_cpu_slots(&std::fs::read_to_string(POSSIBLE_CPUS).ok()?)
}

/// One map entry.
struct Row {
    key: Vec<u8>,
    value: Vec<u8>,
    /// Integer value (summed over CPUs), when the value type is an integer.
    number: Option<i128>,
    /// Integer key, for ordering.
    key_number: Option<i128>,
}

/// Reads an integer of type `(size, signed)` at the start of `bytes`.
fn int_at(bytes: &[u8], size: usize, signed: bool, big_endian: bool) -> Option<i128> {
    let v = read_uint(bytes.get(..size)?, big_endian)?;
    Some(if signed {
        i128::from(sign_extend(v, (size * 8) as u32))
    } else {
        i128::from(v)
    })
}

/// The `(offset, size)` of every member of struct `ty` when all are whole integers at byte offsets
/// (no bitfields, nested structs or arrays): such a per-CPU value is summed member by member.
fn integer_members(btf: &Btf, ty: u32) -> Option<Vec<(usize, usize)>> {
    let t = btf.ty(btf.resolve(ty))?;
    if t.kind != crate::btf::Kind::Struct {
        return None;
    }
    let mut out = Vec::new();
    for m in btf.members(t) {
        if (t.kind_flag && m.offset >> 24 != 0) || m.offset % 8 != 0 {
            return None;
        }
        let (size, _) = integer_type(btf, m.ty)?;
        out.push(((m.offset / 8) as usize, size));
    }
    (!out.is_empty()).then_some(out)
}

/// One CPU's worth of bytes where each integer member is the wrapping sum of that member over the CPUs'
/// copies in `value` (`stride` bytes apart).
fn sum_members(
    value: &[u8],
    stride: usize,
    size: usize,
    members: &[(usize, usize)],
    big: bool,
) -> Vec<u8> {
    let mut out = value
        .get(..size)
        .map_or_else(|| vec![0; size], <[u8]>::to_vec);
    for &(off, len) in members {
        let total = value
            .chunks(stride.max(1))
            .filter_map(|cpu| read_uint(cpu.get(off..off + len)?, big))
            .fold(0u64, u64::wrapping_add);
        let mut bytes: Vec<u8> = total.to_le_bytes().iter().take(len).copied().collect();
        if big {
            bytes.reverse();
        }
        if let Some(dst) = out
            .get_mut(off..off + len)
            .filter(|d| d.len() == bytes.len())
        {
            dst.copy_from_slice(&bytes);
        }
    }
    out
}

/// The data of map `name` when it is of a kind ebpf-run reads entry by entry (hash and array maps,
/// per-CPU or not).
fn dumpable<'e>(ebpf: &'e Ebpf, name: &str) -> Option<&'e aya::maps::MapData> {
    match ebpf.map(name)? {
        Map::HashMap(d)
        | Map::LruHashMap(d)
        | Map::Array(d)
        | Map::PerCpuHashMap(d)
        | Map::PerCpuLruHashMap(d)
        | Map::PerCpuArray(d) => Some(d),
        _ => None,
    }
}

/// Empties the maps of `probe` tagged `EP_CLEAR` after an interval's dump, so the next dump counts
/// the next interval alone. A map that cannot be cleared keeps counting: said once per call on stderr.
pub fn clear_interval_maps(probe: &ProbeObject, ebpf: &Ebpf, cpu_slots: Option<usize>) {
    let Some(btf) = &probe.btf else { return };
    for decl in &probe.maps {
        if !btf.var_has_tag(&decl.name, crate::btf::CLEAR_TAG) {
            continue;
        }
        let Some(d) = dumpable(ebpf, &decl.name) else {
            continue;
        };
        let cleared = RawMap::open(d.fd().as_fd(), cpu_slots.unwrap_or(0)).and_then(|m| m.clear());
        if let Err(e) = cleared {
            eprintln!(
                "ebpf-run: warning: {} map {}: cannot clear it for the next interval ({e}); counts go on",
                probe.name, decl.name
            );
        }
    }
}

/// Prints every dumpable map of a probe.
pub fn dump_maps(
    probe: &ProbeObject,
    ebpf: &Ebpf,
    cpu_slots: Option<usize>,
    json: bool,
    probe_names: &[String],
    out: &mut dyn Write,
) -> io::Result<()> {
    // Read from the object's data each round: cheap next to the map reads, and no state to carry.
    let top = crate::globals::read_uint(probe, TOP_GLOBAL)
        .filter(|&n| n > 0)
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    // The object's stack-trace map, for keys holding stack ids.
    let stacks = probe
        .maps
        .iter()
        .filter(|d| d.map_type == Some(crate::stacks::STACK_TRACE_MAP))
        .find_map(|d| match ebpf.map(&d.name)? {
            Map::StackTraceMap(data) => RawMap::open(data.fd().as_fd(), 0).ok(),
            _ => None,
        })
        .map(StackMap::new);
    for decl in &probe.maps {
        // The conventions' own maps (lost counters, perf fallback slots) are not the probe's data.
        if !decl.map_type.is_some_and(map_types::is_dumped)
            || decl.name.starts_with(CONVENTION_PREFIX)
            || probe
                .btf
                .as_ref()
                .is_some_and(|b| b.var_has_tag(&decl.name, crate::btf::SCRATCH_TAG))
        {
            continue;
        }
        let Some(data) = dumpable(ebpf, &decl.name) else {
            continue;
        };
        let map = MapOut {
            probe: &probe.name,
            decl,
            json,
        };
        if !json {
            writeln!(out, "{} map {}:", probe.name, decl.name)?;
        }
        let raw = match RawMap::open(data.fd().as_fd(), cpu_slots.unwrap_or(0)) {
            Ok(r) if !map_types::is_per_cpu(r.map_type) || cpu_slots.is_some() => r,
            Ok(_) => {
                map.problem(out, &format!("cannot read: {POSSIBLE_CPUS} is unreadable"))?;
                continue;
            }
            Err(e) => {
                map.problem(out, &format!("cannot read: {e}"))?;
                continue;
            }
        };
        dump_map(
            probe.btf.as_ref(),
            &map,
            &raw,
            stacks.as_ref(),
            top,
            probe_names,
            out,
        )?;
    }
    out.flush()
}

/// One map being printed: whose it is and in which format.
struct MapOut<'a> {
    probe: &'a str,
    decl: &'a MapDecl,
    json: bool,
}

impl MapOut<'_> {
    /// Reports a map that cannot be (fully) read: `  (why)` as text, `{..., "error": why}` as JSON.
    fn problem(&self, out: &mut dyn Write, why: &str) -> io::Result<()> {
        let mut line = String::new();
        if self.json {
            json_head(&mut line, self.probe, &self.decl.name);
            line.push_str(",\"error\":");
            write_json_string(&mut line, why.as_bytes());
            line.push_str("}\n");
        } else {
            line.push_str("  (");
            line.push_str(why);
            line.push_str(")\n");
        }
        out.write_all(line.as_bytes())
    }
}

/// The slot layout `(element size, slot count)` of a log2-histogram value type (see the module docs).
pub fn hist_layout(btf: &Btf, value: u32) -> Option<(usize, usize)> {
    let t = btf.ty(btf.resolve(value))?;
    let [m] = btf.members(t) else { return None };
    if t.kind != Kind::Struct || btf.string(m.name_off) != "slots" || m.offset != 0 {
        return None;
    }
    let Kind::Array { elem, nelems } = btf.ty(btf.resolve(m.ty))?.kind else {
        return None;
    };
    let (size, _) = integer_type(btf, elem)?;
    Some((size, nelems as usize))
}

/// Sums each slot over the per-CPU copies (`stride` bytes apart) of a histogram value.
fn hist_counts(value: &[u8], stride: usize, (size, n): (usize, usize), big: bool) -> Vec<u64> {
    let mut counts = vec![0u64; n];
    for cpu in value.chunks(stride.max(1)) {
        for (i, c) in counts.iter_mut().enumerate() {
            let v = cpu
                .get(i * size..(i + 1) * size)
                .and_then(|b| read_uint(b, big));
            *c = c.saturating_add(v.unwrap_or(0));
        }
    }
    counts
}

/// Appends a bcc-style log2 histogram (libbpf-tools' `print_log2_hist`) of `counts`, slot 0 to the
/// highest non-empty slot, under a header naming `unit` (`usecs`, or `value`).
pub fn write_hist(out: &mut String, counts: &[u64], unit: &str) {
    const STARS: u64 = 40;
    let Some(last) = counts.iter().rposition(|&c| c != 0) else {
        return out.push_str("    (empty)\n");
    };
    let max = counts.iter().copied().max().unwrap_or(1).max(1);
    let (pad, w, hw) = if last <= 32 {
        (5, 10, 19)
    } else {
        (15, 20, 29)
    };
    out.push_str(&format!(
        "{:pad$}{:<hw$} : count    distribution\n",
        "", unit
    ));
    for (i, &c) in counts.iter().enumerate().take(last + 1) {
        let high = if i >= 63 {
            u64::MAX
        } else {
            (1u64 << (i + 1)) - 1
        };
        let low = if i == 0 { 0 } else { 1u64 << i };
        let stars = (u128::from(c) * u128::from(STARS) / u128::from(max)) as usize;
        out.push_str(&format!(
            "{low:>w$} -> {high:<w$} : {c:<8} |{:<40}|\n",
            "*".repeat(stars)
        ));
    }
}

fn dump_map(
    btf: Option<&Btf>,
    map: &MapOut<'_>,
    raw: &RawMap<'_>,
    stacks: Option<&StackMap<'_>>,
    top: Option<usize>,
    probe_names: &[String],
    out: &mut dyn Write,
) -> io::Result<()> {
    let decl = map.decl;
    let big = btf.is_some_and(Btf::is_big_endian);
    let value_int = btf.zip(decl.value).and_then(|(b, t)| integer_type(b, t));
    let key_int = btf.zip(decl.key).and_then(|(b, t)| integer_type(b, t));
    let per_cpu = map_types::is_per_cpu(raw.map_type);
    let stride = if per_cpu {
        raw.value_size.next_multiple_of(8)
    } else {
        raw.value_size
    };

    // Histograms print as such in text; in JSON they stay `{"slots":[...]}`. Either way they sort by
    // their total count.
    let layout = btf.zip(decl.value).and_then(|(b, t)| hist_layout(b, t));
    let hist = layout.filter(|_| !map.json);
    let summable_members = btf
        .zip(decl.value)
        .filter(|_| per_cpu && layout.is_none() && value_int.is_none())
        .and_then(|(b, t)| integer_members(b, t));
    let summable = summable_members.as_deref();
    let mut rows = Vec::new();
    let mut key: Option<Vec<u8>> = None;
    let limit = (raw.max_entries as usize).min(MAX_SCAN);
    for _ in 0..limit {
        let next = match raw.next_key(key.as_deref()) {
            Ok(Some(k)) => k,
            Ok(None) => break,
            Err(e) => {
                map.problem(out, &format!("iteration stopped: {e}"))?;
                break;
            }
        };
        // A key deleted since get_next_key is simply skipped; all-zero array slots are noise.
        let value = match raw.lookup(&next) {
            Ok(Some(v)) if !(map_types::is_array(raw.map_type) && v.iter().all(|&b| b == 0)) => v,
            _ => {
                key = Some(next);
                continue;
            }
        };
        // A per-CPU struct of integers prints as one struct, each member summed over the CPUs.
        let value = match summable {
            Some(members) => sum_members(&value, stride, raw.value_size, members, big),
            None => value,
        };
        // Histograms sort by their total count, busiest first, like integer values; summed structs by
        // their first member.
        let number = match layout {
            Some(layout) => Some(
                hist_counts(&value, stride, layout, big)
                    .iter()
                    .map(|&c| i128::from(c))
                    .sum(),
            ),
            None if summable.is_some() => summable
                .and_then(|m| m.first())
                .and_then(|&(off, size)| int_at(value.get(off..)?, size, false, big)),
            None => value_int.and_then(|(size, signed)| {
                value
                    .chunks(stride.max(1))
                    .map(|cpu| int_at(cpu, size, signed, big))
                    .sum::<Option<i128>>()
            }),
        };
        let key_number = key_int.and_then(|(size, signed)| int_at(&next, size, signed, big));
        rows.push(Row {
            key: next.clone(),
            value,
            number,
            key_number,
        });
        key = Some(next);
    }

    rows.sort_unstable_by(|a, b| match (a.number, b.number) {
        (Some(x), Some(y)) => y.cmp(&x).then_with(|| key_order(a, b)),
        _ => key_order(a, b),
    });
    if rows.is_empty() {
        return if map.json {
            Ok(())
        } else {
            writeln!(out, "  (no entries)")
        };
    }
    // Keys holding stacks print as folded stacks (stacks.rs).
    if let Some((b, (layout, key_type))) =
        btf.zip(decl.key.and_then(|k| Some((StackKey::of(btf?, k)?, k))))
    {
        let shown: Vec<(Vec<u8>, u64)> = rows
            .into_iter()
            .take(top.map_or(MAX_STACK_ROWS, |t| t.min(MAX_STACK_ROWS)))
            .map(|r| (r.key, r.number.map_or(0, |n| u64::try_from(n).unwrap_or(0))))
            .collect();
        let decoder = Decoder::json(b);
        return crate::stacks::write_rows(
            out,
            map.probe,
            &decl.name,
            &layout,
            stacks,
            &shown,
            map.json.then_some((&decoder, key_type)),
        );
    }
    let ksym = crate::ksyms::lazy();
    let decoder = btf.map(|b| {
        if map.json {
            Decoder::json(b)
        } else {
            Decoder::new(b)
        }
        .with_ksym(&ksym)
        .with_probe_names(probe_names)
    });
    let mut line = String::new();
    let shown = top.map_or(MAX_ROWS, |t| t.min(MAX_ROWS));
    for row in rows.iter().take(shown) {
        line.clear();
        if map.json {
            json_head(&mut line, map.probe, &decl.name);
            line.push_str(",\"key\":");
            match (&decoder, decl.key) {
                (Some(d), Some(t)) => d.value_text(&mut line, t, &row.key),
                _ => json_hex(&mut line, &row.key),
            }
            line.push_str(",\"value\":");
        } else {
            line.push_str("  ");
            let mut key = String::new();
            match (&decoder, decl.key) {
                (Some(d), Some(t)) => d.record(&mut key, t, &row.key, "key"),
                _ => {
                    key.push_str("key=0x");
                    write_hex(&mut key, &row.key);
                }
            }
            line.push_str(&key);
            if let Some(layout) = hist {
                line.push('\n');
                write_hist(
                    &mut line,
                    &hist_counts(&row.value, stride, layout, big),
                    crate::decode::hist_unit_label(&decl.name),
                );
                out.write_all(line.as_bytes())?;
                continue;
            }
            line.push_str("  ");
        }
        let mut text = String::new();
        match (row.number, &decoder, decl.value) {
            // A histogram in JSON: its slots, summed over the CPUs for a per-CPU map.
            _ if layout.is_some() && map.json && per_cpu => {
                let counts = layout
                    .map(|l| hist_counts(&row.value, stride, l, big))
                    .unwrap_or_default();
                text.push_str("{\"slots\":[");
                for (i, c) in counts.iter().enumerate() {
                    if i > 0 {
                        text.push(',');
                    }
                    crate::decode::push_decimal(&mut text, *c);
                }
                text.push_str("]}");
            }
            (Some(n), _, _) if per_cpu && summable.is_none() => {
                if !map.json {
                    text.push_str("value=");
                }
                write_wide_int(&mut text, n);
            }
            (_, Some(d), Some(t)) if (!per_cpu || summable.is_some()) && map.json => {
                d.value_text(&mut text, t, &row.value)
            }
            (_, Some(d), Some(t)) if !per_cpu || summable.is_some() => {
                d.record(&mut text, t, &row.value, "value")
            }
            (_, d, t) => per_cpu_values(
                &mut text,
                d.as_ref().zip(t),
                &row.value,
                stride,
                raw.value_size,
                map.json,
            ),
        }
        line.push_str(&text);
        if map.json {
            line.push('}');
        }
        line.push('\n');
        out.write_all(line.as_bytes())?;
    }
    if top.is_none() && rows.len() > MAX_ROWS {
        let more = format!("{} more entries omitted", rows.len() - MAX_ROWS);
        if map.json {
            eprintln!("ebpf-run: note: {} map {}: {more}", map.probe, decl.name);
        } else {
            writeln!(out, "  ... {more}")?;
        }
    }
    Ok(())
}

/// Appends bytes as a JSON string `"0x…"`.
fn json_hex(out: &mut String, bytes: &[u8]) {
    out.push_str("\"0x");
    write_hex(out, bytes);
    out.push('"');
}

/// Appends a summed integer in decimal without pulling in 128-bit formatting.
fn write_wide_int(out: &mut String, n: i128) {
    if let Ok(v) = i64::try_from(n) {
        out.push_str(&v.to_string());
    } else if let Ok(v) = u64::try_from(n) {
        out.push_str(&v.to_string());
    } else {
        out.push_str(if n < 0 { "-inf" } else { "inf" });
    }
}

/// Orders rows by integer key when the key is an integer, else by key bytes.
fn key_order(a: &Row, b: &Row) -> Ordering {
    match (a.key_number, b.key_number) {
        (Some(x), Some(y)) => x.cmp(&y),
        _ => a.key.cmp(&b.key),
    }
}

/// Renders a value without a usable type, or a per-CPU value that is no plain integer: one `cpuN=…`
/// token per CPU slot that is not all zero (or a single `value=0x…` for ordinary maps). As JSON: the
/// value alone, or `{"cpuN":…}` for per-CPU maps.
fn per_cpu_values(
    out: &mut String,
    typed: Option<(&Decoder<'_>, u32)>,
    value: &[u8],
    stride: usize,
    size: usize,
    json: bool,
) {
    let one = |out: &mut String, bytes: &[u8]| match typed {
        Some((d, t)) => d.value_text(out, t, bytes),
        None if json => json_hex(out, bytes),
        None => {
            out.push_str("0x");
            write_hex(out, bytes);
        }
    };
    if stride == value.len() || stride == 0 {
        if !json {
            out.push_str("value=");
        }
        return one(out, value);
    }
    if json {
        out.push('{');
    }
    for (cpu, slot) in value.chunks(stride).enumerate() {
        let slot = slot.get(..size).unwrap_or(slot);
        if slot.iter().all(|&b| b == 0) {
            continue;
        }
        if out.len() > usize::from(json) {
            out.push(if json { ',' } else { ' ' });
        }
        out.push_str(&if json {
            format!("\"cpu{cpu}\":")
        } else {
            format!("cpu{cpu}=")
        });
        one(out, slot);
    }
    if json {
        out.push('}');
    } else if out.is_empty() {
        out.push_str("value=0");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn possible_cpu_lists_give_slot_counts() {
        assert_eq!(possible_cpu_slots("0-3\n"), Some(4));
        assert_eq!(possible_cpu_slots("0"), Some(1));
        assert_eq!(possible_cpu_slots("0,2-5"), Some(6));
        assert_eq!(possible_cpu_slots("0-1,7"), Some(8));
        for bad in ["", "x", "3-1", "0-", "-2", "0,,1"] {
            assert_eq!(possible_cpu_slots(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn per_cpu_rendering_skips_zero_slots() {
        let mut out = String::new();
        let v = [
            1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0,
        ];
        per_cpu_values(&mut out, None, &v, 8, 4, false);
        assert_eq!(out, "cpu0=0x01000000 cpu2=0x02000000");
        out.clear();
        per_cpu_values(&mut out, None, &v, 8, 4, true);
        assert_eq!(out, "{\"cpu0\":\"0x01000000\",\"cpu2\":\"0x02000000\"}");
    }

    #[test]
    fn histograms_print_like_bcc() {
        let mut out = String::new();
        write_hist(&mut out, &[1, 0, 4, 2, 0, 0], "value");
        assert_eq!(
            out,
            "     value               : count    distribution\n\
             \x20        0 -> 1          : 1        |**********                              |\n\
             \x20        2 -> 3          : 0        |                                        |\n\
             \x20        4 -> 7          : 4        |****************************************|\n\
             \x20        8 -> 15         : 2        |********************                    |\n"
        );
        out.clear();
        write_hist(&mut out, &[0, 0], "value");
        assert_eq!(out, "    (empty)\n");
        assert_eq!(
            hist_counts(&[1, 0, 2, 0, 3, 0, 4, 0], 4, (2, 2), false),
            [4, 6]
        );
    }
}
