/*
 * tcpconnect — every active TCP connection attempt (connect(2)): process, addresses and destination
 * port, in the columns of BCC's `tcpconnect -U` (UID PID COMM IP SADDR DADDR DPORT). Options as BCC's:
 * -p PID, -u UID, -P PORT (this destination port only). Attach point: tracepoint
 * sock/inet_sock_set_state at the change to SYN_SENT, made by the connecting process itself (so pid and
 * comm are its own; BCC hooks tcp_v4_connect/tcp_v6_connect with kprobes, which not every board's
 * kernel has). Maps: `events` (RINGBUF, 256 KiB, perf buffer before 5.8) and its lost-record counter
 * (ebpf_pack.h). Kernel: 4.16+ (the tracepoint), BTF (CO-RE). No atomics: loads on 32-bit ARM with JIT.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "ebpf_pack.h"

char LICENSE[] SEC("license") = "GPL";

#define TCP_SYN_SENT_ 2
#define IPPROTO_TCP_ 6

/* One connection attempt, in BCC's column order. 2 x 4 + 16 + 4 + 16 + 16 + 4 bytes: 64, no padding. */
struct event {
	__u32 uid;
	__u32 pid;
	char comm[EP_COMM_LEN];
	__u32 ip; /* 4 or 6 */
	ep_inet_addr saddr;
	ep_inet_addr daddr;
	__u32 dport;
};

EBPF_PACK_EVENTS(events, struct event, 256 * 1024);

const volatile __u32 filter_pid EP_OPTION("-p PID", "trace this process id only") = 0;
const volatile __u32 filter_uid EP_OPTION("-u UID", "trace this user id only") = EP_NO_UID;
const volatile __u32 filter_port EP_OPTION("-P PORT", "trace connections to this port only") = 0;

SEC("tracepoint/sock/inet_sock_set_state")
int set_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	if (EP_CORE_READ(ctx, newstate) != TCP_SYN_SENT_ || EP_CORE_READ(ctx, protocol) != IPPROTO_TCP_)
		return 0;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 uid = (__u32)bpf_get_current_uid_gid();
	__u32 dport = (__u32)EP_CORE_READ(ctx, dport); /* host order in this tracepoint */

	if ((filter_pid && (__u32)(pid_tgid >> 32) != filter_pid) ||
	    (filter_uid != EP_NO_UID && uid != filter_uid) || (filter_port && dport != filter_port))
		return 0;
	struct event *e = EP_EVENT_RESERVE(events);
	if (!e)
		return 0;
	e->uid = uid;
	e->pid = pid_tgid >> 32;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	e->dport = dport;
	if (EP_CORE_READ(ctx, family) == EP_AF_INET6) {
		e->ip = 6;
		bpf_core_read(e->saddr, 16, &ctx->saddr_v6);
		bpf_core_read(e->daddr, 16, &ctx->daddr_v6);
	} else {
		e->ip = 4;
		__u32 s = 0, d = 0;
		bpf_core_read(&s, 4, &ctx->saddr);
		bpf_core_read(&d, 4, &ctx->daddr);
		ep_inet_addr_v4(e->saddr, s);
		ep_inet_addr_v4(e->daddr, d);
	}
	EP_EVENT_SUBMIT(ctx, events, e);
	return 0;
}
