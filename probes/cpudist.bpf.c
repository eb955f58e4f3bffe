/*
 * cpudist — how long tasks run on a CPU each time they are scheduled (or, with -O, how long they stay
 * off it), as a log2 histogram in microseconds for all tasks, per process (-P) or per thread (-L): what
 * BCC's `cpudist` prints. Options as BCC's: -O (off-CPU time), -p PID (this process only), -P, -L.
 * Attach point: raw tracepoint sched_switch (task pointers, every arch since 4.17). Maps: `start`
 * (HASH, thread id → when it was switched in, or out with -O), `hist_us` (PERCPU_HASH, struct
 * task_key → struct ep_hist: 27 log2 slots, CPUs summed by the loader, no atomics). Kernel: BTF (CO-RE),
 * raw tracepoints.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "ebpf_pack.h"

char LICENSE[] SEC("license") = "GPL";

struct task_key {
	__u32 pid; /* process id with -P, thread id with -L, else 0 */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);   /* thread id */
	__type(value, __u64); /* ns */
} start EP_SCRATCH SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 10240);
	__type(key, struct task_key);
	__type(value, struct ep_hist);
} hist_us EP_CLEAR SEC(".maps");

const volatile bool offcpu EP_OPTION("-O", "measure off-CPU time instead") = false;
const volatile __u32 filter_pid EP_OPTION("-p PID", "trace this process id only") = 0;
const volatile bool per_process EP_OPTION("-P", "one histogram per process id") = false;
const volatile bool per_thread EP_OPTION("-L", "one histogram per thread id") = false;

/* Starts the clock of `task` (tid 0, the idle task, is never measured). */
static __always_inline void mark(struct task_struct___ep_sched *task, __u64 now)
{
	__u32 tid = (__u32)EP_CORE_READ(task, pid);

	if (!tid || (filter_pid && (__u32)EP_CORE_READ(task, tgid) != filter_pid))
		return;
	bpf_map_update_elem(&start, &tid, &now, BPF_ANY);
}

/* Stops the clock of `task` and counts the time in its histogram. */
static __always_inline void count(struct task_struct___ep_sched *task, __u64 now)
{
	__u32 tid = (__u32)EP_CORE_READ(task, pid);
	__u64 *at = bpf_map_lookup_elem(&start, &tid);

	if (!at)
		return;
	__u64 delta = now - *at;
	bpf_map_delete_elem(&start, &tid);

	struct task_key key = { .pid = per_process ? (__u32)EP_CORE_READ(task, tgid) : per_thread ? tid : 0 };
	ep_hist_add_us(&hist_us, &key, delta);
}

/* sched_switch(bool preempt, struct task_struct *prev, struct task_struct *next[, prev_state]) */
SEC("raw_tracepoint/sched_switch")
int sched_switch(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct___ep_sched *prev = EP_RAW_ARG(ctx, 1);
	struct task_struct___ep_sched *next = EP_RAW_ARG(ctx, 2);
	__u64 now = bpf_ktime_get_ns();

	if (offcpu) {
		mark(prev, now);
		count(next, now);
	} else {
		count(prev, now);
		mark(next, now);
	}
	return 0;
}
