/*
 * syscount — how often each system call is made, system-wide or by one process, and with -L how long
 * the calls took: what BCC's `syscount` prints (SYSCALL COUNT, and TIME with -L; the host and ebpf-run
 * name the syscalls for the board's arch). Options as BCC's: -p PID, -x (failed calls only), -e ERRNO
 * (calls that failed with this errno only), -L (latency), -T TOP (the TOP busiest, default 10).
 * Attach points: tracepoints raw_syscalls/sys_enter (every syscall entry of every task) and
 * raw_syscalls/sys_exit (the result and, with -L, the time since entry). Maps: `counts` (PERCPU_ARRAY,
 * key __u32 syscall number, value struct syscall_stat: calls and total nanoseconds on that CPU, the CPUs
 * summed by the loader, cleared after each interval like BCC's), `start` (HASH, thread → entry time and
 * number, only with -L, -x or -e). An array needs no inserts, so there are no races, and per-CPU slots
 * need no atomics (32-bit ARM JIT). Numbers outside the array are not counted: x86-64 x32 calls (bit 30
 * set), ARM private calls (0xf0000+), and the ids of compat (32-bit) tasks on a 64-bit kernel are
 * counted under the native numbers. Kernel: raw_syscalls tracepoints (CONFIG_FTRACE_SYSCALLS) and BTF
 * (CO-RE); per-CPU arrays are 4.6+.
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

struct syscall_stat {
	__u64 count;
	__u64 total_ns; /* with -L */
};

/* What sys_enter keeps for sys_exit when the exit decides (-L, -x, -e). */
struct entry {
	__u64 ts;
	__u32 nr;
	__u32 __pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_SYSCALL_NR);
	__type(key, __u32); /* syscall number */
	__type(value, struct syscall_stat);
} counts EP_CLEAR SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct entry);
} start EP_SCRATCH SEC(".maps");

const volatile __u32 filter_pid EP_OPTION("-p PID", "trace this process id only") = 0;
const volatile bool failed_only EP_OPTION("-x", "count failed calls only") = false;
const volatile __u32 filter_errno EP_OPTION("-e ERRNO", "count calls that failed with this errno only") = 0;
const volatile bool latency EP_OPTION("-L", "also total the time spent in each call") = false;
/* The dump shows this many of the busiest syscalls (the loader's `top` convention). */
const volatile __u32 top EP_OPTION("-T TOP", "show the TOP busiest syscalls (0: all)") = 10;

static __always_inline void count(__u32 nr, __u64 ns)
{
	struct syscall_stat *s = bpf_map_lookup_elem(&counts, &nr);

	if (s) {
		s->count += 1; /* this CPU's slot: no atomic needed */
		s->total_ns += ns;
	}
}

SEC("tracepoint/raw_syscalls/sys_enter")
int sys_enter(struct trace_event_raw_sys_enter *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	if (filter_pid && (__u32)(pid_tgid >> 32) != filter_pid)
		return 0;
	/* `id` is a long: 4 bytes on a 32-bit kernel. Zero-extended, so -1 lands out of range. */
	__u64 id = EP_CORE_READ(ctx, id);
	if (id >= MAX_SYSCALL_NR)
		return 0;
	if (!latency && !failed_only && !filter_errno) {
		count((__u32)id, 0);
		return 0;
	}
	struct entry e = { .ts = bpf_ktime_get_ns(), .nr = (__u32)id };
	bpf_map_update_elem(&start, &pid_tgid, &e, BPF_ANY);
	return 0;
}

SEC("tracepoint/raw_syscalls/sys_exit")
int sys_exit(struct trace_event_raw_sys_exit *ctx)
{
	if (!latency && !failed_only && !filter_errno)
		return 0;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct entry *e = bpf_map_lookup_elem(&start, &pid_tgid);
	if (!e)
		return 0;
	__s64 ret = EP_CORE_READ_SIGNED(ctx, ret);
	bool wanted = !(failed_only && ret >= 0) && !(filter_errno && ret != -(__s64)filter_errno);
	if (wanted)
		count(e->nr, latency ? bpf_ktime_get_ns() - e->ts : 0);
	bpf_map_delete_elem(&start, &pid_tgid);
	return 0;
}
