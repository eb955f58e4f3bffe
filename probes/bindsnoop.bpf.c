/*
 * bindsnoop — every bind(2) of an IPv4 or IPv6 socket: the process, the result, the protocol, and the
 * port and address asked for, in the columns of BCC's `bindsnoop` (PID COMM RET PROTO PORT ADDR; BCC's
 * OPTS and IF columns are not shown). Options as BCC's: -p PID, -P PORT (this port only), -x (failed
 * only). Attach points: tracepoints syscalls/sys_enter_bind (the fd and the caller's struct sockaddr)
 * and syscalls/sys_exit_bind (the result; on s390 also sys_{enter,exit}_socketcall, which its C
 * library binds through; the socket's type is read through the process's file table,
 * SOCK_STREAM as TCP and SOCK_DGRAM as UDP). BCC hooks inet_bind with kprobes, which not every board's
 * kernel has. Maps: `binds` (HASH, pid_tgid → fd and sockaddr pointer), `events` (RINGBUF, 256 KiB,
 * perf buffer before 5.8) and its lost-record counter (ebpf_pack.h). Kernel: syscall tracepoints and
 * BTF (CO-RE). No atomics: loads on 32-bit ARM with JIT.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "ebpf_pack.h"

char LICENSE[] SEC("license") = "GPL";

/* The protocol column: the socket's type (SOCK_STREAM 1, SOCK_DGRAM 2, SOCK_RAW 3). */
enum bind_proto {
	EP__TCP = 1,
	EP__UDP = 2,
	EP__RAW = 3,
};

/* One bind, in BCC's column order. 4 + 16 + 4 + 4 + 4 + 16 bytes: 48, no padding. */
struct event {
	__u32 pid;
	char comm[EP_COMM_LEN];
	__s32 ret; /* 0, or -errno */
	enum bind_proto proto;
	__u32 port;
	ep_inet_addr addr;
};

struct bind_args {
	__u64 addr; /* user pointer to the struct sockaddr */
	__u32 fd;
	__u32 len;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct bind_args);
} binds EP_SCRATCH SEC(".maps");

EBPF_PACK_EVENTS(events, struct event, 256 * 1024);

const volatile __u32 filter_pid EP_OPTION("-p PID", "trace this process id only") = 0;
const volatile __u32 filter_port EP_OPTION("-P PORT", "trace binds to this port only") = 0;
const volatile bool failed_only EP_OPTION("-x", "only show failed binds") = false;

/* Keeps bind's arguments for its exit. */
static __always_inline int binding(__u64 fd, __u64 addr, __u64 len)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	if (filter_pid && (__u32)(pid_tgid >> 32) != filter_pid)
		return 0;
	struct bind_args a = { .fd = (__u32)fd, .addr = addr, .len = (__u32)len };
	bpf_map_update_elem(&binds, &pid_tgid, &a, BPF_ANY);
	return 0;
}

/* bind(fd, umyaddr, addrlen) */
SEC("tracepoint/syscalls/sys_enter_bind")
int enter_bind(struct trace_event_raw_sys_enter *ctx)
{
	return binding(EP_CORE_READ(ctx, args[0]), EP_CORE_READ(ctx, args[1]), EP_CORE_READ(ctx, args[2]));
}

static __always_inline int bound(void *ctx, __s64 ret);

SEC("tracepoint/syscalls/sys_exit_bind")
int exit_bind(struct trace_event_raw_sys_exit *ctx)
{
	return bound(ctx, EP_CORE_READ_SIGNED(ctx, ret));
}

#if defined(__TARGET_ARCH_s390)
/* s390's C library (glibc for kernels before 4.3) binds through socketcall(SYS_BIND, args): args
 * points to the caller's array of its three unsigned longs. */
#define SYS_BIND_ 2

SEC("tracepoint/syscalls/sys_enter_socketcall")
int enter_socketcall(struct trace_event_raw_sys_enter *ctx)
{
	__u64 a[3] = {};

	if (EP_CORE_READ(ctx, args[0]) != SYS_BIND_ ||
	    bpf_probe_read_user(a, sizeof(a), (const void *)(unsigned long)EP_CORE_READ(ctx, args[1])))
		return 0;
	return binding(a[0], a[1], a[2]);
}

SEC("tracepoint/syscalls/sys_exit_socketcall")
int exit_socketcall(struct trace_event_raw_sys_exit *ctx)
{
	return bound(ctx, EP_CORE_READ_SIGNED(ctx, ret));
}
#endif

/* Reads the address asked for and sends the record of the bind that returned `ret`. */
static __always_inline int bound(void *ctx, __s64 ret)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct bind_args *a = bpf_map_lookup_elem(&binds, &pid_tgid);

	if (!a)
		return 0;
	/* struct sockaddr_in: family, port, addr; struct sockaddr_in6: family, port, flowinfo, addr. Read
	 * with constant sizes (the first 8 bytes, then all 24 for IPv6): a length the verifier must
	 * bound can lose its bound when clang reuses an unclamped copy of it (5.x/6.1 kernels). */
	__u8 sa[24] = {};
	const void *uaddr = (const void *)(unsigned long)a->addr;
	if ((failed_only && ret >= 0) || a->len < 8 || bpf_probe_read_user(sa, 8, uaddr))
		goto done;
	__u16 family = *(__u16 *)sa;
	__u32 port = bpf_ntohs(*(__u16 *)&sa[2]);
	if ((family != EP_AF_INET && family != EP_AF_INET6) || (filter_port && port != filter_port))
		goto done;
	if (family == EP_AF_INET6 && (a->len < 24 || bpf_probe_read_user(sa, 24, uaddr)))
		goto done;

	struct event *e = EP_EVENT_RESERVE(events);
	if (!e)
		goto done;
	e->pid = pid_tgid >> 32;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	e->ret = (__s32)ret;
	struct socket___ep *sock = ep_fd_private(a->fd);
	e->proto = sock ? (enum bind_proto)EP_CORE_READ(sock, type) : 0;
	e->port = port;
	if (family == EP_AF_INET6)
		__builtin_memcpy(e->addr, &sa[8], 16);
	else
		ep_inet_addr_v4(e->addr, *(__u32 *)&sa[4]);
	EP_EVENT_SUBMIT(ctx, events, e);
done:
	bpf_map_delete_elem(&binds, &pid_tgid);
	return 0;
}
