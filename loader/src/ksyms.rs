//! Kernel symbols from /proc/kallsyms, read once and only when a value of type `ep_ksym_t` is
//! printed (funccount's function addresses): `vfs_read`, or `vfs_read+0x1c` inside a function.

use std::cell::OnceCell;

/// The kernel's text symbols, sorted by address.
pub struct Ksyms {
    syms: Vec<(u64, String)>,
}

impl Ksyms {
    /// Reads /proc/kallsyms; `None` when it cannot be read or hides the addresses (kptr_restrict).
    pub fn load() -> Option<Ksyms> {
        let text = std::fs::read_to_string("/proc/kallsyms").ok()?;
        Some(Ksyms::parse(&text)).filter(|k| !k.syms.is_empty())
    }

    /// The text (`t`/`T`) symbols of a kallsyms listing with non-zero addresses.
    pub fn parse(text: &str) -> Ksyms {
        let mut syms: Vec<(u64, String)> = text
            .lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                let addr = u64::from_str_radix(w.next()?, 16)
                    .ok()
                    .filter(|&a| a != 0)?;
                let kind = w.next()?;
                let name = w.next()?;
                matches!(kind, "t" | "T").then(|| (addr, name.to_owned()))
            })
            .collect();
        syms.sort_unstable();
        Ksyms { syms }
    }

    /// The symbol at `addr`, or `symbol+0xOFF` for an address inside one.
    pub fn name(&self, addr: u64) -> Option<String> {
        let at = self
            .syms
            .partition_point(|(a, _)| *a <= addr)
            .checked_sub(1)?;
        let (start, name) = &self.syms[at];
        Some(if *start == addr {
            name.clone()
        } else {
            format!("{name}+{:#x}", addr - start)
        })
    }
}

/// A symboliser for decoders that reads /proc/kallsyms on its first call.
pub fn lazy() -> impl Fn(u64) -> Option<String> {
    let cell: OnceCell<Option<Ksyms>> = OnceCell::new();
    move |addr| cell.get_or_init(Ksyms::load).as_ref()?.name(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_name_their_function() {
        let k = Ksyms::parse(
            "ffffffff81000000 T _stext\nffffffff81200000 t vfs_read\nffffffff81200100 T vfs_write\n\
             ffffffff81300000 D some_data\n0000000000000000 T hidden\n",
        );
        assert_eq!(k.name(0xffffffff81200000).as_deref(), Some("vfs_read"));
        assert_eq!(k.name(0xffffffff8120001c).as_deref(), Some("vfs_read+0x1c"));
        assert_eq!(k.name(0xffffffff81200100).as_deref(), Some("vfs_write"));
        assert_eq!(k.name(0x1000), None);
        assert_eq!(k.syms.len(), 3, "text symbols with addresses only");
    }
}
