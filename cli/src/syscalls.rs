//! Syscall names per architecture, for showing the numbers a probe records (syscount's map keys) as
//! names. The tables in `syscalls/<arch>.txt` are generated from the kernel's uapi headers by
//! `scripts/gen-syscalls.sh` (its header names the Debian package and version) and committed; a test
//! re-runs the generator and fails on a diff. Nothing here is typed by hand.
//!
//! Numbers are those of the arch's native ABI as the board's loader sees them: x86_64's 64-bit
//! calls, arm's EABI, s390x's 64-bit calls, mips's o32 (4000 + n).

use std::sync::OnceLock;

use crate::arch::Arch;

/// The generated table of one architecture: `NR name` lines under `#` comment lines.
pub fn table_text(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => include_str!("syscalls/x86_64.txt"),
        Arch::Arm64 => include_str!("syscalls/arm64.txt"),
        Arch::Arm => include_str!("syscalls/arm.txt"),
        Arch::Riscv64 => include_str!("syscalls/riscv64.txt"),
        Arch::S390x => include_str!("syscalls/s390x.txt"),
        Arch::Mips => include_str!("syscalls/mips.txt"),
        Arch::Mipsel => include_str!("syscalls/mipsel.txt"),
    }
}

/// Parses `NR name` lines, sorted by number; comments and malformed lines are skipped.
fn parse(text: &'static str) -> Vec<(u64, &'static str)> {
    let mut entries: Vec<(u64, &'static str)> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (nr, name) = l.split_once(' ')?;
            Some((nr.parse().ok()?, name.trim()))
        })
        .filter(|(_, name)| !name.is_empty())
        .collect();
    entries.sort_unstable();
    entries
}

/// The parsed table of one architecture, built on first use.
fn entries(arch: Arch) -> &'static [(u64, &'static str)] {
    static TABLES: [OnceLock<Vec<(u64, &'static str)>>; Arch::ALL.len()] =
        [const { OnceLock::new() }; Arch::ALL.len()];
    let index = Arch::ALL.iter().position(|&a| a == arch).unwrap_or(0);
    TABLES[index].get_or_init(|| parse(table_text(arch)))
}

/// The name of syscall `nr` on `arch` (`openat`), or `None` for a number the arch does not define.
pub fn syscall_name(arch: Arch, nr: u64) -> Option<&'static str> {
    let table = entries(arch);
    table
        .binary_search_by_key(&nr, |&(n, _)| n)
        .ok()
        .map(|i| table[i].1)
}

/// Every syscall name of `arch`, in number order.
pub fn syscall_names(arch: Arch) -> impl Iterator<Item = &'static str> {
    entries(arch).iter().map(|&(_, name)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_numbers_of_each_abi() {
        let cases = [
            (Arch::X86_64, 257, "openat"),
            (Arch::X86_64, 0, "read"),
            (Arch::X86_64, 2, "open"),
            (Arch::X86_64, 162, "sync"),
            (Arch::Arm64, 56, "openat"),
            (Arch::Arm64, 81, "sync"),
            (Arch::Arm64, 25, "fcntl"),
            (Arch::Arm, 5, "open"),
            (Arch::Arm, 36, "sync"),
            (Arch::Arm, 322, "openat"),
            (Arch::Arm, 341, "arm_sync_file_range"),
            (Arch::S390x, 5, "open"),
            (Arch::S390x, 36, "sync"),
            (Arch::S390x, 288, "openat"),
            (Arch::Riscv64, 56, "openat"),
            (Arch::Riscv64, 259, "riscv_flush_icache"),
            (Arch::Mips, 4005, "open"),
            (Arch::Mipsel, 4288, "openat"),
        ];
        for (arch, nr, name) in cases {
            assert_eq!(syscall_name(arch, nr), Some(name), "{arch} {nr}");
        }
        assert!(
            !entries(Arch::Arm64).iter().any(|&(_, n)| n == "open"),
            "arm64 has openat only"
        );
        assert_eq!(syscall_name(Arch::Arm64, 1000), None);
        assert_eq!(syscall_name(Arch::X86_64, 1 << 30), None);
    }

    #[test]
    fn every_table_line_parses_and_names_one_number_once() {
        for arch in Arch::ALL {
            let text = table_text(arch);
            let body: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
            let entries = entries(arch);
            assert_eq!(entries.len(), body.len(), "{arch}: a malformed line");
            assert!(
                entries.len() > 300,
                "{arch}: only {} syscalls",
                entries.len()
            );
            assert!(
                entries.windows(2).all(|w| w[0].0 < w[1].0),
                "{arch}: a number named twice"
            );
            assert!(
                text.lines()
                    .nth(1)
                    .is_some_and(|l| l.contains("linux-libc-dev")),
                "{arch}: the header names its source package"
            );
        }
    }
}
