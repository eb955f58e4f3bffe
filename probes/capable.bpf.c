/*
 * capable — every capability check the kernel makes (cap_capable): who asked for which capability and
 * whether the check is audited, in the columns of BCC's `capable -U` (UID PID COMM CAP NAME AUDIT).
 * Options as BCC's: -p PID, -v (also the checks that do not audit: by default, like BCC, only audited
 * ones are shown, the ones a permission denial would log). Attach point: kprobe cap_capable (the
 * kernel has no tracepoint for capability checks; kernels without CONFIG_KPROBES cannot run this tool:
 * `ebpf-run --check` says so). Maps: `events` (RINGBUF, 256 KiB, perf buffer before 5.8) and its
 * lost-record counter (ebpf_pack.h). Kernel: kprobes, BTF (CO-RE). No atomics.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "ebpf_pack.h"

char LICENSE[] SEC("license") = "GPL";

/* Capability names as BCC prints them (include/uapi/linux/capability.h). */
enum capability___ep {
	EP__CAP_CHOWN, EP__CAP_DAC_OVERRIDE, EP__CAP_DAC_READ_SEARCH, EP__CAP_FOWNER, EP__CAP_FSETID,
	EP__CAP_KILL, EP__CAP_SETGID, EP__CAP_SETUID, EP__CAP_SETPCAP, EP__CAP_LINUX_IMMUTABLE,
	EP__CAP_NET_BIND_SERVICE, EP__CAP_NET_BROADCAST, EP__CAP_NET_ADMIN, EP__CAP_NET_RAW,
	EP__CAP_IPC_LOCK, EP__CAP_IPC_OWNER, EP__CAP_SYS_MODULE, EP__CAP_SYS_RAWIO, EP__CAP_SYS_CHROOT,
	EP__CAP_SYS_PTRACE, EP__CAP_SYS_PACCT, EP__CAP_SYS_ADMIN, EP__CAP_SYS_BOOT, EP__CAP_SYS_NICE,
	EP__CAP_SYS_RESOURCE, EP__CAP_SYS_TIME, EP__CAP_SYS_TTY_CONFIG, EP__CAP_MKNOD, EP__CAP_LEASE,
	EP__CAP_AUDIT_WRITE, EP__CAP_AUDIT_CONTROL, EP__CAP_SETFCAP, EP__CAP_MAC_OVERRIDE,
	EP__CAP_MAC_ADMIN, EP__CAP_SYSLOG, EP__CAP_WAKE_ALARM, EP__CAP_BLOCK_SUSPEND,
	EP__CAP_AUDIT_READ, EP__CAP_PERFMON, EP__CAP_BPF, EP__CAP_CHECKPOINT_RESTORE,
};

/* One check, in BCC's column order. 2 x 4 + 16 + 3 x 4 bytes: 36, no padding. */
struct event {
	__u32 uid;
	__u32 pid;
	char comm[EP_COMM_LEN];
	__u32 cap;
	enum capability___ep name;
	__u32 audit; /* 1: a denial would be logged */
};

EBPF_PACK_EVENTS(events, struct event, 256 * 1024);

/* CAP_OPT_NOAUDIT in cap_capable's `opts` (include/linux/security.h). */
#define CAP_OPT_NOAUDIT_ 2

const volatile __u32 filter_pid EP_OPTION("-p PID", "trace this process id only") = 0;
const volatile bool verbose EP_OPTION("-v", "also show checks that are not audited") = false;

/* cap_capable(const struct cred *cred, struct user_namespace *ns, int cap, unsigned int opts) */
SEC("kprobe/cap_capable")
int cap_capable(struct pt_regs *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 cap = (__u32)EP_KPROBE_ARG(ctx, 3);
	__u32 opts = (__u32)EP_KPROBE_ARG(ctx, 4);
	__u32 audit = !(opts & CAP_OPT_NOAUDIT_);

	if ((filter_pid && (__u32)(pid_tgid >> 32) != filter_pid) || (!verbose && !audit))
		return 0;
	struct event *e = EP_EVENT_RESERVE(events);
	if (!e)
		return 0;
	e->uid = (__u32)bpf_get_current_uid_gid();
	e->pid = pid_tgid >> 32;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	e->cap = cap;
	e->name = (enum capability___ep)cap;
	e->audit = audit;
	EP_EVENT_SUBMIT(ctx, events, e);
	return 0;
}
