/*
 * hello — one line for every new process: who forked it (process id, user id, task name) and the
 * new process's id. Attach point: tracepoint sched/sched_process_fork, which fires in the parent.
 *
 * Written to run on every board ebpf-pack builds for:
 * - CO-RE: the tracepoint record is read with EP_CORE_READ (ebpf_pack.h), which relocates the field's
 *   offset *and size* to the running kernel, so it is right on 32-bit kernels and on big-endian ones;
 * - no BPF atomics (the 32-bit ARM JIT cannot emit them);
 * - events go through EBPF_PACK_EVENTS: a ring buffer, or a perf buffer on kernels before 5.8;
 * - the record uses fixed-size integers and char arrays with no padding, so the loader decodes it
 *   through the object's BTF the same way on every board.
 *
 * Build: ebpf-pack build            Run on the board: ./ebpf-run hello
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "ebpf_pack.h"

char LICENSE[] SEC("license") = "GPL";

/* One new process: 3 x 4 bytes, then the task name. 28 bytes, no padding. */
struct event {
	__u32 ppid; /* process id (tgid) of the parent */
	__u32 pid;  /* process id of the new process */
	__u32 uid;  /* user id of the parent */
	char comm[EP_COMM_LEN]; /* task name of the parent */
};

EBPF_PACK_EVENTS(events, struct event, 64 * 1024);

/* Set with `ebpf-run hello --set target_uid=1000` to see one user's processes only. */
const volatile __u32 target_uid = (__u32)-1;

SEC("tracepoint/sched/sched_process_fork")
int handle_fork(struct trace_event_raw_sched_process_fork *ctx)
{
	__u32 uid = (__u32)bpf_get_current_uid_gid();
	if (target_uid != (__u32)-1 && uid != target_uid)
		return 0;
	struct event *e = EP_EVENT_RESERVE(events);
	if (!e)
		return 0;
	/* The record's parent_pid is the forking *thread*; the process is the tgid. */
	e->ppid = (__u32)(bpf_get_current_pid_tgid() >> 32);
	e->pid = (__u32)EP_CORE_READ(ctx, child_pid);
	e->uid = uid;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	EP_EVENT_SUBMIT(ctx, events, e);
	return 0;
}
