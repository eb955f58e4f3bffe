/*
 * hardirqs — time spent in each hardware interrupt handler, by the handler's name (as
 * /proc/interrupts names it), as BCC's `hardirqs` prints it: one row per interrupt with the total time in
 * nanoseconds and how often it ran; with -d a log2 histogram of each one's run time in microseconds
 * instead. Attach points: tracepoints irq/irq_handler_entry and irq/irq_handler_exit. Maps: `entered`
 * (PERCPU_ARRAY: this CPU's current handler and when it started), `hardirqs` (PERCPU_HASH, struct irq
 * (name) → struct irq_time), `hist_us` (PERCPU_HASH, struct irq → struct ep_hist, with -d); the loader
 * sums the CPUs, so no atomics. Kernel: irq tracepoints and BTF (CO-RE).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "ebpf_pack.h"

char LICENSE[] SEC("license") = "GPL";

#define IRQ_NAME_LEN 32

struct irq {
	char name[IRQ_NAME_LEN];
};

struct irq_time {
	__u64 total_ns;
	__u64 count;
};

/* The handler running on this CPU. */
struct running {
	__u64 ts;
	struct irq irq;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct running);
} entered EP_SCRATCH SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 256);
	__type(key, struct irq);
	__type(value, struct irq_time);
} hardirqs EP_CLEAR SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 256);
	__type(key, struct irq);
	__type(value, struct ep_hist);
} hist_us EP_CLEAR SEC(".maps");

const volatile bool distribution EP_OPTION("-d", "show each interrupt's run time as a histogram") = false;

SEC("tracepoint/irq/irq_handler_entry")
int irq_entry(struct trace_event_raw_irq_handler_entry *ctx)
{
	__u32 zero = 0;
	struct running *r = bpf_map_lookup_elem(&entered, &zero);

	if (!r)
		return 0;
	/* __data_loc: low 16 bits = offset of the name from the start of the record. */
	__u32 loc = (__u32)EP_CORE_READ(ctx, __data_loc_name);
	__builtin_memset(&r->irq, 0, sizeof(r->irq));
	bpf_probe_read_kernel_str(r->irq.name, sizeof(r->irq.name), (const void *)ctx + (loc & 0xFFFF));
	r->ts = bpf_ktime_get_ns();
	return 0;
}

SEC("tracepoint/irq/irq_handler_exit")
int irq_exit(struct trace_event_raw_irq_handler_exit *ctx)
{
	__u32 zero = 0;
	struct running *r = bpf_map_lookup_elem(&entered, &zero);

	if (!r || !r->ts)
		return 0;
	__u64 delta = bpf_ktime_get_ns() - r->ts;
	r->ts = 0;

	if (distribution) {
		ep_hist_add_us(&hist_us, &r->irq, delta);
		return 0;
	}
	struct irq_time empty = {};
	struct irq_time *t = ep_lookup_or_init(&hardirqs, &r->irq, &empty);
	if (!t)
		return 0;
	t->total_ns += delta; /* this CPU's copy: no atomic needed */
	t->count += 1;
	return 0;
}
