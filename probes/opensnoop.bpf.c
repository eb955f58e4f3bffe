/*
 * opensnoop — every file open on the system: which process (uid, pid, comm) opened which path with
 * which flags, and the result: the new fd, or -1 and the errno, in the columns of BCC's `opensnoop -U -e`
 * (UID PID COMM FD ERR FLAGS PATH). Options as BCC's: -p PID, -t TID, -u UID, -n NAME, -x. Attach points: tracepoints
 * syscalls/sys_enter_openat + syscalls/sys_exit_openat, and on architectures that still have the open(2)
 * syscall (x86, arm, s390, mips — musl's open() uses it there, so busybox/OpenWrt userlands would otherwise
 * be invisible) also syscalls/sys_enter_open + syscalls/sys_exit_open; arm64 and riscv have only openat,
 * and their kernels have no sys_enter_open tracepoint to attach to. Maps: `start` (HASH, key __u64
 * pid_tgid → struct open_args: the user pointer to the path and the flags, kept from syscall entry to
 * exit), `events` (RINGBUF, 256 KiB) carrying `struct event` records, one per completed open, and its
 * lost-record counter (ebpf_pack.h); the path is
 * read at syscall exit, when the kernel has already copied it and its page is resident. Kernel: ≥ 5.8 (ring buffer), with
 * CONFIG_FTRACE_SYSCALLS (syscall tracepoints) and BTF (CO-RE). No atomics: loads on 32-bit ARM with JIT.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "ebpf_pack.h"

char LICENSE[] SEC("license") = "GPL";

#define PATH_LEN 256

/* One completed open, in BCC's column order. 4 + 4 + 16 + 3 x 4 bytes, then the path: 292 bytes, no padding. */
struct event {
	__u32 uid;
	__u32 pid; /* process id (tgid) */
	char comm[EP_COMM_LEN];
	__s32 fd;    /* the new fd, or -1 */
	__s32 err;   /* errno when the open failed, else 0 */
	__s32 flags; /* open flags (O_RDONLY, O_CREAT, ...) */
	char path[PATH_LEN];
};

/* What sys_enter keeps for sys_exit. 16 bytes, padding explicit. */
struct open_args {
	__u64 filename; /* user-space pointer to the path */
	__s32 flags;
	__u32 __pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct open_args);
} start EP_SCRATCH SEC(".maps");

/* A 256 KiB ring buffer of struct event; a perf buffer on kernels without one (ebpf_pack.h, 5.). */
EBPF_PACK_EVENTS(events, struct event, 256 * 1024);

/* Filters, set by the loader (0, "" and EP_NO_UID: no filter). */
const volatile __u32 filter_pid EP_OPTION("-p PID", "trace this process id only") = 0;
const volatile __u32 filter_tid EP_OPTION("-t TID", "trace this thread id only") = 0;
const volatile __u32 filter_uid EP_OPTION("-u UID", "trace this user id only") = EP_NO_UID;
const volatile char filter_comm[EP_COMM_LEN] EP_OPTION("-n NAME", "trace processes of this name only") = "";
const volatile bool failed_only EP_OPTION("-x", "only show failed opens") = false;

static __always_inline int enter(__u64 filename, __u64 flags)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	if (filter_pid && (__u32)(pid_tgid >> 32) != filter_pid)
		return 0;
	if (filter_tid && (__u32)pid_tgid != filter_tid)
		return 0;
	if (filter_uid != EP_NO_UID && (__u32)bpf_get_current_uid_gid() != filter_uid)
		return 0;
	if (!ep_comm_is(filter_comm))
		return 0;

	struct open_args args = {
		.filename = filename,
		.flags = (__s32)flags,
	};
	bpf_map_update_elem(&start, &pid_tgid, &args, BPF_ANY);
	return 0;
}

static __always_inline int leave(void *ctx, __s64 ret)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct open_args *args = bpf_map_lookup_elem(&start, &pid_tgid);

	if (!args)
		return 0;
	if (failed_only && ret >= 0) {
		bpf_map_delete_elem(&start, &pid_tgid);
		return 0;
	}

	struct event *e = EP_EVENT_RESERVE(events);
	if (e) {
		e->uid = (__u32)bpf_get_current_uid_gid();
		e->pid = pid_tgid >> 32;
		e->fd = ret >= 0 ? (__s32)ret : -1;
		e->err = ret >= 0 ? 0 : (__s32)-ret;
		e->flags = args->flags;
		bpf_get_current_comm(e->comm, sizeof(e->comm));
		/* On a fault the helper zeroes the buffer: an unreadable path prints as "". */
		bpf_probe_read_user_str(e->path, sizeof(e->path), (const void *)(unsigned long)args->filename);
		EP_EVENT_SUBMIT(ctx, events, e);
	}
	bpf_map_delete_elem(&start, &pid_tgid);
	return 0;
}

/*
 * The syscalls/sys_enter_<name> record is `struct syscall_trace_enter { struct trace_entry ent; int nr;
 * unsigned long args[]; }`: the same layout as raw_syscalls' struct trace_event_raw_sys_enter (whose
 * `long id` shares the slot of `int nr`) on 32- and 64-bit kernels, so that BTF type describes it.
 * openat(dfd, filename, flags, mode): args[1], args[2]. Each arg is read with its size in the running
 * kernel (4 bytes on arm): see ebpf_pack.h.
 */
SEC("tracepoint/syscalls/sys_enter_openat")
int enter_openat(struct trace_event_raw_sys_enter *ctx)
{
	return enter(EP_CORE_READ(ctx, args[1]), EP_CORE_READ(ctx, args[2]));
}

/* syscalls/sys_exit_<name>: `struct syscall_trace_exit { ent; int nr; long ret; }`, laid out like
 * struct trace_event_raw_sys_exit. `ret` is a long: sign-extended from its kernel size. */
SEC("tracepoint/syscalls/sys_exit_openat")
int exit_openat(struct trace_event_raw_sys_exit *ctx)
{
	return leave(ctx, EP_CORE_READ_SIGNED(ctx, ret));
}

#if defined(__TARGET_ARCH_x86) || defined(__TARGET_ARCH_arm) || defined(__TARGET_ARCH_s390) ||           \
	defined(__TARGET_ARCH_mips)
/* open(filename, flags, mode): args[0], args[1]. */
SEC("tracepoint/syscalls/sys_enter_open")
int enter_open(struct trace_event_raw_sys_enter *ctx)
{
	return enter(EP_CORE_READ(ctx, args[0]), EP_CORE_READ(ctx, args[1]));
}

SEC("tracepoint/syscalls/sys_exit_open")
int exit_open(struct trace_event_raw_sys_exit *ctx)
{
	return leave(ctx, EP_CORE_READ_SIGNED(ctx, ret));
}
#endif
