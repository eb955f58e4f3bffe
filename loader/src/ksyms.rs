//! Kernel symbols from /proc/kallsyms, read once and only when something is printed by them:
//! `ep_ksym_t` values (funccount's function addresses: `vfs_read`, or `vfs_read+0x1c` inside a
//! function) and the kernel frames of stacks.

use std::cell::OnceCell;

use crate::symbols::SymbolTable;

/// Reads /proc/kallsyms; `None` when it cannot be read or hides the addresses (kptr_restrict).
pub fn load() -> Option<SymbolTable> {
    let text = std::fs::read_to_string("/proc/kallsyms").ok()?;
    Some(SymbolTable::from_kallsyms(&text)).filter(|k| !k.is_empty())
}

/// The symbol at `addr`, or `symbol+0xOFF` for an address inside one.
pub fn name(table: &SymbolTable, addr: u64) -> Option<String> {
    table.lookup(addr).map(|(name, off)| {
        if off == 0 {
            name.to_owned()
        } else {
            format!("{name}+{off:#x}")
        }
    })
}

/// The kernel's symbols, read on first use and kept.
#[derive(Default)]
pub struct LazyKsyms(OnceCell<Option<SymbolTable>>);

impl LazyKsyms {
    /// The table, `None` when /proc/kallsyms cannot name addresses here.
    pub fn get(&self) -> Option<&SymbolTable> {
        self.0.get_or_init(load).as_ref()
    }
}

/// A symboliser for decoders that reads /proc/kallsyms on its first call.
pub fn lazy() -> impl Fn(u64) -> Option<String> {
    let cell = LazyKsyms::default();
    move |addr| name(cell.get()?, addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_name_their_function() {
        let k = SymbolTable::from_kallsyms(
            "ffffffff81000000 T _stext\nffffffff81200000 t vfs_read\nffffffff81200100 T vfs_write\n",
        );
        assert_eq!(name(&k, 0xffffffff81200000).as_deref(), Some("vfs_read"));
        assert_eq!(
            name(&k, 0xffffffff8120001c).as_deref(),
            Some("vfs_read+0x1c")
        );
        assert_eq!(name(&k, 0x1000), None);
    }
}
