//! Stacks sampled on a board, named here: ebpf-run's JSON carries each stack as raw addresses,
//! preceded by what the board knows about them — the kallsyms entries holding the kernel frames and
//! each sampled process's executable mappings with their GNU build ids (loader/src/stacks.rs). This
//! module names kernel frames from that kallsyms slice and user frames from the build's unstripped
//! binaries: the host file that is the board's file (same build id) is found in the `--symbols`
//! folders, and its symbol table names the frame. The result is folded stacks, BCC's `profile -f`
//! format, kernel frames marked `_[k]`, ready for [`crate::flamegraph`].

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use ebpf_pack_object::symbols::{ElfSymbols, Mapping, SymbolTable, elf_build_id};
use serde_json::Value;

/// What the board said names a dump's frames.
#[derive(Debug, Default)]
struct BoardSymbols {
    kernel: SymbolTable,
    /// Mappings and their build ids (hex), per process id.
    processes: HashMap<u64, Vec<(Mapping, String)>>,
}

/// A host file standing in for a board file, with its symbols.
#[derive(Debug)]
struct HostFile {
    symbols: ElfSymbols,
}

/// Names stack frames and collects folded stacks over a run.
#[derive(Debug, Default)]
pub struct Stacks {
    /// Folders searched for unstripped binaries and debug files.
    dirs: Vec<PathBuf>,
    /// The latest symbols record per (probe, map).
    board: HashMap<(String, String), BoardSymbols>,
    /// Host files by board path and build id; `None`: none found.
    files: HashMap<(String, String), Option<HostFile>>,
    /// Host files passed over because their build id differs (said once each).
    mismatched: Vec<PathBuf>,
    /// Every folded stack of the run and its samples.
    totals: BTreeMap<String, u64>,
}

/// What names a user frame.
enum UserFrame {
    /// A symbol and the offset into it.
    Symbol(String, u64),
    /// The mapped file's name and the offset into the file.
    File(String, u64),
}

/// Parses a `"0x…"` address.
fn addr(v: &Value) -> Option<u64> {
    u64::from_str_radix(v.as_str()?.strip_prefix("0x")?, 16).ok()
}

impl Stacks {
    /// Names user frames from files found in `dirs` (see [`Stacks::candidates`]).
    pub fn new(dirs: Vec<PathBuf>) -> Stacks {
        Stacks {
            dirs,
            ..Stacks::default()
        }
    }

    /// Takes a `{"symbols": …}` record of `probe`'s `map`.
    pub fn take_symbols(&mut self, probe: &str, map: &str, symbols: &Value) {
        let kernel = symbols["kernel"]
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .filter_map(|e| Some((addr(&e[0])?, addr(&e[1])?, e[2].as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        let mut processes = HashMap::new();
        for p in symbols["processes"].as_array().into_iter().flatten() {
            let Some(pid) = p["pid"].as_u64() else {
                continue;
            };
            let maps = p["maps"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|m| {
                    let mapping = Mapping {
                        start: addr(&m[0])?,
                        end: addr(&m[1])?,
                        offset: addr(&m[2])?,
                        path: m[3].as_str()?.to_owned(),
                    };
                    Some((mapping, m[4].as_str().unwrap_or("").to_owned()))
                })
                .collect();
            processes.insert(pid, maps);
        }
        self.board.insert(
            (probe.to_owned(), map.to_owned()),
            BoardSymbols {
                kernel: SymbolTable::from_ranges(kernel),
                processes,
            },
        );
    }

    /// The folded stack of one row (`key` with its `pid` and `comm`, `stacks` as ebpf-run wrote
    /// them), added to the run's totals with `count` samples.
    pub fn fold_row(
        &mut self,
        probe: &str,
        map: &str,
        key: &Value,
        count: u64,
        stacks: &Value,
    ) -> String {
        let comm = key["comm"]
            .as_str()
            .unwrap_or("[unknown]")
            .replace(';', "_");
        let pid = key["pid"]
            .as_u64()
            .or_else(|| key["tgid"].as_u64())
            .unwrap_or(0);
        let mut line = comm;
        let list = stacks.as_array().cloned().unwrap_or_default();
        for kernel in [false, true] {
            for s in list.iter().filter(|s| (s["kind"] == "kernel") == kernel) {
                let ips: Vec<u64> = s["ips"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(addr)
                    .collect();
                let id = s["id"].as_i64().unwrap_or(-14);
                if ips.is_empty() && id < 0 && id != -14 {
                    line.push_str(if kernel {
                        ";[Missed Kernel Stack]"
                    } else {
                        ";[Missed User Stack]"
                    });
                }
                for &ip in ips.iter().rev() {
                    line.push(';');
                    let name = if kernel {
                        self.kernel_name(probe, map, ip)
                    } else {
                        self.user_name(probe, map, pid, ip)
                    };
                    line.push_str(&name);
                }
            }
        }
        *self.totals.entry(line.clone()).or_default() += count;
        line
    }

    /// One stack of a row as bpftrace prints a `kstack` or `ustack` map key: a newline, then each
    /// frame innermost first as `    SYMBOL+OFFSET` (decimal) and a newline, at most `limit` frames
    /// (`stack` as ebpf-run wrote it, the process id from `key`); a stack with no frames is empty.
    pub fn stack_text(
        &mut self,
        probe: &str,
        map: &str,
        key: &Value,
        stack: &Value,
        limit: usize,
    ) -> String {
        let pid = key["pid"].as_u64().unwrap_or(0);
        let kernel = stack["kind"] == "kernel";
        let ips: Vec<u64> = stack["ips"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(addr)
            .take(limit)
            .collect();
        if ips.is_empty() {
            return String::new();
        }
        let mut text = String::from("\n");
        for ip in ips {
            let frame = if kernel {
                self.kernel_symbol(probe, map, ip)
                    .map_or_else(|| format!("0x{ip:x}"), |(n, off)| format!("{n}+{off}"))
            } else {
                match self.user_symbol(probe, map, pid, ip) {
                    Some(UserFrame::Symbol(n, off)) => format!("{n}+{off}"),
                    Some(UserFrame::File(base, off)) => format!("{base}+{off:#x}"),
                    None => format!("0x{ip:x}"),
                }
            };
            text.push_str("    ");
            text.push_str(&frame);
            text.push('\n');
        }
        text
    }

    fn kernel_name(&self, probe: &str, map: &str, ip: u64) -> String {
        let name = self.kernel_symbol(probe, map, ip);
        format!("{}_[k]", name.map_or("[unknown]", |(n, _)| n))
    }

    /// The kallsyms entry holding `ip` and the offset into it.
    fn kernel_symbol(&self, probe: &str, map: &str, ip: u64) -> Option<(&str, u64)> {
        self.board
            .get(&(probe.to_owned(), map.to_owned()))
            .and_then(|b| b.kernel.lookup(ip))
    }

    fn user_name(&mut self, probe: &str, map: &str, pid: u64, ip: u64) -> String {
        match self.user_symbol(probe, map, pid, ip) {
            Some(UserFrame::Symbol(name, _)) => name,
            Some(UserFrame::File(base, offset)) => format!("{base}+{offset:#x}"),
            None => "[unknown]".into(),
        }
    }

    /// What names user address `ip` of process `pid`: a symbol of the mapped file found here, or the
    /// file and the offset into it; `None` when no mapping the board sent holds it.
    fn user_symbol(&mut self, probe: &str, map: &str, pid: u64, ip: u64) -> Option<UserFrame> {
        let (mapping, build_id) = self
            .board
            .get(&(probe.to_owned(), map.to_owned()))
            .and_then(|b| b.processes.get(&pid))
            .and_then(|maps| maps.iter().find(|(m, _)| m.file_offset(ip).is_some()))
            .cloned()?;
        let offset = mapping.file_offset(ip).unwrap_or(0);
        let key = (mapping.path.clone(), build_id.clone());
        if !self.files.contains_key(&key) {
            let found = self.find_file(&mapping.path, &build_id);
            self.files.insert(key.clone(), found);
        }
        let symbol = self
            .files
            .get(&key)
            .and_then(Option::as_ref)
            .and_then(|f| f.symbols.at_file_offset(offset));
        Some(match symbol {
            Some((name, into)) => UserFrame::Symbol(name.to_owned(), into),
            None => {
                let base = mapping.path.rsplit('/').next().unwrap_or(&mapping.path);
                UserFrame::File(base.to_owned(), offset)
            }
        })
    }

    /// Where a board file `path` with build id `id` (hex, may be empty) may be on this machine,
    /// in each `--symbols` folder DIR: `DIR/.build-id/xx/rest.debug` and
    /// `DIR/usr/lib/debug/.build-id/…` (debug files by build id), `DIR/PATH` (a sysroot or rootfs),
    /// `DIR/usr/lib/debug/PATH.debug`, `DIR/PARENT/.debug/NAME` (Yocto's -dbg packages), `DIR/NAME`
    /// (a build's output folder); then `PATH` itself, which only counts with the same build id.
    pub fn candidates(&self, path: &str, id: &str) -> Vec<PathBuf> {
        let rel = path.trim_start_matches('/');
        let name = rel.rsplit('/').next().unwrap_or(rel);
        let parent = rel.rsplit_once('/').map_or("", |(p, _)| p);
        let mut out = Vec::new();
        for dir in &self.dirs {
            if id.len() > 2 {
                let by_id = format!(".build-id/{}/{}.debug", &id[..2], &id[2..]);
                out.push(dir.join(&by_id));
                out.push(dir.join("usr/lib/debug").join(&by_id));
            }
            out.push(dir.join(rel));
            out.push(dir.join("usr/lib/debug").join(format!("{rel}.debug")));
            out.push(dir.join(parent).join(".debug").join(name));
            out.push(dir.join(name));
        }
        out.push(PathBuf::from(path));
        out
    }

    /// The first candidate that is an ELF file with symbols and, when both sides know a build id,
    /// the board file's own.
    fn find_file(&mut self, path: &str, id: &str) -> Option<HostFile> {
        for candidate in self.candidates(path, id) {
            let Ok(data) = std::fs::read(&candidate) else {
                continue;
            };
            let host_id = elf_build_id(&data).map(|b| hex(&b));
            let same = match (&host_id, id) {
                (Some(h), i) if !i.is_empty() => h == i,
                // The board's own path on the host is only the board's file when ids prove it.
                _ => candidate != Path::new(path),
            };
            if !same {
                if candidate != Path::new(path) && !self.mismatched.contains(&candidate) {
                    eprintln!(
                        "ebpf-pack: {} is not the board's {path}: its build id differs; not used for symbols",
                        candidate.display()
                    );
                    self.mismatched.push(candidate);
                }
                continue;
            }
            if let Ok(symbols) = ElfSymbols::parse_any(&data)
                && !symbols.is_empty()
            {
                return Some(HostFile { symbols });
            }
        }
        None
    }

    /// Every folded stack of the run with its samples, in name order.
    pub fn totals(&self) -> &BTreeMap<String, u64> {
        &self.totals
    }

    /// The run's folded stacks as text, one `STACK COUNT` line each, busiest first.
    pub fn folded_text(&self) -> String {
        let mut lines: Vec<(&String, &u64)> = self.totals.iter().collect();
        lines.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        lines.iter().map(|(s, n)| format!("{s} {n}\n")).collect()
    }
}

/// Lower-case hex.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn frames_are_named_from_the_board_symbols_and_host_files() {
        // This test binary plays the board's file: its own mappings, build id and a frame inside
        // this very function.
        let exe = std::fs::read("/proc/self/exe").expect("own binary");
        let id = elf_build_id(&exe).map(|b| hex(&b)).unwrap_or_default();
        let maps = ebpf_pack_object::symbols::parse_proc_maps(
            &std::fs::read_to_string("/proc/self/maps").expect("maps"),
        );
        let here = frames_are_named_from_the_board_symbols_and_host_files as fn() as usize as u64;
        let m = ebpf_pack_object::symbols::find_mapping(&maps, here).expect("mapped");
        let hexaddr = |a: u64| format!("{a:#018x}");
        let mut stacks = Stacks::new(Vec::new());
        stacks.take_symbols(
            "profile",
            "counts",
            &json!({
                "kernel": [["0xffffffff81200000", "0xffffffff81200100", "vfs_read"]],
                "processes": [{"pid": 7, "maps": [[hexaddr(m.start), hexaddr(m.end), hexaddr(m.offset), m.path, id]]}]
            }),
        );
        let line = stacks.fold_row(
            "profile",
            "counts",
            &json!({"pid": 7, "comm": "a;b", "user_stack": 1, "kernel_stack": 2}),
            3,
            &json!([
                {"member": "user_stack", "kind": "user", "id": 1, "ips": [hexaddr(here), "0x10"]},
                {"member": "kernel_stack", "kind": "kernel", "id": 2, "ips": ["0xffffffff81200010", "0xffffffff99000000"]}
            ]),
        );
        let frames: Vec<&str> = line.split(';').collect();
        assert_eq!(frames[0], "a_b", "comm, `;` replaced");
        assert_eq!(frames[1], "[unknown]", "an address in no mapping");
        assert!(
            frames[2].contains("frames_are_named_from_the_board_symbols_and_host_files"),
            "{line}"
        );
        assert_eq!(&frames[3..], ["[unknown]_[k]", "vfs_read_[k]"]);
        assert_eq!(stacks.totals()[&line], 3);
        assert_eq!(stacks.folded_text(), format!("{line} 3\n"));
    }

    #[test]
    fn candidate_files_of_a_board_path() {
        let s = Stacks::new(vec![PathBuf::from("/sysroot")]);
        let c: Vec<String> = s
            .candidates("/usr/bin/app", "abcdef")
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        assert_eq!(
            c,
            [
                "/sysroot/.build-id/ab/cdef.debug",
                "/sysroot/usr/lib/debug/.build-id/ab/cdef.debug",
                "/sysroot/usr/bin/app",
                "/sysroot/usr/lib/debug/usr/bin/app.debug",
                "/sysroot/usr/bin/.debug/app",
                "/sysroot/app",
                "/usr/bin/app",
            ]
        );
    }

    #[test]
    fn missed_and_absent_stacks() {
        let mut s = Stacks::new(Vec::new());
        let line = s.fold_row(
            "p",
            "m",
            &json!({"pid": 1, "comm": "x"}),
            1,
            &json!([
                {"kind": "user", "id": -17, "ips": []},
                {"kind": "kernel", "id": -14, "ips": []}
            ]),
        );
        assert_eq!(line, "x;[Missed User Stack]");
    }
}
