// SPDX-License-Identifier: GPL-2.0
/* Who belongs to which task: a registered thread and everything it forks,
 * transitively, carry the task's slot in tracked_threads. Process lifecycle
 * tracepoints keep that map current and count spawns and execs per task. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "task_tracking.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TRACKED_THREADS_MAX_ENTRIES);
	__type(key, __u32);   /* host tid */
	__type(value, __u32); /* task slot */
} tracked_threads SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TASK_COUNTERS_MAX_ENTRIES);
	__type(key, __u32); /* task slot */
	__type(value, struct task_counters);
} task_counters SEC(".maps");

/* Failures that are not attributable to a task (its counters are gone). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} unattributed_lost SEC(".maps");

static __always_inline void count_lost(__u32 slot)
{
	struct task_counters *counters = bpf_map_lookup_elem(&task_counters, &slot);
	if (counters) {
		__sync_fetch_and_add(&counters->lost, 1);
		return;
	}
	__u32 zero = 0;
	__u64 *lost = bpf_map_lookup_elem(&unattributed_lost, &zero);
	if (lost)
		*lost += 1; /* per-CPU: no atomics needed */
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(handle_fork, struct task_struct *parent, struct task_struct *child)
{
	/* `parent` is the forking thread (current), not necessarily the group leader. */
	__u32 parent_tid = parent->pid;
	__u32 *slot = bpf_map_lookup_elem(&tracked_threads, &parent_tid);
	if (!slot)
		return 0;
	__u32 task_slot = *slot;
	__u32 child_tid = child->pid;
	if (bpf_map_update_elem(&tracked_threads, &child_tid, &task_slot, BPF_ANY)) {
		count_lost(task_slot);
		return 0;
	}
	if (child->pid == child->tgid) {
		struct task_counters *counters = bpf_map_lookup_elem(&task_counters, &task_slot);
		if (counters)
			__sync_fetch_and_add(&counters->spawned, 1);
	}
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(handle_exec, struct task_struct *task, pid_t old_pid)
{
	/* A non-leader thread that execs takes over the leader's pid: follow it. */
	__u32 old_tid = old_pid;
	__u32 *slot = bpf_map_lookup_elem(&tracked_threads, &old_tid);
	if (!slot)
		return 0;
	__u32 task_slot = *slot;
	__u32 new_tid = task->pid;
	if (new_tid != old_tid) {
		bpf_map_delete_elem(&tracked_threads, &old_tid);
		if (bpf_map_update_elem(&tracked_threads, &new_tid, &task_slot, BPF_ANY))
			count_lost(task_slot);
	}
	struct task_counters *counters = bpf_map_lookup_elem(&task_counters, &task_slot);
	if (counters)
		__sync_fetch_and_add(&counters->execs, 1);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(handle_exit, struct task_struct *task)
{
	__u32 tid = task->pid;
	bpf_map_delete_elem(&tracked_threads, &tid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
