// SPDX-License-Identifier: GPL-2.0
/* OOM kills of tracked processes, and the resident memory each task's own
 * threads faulted in (peak RSS of whole processes comes from process exit and
 * the sidecar's sampler). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "tracked.bpf.h"

#define MM_FILEPAGES 0
#define MM_ANONPAGES 1
#define MM_SHMEMPAGES 3
#define MM_COUNTERS 4
#define RSS_UNSEEN (-(1LL << 62)) /* watched_mm.last: no value seen yet */

/* An address space a tracked thread changed the RSS of: its counters as last
 * seen, so the next change is a difference. */
struct watched_mm {
	long long last[MM_COUNTERS];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, WATCHED_MMS_MAX_ENTRIES);
	__type(key, __u64); /* the mm_struct's address */
	__type(value, struct watched_mm);
} watched_mms SEC(".maps");

/* Page faults of every process on the host come here: each CPU remembers the
 * last address space it found unwatched, and skips looking it up while no
 * address space has been added since (watch_generation); a tracked thread's
 * change still goes on, to watch its address space. */
struct unwatched {
	__u64 mm;
	__u64 generation;
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct unwatched);
} last_unwatched SEC(".maps");
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} watch_generation SEC(".maps");

/* The counter's value, for kernels that do not pass it (6.2+): its shared
 * part, which each CPU's share joins in batches (percpu_counter_batch pages). */
static __always_inline long long rss_counter(struct mm_struct *mm, int member)
{
	if (member == MM_FILEPAGES)
		return mm->rss_stat[MM_FILEPAGES].count;
	if (member == MM_ANONPAGES)
		return mm->rss_stat[MM_ANONPAGES].count;
	return mm->rss_stat[MM_SHMEMPAGES].count;
}

/* `given` is the counter's new value where the tracepoint passes it; else
 * (read_counter) it is read here, once a change turns out to matter: this
 * runs on every page fault of the host, most of them of address spaces no
 * task's thread uses. */
static __always_inline int rss_changed(struct mm_struct *mm, int member, long long given,
				       bool read_counter)
{
	if (member != MM_FILEPAGES && member != MM_ANONPAGES && member != MM_SHMEMPAGES)
		return 0; /* swap entries are not resident */
	__u32 zero = 0;
	__u64 key = (__u64)mm;
	__u64 *generation = bpf_map_lookup_elem(&watch_generation, &zero);
	struct unwatched *cache = bpf_map_lookup_elem(&last_unwatched, &zero);
	if (!generation || !cache)
		return 0;
	struct thread_state *state = thread_of((__u32)bpf_get_current_pid_tgid());
	if (!state && cache->mm == key && cache->generation == *generation)
		return 0;
	struct watched_mm *watched = bpf_map_lookup_elem(&watched_mms, &key);
	if (!watched && !state) {
		cache->mm = key;
		cache->generation = *generation;
		return 0;
	}
	long long count = read_counter ? rss_counter(mm, member) : given;
	if (!watched) {
		/* First seen: where the counters stand, nothing charged yet. Where
		 * the kernel passes only the changed one, the others are set at
		 * their first change, which is not charged either (a batch of at
		 * most 64 pages): never the whole counter as one change. */
		struct watched_mm fresh = {.last = {RSS_UNSEEN, RSS_UNSEEN, RSS_UNSEEN, RSS_UNSEEN}};
		if (read_counter) {
			fresh.last[MM_FILEPAGES] = rss_counter(mm, MM_FILEPAGES);
			fresh.last[MM_ANONPAGES] = rss_counter(mm, MM_ANONPAGES);
			fresh.last[MM_SHMEMPAGES] = rss_counter(mm, MM_SHMEMPAGES);
		}
		fresh.last[member & (MM_COUNTERS - 1)] = count;
		bpf_map_update_elem(&watched_mms, &key, &fresh, BPF_NOEXIST);
		__sync_fetch_and_add(generation, 1);
		return 0;
	}
	long long *last = &watched->last[member & (MM_COUNTERS - 1)];
	long long delta = *last == RSS_UNSEEN ? 0 : count - *last;
	*last = count;
	if (!state || !delta)
		return 0;
	struct task_counters *counters = counters_of(state->slot);
	if (!counters)
		return 0;
	__sync_fetch_and_add(&counters->own_rss_pages, delta);
	/* Racy, as raise_to: a lost raise is overtaken by the next change. */
	long long now = counters->own_rss_pages;
	if (now > counters->own_rss_peak_pages)
		counters->own_rss_peak_pages = now;
	return 0;
}

/* Linux 5.5-6.1: the counter's new value is passed (a thread's cached
 * changes arrive every 64 faults, from that thread). */
SEC("tp_btf/rss_stat")
int BPF_PROG(handle_rss_stat_with_count, struct mm_struct *mm, int member, long count)
{
	return rss_changed(mm, member, count, false);
}

/* 6.2+: every change, the counter read here. */
SEC("tp_btf/rss_stat")
int BPF_PROG(handle_rss_stat, struct mm_struct *mm, int member)
{
	return rss_changed(mm, member, 0, true);
}

static __always_inline int oom_killed(__u32 tid)
{
	struct thread_state *state = thread_of(tid);
	if (!state)
		return 0;
	struct task_counters *counters = counters_of(state->slot);
	if (counters)
		__sync_fetch_and_add(&counters->oom_kills, 1);
	return 0;
}

/* Newer kernels (6.1 has it, 5.10 not): the victim's task. */
SEC("tp_btf/mark_victim")
int BPF_PROG(handle_oom_victim, struct task_struct *task, uid_t uid)
{
	return oom_killed(task->pid);
}

/* Before: its pid (the victim thread's, as the kernel numbers it). */
SEC("tp_btf/mark_victim")
int BPF_PROG(handle_oom_victim_pid, int pid)
{
	return oom_killed(pid);
}

char LICENSE[] SEC("license") = "GPL";
