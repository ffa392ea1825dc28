/* Per-thread and per-task state shared by every BPF program and the sidecar.
 * No includes: plain types only, layout checked by static_assert on the user side. */
#ifndef TRACER_TASK_STATE_H
#define TRACER_TASK_STATE_H

/* Default map sizes; the sidecar may resize them before load. */
#define THREADS_MAX_ENTRIES 65536       /* live threads attributed to some task */
#define TASK_COUNTERS_MAX_ENTRIES 16384 /* live tasks (and finished tasks with live children) */
#define UNTRACKED_EVICTED_MAX_ENTRIES 2048 /* untracked threads whose note another thread took the place of (per CPU; a registration's delay sees far fewer) */
#define WATCHED_MMS_MAX_ENTRIES 4096    /* address spaces with tracked threads: their RSS counters as last seen */
#define ENDPOINTS_MAX_ENTRIES 16384     /* endpoints of live tasks, all tasks together */
#define ENDPOINTS_PER_TASK 64           /* one task's table: past it, an endpoint's use is only in the task's totals */
#define THREAD_OWNERS_MAX_ENTRIES 1024  /* thread_state.owner: 0 (root, none) and the sidecar's index of each other uid */
#define TID_FILTER_BLOCK 4096           /* tids per element of maybe_tracked, a byte each (its entries: pid_max / this) */
#define UNTRACKED_NOTE_SLOTS 256        /* untracked_notes: the untracked threads each CPU keeps the newest times of (a power of two) */

/* thread_state.flags */
#define THREAD_BASELINE_PENDING 1u /* registered by the sidecar with the counters its task started from;
                                    * the user/system split starts at its next switch */
#define THREAD_REGISTERED 2u       /* the thread the sidecar registered (not a descendant) */
#define THREAD_OFF_BLOCKED 4u      /* switched out in D state (disk, page faults) */
#define THREAD_OFF_SLEEPING 8u     /* switched out in S state (network, locks, timers) */
#define THREAD_COUNTED 16u         /* forked by a tracked thread: one of its owner's threads_by_owner */
#define THREAD_FOLLOWED 32u        /* switches_before_followed is set */

/* Why a thread sleeps in S state (thread_state.off_cause, the index of
 * task_counters.sleep_by_cause_ns). */
#define SLEEP_OTHER 0u   /* anything else: files, Unix sockets, eventfds, signals */
#define SLEEP_NETWORK 1u /* an IP socket: read, write, connect, accept, or a wait set holding one */
#define SLEEP_LOCK 2u    /* futex (locks, conditions, the GIL), flock */
#define SLEEP_CHILD 3u   /* wait4, waitid */
#define SLEEP_TIMER 4u   /* nanosleep, clock_nanosleep, a wait set its own timeout ended */
#define SLEEP_PIPE 5u    /* a pipe: read, write, or a wait set holding one (no socket) */
#define SLEEP_CAUSES 6u
#define SLEEP_WAIT_SET 0x10u /* off_cause flag: poll, select or epoll: a timeout ending it makes it a timer sleep */

/* What an untracked thread did that a late registration of its task must
 * know of (tracked.bpf.h, note_untracked): the index of its time. */
#define UNTRACKED_CLONE 0u  /* started a thread or process */
#define UNTRACKED_SOCKET 1u /* sent, received or connected on a TCP or UDP socket */
#define UNTRACKED_KINDS 2u /* a power of two: a kind is masked with it for the verifier */

/* When a thread last did each (ns, monotonic; 0: not lately). */
struct untracked_times {
	unsigned long long at[UNTRACKED_KINDS];
};

/* One CPU's newest times of one untracked thread (an entry of untracked_notes). */
struct untracked_note {
	unsigned int tid;
	unsigned int pad;
	struct untracked_times times;
};

/* The far end of an IP socket a task used or waited on: its peer's address
 * and port, or for a listening socket its own. */
struct endpoint_key {
	unsigned int slot;       /* the task's */
	unsigned short family;   /* AF_INET, AF_INET6; 0: none (an unconnected socket) */
	unsigned short port;     /* host byte order */
	unsigned char addr[16];  /* network byte order; IPv4 in the first 4 bytes */
	unsigned int listening;  /* 1: a listening socket, addr:port its own */
};

/* What a task did with one endpoint. */
struct endpoint_use {
	unsigned long long wait_ns;     /* asleep on a socket to it (sched.sleep_by_cause.network_ns) */
	unsigned long long tx_bytes;
	unsigned long long rx_bytes;
	unsigned long long connections; /* TCP connects to it */
};

/* Key of a task's list of its endpoints: its slot, and the endpoint's place
 * in the list, from 0 up without gaps. */
struct endpoint_index {
	unsigned int slot;
	unsigned int index;
};

/* A tracked thread: which task it belongs to, and the kernel's own counters as
 * of the last time they were charged to the task (deltas are exact). */
struct thread_state {
	unsigned int slot;
	unsigned int flags;
	unsigned int tgid;
	unsigned int off_cause; /* SLEEP_*, while switched out in S state */
	unsigned long long runtime;   /* se.sum_exec_runtime */
	unsigned long long utime;     /* raw tick-based, only for the user/system split */
	unsigned long long stime;
	unsigned long long run_delay; /* sched_info.run_delay: runnable, waiting for a CPU */
	unsigned long long rchar;
	unsigned long long wchar;
	unsigned long long read_bytes;
	unsigned long long write_bytes;
	unsigned long long off_since; /* when it went to sleep (ns, monotonic), 0 if not asleep */
	unsigned long long charged;   /* CPU ns this thread has charged to its task */
	unsigned long long hiwater_base; /* its process's mm->hiwater_rss (pages) at baseline */
	/* When it last started a thread or process, and last sent or received on a
	 * TCP/UDP socket (ns, monotonic; 0: not since tracked): whether it did so
	 * after its client's reading at a task's end, or before the reading of a
	 * task nested in it, which the sidecar learns only later. */
	unsigned long long last_clone;
	unsigned long long last_socket;
	/* When it first woke from a sleep it went into before the kernel
	 * followed it (ns, monotonic; 0: none): a registration that reached the
	 * sidecar while its thread slept, whose sleep went on uncounted until then. */
	unsigned long long woke_unseen;
	/* While asleep on an IP socket (off_cause SLEEP_NETWORK): its endpoint
	 * (slot unset), read at switch-out; family 0 if it has none. */
	struct endpoint_key off_endpoint;
	/* Whose it is: the sidecar's index of the uid that registered its task
	 * (0: root, or nobody's), inherited by every thread it forks. */
	unsigned int owner;
	/* The registered thread's count of voluntary switches (nvcsw) when the
	 * kernel first saw it switch after its registration, that switch itself
	 * not included: whether it slept between its client's reading and then,
	 * unseen (THREAD_FOLLOWED says it is set). */
	unsigned long long switches_before_followed;
};

/* Everything a task did, keyed by the task's slot (never reused). */
struct task_counters {
	unsigned long long runtime_ns;
	unsigned long long utime_raw;
	unsigned long long stime_raw;
	unsigned long long run_delay_ns;
	unsigned long long blocked_io_ns;
	unsigned long long sleep_ns;
	unsigned long long rchar;
	unsigned long long wchar;
	unsigned long long read_bytes;
	unsigned long long write_bytes;
	unsigned long long tx_bytes;
	unsigned long long rx_bytes;
	unsigned long long spawned;        /* processes forked by the task, transitively */
	unsigned long long execs;
	unsigned long long short_lived;    /* of those, exited within short_lived_ns */
	unsigned long long live_processes; /* spawned and not yet exited */
	unsigned long long max_concurrent;
	unsigned long long oom_kills;
	unsigned long long max_rss_pages;  /* largest signal->maxrss of an exited process */
	unsigned long long lost;           /* events dropped or threads not tracked */
	unsigned long long sleep_by_cause_ns[SLEEP_CAUSES]; /* sleep_ns by SLEEP_*: they add up to it */
	/* Resident pages its threads faulted in, less those they gave back (the
	 * mm's RSS counters as they change, charged to the thread that changed
	 * them), and the most that ever was. */
	long long own_rss_pages;
	long long own_rss_peak_pages;
	/* Entries of its list of endpoints (endpoint_index) at least; more than
	 * ENDPOINTS_PER_TASK: the list is full, and endpoints past it are only in
	 * the totals above. */
	unsigned long long endpoints;
};

/* live_processes as a count, 0 where it went below zero. Each process it
 * counts was first counted in `spawned`, so a value above that has wrapped:
 * an exit it never counted (the registered process's, when a thread the task
 * started is its last to exit) and another exit both passed the check before
 * the decrement (process_lifecycle.bpf.c) with 1 left. No atomic on Linux
 * 5.10 checks and subtracts at once, so the readers, in the kernel and in
 * the sidecar, take a wrapped count for none alive. */
static inline __attribute__((always_inline)) unsigned long long
processes_alive(const struct task_counters *counters)
{
	unsigned long long live = counters->live_processes;
	return live <= counters->spawned ? live : 0;
}

#endif
