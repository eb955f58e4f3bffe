//! Stacks in map keys: a key with `ep_kstack_t` / `ep_ustack_t` members (ids into the object's
//! stack-trace map, from `bpf_get_stackid`) prints as one folded stack per row, as BCC's `profile -f`
//! does: `comm;outermost;...;innermost_[k] count`, user frames first, kernel frames marked `_[k]`.
//!
//! As text the board names the frames itself: kernel frames from /proc/kallsyms, user frames from the
//! process's `/proc/PID/maps` and the symbols of the mapped file (`file+0xOFF` when it has none). As
//! JSON the frames go out as raw addresses, preceded by what names them: the kallsyms entries that
//! hold the kernel frames and each process's executable mappings with their build ids, so the host
//! names user frames from the build's unstripped binaries (`ebpf-pack run`).

use std::io::{self, Read, Write};

use crate::btf::{Btf, Kind};
use crate::decode::{
    Decoder, KSTACK_TYPE, USTACK_TYPE, push_decimal, write_hex, write_json_string,
};
use crate::events::json_head;
use crate::ksyms::LazyKsyms;
use crate::symbols::{ElfSymbols, Mapping, elf_build_id, find_mapping, parse_proc_maps};
use crate::sys::RawMap;

/// `BPF_MAP_TYPE_STACK_TRACE`.
pub const STACK_TRACE_MAP: u32 = 7;
/// bpf_get_stackid's "the sample had no such stack" (-EFAULT): nothing to show, not a miss.
const NO_STACK: i32 = -14;
/// Rows printed per stack map (unless the probe's `top` says fewer): every stack a flame graph needs.
pub const MAX_STACK_ROWS: usize = 10_000;
/// Bytes of a mapped file read for its build id.
const BUILD_ID_HEAD: usize = 8192;
/// Largest mapped file read for its symbols on the board.
const MAX_SYMBOL_FILE: u64 = 512 << 20;

/// One stack-id member of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StackMember {
    name: String,
    off: usize,
    kernel: bool,
}

/// Where a key keeps its stack ids, its process id and its command name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackKey {
    members: Vec<StackMember>,
    /// `(offset, length)` of `comm`.
    comm: Option<(usize, usize)>,
    /// Offset of a 4-byte `pid` (or `tgid`).
    pid: Option<usize>,
}

/// Whether `ty` is the typedef `name`, through qualifiers.
fn is_typedef(btf: &Btf, mut ty: u32, name: &str) -> bool {
    for _ in 0..8 {
        let Some(t) = btf.ty(ty) else {
            return false;
        };
        match t.kind {
            Kind::Typedef if btf.string(t.name_off) == name => return true,
            Kind::Typedef | Kind::Const | Kind::Volatile | Kind::Restrict => ty = t.size_or_type,
            _ => return false,
        }
    }
    false
}

impl StackKey {
    /// The stack layout of key type `key`, when it is a struct with stack-id members.
    pub fn of(btf: &Btf, key: u32) -> Option<StackKey> {
        let t = btf.ty(btf.resolve(key))?;
        if t.kind != Kind::Struct {
            return None;
        }
        let mut out = StackKey {
            members: Vec::new(),
            comm: None,
            pid: None,
        };
        for m in btf.members(t) {
            let bits = if t.kind_flag {
                m.offset & 0xff_ffff
            } else {
                m.offset
            };
            if bits % 8 != 0 {
                continue;
            }
            let off = (bits / 8) as usize;
            let name = btf.string(m.name_off).to_owned();
            let size = btf.size_of(m.ty).unwrap_or(0);
            if is_typedef(btf, m.ty, KSTACK_TYPE) || is_typedef(btf, m.ty, USTACK_TYPE) {
                let kernel = is_typedef(btf, m.ty, KSTACK_TYPE);
                out.members.push(StackMember { name, off, kernel });
            } else if name == "comm" {
                out.comm = Some((off, size as usize));
            } else if (name == "pid" || name == "tgid") && size == 4 {
                out.pid = Some(off);
            }
        }
        (!out.members.is_empty()).then_some(out)
    }

    fn u32_at(key: &[u8], off: usize) -> Option<u32> {
        Some(u32::from_ne_bytes(key.get(off..off + 4)?.try_into().ok()?))
    }

    fn pid(&self, key: &[u8]) -> Option<u32> {
        self.pid.and_then(|off| Self::u32_at(key, off))
    }

    fn comm<'k>(&self, key: &'k [u8]) -> &'k [u8] {
        let Some(bytes) = self.comm.and_then(|(off, len)| key.get(off..off + len)) else {
            return b"[unknown]";
        };
        bytes.split(|&b| b == 0).next().unwrap_or_default()
    }
}

/// The object's stack-trace map, read by id.
pub struct StackMap<'fd> {
    raw: RawMap<'fd>,
}

impl<'fd> StackMap<'fd> {
    /// Reads stacks from `raw`, a `BPF_MAP_TYPE_STACK_TRACE` map.
    pub fn new(raw: RawMap<'fd>) -> StackMap<'fd> {
        StackMap { raw }
    }

    /// The addresses of stack `id`, innermost first; empty when it is not there.
    fn frames(&self, id: i32) -> Vec<u64> {
        let Ok(Some(value)) = self.raw.lookup(&id.to_ne_bytes()) else {
            return Vec::new();
        };
        value
            .chunks_exact(8)
            .map(|w| u64::from_ne_bytes(w.try_into().unwrap_or([0; 8])))
            .take_while(|&ip| ip != 0)
            .collect()
    }
}

/// One row's stacks: `(member, kernel, id, addresses)`.
type RowStacks<'a> = Vec<(&'a StackMember, i32, Vec<u64>)>;

/// Names user frames on the board: each process's mappings and each mapped file's symbols, read once.
/// (Plain vectors searched in order: a dump names a handful of processes and files, and each map
/// type instantiated costs the loader kilobytes.)
#[derive(Default)]
struct UserNames {
    maps: Vec<(u32, Vec<Mapping>)>,
    files: Vec<(String, Option<ElfSymbols>)>,
}

/// The board's own ELF class: a 64-bit board's processes are 64-bit (see uprobe.rs).
#[cfg(target_pointer_width = "64")]
type OwnHeader = object::elf::FileHeader64<object::Endianness>;
#[cfg(not(target_pointer_width = "64"))]
type OwnHeader = object::elf::FileHeader32<object::Endianness>;

/// The executable mappings of process `pid`, none when it is gone.
fn process_maps(pid: u32) -> Vec<Mapping> {
    std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .map(|t| parse_proc_maps(&t))
        .unwrap_or_default()
}

/// The GNU build id of a file process `pid` maps, from its first [`BUILD_ID_HEAD`] bytes.
fn build_id(pid: u32, path: &str) -> Option<Vec<u8>> {
    let mut head = Vec::with_capacity(BUILD_ID_HEAD);
    let file = std::fs::File::open(process_file(pid, path)).ok()?;
    file.take(BUILD_ID_HEAD as u64)
        .read_to_end(&mut head)
        .ok()?;
    elf_build_id(&head)
}

/// A file a process maps, through its root (another mount namespace's files are its own).
fn process_file(pid: u32, path: &str) -> String {
    format!("/proc/{pid}/root{path}")
}

impl UserNames {
    fn mappings(&mut self, pid: u32) -> &[Mapping] {
        let at = match self.maps.iter().position(|(p, _)| *p == pid) {
            Some(at) => at,
            None => {
                self.maps.push((pid, process_maps(pid)));
                self.maps.len() - 1
            }
        };
        self.maps.get(at).map_or(&[], |(_, maps)| maps.as_slice())
    }

    fn name(&mut self, pid: u32, ip: u64) -> String {
        let Some(m) = find_mapping(self.mappings(pid), ip).cloned() else {
            return "[unknown]".into();
        };
        let offset = m.file_offset(ip).unwrap_or(0);
        let at = match self.files.iter().position(|(p, _)| *p == m.path) {
            Some(at) => at,
            None => {
                let file = process_file(pid, &m.path);
                let small = std::fs::metadata(&file).is_ok_and(|md| md.len() <= MAX_SYMBOL_FILE);
                let syms = small
                    .then(|| std::fs::read(&file).ok())
                    .flatten()
                    .and_then(|data| ElfSymbols::parse::<OwnHeader>(&data).ok())
                    .filter(|s| !s.is_empty());
                self.files.push((m.path.clone(), syms));
                self.files.len() - 1
            }
        };
        let syms = self.files.get(at);
        match syms
            .and_then(|(_, s)| s.as_ref())
            .and_then(|s| s.at_file_offset(offset))
        {
            Some((name, _)) => name.to_owned(),
            None => {
                let base = m.path.rsplit('/').next().unwrap_or(&m.path);
                format!("{base}+{offset:#x}")
            }
        }
    }
}

/// Prints `rows` (key bytes, summed count; busiest first) of a map whose key holds stacks.
pub fn write_rows(
    out: &mut dyn Write,
    probe: &str,
    map: &str,
    layout: &StackKey,
    stacks: Option<&StackMap<'_>>,
    rows: &[(Vec<u8>, u64)],
    json: Option<(&Decoder<'_>, u32)>,
) -> io::Result<()> {
    let resolved: Vec<RowStacks<'_>> = rows
        .iter()
        .map(|(key, _)| {
            layout
                .members
                .iter()
                .map(|m| {
                    let id = StackKey::u32_at(key, m.off).map_or(NO_STACK, |v| v as i32);
                    let frames = match stacks {
                        Some(s) if id >= 0 => s.frames(id),
                        _ => Vec::new(),
                    };
                    (m, id, frames)
                })
                .collect()
        })
        .collect();
    match json {
        Some((decoder, key_type)) => {
            write_json(out, probe, map, layout, rows, &resolved, decoder, key_type)
        }
        None => write_folded(out, layout, rows, &resolved),
    }
}

/// Folded lines, named on the board.
fn write_folded(
    out: &mut dyn Write,
    layout: &StackKey,
    rows: &[(Vec<u8>, u64)],
    resolved: &[RowStacks<'_>],
) -> io::Result<()> {
    let ksyms = LazyKsyms::default();
    let mut users = UserNames::default();
    // Stacks that differ only in addresses within the same functions fold into one line.
    let mut folded: Vec<(String, u64)> = Vec::with_capacity(rows.len());
    for ((key, count), stacks) in rows.iter().zip(resolved) {
        let mut line = String::from_utf8_lossy(layout.comm(key)).replace(';', "_");
        let pid = layout.pid(key).unwrap_or(0);
        // User frames, then kernel frames: the order of a sample's call chain from its root.
        for kernel in [false, true] {
            for (m, id, frames) in stacks.iter().filter(|(m, ..)| m.kernel == kernel) {
                if frames.is_empty() && *id < 0 && *id != NO_STACK {
                    line.push_str(if m.kernel {
                        ";[Missed Kernel Stack]"
                    } else {
                        ";[Missed User Stack]"
                    });
                }
                for &ip in frames.iter().rev() {
                    line.push(';');
                    if kernel {
                        match ksyms.get().and_then(|k| k.lookup(ip)) {
                            Some((name, _)) => line.push_str(name),
                            None => line.push_str("[unknown]"),
                        }
                        line.push_str("_[k]");
                    } else {
                        line.push_str(&users.name(pid, ip));
                    }
                }
            }
        }
        folded.push((line, *count));
    }
    folded.sort_unstable();
    let mut lines: Vec<(String, u64)> = Vec::with_capacity(folded.len());
    for (stack, count) in folded {
        match lines.last_mut() {
            Some((last, n)) if *last == stack => *n += count,
            _ => lines.push((stack, count)),
        }
    }
    lines.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut text = String::new();
    for (stack, count) in lines {
        text.clear();
        text.push_str(&stack);
        text.push(' ');
        push_decimal(&mut text, count);
        text.push('\n');
        out.write_all(text.as_bytes())?;
    }
    Ok(())
}

/// `"0x…"` of an address.
fn push_addr(out: &mut String, addr: u64) {
    out.push_str("\"0x");
    write_hex(out, &addr.to_be_bytes());
    out.push('"');
}

/// The symbols record and the rows, frames as raw addresses.
#[allow(clippy::too_many_arguments)]
fn write_json(
    out: &mut dyn Write,
    probe: &str,
    map: &str,
    layout: &StackKey,
    rows: &[(Vec<u8>, u64)],
    resolved: &[RowStacks<'_>],
    decoder: &Decoder<'_>,
    key_type: u32,
) -> io::Result<()> {
    // What names the frames: the kallsyms entries holding the kernel ones, the mappings of the
    // processes the user ones belong to.
    let ksyms = LazyKsyms::default();
    let mut kernel: Vec<(u64, u64, String)> = Vec::new();
    let mut pids: Vec<u32> = Vec::new();
    for ((key, _), stacks) in rows.iter().zip(resolved) {
        for (m, _, frames) in stacks {
            if m.kernel {
                for &ip in frames {
                    if let Some((start, end, name)) = ksyms.get().and_then(|k| k.range_of(ip)) {
                        kernel.push((start, end, name.to_owned()));
                    }
                }
            } else if !frames.is_empty() {
                pids.extend(layout.pid(key));
            }
        }
    }
    kernel.sort_unstable();
    kernel.dedup();
    pids.sort_unstable();
    pids.dedup();
    let mut line = String::new();
    json_head(&mut line, probe, map);
    line.push_str(",\"symbols\":{\"kernel\":[");
    for (i, (start, end, name)) in kernel.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        line.push('[');
        push_addr(&mut line, *start);
        line.push(',');
        push_addr(&mut line, *end);
        line.push(',');
        write_json_string(&mut line, name.as_bytes());
        line.push(']');
    }
    line.push_str("],\"processes\":[");
    for (i, &pid) in pids.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        line.push_str("{\"pid\":");
        push_decimal(&mut line, u64::from(pid));
        line.push_str(",\"maps\":[");
        for (j, m) in process_maps(pid).iter().enumerate() {
            if j > 0 {
                line.push(',');
            }
            let id = build_id(pid, &m.path);
            line.push('[');
            push_addr(&mut line, m.start);
            line.push(',');
            push_addr(&mut line, m.end);
            line.push(',');
            push_addr(&mut line, m.offset);
            line.push(',');
            write_json_string(&mut line, m.path.as_bytes());
            line.push_str(",\"");
            if let Some(id) = id {
                write_hex(&mut line, &id);
            }
            line.push_str("\"]");
        }
        line.push_str("]}");
    }
    line.push_str("]}}\n");
    out.write_all(line.as_bytes())?;

    for ((key, count), stacks) in rows.iter().zip(resolved) {
        line.clear();
        json_head(&mut line, probe, map);
        line.push_str(",\"key\":");
        decoder.value_text(&mut line, key_type, key);
        line.push_str(",\"value\":");
        push_decimal(&mut line, *count);
        line.push_str(",\"stacks\":[");
        for (i, (m, id, frames)) in stacks.iter().enumerate() {
            if i > 0 {
                line.push(',');
            }
            line.push_str("{\"member\":");
            write_json_string(&mut line, m.name.as_bytes());
            line.push_str(",\"kind\":");
            line.push_str(if m.kernel { "\"kernel\"" } else { "\"user\"" });
            line.push_str(",\"id\":");
            if *id < 0 {
                line.push('-');
            }
            push_decimal(&mut line, u64::from(id.unsigned_abs()));
            line.push_str(",\"ips\":[");
            for (j, ip) in frames.iter().enumerate() {
                if j > 0 {
                    line.push(',');
                }
                push_addr(&mut line, *ip);
            }
            line.push_str("]}");
        }
        line.push_str("]}\n");
        out.write_all(line.as_bytes())?;
    }
    Ok(())
}
