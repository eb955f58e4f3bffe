/*
 * filelife — short-lived files: every file created and deleted while the tool runs, with the process
 * that deleted it and how long the file lived, in the columns of BCC's `filelife` (PID COMM AGE FILE;
 * the age in milliseconds). Option as BCC's: -p PID. Attach points: kprobes security_inode_create (every
 * create, also those vfs_create does not see: open(O_CREAT) calls it through may_o_create) and
 * vfs_unlink (the VFS has no tracepoints; kernels without CONFIG_KPROBES cannot run this tool:
 * `ebpf-run --check` says so). Files are known by their dentry. Maps: `births` (HASH, dentry → ns),
 * `events` (RINGBUF, 256 KiB, perf buffer before 5.8) and its lost-record counter (ebpf_pack.h).
 * Kernel: kprobes, BTF (CO-RE), 5.12+ (vfs_unlink's first argument is the mount's idmap or user
 * namespace). No atomics: loads on 32-bit ARM with JIT.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "ebpf_pack.h"

char LICENSE[] SEC("license") = "GPL";

#define NAME_LEN 64

/* One file's life, in BCC's column order. 4 + 16 + 4 + 64 bytes: 88, no padding. */
struct event {
	__u32 pid;
	char comm[EP_COMM_LEN];
	__u32 age_ms;
	char file[NAME_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u64);   /* struct dentry * */
	__type(value, __u64); /* ns */
} births EP_SCRATCH SEC(".maps");

EBPF_PACK_EVENTS(events, struct event, 256 * 1024);

const volatile __u32 filter_pid EP_OPTION("-p PID", "trace this process id only") = 0;

struct qstr___ep {
	const unsigned char *name;
} __attribute__((preserve_access_index));

struct dentry___ep {
	struct qstr___ep d_name;
} __attribute__((preserve_access_index));

/* security_inode_create(struct inode *dir, struct dentry *dentry, umode_t mode) */
SEC("kprobe/security_inode_create")
int inode_create(struct pt_regs *ctx)
{
	if (filter_pid && (__u32)(bpf_get_current_pid_tgid() >> 32) != filter_pid)
		return 0;
	__u64 dentry = EP_KPROBE_ARG(ctx, 2);
	__u64 now = bpf_ktime_get_ns();
	bpf_map_update_elem(&births, &dentry, &now, BPF_ANY);
	return 0;
}

/* vfs_unlink(struct mnt_idmap *idmap, struct inode *dir, struct dentry *dentry, struct inode **) */
SEC("kprobe/vfs_unlink")
int unlink(struct pt_regs *ctx)
{
	__u64 dentry = EP_KPROBE_ARG(ctx, 3);
	__u64 *born = bpf_map_lookup_elem(&births, &dentry);

	if (!born)
		return 0;
	struct event *e = EP_EVENT_RESERVE(events);
	if (e) {
		struct dentry___ep *d = (void *)(unsigned long)dentry;
		e->pid = bpf_get_current_pid_tgid() >> 32;
		bpf_get_current_comm(e->comm, sizeof(e->comm));
		e->age_ms = (__u32)ep_ns_to_ms(bpf_ktime_get_ns() - *born);
		bpf_probe_read_kernel_str(e->file, sizeof(e->file), EP_CORE_READ_PTR(d, d_name.name));
		EP_EVENT_SUBMIT(ctx, events, e);
	}
	bpf_map_delete_elem(&births, &dentry);
	return 0;
}
