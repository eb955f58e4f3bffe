/*
 * biolatency — block I/O latency as a log2 histogram in microseconds, from the moment a request is
 * issued to the device (or, with -Q, queued in the kernel) to its completion, for all disks or, with -D,
 * one histogram per disk: what BCC's `biolatency` prints ("usecs : count distribution", "disk = MAJ:MIN").
 * Attach points: tracepoints block/block_rq_insert, block/block_rq_issue and block/block_rq_complete; a
 * request is known by its device and first sector. Maps: `start` (HASH, (dev, sector) → time),
 * `hist_us` (PERCPU_HASH, key struct disk: the device, 0 without -D → struct ep_hist: 27 log2 slots, the
 * CPUs summed by the loader, so no atomics). Kernel: block tracepoints and BTF (CO-RE).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "ebpf_pack.h"

char LICENSE[] SEC("license") = "GPL";

/* A request in flight: its device and first sector. 16 bytes, padding explicit. */
struct request_id {
	__u32 dev;
	__u32 __pad;
	__u64 sector;
};

struct disk {
	ep_dev_t disk; /* 0:0 when the histogram is not per disk */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct request_id);
	__type(value, __u64); /* ns */
} start EP_SCRATCH SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 256);
	__type(key, struct disk);
	__type(value, struct ep_hist);
} hist_us EP_CLEAR SEC(".maps");

const volatile bool per_disk EP_OPTION("-D", "one histogram per disk") = false;
const volatile bool queued EP_OPTION("-Q", "include the time queued in the kernel") = false;

static __always_inline int started(struct trace_event_raw_block_rq *ctx)
{
	struct request_id id = {
		.dev = (__u32)EP_CORE_READ(ctx, dev),
		.sector = EP_CORE_READ(ctx, sector),
	};
	__u64 now = bpf_ktime_get_ns();

	bpf_map_update_elem(&start, &id, &now, BPF_ANY);
	return 0;
}

SEC("tracepoint/block/block_rq_insert")
int rq_insert(struct trace_event_raw_block_rq *ctx)
{
	return queued ? started(ctx) : 0;
}

SEC("tracepoint/block/block_rq_issue")
int rq_issue(struct trace_event_raw_block_rq *ctx)
{
	if (queued) {
		/* Requests that skipped the queue (no insert) start here. */
		struct request_id id = {
			.dev = (__u32)EP_CORE_READ(ctx, dev),
			.sector = EP_CORE_READ(ctx, sector),
		};
		if (bpf_map_lookup_elem(&start, &id))
			return 0;
	}
	return started(ctx);
}

SEC("tracepoint/block/block_rq_complete")
int rq_complete(struct trace_event_raw_block_rq_completion *ctx)
{
	struct request_id id = {
		.dev = (__u32)EP_CORE_READ(ctx, dev),
		.sector = EP_CORE_READ(ctx, sector),
	};
	__u64 *at = bpf_map_lookup_elem(&start, &id);
	if (!at)
		return 0;
	__u64 delta = bpf_ktime_get_ns() - *at;
	bpf_map_delete_elem(&start, &id);

	struct disk key = { .disk = per_disk ? id.dev : 0 };
	ep_hist_add_us(&hist_us, &key, delta);
	return 0;
}
