/*
 * killsnoop — every signal sent with kill(2), tkill(2) and tgkill(2): who sent which signal to which
 * process, and the result, in the columns of BCC's `killsnoop` (PID COMM SIG TPID RESULT). Options as
 * BCC's: -p PID (sender), -x (failed only), -s SIGNAL (this signal number only). Attach points:
 * tracepoints syscalls/sys_enter_{kill,tkill,tgkill} (the target and signal, kept per thread) and
 * syscalls/sys_exit_{kill,tkill,tgkill} (the result). Maps: `sends` (HASH, key pid_tgid → target and
 * signal), `events` (RINGBUF, 256 KiB, perf buffer before 5.8) and its lost-record counter
 * (ebpf_pack.h). Kernel: syscall tracepoints (CONFIG_FTRACE_SYSCALLS) and BTF (CO-RE). No atomics.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "ebpf_pack.h"

char LICENSE[] SEC("license") = "GPL";

/* One signal sent, in BCC's column order. 4 + 16 + 3 x 4 bytes: 32 bytes, no padding. */
struct event {
	__u32 pid; /* sender's process id */
	char comm[EP_COMM_LEN];
	__s32 sig;    /* signal number (0: only a check that the target exists) */
	__s32 tpid;   /* target: process id (kill, tgkill) or thread id (tkill); may be negative (a group) */
	__s32 result; /* 0, or -errno */
};

/* What sys_enter keeps for sys_exit. */
struct send {
	__s32 tpid;
	__s32 sig;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct send);
} sends EP_SCRATCH SEC(".maps");

EBPF_PACK_EVENTS(events, struct event, 256 * 1024);

const volatile __u32 filter_pid EP_OPTION("-p PID", "trace signals sent by this process id only") = 0;
const volatile bool failed_only EP_OPTION("-x", "only show failed sends") = false;
const volatile __s32 filter_sig EP_OPTION("-s SIGNAL", "trace this signal number only") = 0;

static __always_inline int enter(__s64 tpid, __s64 sig)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	if (filter_pid && (__u32)(pid_tgid >> 32) != filter_pid)
		return 0;
	if (filter_sig && sig != filter_sig)
		return 0;
	struct send s = { .tpid = (__s32)tpid, .sig = (__s32)sig };
	bpf_map_update_elem(&sends, &pid_tgid, &s, BPF_ANY);
	return 0;
}

static __always_inline int leave(void *ctx, __s64 ret)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct send *s = bpf_map_lookup_elem(&sends, &pid_tgid);

	if (!s)
		return 0;
	if (failed_only && ret >= 0)
		goto done;
	struct event *e = EP_EVENT_RESERVE(events);
	if (e) {
		e->pid = pid_tgid >> 32;
		bpf_get_current_comm(e->comm, sizeof(e->comm));
		e->sig = s->sig;
		e->tpid = s->tpid;
		e->result = (__s32)ret;
		EP_EVENT_SUBMIT(ctx, events, e);
	}
done:
	bpf_map_delete_elem(&sends, &pid_tgid);
	return 0;
}

/* kill(pid, sig) and tkill(tid, sig): args[0], args[1], pid_t and int read signed with their kernel
 * sizes (ebpf_pack.h). */
SEC("tracepoint/syscalls/sys_enter_kill")
int enter_kill(struct trace_event_raw_sys_enter *ctx)
{
	return enter(EP_CORE_READ_SIGNED(ctx, args[0]), EP_CORE_READ_SIGNED(ctx, args[1]));
}

SEC("tracepoint/syscalls/sys_exit_kill")
int exit_kill(struct trace_event_raw_sys_exit *ctx)
{
	return leave(ctx, EP_CORE_READ_SIGNED(ctx, ret));
}

SEC("tracepoint/syscalls/sys_enter_tkill")
int enter_tkill(struct trace_event_raw_sys_enter *ctx)
{
	return enter(EP_CORE_READ_SIGNED(ctx, args[0]), EP_CORE_READ_SIGNED(ctx, args[1]));
}

SEC("tracepoint/syscalls/sys_exit_tkill")
int exit_tkill(struct trace_event_raw_sys_exit *ctx)
{
	return leave(ctx, EP_CORE_READ_SIGNED(ctx, ret));
}

/* tgkill(tgid, tid, sig): the process and the signal, args[0] and args[2]. */
SEC("tracepoint/syscalls/sys_enter_tgkill")
int enter_tgkill(struct trace_event_raw_sys_enter *ctx)
{
	return enter(EP_CORE_READ_SIGNED(ctx, args[0]), EP_CORE_READ_SIGNED(ctx, args[2]));
}

SEC("tracepoint/syscalls/sys_exit_tgkill")
int exit_tgkill(struct trace_event_raw_sys_exit *ctx)
{
	return leave(ctx, EP_CORE_READ_SIGNED(ctx, ret));
}
