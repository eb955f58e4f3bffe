/*
 * mountsnoop — every mount(2) and umount(2) on the system: who called it, in which mount namespace,
 * with which arguments, and the result, in the columns of BCC's `mountsnoop` (COMM PID TID MNT_NS CALL;
 * the call as its fields: op, source, target, fstype, flags, data, ret). Option as BCC's: -p PID.
 * Attach points: tracepoints syscalls/sys_enter_mount / sys_exit_mount and sys_enter_umount /
 * sys_exit_umount (the umount2 syscall; SYSCALL_DEFINE names it umount). Maps: `calls` (HASH, key
 * pid_tgid → the user pointers and flags, from entry to exit), `events` (RINGBUF, 256 KiB, perf
 * buffer before 5.8) and its lost-record counter (ebpf_pack.h). The strings are read at exit. The
 * namespace is task->nsproxy->mnt_ns->ns.inum, as `ls -l /proc/PID/ns/mnt` shows it. Kernel: syscall
 * tracepoints (CONFIG_FTRACE_SYSCALLS) and BTF (CO-RE). No atomics: loads on 32-bit ARM with JIT.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "ebpf_pack.h"

char LICENSE[] SEC("license") = "GPL";

#define NAME_LEN 64

/* Which call. An enum: ebpf-run prints its name. */
enum mount_op {
	EP__MOUNT = 0,
	EP__UMOUNT = 1,
};

/* One call, in BCC's column order. 16 + 4 x 4 + 4 + 4 + 4 + strings: 304 bytes, no padding. */
struct event {
	char comm[EP_COMM_LEN];
	__u32 pid;
	__u32 tid;
	__u32 mnt_ns;
	enum mount_op op;
	__u32 flags; /* MS_* for mount, MNT_* for umount */
	__s32 ret;   /* 0, or -errno */
	char source[NAME_LEN];
	char target[NAME_LEN];
	char fstype[16];
	char data[NAME_LEN];
};

/* What sys_enter keeps for sys_exit: user pointers (0 when absent) and the flags. */
struct call {
	__u64 source, target, fstype, data;
	__u32 flags;
	enum mount_op op;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct call);
} calls EP_SCRATCH SEC(".maps");

EBPF_PACK_EVENTS(events, struct event, 256 * 1024);

const volatile __u32 filter_pid EP_OPTION("-p PID", "trace this process id only") = 0;

struct task_struct___ep {
	struct nsproxy *nsproxy;
} __attribute__((preserve_access_index));

static __always_inline int enter(struct call *c)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	if (filter_pid && (__u32)(pid_tgid >> 32) != filter_pid)
		return 0;
	bpf_map_update_elem(&calls, &pid_tgid, c, BPF_ANY);
	return 0;
}

/* The string at user address `src` into `dst` ("" when there is none or it cannot be read). */
static __always_inline void user_str(char *dst, __u32 size, __u64 src)
{
	dst[0] = 0;
	if (src)
		bpf_probe_read_user_str(dst, size, (const void *)(unsigned long)src);
}

static __always_inline int leave(void *ctx, __s64 ret)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct call *c = bpf_map_lookup_elem(&calls, &pid_tgid);

	if (!c)
		return 0;
	struct event *e = EP_EVENT_RESERVE(events);
	if (e) {
		struct task_struct___ep *task = (struct task_struct___ep *)bpf_get_current_task();
		struct nsproxy *ns = EP_CORE_READ_PTR(task, nsproxy);
		struct mnt_namespace *mnt = ns ? EP_CORE_READ_PTR(ns, mnt_ns) : 0;

		bpf_get_current_comm(e->comm, sizeof(e->comm));
		e->pid = pid_tgid >> 32;
		e->tid = (__u32)pid_tgid;
		e->mnt_ns = mnt ? (__u32)EP_CORE_READ(mnt, ns.inum) : 0;
		e->op = c->op;
		e->flags = c->flags;
		e->ret = (__s32)ret;
		user_str(e->source, sizeof(e->source), c->source);
		user_str(e->target, sizeof(e->target), c->target);
		user_str(e->fstype, sizeof(e->fstype), c->fstype);
		user_str(e->data, sizeof(e->data), c->data);
		EP_EVENT_SUBMIT(ctx, events, e);
	}
	bpf_map_delete_elem(&calls, &pid_tgid);
	return 0;
}

/* mount(source, target, fstype, flags, data). */
SEC("tracepoint/syscalls/sys_enter_mount")
int enter_mount(struct trace_event_raw_sys_enter *ctx)
{
	struct call c = {
		.source = EP_CORE_READ(ctx, args[0]),
		.target = EP_CORE_READ(ctx, args[1]),
		.fstype = EP_CORE_READ(ctx, args[2]),
		.flags = (__u32)EP_CORE_READ(ctx, args[3]),
		.data = EP_CORE_READ(ctx, args[4]),
		.op = EP__MOUNT,
	};
	return enter(&c);
}

SEC("tracepoint/syscalls/sys_exit_mount")
int exit_mount(struct trace_event_raw_sys_exit *ctx)
{
	return leave(ctx, EP_CORE_READ_SIGNED(ctx, ret));
}

/* umount2(target, flags). */
SEC("tracepoint/syscalls/sys_enter_umount")
int enter_umount(struct trace_event_raw_sys_enter *ctx)
{
	struct call c = {
		.target = EP_CORE_READ(ctx, args[0]),
		.flags = (__u32)EP_CORE_READ(ctx, args[1]),
		.op = EP__UMOUNT,
	};
	return enter(&c);
}

SEC("tracepoint/syscalls/sys_exit_umount")
int exit_umount(struct trace_event_raw_sys_exit *ctx)
{
	return leave(ctx, EP_CORE_READ_SIGNED(ctx, ret));
}
