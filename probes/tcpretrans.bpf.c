/*
 * tcpretrans — every TCP retransmission: addresses, ports and the connection's state, in the columns of
 * BCC's `tcpretrans` (PID IP LADDR LPORT RADDR RPORT STATE; the pid is the current task's, usually 0:
 * retransmits run from timers). Attach point: tracepoint tcp/tcp_retransmit_skb (BCC's own choice on
 * kernels that have it, 4.15+); its record type is struct trace_event_raw_tcp_retransmit_skb since 6.10
 * and struct trace_event_raw_tcp_event_sk_skb before, with the same field names: the probe reads
 * whichever the running kernel has (bpf_core_type_exists). Maps: `events` (RINGBUF, 256 KiB, perf buffer
 * before 5.8) and its lost-record counter (ebpf_pack.h). Kernel: BTF (CO-RE). No atomics.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "ebpf_pack.h"
#include "ebpf_pack_tcp.h"

char LICENSE[] SEC("license") = "GPL";

/* One retransmission, in BCC's column order. 2 x 4 + 16 + 2 + 16 + 2 + 4 bytes: 48, no padding. */
struct event {
	__u32 pid;
	__u32 ip; /* 4 or 6 */
	ep_inet_addr laddr;
	__u16 lport;
	ep_inet_addr raddr;
	__u16 rport;
	enum tcp_state___ep state;
};

EBPF_PACK_EVENTS(events, struct event, 256 * 1024);

/* The 6.10+ record, as a flavour with the fields used (the older one is in vmlinux.h). */
struct trace_event_raw_tcp_retransmit_skb___ep {
	int state;
	__u16 sport;
	__u16 dport;
	__u16 family;
	__u8 saddr[4];
	__u8 daddr[4];
	__u8 saddr_v6[16];
	__u8 daddr_v6[16];
} __attribute__((preserve_access_index));

/* Fills `e` from a record of type `rec` (either layout: same field names). */
#define FILL(e, rec)                                                                                    \
	do {                                                                                            \
		(e)->state = (enum tcp_state___ep)EP_CORE_READ(rec, state);                             \
		(e)->lport = (__u16)EP_CORE_READ(rec, sport);                                           \
		(e)->rport = (__u16)EP_CORE_READ(rec, dport);                                           \
		if (EP_CORE_READ(rec, family) == EP_AF_INET6) {                                         \
			(e)->ip = 6;                                                                    \
			bpf_core_read((e)->laddr, 16, &(rec)->saddr_v6);                                 \
			bpf_core_read((e)->raddr, 16, &(rec)->daddr_v6);                                 \
		} else {                                                                                \
			__u32 s = 0, d = 0;                                                             \
			(e)->ip = 4;                                                                    \
			bpf_core_read(&s, 4, &(rec)->saddr);                                             \
			bpf_core_read(&d, 4, &(rec)->daddr);                                             \
			ep_inet_addr_v4((e)->laddr, s);                                                 \
			ep_inet_addr_v4((e)->raddr, d);                                                 \
		}                                                                                       \
	} while (0)

SEC("tracepoint/tcp/tcp_retransmit_skb")
int retransmit(void *ctx)
{
	struct event *e = EP_EVENT_RESERVE(events);
	if (!e)
		return 0;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	if (bpf_core_type_exists(struct trace_event_raw_tcp_retransmit_skb___ep)) {
		struct trace_event_raw_tcp_retransmit_skb___ep *rec = ctx;
		FILL(e, rec);
	} else {
		struct trace_event_raw_tcp_event_sk_skb *rec = ctx;
		FILL(e, rec);
	}
	EP_EVENT_SUBMIT(ctx, events, e);
	return 0;
}
