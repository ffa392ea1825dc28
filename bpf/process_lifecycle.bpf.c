// SPDX-License-Identifier: GPL-2.0
/* Who belongs to which task: a registered thread and everything it forks,
 * transitively, carry the task's slot in `threads`. Counts spawns, execs,
 * short-lived processes, concurrency and each exiting process's peak RSS. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "tracked.bpf.h"

/* Set by the sidecar before load. */
const volatile __u64 short_lived_ns = 100000000; /* 100 ms */
/* Threads one owner's tracked threads may have forked and still have (0: no quota). */
const volatile __u64 max_threads_per_uid = 0;

/* Forks not tracked because their owner held max_threads_per_uid threads. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} threads_over_quota SEC(".maps");

SEC("tp_btf/sched_process_fork")
int BPF_PROG(handle_fork, struct task_struct *parent, struct task_struct *child)
{
	/* `parent` is the forking thread (current), not necessarily the group leader. */
	__u32 parent_tid = parent->pid;
	struct thread_state *parent_state = thread_of(parent_tid);
	if (!parent_state) {
		note_untracked(parent_tid, UNTRACKED_CLONE, false);
		return 0;
	}
	parent_state->last_clone = bpf_ktime_get_ns();
	/* A new task's kernel counters start at zero: its baselines are zero. */
	struct thread_state state = {
		.slot = parent_state->slot,
		.tgid = child->tgid,
		.owner = parent_state->owner,
	};
	/* One owner's forks fill at most its share of `threads`. Counted before
	 * the insert, so the thread's death never comes first. Racy: CPUs that
	 * fork at once may each pass the check, by one thread each. */
	__s64 *count = NULL;
	if (state.owner) {
		count = bpf_map_lookup_elem(&threads_by_owner, &state.owner);
		if (count) {
			__s64 held = *count;
			if (max_threads_per_uid && held > 0 && (__u64)held >= max_threads_per_uid) {
				count_lost(state.slot);
				__u32 zero = 0;
				__u64 *refused = bpf_map_lookup_elem(&threads_over_quota, &zero);
				if (refused)
					*refused += 1; /* per-CPU: no atomics needed */
				return 0;
			}
			state.flags = THREAD_COUNTED;
			__sync_fetch_and_add(count, 1);
		}
	}
	__u32 child_tid = child->pid;
	/* An entry of a thread whose death went unseen (it died before the
	 * scheduling programs were attached) is replaced: off its owner's count. */
	struct thread_state *stale = bpf_map_lookup_elem(&threads, &child_tid);
	if (stale) {
		__u32 stale_owner = stale->owner, stale_flags = stale->flags;
		if (!bpf_map_delete_elem(&threads, &child_tid))
			uncount_thread(stale_owner, stale_flags);
	}
	note_tracked(child_tid);
	if (bpf_map_update_elem(&threads, &child_tid, &state, BPF_ANY)) {
		if (count)
			uncount_thread(state.owner, state.flags);
		count_lost(state.slot);
		return 0;
	}
	if (child->pid != child->tgid)
		return 0; /* a thread, not a process */
	struct task_counters *counters = counters_of(state.slot);
	if (!counters)
		return 0;
	__sync_fetch_and_add(&counters->spawned, 1);
	/* Atomics whose result is used (fetch-add) need Linux 5.12: add, then read. */
	__sync_fetch_and_add(&counters->live_processes, 1);
	raise_to(&counters->max_concurrent, processes_alive(counters));
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(handle_exec, struct task_struct *task, pid_t old_pid)
{
	/* A non-leader thread that execs takes over the leader's pid: follow it. */
	__u32 old_tid = old_pid;
	struct thread_state *state = thread_of(old_tid);
	if (!state)
		return 0;
	__u32 slot = state->slot;
	__u32 new_tid = task->pid;
	if (new_tid != old_tid) {
		/* Owner and count move with it. */
		struct thread_state moved = *state;
		if (bpf_map_delete_elem(&threads, &old_tid))
			moved.flags &= ~THREAD_COUNTED; /* taken out meanwhile: uncounted by who took it */
		/* The old leader's entry, if its death went unseen, is replaced. */
		struct thread_state *leader = bpf_map_lookup_elem(&threads, &new_tid);
		if (leader) {
			__u32 leader_owner = leader->owner, leader_flags = leader->flags;
			if (!bpf_map_delete_elem(&threads, &new_tid))
				uncount_thread(leader_owner, leader_flags);
		}
		note_tracked(new_tid);
		if (bpf_map_update_elem(&threads, &new_tid, &moved, BPF_ANY)) {
			uncount_thread(moved.owner, moved.flags);
			count_lost(slot);
		}
	}
	struct task_counters *counters = counters_of(slot);
	if (counters)
		__sync_fetch_and_add(&counters->execs, 1);
	return 0;
}

/* Process-level facts, final once the whole thread group is dead. (The
 * thread's CPU is charged at its final context switch, scheduling.bpf.c,
 * which is also where it leaves `threads`.) */
static __always_inline int process_exited(struct task_struct *task)
{
	struct thread_state *state = thread_of(task->pid);
	if (!state)
		return 0;
	struct task_counters *counters = counters_of(state->slot);
	if (!counters)
		return 0;
	/* do_exit() folded the mm's high-water RSS into signal->maxrss (pages) before this tracepoint. */
	raise_to(&counters->max_rss_pages, task->signal->maxrss);
	if (state->flags & THREAD_REGISTERED)
		return 0; /* the registered process itself is not one the task spawned */
	/* Never below zero: the exit of a process it did not count (the
	 * registered process, when a thread the task started is its last to
	 * exit) finds it at 0 and leaves it. Two exits that both pass the check
	 * can still take it past zero (task_state.h, processes_alive); exits then
	 * leave it there, and forks bring it back up from zero. */
	if (processes_alive(counters) > 0)
		__sync_fetch_and_add(&counters->live_processes, -1ULL); /* sub is a fetch atomic */
	__u64 lifetime = bpf_ktime_get_ns() - task->group_leader->start_time;
	if (lifetime < short_lived_ns)
		__sync_fetch_and_add(&counters->short_lived, 1);
	return 0;
}

/* Linux 6.16+: the tracepoint says whether this thread was the group's last. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(handle_exit, struct task_struct *task, bool group_dead)
{
	return group_dead ? process_exited(task) : 0;
}

/* Processes whose death was counted, for kernels before 6.16. */
#define DEAD_PROCESSES_MAX_ENTRIES 4096
struct process_id {
	__u32 tgid;
	__u32 pad;
	__u64 start_time; /* the group leader's: tgids are reused, this pair is not */
};
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, DEAD_PROCESSES_MAX_ENTRIES);
	__type(key, struct process_id);
	__type(value, __u8);
} dead_processes SEC(".maps");

/* Before 6.16 it does not: do_exit() has already taken this thread off
 * signal->live, so 0 means the group is dead; threads of one process that
 * exit together may all see 0, and only the first to claim the process in
 * `dead_processes` counts it. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(handle_exit_without_group_dead, struct task_struct *task)
{
	if (task->signal->live.counter != 0)
		return 0;
	struct process_id id = {.tgid = task->tgid, .start_time = task->group_leader->start_time};
	__u8 seen = 1;
	if (bpf_map_update_elem(&dead_processes, &id, &seen, BPF_NOEXIST))
		return 0; /* another thread of it counted it */
	return process_exited(task);
}

char LICENSE[] SEC("license") = "GPL";
