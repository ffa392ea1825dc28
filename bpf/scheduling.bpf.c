// SPDX-License-Identifier: GPL-2.0
/* Charges each tracked thread's kernel counters to its task whenever it leaves
 * a CPU: CPU time (se.sum_exec_runtime), runqueue wait (sched_info.run_delay),
 * storage and syscall I/O (ioac). The deltas are the kernel's own accounting,
 * so nothing is sampled or estimated. Off-CPU time is split by why the thread
 * left: D state (blocked on I/O) or S state (sleeping), ended by its wakeup;
 * a sleep by its cause (sleep_cause.bpf.h), a sleep on the network also by
 * its endpoint (endpoints.bpf.h). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "tracked.bpf.h"
#include "sleep_cause.bpf.h"

#define TASK_INTERRUPTIBLE 0x1
#define TASK_UNINTERRUPTIBLE 0x2
#define TASK_DEAD 0x80

static __always_inline __u64 delta(__u64 now, __u64 *last)
{
	__u64 d = now > *last ? now - *last : 0;
	*last = now;
	return d;
}

/* A newly registered thread: its counters are where its task began (its
 * client's reading, or the sidecar's), whatever it did since; only the
 * user/system split, which procfs does not give in the kernel's units, starts
 * at its first switch. Its voluntary switches until then say whether it slept
 * unseen since the reading; `leaving_voluntarily`: the switch under way is
 * one, counted already (__schedule counts it before the tracepoint). */
static __always_inline void complete_baseline(struct thread_state *state, struct task_struct *task,
					      bool leaving_voluntarily)
{
	state->utime = task->utime;
	state->stime = task->stime;
	if (!(state->flags & THREAD_FOLLOWED)) {
		state->switches_before_followed = task->nvcsw - (leaving_voluntarily ? 1 : 0);
		state->flags |= THREAD_FOLLOWED;
	}
	state->flags &= ~THREAD_BASELINE_PENDING;
}

/* Adds what a counter grew by since it was last charged. Most switches move
 * only a few counters: skipping zero deltas saves their locked adds, which
 * matters on the context-switch path. */
static __always_inline __u64 add_growth(unsigned long long *total, __u64 now, __u64 *last)
{
	__u64 d = delta(now, last);
	if (d)
		__sync_fetch_and_add(total, d);
	return d;
}

static __always_inline void charge(struct thread_state *state, struct task_counters *counters,
				   struct task_struct *task)
{
	state->charged += add_growth(&counters->runtime_ns, task->se.sum_exec_runtime,
				     &state->runtime);
	add_growth(&counters->utime_raw, task->utime, &state->utime);
	add_growth(&counters->stime_raw, task->stime, &state->stime);
	add_growth(&counters->run_delay_ns, task->sched_info.run_delay, &state->run_delay);
	add_growth(&counters->rchar, task->ioac.rchar, &state->rchar);
	add_growth(&counters->wchar, task->ioac.wchar, &state->wchar);
	add_growth(&counters->read_bytes, task->ioac.read_bytes, &state->read_bytes);
	add_growth(&counters->write_bytes, task->ioac.write_bytes, &state->write_bytes);
}

/* Ends a sleep that began at switch-out: D time is blocked I/O, S time is
 * sleep, by its cause. */
static __always_inline void end_sleep(struct thread_state *state, __u64 now)
{
	if (!state->off_since)
		return;
	struct task_counters *counters = counters_of(state->slot);
	if (counters) {
		__u64 slept = now - state->off_since;
		if (state->flags & THREAD_OFF_BLOCKED) {
			__sync_fetch_and_add(&counters->blocked_io_ns, slept);
		} else {
			__sync_fetch_and_add(&counters->sleep_ns, slept);
			__u32 cause = state->off_cause & ~SLEEP_WAIT_SET;
			if (cause < SLEEP_CAUSES)
				__sync_fetch_and_add(&counters->sleep_by_cause_ns[cause], slept);
			if (cause == SLEEP_NETWORK && state->off_endpoint.family) {
				struct endpoint_key key = state->off_endpoint;
				struct endpoint_use *use = endpoint_use_of(state->slot, counters, &key);
				if (use)
					__sync_fetch_and_add(&use->wait_ns, slept);
			}
		}
	}
	state->off_since = 0;
	state->flags &= ~(THREAD_OFF_BLOCKED | THREAD_OFF_SLEEPING);
}

static __always_inline void report_exit(struct thread_state *state, struct task_struct *task)
{
	struct thread_exit_event *event =
		bpf_ringbuf_reserve(&exit_events, sizeof(*event), 0);
	if (!event) {
		count_lost(state->slot);
		return;
	}
	event->slot = state->slot;
	event->tid = task->pid;
	event->tgid = task->tgid;
	event->is_leader = task->pid == task->tgid;
	event->cpu_ns = state->charged;
	bpf_probe_read_kernel_str(event->comm, sizeof(event->comm), task->group_leader->comm);
	/* Waking the sidecar for every exit would cost more than the exit itself in
	 * an exec storm: wake it only when a quarter of the buffer is used; it also
	 * drains once a second and whenever a task finishes. */
	__u64 queued = bpf_ringbuf_query(&exit_events, BPF_RB_AVAIL_DATA);
	bpf_ringbuf_submit(event, queued >= EXIT_EVENTS_BYTES / 4 ? BPF_RB_FORCE_WAKEUP
								  : BPF_RB_NO_WAKEUP);
}

/* A thread's task state as it switches out: `__state` from 5.14, `state`
 * before. Both are local flavours, so the program builds against a
 * vmlinux.h of either era. */
struct task_struct___5_14 {
	unsigned int __state;
} __attribute__((preserve_access_index));
struct task_struct___pre_5_14 {
	long state;
} __attribute__((preserve_access_index));

static __always_inline unsigned int state_of(struct task_struct *task)
{
	struct task_struct___5_14 *now = (void *)task;
	if (bpf_core_field_exists(now->__state))
		return BPF_CORE_READ(now, __state);
	return BPF_CORE_READ((struct task_struct___pre_5_14 *)task, state);
}

static __always_inline int switched(bool preempt, struct task_struct *prev,
				    struct task_struct *next, unsigned int prev_state)
{
	__u64 now = 0;
	__u32 prev_tid = prev->pid;
	struct thread_state *state = thread_of(prev_tid);
	if (state) {
		now = bpf_ktime_get_ns();
		struct task_counters *counters = counters_of(state->slot);
		if (state->flags & THREAD_BASELINE_PENDING)
			complete_baseline(state, prev, !preempt && prev_state);
		if (counters)
			charge(state, counters, prev);
		if (prev_state & TASK_DEAD) {
			/* Its last switch: the counters above are final. */
			if (counters)
				report_exit(state, prev);
			/* Read first: a deleted entry may be reused at once. */
			__u32 owner = state->owner, flags = state->flags;
			if (!bpf_map_delete_elem(&threads, &prev_tid))
				uncount_thread(owner, flags);
			forget_dead(prev_tid);
		} else if (!preempt && (prev_state & (TASK_INTERRUPTIBLE | TASK_UNINTERRUPTIBLE))) {
			/* A preempted thread stays runnable, whatever its state says. */
			state->off_since = now;
			if (prev_state & TASK_UNINTERRUPTIBLE) {
				state->flags |= THREAD_OFF_BLOCKED;
			} else {
				state->flags |= THREAD_OFF_SLEEPING;
				state->off_cause = sleep_cause(prev, &state->off_endpoint);
			}
		}
	} else if (prev_state & TASK_DEAD) {
		forget_dead(prev_tid); /* tracked once, its entry gone since */
	}

	__u32 next_tid = next->pid;
	state = thread_of(next_tid);
	if (state) {
		if (state->flags & THREAD_BASELINE_PENDING)
			complete_baseline(state, next, false);
		end_sleep(state, now ? now : bpf_ktime_get_ns()); /* in case its wakeup went unseen */
	}
	return 0;
}

/* Linux 5.18+: the tracepoint passes the state the scheduler acted on. */
SEC("tp_btf/sched_switch")
int BPF_PROG(handle_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	return switched(preempt, prev, next, prev_state);
}

/* Before 5.18 it does not: the state is read from the task, where the
 * scheduler leaves it (a sleep cut short by a signal reads as running). */
SEC("tp_btf/sched_switch")
int BPF_PROG(handle_switch_without_prev_state, bool preempt, struct task_struct *prev,
	     struct task_struct *next)
{
	return switched(preempt, prev, next, state_of(prev));
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(handle_wakeup, struct task_struct *task)
{
	struct thread_state *state = thread_of(task->pid);
	if (!state)
		return 0;
	__u64 now = bpf_ktime_get_ns();
	if (!state->off_since && !state->woke_unseen)
		state->woke_unseen = now; /* asleep since before it was followed */
	end_sleep(state, now);
	return 0;
}

/* A new thread or process starts runnable: nothing to end, nothing unseen. */
SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(handle_wakeup_new, struct task_struct *task)
{
	struct thread_state *state = thread_of(task->pid);
	if (state)
		end_sleep(state, bpf_ktime_get_ns());
	return 0;
}

/* hrtimer_wakeup, the function of a sleeping task's own timer: set before
 * load from /proc/kallsyms (0: unknown, and this program is not loaded). */
const volatile __u64 hrtimer_wakeup_fn = 0;

/* A wait on a set of descriptors that its own timeout ends was a timer sleep:
 * asyncio.sleep() is epoll_wait with a timeout, not the network. */
SEC("tp_btf/hrtimer_expire_entry")
int BPF_PROG(handle_hrtimer_expire, struct hrtimer *timer)
{
	/* Every timer of the host expires here: a direct load, not a probe read. */
	if ((__u64)timer->function != hrtimer_wakeup_fn)
		return 0;
	struct hrtimer_sleeper *sleeper = container_of(timer, struct hrtimer_sleeper, timer);
	struct task_struct *task = BPF_CORE_READ(sleeper, task);
	if (!task)
		return 0;
	struct thread_state *state = thread_of(BPF_CORE_READ(task, pid));
	if (state && state->off_since && (state->off_cause & SLEEP_WAIT_SET))
		state->off_cause = SLEEP_WAIT_SET | SLEEP_TIMER;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
