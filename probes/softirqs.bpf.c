/*
 * softirqs — time spent in each kind of soft interrupt, as BCC's `softirqs` prints it: one row per
 * softirq (hi, timer, net_tx, net_rx, block, irq_poll, tasklet, sched, hrtimer, rcu) with the total time
 * in nanoseconds and how often it ran; with -d a log2 histogram of each one's run time in microseconds
 * instead. Attach points: tracepoints irq/softirq_entry and irq/softirq_exit. Maps: `entered`
 * (PERCPU_ARRAY: when this CPU's current softirq started; softirqs do not nest on a CPU), `softirqs`
 * (PERCPU_HASH, enum softirq → struct softirq_time) and `hist_us` (PERCPU_HASH, enum softirq → struct
 * hist, with -d); the loader sums the CPUs, so no atomics. Kernel: irq tracepoints and BTF (CO-RE).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "ebpf_pack.h"

char LICENSE[] SEC("license") = "GPL";

/* The kernel's softirq vectors (include/linux/interrupt.h), named as BCC prints them. */
enum softirq {
	EP__hi = 0,
	EP__timer = 1,
	EP__net_tx = 2,
	EP__net_rx = 3,
	EP__block = 4,
	EP__irq_poll = 5,
	EP__tasklet = 6,
	EP__sched = 7,
	EP__hrtimer = 8,
	EP__rcu = 9,
};

struct softirq_time {
	__u64 total_ns;
	__u64 count;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64); /* ns; 0 when no softirq runs */
} entered EP_SCRATCH SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16);
	__type(key, enum softirq);
	__type(value, struct softirq_time);
} softirqs EP_CLEAR SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16);
	__type(key, enum softirq);
	__type(value, struct ep_hist);
} hist_us EP_CLEAR SEC(".maps");

const volatile bool distribution EP_OPTION("-d", "show each softirq's run time as a histogram") = false;

SEC("tracepoint/irq/softirq_entry")
int softirq_entry(struct trace_event_raw_softirq *ctx)
{
	__u32 zero = 0;
	__u64 *at = bpf_map_lookup_elem(&entered, &zero);

	if (at)
		*at = bpf_ktime_get_ns();
	return 0;
}

SEC("tracepoint/irq/softirq_exit")
int softirq_exit(struct trace_event_raw_softirq *ctx)
{
	__u32 zero = 0;
	__u64 *at = bpf_map_lookup_elem(&entered, &zero);

	if (!at || !*at)
		return 0;
	__u64 delta = bpf_ktime_get_ns() - *at;
	*at = 0;
	enum softirq vec = (enum softirq)EP_CORE_READ(ctx, vec);

	if (distribution) {
		ep_hist_add_us(&hist_us, &vec, delta);
		return 0;
	}
	struct softirq_time empty = {};
	struct softirq_time *t = ep_lookup_or_init(&softirqs, &vec, &empty);
	if (!t)
		return 0;
	t->total_ns += delta; /* this CPU's copy: no atomic needed */
	t->count += 1;
	return 0;
}
