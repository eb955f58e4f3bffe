/*
 * funccount — calls of the functions matching a pattern, counted per function: what BCC's
 * `funccount` prints (FUNC COUNT). Usage as BCC's: `funccount [-p PID] PATTERN [interval [count]]`:
 * - PATTERN a glob over the kernel functions kprobes can attach to (`vfs_*`, `tcp_send*`), named from
 *   the board's /proc/kallsyms; attach point `kprobe/{pattern}` (kernels without CONFIG_KPROBES cannot
 *   count kernel functions: `ebpf-run --check` says so);
 * - or LIB:PATTERN / PATH:PATTERN (`c:malloc*`, `/usr/bin/app:handle_*`), a glob over the functions of
 *   a library or binary; attach point `uprobe/{pattern}`, each function with its BPF cookie.
 * ebpf-run attaches the one program the pattern is for to every match (at most 1000). Maps: `counts`
 * (kernel: ep_ksym_t function address from bpf_get_func_ip) and `ucounts` (user: ep_probe_t cookie),
 * PERCPU_HASH → calls on that CPU, summed by the loader and cleared after each interval, so no
 * atomics. Kernel: 5.15+ (bpf_get_func_ip in kprobes, attach cookies on uprobes), BTF.
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

struct ufunc {
	ep_probe_t func;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 1024);
	__type(key, struct ufunc);
	__type(value, __u64);
} ucounts EP_CLEAR SEC(".maps");

const volatile char pattern[128] EP_OPTION("PATTERN", "functions to count: a kernel glob such as 'vfs_*', or LIB:GLOB / PATH:GLOB such as 'c:malloc*'") = "";
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

SEC("uprobe/{pattern}")
int count_user_call(struct pt_regs *ctx)
{
	if (filter_pid && (__u32)(bpf_get_current_pid_tgid() >> 32) != filter_pid)
		return 0;
	struct ufunc key = { .func = bpf_get_attach_cookie(ctx) };
	__u64 zero = 0;
	__u64 *n = ep_lookup_or_init(&ucounts, &key, &zero);
	if (!n)
		return 0;
	*n += 1;
	return 0;
}
