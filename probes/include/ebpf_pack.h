/*
 * ebpf_pack.h — conventions and helpers shared by the ebpf-pack probes.
 *
 * Include after "vmlinux.h", <bpf/bpf_helpers.h> and <bpf/bpf_core_read.h>.
 *
 * 1. Event records: EBPF_PACK_EVENT(map, type)
 *
 *    The loader prints ring-buffer records decoded through the object's BTF. A ring buffer map carries no
 *    value type, so each probe names its record type with
 *
 *        EBPF_PACK_EVENT(events, struct event);
 *
 *    which declares the global `const struct event *__ebpf_pack_event_events`. The loader looks for a BTF
 *    VAR named `__ebpf_pack_event_<ring buffer map name>`, follows its PTR (and CONST) to the record type and
 *    decodes every record of that map with it. The variable exists only for its BTF: it is never read, lives
 *    in .bss (8 bytes, loaded as the ordinary .bss array map) and keeps the record struct in the object's BTF
 *    even when the struct is otherwise only used through sizeof(). Record structs use fixed-size integers and
 *    char arrays only, ordered so that there is no implicit padding, so the layout is the same on every
 *    target and the BTF describes every byte.
 *
 * 2. Reading kernel fields on 32-bit kernels: EP_CORE_READ*(src, field)
 *
 *    clang's BPF target is always 64-bit: `long`, `unsigned long` and pointers are 8 bytes in BPF C, also
 *    when the probe is compiled against the vmlinux.h of a 32-bit kernel (arm, where they are 4 bytes).
 *    CO-RE relocates the *offset* of a field to the running kernel's layout, but BPF_CORE_READ() and
 *    bpf_core_read() copy sizeof() of the BPF-side type: for `task->real_parent` or `ctx->args[1]` they read
 *    8 bytes from a 4-byte field on arm — the field plus whatever follows it — and the pointer or value is
 *    garbage. (aya also rewrites the width of a direct LDX load from a relocated field, but only for
 *    pointers and unsigned ints; a direct load of a signed `long`, such as `ctx->id`, makes aya 0.14 refuse
 *    the object on a 32-bit kernel. Explicit reads avoid both traps.)
 *
 *    EP_CORE_READ(src, field) therefore reads with the field's size *in the running kernel*: both the size
 *    and the offset come from CO-RE relocations (FIELD_BYTE_SIZE and FIELD_BYTE_OFFSET, both supported by
 *    libbpf and aya 0.14 — also for an array element such as `args[1]`), the bytes land in a zeroed u64, and
 *    the value comes back zero-extended. That is correct for every integer or pointer field of 1, 2, 4 or
 *    8 bytes on a 32- or 64-bit kernel. EP_CORE_READ_SIGNED sign-extends instead (for `long` fields that can
 *    be negative, such as a syscall's return value); EP_CORE_READ_PTR returns the value as a pointer for the
 *    next read.
 *
 *    Byte order: on little-endian targets the low-order bytes of the u64 come first, so a 4-byte field
 *    read into its start is already the right number. On big-endian targets they come last: reading a
 *    4-byte field into the start of the u64 would yield value << 32. That matters on s390x for every field
 *    narrower than 8 bytes (int, pid_t, u32) and on 32-bit big-endian boards (mips) for pointers and longs
 *    too, so on big-endian targets the bytes are read into the *end* of the u64 (&v + 8 - size), as
 *    libbpf's own BPF_CORE_READ_BITFIELD_PROBED does. Reading into a u32 when size == 4 would work as
 *    well, but needs a branch per size; the offset is one subtraction (kept verifier-friendly, below).
 *
 *    The size passed to bpf_probe_read_kernel() is a relocated constant, so the verifier sees a known
 *    value and checks it against the 8-byte stack slot. Fields wider than 8 bytes are refused at compile
 *    time (local size) and would be refused by the verifier (target size).
 *
 * 3. Rules every probe here follows, so that one object runs on all supported boards:
 *    - no BPF atomics (__sync_fetch_and_add & co.): the 32-bit ARM JIT cannot emit them and loading fails
 *      with errno 524 (ENOTSUPP) after the verifier accepted the program. Counters live in per-CPU maps and
 *      are bumped with a plain, non-atomic increment: each CPU owns its slot, and tracing programs do not
 *      interleave on one CPU (the kernel skips a kprobe/tracepoint program while another one is running on
 *      that CPU: bpf_prog_active). User space sums the CPUs;
 *    - no `.kconfig` externs (aya 0.14 cannot load them), no bpf_loop (kernel 5.17), no fentry/fexit
 *      (no trampolines on arm32); tracepoints and a ring buffer (kernel 5.8) only;
 *    - run-time settings are `const volatile` globals in .rodata, set by the loader (--set name=value).
 *
 * 4. Lost records: EP_RINGBUF_RESERVE(map, size)
 *
 *    When user space does not drain a ring buffer fast enough, bpf_ringbuf_reserve() fails and the record
 *    is gone. EBPF_PACK_EVENT(map, type) also declares `__ebpf_pack_lost_<map>`, a PERCPU_ARRAY with one
 *    __u64 slot, and EP_RINGBUF_RESERVE(map, size) reserves like bpf_ringbuf_reserve(&map, size, 0) and
 *    bumps that counter on failure. The loader reads it (summing the CPUs) instead of dumping it as a
 *    map: a warning on stderr each second that records were lost, and at exit one line per ring buffer
 *    with the records printed and lost (and a JSON line with --format json), so nothing is lost silently.
 *
 * 5. Kernels without a ring buffer (< 5.8): EBPF_PACK_EVENTS(map, type, bytes), EP_EVENT_RESERVE/SUBMIT
 *
 *    A probe that should also run on a kernel without BPF_MAP_TYPE_RINGBUF declares its ring buffer with
 *
 *        EBPF_PACK_EVENTS(events, struct event, 256 * 1024);
 *
 *    instead of a hand-written RINGBUF map plus EBPF_PACK_EVENT, and writes records with
 *
 *        struct event *e = EP_EVENT_RESERVE(events);
 *        if (e) { ...fill...; EP_EVENT_SUBMIT(ctx, events, e); }
 *
 *    Besides the ring buffer `map` (type, max_entries, map_flags: 24 bytes of BTF map definition) and
 *    EBPF_PACK_EVENT, the macro declares the type `struct __ebpf_pack_perf_def_<map>`, a PERF_EVENT_ARRAY
 *    definition of the same size (type, key_size, value_size), kept in the object's BTF by a pointer
 *    variable; the switch `const volatile __u8 __ebpf_pack_perf_<map>`, 0 by default; and
 *    `__ebpf_pack_heap_<map>`, a one-slot per-CPU array holding one record. As declared the map is a
 *    ring buffer, so any loader (libbpf, bpftool) runs the probe on 5.8+. When the kernel cannot create
 *    a ring buffer (or with --perf-buffer), ebpf-run points the map's BTF variable at the perf definition
 *    (same size, so the .maps data section stays valid) and sets the switch before loading: then
 *    EP_EVENT_RESERVE returns the per-CPU slot and EP_EVENT_SUBMIT sends it with bpf_perf_event_output().
 *    The switch lives in frozen .rodata, so the verifier knows its value and never walks the other
 *    branch: the ring buffer helpers there need not exist in the kernel. On the perf path a record
 *    bpf_perf_event_output() has no room for is counted in `__ebpf_pack_lost_<map>` too, so ebpf-run
 *    reports exact counts at any moment (the kernel's own PERF_RECORD_LOST notes only reach the reader
 *    with the next record written to that CPU's buffer; ebpf-run uses them for perf buffers without
 *    a counter).
 *
 * 6. Tool options in the BCC spelling: EP_OPTION(usage, help)
 *
 *    A setting that a BCC tool of the same name takes as a flag is declared with it:
 *
 *        const volatile __u32 filter_pid EP_OPTION("-p PID", "trace this process id only") = 0;
 *        const volatile bool failed_only EP_OPTION("-x", "only show failed opens") = false;
 *
 *    The macro puts the BTF decl tag `ebpf-pack:option -p PID<TAB>help` on the global (clang emits
 *    BTF_KIND_DECL_TAG; aya rewrites it for kernels before 5.16, which lack the kind). `ebpf-run TOOL
 *    -p 42 -x` then sets filter_pid to 42 and failed_only to 1 (a flag without a placeholder is a
 *    switch), `ebpf-run TOOL -h` lists the options, and `ebpf-pack tools` shows them. `-d SECS`
 *    (duration), `-i SECS` (interval) and trailing `[interval [count]]` numbers are understood for every
 *    tool that does not declare the flag itself.
 */
#ifndef __EBPF_PACK_H__
#define __EBPF_PACK_H__

/*
 * The record type of ring buffer `map` (see 1. above), and the map's lost-record counter (see 4. above):
 * the one-slot per-CPU array `__ebpf_pack_lost_<map>`.
 */
#define EBPF_PACK_EVENT(map, record_type)                                                               \
	const record_type *__ebpf_pack_event_##map __attribute__((unused));                             \
	struct {                                                                                        \
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);                                                \
		__uint(max_entries, 1);                                                                 \
		__type(key, __u32);                                                                     \
		__type(value, __u64);                                                                   \
	} __ebpf_pack_lost_##map SEC(".maps")

/* Counts one record lost in the map's lost counter. */
static __always_inline void __ep_count_lost(void *lost)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(lost, &zero);

	if (n)
		(*n)++; /* per-CPU slot: no atomic needed (see 3.) */
}

static __always_inline void *__ep_ringbuf_reserve(void *ring, void *lost, __u64 size)
{
	void *record = bpf_ringbuf_reserve(ring, size, 0);

	if (!record)
		__ep_count_lost(lost);
	return record;
}

/* bpf_ringbuf_reserve(&map, size, 0) that counts a full ring buffer in the map's lost counter. */
#define EP_RINGBUF_RESERVE(map, size) __ep_ringbuf_reserve(&map, &__ebpf_pack_lost_##map, size)

/* A ring buffer of `bytes` carrying `record_type`, with a perf-buffer fallback (see 5. above). */
#define EBPF_PACK_EVENTS(map, record_type, bytes)                                                       \
	struct {                                                                                        \
		__uint(type, BPF_MAP_TYPE_RINGBUF);                                                     \
		__uint(max_entries, bytes);                                                             \
		__uint(map_flags, 0);                                                                   \
	} map SEC(".maps");                                                                             \
	EBPF_PACK_EVENT(map, record_type);                                                              \
	struct __ebpf_pack_perf_def_##map {                                                             \
		__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);                                            \
		__uint(key_size, sizeof(__u32));                                                        \
		__uint(value_size, sizeof(__u32));                                                      \
	};                                                                                              \
	const struct __ebpf_pack_perf_def_##map *__ebpf_pack_perf_def_ptr_##map __attribute__((unused)); \
	const volatile __u8 __ebpf_pack_perf_##map = 0;                                                 \
	struct {                                                                                        \
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);                                                \
		__uint(max_entries, 1);                                                                 \
		__type(key, __u32);                                                                     \
		__type(value, record_type);                                                             \
	} __ebpf_pack_heap_##map SEC(".maps")

/* A record of `map` to fill: in the ring buffer, or in the per-CPU slot on the perf path. NULL if full. */
#define EP_EVENT_RESERVE(map)                                                                           \
	({                                                                                              \
		__u32 __ep_zero = 0;                                                                    \
		__ebpf_pack_perf_##map ? bpf_map_lookup_elem(&__ebpf_pack_heap_##map, &__ep_zero)      \
				       : EP_RINGBUF_RESERVE(map, sizeof(*__ebpf_pack_event_##map));     \
	})

/* Sends a record of EP_EVENT_RESERVE(map): ring buffer submit, or perf output on this CPU (a record
 * the perf buffer has no room for is counted in the lost counter, like a full ring buffer's). */
#define EP_EVENT_SUBMIT(ctx, map, record)                                                               \
	do {                                                                                            \
		if (__ebpf_pack_perf_##map) {                                                           \
			if (bpf_perf_event_output(ctx, &map, BPF_F_CURRENT_CPU, record,                 \
						  sizeof(*__ebpf_pack_event_##map)))                    \
				__ep_count_lost(&__ebpf_pack_lost_##map);                               \
		} else {                                                                                \
			bpf_ringbuf_submit(record, 0);                                                  \
		}                                                                                       \
	} while (0)

/* A command-line option of the tool that sets this global (see 6. above). */
#define EP_OPTION(usage, help) __attribute__((btf_decl_tag("ebpf-pack:option " usage "\t" help)))

/* Marks a map that only carries state from one program to another (start times, arguments kept from
 * entry to exit), so ebpf-run does not print it: `struct { ... } start EP_SCRATCH SEC(".maps");`. */
#define EP_SCRATCH __attribute__((btf_decl_tag("ebpf-pack:scratch")))

/* Marks a map whose counts start again after each --interval dump (ebpf-run clears it), so each
 * dump shows the last interval alone, as BCC's tools print per-interval counts and histograms. */
#define EP_CLEAR __attribute__((btf_decl_tag("ebpf-pack:clear")))

/* Task name length, as TASK_COMM_LEN in the kernel (not an enum in every kernel's BTF). */
#define EP_COMM_LEN 16

/* Whether the current task's name is the setting `want` ("" matches every task): BCC's -n/-c NAME. */
static __always_inline bool ep_comm_is(const volatile char *want)
{
	char comm[EP_COMM_LEN];

	if (!want[0])
		return true;
	bpf_get_current_comm(comm, sizeof(comm));
	for (int i = 0; i < EP_COMM_LEN; i++) {
		if (comm[i] != want[i])
			return false;
		if (!comm[i])
			return true;
	}
	return true;
}

/* An IPv4 or IPv6 address that ebpf-run prints as text (127.0.0.1, ::1): 16 bytes in network order,
 * IPv4 as the mapped address ::ffff:a.b.c.d (RFC 4291), so one column holds both families. */
typedef __u8 ep_inet_addr[16];

/* Stores the IPv4 address `be` (network byte order, as the kernel keeps it) into `a`. */
static __always_inline void ep_inet_addr_v4(ep_inet_addr a, __u32 be)
{
	__builtin_memset(a, 0, 10);
	a[10] = 0xff;
	a[11] = 0xff;
	__builtin_memcpy(&a[12], &be, 4);
}

/*
 * Nanoseconds to microseconds and milliseconds without a 64-bit division, which the 32-bit ARM JIT
 * cannot emit (a program with one fails to load where the JIT is mandatory): a shift, a multiply by
 * 2^k / divisor and a shift. Relative error below 0.01 % (at most 30 us in a second); exact enough
 * for latencies up to 200 days (us) and 139 years (ms) before the product overflows.
 */
static __always_inline __u64 ep_ns_to_us(__u64 ns)
{
	return ((ns >> 3) * 8389) >> 20; /* ns / 8 / 125 */
}

static __always_inline __u64 ep_ns_to_ms(__u64 ns)
{
	return ((ns >> 10) * 4295) >> 22; /* ns / 1024 / 976.5625 */
}

/* Slots of a log2 histogram, `struct { __u32 slots[EP_HIST_SLOTS]; }` (printed as BCC prints one). */
#define EP_HIST_SLOTS 27

/* The log2 histogram slot of `v`: floor(log2(v)), 0 for 0 and 1, at most EP_HIST_SLOTS - 1. */
static __always_inline __u32 ep_log2_slot(__u64 v)
{
	__u32 r = 0;

	if (v >> 32) { v >>= 32; r += 32; }
	if (v >> 16) { v >>= 16; r += 16; }
	if (v >> 8) { v >>= 8; r += 8; }
	if (v >> 4) { v >>= 4; r += 4; }
	if (v >> 2) { v >>= 2; r += 2; }
	if (v >> 1) r += 1;
	return r < EP_HIST_SLOTS ? r : EP_HIST_SLOTS - 1;
}

/* A log2 histogram map value: the loader and the host print a struct of one `slots` array as one. */
struct ep_hist {
	__u32 slots[EP_HIST_SLOTS];
};

/* The value of `map` under `key`, first inserted as `init` when the key is new; NULL if the map is
 * full. (BPF_NOEXIST: a racing insert on another CPU wins, and the lookup finds its value.) */
static __always_inline void *ep_lookup_or_init(void *map, const void *key, const void *init)
{
	void *v = bpf_map_lookup_elem(map, key);

	if (v)
		return v;
	bpf_map_update_elem(map, key, init, BPF_NOEXIST);
	return bpf_map_lookup_elem(map, key);
}

/* Counts a time of `ns` nanoseconds in the microsecond histogram (struct ep_hist) `map` holds
 * under `key`. For per-CPU maps: the increment is this CPU's, no atomic needed (see 3.). */
static __always_inline void ep_hist_add_us(void *map, const void *key, __u64 ns)
{
	struct ep_hist zero = {};
	struct ep_hist *h = ep_lookup_or_init(map, key, &zero);
	__u32 slot = ep_log2_slot(ep_ns_to_us(ns));

	if (h && slot < EP_HIST_SLOTS)
		h->slots[slot] += 1;
}

/* A block device number as the kernel keeps it (dev_t: major << 20 | minor), printed MAJOR:MINOR like
 * lsblk's MAJ:MIN column. */
typedef __u32 ep_dev_t;

/* A per-CPU minimum or maximum (a one-liner's min() and max()): each CPU keeps its own extreme and sets
 * `set` once it has seen the key. The nested struct keeps ebpf-run from summing the CPUs' copies (it
 * sums per-CPU structs of plain integers): it prints each CPU's copy, leaving out a CPU that never saw
 * the key (all zeros, which must not count as a minimum), and the host takes the extreme. */
struct ep_extreme {
	__s64 value;
	__u64 set;
};
struct ep_min {
	struct ep_extreme cpu;
};
struct ep_max {
	struct ep_extreme cpu;
};

/* Enumerators of a record's or key's enum print by name; an `EP__` prefix is left out (EP__CLOSE prints
 * as CLOSE), so display names cannot clash with the kernel's enumerators in vmlinux.h. */

/* A kernel address that ebpf-run prints as its symbol (`vfs_read`, read from the board's
 * /proc/kallsyms), or in hex where the addresses are hidden. */
typedef __u64 ep_ksym_t;

/* The BPF cookie of an attach point that ebpf-run numbers itself (1, 2, ... for each function a
 * `uprobe/{NAME}` pattern matched: bpf_get_attach_cookie(), Linux 5.15): prints as that function. */
typedef __u64 ep_probe_t;

/* Stack ids from bpf_get_stackid() into the object's BPF_MAP_TYPE_STACK_TRACE map: a key holding them
 * prints as one folded stack per row (`comm;user frames;kernel frames_[k] count`, outermost frame
 * first), the kernel frames named from /proc/kallsyms and the user frames from the process's mappings
 * and ELF symbols (`ebpf-pack run` names them on the host, from the build's unstripped binaries). A
 * negative id is a stack not taken (-EFAULT: the sample had none, as a kernel stack in user mode). */
typedef __s32 ep_kstack_t;
typedef __s32 ep_ustack_t;

/* Frames a stack map keeps per stack: the kernel's own limit (PERF_MAX_STACK_DEPTH). */
#define EP_STACK_DEPTH 127

/* "No uid filter": uid settings default to this, as in libbpf-tools (uid 0 is root). */
#define EP_NO_UID 0xffffffffu

#define __EP_FIELD_SIZE(src, field) __builtin_preserve_field_info((src)->field, BPF_FIELD_BYTE_SIZE)
#define __EP_FIELD_OFFSET(src, field) __builtin_preserve_field_info((src)->field, BPF_FIELD_BYTE_OFFSET)

/*
 * Where in a u64 at `v` the `size` bytes of a narrower integer go so that the u64 holds its value.
 * Big-endian: at the end, v + (8 - size). The difference is made a scalar first (barrier_var): left to
 * itself clang folds it into `ptr - size + 8`, and the verifier refuses any subtraction from the stack
 * pointer ("R1 subtraction from stack pointer prohibited"); adding a known scalar to it is fine.
 */
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define __EP_U64_DST(v, size)                                                                           \
	({                                                                                              \
		__u64 __ep_off = 8 - (__u64)(size);                                                     \
		barrier_var(__ep_off);                                                                  \
		(void *)(v) + __ep_off;                                                                 \
	})
#elif __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define __EP_U64_DST(v, size) ((void *)(v)) /* low-order bytes are the first ones */
#else
#error "unknown byte order"
#endif

/*
 * EP_CORE_READ(src, field): the integer or pointer `src->field` of the running kernel, read with that
 * kernel's size of the field and zero-extended to __u64. `field` may be a member path with array indexes
 * (`args[1]`, `a.b`). 0 if the read faults.
 */
#define EP_CORE_READ(src, field)                                                                        \
	({                                                                                              \
		_Static_assert(sizeof((src)->field) <= 8, "EP_CORE_READ: field wider than 8 bytes");    \
		__u64 __ep_v = 0;                                                                       \
		bpf_probe_read_kernel(__EP_U64_DST(&__ep_v, __EP_FIELD_SIZE(src, field)),               \
				      __EP_FIELD_SIZE(src, field),                                      \
				      (const void *)(src) + __EP_FIELD_OFFSET(src, field));             \
		__ep_v;                                                                                 \
	})

/* As EP_CORE_READ, sign-extended from the field's size in the running kernel to __s64. */
#define EP_CORE_READ_SIGNED(src, field)                                                                 \
	({                                                                                              \
		__u64 __ep_u = EP_CORE_READ(src, field);                                                \
		__u32 __ep_shift = 64 - 8 * __EP_FIELD_SIZE(src, field);                                \
		(__s64)(__ep_u << __ep_shift) >> __ep_shift;                                            \
	})

/* A pointer field of the running kernel, as a pointer usable for the next CO-RE read. */
#define EP_CORE_READ_PTR(src, field) ((void *)(unsigned long)EP_CORE_READ(src, field))

/*
 * Scheduler state of a task, for tools that watch sched_switch (runqlat, cpudist, offcputime): the
 * task_struct fields as a CO-RE flavour, `__state` since 5.14 and `state` before (libbpf-tools reads it
 * the same way). Raw tracepoint arguments (struct bpf_raw_tracepoint_args) are u64 slots on every
 * arch, so task pointers from them need no size care; fields of the task do (EP_CORE_READ).
 */
struct task_struct___ep_sched {
	pid_t pid;
	pid_t tgid;
	unsigned int __state;
} __attribute__((preserve_access_index));

struct task_struct___ep_sched_old {
	long state;
} __attribute__((preserve_access_index));

/* Raw tracepoint argument N as a pointer. Indexing ctx as plain u64s: `ctx->args[N]` on vmlinux.h's
 * `struct bpf_raw_tracepoint_args { __u64 args[0]; }` becomes a CO-RE relocation into a zero-length
 * array, which aya refuses as out of bounds. */
#define EP_RAW_ARG(ctx, n) ((void *)(unsigned long)((const __u64 *)(ctx))[n])

/* TASK_RUNNING: a task switched out in this state was preempted and is still runnable. */
#define EP_TASK_RUNNING 0

static __always_inline __u64 ep_task_state(void *task)
{
	struct task_struct___ep_sched *t = task;

	if (bpf_core_field_exists(t->__state))
		return EP_CORE_READ(t, __state);
	return EP_CORE_READ((struct task_struct___ep_sched_old *)task, state);
}

/*
 * Sockets, for the network tools (tcpaccept, bindsnoop, tcplife): the fields used, as CO-RE flavours
 * (matched by name, anonymous unions and structs of the kernel's types looked through), so an object
 * does not carry the type graph of struct sock. Every read goes through EP_CORE_READ (32-bit safe).
 */
struct sock_common___ep {
	__be32 skc_daddr;
	__be32 skc_rcv_saddr;
	__be16 skc_dport;
	__u16 skc_num;
	unsigned short skc_family;
	struct in6_addr skc_v6_daddr;
	struct in6_addr skc_v6_rcv_saddr;
} __attribute__((preserve_access_index));

struct sock___ep {
	struct sock_common___ep __sk_common;
} __attribute__((preserve_access_index));

struct socket___ep {
	short type;
	struct sock___ep *sk;
} __attribute__((preserve_access_index));

struct file___ep {
	void *private_data;
} __attribute__((preserve_access_index));

struct fdtable___ep {
	unsigned int max_fds;
	struct file___ep **fd;
} __attribute__((preserve_access_index));

struct files_struct___ep {
	struct fdtable___ep *fdt;
} __attribute__((preserve_access_index));

struct task_struct___ep_files {
	struct files_struct___ep *files;
} __attribute__((preserve_access_index));

/* The `private_data` of the current task's open file `fdnum` (the struct socket of a socket), or 0. */
static __always_inline void *ep_fd_private(__u32 fdnum)
{
	struct task_struct___ep_files *task = (void *)bpf_get_current_task();
	struct files_struct___ep *files = EP_CORE_READ_PTR(task, files);
	if (!files)
		return 0;
	struct fdtable___ep *fdt = EP_CORE_READ_PTR(files, fdt);
	if (!fdt || fdnum >= EP_CORE_READ(fdt, max_fds))
		return 0;
	/* fdt->fd is an array of the running kernel's pointers: 4 bytes each on a 32-bit kernel. */
	__u32 psize = __EP_FIELD_SIZE(fdt, fd);
	void *array = EP_CORE_READ_PTR(fdt, fd);
	__u64 file = 0;
	bpf_probe_read_kernel(__EP_U64_DST(&file, psize), psize, array + (__u64)fdnum * psize);
	if (!file)
		return 0;
	return EP_CORE_READ_PTR((struct file___ep *)(unsigned long)file, private_data);
}

/* AF_INET and AF_INET6. */
#define EP_AF_INET 2
#define EP_AF_INET6 10

/* The local (`local` true) or remote address of socket `sk` into `a`, IPv4 mapped (ep_inet_addr). */
static __always_inline void ep_sock_addr(ep_inet_addr a, struct sock___ep *sk, bool local)
{
	if (EP_CORE_READ(sk, __sk_common.skc_family) == EP_AF_INET6) {
		if (local)
			bpf_core_read(a, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		else
			bpf_core_read(a, 16, &sk->__sk_common.skc_v6_daddr);
		return;
	}
	__u32 v4 = local ? (__u32)EP_CORE_READ(sk, __sk_common.skc_rcv_saddr)
			 : (__u32)EP_CORE_READ(sk, __sk_common.skc_daddr);
	ep_inet_addr_v4(a, v4);
}

/*
 * Argument N (1 to 5, as bpf_tracing.h's PT_REGS_PARMn) of the kernel function a kprobe stopped at,
 * read with the running kernel's register size: 4 bytes on 32-bit ARM, where PT_REGS_PARMn would
 * read the 8 bytes of a BPF-side `unsigned long` (see 2. above). Zero-extended.
 */
#define EP_KPROBE_ARG(ctx, n) EP_CORE_READ(__PT_REGS_CAST((struct pt_regs *)(ctx)), __PT_PARM##n##_REG)

#endif /* __EBPF_PACK_H__ */
