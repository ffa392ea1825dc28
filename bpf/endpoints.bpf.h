/* BPF side only: the endpoints of a task (task_state.h, struct endpoint_key),
 * what it waited on them, sent and received, and its connections to them.
 * Each task has a table of at most ENDPOINTS_PER_TASK; what goes past it is
 * in the task's totals only, and the sidecar says so. */
#ifndef TRACER_ENDPOINTS_BPF_H
#define TRACER_ENDPOINTS_BPF_H

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "tracked.bpf.h"

#define AF_INET 2
#define AF_INET6 10
#define TCP_LISTEN 10
/* A claim of a place in a task's list gives up after this many places
 * another CPU took first (ever more than one is rare). */
#define ENDPOINT_CLAIM_TRIES 4

/* The endpoint of IP socket `sk` into `key` (its slot untouched): its peer,
 * or its own address if it listens. False for other families and for a
 * socket with no peer (unconnected UDP): its use is in the totals only. */
static __always_inline bool endpoint_of(struct sock *sk, struct endpoint_key *key)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != AF_INET && family != AF_INET6)
		return false;
	__u16 port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	__u32 listening = 0;
	if (port == 0) {
		if (BPF_CORE_READ(sk, __sk_common.skc_state) != TCP_LISTEN)
			return false;
		port = BPF_CORE_READ(sk, __sk_common.skc_num);
		listening = 1;
	}
	key->family = family;
	key->port = port;
	key->listening = listening;
	__builtin_memset(key->addr, 0, sizeof(key->addr));
	if (family == AF_INET) {
		__u32 addr = listening ? BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr)
				       : BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__builtin_memcpy(key->addr, &addr, sizeof(addr));
	} else if (listening) {
		BPF_CORE_READ_INTO(&key->addr, sk, __sk_common.skc_v6_rcv_saddr);
	} else {
		BPF_CORE_READ_INTO(&key->addr, sk, __sk_common.skc_v6_daddr);
	}
	return true;
}

/* The use of `key`'s endpoint by the task of `slot`, made if new and its
 * table has room; NULL past that. The list takes the endpoint at the first
 * free place from the count (places are claimed, never released, while the
 * task lives, so the list has no gaps). No fetching atomics: 5.10 has none. */
static __always_inline struct endpoint_use *endpoint_use_of(__u32 slot,
							    struct task_counters *counters,
							    struct endpoint_key *key)
{
	key->slot = slot;
	struct endpoint_use *use = bpf_map_lookup_elem(&endpoints, key);
	if (use)
		return use;
	__u64 from = counters->endpoints;
	struct endpoint_use zero = {};
	for (int i = 0; i < ENDPOINT_CLAIM_TRIES; i++) {
		struct endpoint_index at = {.slot = slot, .index = from + i};
		if (from + i >= ENDPOINTS_PER_TASK)
			break;
		if (bpf_map_update_elem(&endpoint_lists, &at, key, BPF_NOEXIST) != 0)
			continue; /* taken (or the map is full: the next try fails too) */
		raise_to(&counters->endpoints, at.index + 1);
		/* Another CPU may have made the same endpoint meanwhile: then it
		 * is listed twice, which the sidecar reads as once. */
		bpf_map_update_elem(&endpoints, key, &zero, BPF_NOEXIST);
		return bpf_map_lookup_elem(&endpoints, key);
	}
	/* The table is full, or the map (or a race lost too often): this
	 * endpoint's use goes unlisted, and the sidecar says so. */
	counters->endpoints = ENDPOINTS_PER_TASK + 1;
	return NULL;
}

#endif
