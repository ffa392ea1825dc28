// SPDX-License-Identifier: GPL-2.0
/* A task's start, marked by its own thread: the client library calls
 * prctl(TASK_START_MARK_OPTION, cookie) just before it reads the thread's
 * counters. From that moment the thread counts for a slot the sidecar set
 * aside (start_slots), so what it does before its one-way registration reaches
 * the sidecar is counted as it happens: off-CPU time by cause, socket bytes,
 * the processes it starts. The registration claims the slot (its mark names
 * the cookie); the sidecar releases a mark nobody claims. fentry on
 * security_task_prctl, which prctl calls first for every option: nothing else
 * on the node pays for it (a syscall tracepoint would slow every syscall). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "tracked.bpf.h"
#include "task_start.h"

struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, START_SLOTS_MAX_ENTRIES);
	__type(value, __u32);
} start_slots SEC(".maps");

/* Set by the sidecar while a process is connected to it: a process that
 * cannot reach the sidecar's socket does not put threads in its maps. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MARKING_PROCESSES_MAX_ENTRIES);
	__type(key, __u32); /* tgid, in the sidecar's PID namespace */
	__type(value, __u32); /* its owner (thread_state.owner) */
} marking_processes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, START_SLOTS_MAX_ENTRIES);
	__type(key, __u32); /* slot */
	__type(value, struct start_mark);
} start_marks SEC(".maps");

/* Marks that found no slot left, or a full map: those tasks count from their registration. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} start_marks_refused SEC(".maps");

static __always_inline void refused(void)
{
	__u32 zero = 0;
	__u64 *count = bpf_map_lookup_elem(&start_marks_refused, &zero);
	if (count)
		*count += 1; /* per-CPU: no atomics needed */
}

/* A new task's counters: global, off the program's 512 bytes of stack. */
static const struct task_counters no_counts = {};

SEC("fentry/security_task_prctl")
int BPF_PROG(mark_task_start, int option, unsigned long cookie)
{
	if (option != TASK_START_MARK_OPTION)
		return 0;
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id;
	__u32 tgid = id >> 32;
	__u32 *owner = bpf_map_lookup_elem(&marking_processes, &tgid);
	if (!owner)
		return 0;
	/* Counted for a task already (one it is nested in, or shares the thread
	 * with): its registration says how. */
	if (thread_of(tid))
		return 0;
	__u32 slot;
	if (bpf_map_pop_elem(&start_slots, &slot)) {
		refused();
		return 0;
	}
	/* bpf_get_current_task_btf() needs Linux 5.11: read through CO-RE. */
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct start_mark mark = {
		.tid = tid,
		.cookie = (__u32)cookie,
		.at = bpf_ktime_get_ns(),
		.runtime = BPF_CORE_READ(task, se.sum_exec_runtime),
		.run_delay = BPF_CORE_READ(task, sched_info.run_delay),
		.rchar = BPF_CORE_READ(task, ioac.rchar),
		.wchar = BPF_CORE_READ(task, ioac.wchar),
		.read_bytes = BPF_CORE_READ(task, ioac.read_bytes),
		.write_bytes = BPF_CORE_READ(task, ioac.write_bytes),
	};
	struct thread_state state = {
		.slot = slot,
		.flags = THREAD_REGISTERED,
		.tgid = tgid,
		.runtime = mark.runtime,
		.utime = BPF_CORE_READ(task, utime),
		.stime = BPF_CORE_READ(task, stime),
		.run_delay = mark.run_delay,
		.rchar = mark.rchar,
		.wchar = mark.wchar,
		.read_bytes = mark.read_bytes,
		.write_bytes = mark.write_bytes,
		.owner = *owner, /* a registered thread: not counted (live tasks per uid bound them) */
	};
	if (bpf_map_update_elem(&task_counters, &slot, &no_counts, BPF_NOEXIST))
		goto full;
	if (bpf_map_update_elem(&start_marks, &slot, &mark, BPF_NOEXIST))
		goto no_mark;
	note_tracked(tid);
	if (bpf_map_update_elem(&threads, &tid, &state, BPF_NOEXIST))
		goto no_thread;
	return 0;
no_thread:
	bpf_map_delete_elem(&start_marks, &slot);
no_mark:
	bpf_map_delete_elem(&task_counters, &slot);
full:
	refused();
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
