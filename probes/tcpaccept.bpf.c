/*
 * tcpaccept — every TCP connection a process accepts (accept(2), accept4(2)): process, addresses and
 * ports, in the columns of BCC's `tcpaccept` (PID COMM IP RADDR RPORT LADDR LPORT). Options as BCC's:
 * -p PID, -P PORT (this local port only). Attach points: tracepoints syscalls/sys_exit_accept4 and, on
 * every arch but s390 sys_exit_accept (s390's C library accepts through socketcall: its entry and exit
 * are watched there instead): the new fd is looked up in the process's file table and its socket
 * read (BCC hooks inet_csk_accept with a kretprobe, which not every board's kernel has). Maps: `events`
 * (RINGBUF, 256 KiB, perf buffer before 5.8) and its lost-record counter (ebpf_pack.h). Only IPv4 and
 * IPv6 stream sockets are shown. Kernel: syscall tracepoints and BTF (CO-RE). No atomics.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "ebpf_pack.h"

char LICENSE[] SEC("license") = "GPL";

#define SOCK_STREAM_ 1

/* One accepted connection, in BCC's column order. 4 + 16 + 4 + 16 + 2 + 16 + 2 bytes: 60, no padding. */
struct event {
	__u32 pid;
	char comm[EP_COMM_LEN];
	__u32 ip; /* 4 or 6 */
	ep_inet_addr raddr;
	__u16 rport;
	ep_inet_addr laddr;
	__u16 lport;
};

EBPF_PACK_EVENTS(events, struct event, 256 * 1024);

const volatile __u32 filter_pid EP_OPTION("-p PID", "trace this process id only") = 0;
const volatile __u32 filter_port EP_OPTION("-P PORT", "trace this local port only") = 0;

static __always_inline int accepted(void *ctx, __s64 fd)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	if (fd < 0 || (filter_pid && (__u32)(pid_tgid >> 32) != filter_pid))
		return 0;
	struct socket___ep *sock = ep_fd_private((__u32)fd);
	if (!sock || EP_CORE_READ(sock, type) != SOCK_STREAM_)
		return 0;
	struct sock___ep *sk = EP_CORE_READ_PTR(sock, sk);
	if (!sk)
		return 0;
	__u64 family = EP_CORE_READ(sk, __sk_common.skc_family);
	__u16 lport = (__u16)EP_CORE_READ(sk, __sk_common.skc_num);
	if ((family != EP_AF_INET && family != EP_AF_INET6) || (filter_port && lport != filter_port))
		return 0;
	struct event *e = EP_EVENT_RESERVE(events);
	if (!e)
		return 0;
	e->pid = pid_tgid >> 32;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	e->ip = family == EP_AF_INET6 ? 6 : 4;
	ep_sock_addr(e->raddr, sk, false);
	e->rport = bpf_ntohs((__u16)EP_CORE_READ(sk, __sk_common.skc_dport));
	ep_sock_addr(e->laddr, sk, true);
	e->lport = lport;
	EP_EVENT_SUBMIT(ctx, events, e);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int exit_accept4(struct trace_event_raw_sys_exit *ctx)
{
	return accepted(ctx, EP_CORE_READ_SIGNED(ctx, ret));
}

#if defined(__TARGET_ARCH_s390)
/* s390's C library (glibc for kernels before 4.3) accepts through socketcall(SYS_ACCEPT or
 * SYS_ACCEPT4, args): its entry is remembered per thread so the exit knows the call. */
#define SYS_ACCEPT_ 5
#define SYS_ACCEPT4_ 18

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u64);  /* pid_tgid */
	__type(value, __u8); /* 1: in an accepting socketcall */
} accepting EP_SCRATCH SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_socketcall")
int enter_socketcall(struct trace_event_raw_sys_enter *ctx)
{
	__u64 call = EP_CORE_READ(ctx, args[0]);
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u8 one = 1;

	if (call == SYS_ACCEPT_ || call == SYS_ACCEPT4_)
		bpf_map_update_elem(&accepting, &pid_tgid, &one, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_socketcall")
int exit_socketcall(struct trace_event_raw_sys_exit *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	if (!bpf_map_lookup_elem(&accepting, &pid_tgid))
		return 0;
	bpf_map_delete_elem(&accepting, &pid_tgid);
	return accepted(ctx, EP_CORE_READ_SIGNED(ctx, ret));
}
#else
/* accept(2): every arch here but s390 has the syscall (s390 has accept4 and socketcall). */
SEC("tracepoint/syscalls/sys_exit_accept")
int exit_accept(struct trace_event_raw_sys_exit *ctx)
{
	return accepted(ctx, EP_CORE_READ_SIGNED(ctx, ret));
}
#endif
