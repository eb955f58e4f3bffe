/*
 * biosnoop — every block I/O request: the process that issued it, the disk, read or write, the sector,
 * the size and the latency, in the columns of BCC's `biosnoop` (COMM PID DISK T SECTOR BYTES LAT; the
 * disk as MAJ:MIN, T as the kernel's rwbs string: R, W, WS, FF..., the latency in microseconds).
 * Options: -d MAJ_MIN (this disk only: major << 20 | minor, as `ls -l /dev/X` shows it), -Q (latency
 * from the queueing in the kernel, not the issue to the device). Attach points: tracepoints
 * block/block_rq_insert, block/block_rq_issue and block/block_rq_complete; a request is known by its
 * device and first sector. Maps: `start` (HASH, (dev, sector) → time, pid and comm of the issuer),
 * `events` (RINGBUF, 256 KiB, perf buffer before 5.8) and its lost-record counter (ebpf_pack.h).
 * Kernel: block tracepoints and BTF (CO-RE). No atomics: loads on 32-bit ARM with JIT.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "ebpf_pack.h"

char LICENSE[] SEC("license") = "GPL";

/* One completed request, in BCC's column order. 16 + 4 + 4 + 8 + 8 + 4 + 4 bytes: 48, no padding. */
struct event {
	char comm[EP_COMM_LEN];
	__u32 pid;
	ep_dev_t disk;
	char t[8];     /* rwbs: R read, W write, S sync, F flush, D discard, M metadata ... */
	__u64 sector;
	__u32 bytes;
	__u32 lat_us;
};

struct request_id {
	__u32 dev;
	__u32 __pad;
	__u64 sector;
};

/* What the issue (or queueing) keeps for the completion. */
struct issue {
	__u64 ts;
	__u32 pid;
	__u32 bytes;
	char comm[EP_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct request_id);
	__type(value, struct issue);
} start EP_SCRATCH SEC(".maps");

EBPF_PACK_EVENTS(events, struct event, 256 * 1024);

const volatile __u32 filter_dev EP_OPTION("-d MAJ_MIN", "this disk only (major << 20 | minor)") = 0;
const volatile bool queued EP_OPTION("-Q", "include the time queued in the kernel") = false;

static __always_inline int started(struct trace_event_raw_block_rq *ctx, bool issue)
{
	struct request_id id = {
		.dev = (__u32)EP_CORE_READ(ctx, dev),
		.sector = EP_CORE_READ(ctx, sector),
	};
	if (filter_dev && id.dev != filter_dev)
		return 0;
	struct issue *known = bpf_map_lookup_elem(&start, &id);
	/* With -Q the queueing starts the clock; the issue only fills in what is missing. */
	if (issue && queued && known)
		return 0;
	struct issue v = {
		.ts = bpf_ktime_get_ns(),
		.pid = bpf_get_current_pid_tgid() >> 32,
		.bytes = (__u32)EP_CORE_READ(ctx, bytes),
	};
	bpf_get_current_comm(v.comm, sizeof(v.comm));
	bpf_map_update_elem(&start, &id, &v, BPF_ANY);
	return 0;
}

SEC("tracepoint/block/block_rq_insert")
int rq_insert(struct trace_event_raw_block_rq *ctx)
{
	return queued ? started(ctx, false) : 0;
}

SEC("tracepoint/block/block_rq_issue")
int rq_issue(struct trace_event_raw_block_rq *ctx)
{
	return started(ctx, true);
}

SEC("tracepoint/block/block_rq_complete")
int rq_complete(struct trace_event_raw_block_rq_completion *ctx)
{
	struct request_id id = {
		.dev = (__u32)EP_CORE_READ(ctx, dev),
		.sector = EP_CORE_READ(ctx, sector),
	};
	struct issue *v = bpf_map_lookup_elem(&start, &id);
	if (!v)
		return 0;
	struct event *e = EP_EVENT_RESERVE(events);
	if (e) {
		__builtin_memcpy(e->comm, v->comm, sizeof(e->comm));
		e->pid = v->pid;
		e->disk = id.dev;
		bpf_probe_read_kernel(e->t, sizeof(e->t), (const void *)ctx + __EP_FIELD_OFFSET(ctx, rwbs));
		e->t[7] = 0;
		e->sector = id.sector;
		e->bytes = v->bytes ? v->bytes : (__u32)EP_CORE_READ(ctx, nr_sector) * 512;
		e->lat_us = (__u32)ep_ns_to_us(bpf_ktime_get_ns() - v->ts);
		EP_EVENT_SUBMIT(ctx, events, e);
	}
	bpf_map_delete_elem(&start, &id);
	return 0;
}
