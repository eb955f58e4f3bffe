/*
 * oomkill — every process the kernel's out-of-memory killer chooses: who triggered it (the task whose
 * allocation failed), who is killed and its size in pages, in the fields of BCC's `oomkill` line
 * ("Triggered by PID TPID ("TCOMM"), OOM kill of PID KPID ("KCOMM"), PAGES pages"). Attach point:
 * tracepoint oom/mark_victim (BCC hooks oom_kill_process with a kprobe, which not every board's kernel
 * has); it runs in the triggering task. The victim's name and size come from the record where the
 * kernel has them (6.8+: comm and total_vm), else they are left empty and 0. Maps: `events` (RINGBUF,
 * 256 KiB, perf buffer before 5.8) and its lost-record counter (ebpf_pack.h). Kernel: BTF (CO-RE).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "ebpf_pack.h"

char LICENSE[] SEC("license") = "GPL";

/* One kill. 4 + 16 + 4 + 16 + 8 bytes: 48, no padding. */
struct event {
	__u32 tpid; /* triggering process */
	char tcomm[EP_COMM_LEN];
	__u32 kpid; /* killed process */
	char kcomm[EP_COMM_LEN];
	__u64 pages; /* the victim's total_vm */
};

EBPF_PACK_EVENTS(events, struct event, 256 * 1024);

/* The 6.8+ fields of the record, as a flavour. */
struct trace_event_raw_mark_victim___ep {
	int pid;
	u32 __data_loc_comm;
	unsigned long total_vm;
} __attribute__((preserve_access_index));

SEC("tracepoint/oom/mark_victim")
int mark_victim(struct trace_event_raw_mark_victim___ep *ctx)
{
	struct event *e = EP_EVENT_RESERVE(events);
	if (!e)
		return 0;
	e->tpid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(e->tcomm, sizeof(e->tcomm));
	e->kpid = (__u32)EP_CORE_READ(ctx, pid);
	e->kcomm[0] = 0;
	e->pages = 0;
	if (bpf_core_field_exists(ctx->__data_loc_comm)) {
		__u32 loc = (__u32)EP_CORE_READ(ctx, __data_loc_comm);
		bpf_probe_read_kernel_str(e->kcomm, sizeof(e->kcomm), (const void *)ctx + (loc & 0xFFFF));
		e->pages = EP_CORE_READ(ctx, total_vm);
	}
	EP_EVENT_SUBMIT(ctx, events, e);
	return 0;
}
