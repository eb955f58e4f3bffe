//! Map contents at exit: every hash and array map the object declares, read with raw `bpf(2)` calls,
//! decoded through BTF, biggest integer values first, at most [`MAX_ROWS`] rows per map.

use std::cmp::Ordering;
use std::io::{self, Write};
use std::os::fd::AsFd;

use aya::Ebpf;
use aya::maps::Map;

use crate::btf::Btf;
use crate::decode::{Decoder, integer_type, read_uint, sign_extend, write_hex};
use crate::map_types;
use crate::probe::{MapDecl, ProbeObject};
use crate::sys::RawMap;

/// Rows printed per map.
pub const MAX_ROWS: usize = 100;
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

/// Prints every dumpable map of a probe.
pub fn dump_maps(
    probe: &ProbeObject,
    ebpf: &Ebpf,
    cpu_slots: Option<usize>,
    out: &mut dyn Write,
) -> io::Result<()> {
    for decl in &probe.maps {
        if !decl.map_type.is_some_and(map_types::is_dumped) {
            continue;
        }
        let data = match ebpf.map(&decl.name) {
            Some(
                Map::HashMap(d)
                | Map::LruHashMap(d)
                | Map::Array(d)
                | Map::PerCpuHashMap(d)
                | Map::PerCpuLruHashMap(d)
                | Map::PerCpuArray(d),
            ) => d,
            _ => continue,
        };
        writeln!(out, "{} map {}:", probe.name, decl.name)?;
        let raw = match RawMap::open(data.fd().as_fd(), cpu_slots.unwrap_or(0)) {
            Ok(r) if !map_types::is_per_cpu(r.map_type) || cpu_slots.is_some() => r,
            Ok(_) => {
                writeln!(out, "  (cannot read: {POSSIBLE_CPUS} is unreadable)")?;
                continue;
            }
            Err(e) => {
                writeln!(out, "  (cannot read: {e})")?;
                continue;
            }
        };
        dump_map(probe.btf.as_ref(), decl, &raw, out)?;
    }
    out.flush()
}

fn dump_map(
    btf: Option<&Btf>,
    decl: &MapDecl,
    raw: &RawMap<'_>,
    out: &mut dyn Write,
) -> io::Result<()> {
    let big = btf.is_some_and(Btf::is_big_endian);
    let value_int = btf.zip(decl.value).and_then(|(b, t)| integer_type(b, t));
    let key_int = btf.zip(decl.key).and_then(|(b, t)| integer_type(b, t));
    let per_cpu = map_types::is_per_cpu(raw.map_type);
    let stride = if per_cpu {
        raw.value_size.next_multiple_of(8)
    } else {
        raw.value_size
    };

    let mut rows = Vec::new();
    let mut key: Option<Vec<u8>> = None;
    let limit = (raw.max_entries as usize).min(MAX_SCAN);
    for _ in 0..limit {
        let next = match raw.next_key(key.as_deref()) {
            Ok(Some(k)) => k,
            Ok(None) => break,
            Err(e) => {
                writeln!(out, "  (iteration stopped: {e})")?;
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
        let number = value_int.and_then(|(size, signed)| {
            value
                .chunks(stride.max(1))
                .map(|cpu| int_at(cpu, size, signed, big))
                .sum::<Option<i128>>()
        });
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
        return writeln!(out, "  (no entries)");
    }
    let decoder = btf.map(Decoder::new);
    let mut line = String::new();
    for row in rows.iter().take(MAX_ROWS) {
        line.clear();
        line.push_str("  ");
        let mut text = String::new();
        match (&decoder, decl.key) {
            (Some(d), Some(t)) => d.record(&mut text, t, &row.key, "key"),
            _ => {
                text.push_str("key=0x");
                write_hex(&mut text, &row.key);
            }
        }
        line.push_str(&text);
        line.push_str("  ");
        text.clear();
        match (row.number, &decoder, decl.value) {
            (Some(n), _, _) if per_cpu => {
                text.push_str("value=");
                write_wide_int(&mut text, n);
            }
            (_, Some(d), Some(t)) if !per_cpu => d.record(&mut text, t, &row.value, "value"),
            (_, d, t) => per_cpu_values(
                &mut text,
                d.as_ref().zip(t),
                &row.value,
                stride,
                raw.value_size,
            ),
        }
        line.push_str(&text);
        line.push('\n');
        out.write_all(line.as_bytes())?;
    }
    if rows.len() > MAX_ROWS {
        writeln!(out, "  ... {} more entries omitted", rows.len() - MAX_ROWS)?;
    }
    Ok(())
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
/// token per CPU slot that is not all zero (or a single `value=0x…` for ordinary maps).
fn per_cpu_values(
    out: &mut String,
    typed: Option<(&Decoder<'_>, u32)>,
    value: &[u8],
    stride: usize,
    size: usize,
) {
    if stride == value.len() || stride == 0 {
        out.push_str("value=");
        match typed {
            Some((d, t)) => d.value_text(out, t, value),
            None => {
                out.push_str("0x");
                write_hex(out, value);
            }
        }
        return;
    }
    for (cpu, slot) in value.chunks(stride).enumerate() {
        let slot = &slot[..size.min(slot.len())];
        if slot.iter().all(|&b| b == 0) {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&format!("cpu{cpu}="));
        match typed {
            Some((d, t)) => d.value_text(out, t, slot),
            None => {
                out.push_str("0x");
                write_hex(out, slot);
            }
        }
    }
    if out.is_empty() {
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
        per_cpu_values(&mut out, None, &v, 8, 4);
        assert_eq!(out, "cpu0=0x01000000 cpu2=0x02000000");
    }
}
