// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * An empty program on sched_switch: the measuring floor of the kernel's bpf_stats on this
 * machine (the cost of running *any* program there, plus the clock reads of the accounting
 * itself). The benchmark reports khorus's per-event cost next to it. Not used by the
 * collector.
 *
 * Hooks: tp_btf/sched_switch. Counts nothing.
 */
#include <stdbool.h>
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("tp_btf/sched_switch")
int BPF_PROG(khorus_empty_switch, bool preempt)
{
	return 0;
}
