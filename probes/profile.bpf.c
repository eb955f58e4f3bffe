/*
 * profile — CPU samples with their kernel and user stacks, counted per stack: what BCC's `profile -f`
 * prints (folded stacks, `comm;outer;...;inner count`, kernel frames marked `_[k]`), ready for a flame
 * graph (`ebpf-pack run ... profile --flamegraph FILE.svg`). Usage as BCC's: `profile [-F HZ] [-p PID]
 * [-L TID] [-U | -K] [-I] [-d SECS]`. Attach point: `perf_event/{sample_freq}`: the software cpu-clock
 * event on every CPU at the `-F` rate (no PMU needed: works in VMs). Maps: `counts` (PERCPU_HASH, the
 * process, its two stack ids and comm → samples on that CPU, summed by the loader, so no atomics) and
 * `stacks` (STACK_TRACE, EP_STACK_DEPTH frames each). User stacks are walked through frame pointers:
 * build what you profile with -fno-omit-frame-pointer. Kernel: 4.9+ (perf_event programs), BTF.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "ebpf_pack.h"

char LICENSE[] SEC("license") = "GPL";

/* bpf_get_stackid()'s "sample had no such stack" (-EFAULT). */
#define NO_STACK (-14)

struct sample_key {
	__u32 pid;
	ep_ustack_t user_stack;
	ep_kstack_t kernel_stack;
	char comm[EP_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 2048);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, EP_STACK_DEPTH * sizeof(__u64));
} stacks EP_SCRATCH SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct sample_key);
	__type(value, __u64);
} counts EP_CLEAR SEC(".maps");

const volatile __u32 sample_freq EP_OPTION("-F HZ", "samples per second per CPU (default 49)") = 49;
const volatile __u32 filter_pid EP_OPTION("-p PID", "sample this process id only") = 0;
const volatile __u32 filter_tid EP_OPTION("-L TID", "sample this thread id only") = 0;
const volatile bool user_only EP_OPTION("-U", "user stacks only") = false;
const volatile bool kernel_only EP_OPTION("-K", "kernel stacks only") = false;
const volatile bool include_idle EP_OPTION("-I", "include the CPUs' idle stacks") = false;

SEC("perf_event/{sample_freq}")
int sample(struct bpf_perf_event_data *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32, tid = (__u32)id;

	if (tid == 0 && !include_idle)
		return 0;
	if (filter_pid && tgid != filter_pid)
		return 0;
	if (filter_tid && tid != filter_tid)
		return 0;
	struct sample_key key = { .pid = tgid };
	bpf_get_current_comm(key.comm, sizeof(key.comm));
	key.user_stack = kernel_only ? NO_STACK : bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK);
	key.kernel_stack = user_only ? NO_STACK : bpf_get_stackid(ctx, &stacks, 0);
	__u64 zero = 0;
	__u64 *n = ep_lookup_or_init(&counts, &key, &zero);
	if (!n)
		return 0;
	*n += 1; /* this CPU's copy: no atomic needed */
	return 0;
}
