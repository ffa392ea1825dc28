// SPDX-License-Identifier: GPL-2.0
/* Socket bytes of tracked threads: TCP/UDP over IPv4 and IPv6, in all and by
 * endpoint, and their TCP connects. Unix sockets are left out on purpose: they
 * carry local IPC (our own RPC among it), not network. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "endpoints.bpf.h"

#define TCP_SYN_SENT 2

/* The thread's task's counters, for bytes it moved on an IP socket, and the
 * use of the socket's endpoint, if it has one and the task's table room. */
struct socket_use {
	struct task_counters *counters;
	struct endpoint_use *endpoint;
};

/* `in_fexit`: see note_untracked. */
static __always_inline struct socket_use socket_use_of(struct sock *sk, int bytes, bool in_fexit)
{
	struct socket_use use = {};
	if (bytes <= 0)
		return use;
	__u16 family = sk->__sk_common.skc_family;
	if (family != AF_INET && family != AF_INET6)
		return use;
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct thread_state *state = thread_of(tid);
	if (!state) {
		note_untracked(tid, UNTRACKED_SOCKET, in_fexit);
		return use;
	}
	state->last_socket = bpf_ktime_get_ns();
	__u32 slot = state->slot;
	use.counters = counters_of(slot);
	struct endpoint_key key = {};
	if (use.counters && endpoint_of(sk, &key))
		use.endpoint = endpoint_use_of(slot, use.counters, &key);
	return use;
}

static __always_inline void sent(struct sock *sk, int bytes, bool in_fexit)
{
	struct socket_use use = socket_use_of(sk, bytes, in_fexit);
	if (use.counters)
		__sync_fetch_and_add(&use.counters->tx_bytes, bytes);
	if (use.endpoint)
		__sync_fetch_and_add(&use.endpoint->tx_bytes, bytes);
}

static __always_inline void received(struct sock *sk, int bytes, int flags, bool in_fexit)
{
	/* MSG_PEEK reads leave the data in place: it will be received again. */
	if (flags & 2 /* MSG_PEEK */)
		return;
	struct socket_use use = socket_use_of(sk, bytes, in_fexit);
	if (use.counters)
		__sync_fetch_and_add(&use.counters->rx_bytes, bytes);
	if (use.endpoint)
		__sync_fetch_and_add(&use.endpoint->rx_bytes, bytes);
}

/* A TCP connect, on the connecting thread as it sends its SYN (every kernel
 * the product supports has this tracepoint). */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(handle_state, struct sock *sk, int oldstate, int newstate)
{
	if (newstate != TCP_SYN_SENT)
		return 0;
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct thread_state *state = thread_of(tid);
	if (!state) {
		/* A connect is a use of a socket its task, registered later, did not see. */
		note_untracked(tid, UNTRACKED_SOCKET, false);
		return 0;
	}
	state->last_socket = bpf_ktime_get_ns();
	__u32 slot = state->slot;
	struct task_counters *counters = counters_of(slot);
	struct endpoint_key key = {};
	if (!counters || !endpoint_of(sk, &key))
		return 0;
	struct endpoint_use *use = endpoint_use_of(slot, counters, &key);
	if (use)
		__sync_fetch_and_add(&use->connections, 1);
	return 0;
}

/* Recent kernels (6.12 has them, 6.1 not): tracepoints on every socket send and receive. */
SEC("tp_btf/sock_send_length")
int BPF_PROG(handle_send, struct sock *sk, int ret, int flags)
{
	sent(sk, ret, false);
	return 0;
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(handle_recv, struct sock *sk, int ret, int flags)
{
	received(sk, ret, flags, false);
	return 0;
}

/* Before: the return of the IPv4 and IPv6 socket calls every send and receive
 * of a TCP or UDP socket goes through (sendmsg, write, sendto, and their
 * receiving twins). sendfile/splice to a socket go around them. */
SEC("fexit/inet_sendmsg")
int BPF_PROG(handle_inet_send, struct socket *sock, struct msghdr *msg, size_t size, int ret)
{
	sent(sock->sk, ret, true);
	return 0;
}

SEC("fexit/inet6_sendmsg")
int BPF_PROG(handle_inet6_send, struct socket *sock, struct msghdr *msg, size_t size, int ret)
{
	sent(sock->sk, ret, true);
	return 0;
}

SEC("fexit/inet_recvmsg")
int BPF_PROG(handle_inet_recv, struct socket *sock, struct msghdr *msg, size_t size, int flags,
	     int ret)
{
	received(sock->sk, ret, flags, true);
	return 0;
}

SEC("fexit/inet6_recvmsg")
int BPF_PROG(handle_inet6_recv, struct socket *sock, struct msghdr *msg, size_t size, int flags,
	     int ret)
{
	received(sock->sk, ret, flags, true);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
