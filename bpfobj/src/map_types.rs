//! `BPF_MAP_TYPE_*` numbers: their libbpf names and which of them the loader reads.

/// `BPF_MAP_TYPE_HASH`.
pub const HASH: u32 = 1;
/// `BPF_MAP_TYPE_ARRAY`.
pub const ARRAY: u32 = 2;
/// `BPF_MAP_TYPE_PERCPU_HASH`.
pub const PERCPU_HASH: u32 = 5;
/// `BPF_MAP_TYPE_PERCPU_ARRAY`.
pub const PERCPU_ARRAY: u32 = 6;
/// `BPF_MAP_TYPE_STACK_TRACE`.
pub const STACK_TRACE: u32 = 7;
/// `BPF_MAP_TYPE_LRU_HASH`.
pub const LRU_HASH: u32 = 9;
/// `BPF_MAP_TYPE_LRU_PERCPU_HASH`.
pub const LRU_PERCPU_HASH: u32 = 10;
/// `BPF_MAP_TYPE_PERF_EVENT_ARRAY`.
pub const PERF_EVENT_ARRAY: u32 = 4;
/// `BPF_MAP_TYPE_RINGBUF`.
pub const RINGBUF: u32 = 27;

/// libbpf's names, indexed by `BPF_MAP_TYPE_*` value (the kernel's `enum bpf_map_type` order).
const NAMES: &[&str] = &[
    "unspec",
    "hash",
    "array",
    "prog_array",
    "perf_event_array",
    "percpu_hash",
    "percpu_array",
    "stack_trace",
    "cgroup_array",
    "lru_hash",
    "lru_percpu_hash",
    "lpm_trie",
    "array_of_maps",
    "hash_of_maps",
    "devmap",
    "sockmap",
    "cpumap",
    "xskmap",
    "sockhash",
    "cgroup_storage",
    "reuseport_sockarray",
    "percpu_cgroup_storage",
    "queue",
    "stack",
    "sk_storage",
    "devmap_hash",
    "struct_ops",
    "ringbuf",
    "inode_storage",
    "task_storage",
    "bloom_filter",
    "user_ringbuf",
    "cgrp_storage",
    "arena",
];

/// libbpf's name for a map type (`hash`, `ringbuf`, …), or `unknown`.
pub fn name(map_type: u32) -> &'static str {
    NAMES.get(map_type as usize).copied().unwrap_or("unknown")
}

/// The kernel version (major, minor) that introduced a map type, for the types newer than 5.4.
pub fn since(map_type: u32) -> Option<(u16, u16)> {
    match map_type {
        RINGBUF => Some((5, 8)),
        28 => Some((5, 10)), // inode_storage
        29 => Some((5, 11)), // task_storage
        30 => Some((5, 16)), // bloom_filter
        31 => Some((6, 1)),  // user_ringbuf
        32 => Some((6, 2)),  // cgrp_storage
        33 => Some((6, 9)),  // arena
        _ => None,
    }
}

/// Whether a lookup returns one value per possible CPU.
pub fn is_per_cpu(map_type: u32) -> bool {
    matches!(map_type, PERCPU_HASH | PERCPU_ARRAY | LRU_PERCPU_HASH)
}

/// Whether the map's contents are printed at exit.
pub fn is_dumped(map_type: u32) -> bool {
    matches!(
        map_type,
        HASH | ARRAY | PERCPU_HASH | PERCPU_ARRAY | LRU_HASH | LRU_PERCPU_HASH
    )
}

/// Whether keys are array indexes (entries always exist; all-zero ones are skipped).
pub fn is_array(map_type: u32) -> bool {
    matches!(map_type, ARRAY | PERCPU_ARRAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_kernel_enum() {
        assert_eq!(name(HASH), "hash");
        assert_eq!(name(LRU_PERCPU_HASH), "lru_percpu_hash");
        assert_eq!(name(RINGBUF), "ringbuf");
        assert_eq!(name(30), "bloom_filter");
        assert_eq!(name(999), "unknown");
    }
}
