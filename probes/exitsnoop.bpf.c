/*
 * exitsnoop — every process exit: name, process id, parent's process id, thread id, age, exit code and
 * the signal that ended it, in the columns of BCC's `exitsnoop` (PCOMM PID PPID TID AGE EXIT_CODE SIG;
 * the age in milliseconds). Options as BCC's: -p PID, -x (failed only: a non-zero exit or a signal),
 * -T (threads too: every thread's exit, not only the last one of a process). Attach point: tracepoint
 * sched/sched_process_exit (in the exiting task, after exit_code is set). Maps: `events` (RINGBUF,
 * 256 KiB, perf buffer before 5.8) and its lost-record counter (ebpf_pack.h). The age is now minus
 * the process's start_time (CLOCK_MONOTONIC, like bpf_ktime_get_ns). Kernel: BTF (CO-RE); the
 * tracepoint exists wherever tracepoints do. No atomics: loads on 32-bit ARM with JIT.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "ebpf_pack.h"

char LICENSE[] SEC("license") = "GPL";

/* One exit, in BCC's column order. 16 + 6 x 4 bytes: 40 bytes, no padding. */
struct event {
	char pcomm[EP_COMM_LEN];
	__u32 pid;  /* process id (tgid) */
	__u32 ppid; /* parent's process id */
	__u32 tid;  /* thread id */
	__u32 age_ms;    /* milliseconds since the process started (wraps after 49 days) */
	__s32 exit_code; /* exit status (exit(2) argument), 0 when a signal ended it */
	__s32 sig;       /* signal that ended it, 0 on a normal exit */
};

EBPF_PACK_EVENTS(events, struct event, 256 * 1024);

const volatile __u32 filter_pid EP_OPTION("-p PID", "trace this process id only") = 0;
const volatile bool failed_only EP_OPTION("-x", "only show failed exits (non-zero code or a signal)") = false;
const volatile bool trace_threads EP_OPTION("-T", "show every thread's exit, not only the process's") = false;

/* The task_struct fields used, as a CO-RE flavour (see execsnoop.bpf.c). */
struct task_struct___ep {
	pid_t pid;
	pid_t tgid;
	int exit_code;
	u64 start_time;
	struct task_struct___ep *real_parent;
	struct task_struct___ep *group_leader;
	struct signal_struct *signal;
} __attribute__((preserve_access_index));

struct signal_struct___ep {
	atomic_t live;
} __attribute__((preserve_access_index));

SEC("tracepoint/sched/sched_process_exit")
int handle_exit(void *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 pid = pid_tgid >> 32, tid = (__u32)pid_tgid;
	struct task_struct___ep *task = (struct task_struct___ep *)bpf_get_current_task();

	if (filter_pid && pid != filter_pid)
		return 0;
	/* A process ends with its last thread: signal->live has dropped to 0 by now. */
	if (!trace_threads) {
		struct signal_struct___ep *sig = EP_CORE_READ_PTR(task, signal);
		if (sig && EP_CORE_READ(sig, live.counter) != 0)
			return 0;
	}
	__u32 code = (__u32)EP_CORE_READ(task, exit_code);
	if (failed_only && code == 0)
		return 0;

	struct event *e = EP_EVENT_RESERVE(events);
	if (!e)
		return 0;
	struct task_struct___ep *parent = EP_CORE_READ_PTR(task, real_parent);
	struct task_struct___ep *leader = EP_CORE_READ_PTR(task, group_leader);
	__u64 start = leader ? EP_CORE_READ(leader, start_time) : 0;
	__u64 now = bpf_ktime_get_ns();

	bpf_get_current_comm(e->pcomm, sizeof(e->pcomm));
	e->pid = pid;
	e->tid = tid;
	e->ppid = parent ? (__u32)EP_CORE_READ(parent, tgid) : 0;
	e->age_ms = start && now > start ? (__u32)ep_ns_to_ms(now - start) : 0;
	e->exit_code = (code >> 8) & 0xff;
	e->sig = code & 0x7f;
	EP_EVENT_SUBMIT(ctx, events, e);
	return 0;
}
