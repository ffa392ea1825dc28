/* BPF side only: why a thread that switches out asleep (S state) is waiting,
 * from the system call it sleeps in and, for waits on descriptors, what the
 * descriptors are. Read at switch-out, from the thread's own registers and
 * descriptor table: no extra hook on the system-call path.
 *
 * x86-64 system call numbers: the product ships for x86-64 only. */
#ifndef TRACER_SLEEP_CAUSE_BPF_H
#define TRACER_SLEEP_CAUSE_BPF_H

#include "endpoints.bpf.h"

#define NR_read 0
#define NR_write 1
#define NR_poll 7
#define NR_pread64 17
#define NR_pwrite64 18
#define NR_readv 19
#define NR_writev 20
#define NR_select 23
#define NR_nanosleep 35
#define NR_connect 42
#define NR_accept 43
#define NR_sendto 44
#define NR_recvfrom 45
#define NR_sendmsg 46
#define NR_recvmsg 47
#define NR_wait4 61
#define NR_flock 73
#define NR_futex 202
#define NR_clock_nanosleep 230
#define NR_epoll_wait 232
#define NR_waitid 247
#define NR_pselect6 270
#define NR_ppoll 271
#define NR_epoll_pwait 281
#define NR_accept4 288
#define NR_preadv 295
#define NR_pwritev 296
#define NR_recvmmsg 299
#define NR_sendmmsg 307
#define NR_preadv2 327
#define NR_pwritev2 328
#define NR_epoll_pwait2 441
#define NR_futex_waitv 449

#define S_IFMT 0170000
#define S_IFSOCK 0140000
#define S_IFIFO 0010000

/* Descriptors of one wait looked at, at most: a wait on more is classified by
 * its first ones (docs/observer.md). */
#define WAIT_SET_SCANNED 8
/* Stack of the kernel: where a task's user registers are saved on 5.10-5.14,
 * which lack bpf_task_pt_regs (16 KiB on x86-64 without KASAN). */
#define KERNEL_THREAD_SIZE (16 * 1024)

/* The system call a task sleeps in, and its first arguments. This runs at
 * every sleep of a tracked thread: where the kernel gives the registers as a
 * pointer of known type (bpf_task_pt_regs, 5.15+), they are direct loads,
 * not probe reads. */
struct syscall_at {
	long nr;
	unsigned long arg0, arg1, arg2;
};

static __always_inline struct syscall_at syscall_of(struct task_struct *task)
{
	struct syscall_at call;
	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_task_pt_regs)) {
		struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
		call.nr = regs->orig_ax;
		call.arg0 = regs->di;
		call.arg1 = regs->si;
		call.arg2 = regs->dx;
		return call;
	}
	void *stack = BPF_CORE_READ(task, stack);
	struct pt_regs *regs = (struct pt_regs *)(stack + KERNEL_THREAD_SIZE) - 1;
	call.nr = BPF_CORE_READ(regs, orig_ax);
	call.arg0 = BPF_CORE_READ(regs, di);
	call.arg1 = BPF_CORE_READ(regs, si);
	call.arg2 = BPF_CORE_READ(regs, dx);
	return call;
}

/* A task's descriptor table: direct loads (the task is a pointer of known
 * type), once per sleep. */
static __always_inline struct fdtable *fdtable_of(struct task_struct *task)
{
	return task->files->fdt;
}

/* The file at `fd`. Probe reads: the same loads made directly from the table
 * (an RCU pointer), in the wait-set loops, took the verifier 4 s more at
 * start. */
static __always_inline struct file *file_of(struct fdtable *fdt, long fd)
{
	if (!fdt || fd < 0 || fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *file = NULL;
	bpf_probe_read_kernel(&file, sizeof(file), fds + fd);
	return file;
}

/* What waiting on one file means, as a bit of a mask (1 << SLEEP_*): an IP
 * socket is the network, a pipe is a pipe, anything else (files, Unix
 * sockets, eventfds) is other. Masks, not causes, are what the scanning
 * loops carry: the verifier then need not follow each combination. The
 * first IP socket met goes to `ip_sock`: its endpoint is what was waited on. */
static __always_inline __u32 cause_bit_of_file(struct file *file, struct sock **ip_sock)
{
	if (!file)
		return 1u << SLEEP_OTHER;
	unsigned short mode = BPF_CORE_READ(file, f_inode, i_mode) & S_IFMT;
	if (mode == S_IFIFO)
		return 1u << SLEEP_PIPE;
	if (mode != S_IFSOCK)
		return 1u << SLEEP_OTHER;
	struct socket *sock = BPF_CORE_READ(file, private_data);
	struct sock *sk = BPF_CORE_READ(sock, sk);
	unsigned short family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != AF_INET && family != AF_INET6)
		return 1u << SLEEP_OTHER;
	if (!*ip_sock)
		*ip_sock = sk;
	return 1u << SLEEP_NETWORK;
}

/* Of a wait on several descriptors, the network wins, then a pipe. */
static __always_inline __u32 cause_of_mask(__u32 mask)
{
	if (mask & (1u << SLEEP_NETWORK))
		return SLEEP_NETWORK;
	if (mask & (1u << SLEEP_PIPE))
		return SLEEP_PIPE;
	return SLEEP_OTHER;
}

static __always_inline __u32 cause_of_fd(struct fdtable *fdt, long fd, struct sock **ip_sock)
{
	return cause_of_mask(cause_bit_of_file(file_of(fdt, fd), ip_sock));
}

struct pollfd_user {
	int fd;
	short events;
	short revents;
};

static __always_inline __u32 cause_of_poll(struct fdtable *fdt, struct pollfd_user *fds,
					   unsigned long count, struct sock **ip_sock)
{
	if (count == 0)
		return SLEEP_TIMER; /* a poll with no descriptors is a sleep */
	__u32 mask = 0;
	for (int i = 0; i < WAIT_SET_SCANNED && i < count; i++) {
		struct pollfd_user entry = {};
		bpf_probe_read_user(&entry, sizeof(entry), fds + i);
		mask |= cause_bit_of_file(file_of(fdt, entry.fd), ip_sock);
	}
	return cause_of_mask(mask);
}

/* select: the first descriptors set in its read and write sets, below 64. */
static __always_inline __u32 cause_of_select(struct fdtable *fdt, long count,
					     unsigned long *readable, unsigned long *writable,
					     struct sock **ip_sock)
{
	if (count <= 0)
		return SLEEP_TIMER;
	unsigned long bits = 0, more = 0;
	if (readable)
		bpf_probe_read_user(&bits, sizeof(bits), readable);
	if (writable)
		bpf_probe_read_user(&more, sizeof(more), writable);
	bits |= more;
	if (count < 64)
		bits &= (1ul << count) - 1;
	__u32 mask = 0;
	for (int i = 0; i < WAIT_SET_SCANNED && bits; i++) {
		unsigned long lowest = bits & -bits;
		bits &= bits - 1;
		int fd = 0;
		/* log2 of one bit, branch-free enough for the verifier */
		fd += (lowest & 0xffffffff00000000ul) ? 32 : 0;
		fd += (lowest & 0xffff0000ffff0000ul) ? 16 : 0;
		fd += (lowest & 0xff00ff00ff00ff00ul) ? 8 : 0;
		fd += (lowest & 0xf0f0f0f0f0f0f0f0ul) ? 4 : 0;
		fd += (lowest & 0xccccccccccccccccul) ? 2 : 0;
		fd += (lowest & 0xaaaaaaaaaaaaaaaaul) ? 1 : 0;
		mask |= cause_bit_of_file(file_of(fdt, fd), ip_sock);
	}
	return cause_of_mask(mask);
}

/* The node after `node` in order: the leftmost of its right subtree, else
 * the first ancestor it is in the left subtree of (NULL past the last). */
static __always_inline struct rb_node *next_in_order(struct rb_node *node)
{
	struct rb_node *right = BPF_CORE_READ(node, rb_right);
	if (right) {
		node = right;
		for (int depth = 0; depth < 16; depth++) {
			struct rb_node *left = BPF_CORE_READ(node, rb_left);
			if (!left)
				break;
			node = left;
		}
		return node;
	}
	for (int depth = 0; depth < 16; depth++) {
		struct rb_node *parent =
			(struct rb_node *)(BPF_CORE_READ(node, __rb_parent_color) & ~3ul);
		if (!parent || BPF_CORE_READ(parent, rb_left) == node)
			return parent;
		node = parent;
	}
	return NULL;
}

/* An epoll wait: the first descriptors of its interest set, in the order of
 * the set's tree. */
static __always_inline __u32 cause_of_epoll(struct fdtable *fdt, long epfd,
					    struct sock **ip_sock)
{
	struct file *file = file_of(fdt, epfd);
	if (!file)
		return SLEEP_OTHER;
	struct eventpoll *ep = BPF_CORE_READ(file, private_data);
	struct rb_node *node = BPF_CORE_READ(ep, rbr.rb_leftmost);
	__u32 mask = 0;
	for (int i = 0; i < WAIT_SET_SCANNED && node; i++) {
		struct epitem *item = (struct epitem *)node; /* rbn is its first member */
		mask |= cause_bit_of_file(BPF_CORE_READ(item, ffd.file), ip_sock);
		node = next_in_order(node);
	}
	return cause_of_mask(mask);
}

static __always_inline __u32 cause_of_syscall(struct task_struct *task, struct sock **ip_sock)
{
	struct syscall_at call = syscall_of(task);
	unsigned long arg0 = call.arg0, arg1 = call.arg1;
	struct fdtable *fdt = fdtable_of(task);
	switch (call.nr) {
	case NR_futex:
	case NR_futex_waitv:
	case NR_flock:
		return SLEEP_LOCK;
	case NR_wait4:
	case NR_waitid:
		return SLEEP_CHILD;
	case NR_nanosleep:
	case NR_clock_nanosleep:
		return SLEEP_TIMER;
	case NR_read:
	case NR_write:
	case NR_pread64:
	case NR_pwrite64:
	case NR_readv:
	case NR_writev:
	case NR_preadv:
	case NR_pwritev:
	case NR_preadv2:
	case NR_pwritev2:
	case NR_connect:
	case NR_accept:
	case NR_accept4:
	case NR_sendto:
	case NR_recvfrom:
	case NR_sendmsg:
	case NR_recvmsg:
	case NR_recvmmsg:
	case NR_sendmmsg:
		return cause_of_fd(fdt, arg0, ip_sock);
	case NR_poll:
	case NR_ppoll:
		return SLEEP_WAIT_SET | cause_of_poll(fdt, (struct pollfd_user *)arg0, arg1, ip_sock);
	case NR_select:
	case NR_pselect6:
		return SLEEP_WAIT_SET | cause_of_select(fdt, arg0, (unsigned long *)arg1,
							(unsigned long *)call.arg2, ip_sock);
	case NR_epoll_wait:
	case NR_epoll_pwait:
	case NR_epoll_pwait2:
		return SLEEP_WAIT_SET | cause_of_epoll(fdt, arg0, ip_sock);
	default:
		return SLEEP_OTHER;
	}
}

/* Why `task`, switching out in S state, sleeps; for a sleep on the network,
 * the endpoint of its socket (of a wait set, its first IP socket's) into
 * `endpoint`, whose family is 0 otherwise. A wait on a set of descriptors
 * (poll, select, epoll) is marked SLEEP_WAIT_SET: its own timer ending it
 * makes it a timer sleep (hrtimer_expire_entry). */
static __always_inline __u32 sleep_cause(struct task_struct *task, struct endpoint_key *endpoint)
{
	struct sock *ip_sock = NULL;
	__u32 cause = cause_of_syscall(task, &ip_sock);
	endpoint->family = 0;
	if ((cause & ~SLEEP_WAIT_SET) == SLEEP_NETWORK && ip_sock)
		endpoint_of(ip_sock, endpoint);
	return cause;
}

#endif
