/* BPF side only: the maps every concern shares (the sidecar loads one copy and
 * hands its fds to the other programs) and the helpers that use them. */
#ifndef TRACER_TRACKED_BPF_H
#define TRACER_TRACKED_BPF_H

#include "task_state.h"
#include "process_lifecycle.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, THREADS_MAX_ENTRIES);
	__type(key, __u32); /* host tid */
	__type(value, struct thread_state);
} threads SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TASK_COUNTERS_MAX_ENTRIES);
	__type(key, __u32); /* task slot */
	__type(value, struct task_counters);
} task_counters SEC(".maps");

/* Each live task's endpoints (bpf/endpoints.bpf.h), and the list of them
 * the sidecar reads at its finish: it holds as many entries as the first. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ENDPOINTS_MAX_ENTRIES);
	__type(key, struct endpoint_key);
	__type(value, struct endpoint_use);
} endpoints SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ENDPOINTS_MAX_ENTRIES);
	__type(key, struct endpoint_index);
	__type(value, struct endpoint_key);
} endpoint_lists SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, EXIT_EVENTS_BYTES);
} exit_events SEC(".maps");

/* Losses that belong to no live task (its counters are already gone). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} unattributed_lost SEC(".maps");

/* Threads in `threads` that tracked threads forked (THREAD_COUNTED), by their
 * owner (thread_state.owner): a fork past --max-tracked-threads-per-uid is not
 * tracked. Who takes a counted entry out of `threads` takes it off here: the
 * kernel at a thread's death, the sidecar (which maps this array) when it
 * takes a thread over. Signed: two decrements that both pass the check at 1
 * can take it below zero, which counts as none. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, THREAD_OWNERS_MAX_ENTRIES);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, __s64);
} threads_by_owner SEC(".maps");

/* A byte per tid, set before its first entry in `threads` is made and
 * cleared when the thread dies: the switch, wake-up and per-event paths read
 * it before any hash lookup, so a thread that was never tracked (most of a
 * host's) costs them one load, not a lookup. Past its end (pid_max raised
 * after load) a tid reads as maybe tracked. Sized by the sidecar to pid_max;
 * mmapped there, which sets the bytes of the threads it registers. */
struct tid_filter_block {
	__u8 tids[TID_FILTER_BLOCK];
};
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1); /* set before load */
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct tid_filter_block);
} maybe_tracked SEC(".maps");

static __always_inline __u8 *tid_flag(__u32 tid)
{
	__u32 block = tid / TID_FILTER_BLOCK;
	struct tid_filter_block *flags = bpf_map_lookup_elem(&maybe_tracked, &block);
	return flags ? &flags->tids[tid & (TID_FILTER_BLOCK - 1)] : NULL;
}

/* The thread's entry in `threads`, if it has one. */
static __always_inline struct thread_state *thread_of(__u32 tid)
{
	__u8 *flag = tid_flag(tid);
	if (flag && !*flag)
		return NULL;
	return bpf_map_lookup_elem(&threads, &tid);
}

/* Before any insert into `threads`. */
static __always_inline void note_tracked(__u32 tid)
{
	__u8 *flag = tid_flag(tid);
	if (flag)
		*flag = 1;
}

/* At the thread's death, once its entry is gone: no new thread can have its
 * tid yet, so nobody sets the byte meanwhile. */
static __always_inline void forget_dead(__u32 tid)
{
	__u8 *flag = tid_flag(tid);
	if (flag && *flag)
		*flag = 0;
}

/* When an untracked thread last started a thread or process, or used a TCP
 * or UDP socket (untracked_times): a task whose registration reaches the
 * sidecar after it began learns whether what it did meanwhile went
 * unfollowed. The newest time in these two maps and in the sidecar's own
 * note of the thread's last task (observe/ended_task_notes.h) is exact:
 *  - each CPU's newest times of one thread per tid & (UNTRACKED_NOTE_SLOTS - 1)
 *    (a per-CPU array: a stream's thousands of sends cost a load and a store
 *    each, not a hash update; a stream's two ends take turns);
 *  - a thread whose note another took the place of: its times, raised into
 *    that CPU's value (an LRU per-CPU hash), so no CPU overwrites another's
 *    later time. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, UNTRACKED_NOTE_SLOTS);
	__type(key, __u32);
	__type(value, struct untracked_note);
} untracked_notes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, UNTRACKED_EVICTED_MAX_ENTRIES);
	__type(key, __u32); /* host tid */
	__type(value, struct untracked_times);
} untracked_evicted SEC(".maps");

static __always_inline void raise_to(unsigned long long *target, unsigned long long value)
{
	/* Racy max is fine: a lost update only ever keeps a smaller, earlier maximum
	 * that the next update (or the sidecar's own sample) overtakes. */
	if (value > *target)
		*target = value;
}

/* Into this CPU's value in untracked_evicted: written by this CPU only. */
static __always_inline void move_out(__u32 tid, struct untracked_times *times)
{
	struct untracked_times *held = bpf_map_lookup_elem(&untracked_evicted, &tid);
	if (!held) {
		/* Created meanwhile by another CPU or not, this sets this CPU's value. */
		bpf_map_update_elem(&untracked_evicted, &tid, times, BPF_ANY);
		return;
	}
	for (int kind = 0; kind < UNTRACKED_KINDS; kind++)
		raise_to(&held->at[kind], times->at[kind]);
}

/* `preemptible`: the caller is an fentry/fexit program, which (unlike a
 * tracepoint's) another thread may preempt on this CPU midway through a
 * slot; it raises its CPU's value in untracked_evicted instead, a lookup
 * rather than a load and a store, where each thread has its own entry. */
static __always_inline void note_untracked(__u32 tid, __u32 kind, bool preemptible)
{
	__u64 now = bpf_ktime_get_ns();
	kind &= UNTRACKED_KINDS - 1;
	if (preemptible) {
		struct untracked_times mine = {};
		mine.at[kind] = now;
		move_out(tid, &mine);
		return;
	}
	__u32 index = tid & (UNTRACKED_NOTE_SLOTS - 1);
	struct untracked_note *note = bpf_map_lookup_elem(&untracked_notes, &index);
	if (!note)
		return;
	if (note->tid != tid) {
		if (note->tid)
			move_out(note->tid, &note->times);
		note->tid = tid;
		note->times = (struct untracked_times){};
	}
	note->times.at[kind] = now;
}

static __always_inline struct task_counters *counters_of(__u32 slot)
{
	return bpf_map_lookup_elem(&task_counters, &slot);
}

static __always_inline void count_lost(__u32 slot)
{
	struct task_counters *counters = counters_of(slot);
	if (counters) {
		__sync_fetch_and_add(&counters->lost, 1);
		return;
	}
	__u32 zero = 0;
	__u64 *lost = bpf_map_lookup_elem(&unattributed_lost, &zero);
	if (lost)
		*lost += 1; /* per-CPU: no atomics needed */
}

/* A counted thread's entry left `threads` (the caller's delete succeeded). */
static __always_inline void uncount_thread(__u32 owner, __u32 flags)
{
	if (!(flags & THREAD_COUNTED))
		return;
	__s64 *count = bpf_map_lookup_elem(&threads_by_owner, &owner);
	/* Atomics whose result is used need Linux 5.12: check, then subtract. */
	if (count && *count > 0)
		__sync_fetch_and_add(count, -1);
}

#endif
