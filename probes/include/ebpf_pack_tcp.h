/*
 * ebpf_pack_tcp.h — TCP states named as BCC's tools print them, for the TCP tools. Include after
 * "ebpf_pack.h".
 */
#ifndef __EBPF_PACK_TCP_H__
#define __EBPF_PACK_TCP_H__

/* The kernel's TCP states (include/net/tcp_states.h). An enum type: ebpf-run prints the names, without
 * the EP__ prefix that keeps them apart from the kernel's own enumerators. */
enum tcp_state___ep {
	EP__ESTABLISHED = 1,
	EP__SYN_SENT = 2,
	EP__SYN_RECV = 3,
	EP__FIN_WAIT1 = 4,
	EP__FIN_WAIT2 = 5,
	EP__TIME_WAIT = 6,
	EP__CLOSE = 7,
	EP__CLOSE_WAIT = 8,
	EP__LAST_ACK = 9,
	EP__LISTEN = 10,
	EP__CLOSING = 11,
	EP__NEW_SYN_RECV = 12,
};

#define EP_IPPROTO_TCP 6

#endif /* __EBPF_PACK_TCP_H__ */
