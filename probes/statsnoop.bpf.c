/*
 * statsnoop — every stat-family call on the system: which process asked about which path, and the
 * result, in the columns of BCC's `statsnoop` (PID COMM RET ERR PATH). Options as BCC's: -p PID, -x
 * (failed only). Attach points: tracepoints syscalls/sys_enter_* and sys_exit_* of statfs and statx on
 * every arch, newfstatat (fstatat64 on 32-bit arm and mips, which have no newfstatat), and where the
 * arch has them newstat/newlstat (x86, s390) or stat64/lstat64 (arm, mips). Maps: `start` (HASH, key
 * pid_tgid → the user pointer to the path), `events` (RINGBUF, 256 KiB, perf buffer before 5.8) and its
 * lost-record counter (ebpf_pack.h); the path is read at syscall exit, as opensnoop does. Kernel: syscall
 * tracepoints (CONFIG_FTRACE_SYSCALLS) and BTF (CO-RE). No atomics: loads on 32-bit ARM with JIT.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "ebpf_pack.h"

char LICENSE[] SEC("license") = "GPL";

#define PATH_LEN 256

/* One stat call, in BCC's column order. 4 + 16 + 2 x 4 bytes, then the path: 284 bytes, no padding. */
struct event {
	__u32 pid;
	char comm[EP_COMM_LEN];
	__s32 ret; /* 0, or -1 when it failed */
	__s32 err; /* errno when it failed, else 0 */
	char path[PATH_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u64);   /* pid_tgid */
	__type(value, __u64); /* user-space pointer to the path */
} start EP_SCRATCH SEC(".maps");

EBPF_PACK_EVENTS(events, struct event, 256 * 1024);

const volatile __u32 filter_pid EP_OPTION("-p PID", "trace this process id only") = 0;
const volatile bool failed_only EP_OPTION("-x", "only show failed stats") = false;

static __always_inline int enter(__u64 path)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	if (filter_pid && (__u32)(pid_tgid >> 32) != filter_pid)
		return 0;
	bpf_map_update_elem(&start, &pid_tgid, &path, BPF_ANY);
	return 0;
}

static __always_inline int leave(void *ctx, __s64 ret)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 *path = bpf_map_lookup_elem(&start, &pid_tgid);

	if (!path)
		return 0;
	if (failed_only && ret >= 0)
		goto done;
	struct event *e = EP_EVENT_RESERVE(events);
	if (e) {
		e->pid = pid_tgid >> 32;
		bpf_get_current_comm(e->comm, sizeof(e->comm));
		e->ret = ret >= 0 ? 0 : -1;
		e->err = ret >= 0 ? 0 : (__s32)-ret;
		bpf_probe_read_user_str(e->path, sizeof(e->path), (const void *)(unsigned long)*path);
		EP_EVENT_SUBMIT(ctx, events, e);
	}
done:
	bpf_map_delete_elem(&start, &pid_tgid);
	return 0;
}

/* One entry/exit pair: the path is syscall argument ARG. */
#define STAT_CALL(name, arg)                                                                            \
	SEC("tracepoint/syscalls/sys_enter_" #name)                                                     \
	int enter_##name(struct trace_event_raw_sys_enter *ctx)                                        \
	{                                                                                               \
		return enter(EP_CORE_READ(ctx, args[arg]));                                             \
	}                                                                                               \
	SEC("tracepoint/syscalls/sys_exit_" #name)                                                      \
	int exit_##name(struct trace_event_raw_sys_exit *ctx)                                          \
	{                                                                                               \
		return leave(ctx, EP_CORE_READ_SIGNED(ctx, ret));                                       \
	}

STAT_CALL(statfs, 0)
STAT_CALL(statx, 1)
#if defined(__TARGET_ARCH_arm) || defined(__TARGET_ARCH_mips)
STAT_CALL(fstatat64, 1)
STAT_CALL(stat64, 0)
STAT_CALL(lstat64, 0)
#else
STAT_CALL(newfstatat, 1)
#endif
#if defined(__TARGET_ARCH_x86) || defined(__TARGET_ARCH_s390)
STAT_CALL(newstat, 0)
STAT_CALL(newlstat, 0)
#endif
