/*
 * funccount — calls of the kernel functions matching a pattern, counted per function: what BCC's
 * `funccount` prints (FUNC COUNT, the functions named from the board's /proc/kallsyms). Usage as
 * BCC's: `funccount [-p PID] PATTERN [interval [count]]`, PATTERN a glob over the functions kprobes
 * can attach to (`vfs_*`, `tcp_send*`; at most 1000). Attach point: `kprobe/{pattern}`: ebpf-run
 * attaches this one program to every function the `pattern` setting matches (kernels without
 * CONFIG_KPROBES cannot run this tool: `ebpf-run --check` says so). Maps: `counts` (PERCPU_HASH,
 * ep_ksym_t function address from bpf_get_func_ip → calls on that CPU, summed by the loader and
 * cleared after each interval, so no atomics). Kernel: 5.15+ (bpf_get_func_ip in kprobes), BTF.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "ebpf_pack.h"

char LICENSE[] SEC("license") = "GPL";

struct func {
	ep_ksym_t func;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 1024);
	__type(key, struct func);
	__type(value, __u64);
} counts EP_CLEAR SEC(".maps");

const volatile char pattern[64] EP_OPTION("PATTERN", "kernel functions to count: a glob such as 'vfs_*'") = "";
const volatile __u32 filter_pid EP_OPTION("-p PID", "count calls by this process id only") = 0;

SEC("kprobe/{pattern}")
int count_call(struct pt_regs *ctx)
{
	if (filter_pid && (__u32)(bpf_get_current_pid_tgid() >> 32) != filter_pid)
		return 0;
	struct func key = { .func = bpf_get_func_ip(ctx) };
	__u64 zero = 0;
	__u64 *n = ep_lookup_or_init(&counts, &key, &zero);
	if (!n)
		return 0;
	*n += 1; /* this CPU's copy: no atomic needed */
	return 0;
}
