/* Shared between task_tracking.bpf.c and the sidecar. No includes: plain types only. */
#ifndef TRACER_TASK_TRACKING_H
#define TRACER_TASK_TRACKING_H

/* Default map sizes; the sidecar may resize them before load. */
#define TRACKED_THREADS_MAX_ENTRIES 65536 /* live threads attributed to some task */
#define TASK_COUNTERS_MAX_ENTRIES 16384   /* live tasks */

/* Per-task counters, keyed by the task's slot (a number the sidecar never reuses). */
struct task_counters {
	unsigned long long spawned; /* processes forked by the task's threads, transitively */
	unsigned long long execs;   /* execve() by any of them */
	unsigned long long lost;    /* children we failed to track (tracked_threads full) */
};

#endif
