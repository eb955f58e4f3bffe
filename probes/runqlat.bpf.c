/*
 * runqlat — run-queue (scheduler) latency as a log2 histogram in microseconds: how long runnable tasks
 * waited for a CPU, from the wakeup (or preemption) to running, for all tasks or per process (-P) or
 * per thread (-L), as BCC's `runqlat` prints it ("usecs : count distribution", "pid = N"). Options as
 * BCC's: -p PID (this process only), -P, -L. Attach points: raw tracepoints sched_wakeup,
 * sched_wakeup_new and sched_switch (task pointers, on every arch since 4.17; no fentry/tp_btf, which
 * 32-bit ARM lacks). Maps: `start` (HASH, thread id → time it became runnable), `hist_us`
 * (PERCPU_HASH, struct task_key → struct ep_hist: 27 log2 slots, the CPUs summed by the loader, so no
 * atomics). Kernel: BTF (CO-RE), raw tracepoints.
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

const volatile __u32 filter_pid EP_OPTION("-p PID", "trace this process id only") = 0;
const volatile bool per_process EP_OPTION("-P", "one histogram per process id") = false;
const volatile bool per_thread EP_OPTION("-L", "one histogram per thread id") = false;

static __always_inline int runnable(struct task_struct___ep_sched *task)
{
	__u32 tgid = (__u32)EP_CORE_READ(task, tgid);
	__u32 tid = (__u32)EP_CORE_READ(task, pid);

	if (!tid || (filter_pid && tgid != filter_pid))
		return 0;
	__u64 now = bpf_ktime_get_ns();
	bpf_map_update_elem(&start, &tid, &now, BPF_ANY);
	return 0;
}

/* sched_wakeup(struct task_struct *p) */
SEC("raw_tracepoint/sched_wakeup")
int sched_wakeup(struct bpf_raw_tracepoint_args *ctx)
{
	return runnable(EP_RAW_ARG(ctx, 0));
}

SEC("raw_tracepoint/sched_wakeup_new")
int sched_wakeup_new(struct bpf_raw_tracepoint_args *ctx)
{
	return runnable(EP_RAW_ARG(ctx, 0));
}

/* sched_switch(bool preempt, struct task_struct *prev, struct task_struct *next[, prev_state]) */
SEC("raw_tracepoint/sched_switch")
int sched_switch(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct___ep_sched *prev = EP_RAW_ARG(ctx, 1);
	struct task_struct___ep_sched *next = EP_RAW_ARG(ctx, 2);

	/* A task preempted while runnable waits in the run queue from now on. */
	if (ep_task_state(prev) == EP_TASK_RUNNING)
		runnable(prev);

	__u32 tid = (__u32)EP_CORE_READ(next, pid);
	__u64 *at = bpf_map_lookup_elem(&start, &tid);
	if (!at)
		return 0;
	__u64 delta = bpf_ktime_get_ns() - *at;
	bpf_map_delete_elem(&start, &tid);

	struct task_key key = { .pid = per_process ? (__u32)EP_CORE_READ(next, tgid) : per_thread ? tid : 0 };
	ep_hist_add_us(&hist_us, &key, delta);
	return 0;
}
