/* Ring-buffer event of process_lifecycle.bpf.c / scheduling.bpf.c. No includes. */
#ifndef TRACER_PROCESS_LIFECYCLE_H
#define TRACER_PROCESS_LIFECYCLE_H

#define EXIT_EVENTS_BYTES (256 * 1024)

/* A tracked thread ran for the last time (sent from its final context switch). */
struct thread_exit_event {
	unsigned int slot;
	unsigned int tid;
	unsigned int tgid;
	unsigned int is_leader;
	unsigned long long cpu_ns; /* CPU it charged to its task, final */
	char comm[16];             /* its process's (group leader's) command name */
};

#endif
