// SPDX-License-Identifier: GPL-2.0
/* OOM kills of tracked processes. (Peak RSS comes from process exit and the
 * sidecar's sampler.) */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "tracked.bpf.h"

static __always_inline int oom_killed(__u32 tid)
{
	struct thread_state *state = bpf_map_lookup_elem(&threads, &tid);
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
