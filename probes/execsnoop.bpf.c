/*
 * execsnoop — every exec on the system: the new program's name, process id, parent's process id, the
 * result, and the arguments, in the columns of BCC's `execsnoop -U` (UID PCOMM PID PPID RET ARGS).
 * Options as BCC's: -u UID, -x (failed execs only), -n NAME (new program name), -P PPID. Attach points:
 * tracepoints syscalls/sys_enter_execve(at) (the path and up to MAX_ARGS arguments are read from the
 * caller's memory while it is still there) and syscalls/sys_exit_execve(at) (the result; after a
 * successful exec comm is already the new program's name). Maps: `execs` (HASH, key pid_tgid → the
 * record being built, from entry to exit), `stage` (one per-CPU record with room to spill, where the
 * arguments are copied), `events` (RINGBUF, 256 KiB, perf buffer before 5.8) carrying one `struct
 * event` per exec, and its lost-record counter (ebpf_pack.h). Argument pointers are read with the
 * running kernel's pointer size (4 bytes on arm: see ebpf_pack.h). Kernel: syscall tracepoints
 * (CONFIG_FTRACE_SYSCALLS) and BTF (CO-RE). No atomics: loads on 32-bit ARM with JIT.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "ebpf_pack.h"

char LICENSE[] SEC("license") = "GPL";

#define ARGS_LEN 256 /* a power of two: offsets into it are masked */
#define MAX_ARGS 16  /* arguments after the path; the rest are cut off, like BCC's default of 20 */

/* One exec, in BCC's column order. 4 + 16 + 3 x 4 bytes, then the arguments: 288 bytes, no padding. */
struct event {
	__u32 uid;
	char pcomm[EP_COMM_LEN]; /* the new program's name after a successful exec, else the caller's */
	__u32 pid;               /* process id (tgid) */
	__u32 ppid;              /* process id of the parent (real_parent->tgid) */
	__s32 ret;               /* 0, or -errno */
	char args[ARGS_LEN];     /* the path, then argv[1..], separated by spaces */
};

/* A record plus room for one argument read at its end: the verifier sees every copy in bounds. */
struct stage {
	struct event e;
	char spill[ARGS_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct event);
} execs EP_SCRATCH SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct stage);
} stage EP_SCRATCH SEC(".maps");

EBPF_PACK_EVENTS(events, struct event, 256 * 1024);

/* Filters, set by the loader (0, "" and EP_NO_UID: no filter). */
const volatile __u32 filter_uid EP_OPTION("-u UID", "trace this user id only") = EP_NO_UID;
const volatile __u32 filter_ppid EP_OPTION("-P PPID", "trace children of this process id only") = 0;
const volatile char filter_comm[EP_COMM_LEN] EP_OPTION("-n NAME", "only show execs whose new name is NAME") = "";
const volatile bool failed_only EP_OPTION("-x", "only show failed execs") = false;

/* The two task_struct fields used, as a CO-RE "flavour" of the kernel's struct task_struct: relocations
 * match it by name with everything from "___" on ignored. Naming the full struct would pull its whole type
 * graph into the object (~26 KB more .BTF, ~700 KB more DWARF). */
struct task_struct___ep {
	pid_t tgid;
	struct task_struct___ep *real_parent;
} __attribute__((preserve_access_index));

/* Copies the string at user address `src` to args[off], followed by a space; returns the new offset. */
static __always_inline __u32 append(struct stage *s, __u32 off, __u64 src)
{
	if (off >= ARGS_LEN)
		return off;
	long n = bpf_probe_read_user_str(&s->e.args[off & (ARGS_LEN - 1)], ARGS_LEN,
					 (const void *)(unsigned long)src);
	if (n <= 0)
		return off;
	off += n;
	s->e.args[(off - 1) & (ARGS_LEN - 1)] = ' ';
	return off;
}

/* Builds the record of an exec of `filename` with arguments `argv` (user addresses). */
static __always_inline int enter(struct trace_event_raw_sys_enter *ctx, __u64 filename, __u64 argv)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 uid = (__u32)bpf_get_current_uid_gid();
	__u32 zero = 0;

	if (filter_uid != EP_NO_UID && uid != filter_uid)
		return 0;
	struct task_struct___ep *task = (struct task_struct___ep *)bpf_get_current_task();
	struct task_struct___ep *parent = EP_CORE_READ_PTR(task, real_parent);
	__u32 ppid = parent ? (__u32)EP_CORE_READ(parent, tgid) : 0;
	if (filter_ppid && ppid != filter_ppid)
		return 0;

	struct stage *s = bpf_map_lookup_elem(&stage, &zero);
	if (!s)
		return 0;
	s->e.uid = uid;
	s->e.pid = pid_tgid >> 32;
	s->e.ppid = ppid;
	s->e.ret = 0;
	s->e.args[0] = 0;
	bpf_get_current_comm(s->e.pcomm, sizeof(s->e.pcomm));

	/* A user pointer has the size of the running kernel's `long` (the tracepoint's args[] slots). */
	__u32 psize = __EP_FIELD_SIZE(ctx, args[0]);
	__u32 off = append(s, 0, filename);
	for (int i = 1; i <= MAX_ARGS; i++) {
		__u64 arg = 0;
		if (bpf_probe_read_user(__EP_U64_DST(&arg, psize), psize,
					(const void *)(unsigned long)(argv + i * psize)) ||
		    !arg)
			break;
		off = append(s, off, arg);
	}
	/* The last separator becomes the end of the string; a full buffer ends at its last byte. */
	if (off > ARGS_LEN)
		off = ARGS_LEN;
	if (off > 0)
		s->e.args[(off - 1) & (ARGS_LEN - 1)] = 0;
	bpf_map_update_elem(&execs, &pid_tgid, &s->e, BPF_ANY);
	return 0;
}

/* Completes and sends the record of the exec that returned `ret`. */
static __always_inline int leave(void *ctx, __s64 ret)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct event *kept = bpf_map_lookup_elem(&execs, &pid_tgid);

	if (!kept)
		return 0;
	if (failed_only && ret >= 0)
		goto done;
	if (ret >= 0)
		bpf_get_current_comm(kept->pcomm, sizeof(kept->pcomm));
	if (!ep_comm_is(filter_comm))
		goto done;

	struct event *e = EP_EVENT_RESERVE(events);
	if (e) {
		__builtin_memcpy(e, kept, sizeof(*e));
		e->ret = (__s32)ret;
		EP_EVENT_SUBMIT(ctx, events, e);
	}
done:
	bpf_map_delete_elem(&execs, &pid_tgid);
	return 0;
}

/* execve(filename, argv, envp): args[0], args[1]. Laid out as trace_event_raw_sys_enter (opensnoop). */
SEC("tracepoint/syscalls/sys_enter_execve")
int enter_execve(struct trace_event_raw_sys_enter *ctx)
{
	return enter(ctx, EP_CORE_READ(ctx, args[0]), EP_CORE_READ(ctx, args[1]));
}

SEC("tracepoint/syscalls/sys_exit_execve")
int exit_execve(struct trace_event_raw_sys_exit *ctx)
{
	return leave(ctx, EP_CORE_READ_SIGNED(ctx, ret));
}

/* execveat(dfd, filename, argv, envp, flags): args[1], args[2]. */
SEC("tracepoint/syscalls/sys_enter_execveat")
int enter_execveat(struct trace_event_raw_sys_enter *ctx)
{
	return enter(ctx, EP_CORE_READ(ctx, args[1]), EP_CORE_READ(ctx, args[2]));
}

SEC("tracepoint/syscalls/sys_exit_execveat")
int exit_execveat(struct trace_event_raw_sys_exit *ctx)
{
	return leave(ctx, EP_CORE_READ_SIGNED(ctx, ret));
}
