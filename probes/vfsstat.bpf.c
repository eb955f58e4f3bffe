/*
 * vfsstat — calls into the kernel's VFS per interval: reads, writes, fsyncs, opens and creates, the
 * columns of BCC's `vfsstat` (READ WRITE FSYNC OPEN CREATE; counts since the last interval, like BCC's
 * per-second rates with the default 1 s interval). Usage as BCC's: `vfsstat [interval [count]]`.
 * Attach points: kprobes vfs_read, vfs_write, vfs_fsync_range, vfs_open and vfs_create (the VFS has no
 * tracepoints; kernels without CONFIG_KPROBES cannot run this tool: `ebpf-run --check` says so).
 * Maps: `vfs` (PERCPU_ARRAY, one struct vfs_counts per CPU, summed by the loader and cleared after each
 * interval, so no atomics). Kernel: kprobes, BTF.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "ebpf_pack.h"

char LICENSE[] SEC("license") = "GPL";

struct vfs_counts {
	__u64 read;
	__u64 write;
	__u64 fsync;
	__u64 open;
	__u64 create;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vfs_counts);
} vfs EP_CLEAR SEC(".maps");

static __always_inline struct vfs_counts *counts(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&vfs, &zero);
}

/* Each counter is this CPU's copy: no atomic needed. */
SEC("kprobe/vfs_read")
int vfs_read(void *ctx)
{
	struct vfs_counts *c = counts();
	if (c)
		c->read += 1;
	return 0;
}

SEC("kprobe/vfs_write")
int vfs_write(void *ctx)
{
	struct vfs_counts *c = counts();
	if (c)
		c->write += 1;
	return 0;
}

SEC("kprobe/vfs_fsync_range")
int vfs_fsync_range(void *ctx)
{
	struct vfs_counts *c = counts();
	if (c)
		c->fsync += 1;
	return 0;
}

SEC("kprobe/vfs_open")
int vfs_open(void *ctx)
{
	struct vfs_counts *c = counts();
	if (c)
		c->open += 1;
	return 0;
}

SEC("kprobe/vfs_create")
int vfs_create(void *ctx)
{
	struct vfs_counts *c = counts();
	if (c)
		c->create += 1;
	return 0;
}
