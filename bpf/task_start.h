/* A task's start, marked by its own thread (task_start.bpf.c). No includes. */
#ifndef TRACER_TASK_START_H
#define TRACER_TASK_START_H

/* The prctl option the client library passes to mark a task's start: no
 * kernel knows it, so prctl fails with EINVAL, having done nothing. ("TRst",
 * in the style of the kernel's own ASCII options such as PR_SET_VMA.) */
#define TASK_START_MARK_OPTION 0x54527374

/* Slots the sidecar sets aside for marked starts, and so marks unclaimed at once. */
#define START_SLOTS_MAX_ENTRIES 4096
/* Processes connected to the sidecar, the only ones whose marks count. */
#define MARKING_PROCESSES_MAX_ENTRIES 16384

/* A marked start not yet claimed by its registration: the thread's kernel
 * counters at the mark, where the slot's count began. */
struct start_mark {
	unsigned int tid;
	unsigned int cookie;          /* the client's: its registration names it */
	unsigned long long at;        /* ns, monotonic */
	unsigned long long runtime;   /* se.sum_exec_runtime */
	unsigned long long run_delay; /* sched_info.run_delay */
	unsigned long long rchar;
	unsigned long long wchar;
	unsigned long long read_bytes;
	unsigned long long write_bytes;
};

#endif
