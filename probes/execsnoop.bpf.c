/*
 * execsnoop — every successful exec on the system: the process id, its parent's process id, uid, the new
 * task name and the path of the program that was executed. Attach point: tracepoint
 * sched/sched_process_exec (fires in the process after the new program image replaced the old one, so
 * failed execs are not shown and comm is already the new name). Maps: `events` (RINGBUF, 256 KiB)
 * carrying one `struct event` per exec, and its lost-record counter (ebpf_pack.h). The filename comes from the tracepoint record's __data_loc field,
 * the parent from task->real_parent->tgid, both read with the running kernel's field sizes (32-bit
 * safe, see ebpf_pack.h). Kernel: ≥ 5.8 (ring buffer) with BTF (CO-RE); the tracepoint exists in every
 * kernel that has tracepoints. No atomics: loads on 32-bit ARM with JIT.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "ebpf_pack.h"

char LICENSE[] SEC("license") = "GPL";

#define FILENAME_LEN 256

/* One exec. 3 x 4 bytes, then char arrays: 284 bytes, no padding. */
struct event {
	__u32 pid;  /* process id (tgid) after exec */
	__u32 ppid; /* process id of the parent (real_parent->tgid) */
	__u32 uid;
	char comm[EP_COMM_LEN];
	char filename[FILENAME_LEN]; /* path as passed to execve, after #! resolution: the interpreter's */
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

EBPF_PACK_EVENT(events, struct event);

/*
 * The two task_struct fields used, as a CO-RE "flavour" of the kernel's struct task_struct: relocations
 * match it by name with everything from "___" on ignored (libbpf and aya alike), fields by name and kind.
 * Naming the full struct task_struct instead would pull its whole type graph into the object: ~26 KB more
 * .BTF and ~700 KB more DWARF, for a board that has to load it.
 */
struct task_struct___ep {
	pid_t tgid;
	struct task_struct___ep *real_parent;
} __attribute__((preserve_access_index));

SEC("tracepoint/sched/sched_process_exec")
int handle_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	struct event *e = EP_RINGBUF_RESERVE(events, sizeof(*e));
	if (!e)
		return 0;

	struct task_struct___ep *task = (struct task_struct___ep *)bpf_get_current_task();
	/* real_parent is a pointer: 4 bytes on a 32-bit kernel, so not BPF_CORE_READ(task, real_parent, tgid). */
	struct task_struct___ep *parent = EP_CORE_READ_PTR(task, real_parent);

	e->pid = (__u32)EP_CORE_READ(ctx, pid);
	e->ppid = parent ? (__u32)EP_CORE_READ(parent, tgid) : 0;
	e->uid = (__u32)bpf_get_current_uid_gid();
	bpf_get_current_comm(e->comm, sizeof(e->comm));

	/* __data_loc: low 16 bits = offset of the string from the start of the record, high 16 = length. */
	__u32 loc = (__u32)EP_CORE_READ(ctx, __data_loc_filename);
	/* On a fault the helper zeroes the buffer: an unreadable filename prints as "". */
	bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), (const void *)ctx + (loc & 0xFFFF));

	bpf_ringbuf_submit(e, 0);
	return 0;
}
