/*
 * syscount — how often each system call is made, system-wide or by one process. Attach point: tracepoint
 * raw_syscalls/sys_enter (every syscall entry of every task). Maps: `counts` (PERCPU_ARRAY, key __u32
 * syscall number, value __u64 number of calls on that CPU; user space sums the CPUs and maps numbers to
 * names for the target's ABI). An array needs no inserts, so there are no races, and per-CPU slots need
 * no atomics (32-bit ARM JIT). Numbers outside the array are not counted: x86-64 x32 calls (bit 30 set),
 * ARM private calls (0xf0000+), and the ids of compat (32-bit) tasks on a 64-bit kernel are counted under
 * the native numbers. Setting: `filter_pid` (0 = all processes, else only that process id / tgid).
 * Kernel: raw_syscalls tracepoints (CONFIG_FTRACE_SYSCALLS) and BTF (CO-RE); per-CPU arrays are 4.6+.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "ebpf_pack.h"

char LICENSE[] SEC("license") = "GPL";

#if defined(__TARGET_ARCH_mips)
#define MAX_SYSCALL_NR 8192 /* o32 numbers start at 4000, n64 at 5000, n32 at 6000 */
#else
#define MAX_SYSCALL_NR 1024 /* all Linux ABIs here number their syscalls below ~470 */
#endif

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_SYSCALL_NR);
	__type(key, __u32);   /* syscall number */
	__type(value, __u64); /* calls, per CPU */
} counts SEC(".maps");

/* 0: all processes; otherwise only this process id (tgid). Set by the loader. */
const volatile __u32 filter_pid = 0;

SEC("tracepoint/raw_syscalls/sys_enter")
int sys_enter(struct trace_event_raw_sys_enter *ctx)
{
	if (filter_pid && (__u32)(bpf_get_current_pid_tgid() >> 32) != filter_pid)
		return 0;

	/* `id` is a long: 4 bytes on a 32-bit kernel. Zero-extended, so -1 lands out of range. */
	__u64 id = EP_CORE_READ(ctx, id);
	if (id >= MAX_SYSCALL_NR)
		return 0;

	__u32 key = (__u32)id;
	__u64 *count = bpf_map_lookup_elem(&counts, &key);
	if (count)
		*count += 1; /* this CPU's slot: no atomic needed */
	return 0;
}
