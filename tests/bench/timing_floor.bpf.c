// SPDX-License-Identifier: GPL-2.0
/* For tests/bench/program_costs.sh: a program that does nothing, on the
 * context-switch hook, so that what the kernel's own timing of each run
 * (kernel.bpf_stats_enabled: two clock reads) and the call into a program
 * add can be taken out of the sidecar's programs' figures. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

SEC("tp_btf/sched_switch")
int BPF_PROG(timing_floor)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
