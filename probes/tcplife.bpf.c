/*
 * tcplife — every TCP connection when it closes: the process, both ends, the bytes sent and received and
 * how long it lived, in the columns of BCC's `tcplife` (PID COMM LADDR LPORT RADDR RPORT TX_KB RX_KB
 * MS). Options as BCC's: -p PID, -L PORT (this local port only), -D PORT (this remote port only).
 * Attach point: tracepoint sock/inet_sock_set_state (BCC's own choice where it exists, 4.16+): a
 * connection is born at its first change to SYN_SENT, SYN_RECV or ESTABLISHED, its process is the one
 * current at SYN_SENT (an active open) or LAST_ACK (a passive close), else the one current when it
 * closes; at CLOSE the record is sent. Maps: `births` (HASH, socket address → ns), `idents` (HASH,
 * socket address → pid and comm), `events` (RINGBUF, 256 KiB, perf buffer before 5.8) and its
 * lost-record counter (ebpf_pack.h). Bytes are tcp_sock's bytes_acked and bytes_received. Kernel: BTF
 * (CO-RE). No atomics: loads on 32-bit ARM with JIT.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "ebpf_pack.h"
#include "ebpf_pack_tcp.h"

char LICENSE[] SEC("license") = "GPL";

/* One closed connection, in BCC's column order. 4 + 16 + 16 + 2 + 16 + 2 + 3 x 8 bytes: 80, no padding. */
struct event {
	__u32 pid;
	char comm[EP_COMM_LEN];
	ep_inet_addr laddr;
	__u16 lport;
	ep_inet_addr raddr;
	__u16 rport;
	__u64 tx_kb;
	__u64 rx_kb;
	__u64 ms;
};

struct ident {
	__u32 pid;
	char comm[EP_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u64);   /* socket address */
	__type(value, __u64); /* ns */
} births EP_SCRATCH SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u64); /* socket address */
	__type(value, struct ident);
} idents EP_SCRATCH SEC(".maps");

EBPF_PACK_EVENTS(events, struct event, 256 * 1024);

const volatile __u32 filter_pid EP_OPTION("-p PID", "trace this process id only") = 0;
const volatile __u32 filter_lport EP_OPTION("-L PORT", "trace this local port only") = 0;
const volatile __u32 filter_dport EP_OPTION("-D PORT", "trace this remote port only") = 0;

struct tcp_sock___ep {
	__u64 bytes_received;
	__u64 bytes_acked;
} __attribute__((preserve_access_index));

SEC("tracepoint/sock/inet_sock_set_state")
int set_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	if (EP_CORE_READ(ctx, protocol) != EP_IPPROTO_TCP)
		return 0;
	__u64 sk = EP_CORE_READ(ctx, skaddr);
	__u32 newstate = (__u32)EP_CORE_READ(ctx, newstate);
	__u16 lport = (__u16)EP_CORE_READ(ctx, sport), rport = (__u16)EP_CORE_READ(ctx, dport);

	if ((filter_lport && lport != filter_lport) || (filter_dport && rport != filter_dport))
		return 0;
	if (newstate < EP__FIN_WAIT1 && !bpf_map_lookup_elem(&births, &sk)) {
		__u64 now = bpf_ktime_get_ns();
		bpf_map_update_elem(&births, &sk, &now, BPF_ANY);
	}
	if (newstate == EP__SYN_SENT || newstate == EP__LAST_ACK) {
		struct ident id = { .pid = bpf_get_current_pid_tgid() >> 32 };
		bpf_get_current_comm(id.comm, sizeof(id.comm));
		bpf_map_update_elem(&idents, &sk, &id, BPF_ANY);
	}
	if (newstate != EP__CLOSE)
		return 0;

	__u64 *born = bpf_map_lookup_elem(&births, &sk);
	if (!born)
		goto done; /* closed before this tool started watching it */
	struct ident *known = bpf_map_lookup_elem(&idents, &sk);
	__u32 pid = known ? known->pid : bpf_get_current_pid_tgid() >> 32;
	if (filter_pid && pid != filter_pid)
		goto done;
	struct event *e = EP_EVENT_RESERVE(events);
	if (!e)
		goto done;
	e->pid = pid;
	if (known)
		__builtin_memcpy(e->comm, known->comm, sizeof(e->comm));
	else
		bpf_get_current_comm(e->comm, sizeof(e->comm));
	e->lport = lport;
	e->rport = rport;
	if (EP_CORE_READ(ctx, family) == EP_AF_INET6) {
		bpf_core_read(e->laddr, 16, &ctx->saddr_v6);
		bpf_core_read(e->raddr, 16, &ctx->daddr_v6);
	} else {
		__u32 s = 0, d = 0;
		bpf_core_read(&s, 4, &ctx->saddr);
		bpf_core_read(&d, 4, &ctx->daddr);
		ep_inet_addr_v4(e->laddr, s);
		ep_inet_addr_v4(e->raddr, d);
	}
	struct tcp_sock___ep *tp = (void *)(unsigned long)sk;
	e->tx_kb = EP_CORE_READ(tp, bytes_acked) >> 10;
	e->rx_kb = EP_CORE_READ(tp, bytes_received) >> 10;
	e->ms = ep_ns_to_ms(bpf_ktime_get_ns() - *born);
	EP_EVENT_SUBMIT(ctx, events, e);
done:
	bpf_map_delete_elem(&births, &sk);
	bpf_map_delete_elem(&idents, &sk);
	return 0;
}
